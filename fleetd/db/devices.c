/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device queries: documents, lists with selectors, enrollment inserts,
 * label patches and decommissioning. Runs on job threads. WHERE fragments
 * come from the selector translator and hold only placeholders.
 */
#include "db/devices.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db/certificates.h"

#define DEVICE_DOC                                                          \
	"json_build_object('id', d.id, 'status', d.status, "                \
	"'labels', d.labels, 'online', " DB_DEVICE_COL_ONLINE ", "          \
	"'last_seen', fleet_ts(coalesce(s.last_seen, d.last_seen)), "       \
	"'connected_at', fleet_ts(s.connected_at), 'model', d.model, "      \
	"'serial', d.serial, 'fw_version', d.fw_version, "                  \
	"'agent_version', d.agent_version, 'inventory', d.inventory, "      \
	"'created_at', fleet_ts(d.created_at), "                            \
	"'decommissioned_at', fleet_ts(d.decommissioned_at), "              \
	"'revision', d.revision, 'certificate', (SELECT "                   \
	"json_build_object('serial', c.serial, 'not_before', "              \
	"fleet_ts(c.not_before), 'not_after', fleet_ts(c.not_after), "      \
	"'status', c.status) FROM certificates c WHERE c.device_id = d.id " \
	"ORDER BY c.status = 'active' DESC, c.created_at DESC LIMIT 1))::text"

#define DEVICE_FROM \
	" FROM devices d LEFT JOIN device_sessions s ON s.device_id = d.id "

int
db_device_get(PGconn *conn, const char *id, long heartbeat_s, json_t **out,
	      int64_t *revision)
{
	char hb[24];
	const char *params[2] = {hb, id};
	json_t *doc = NULL;
	int rc;

	snprintf(hb, sizeof(hb), "%ld", heartbeat_s);
	rc = db_query_doc(
		conn, "SELECT " DEVICE_DOC DEVICE_FROM "WHERE d.id = $2::uuid",
		2, params, &doc);
	if (rc != DB_OK)
		return rc;
	if (revision != NULL)
		*revision = (int64_t)json_integer_value(
			json_object_get(doc, "revision"));
	*out = doc;
	return DB_OK;
}

int
db_device_list(PGconn *conn, long heartbeat_s, const char *where,
	       const char *const *params, int nparams, int online,
	       const struct db_page *page, json_t **items,
	       char next[DB_CURSOR_MAX])
{
	char hb[24], limit[16];
	const char **all = NULL;
	struct buf sql;
	int i, rc = DB_ERR;

	buf_init(&sql, 128 * 1024);
	all = calloc((size_t)nparams + 3, sizeof(*all));
	if (all == NULL)
		goto out;
	snprintf(hb, sizeof(hb), "%ld", heartbeat_s);
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	all[0] = hb;
	all[1] = limit;
	all[2] = page->after;
	for (i = 0; i < nparams; i++)
		all[3 + i] = params[i];
	if (buf_printf(&sql,
		       "SELECT " DEVICE_DOC
		       ", fleet_cursor(d.created_at, d.id)" DEVICE_FROM
		       "WHERE ($3::text IS NULL OR "
		       "(d.created_at, d.id) > (fleet_cursor_ts(split_part("
		       "$3, ' ', 1)::bigint), split_part($3, ' ', 2)::uuid)) "
		       "AND %s%s ORDER BY d.created_at, d.id LIMIT $2::int",
		       where,
		       online < 0 ? ""
		       : online	  ? " AND " DB_DEVICE_COL_ONLINE
				  : " AND NOT " DB_DEVICE_COL_ONLINE) != 0)
		goto out;
	rc = db_page_query(conn, sql.data, nparams + 3, all, page, items, next);
out:
	buf_free(&sql);
	free(all);
	return rc;
}

int
db_device_enroll(PGconn *conn, const struct device_enrollment *e)
{
	char nb[24], na[24];
	const char *params[12];
	PGresult *res;

	snprintf(nb, sizeof(nb), "%" PRId64, e->not_before);
	snprintf(na, sizeof(na), "%" PRId64, e->not_after);
	params[0] = e->id;
	params[1] = e->token_labels_json;
	params[2] = e->request_labels_json;
	params[3] = e->model;
	params[4] = e->serial;
	params[5] = e->profile;
	params[6] = e->token_id;
	params[7] = e->cert_serial;
	params[8] = nb;
	params[9] = na;
	params[10] = e->audit_actor;
	params[11] = e->audit_details_json;
	/* The certificate's FK is checked at the end of the statement, when
	 * the device row of the first CTE exists. */
	res = db_query(
		conn,
		"WITH dev AS (INSERT INTO devices (id, labels, model, serial, "
		"profile, enrolled_with) VALUES ($1::uuid, $3::jsonb || "
		"$2::jsonb, $4, $5, $6, $7::uuid) RETURNING id), "
		"cert AS (INSERT INTO certificates (serial, device_id, "
		"not_before, not_after) SELECT $8, id, "
		"to_timestamp($9::bigint), to_timestamp($10::bigint) FROM dev "
		"RETURNING serial) "
		"INSERT INTO audit_log (actor, action, target, details) "
		"SELECT $11, 'device.enroll', $1, $12::jsonb FROM cert",
		12, params);
	if (res == NULL)
		return DB_ERR;
	PQclear(res);
	return DB_OK;
}

/* Why an UPDATE ... WHERE id AND status AND revision matched nothing. */
static int
device_refusal(PGconn *conn, const char *id, int64_t if_match)
{
	const char *params[1] = {id};
	PGresult *res;
	int rc;

	res = db_query(
		conn,
		"SELECT status, revision FROM devices WHERE id = $1::uuid", 1,
		params);
	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) == 0)
		rc = DB_NOTFOUND;
	else if (if_match >= 0 &&
		 strtoll(PQgetvalue(res, 0, 1), NULL, 10) != if_match)
		rc = DB_PRECONDITION;
	else
		rc = DB_CONFLICT;
	PQclear(res);
	return rc;
}

int
db_device_patch_labels(PGconn *conn, const char *id, int64_t if_match,
		       const char *patch_json)
{
	char rev[24];
	const char *params[3] = {id, if_match >= 0 ? rev : NULL, patch_json};
	PGresult *res;
	int n;

	snprintf(rev, sizeof(rev), "%" PRId64, if_match);
	/* Labels never hold nulls, so stripping them applies the removals
	 * of the merge patch (RFC 7386). */
	res = db_query(
		conn,
		"UPDATE devices SET labels = jsonb_strip_nulls(labels || "
		"$3::jsonb), revision = revision + 1 "
		"WHERE id = $1::uuid AND status = 'active' AND "
		"($2::bigint IS NULL OR revision = $2::bigint)",
		3, params);
	if (res == NULL)
		return DB_ERR;
	n = (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n == 1 ? DB_OK : device_refusal(conn, id, if_match);
}

int
db_device_decommission(PGconn *conn, const char *id, int64_t if_match,
		       json_t **revoked)
{
	char rev[24];
	const char *params[2] = {id, if_match >= 0 ? rev : NULL};
	PGresult *res;
	int n;

	snprintf(rev, sizeof(rev), "%" PRId64, if_match);
	res = db_query(conn,
		       "UPDATE devices SET status = 'decommissioned', "
		       "decommissioned_at = now(), revision = revision + 1 "
		       "WHERE id = $1::uuid AND status = 'active' AND "
		       "($2::bigint IS NULL OR revision = $2::bigint)",
		       2, params);
	if (res == NULL)
		return DB_ERR;
	n = (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if (n != 1)
		return device_refusal(conn, id, if_match);
	if (db_certificates_revoke_device(conn, id, CRL_REASON_CESSATION,
					  revoked) != DB_OK)
		return DB_ERR;
	/* The device channel closes the device's session on this. */
	res = db_query(conn, "SELECT pg_notify('fleet_devices', $1)", 1,
		       params);
	if (res == NULL)
		return DB_ERR;
	PQclear(res);
	return DB_OK;
}
