#include "appliance/mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export/wire.h"

static const char *const pseudo_names[] = { "captured_at_date", "captured_at_time" };

const char *mapping_field_name(int f)
{
	if (f >= 0 && f < READ_F_COUNT)
		return read_field_name((enum read_field)f);
	if (f >= MAPPING_F_DATE && f < MAPPING_F_COUNT)
		return pseudo_names[f - MAPPING_F_DATE];
	return "?";
}

static int field_lookup(const char *k, size_t n)
{
	int f = read_field_lookup(k, n);

	if (f >= 0)
		return f;
	for (int i = 0; i < MAPPING_F_COUNT - MAPPING_F_DATE; i++)
		if (strlen(pseudo_names[i]) == n && memcmp(pseudo_names[i], k, n) == 0)
			return MAPPING_F_DATE + i;
	return -1;
}

/* Splits src->text into key-path steps; leaves nseg 0 if it is not one
 * (it may still be a CSV column name). */
static void parse_path(struct mapping_src *src)
{
	const char *t = src->text;
	size_t n = src->len, i = 0;
	uint8_t ns = 0;

	src->nseg = 0;
	while (i < n) {
		struct mapping_seg *g;
		size_t k = i;

		if (ns == MAPPING_MAX_SEGS)
			return;
		g = &src->seg[ns];
		memset(g, 0, sizeof *g);
		while (k < n && t[k] != '.' && t[k] != '[' && t[k] != ']')
			k++;
		if (k == i)
			return;
		g->key_off = (uint8_t)i;
		g->key_len = (uint8_t)(k - i);
		if (k < n && t[k] == '[') {
			size_t c = k + 1, eq = 0;

			while (c < n && t[c] != ']') {
				if (t[c] == '=' && eq == 0)
					eq = c;
				c++;
			}
			if (c >= n || c == k + 1)
				return;
			if (eq == 0) {
				int32_t v = 0;

				for (size_t d = k + 1; d < c; d++) {
					if (t[d] < '0' || t[d] > '9' || v > 100000)
						return;
					v = v * 10 + (t[d] - '0');
				}
				g->sel = 1;
				g->index = v;
			} else {
				if (eq == k + 1 || eq + 1 == c)
					return;
				g->sel = 2;
				g->mk_off = (uint8_t)(k + 1);
				g->mk_len = (uint8_t)(eq - k - 1);
				g->mv_off = (uint8_t)(eq + 1);
				g->mv_len = (uint8_t)(c - eq - 1);
			}
			k = c + 1;
		}
		ns++;
		if (k == n)
			break;
		if (t[k] != '.' || k + 1 == n)
			return;
		i = k + 1;
	}
	src->nseg = ns;
}

static void set_src(struct mapping *m, int f, const char *v, size_t n)
{
	struct mapping_src *s = &m->src[f];

	memcpy(s->text, v, n);
	s->text[n] = '\0';
	s->len = n;
	parse_path(s);
}

void mapping_generic(struct mapping *m)
{
	memset(m, 0, sizeof *m);
	strcpy(m->name, "generic");
	for (int f = 0; f < READ_F_COUNT; f++) {
		const char *name = read_field_name((enum read_field)f);

		set_src(m, f, name, strlen(name));
	}
}

static int mfail(struct sbx_err *e, const char *label, size_t line, const char *what)
{
	return sbx_fail(e, SBX_EFORMAT, "%s line %zu: %s", label, line, what);
}

int mapping_parse(const char *text, size_t len, const char *label, struct mapping *m,
                  struct sbx_err *e)
{
	size_t pos = 0, line = 0;
	int seen_magic = 0, r = SBX_EFORMAT;
	uint32_t seen = 0;
	int seen_opt[6] = { 0 };
	static const char *const opts[] = { "name", "epoch_unit", "naive_time",
	                                    "confidence_scale", "region_prefix", "absent" };

	memset(m, 0, sizeof *m);
	if (label == NULL)
		label = "mapping";
	if (len > MAPPING_MAX_BYTES) {
		r = sbx_fail(e, SBX_EFORMAT, "%s: longer than %d bytes", label, MAPPING_MAX_BYTES);
		goto out;
	}
	if (!wire_utf8_valid((const uint8_t *)text, len)) {
		r = sbx_fail(e, SBX_EFORMAT, "%s: not UTF-8 text (or holds a NUL)", label);
		goto out;
	}
	while (pos < len) {
		const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - l) : len - pos;
		const char *k, *v;
		size_t kn, vn, i;
		int f;

		pos += n + (nl != NULL);
		line++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (n > MAPPING_MAX_LINE) {
			r = mfail(e, label, line, "line too long");
			goto out;
		}
		for (i = 0; i < n; i++)
			if ((unsigned char)l[i] < 0x20 && l[i] != '\t') {
				r = mfail(e, label, line, "control character");
				goto out;
			}
		while (n > 0 && (*l == ' ' || *l == '\t')) {
			l++;
			n--;
		}
		while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t'))
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		if (!seen_magic) {
			if (n != 17 || memcmp(l, "sealbox-mapping 1", 17) != 0) {
				r = mfail(e, label, line, "the first line must be \"sealbox-mapping 1\"");
				goto out;
			}
			seen_magic = 1;
			continue;
		}
		v = memchr(l, '=', n);
		if (v == NULL) {
			r = mfail(e, label, line, "expected KEY = VALUE");
			goto out;
		}
		k = l;
		kn = (size_t)(v - l);
		while (kn > 0 && (k[kn - 1] == ' ' || k[kn - 1] == '\t'))
			kn--;
		v++;
		vn = n - (size_t)(v - l);
		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		if (kn == 0 || vn == 0) {
			r = mfail(e, label, line, "empty key or value");
			goto out;
		}
		f = field_lookup(k, kn);
		if (f >= 0) {
			if (seen & (1u << f)) {
				r = mfail(e, label, line, "field mapped twice");
				goto out;
			}
			if (vn > MAPPING_MAX_SOURCE) {
				r = mfail(e, label, line, "source longer than 128 bytes");
				goto out;
			}
			seen |= 1u << f;
			set_src(m, f, v, vn);
			continue;
		}
		for (i = 0; i < sizeof opts / sizeof opts[0]; i++)
			if (strlen(opts[i]) == kn && memcmp(opts[i], k, kn) == 0)
				break;
		if (i == sizeof opts / sizeof opts[0]) {
			r = mfail(e, label, line, "unknown key");
			goto out;
		}
		if (seen_opt[i] && i != 5) {
			r = mfail(e, label, line, "key given twice");
			goto out;
		}
		seen_opt[i] = 1;
		switch (i) {
		case 0:
			if (vn >= sizeof m->name) {
				r = mfail(e, label, line, "name longer than 64 bytes");
				goto out;
			}
			memcpy(m->name, v, vn);
			m->name[vn] = '\0';
			break;
		case 1:
			if (vn == 2 && memcmp(v, "ms", 2) == 0) {
				m->ropts.epoch_seconds = 0;
			} else if (vn == 1 && v[0] == 's') {
				m->ropts.epoch_seconds = 1;
			} else {
				r = mfail(e, label, line, "epoch_unit must be ms or s");
				goto out;
			}
			break;
		case 2:
			if (vn == 3 && memcmp(v, "utc", 3) == 0) {
				m->ropts.naive_utc = 1;
			} else if (vn == 6 && memcmp(v, "refuse", 6) == 0) {
				m->ropts.naive_utc = 0;
			} else {
				r = mfail(e, label, line, "naive_time must be refuse or utc");
				goto out;
			}
			break;
		case 3:
			if (vn == 7 && memcmp(v, "percent", 7) == 0) {
				m->ropts.confidence_fraction = 0;
			} else if (vn == 8 && memcmp(v, "fraction", 8) == 0) {
				m->ropts.confidence_fraction = 1;
			} else {
				r = mfail(e, label, line, "confidence_scale must be percent or fraction");
				goto out;
			}
			break;
		case 4:
			if (vn != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z') {
				r = mfail(e, label, line, "region_prefix must be two capital letters (ISO 3166-1)");
				goto out;
			}
			memcpy(m->ropts.region_prefix, v, 2);
			m->ropts.region_prefix[2] = '\0';
			break;
		default:
			if (m->n_absent == MAPPING_MAX_ABSENT || vn > MAPPING_ABSENT_LEN) {
				r = mfail(e, label, line, "at most 4 absent values of at most 16 bytes");
				goto out;
			}
			memcpy(m->absent[m->n_absent], v, vn);
			m->absent[m->n_absent][vn] = '\0';
			m->n_absent++;
			break;
		}
	}
	if (!seen_magic) {
		r = sbx_fail(e, SBX_EFORMAT, "%s: empty (the first line must be \"sealbox-mapping 1\")", label);
		goto out;
	}
	for (int f = 0; f < READ_F_COUNT; f++) {
		if ((f == READ_F_VENDOR_ID || f == READ_F_PLATE || f == READ_F_CAMERA_ID) &&
		    !(seen & (1u << f))) {
			r = sbx_fail(e, SBX_EFORMAT, "%s: required field %s is not mapped", label,
			             read_field_name((enum read_field)f));
			goto out;
		}
	}
	{
		int t = (seen >> READ_F_CAPTURED_AT) & 1;
		int d = (seen >> MAPPING_F_DATE) & 1, h = (seen >> MAPPING_F_TIME) & 1;

		if (t + (d | h) != 1 || d != h) {
			r = sbx_fail(e, SBX_EFORMAT, "%s: map captured_at, or both captured_at_date "
			             "and captured_at_time, but not both ways", label);
			goto out;
		}
	}
	if (!seen_opt[0])
		strcpy(m->name, "unnamed");
	r = 0;
out:
	if (r != 0)
		memset(m, 0, sizeof *m);
	return r;
}

int mapping_load(const char *path, struct mapping *m, struct sbx_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, r = SBX_EIO;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = sbx_fail(e, SBX_EIO, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	buf = malloc(MAPPING_MAX_BYTES + 1);
	if (buf == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t k = read(fd, buf + len, MAPPING_MAX_BYTES + 1 - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = sbx_fail(e, SBX_EIO, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len > MAPPING_MAX_BYTES) {
			r = sbx_fail(e, SBX_EFORMAT, "%s: longer than %d bytes", path, MAPPING_MAX_BYTES);
			goto out;
		}
	}
	r = mapping_parse(buf, len, path, m, e);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

static int is_absent(const struct mapping *m, const char *v, size_t n)
{
	if (m->n_absent == 0)
		return 0;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < m->n_absent; i++)
		if (strlen(m->absent[i]) == n && memcmp(m->absent[i], v, n) == 0)
			return 1;
	return 0;
}

/* captured_at from a UTC date (YYYY-MM-DD, YYYY:MM:DD or YYYY/MM/DD) and a
 * UTC time of day (HH:MM:SS[.fff]). */
static int date_time(struct read *r, const char *d, size_t dn, const char *t, size_t tn,
                     int *field, const char **why)
{
	char buf[48];
	int64_t ms;

	while (dn > 0 && (*d == ' ' || *d == '\t')) { d++; dn--; }
	while (dn > 0 && (d[dn - 1] == ' ' || d[dn - 1] == '\t')) dn--;
	while (tn > 0 && (*t == ' ' || *t == '\t')) { t++; tn--; }
	while (tn > 0 && (t[tn - 1] == ' ' || t[tn - 1] == '\t')) tn--;
	if (dn != 10 || d[4] != d[7] || (d[4] != '-' && d[4] != ':' && d[4] != '/')) {
		*field = MAPPING_F_DATE;
		*why = "must be a date YYYY-MM-DD (or with : or / between)";
		return SBX_EFORMAT;
	}
	if (tn < 8 || tn > 18 || memchr(t, 'Z', tn) != NULL || memchr(t, '+', tn) != NULL ||
	    memchr(t, '-', tn) != NULL) {
		*field = MAPPING_F_TIME;
		*why = "must be a UTC time of day HH:MM:SS[.fff]";
		return SBX_EFORMAT;
	}
	memcpy(buf, d, 4);
	buf[4] = '-';
	memcpy(buf + 5, d + 5, 2);
	buf[7] = '-';
	memcpy(buf + 8, d + 8, 2);
	buf[10] = 'T';
	memcpy(buf + 11, t, tn);
	buf[11 + tn] = 'Z';
	if (read_parse_time(buf, 12 + tn, 0, &ms) != 0) {
		*field = MAPPING_F_TIME;
		*why = "date and time do not form a valid UTC time (1970-9999)";
		return SBX_EFORMAT;
	}
	r->captured_at_ms = ms;
	r->present |= 1u << READ_F_CAPTURED_AT;
	return 0;
}

int mapping_read(const struct mapping *m, const struct mapping_vals *vals, struct read *r,
                 int *field, const char **why)
{
	enum read_field bad;
	int have_d, have_t;

	read_init(r);
	for (int f = 0; f < READ_F_COUNT; f++) {
		if (vals->v[f] == NULL || is_absent(m, vals->v[f], vals->n[f]))
			continue;
		if (read_set(r, (enum read_field)f, vals->v[f], vals->n[f], &m->ropts, why) != 0) {
			*field = f;
			return SBX_EFORMAT;
		}
	}
	have_d = vals->v[MAPPING_F_DATE] != NULL && !is_absent(m, vals->v[MAPPING_F_DATE], vals->n[MAPPING_F_DATE]);
	have_t = vals->v[MAPPING_F_TIME] != NULL && !is_absent(m, vals->v[MAPPING_F_TIME], vals->n[MAPPING_F_TIME]);
	if (m->src[MAPPING_F_DATE].len > 0 && (have_d || have_t)) {
		if (!have_d || !have_t) {
			*field = have_d ? MAPPING_F_TIME : MAPPING_F_DATE;
			*why = "is required";
			return SBX_EFORMAT;
		}
		if (date_time(r, vals->v[MAPPING_F_DATE], vals->n[MAPPING_F_DATE],
		              vals->v[MAPPING_F_TIME], vals->n[MAPPING_F_TIME], field, why) != 0)
			return SBX_EFORMAT;
	}
	if (read_finish(r, &bad, why) != 0) {
		*field = (int)bad;
		return SBX_EFORMAT;
	}
	return 0;
}
