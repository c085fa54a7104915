#include "appliance/reads.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "export/json.h"
#include "export/wire.h"

static const char *const field_names[READ_F_COUNT] = {
	"vendor_read_id", "plate", "region", "captured_at", "camera_id",
	"camera_name", "latitude", "longitude", "heading", "confidence",
	"vehicle_make", "vehicle_color", "vehicle_type", "plate_image",
	"overview_image",
};

#define REQUIRED ((1u << READ_F_VENDOR_ID) | (1u << READ_F_PLATE) | \
                  (1u << READ_F_CAPTURED_AT) | (1u << READ_F_CAMERA_ID))

void read_init(struct read *r)
{
	/* Field by field rather than a memset of the whole struct: this runs
	 * once per read, and the strings only need their first byte cleared. */
	r->vendor_id[0] = r->plate[0] = r->region[0] = r->camera_id[0] = '\0';
	r->camera_name[0] = r->vehicle_make[0] = r->vehicle_color[0] = '\0';
	r->vehicle_type[0] = r->plate_image[0] = r->overview_image[0] = '\0';
	r->captured_at_ms = 0;
	r->has_location = 0;
	r->lat_e7 = r->lon_e7 = 0;
	r->heading = -1;
	r->confidence = -1;
	r->present = 0;
}

const char *read_field_name(enum read_field f)
{
	return (unsigned)f < READ_F_COUNT ? field_names[f] : "?";
}

int read_field_lookup(const char *name, size_t n)
{
	for (int i = 0; i < READ_F_COUNT; i++)
		if (strlen(field_names[i]) == n && memcmp(field_names[i], name, n) == 0)
			return i;
	return -1;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* ---- text fields ---- */

static int v_ascii(const char *s, size_t n, size_t max, int space_ok, char *out, const char **why)
{
	if (n == 0 || n > max)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x7e || c < 0x20 || (c == ' ' && !space_ok))
			goto bad;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
bad:
	*why = space_ok ? "must be 1-128 printable ASCII characters"
	                : "must be 1-128 printable ASCII characters without spaces";
	return SBX_EFORMAT;
}

static int is_alnum_up(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int v_plate(const char *s, size_t n, char *out, const char **why)
{
	char t[READ_PLATE_MAX + 1];

	if (n == 0 || n > READ_PLATE_MAX)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!is_alnum_up(c) && c != ' ' && c != '-')
			goto bad;
		if (!is_alnum_up(c) && (i == 0 || i == n - 1 || !is_alnum_up(t[i - 1])))
			goto bad;
		t[i] = c;
	}
	memcpy(out, t, n);
	out[n] = '\0';
	return 0;
bad:
	*why = "must be 1-16 of A-Z 0-9, single spaces or dashes between them";
	return SBX_EFORMAT;
}

static int v_region(const char *s, size_t n, const char *prefix, char *out, const char **why)
{
	char t[READ_REGION_MAX + 1];
	size_t k = 0;

	if (prefix != NULL && prefix[0] != '\0' && memchr(s, '-', n) == NULL) {
		memcpy(t, prefix, 2);
		t[2] = '-';
		k = 3;
	}
	if (n > READ_REGION_MAX - k)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		t[k++] = c;
	}
	/* [A-Z]{2}-[A-Z0-9]{1,3} */
	if (k < 4 || t[0] < 'A' || t[0] > 'Z' || t[1] < 'A' || t[1] > 'Z' || t[2] != '-')
		goto bad;
	for (size_t i = 3; i < k; i++)
		if (!is_alnum_up(t[i]))
			goto bad;
	memcpy(out, t, k);
	out[k] = '\0';
	return 0;
bad:
	*why = "must be an ISO 3166-2 code such as US-CO";
	return SBX_EFORMAT;
}

/* Decodes one code point of valid UTF-8 at s (validated before). */
static uint32_t cp_at(const unsigned char *s, size_t *len)
{
	if (s[0] < 0x80) {
		*len = 1;
		return s[0];
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*len = 2;
		return ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
	}
	if ((s[0] & 0xf0) == 0xe0) {
		*len = 3;
		return ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
	}
	*len = 4;
	return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
	       ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

/* Free text shown to people: controls and bidirectional overrides could
 * disguise what a report says, so they are refused. */
static int text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t a = 0;

	while (a < n && p[a] >= 0x20 && p[a] < 0x7f)
		a++;
	if (a == n)
		return 1;       /* printable ASCII, the common case */
	if (!wire_utf8_valid(p, n))
		return 0;
	for (size_t i = 0; i < n;) {
		size_t k;
		uint32_t c = cp_at(p + i, &k);

		if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
		    (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff)
			return 0;
		i += k;
	}
	return 1;
}

static int v_text(const char *s, size_t n, size_t max, char *out, const char **why)
{
	if (n == 0 || n > max) {
		*why = max == READ_NAME_MAX ? "longer than 128 bytes" : "longer than 64 bytes";
		return SBX_EFORMAT;
	}
	if (!text_ok(s, n)) {
		*why = "not valid UTF-8 text (control or bidirectional characters, or bad encoding)";
		return SBX_EFORMAT;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int reads_path_norm(const char *in, size_t n, char *out, size_t cap, const char **why)
{
	size_t i = 0, start;

	if (n == 0) {
		*why = "empty path";
		return SBX_EFORMAT;
	}
	if (!wire_utf8_valid((const uint8_t *)in, n)) {
		*why = "path is not valid UTF-8";
		return SBX_EFORMAT;
	}
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)in[k];

		if (c < 0x20 || c == 0x7f) {
			*why = "control character in path";
			return SBX_EFORMAT;
		}
		if (c == '\\') {
			*why = "backslash in path";
			return SBX_EFORMAT;
		}
	}
	if (in[0] == '/') {
		*why = "absolute path";
		return SBX_EFORMAT;
	}
	while (n - i >= 2 && in[i] == '.' && in[i + 1] == '/')
		i += 2;
	start = i;
	if (i == n) {
		*why = "empty path";
		return SBX_EFORMAT;
	}
	while (i <= n) {
		size_t j = i;

		while (j < n && in[j] != '/')
			j++;
		if (j == i) {
			*why = "empty path component";
			return SBX_EFORMAT;
		}
		if (j - i == 2 && in[i] == '.' && in[i + 1] == '.') {
			*why = "'..' in path";
			return SBX_EFORMAT;
		}
		if (j - i == 1 && in[i] == '.') {
			*why = "'.' in path";
			return SBX_EFORMAT;
		}
		i = j + 1;
	}
	if (n - start >= cap) {
		*why = "path too long";
		return SBX_EFORMAT;
	}
	memcpy(out, in + start, n - start);
	out[n - start] = '\0';
	return 0;
}

/* ---- numbers ---- */

/* Exact decimal text to fixed point: round(value * 10^dec), half away from
 * zero, in [lo, hi].  Accepts [+-]digits[.digits][e[+-]digits]. */
static int dec_fixed(const char *s, size_t n, unsigned dec, int64_t lo, int64_t hi, int64_t *out)
{
	char dg[48];
	size_t i = 0, nd = 0, intd = 0;
	long e = 0, nkeep;
	int neg = 0;
	int64_t res = 0;

	if (n == 0 || n > 64)
		return SBX_EFORMAT;
	if (s[i] == '-' || s[i] == '+')
		neg = s[i++] == '-';
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, intd++) {
		if (nd == 0 && s[i] == '0')
			continue;
		if (nd == sizeof dg)
			return SBX_EFORMAT;
		dg[nd++] = s[i];
	}
	if (intd == 0)
		return SBX_EFORMAT;
	if (i < n && s[i] == '.') {
		size_t fd = 0;

		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fd++) {
			e--;
			if (nd == 0 && s[i] == '0')
				continue;
			if (nd == sizeof dg)
				return SBX_EFORMAT;
			dg[nd++] = s[i];
		}
		if (fd == 0)
			return SBX_EFORMAT;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		long x = 0;
		int xneg = 0;
		size_t xd = 0;

		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			xneg = s[i++] == '-';
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, xd++)
			if (x < 10000)
				x = x * 10 + (s[i] - '0');
		if (xd == 0)
			return SBX_EFORMAT;
		e += xneg ? -x : x;
	}
	if (i != n)
		return SBX_EFORMAT;
	nkeep = (long)nd + e + (long)dec;
	if (nd == 0 || nkeep < 0) {
		res = 0;
	} else if (nkeep == 0) {
		res = dg[0] >= '5';
	} else if (nkeep > 18) {
		return SBX_EFORMAT;
	} else {
		for (long j = 0; j < nkeep; j++)
			res = res * 10 + (j < (long)nd ? dg[j] - '0' : 0);
		if (nkeep < (long)nd && dg[nkeep] >= '5')
			res++;
	}
	if (neg)
		res = -res;
	if (res < lo || res > hi)
		return SBX_EFORMAT;
	*out = res;
	return 0;
}

/* ---- time ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int digits(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

int read_parse_time(const char *s, size_t n, int naive_utc, int64_t *ms)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, se, frac = 0, oh = 0, om = 0;
	size_t i = 19;
	int64_t t, off = 0;
	unsigned dim;

	if (n < 19 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
		return SBX_EFORMAT;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return SBX_EFORMAT;
	if (y < 1970 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 60)
		return SBX_EFORMAT;
	dim = mdays[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
	if (d < 1 || d > dim)
		return SBX_EFORMAT;
	if (i < n && s[i] == '.') {
		size_t fd = 0;

		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fd++)
			if (fd < 3)
				frac = frac * 10 + (unsigned)(s[i] - '0');
		if (fd == 0 || fd > 9)
			return SBX_EFORMAT;
		for (; fd < 3; fd++)
			frac *= 10;
	}
	if (i == n) {
		if (!naive_utc)
			return SBX_EFORMAT;
	} else if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
		/* UTC */
	} else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':') {
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return SBX_EFORMAT;
		off = ((int64_t)oh * 60 + om) * 60000;
		if (s[i] == '-')
			off = -off;
	} else {
		return SBX_EFORMAT;
	}
	t = days_from_civil(y, mo, d) * 86400000 + ((int64_t)h * 3600 + mi * 60 + se) * 1000 + frac;
	t -= off;
	if (t < 0 || t > READ_TIME_MAX_MS)
		return SBX_EFORMAT;
	*ms = t;
	return 0;
}

static void put_dec(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void read_format_time(int64_t ms, char out[static 25])
{
	int64_t days, rem;
	int y;
	unsigned m, d;

	if (ms < 0 || ms > READ_TIME_MAX_MS)
		ms = 0;
	days = ms / 86400000;
	rem = ms % 86400000;
	civil_from_days(days, &y, &m, &d);
	memcpy(out, "0000-00-00T00:00:00.000Z", 25);
	put_dec(out, (unsigned)y, 4);
	put_dec(out + 5, m, 2);
	put_dec(out + 8, d, 2);
	put_dec(out + 11, (unsigned)(rem / 3600000), 2);
	put_dec(out + 14, (unsigned)(rem / 60000 % 60), 2);
	put_dec(out + 17, (unsigned)(rem / 1000 % 60), 2);
	put_dec(out + 20, (unsigned)(rem % 1000), 3);
}

static int v_time(const char *s, size_t n, const struct read_opts *o, int64_t *ms, const char **why)
{
	size_t k = 0;

	while (k < n && s[k] >= '0' && s[k] <= '9')
		k++;
	if (k == n) {
		int64_t v;

		if (dec_fixed(s, n, 0, 0, READ_TIME_MAX_MS, &v) != 0 ||
		    (o != NULL && o->epoch_seconds && v > READ_TIME_MAX_MS / 1000)) {
			*why = "epoch time out of range";
			return SBX_EFORMAT;
		}
		*ms = o != NULL && o->epoch_seconds ? v * 1000 : v;
		return 0;
	}
	if (read_parse_time(s, n, o != NULL && o->naive_utc, ms) != 0) {
		*why = o != NULL && o->naive_utc
		       ? "must be RFC 3339 (e.g. 2026-01-02T03:04:05.678Z) or epoch time, 1970-9999"
		       : "must be RFC 3339 with Z or an offset (e.g. 2026-01-02T03:04:05.678Z) or epoch milliseconds, 1970-9999";
		return SBX_EFORMAT;
	}
	return 0;
}

/* ---- setting fields ---- */

int read_set(struct read *r, enum read_field f, const char *v, size_t n,
             const struct read_opts *o, const char **why)
{
	int64_t x;
	int rc = 0;

	trim(&v, &n);
	if (n == 0)
		return 0;
	switch (f) {
	case READ_F_VENDOR_ID:
		rc = v_ascii(v, n, READ_ID_MAX, 0, r->vendor_id, why);
		break;
	case READ_F_PLATE:
		rc = v_plate(v, n, r->plate, why);
		break;
	case READ_F_REGION:
		rc = v_region(v, n, o != NULL ? o->region_prefix : NULL, r->region, why);
		break;
	case READ_F_CAPTURED_AT:
		rc = v_time(v, n, o, &r->captured_at_ms, why);
		break;
	case READ_F_CAMERA_ID:
		rc = v_ascii(v, n, READ_ID_MAX, 1, r->camera_id, why);
		break;
	case READ_F_CAMERA_NAME:
		rc = v_text(v, n, READ_NAME_MAX, r->camera_name, why);
		break;
	case READ_F_LATITUDE:
		rc = dec_fixed(v, n, 7, -900000000, 900000000, &x);
		if (rc != 0)
			*why = "must be a decimal number of degrees in [-90, 90]";
		else
			r->lat_e7 = (int32_t)x;
		break;
	case READ_F_LONGITUDE:
		rc = dec_fixed(v, n, 7, -1800000000, 1800000000, &x);
		if (rc != 0)
			*why = "must be a decimal number of degrees in [-180, 180]";
		else
			r->lon_e7 = (int32_t)x;
		break;
	case READ_F_HEADING:
		rc = dec_fixed(v, n, 0, 0, 360, &x);
		if (rc != 0)
			*why = "must be a number of degrees in [0, 360]";
		else
			r->heading = (int)(x % 360);
		break;
	case READ_F_CONFIDENCE:
		if (o != NULL && o->confidence_fraction)
			rc = dec_fixed(v, n, 4, 0, 10000, &x);
		else
			rc = dec_fixed(v, n, 2, 0, 10000, &x);
		if (rc != 0)
			*why = o != NULL && o->confidence_fraction
			       ? "must be a number in [0, 1]" : "must be a number in [0, 100]";
		else
			r->confidence = (int)x;
		break;
	case READ_F_MAKE:
		rc = v_text(v, n, READ_VEHICLE_MAX, r->vehicle_make, why);
		break;
	case READ_F_COLOR:
		rc = v_text(v, n, READ_VEHICLE_MAX, r->vehicle_color, why);
		break;
	case READ_F_TYPE:
		rc = v_text(v, n, READ_VEHICLE_MAX, r->vehicle_type, why);
		break;
	case READ_F_PLATE_IMAGE:
		rc = reads_path_norm(v, n, r->plate_image, sizeof r->plate_image, why);
		break;
	case READ_F_OVERVIEW_IMAGE:
		rc = reads_path_norm(v, n, r->overview_image, sizeof r->overview_image, why);
		break;
	default:
		*why = "unknown field";
		return SBX_EINVAL;
	}
	if (rc != 0)
		return SBX_EFORMAT;
	r->present |= 1u << f;
	if (f == READ_F_LATITUDE || f == READ_F_LONGITUDE)
		r->has_location = (r->present & (1u << READ_F_LATITUDE)) &&
		                  (r->present & (1u << READ_F_LONGITUDE));
	return 0;
}

int read_finish(const struct read *r, enum read_field *field, const char **why)
{
	for (int f = 0; f < READ_F_COUNT; f++) {
		if ((REQUIRED & (1u << f)) && !(r->present & (1u << f))) {
			*field = (enum read_field)f;
			*why = "is required";
			return SBX_EFORMAT;
		}
	}
	if (!(r->present & (1u << READ_F_LATITUDE)) != !(r->present & (1u << READ_F_LONGITUDE))) {
		*field = (r->present & (1u << READ_F_LATITUDE)) ? READ_F_LONGITUDE : READ_F_LATITUDE;
		*why = "latitude and longitude go together";
		return SBX_EFORMAT;
	}
	return 0;
}

/* A string field of a read from elsewhere: terminated inside its array,
 * and either absent ("" and not required) or already in normal form. */
static int check_str(const char *field, size_t size, enum read_field f, const struct read_opts *o,
                     const char **why)
{
	struct read t;
	const char *tf;
	size_t n = strnlen(field, size);

	if (n == size) {
		*why = "not terminated";
		return SBX_EFORMAT;
	}
	if (n == 0) {
		if (REQUIRED & (1u << f)) {
			*why = "is required";
			return SBX_EFORMAT;
		}
		return 0;
	}
	read_init(&t);
	if (read_set(&t, f, field, n, o, why) != 0)
		return SBX_EFORMAT;
	switch (f) {
	case READ_F_VENDOR_ID:      tf = t.vendor_id; break;
	case READ_F_PLATE:          tf = t.plate; break;
	case READ_F_REGION:         tf = t.region; break;
	case READ_F_CAMERA_ID:      tf = t.camera_id; break;
	case READ_F_CAMERA_NAME:    tf = t.camera_name; break;
	case READ_F_MAKE:           tf = t.vehicle_make; break;
	case READ_F_COLOR:          tf = t.vehicle_color; break;
	case READ_F_TYPE:           tf = t.vehicle_type; break;
	case READ_F_PLATE_IMAGE:    tf = t.plate_image; break;
	case READ_F_OVERVIEW_IMAGE: tf = t.overview_image; break;
	default:                    tf = ""; break;
	}
	if (strcmp(tf, field) != 0) {
		*why = "not in normal form";
		return SBX_EFORMAT;
	}
	return 0;
}

int read_check(const struct read *r, enum read_field *field, const char **why)
{
	static const struct read_opts plain;
	const struct { enum read_field f; const char *s; size_t size; } strs[] = {
		{ READ_F_VENDOR_ID, r->vendor_id, sizeof r->vendor_id },
		{ READ_F_PLATE, r->plate, sizeof r->plate },
		{ READ_F_REGION, r->region, sizeof r->region },
		{ READ_F_CAMERA_ID, r->camera_id, sizeof r->camera_id },
		{ READ_F_CAMERA_NAME, r->camera_name, sizeof r->camera_name },
		{ READ_F_MAKE, r->vehicle_make, sizeof r->vehicle_make },
		{ READ_F_COLOR, r->vehicle_color, sizeof r->vehicle_color },
		{ READ_F_TYPE, r->vehicle_type, sizeof r->vehicle_type },
		{ READ_F_PLATE_IMAGE, r->plate_image, sizeof r->plate_image },
		{ READ_F_OVERVIEW_IMAGE, r->overview_image, sizeof r->overview_image },
	};

	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		if (check_str(strs[i].s, strs[i].size, strs[i].f, &plain, why) != 0) {
			*field = strs[i].f;
			return SBX_EFORMAT;
		}
	}
	*why = "out of range";
	*field = READ_F_CAPTURED_AT;
	if (r->captured_at_ms < 0 || r->captured_at_ms > READ_TIME_MAX_MS)
		return SBX_EFORMAT;
	*field = READ_F_LATITUDE;
	if (r->has_location != 0 && r->has_location != 1)
		return SBX_EFORMAT;
	if (r->lat_e7 < -900000000 || r->lat_e7 > 900000000 || (!r->has_location && r->lat_e7 != 0))
		return SBX_EFORMAT;
	*field = READ_F_LONGITUDE;
	if (r->lon_e7 < -1800000000 || r->lon_e7 > 1800000000 || (!r->has_location && r->lon_e7 != 0))
		return SBX_EFORMAT;
	*field = READ_F_HEADING;
	if (r->heading < -1 || r->heading > 359)
		return SBX_EFORMAT;
	*field = READ_F_CONFIDENCE;
	if (r->confidence < -1 || r->confidence > 10000)
		return SBX_EFORMAT;
	return 0;
}

/* ---- canonical output ---- */

/* Shortest decimal form of v / 10^dec: no trailing zeros, no "-0". */
static void fmt_fixed(int64_t v, unsigned dec, char *out, size_t cap)
{
	uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, p = 1;
	char t[48];
	size_t k = sizeof t;
	unsigned fd = dec;

	for (unsigned i = 0; i < dec; i++)
		p *= 10;
	/* Build right to left: fraction digits without trailing zeros, the
	 * point, the integer part, the sign. */
	{
		uint64_t fp = a % p;

		while (fd > 0 && fp % 10 == 0) {
			fp /= 10;
			fd--;
		}
		for (unsigned i = 0; i < fd; i++) {
			t[--k] = (char)('0' + fp % 10);
			fp /= 10;
		}
		if (fd > 0)
			t[--k] = '.';
	}
	a /= p;
	do {
		t[--k] = (char)('0' + a % 10);
		a /= 10;
	} while (a > 0);
	if (v < 0)
		t[--k] = '-';
	if (sizeof t - k >= cap) {
		out[0] = '\0';
		return;
	}
	memcpy(out, t + k, sizeof t - k);
	out[sizeof t - k] = '\0';
}

/* Text of field f for output, or NULL when absent. */
static const char *field_text(const struct read *r, enum read_field f, char *buf, size_t cap, int *is_num)
{
	*is_num = 0;
	switch (f) {
	case READ_F_VENDOR_ID:   return r->vendor_id;
	case READ_F_PLATE:       return r->plate;
	case READ_F_REGION:      return r->region[0] ? r->region : NULL;
	case READ_F_CAPTURED_AT:
		read_format_time(r->captured_at_ms, buf);
		return buf;
	case READ_F_CAMERA_ID:   return r->camera_id;
	case READ_F_CAMERA_NAME: return r->camera_name[0] ? r->camera_name : NULL;
	case READ_F_LATITUDE:
	case READ_F_LONGITUDE:
		if (!r->has_location)
			return NULL;
		*is_num = 1;
		fmt_fixed(f == READ_F_LATITUDE ? r->lat_e7 : r->lon_e7, 7, buf, cap);
		return buf;
	case READ_F_HEADING:
		if (r->heading < 0)
			return NULL;
		*is_num = 1;
		snprintf(buf, cap, "%d", r->heading);
		return buf;
	case READ_F_CONFIDENCE:
		if (r->confidence < 0)
			return NULL;
		*is_num = 1;
		fmt_fixed(r->confidence, 2, buf, cap);
		return buf;
	case READ_F_MAKE:           return r->vehicle_make[0] ? r->vehicle_make : NULL;
	case READ_F_COLOR:          return r->vehicle_color[0] ? r->vehicle_color : NULL;
	case READ_F_TYPE:           return r->vehicle_type[0] ? r->vehicle_type : NULL;
	case READ_F_PLATE_IMAGE:    return r->plate_image[0] ? r->plate_image : NULL;
	case READ_F_OVERVIEW_IMAGE: return r->overview_image[0] ? r->overview_image : NULL;
	default:                    return NULL;
	}
}

static int jput(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (n >= cap - *o)
		return SBX_EFORMAT;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

/* Written by hand rather than through json_w: this runs once per read of
 * every bundle, keys are constants, and values are already validated, so
 * only the escaping of strings is needed (export/json.h's json_escape). */
int reads_to_jsonl(const struct read *r, char *out, size_t cap, size_t *len)
{
	char buf[32];
	size_t o = 0;
	int is_num;

	if (cap == 0)
		return SBX_EINVAL;
	for (int f = 0; f < READ_F_COUNT; f++) {
		const char *t = field_text(r, (enum read_field)f, buf, sizeof buf, &is_num);
		const char *k = field_names[f];

		if (jput(out, cap, &o, f == 0 ? "{\"" : ",\"", 2) != 0 ||
		    jput(out, cap, &o, k, strlen(k)) != 0 || jput(out, cap, &o, "\":", 2) != 0)
			return SBX_EFORMAT;
		if (t == NULL) {
			if (jput(out, cap, &o, "null", 4) != 0)
				return SBX_EFORMAT;
		} else if (is_num) {
			if (jput(out, cap, &o, t, strlen(t)) != 0)
				return SBX_EFORMAT;
		} else {
			size_t n = strlen(t), need;

			if (jput(out, cap, &o, "\"", 1) != 0)
				return SBX_EFORMAT;
			need = json_escape(out + o, cap - o, t, n);
			if (need == (size_t)-1 || need >= cap - o)
				return SBX_EFORMAT;
			o += need;
			if (jput(out, cap, &o, "\"", 1) != 0)
				return SBX_EFORMAT;
		}
	}
	if (jput(out, cap, &o, "}\n", 2) != 0)
		return SBX_EFORMAT;
	out[o] = '\0';
	*len = o;
	return 0;
}

const char *reads_csv_header(void)
{
	return "vendor_read_id,plate,region,captured_at,camera_id,camera_name,latitude,"
	       "longitude,heading,confidence,vehicle_make,vehicle_color,vehicle_type,"
	       "plate_image,overview_image\r\n";
}

static int cput(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (n >= cap - *o)
		return SBX_EFORMAT;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

int reads_to_csv(const struct read *r, char *out, size_t cap, size_t *len)
{
	char buf[32];
	size_t o = 0;
	int is_num;

	if (r == NULL || cap == 0)
		return SBX_EINVAL;
	for (int f = 0; f < READ_F_COUNT; f++) {
		const char *t = field_text(r, (enum read_field)f, buf, sizeof buf, &is_num);
		size_t n = t != NULL ? strlen(t) : 0;

		if (f > 0 && cput(out, cap, &o, ",", 1) != 0)
			return SBX_EFORMAT;
		if (n == 0)
			continue;
		if (strpbrk(t, ",\"\r\n") == NULL) {
			if (cput(out, cap, &o, t, n) != 0)
				return SBX_EFORMAT;
			continue;
		}
		if (cput(out, cap, &o, "\"", 1) != 0)
			return SBX_EFORMAT;
		for (size_t i = 0; i < n; i++)
			if ((t[i] == '"' && cput(out, cap, &o, "\"", 1) != 0) ||
			    cput(out, cap, &o, t + i, 1) != 0)
				return SBX_EFORMAT;
		if (cput(out, cap, &o, "\"", 1) != 0)
			return SBX_EFORMAT;
	}
	if (cput(out, cap, &o, "\r\n", 2) != 0)
		return SBX_EFORMAT;
	out[o] = '\0';
	*len = o;
	return 0;
}

int reads_image_magic(const uint8_t *p, size_t n)
{
	static const uint8_t png[8] = { 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a };

	if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return READS_IMG_JPEG;
	if (n >= 8 && memcmp(p, png, 8) == 0)
		return READS_IMG_PNG;
	return READS_IMG_NONE;
}

/* ---- id set ---- */

/* Open addressing over 4-byte slots (where the record is, + 1), so that the
 * table a lookup walks stays small.  Each record (the value, 8-byte aligned,
 * unless the set has none; then the key's length in 7-bit groups and the
 * key's bytes) is appended to fixed-size blocks that never move: growing
 * copies nothing but the slot table, and value slots stay put.  Keys are
 * kept whole, so membership is exact, not "equal hashes".  A lookup touches
 * the slot table and the records it probes, nothing else.  A million
 * 11-byte ids take 8 MB of slots and 24 MB of records (12 MB without
 * values); this is where the time goes once parsing is fast. */
#define IDS_ABLOCK_SHIFT 20                             /* arena block: 1 MiB */
#define IDS_ABLOCK       ((size_t)1 << IDS_ABLOCK_SHIFT)
/* A slot holds record reference + 1 in 32 bits. */
#define IDS_ABLOCKS_MAX  (((size_t)1 << (32 - IDS_ABLOCK_SHIFT)) - 1)
#define IDS_KEY_MAX      ((size_t)1 << 16)              /* bytes of one key */
#define IDS_VAL          sizeof(uint64_t)

struct reads_idset {
	uint32_t *t;            /* record reference + 1; 0 = empty */
	size_t cap;             /* a power of two, at least twice n */
	uint8_t **ab;           /* arena blocks of IDS_ABLOCK */
	size_t nab, abcap, aused;  /* aused: bytes used in the last block */
	size_t n;
	size_t vsize;           /* IDS_VAL, or 0 for a set of keys alone */
	uint64_t k0, k1;
};

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
	v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

/* SipHash-1-3. */
static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *m, size_t n)
{
	uint64_t v[4] = { 0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
	                  0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1 };
	uint64_t b = (uint64_t)n << 56, mi;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		mi = 0;
		for (int j = 7; j >= 0; j--)
			mi = (mi << 8) | m[i + (size_t)j];
		v[3] ^= mi;
		sipround(v);
		v[0] ^= mi;
	}
	for (size_t j = 0; i + j < n; j++)
		b |= (uint64_t)m[i + j] << (8 * j);
	v[3] ^= b;
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static struct reads_idset *idset_new(size_t vsize)
{
	struct reads_idset *s = calloc(1, sizeof *s);
	uint64_t k[2];

	if (s == NULL)
		return NULL;
	if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) {
		free(s);
		return NULL;
	}
	s->k0 = k[0];
	s->k1 = k[1];
	s->vsize = vsize;
	s->cap = 1024;
	s->t = calloc(s->cap, sizeof *s->t);
	if (s->t == NULL) {
		reads_idset_free(s);
		return NULL;
	}
	return s;
}

struct reads_idset *reads_idset_new(void)
{
	return idset_new(IDS_VAL);
}

struct reads_idset *reads_idset_new_keys(void)
{
	return idset_new(0);
}

void reads_idset_free(struct reads_idset *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nab; i++)
		free(s->ab[i]);
	free(s->ab);
	free(s->t);
	free(s);
}

static uint8_t *rec_at(const struct reads_idset *s, uint32_t slot)
{
	uint32_t ref = slot - 1;

	return s->ab[ref >> IDS_ABLOCK_SHIFT] + (ref & (IDS_ABLOCK - 1));
}

/* The record's key: its bytes, and their number in *len. */
static const uint8_t *rec_key(const struct reads_idset *s, const uint8_t *p, size_t *len)
{
	size_t l = 0;
	int shift = 0;

	p += s->vsize;
	do {
		l |= (size_t)(*p & 0x7f) << shift;
		shift += 7;
	} while (*p++ & 0x80);
	*len = l;
	return p;
}

/* The key's length prefix: 7 bits a byte, low bits first (keys < 2^21). */
static size_t klen_put(uint8_t *p, size_t n)
{
	size_t i = 0;

	while (n >= 0x80) {
		p[i++] = (uint8_t)(n | 0x80);
		n >>= 7;
	}
	p[i++] = (uint8_t)n;
	return i;
}

static uint32_t *lookup(const struct reads_idset *s, uint64_t h, const void *k, size_t n)
{
	size_t mask = s->cap - 1, i = (size_t)h & mask;

	for (;; i = (i + 1) & mask) {
		uint32_t *sl = &s->t[i];
		const uint8_t *key;
		size_t len;

		if (*sl == 0)
			return sl;
		key = rec_key(s, rec_at(s, *sl), &len);
		if (len == n && memcmp(key, k, n) == 0)
			return sl;
	}
}

/* The slot table only: records keep no hash, so each key is hashed again. */
static int grow(struct reads_idset *s)
{
	size_t ncap = s->cap * 2, mask = ncap - 1;
	uint32_t *nt = calloc(ncap, sizeof *nt);

	if (nt == NULL)
		return SBX_ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		const uint8_t *key;
		size_t len, j;

		if (s->t[i] == 0)
			continue;
		key = rec_key(s, rec_at(s, s->t[i]), &len);
		j = (size_t)siphash(s->k0, s->k1, key, len) & mask;
		while (nt[j] != 0)
			j = (j + 1) & mask;
		nt[j] = s->t[i];
	}
	free(s->t);
	s->t = nt;
	s->cap = ncap;
	return 0;
}

/* Appends the record (value, key) to the arena; *slot says where. */
static int rec_store(struct reads_idset *s, const void *k, size_t n, uint64_t val, uint32_t *slot)
{
	uint8_t pre[3];
	size_t pl = klen_put(pre, n), off;
	uint8_t *p;

	/* Values are read and written in place through a uint64_t pointer. */
	off = s->vsize != 0 ? (s->aused + IDS_VAL - 1) & ~(IDS_VAL - 1) : s->aused;
	if (s->nab == 0 || s->vsize + pl + n > IDS_ABLOCK - off) {
		uint8_t **nab;

		if (s->nab >= IDS_ABLOCKS_MAX)
			return SBX_ENOMEM;
		if (s->nab == s->abcap) {
			size_t ncap = s->abcap != 0 ? s->abcap * 2 : 16;

			nab = realloc(s->ab, ncap * sizeof *s->ab);
			if (nab == NULL)
				return SBX_ENOMEM;
			s->ab = nab;
			s->abcap = ncap;
		}
		s->ab[s->nab] = malloc(IDS_ABLOCK);
		if (s->ab[s->nab] == NULL)
			return SBX_ENOMEM;
		s->nab++;
		s->aused = off = 0;
	}
	p = s->ab[s->nab - 1] + off;
	if (s->vsize != 0)
		memcpy(p, &val, IDS_VAL);
	memcpy(p + s->vsize, pre, pl);
	memcpy(p + s->vsize + pl, k, n);
	s->aused = off + s->vsize + pl + n;
	*slot = (uint32_t)(((s->nab - 1) << IDS_ABLOCK_SHIFT | off) + 1);
	return 0;
}

int reads_idset_add(struct reads_idset *s, const void *k, size_t n, uint64_t val)
{
	uint64_t h;
	uint32_t *sl, slot;

	if (s == NULL || n > IDS_KEY_MAX || s->n >= UINT32_MAX - 1)
		return SBX_EINVAL;
	h = siphash(s->k0, s->k1, k, n);
	sl = lookup(s, h, k, n);
	if (*sl != 0)
		return SBX_EEXIST;
	/* Grown first: a failure after the record is stored would leave it
	 * unreachable in the arena. */
	if ((s->n + 1) * 2 > s->cap) {
		if (grow(s) != 0)
			return SBX_ENOMEM;
		sl = lookup(s, h, k, n);
	}
	if (rec_store(s, k, n, val, &slot) != 0)
		return SBX_ENOMEM;
	*sl = slot;
	s->n++;
	return 0;
}

uint64_t *reads_idset_find(const struct reads_idset *s, const void *k, size_t n)
{
	uint32_t *sl;

	if (s == NULL || s->vsize == 0 || n > IDS_KEY_MAX)
		return NULL;
	sl = lookup(s, siphash(s->k0, s->k1, k, n), k, n);
	/* Aligned when stored (rec_store). */
	return *sl != 0 ? (uint64_t *)(void *)rec_at(s, *sl) : NULL;
}

int reads_idset_has(const struct reads_idset *s, const void *k, size_t n)
{
	if (s == NULL || n > IDS_KEY_MAX)
		return 0;
	return *lookup(s, siphash(s->k0, s->k1, k, n), k, n) != 0;
}

size_t reads_idset_count(const struct reads_idset *s)
{
	return s != NULL ? s->n : 0;
}
