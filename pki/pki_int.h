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

/* The one serial format (see pki_cert_serial_hex): the big-endian
 * magnitude mag[0..len) as openssl prints it, uppercase hex, two digits per
 * octet, leading zero octets dropped ("00" for zero). PKI_ERR_ARG when
 * out[cap] is too small. */
enum pki_result pki_serial_hex(const unsigned char *mag, size_t len, char *out,
			       size_t cap, struct pki_error *err);

/* Copy a BIO memory buffer into a malloc()ed NUL terminated string. */
enum pki_result pki_bio_take(BIO *bio, char **out, size_t *len,
			     struct pki_error *err);

/* ---- strict DER (der.c) ---------------------------------------------- */

/* A span of bytes: input left to read, or one element's content. */
struct pki_der {
	const unsigned char *p;
	size_t len;
};

/* Take the next element of in if it has this (single-byte) tag and a
 * definite, shortest-form length that fits: its content into *val and the
 * whole element into *tlv (either may be NULL), and advance in. false
 * (in unchanged) on anything else. */
bool pki_der_get(struct pki_der *in, unsigned char tag, struct pki_der *val,
		 struct pki_der *tlv);

/* Size of the tag and length octets for a content of len bytes. */
size_t pki_der_tl_len(size_t len);

/* Append-only writer into p[0..cap); overflow is sticky and checked once
 * at the end. */
struct pki_der_w {
	unsigned char *p;
	size_t len;
	size_t cap;
	bool overflow;
};

void pki_der_put(struct pki_der_w *w, const void *data, size_t len);
void pki_der_put_tl(struct pki_der_w *w, unsigned char tag, size_t len);
void pki_der_put_tlv(struct pki_der_w *w, unsigned char tag, const void *data,
		     size_t len);

/* ---- CSR check for the signer (csr.c) ---------------------------------- */

/* Per-signer cache for checking CSRs: EC domain templates from which a
 * device key is made without OpenSSL's decoder framework. */
struct pki_csr_cache;

enum pki_result pki_csr_cache_new(struct pki_csr_cache **out,
				  struct pki_error *err);
void pki_csr_cache_free(struct pki_csr_cache *c);

/* pki_csr_parse_check, but what the caller gets is the DER
 * SubjectPublicKeyInfo of the checked key (*spki, malloc()ed, owned by the
 * caller) rather than an X509_REQ. Same checks and same result codes: DER
 * CSRs with a P-256, P-384 or Ed25519 key and a matching signature
 * algorithm are walked and verified directly, everything else goes through
 * pki_csr_parse_check. cache may be NULL (slower). */
enum pki_result pki_csr_check_spki(const void *buf, size_t len,
				   const struct pki_policy *policy,
				   const struct pki_csr_cache *cache,
				   unsigned char **spki, size_t *spki_len,
				   struct pki_error *err);

/* ---- device profile, cached per issuer (cert.c) ------------------------ */

/* Issuer name, signature algorithm and the extensions that are the same
 * in every device certificate, already DER encoded. */
struct pki_device_profile;

enum pki_result pki_device_profile_new(X509 *issuer, EVP_PKEY *issuer_key,
				       const char *crl_url,
				       struct pki_device_profile **out,
				       struct pki_error *err);
void pki_device_profile_free(struct pki_device_profile *p);

/* A device certificate for the key spki (DER SubjectPublicKeyInfo, already
 * checked), signed with issuer_key. *der (malloc()ed) is owned by the
 * caller; serial_hex receives the serial as pki_cert_serial_hex writes
 * it. */
enum pki_result pki_device_profile_issue(const struct pki_device_profile *p,
					 EVP_PKEY *issuer_key,
					 const unsigned char *spki,
					 size_t spki_len, const char *device_id,
					 int64_t not_before, int64_t not_after,
					 unsigned char **der, size_t *der_len,
					 char serial_hex[PKI_SERIAL_HEX_MAX],
					 struct pki_error *err);

#endif /* FLEET_PKI_INT_H */
