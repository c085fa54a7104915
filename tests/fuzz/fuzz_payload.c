/* libFuzzer harness: the payload framing parser (export/bundle_payload.c) on
 * arbitrary plaintext, as bundle_payload_read hands it over after
 * decryption.
 *
 * Property: the parser is a pure function of the bytes, not of how they are
 * cut: parsing the input in one piece and in pieces whose sizes come from
 * the input itself gives the same verdict, the same error code, the same
 * items and the same summary.  Whatever is accepted re-frames: the items,
 * written again by the framing writer (with its own frame sizes), parse back
 * to the same item count and index hash.
 *
 * Build and run (60 s), once the tree compiles:
 *   make BUILD=build/fuzz-you CC=clang FUZZ=1 build/fuzz-you/fuzz/fuzz_payload
 *   build/fuzz-you/fuzz/fuzz_payload -max_total_time=60 CORPUS_COPY tests/fuzz/corpus/fuzz_payload */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/err.h"
#include "export/bundle_payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char spooldir[] = "/tmp/sbx-fuzz-payload.XXXXXX";

static void must(int cond)
{
	if (!cond)
		abort();
}

/* What a sink saw: the items. */
struct item {
	char *path;
	uint8_t *p;
	size_t n;
};

struct seen {
	uint64_t items, bytes;
	struct item *it;
	size_t cap;
};

static int s_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e)
{
	struct seen *s = arg;

	must(no == s->items && path != NULL && strlen(path) <= BUNDLE_MAX_PATH);
	if (s->items == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->it = realloc(s->it, s->cap * sizeof *s->it);
		must(s->it != NULL);
	}
	s->it[no].path = strdup(path);
	s->it[no].p = NULL;
	s->it[no].n = 0;
	s->items++;
	return 0;
}

static int s_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	struct seen *s = arg;

	must(no < s->items && n > 0);
	{
		struct item *it = &s->it[no];

		it->p = realloc(it->p, it->n + n);
		must(it->p != NULL);
		memcpy(it->p + it->n, p, n);
		it->n += n;
	}
	s->bytes += n;
	return 0;
}

struct result {
	int rc;
	struct payload_summary sum;
	uint64_t items, bytes;
};

static void parse(const uint8_t *data, size_t size, int cut, struct result *res,
                  struct seen *s)
{
	struct bundle_item_sink sink = { s, s_begin, s_data };
	struct payload_p *pp = NULL;
	struct sbx_err e = { 0 };
	size_t off = 0, step = 1;
	int rc;

	must(payload_p_new(&sink, &pp, &e) == 0);
	memset(res, 0, sizeof *res);
	rc = 0;
	while (rc == 0 && off < size) {
		size_t n = size - off;

		if (cut) {
			/* Piece sizes 1..64 taken from the data, so cuts land anywhere. */
			step = (size_t)(data[(off * 7 + 3) % size] & 63) + 1;
			n = n < step ? n : step;
		}
		rc = payload_p_push(pp, data + off, n, &e);
		off += n;
	}
	if (rc == 0)
		rc = payload_p_finish(pp, &res->sum, &e);
	if (rc != 0)
		must(e.code != 0 && e.msg[0] != '\0');
	res->rc = rc;
	res->items = s->items;
	res->bytes = s->bytes;
	payload_p_free(pp);
}

static int same_items(const struct seen *a, const struct seen *b)
{
	if (a->items != b->items)
		return 0;
	for (size_t i = 0; i < a->items; i++)
		if (strcmp(a->it[i].path, b->it[i].path) != 0 || a->it[i].n != b->it[i].n ||
		    (a->it[i].n > 0 && memcmp(a->it[i].p, b->it[i].p, a->it[i].n) != 0))
			return 0;
	return 1;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; s->it != NULL && i < s->items; i++) {
		free(s->it[i].path);
		free(s->it[i].p);
	}
	free(s->it);
}

struct out {
	uint8_t *p;
	size_t n;
};

static int collect(void *arg, const void *p, size_t n, struct sbx_err *e)
{
	struct out *o = arg;

	o->p = realloc(o->p, o->n + n);
	must(o->p != NULL);
	memcpy(o->p + o->n, p, n);
	o->n += n;
	return 0;
}

/* The accepted items, framed again by the writer, parse back to the same
 * index (paths, sizes, hashes). */
static void reframe(const struct seen *s, const struct payload_summary *want)
{
	struct out o = { NULL, 0 };
	struct payload_w *pw = NULL;
	struct payload_summary sum;
	struct result back;
	struct seen s2 = { 0, 0, NULL, 0 };
	struct sbx_err e = { 0 };

	must(payload_w_new(spooldir, collect, &o, &pw, &e) == 0);
	must(payload_w_text(pw, (const char *)s->it[0].p, s->it[0].n, (const char *)s->it[1].p,
	                    s->it[1].n, &e) == 0);
	for (size_t i = 2; i < s->items; i++)
		must(payload_w_image(pw, s->it[i].path, s->it[i].p, s->it[i].n, &e) == 0);
	must(payload_w_finish(pw, &sum, &e) == 0);
	payload_w_free(pw);
	must(sum.items == want->items && memcmp(sum.index_sha256, want->index_sha256, 32) == 0);
	parse(o.p, o.n, 0, &back, &s2);
	must(back.rc == 0 && memcmp(&back.sum, &sum, sizeof sum) == 0 && same_items(s, &s2));
	seen_free(&s2);
	free(o.p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	must(mkdtemp(spooldir) != NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result a, b;
	struct seen sa = { 0, 0, NULL, 0 }, sb = { 0, 0, NULL, 0 };

	if (size > (1u << 20))
		return 0;
	parse(data, size, 0, &a, &sa);
	parse(data, size, 1, &b, &sb);
	must(a.rc == b.rc);
	if (a.rc == 0) {
		must(memcmp(&a.sum, &b.sum, sizeof a.sum) == 0 && a.sum.bytes == size &&
		     a.sum.items >= 2 && a.sum.items == a.items);
		must(same_items(&sa, &sb) && a.bytes == b.bytes);
		reframe(&sa, &a.sum);
	}
	seen_free(&sa);
	seen_free(&sb);
	return 0;
}
