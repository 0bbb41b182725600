/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRLs per issuing CA (docs/pki.md, "CRLs"): after an issuing-CA rollover
 * each CA has its own CRL, listing the certificates it issued, signed by
 * it (the ca process holds the previous CA's key for that until the CA
 * is retired). The freshness rule and the locking are crl.c's: built from
 * the current revocation generation and more than CRL_REFRESH_S before
 * nextUpdate, re-signed under the store's CRL lock. A retired CA's last
 * CRL is served as stored (its key is gone). Runs on API job threads.
 */
#ifndef FLEETD_CORE_ISSUING_CA_H
#define FLEETD_CORE_ISSUING_CA_H

#include <stdbool.h>
#include <stddef.h>

struct store;
struct signer_client;

/* A key id as pki_key_id writes it (64 lowercase hex digits)? */
bool issuing_ca_id_valid(const char *id);

enum issuing_ca_crl_rc {
	ISSUING_CA_CRL_OK = 0,
	ISSUING_CA_CRL_NO_ROLLOVER, /* registry empty: serve crl_current() */
	ISSUING_CA_CRL_NOT_FOUND, /* no such CA (or retired without a CRL) */
	ISSUING_CA_CRL_ERR_STORE,
	ISSUING_CA_CRL_ERR_SIGNER,
	ISSUING_CA_CRL_ERR_NOMEM,
};

/* The CRL of CA key_id ("" = the first CA), DER (*der malloc'd). */
enum issuing_ca_crl_rc issuing_ca_crl(struct store *st,
				      struct signer_client *sc,
				      const char *key_id, unsigned char **der,
				      size_t *len, char *err, size_t errlen);

#endif
