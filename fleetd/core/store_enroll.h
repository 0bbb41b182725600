/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store port: enrollment (core/enroll.h). No lock is held while the ca
 * signs: core reads the token first (store_enroll_token_find, a plain
 * read that refuses what is already unusable), has the certificate
 * signed, and then records the device in ONE unit of work that also
 * takes the token's use. Nothing is reserved before signing, so there is
 * nothing to give back: a use is spent exactly when its device is
 * written, on whichever server commits it (docs/internals/enroll-rate.md,
 * "One reservation per batch").
 */
#ifndef FLEETD_CORE_STORE_ENROLL_H
#define FLEETD_CORE_STORE_ENROLL_H

#include <stdint.h>

#include "core/audit.h"
#include "core/idempotency.h"
#include "core/label_set.h"
#include "core/store.h"
#include "core/token.h"

/* What an enrollment writes: the device, its first certificate. */
struct enrollment {
	const char *device_id;
	const char *token_id; /* enrolled_with */
	const struct label_set *labels; /* already merged */
	const char *model; /* NULL when not given */
	const char *serial;
	const char *profile;
	const char *cert_serial; /* hex */
	const char *issuer; /* key id of the CA that signed it; NULL or ""
			     * when the signer did not say */
	int64_t not_before, not_after;
	int64_t now; /* the token must be usable as of now (epoch s) */
};

/* The enrollment token with this hash, usable or not. */
enum store_rc store_enroll_token_find(struct store *st, const char *sha256,
				      struct token *out);

/*
 * Takes one use of the token e->token_id if it is usable as of e->now
 * (not revoked, not expired, a use left) and inserts the device, its
 * certificate, the audit row and (idem not NULL) the Idempotency-Key
 * record, all in one unit of work: k uses give exactly k devices under
 * any concurrency. STORE_OK, STORE_NOTFOUND (the token has no use for it
 * any more; nothing written: ask store_enroll_token_find why),
 * STORE_CONFLICT (the key was taken concurrently; nothing written, no use
 * taken) or STORE_ERR.
 */
enum store_rc store_enroll_record(struct store *st, const struct enrollment *e,
				  const struct audit_entry *audit,
				  const struct idem_record *idem);

#endif
