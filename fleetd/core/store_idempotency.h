/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store port: Idempotency-Key records (core/idempotency.h). Writing one is
 * part of each creating store function (store_token_create,
 * store_enroll_record), never a call of its own.
 */
#ifndef FLEETD_CORE_STORE_IDEMPOTENCY_H
#define FLEETD_CORE_STORE_IDEMPOTENCY_H

#include "core/store.h"
#include "secret.h"

/*
 * The live record of (actor, key): STORE_OK with the request hash it was made
 * for, its status and body (*body malloc'd, caller frees), STORE_NOTFOUND
 * or STORE_ERR.
 */
enum store_rc store_idempotency_get(struct store *st, const char *actor,
				    const char *key,
				    char request_sha256[SECRET_SHA256_HEX],
				    int *status, char **body);

/*
 * Deletes at most limit records older than retention_s seconds, oldest
 * first, skipping rows another transaction holds (safe when several
 * instances sweep at once). *deleted: how many. STORE_OK or STORE_ERR.
 * A record past its retention is already treated as absent by the lookup;
 * the sweep only reclaims the space.
 */
enum store_rc store_idempotency_sweep(struct store *st, long retention_s,
				      long limit, long *deleted);

#endif
