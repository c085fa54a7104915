/* ustar headers as libarchive 3.6's "pax restricted" writer produces them
 * for sealbox's entries (regular files, mode 0444, uid/gid 0, no owner
 * names).  Measured, then fixed by docs/FORMAT.md; the writer checks its
 * own output against this, so a libarchive that wrote otherwise would fail
 * sealing instead of producing bundles that readers reject. */
#include "export/bundle_tar.h"

#include <stdio.h>
#include <string.h>

uint64_t bundle_tar_mtime(uint64_t sealed_at_ms)
{
	uint64_t s = sealed_at_ms / 1000;

	return s > BUNDLE_TAR_MAX_MTIME ? BUNDLE_TAR_MAX_MTIME : s;
}

size_t bundle_tar_pad(uint64_t n)
{
	return (size_t)((BUNDLE_TAR_BLOCK - n % BUNDLE_TAR_BLOCK) % BUNDLE_TAR_BLOCK);
}

/* `width` octal digits, zero-padded; v must fit. */
static void octal(uint8_t *p, size_t width, uint64_t v)
{
	for (size_t i = width; i > 0; i--) {
		p[i - 1] = (uint8_t)('0' + (v & 7));
		v >>= 3;
	}
}

static void ustar(uint8_t h[static BUNDLE_TAR_BLOCK], const char *name, uint64_t size,
                  uint64_t mtime, char type)
{
	static const uint8_t zero_id[8] = { '0', '0', '0', '0', '0', '0', ' ', 0 };
	static const uint8_t mode[8] = { '0', '0', '0', '4', '4', '4', ' ', 0 };
	unsigned sum = 0;

	memset(h, 0, BUNDLE_TAR_BLOCK);
	memcpy(h, name, strlen(name));                  /* name[100]; ours are short */
	memcpy(h + 100, mode, 8);
	memcpy(h + 108, zero_id, 8);                    /* uid */
	memcpy(h + 116, zero_id, 8);                    /* gid */
	if (size < (uint64_t)1 << 33) {                 /* 11 digits and a space */
		octal(h + 124, 11, size);
		h[135] = ' ';
	} else if (size < (uint64_t)1 << 36) {          /* 12 digits, no terminator */
		octal(h + 124, 12, size);
	} else {                                        /* base-256, big-endian */
		h[124] = 0x80;
		for (int i = 0; i < 8; i++)
			h[135 - i] = (uint8_t)(size >> (8 * i));
	}
	octal(h + 136, 11, mtime);
	h[147] = ' ';
	h[156] = (uint8_t)type;
	memcpy(h + 257, "ustar\0" "00", 8);             /* magic, version */
	memcpy(h + 329, zero_id, 8);                    /* devmajor */
	memcpy(h + 337, zero_id, 8);                    /* devminor */
	memset(h + 148, ' ', 8);
	for (int i = 0; i < BUNDLE_TAR_BLOCK; i++)
		sum += h[i];
	octal(h + 148, 6, sum);
	h[154] = 0;
	h[155] = ' ';
}

size_t bundle_tar_header(uint8_t out[static BUNDLE_TAR_MAX_HEADER], const char *name,
                         uint64_t size, uint64_t mtime)
{
	char pname[128], rec[64];
	int n, len;

	if (size < BUNDLE_TAR_PAX_SIZE) {
		ustar(out, name, size, mtime, '0');
		return BUNDLE_TAR_BLOCK;
	}
	/* One pax record "<len> size=<size>\n", its length counting itself:
	 * 24 bytes at most for sizes up to 2^48, so two digits. */
	n = snprintf(rec, sizeof rec, " size=%llu\n", (unsigned long long)size);
	len = n + 2;
	snprintf(rec, sizeof rec, "%d size=%llu\n", len, (unsigned long long)size);
	snprintf(pname, sizeof pname, "PaxHeader/%s", name);
	ustar(out, pname, (uint64_t)len, mtime, 'x');
	memset(out + BUNDLE_TAR_BLOCK, 0, BUNDLE_TAR_BLOCK);
	memcpy(out + BUNDLE_TAR_BLOCK, rec, (size_t)len);
	ustar(out + 2 * BUNDLE_TAR_BLOCK, name, size, mtime, '0');
	return 3 * BUNDLE_TAR_BLOCK;
}
