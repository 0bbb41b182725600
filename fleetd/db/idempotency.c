/* SPDX-License-Identifier: Apache-2.0 */
/* Idempotency-Key storage (db/idempotency.h). Runs on job threads. */
#include "db/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"

enum store_rc
store_idempotency_get(struct store *st, const char *actor, const char *key,
		      char request_sha256[SECRET_SHA256_HEX], int *status,
		      char **body)
{
	const char *params[2] = {actor, key};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum store_rc rc;
	char *text;

	if (conn == NULL)
		return STORE_ERR;
	res = db_query_prepared(
		conn,
		"SELECT request_sha256, status, body FROM "
		"idempotency_keys WHERE actor = $1 AND key = $2",
		2, params);
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
	char status_s[16];
	const char *params[5] = {rec->actor, rec->key, rec->request_sha256,
				 status_s, rec->body};
	PGresult *res;
	int rc;

	if (rec->body == NULL)
		return DB_ERR;
	snprintf(status_s, sizeof(status_s), "%d", rec->status);
	res = db_query_prepared(
		conn,
		"INSERT INTO idempotency_keys (actor, key, "
		"request_sha256, status, body) VALUES ($1, $2, $3, "
		"$4::int, $5) ON CONFLICT DO NOTHING",
		5, params);
	if (res == NULL)
		return DB_ERR;
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_CONFLICT;
	PQclear(res);
	return rc;
}
