/* The container's tar headers, byte for byte (docs/FORMAT.md section 2).
 * The box writes the container with libarchive; readers regenerate every
 * header with this code and compare, so a bundle has exactly one accepted
 * container form whatever libarchive version wrote or reads it.  Internal
 * to the bundle module. */
#ifndef SBX_BUNDLE_TAR_H
#define SBX_BUNDLE_TAR_H

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_TAR_BLOCK        512
#define BUNDLE_TAR_MAX_HEADER   (3 * BUNDLE_TAR_BLOCK)  /* pax header, pax data, ustar */
#define BUNDLE_TAR_END          (2 * BUNDLE_TAR_BLOCK)  /* end-of-archive marker */
/* Sizes from here on need a pax "size" record (libarchive's threshold). */
#define BUNDLE_TAR_PAX_SIZE     ((uint64_t)1 << 33)
/* Latest ustar mtime libarchive writes without a pax "mtime" record. */
#define BUNDLE_TAR_MAX_MTIME    2147483646u

/* Every entry's mtime: sealed_at_ms / 1000, clamped to BUNDLE_TAR_MAX_MTIME. */
uint64_t bundle_tar_mtime(uint64_t sealed_at_ms);
/* Bytes of zero padding after n bytes of entry data. */
size_t bundle_tar_pad(uint64_t n);
/* The header bytes in front of a regular-file entry's data: one ustar
 * block, preceded for sizes >= BUNDLE_TAR_PAX_SIZE by a pax extended header
 * (block + data block).  Returns the length written (512 or 1536). */
size_t bundle_tar_header(uint8_t out[static BUNDLE_TAR_MAX_HEADER], const char *name,
                         uint64_t size, uint64_t mtime);

#endif
