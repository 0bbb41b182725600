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
 * The record of (actor, key): STORE_OK with the request hash it was made
 * for, its status and body (*body malloc'd, caller frees), STORE_NOTFOUND
 * or STORE_ERR.
 */
enum store_rc store_idempotency_get(struct store *st, const char *actor,
				    const char *key,
				    char request_sha256[SECRET_SHA256_HEX],
				    int *status, char **body);

#endif
