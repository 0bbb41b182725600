/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the libfleetpki unit tests: a scratch directory per test,
 * files, running the openssl binary as an external oracle, and a small CA
 * fixture. Test code only; trusts everything.
 */
#ifndef FLEET_PKI_TEST_UTIL_H
#define FLEET_PKI_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pki.h"

struct tu_ca {
	char *dir; /* scratch directory, test_malloc()ed */
	EVP_PKEY *root_key;
	EVP_PKEY *iss_key;
	X509 *root;
	X509 *iss;
	char root_pem[4096]; /* paths in dir */
	char iss_pem[4096];
	char iss_key_path[4096];
};

/* mkdtemp under TMPDIR; returned string from test_malloc. */
char *tu_tmpdir(void);
/* rm -rf dir, then test_free(dir). */
void tu_rmtree(char *dir);
/* dir/name into a static-free buffer of cap bytes. */
void tu_path(char *out, size_t cap, const char *dir, const char *name);
void tu_write(const char *path, const void *data, size_t len);
/* Read a whole file into test_malloc()ed memory, NUL terminated. */
char *tu_read(const char *path, size_t *len);
/* Run a shell command; returns its exit status (-1 if it did not exit). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a command and capture stdout+stderr into test_malloc()ed text. */
char *tu_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a command (stdout+stderr captured) and fail the test unless its
 * output contains want: an external oracle's verdict in one call. */
void tu_sh_expect(const char *want, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Write certs as PEM to path. */
void tu_write_certs(const char *path, X509 *const *certs, size_t n);

/* Root + issuing CA (P-256) in a fresh scratch dir, files written. */
void tu_ca_setup(struct tu_ca *ca);
void tu_ca_teardown(struct tu_ca *ca);
/* cmocka setup/teardown: *state is a test_malloc()ed struct tu_ca. */
int tu_ca_state_setup(void **state);
int tu_ca_state_teardown(void **state);

/* CSR (subject CN "device") for a fresh key: EVP_PKEY_Q_keygen(alg, bits)
 * when bits > 0, else (alg, arg) when arg is set, else (alg). PEM text of
 * *len bytes plus a NUL, test_malloc()ed. */
char *tu_csr_pem(const char *alg, const char *arg, size_t bits, size_t *len);
/* DER of a PEM CSR, test_malloc()ed with room for 16 more bytes. */
unsigned char *tu_csr_der(const char *pem, size_t pem_len, size_t *der_len);

/* Assert that x follows the device profile of DESIGN.md §4 exactly:
 * 128-bit positive serial, CN and SAN URI from id (and no other SAN),
 * CA:false, KU digitalSignature only, EKU clientAuth only, AKI = issuer
 * SKI, SKI present, CRL DP = crl_url (or none), validity backdated 300 s
 * and validity seconds long (1 minute of slack for the test run). */
void tu_check_device_cert(X509 *x, X509 *issuer, const char *id,
			  int64_t validity, const char *crl_url);

/* openssl verify -x509_strict -purpose <purpose> of leaf against root
 * with issuing as untrusted; returns exit status, output in out (may be
 * NULL; test_free it). */
int tu_openssl_verify(const char *dir, X509 *root, X509 *issuing, X509 *leaf,
		      const char *purpose, const char *extra, char **out);

#endif
