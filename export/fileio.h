/* Reading a whole input file, bounded.  One implementation for every
 * program that takes a file from outside (policy files, identities, log
 * exports, release files, keys). */
#ifndef SBX_FILEIO_H
#define SBX_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

/* Reads a whole regular file of at most `cap` bytes into a malloc'd buffer
 * (NUL-terminated one past *outlen).  SBX_EIO when it cannot be read (or is
 * not a regular file), SBX_EFORMAT when it is larger than cap.  The message
 * names the file. */
int fileio_read(const char *path, uint64_t cap, uint8_t **out, size_t *outlen,
                struct sbx_err *e);

#endif
