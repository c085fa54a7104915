#include "export/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#define PROMPT_TRIES 3

/* Reads a whole regular file of at most `cap` bytes into a buffer the
 * caller frees with OPENSSL_clear_free (it may hold a key). */
static int slurp(const char *path, size_t cap, uint8_t **out, size_t *len, struct sbx_err *e)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, r = SBX_EIO;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = sbx_fail(e, SBX_EIO, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		r = sbx_fail(e, SBX_EFORMAT, "%s: larger than %zu bytes", path, cap);
		goto out;
	}
	buf = OPENSSL_malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = sbx_fail(e, SBX_EIO, "%s: %s", path, n < 0 ? strerror(errno) :
			             "the file shrank while being read");
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	*out = buf;
	buf = NULL; /* transferred */
	*len = got;
	r = 0;
out:
	if (buf != NULL)
		OPENSSL_clear_free(buf, (size_t)st.st_size + 1);
	close(fd);
	return r;
}

/* The first line of the file, without its line end. */
static int pass_from_file(const char *path, char *out, size_t cap, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t len = 0, n;
	int r;

	r = slurp(path, KEYFILE_MAX_PASS * 4, &b, &len, e);
	if (r != 0)
		return r;
	for (n = 0; n < len && b[n] != '\n'; n++)
		;
	if (n > 0 && b[n - 1] == '\r')
		n--;
	if (n >= cap || memchr(b, 0, n) != NULL) {
		r = sbx_fail(e, SBX_EFORMAT, "--passphrase-file %s: the passphrase is longer than"
		             " %zu bytes or holds a NUL", path, cap - 1);
	} else {
		memcpy(out, b, n);
		out[n] = '\0';
	}
	OPENSSL_clear_free(b, len + 1);
	return r;
}

/* Reads a line from the terminal without echo, character by character so
 * that ^C cancels at once and the terminal is always restored (signals
 * are turned off while the mode is changed: ISIG cleared). */
static int pass_from_tty(const char *what, char *out, size_t cap, struct sbx_err *e)
{
	struct termios old, raw;
	size_t n = 0;
	int fd, r = SBX_EINVAL;

	out[0] = '\0';
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(e, SBX_EINVAL, "%s is protected by a passphrase and there is no"
		                " terminal to ask for it: give --passphrase-file", what);
	if (tcgetattr(fd, &old) != 0) {
		r = sbx_fail(e, SBX_EINVAL, "%s is protected by a passphrase and there is no"
		             " terminal to ask for it: give --passphrase-file", what);
		goto out;
	}
	raw = old;
	raw.c_lflag &= (tcflag_t)~(ECHO | ICANON | ISIG);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	dprintf(fd, "Passphrase for %s: ", what);
	if (tcsetattr(fd, TCSAFLUSH, &raw) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot turn off echo on the terminal: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		unsigned char c;
		ssize_t k = read(fd, &c, 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || c == 0x03 || c == 0x04) {       /* EOF, ^C, ^D */
			r = sbx_fail(e, SBX_ECANCELED, "no passphrase given");
			goto restore;
		}
		if (c == '\n' || c == '\r')
			break;
		if (c == 0x7f || c == 0x08) {                   /* backspace */
			if (n > 0)
				n--;
			continue;
		}
		if (c == 0x15) {                                /* ^U */
			n = 0;
			continue;
		}
		if (n + 1 >= cap) {
			r = sbx_fail(e, SBX_EINVAL, "passphrase longer than %zu bytes", cap - 1);
			goto restore;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	r = 0;
restore:
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) != 1) {
		/* The newline the user typed was not echoed; missing it is cosmetic. */
	}
out:
	if (r != 0)
		OPENSSL_cleanse(out, cap);
	close(fd);
	return r;
}

struct pass_ctx {
	const char *what;
	const char *file;       /* --passphrase-file, or NULL: ask */
	char pass[KEYFILE_MAX_PASS + 1];
	int have;               /* pass holds a passphrase (from the file or asked) */
	int asked;              /* the callback was called: the key is protected */
	struct sbx_err err;     /* why no passphrase could be had */
};

static int get_pass(struct pass_ctx *c)
{
	if (c->have)
		return 0;
	if (c->file != NULL) {
		if (pass_from_file(c->file, c->pass, sizeof c->pass, &c->err) != 0)
			return -1;
	} else if (pass_from_tty(c->what, c->pass, sizeof c->pass, &c->err) != 0) {
		return -1;
	}
	c->have = 1;
	return 0;
}

static void forget_pass(struct pass_ctx *c)
{
	OPENSSL_cleanse(c->pass, sizeof c->pass);
	c->have = 0;
}

static int pem_cb(char *buf, int size, int rwflag, void *arg)
{
	struct pass_ctx *c = arg;
	size_t n;

	c->asked = 1;
	if (get_pass(c) != 0)
		return -1;
	n = strlen(c->pass);
	if (size <= 0 || n > (size_t)size)
		return -1;
	memcpy(buf, c->pass, n);
	return (int)n;
}

static int load_pem_key(const uint8_t *b, size_t len, struct pass_ctx *c, EVP_PKEY **key,
                        struct sbx_err *e)
{
	int tries = c->file != NULL ? 1 : PROMPT_TRIES;

	for (int t = 0; t < tries; t++) {
		BIO *bio = BIO_new_mem_buf(b, (int)len);

		if (bio == NULL)
			return sbx_fail(e, SBX_ENOMEM, "out of memory");
		*key = PEM_read_bio_PrivateKey(bio, NULL, pem_cb, c);
		BIO_free(bio);
		if (*key != NULL) {
			ERR_clear_error();
			return 0;
		}
		if (c->err.code != 0) {
			ERR_clear_error();
			return sbx_fail(e, c->err.code, "%s", c->err.msg);
		}
		if (!c->asked) {
			return sbx_fail_ssl(e, SBX_EFORMAT, "%s: no PEM private key in it (PEM"
			                    " or PKCS#12 expected)", c->what);
		}
		forget_pass(c);
		if (c->file == NULL && t + 1 < tries) {
			ERR_clear_error();
			fputs("wrong passphrase, try again\n", stderr);
		}
	}
	return sbx_fail_ssl(e, SBX_EVERIFY, "%s: wrong passphrase (or a damaged key)", c->what);
}

/* The password under which the file's MAC verifies (a file without a
 * MAC: under which it parses). */
static int p12_opens(PKCS12 *p12, const char *pw)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int ok;

	if (PKCS12_mac_present(p12))
		ok = PKCS12_verify_mac(p12, pw, -1) == 1;
	else
		ok = PKCS12_parse(p12, pw, &k, &x, NULL) == 1 && k != NULL;
	EVP_PKEY_free(k);
	X509_free(x);
	ERR_clear_error();
	return ok;
}

static int load_p12(PKCS12 *p12, struct pass_ctx *c, EVP_PKEY **key, X509 **cert,
                    struct sbx_err *e)
{
	STACK_OF(X509) *ca = NULL;
	const char *pw = NULL;
	int tries = c->file != NULL ? 1 : PROMPT_TRIES, ok = 0;

	/* An unprotected PKCS#12 opens under no or the empty password. */
	if (p12_opens(p12, NULL)) {
		pw = NULL;
	} else if (p12_opens(p12, "")) {
		pw = "";
	} else {
		for (int t = 0; t < tries && !ok; t++) {
			if (get_pass(c) != 0)
				return sbx_fail(e, c->err.code, "%s", c->err.msg);
			ok = p12_opens(p12, c->pass);
			if (!ok) {
				forget_pass(c);
				if (t + 1 < tries)
					fputs("wrong passphrase, try again\n", stderr);
			}
		}
		if (!ok)
			return sbx_fail(e, SBX_EVERIFY, "%s: wrong passphrase (or a damaged PKCS#12"
			                " file)", c->what);
		pw = c->pass;
	}
	ok = PKCS12_parse(p12, pw, key, cert, &ca) == 1 && *key != NULL;
	sk_X509_pop_free(ca, X509_free);
	if (!ok) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		*key = NULL;
		*cert = NULL;
		return sbx_fail_ssl(e, SBX_EFORMAT, "%s: the PKCS#12 file holds no usable private key"
		                    " (one with legacy encryption: convert it with 'openssl pkcs12"
		                    " -legacy')", c->what);
	}
	ERR_clear_error();
	return 0;
}

int keyfile_load(const char *path, const char *passphrase_file, EVP_PKEY **key,
                 X509 **cert, struct sbx_err *e)
{
	struct pass_ctx *c = NULL;
	uint8_t *b = NULL;
	size_t len = 0;
	PKCS12 *p12 = NULL;
	const unsigned char *p;
	int r;

	*key = NULL;
	*cert = NULL;
	r = slurp(path, KEYFILE_MAX_FILE, &b, &len, e);
	if (r != 0)
		goto out;
	c = OPENSSL_zalloc(sizeof *c);
	if (c == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	c->what = path;
	c->file = passphrase_file;
	/* PKCS#12 is DER; PEM is text.  Exactly one DER structure. */
	p = b;
	if (len > 0 && b[0] == 0x30)
		p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12 != NULL && p == b + len) {
		r = load_p12(p12, c, key, cert, e);
	} else {
		ERR_clear_error();
		r = load_pem_key(b, len, c, key, e);
	}
out:
	PKCS12_free(p12);
	if (c != NULL)
		OPENSSL_clear_free(c, sizeof *c);
	if (b != NULL)
		OPENSSL_clear_free(b, len + 1);
	ERR_clear_error();
	return r;
}

int keyfile_load_cert(const char *path, X509 **cert, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t len = 0;
	const unsigned char *p;
	BIO *bio = NULL;
	int r;

	*cert = NULL;
	r = slurp(path, KEYFILE_MAX_FILE, &b, &len, e);
	if (r != 0)
		return r;
	p = b;
	if (len > 0 && b[0] == 0x30) {
		*cert = d2i_X509(NULL, &p, (long)len);
		if (*cert != NULL && p != b + len) {
			X509_free(*cert);
			*cert = NULL;
		}
	} else {
		bio = BIO_new_mem_buf(b, (int)len);
		if (bio != NULL)
			*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	}
	if (*cert == NULL)
		r = sbx_fail(e, SBX_EFORMAT, "%s: no certificate in it (PEM or DER expected)", path);
	BIO_free(bio);
	OPENSSL_clear_free(b, len + 1);
	ERR_clear_error();
	return r;
}
