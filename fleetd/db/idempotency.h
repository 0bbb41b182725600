/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotency-Key records on PostgreSQL: (actor, key) -> the request's
 * SHA-256 and the first answer. Implements core/store_idempotency.h; the
 * creating store functions record a key with db_idem_insert.
 */
#ifndef FLEETD_DB_IDEMPOTENCY_H
#define FLEETD_DB_IDEMPOTENCY_H

#include <libpq-fe.h>

#include "core/idempotency.h"
#include "core/store_idempotency.h"
#include "db/query.h"

/* Records rec inside the caller's transaction. DB_OK, DB_CONFLICT when
 * the key is already recorded (a concurrent request), or DB_ERR. */
int db_idem_insert(PGconn *conn, const struct idem_record *rec);

#endif
