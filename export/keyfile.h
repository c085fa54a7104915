/* A recipient's private key and certificate, as people keep them: a PEM
 * private key (PKCS#8, encrypted or not, or the traditional EC/RSA forms),
 * or a PKCS#12 file (.p12/.pfx) holding the key and its certificate; a
 * certificate as PEM or DER.  A passphrase comes from a file (its first
 * line) or, when none is given and the key needs one, from the terminal
 * (/dev/tty, not echoed).  Passphrases are wiped after use.  Core library:
 * OpenSSL and libc. */
#ifndef SBX_KEYFILE_H
#define SBX_KEYFILE_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/err.h"

#define KEYFILE_MAX_FILE   (1u << 20)
#define KEYFILE_MAX_PASS   1024

/* *cert is set only for PKCS#12 (the certificate of the key), else NULL.
 * passphrase_file NULL: ask on the terminal if the key is protected (fails
 * with SBX_EINVAL when there is no terminal).  SBX_EIO unreadable file,
 * SBX_EFORMAT not a key we read, SBX_EVERIFY wrong passphrase. */
int keyfile_load(const char *path, const char *passphrase_file, EVP_PKEY **key,
                 X509 **cert, struct sbx_err *e);

/* One certificate, PEM or DER. */
int keyfile_load_cert(const char *path, X509 **cert, struct sbx_err *e);

#endif
