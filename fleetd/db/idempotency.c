/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotency-Key storage (db/idempotency.h). Lookups and inserts run on
 * job threads; the sweep runs on the campaign driver thread of the worker
 * that holds the driver lock (http/campaign_driver.c).
 *
 * A record lives idempotency_retention seconds (default 24 h, as Stripe
 * keeps keys). Past that, the key is free again: a lookup does not see
 * the record (and deletes it, so that the creating statement that follows
 * can insert the key again, whichever module writes it), an insert
 * replaces it, and the sweep deletes what nobody asked for again, in
 * bounded batches.
 */
#include "db/idempotency.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"

/* Set once per process before the job threads start. */
static _Atomic long idem_retention_s = DB_IDEM_RETENTION_DEFAULT;

void
db_idem_retention_set(long seconds)
{
	if (seconds > 0)
		atomic_store(&idem_retention_s, seconds);
}

long
db_idem_retention(void)
{
	return atomic_load(&idem_retention_s);
}

enum store_rc
store_idempotency_get(struct store *st, const char *actor, const char *key,
		      char request_sha256[SECRET_SHA256_HEX], int *status,
		      char **body)
{
	char retention[24];
	const char *params[3] = {actor, key, retention};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum store_rc rc;
	char *text;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(retention, sizeof(retention), "%ld", db_idem_retention());
	/* The DELETE and the SELECT see the same snapshot: the SELECT's
	 * own age test hides the expired row the DELETE removes. */
	res = db_query_prepared(
		conn,
		"WITH expired AS (DELETE FROM idempotency_keys WHERE actor = "
		"$1 AND key = $2 AND created_at < now() - $3::bigint * "
		"interval '1 second' RETURNING 1) "
		"SELECT request_sha256, status, body FROM "
		"idempotency_keys WHERE actor = $1 AND key = $2 AND "
		"created_at >= now() - $3::bigint * interval '1 second'",
		3, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) == 0) {
		rc = STORE_NOTFOUND;
	} else {
		text = strdup(PQgetvalue(res, 0, 2));
		rc = text ? STORE_OK : STORE_ERR;
		if (text != NULL) {
			snprintf(request_sha256, SECRET_SHA256_HEX, "%s",
				 PQgetvalue(res, 0, 0));
			*status = (int)db_int(res, 0, 1);
			*body = text;
		}
	}
	PQclear(res);
	return rc;
}

int
db_idem_insert(PGconn *conn, const struct idem_record *rec)
{
	char status_s[16], retention[24];
	const char *params[6] = {rec->actor, rec->key,	rec->request_sha256,
				 status_s,   rec->body, retention};
	PGresult *res;
	int rc;

	if (rec->body == NULL)
		return DB_ERR;
	snprintf(status_s, sizeof(status_s), "%d", rec->status);
	snprintf(retention, sizeof(retention), "%ld", db_idem_retention());
	/* A live record of the key is a conflict; an expired one (not yet
	 * swept) is replaced: the key is new again. */
	res = db_query_prepared(
		conn,
		"INSERT INTO idempotency_keys (actor, key, "
		"request_sha256, status, body) VALUES ($1, $2, $3, "
		"$4::int, $5) ON CONFLICT (actor, key) DO UPDATE SET "
		"request_sha256 = EXCLUDED.request_sha256, status = "
		"EXCLUDED.status, body = EXCLUDED.body, created_at = now() "
		"WHERE idempotency_keys.created_at < now() - $6::bigint * "
		"interval '1 second'",
		6, params);
	if (res == NULL)
		return DB_ERR;
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_CONFLICT;
	PQclear(res);
	return rc;
}

enum store_rc
store_idempotency_sweep(struct store *st, long retention_s, long limit,
			long *deleted)
{
	char retention[24], lim[24];
	const char *params[2] = {retention, lim};
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL || retention_s <= 0 || limit <= 0)
		return STORE_ERR;
	snprintf(retention, sizeof(retention), "%ld", retention_s);
	snprintf(lim, sizeof(lim), "%ld", limit);
	/* One short transaction per batch, oldest first (the created_at
	 * index); rows another sweeper or a lookup holds are skipped, so
	 * several instances sweeping at once neither wait nor delete a row
	 * twice. */
	res = db_query_prepared(
		conn,
		"DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM "
		"idempotency_keys WHERE created_at < now() - $1::bigint * "
		"interval '1 second' ORDER BY created_at LIMIT $2::bigint "
		"FOR UPDATE SKIP LOCKED)",
		2, params);
	if (res == NULL)
		return STORE_ERR;
	*deleted = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return STORE_OK;
}
