/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotency-Key records for creating POSTs: (actor, key) -> the request's
 * SHA-256 and the first answer.
 */
#ifndef FLEETD_DB_IDEMPOTENCY_H
#define FLEETD_DB_IDEMPOTENCY_H

#include <libpq-fe.h>

#include "db/query.h"

/*
 * Looks up a key. DB_NOTFOUND when unused; DB_OK with the stored answer
 * (*body malloc'd, caller frees) when the request hash matches;
 * DB_CONFLICT when the key was used for another request.
 */
int db_idempotency_get(PGconn *conn, const char *actor, const char *key,
		       const char *request_sha256, int *status, char **body);

/* Records the answer inside the creating transaction. DB_OK, DB_CONFLICT
 * when a concurrent request took the key first, or DB_ERR. */
int db_idempotency_put(PGconn *conn, const char *actor, const char *key,
		       const char *request_sha256, int status,
		       const char *body);

#endif
