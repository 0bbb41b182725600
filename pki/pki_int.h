/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the modules of libfleetpki and not exported to its
 * users: error reporting with the OpenSSL error queue, digest choice per key
 * type, hex. Used in every process that links the library.
 */
#ifndef FLEET_PKI_INT_H
#define FLEET_PKI_INT_H

#include <stdarg.h>

#include "pki.h"

#if defined(__GNUC__)
#define PKI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PKI_PRINTF(a, b)
#endif

/* Fill err with the message and return r. */
enum pki_result pki_err(struct pki_error *err, enum pki_result r,
			const char *fmt, ...) PKI_PRINTF(3, 4);

/* Same, appending ": " and the OpenSSL error queue, which is cleared. */
enum pki_result pki_err_ssl(struct pki_error *err, enum pki_result r,
			    const char *fmt, ...) PKI_PRINTF(3, 4);

/* Digest to sign with for key: SHA-256, SHA-384 or NULL (Ed25519). */
enum pki_result pki_sign_md(const EVP_PKEY *key, const EVP_MD **md,
			    struct pki_error *err);

/* Lowercase hex of in[0..len) into out[2 * len + 1]. */
void pki_hex(const unsigned char *in, size_t len, char *out);

/* Copy a BIO memory buffer into a malloc()ed NUL terminated string. */
enum pki_result pki_bio_take(BIO *bio, char **out, size_t *len,
			     struct pki_error *err);

/* Device certificate profile cached per issuer (cert.c): issuer name and
 * the extensions that are the same in every device certificate. */
struct pki_device_profile;

enum pki_result pki_device_profile_new(X509 *issuer, EVP_PKEY *issuer_key,
				       const char *crl_url,
				       struct pki_device_profile **out,
				       struct pki_error *err);
void pki_device_profile_free(struct pki_device_profile *p);
enum pki_result pki_device_profile_issue(const struct pki_device_profile *p,
					 EVP_PKEY *issuer_key, EVP_PKEY *pubkey,
					 const char *device_id,
					 int64_t not_before, int64_t not_after,
					 X509 **out, struct pki_error *err);

#endif /* FLEET_PKI_INT_H */
