/* bundle_bench VECDIR DIR MB [IMAGE_KB] [single]: seals MB megabytes of
 * random "images" (IMAGE_KB each, default 100) plus one read per two images
 * into DIR with the real writer (spool, libarchive, fsync, self-check,
 * rename, directory fsync), then times bundle_open + bundle_verify and
 * bundle_payload_read of the result, and deletes it.  Signs with the test
 * vector's TEST-ONLY key (VECDIR = tests/vectors/bundle).  "single" uses the
 * single-threaded encryptor.  Run it under /usr/bin/time -v for the peak
 * RSS, which must not grow with MB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "crypto/err.h"
#include "export/bundle.h"
#include "export/identity.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds of the process, all threads. */
static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int sign(void *arg, const uint8_t dg[32], uint8_t *sig, size_t *siglen, struct sbx_err *e)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(arg, NULL);
	int ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
	         EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
	         EVP_PKEY_sign(c, sig, siglen, dg, 32) == 1;

	EVP_PKEY_CTX_free(c);
	return ok ? 0 : sbx_fail(e, SBX_ECRYPTO, "bench: signing failed");
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = malloc(1 << 16);

	*len = 0;
	if (f == NULL || b == NULL) {
		free(b);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	*len = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static uint64_t sink_bytes;

static int count_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	sink_bytes += n;
	return 0;
}

int main(int argc, char **argv)
{
	struct bundle_writer_test_params tp = { 0 };
	struct bundle_item_sink sink = { NULL, NULL, count_data };
	struct bundle_manifest m;
	struct bundle_writer *w = NULL;
	struct bundle *b = NULL;
	struct bundle_report rep;
	struct identity *id = calloc(1, sizeof *id);
	struct sbx_err e = { 0 };
	EVP_PKEY *key = NULL;
	uint8_t *ident = NULL, *img = NULL, cek[32], bid[32];
	size_t identlen = 0, imgsz;
	uint64_t total, done = 0, n = 0;
	char path[4096], out[4096];
	double t0, t1, t2, t3, c0, c1, c2, c3, cr = 0;
	FILE *f;
	int rc = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: bundle_bench VECDIR DIR MB [IMAGE_KB] [single]\n");
		return 2;
	}
	total = strtoull(argv[3], NULL, 10) * 1000000;
	imgsz = (argc > 4 ? strtoul(argv[4], NULL, 10) : 100) * 1000;
	tp.single_thread = argc > 5 && strcmp(argv[5], "single") == 0;
	snprintf(path, sizeof path, "%s/TEST-ONLY-sign-key.pem", argv[1]);
	if ((f = fopen(path, "r")) != NULL) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/identity.sbxi", argv[1]);
	ident = slurp(path, &identlen);
	img = malloc(imgsz);
	if (key == NULL || ident == NULL || id == NULL || img == NULL || imgsz == 0 ||
	    identity_decode(ident, identlen, id) != 0) {
		fprintf(stderr, "bench: cannot load the test key and identity from %s\n", argv[1]);
		goto out;
	}
	memset(&m, 0, sizeof m);
	m.version = BUNDLE_VERSION;
	memcpy(m.appliance_id, id->appliance_id, 32);
	snprintf(m.case_id, sizeof m.case_id, "BENCH-1");
	snprintf(m.operator_id, sizeof m.operator_id, "bench");
	snprintf(m.authority, sizeof m.authority, "bench");
	snprintf(m.purpose, sizeof m.purpose, "criminal-investigation");
	m.sealed_at_ms = (uint64_t)time(NULL) * 1000;

	t0 = now();
	c0 = cpu();
	if (bundle_writer_new_test(argv[2], &m, ident, identlen, &tp, &w, &e) != 0)
		goto fail;
	while (done < total) {
		char line[128], csv[64], name[64];
		int jl, cl;

		if (n % 2 == 0) {
			jl = snprintf(line, sizeof line, "{\"vendor_read_id\":\"B%llu\"}\n", (unsigned long long)n);
			cl = snprintf(csv, sizeof csv, "B%llu\r\n", (unsigned long long)n);
			if (bundle_add_read(w, line, (size_t)jl, csv, (size_t)cl, 1795000000000 + (int64_t)n,
			                    "CAM-1", &e) != 0)
				goto fail;
		}
		/* Fresh random bytes for every image: nothing compresses or repeats.
		 * Their cost is measured and taken out of the seal's CPU time. */
		{
			double r0 = cpu();

			if (RAND_bytes(img, (int)imgsz) != 1)
				goto out;
			cr += cpu() - r0;
		}
		snprintf(name, sizeof name, "images/B%llu.%s.jpg", (unsigned long long)(n / 2),
		         n % 2 ? "overview" : "plate");
		if (bundle_add_image(w, name, img, imgsz, &e) != 0)
			goto fail;
		done += imgsz;
		n++;
	}
	rc = bundle_writer_finish(w, sign, key, cek, bid, &m, out, sizeof out, &e);
	w = NULL;
	if (rc != 0)
		goto fail;
	rc = 1;
	t1 = now();
	c1 = cpu();
	if (bundle_open(out, &b, &e) != 0 || bundle_verify(b, NULL, &rep, &e) != 0)
		goto fail;
	t2 = now();
	c2 = cpu();
	if (bundle_payload_read(b, cek, &sink, &e) != 0)
		goto fail;
	t3 = now();
	c3 = cpu();
	printf("images %llu x %zu bytes = %.1f MB of image data; ciphertext %.1f MB; %s encryptor\n",
	       (unsigned long long)n, imgsz, (double)done / 1e6, (double)m.ciphertext_bytes / 1e6,
	       tp.single_thread ? "single-threaded" : "pipelined");
	printf("seal   %6.2f s wall %5.0f MB/s; CPU %.2f s (+%.2f s making random images); "
	       "fsync, self-check, rename included\n",
	       t1 - t0, (double)done / 1e6 / (t1 - t0), c1 - c0 - cr, cr);
	printf("verify %6.2f s wall %5.0f MB/s; CPU %.2f s (bundle_open + bundle_verify)\n", t2 - t1,
	       (double)m.ciphertext_bytes / 1e6 / (t2 - t1), c2 - c1);
	printf("read   %6.2f s wall %5.0f MB/s; CPU %.2f s (bundle_payload_read, %llu item bytes)\n",
	       t3 - t2, (double)m.ciphertext_bytes / 1e6 / (t3 - t2), c3 - c2,
	       (unsigned long long)sink_bytes);
	unlink(out);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench: %s\n", e.msg);
	rc = 1;
out:
	bundle_close(b);
	bundle_writer_abort(w);
	EVP_PKEY_free(key);
	free(ident);
	free(img);
	free(id);
	return rc;
}
