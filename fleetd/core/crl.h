/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRL rule (DESIGN.md §4: revocation takes effect at once): the CRL
 * served at /pki/v1/crl lists every revocation committed before it was
 * read from the store. One cached CRL is shared by every fleetd instance;
 * it is served while fresh:
 *   - built from the current revocation generation (core/store_certificates.h),
 *   - and more than CRL_REFRESH_S before its nextUpdate;
 * otherwise it is re-signed (signer port) from one snapshot of the revoked
 * set, under the store's CRL lock so one instance signs at a time. Runs on
 * job threads (the signer call blocks).
 */
#ifndef FLEETD_CORE_CRL_H
#define FLEETD_CORE_CRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store_certificates.h"

struct store;
struct signer_client;

#define CRL_VALIDITY_S (7L * 86400) /* nextUpdate - thisUpdate */
#define CRL_REFRESH_S (3L * 86400) /* re-sign when less is left */

enum crl_rc {
	CRL_OK = 0,
	CRL_ERR_STORE, /* see store_unavailable() */
	CRL_ERR_SIGNER, /* the ca process is unavailable or refused */
	CRL_ERR_NOMEM,
};

/* The freshness rule: c was built from generation and has more than
 * CRL_REFRESH_S left at now (epoch seconds). */
bool crl_is_fresh(const struct crl_cached *c, int64_t generation, int64_t now);

/*
 * The current CRL as DER (*der malloc'd, owned by the caller): the cached
 * one while fresh, else a newly signed one. err (may be NULL) says why
 * not on CRL_ERR_SIGNER.
 */
enum crl_rc crl_current(struct store *st, struct signer_client *sc,
			unsigned char **der, size_t *len, char *err,
			size_t errlen);

#endif
