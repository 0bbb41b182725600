/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read side of artifacts on PostgreSQL (core/store_artifact_read.h):
 * the device listener's access check and chunk reads. Runs on the
 * channel's job threads. Every parameter is bound; chunks are read in
 * binary (no hex decoding of a megabyte per chunk).
 */
#include "core/store_artifact_read.h"
#include "db/query.h"
#include "db/store.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum store_rc
store_artifact_access(struct store *st, const char *device_id,
		      const char *serial, const char *sha256,
		      enum artifact_access *access, struct artifact_blob *blob)
{
	PGconn *conn = store_conn(st);
	const char *params[3] = {device_id, serial, sha256};
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	/* One statement, one snapshot: the session check of
	 * store_presence_open (active device, its own certificate, not
	 * revoked, and here not superseded either), then a deployment of
	 * this device whose artifact is this complete blob. */
	res = db_query(conn,
		       "SELECT EXISTS (SELECT 1 FROM devices d "
		       "JOIN certificates c ON c.device_id = d.id "
		       "WHERE d.id = $1::uuid AND d.status = 'active' "
		       "AND c.serial = $2 AND c.status = 'active'), "
		       "b.size, b.chunk_size "
		       "FROM (SELECT 1) one LEFT JOIN artifact_blobs b "
		       "ON b.sha256 = $3 AND b.complete AND EXISTS ("
		       "SELECT 1 FROM deployment_devices dd "
		       "JOIN deployments dp ON dp.id = dd.deployment_id "
		       "JOIN artifacts a ON a.id = dp.artifact_id "
		       "WHERE dd.device_id = $1::uuid AND a.sha256 = $3)",
		       3, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_ERR;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		*access = ARTIFACT_DEVICE_REFUSED;
	} else if (PQgetisnull(res, 0, 1)) {
		*access = ARTIFACT_NOT_OFFERED;
	} else {
		blob->size = db_int(res, 0, 1);
		blob->chunk_size = db_int(res, 0, 2);
		*access = blob->size > 0 && blob->chunk_size > 0
				  ? ARTIFACT_ALLOWED
				  : ARTIFACT_NOT_OFFERED;
	}
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_artifact_chunk(struct store *st, const char *sha256, int64_t idx,
		     unsigned char *buf, size_t cap, size_t *len)
{
	PGconn *conn = store_conn(st);
	char idxtext[32];
	const char *params[2] = {sha256, idxtext};
	PGresult *res;
	size_t n;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(idxtext, sizeof(idxtext), "%lld", (long long)idx);
	res = PQexecParams(conn,
			   "SELECT c.data FROM artifact_chunks c "
			   "JOIN artifact_blobs b ON b.sha256 = c.sha256 "
			   "WHERE c.sha256 = $1 AND c.idx = $2::integer "
			   "AND b.complete",
			   2, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("postgresql query failed: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return STORE_ERR;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	n = (size_t)PQgetlength(res, 0, 0);
	if (n > cap) {
		PQclear(res);
		return STORE_CONFLICT;
	}
	memcpy(buf, PQgetvalue(res, 0, 0), n);
	*len = n;
	PQclear(res);
	return STORE_OK;
}
