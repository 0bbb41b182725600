/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signer port: how fleetd/core asks for certificates and CRLs without
 * knowing the ca process. ca/signer_client.c implements it over the
 * socketpair to the ca process (the only holder of the issuing-CA key);
 * the core unit tests link a fake. Calls block: job threads only.
 */
#ifndef FLEETD_CORE_SIGNER_PORT_H
#define FLEETD_CORE_SIGNER_PORT_H

#include <stddef.h>
#include <stdint.h>

/* Opaque here; defined by the adapter. */
struct signer_client;

enum signer_status {
	SIGNER_OK = 0,
	SIGNER_REJECTED, /* policy refused the request: a 4xx */
	SIGNER_UNAVAILABLE, /* the ca process is down or timed out: a 503 */
};

struct signer_issued {
	char *cert_pem; /* malloc'd; free with signer_issued_free() */
	char serial[64]; /* hex */
	int64_t not_before; /* epoch seconds */
	int64_t not_after;
	char issuer[65]; /* key id of the issuing CA that signed it, or "" */
};

struct signer_revoked {
	const char *serial; /* hex */
	int64_t revoked_at;
	int reason; /* RFC 5280 CRLReason */
};

/* Signs a device certificate for device_id from csr_pem (re-checked
 * against policy by the ca). out filled on SIGNER_OK; err says why not. */
enum signer_status signer_issue_device(struct signer_client *sc,
				       const char *csr_pem, size_t csr_len,
				       const char *device_id, long validity_s,
				       struct signer_issued *out, char *err,
				       size_t errlen);

/* out_der is malloc'd, owned by the caller. */
enum signer_status signer_sign_crl(struct signer_client *sc,
				   const struct signer_revoked *revoked,
				   size_t n, uint64_t crl_number,
				   long next_update_s, unsigned char **out_der,
				   size_t *out_len, char *err, size_t errlen);

/* The CRL of one issuing CA, named by key id (hex SHA-256 of its
 * SubjectPublicKeyInfo; "" or NULL: the CA that issues now). The list may
 * hold any number of entries up to 2,000,000 (it travels in a memfd, not
 * in a record). SIGNER_REJECTED when the ca holds no CA of that key id. */
enum signer_status signer_sign_crl_for(struct signer_client *sc,
				       const char *issuer,
				       const struct signer_revoked *revoked,
				       size_t n, uint64_t crl_number,
				       long next_update_s,
				       unsigned char **out_der, size_t *out_len,
				       char *err, size_t errlen);

/* Whether the ca process answers (readiness): SIGNER_OK, or
 * SIGNER_UNAVAILABLE within about a second with err saying why. Nothing
 * is signed and the ca logs nothing. */
enum signer_status signer_ping(struct signer_client *sc, char *err,
			       size_t errlen);

/* Frees what out holds; accepts an empty struct. */
void signer_issued_free(struct signer_issued *issued);

#endif
