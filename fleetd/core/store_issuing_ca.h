/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The issuing-CA registry and the CRLs per issuing CA in the store port
 * (migration 0009; docs/pki.md, "Issuing-CA rollover" and "CRLs").
 * Implemented by fleetd/db/issuing_ca.c; each function is one unit of
 * work. Key ids are pki_key_id's: 64 lowercase hex digits.
 */
#ifndef FLEETD_CORE_STORE_ISSUING_CA_H
#define FLEETD_CORE_STORE_ISSUING_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"
#include "core/store.h"
#include "core/store_certificates.h"

#define ISSUING_CA_ID_LEN 65

/*
 * Registers a rollover: old_id becomes "previous" (registered now as the
 * first CA when the registry is empty, and the certificates without an
 * issuer are its), new_id "current". STORE_CONFLICT when a previous CA
 * is still registered (an overlap in progress) or old_id is not the
 * current one. The audit row (pki.rotate-issuing) in the same unit.
 */
enum store_rc store_issuing_ca_rotate(struct store *st, const char *old_id,
				      const char *old_pem, const char *new_id,
				      const char *new_pem,
				      const struct audit_entry *audit);

/*
 * Retires the previous CA id when no active, unexpired certificate of it
 * remains; else STORE_CONFLICT and *active_left says how many. The audit
 * row (pki.retire-issuing) in the same unit. STORE_NOTFOUND when id is not
 * the registered previous CA.
 */
enum store_rc store_issuing_ca_retire(struct store *st, const char *id,
				      int64_t *active_left,
				      const struct audit_entry *audit);

/* What a per-CA CRL request needs, read in one snapshot. */
struct issuing_ca_crl_state {
	bool registry_empty; /* no rollover yet: the one CRL of crl.c */
	bool found; /* the CA asked for is registered */
	bool retired;
	char key_id[ISSUING_CA_ID_LEN]; /* the CA (resolved for "first") */
	struct crl_cached cached; /* der NULL when none */
	int64_t generation; /* the current revocation generation */
	int64_t now; /* the store's clock */
};

/* key_id "" means the first CA (the one whose certificates name
 * /pki/v1/crl). out->cached.der is malloc'd (crl_cached_clear). */
enum store_rc store_issuing_ca_crl_state(struct store *st, const char *key_id,
					 struct issuing_ca_crl_state *out);

/*
 * What the CRL of CA key_id must list (revoked and superseded, unexpired
 * certificates of that CA, plus those of its successor recorded within a
 * day of the successor's registration: see migration 0009), the
 * revocation generation and a new CRL number, in one snapshot.
 */
enum store_rc store_issuing_ca_crl_snapshot(struct store *st,
					    const char *key_id,
					    struct crl_entry **entries,
					    size_t *n, int64_t *generation,
					    uint64_t *number);

/* Stores a signed CRL of CA key_id unless a higher number is stored
 * (STORE_CONFLICT). */
enum store_rc store_issuing_ca_crl_save(struct store *st, const char *key_id,
					uint64_t number, int64_t generation,
					const unsigned char *der, size_t len,
					long validity_s);

#endif
