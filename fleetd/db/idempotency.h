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

/* How long a record lives unless configured (idempotency_retention). */
#define DB_IDEM_RETENTION_DEFAULT 86400L

/* The retention of this process's records, in seconds (> 0; others are
 * ignored). Call before the job threads start. */
void db_idem_retention_set(long seconds);
long db_idem_retention(void);

/* Records rec inside the caller's transaction. DB_OK (also when an
 * expired record of the key was replaced), DB_CONFLICT when the key is
 * recorded and live (a concurrent request), or DB_ERR. */
int db_idem_insert(PGconn *conn, const struct idem_record *rec);

#endif
