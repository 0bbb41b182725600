/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store port: enrollment (core/enroll.h). An enrollment is three units of
 * work so that no lock is held while the ca signs: reserve one use of the
 * token (committed), then either record the device (committed) or release
 * the use again.
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
	int64_t not_before, not_after;
};

/*
 * Takes one use of the enrollment token with this hash if it is usable as
 * of now (not revoked, not expired, a use left), atomically: k uses give
 * exactly k reservations under any concurrency. STORE_OK (*out is the
 * token after the reservation), STORE_NOTFOUND (no usable token; ask
 * store_enroll_token_find why) or STORE_ERR.
 */
enum store_rc store_enroll_token_reserve(struct store *st, const char *sha256,
					 int64_t now, struct token *out);

/* The enrollment token with this hash, usable or not. */
enum store_rc store_enroll_token_find(struct store *st, const char *sha256,
				      struct token *out);

/*
 * Gives back a use taken by store_enroll_token_reserve (never above the
 * token's total), only through the storage session that took it
 * (store_session() right after the reservation). The reservation commits
 * without waiting for the flush or a standby; after a failover it may
 * not exist, and giving it back on the new server would add a use the
 * token never had. STORE_OK, STORE_CONFLICT (that session is gone: the
 * use stays spent, a token never gains one) or STORE_ERR.
 */
enum store_rc store_enroll_token_release(struct store *st, const char *token_id,
					 uint64_t session);

/*
 * Inserts the device, its certificate, the audit row and (idem not NULL)
 * the Idempotency-Key record in one unit of work. STORE_OK,
 * STORE_CONFLICT (the key was taken concurrently; nothing written) or
 * STORE_ERR.
 */
enum store_rc store_enroll_record(struct store *st, const struct enrollment *e,
				  const struct audit_entry *audit,
				  const struct idem_record *idem);

#endif
