/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Devices on PostgreSQL, the adapter of core/store_devices.h. Runs on job
 * threads. Every store function is one transaction that writes its audit
 * row with its change; WHERE fragments come from db/selector_sql.c and
 * hold only placeholders.
 */
#include "db/devices.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db/certificates.h"
#include "db/db.h"
#include "db/query.h"
#include "db/selector_sql.h"
#include "db/store.h"

/*
 * The SQL mirror of device_online() (core/device.c), the one definition
 * of presence: a session row refreshed less than $1 seconds ago. The two
 * must agree; test_devices.sh (selector_contract) checks them on both
 * sides of the boundary.
 */
#define DB_DEVICE_ONLINE_SQL                                     \
	"coalesce(s.last_seen > now() - $1::double precision * " \
	"interval '1 second', false)"

/* Placeholders of a selector's WHERE fragment start after
 * $1 heartbeat, $2 limit, $3 cursor. */
#define DB_DEVICE_FIRST_PARAM 4

static const struct selector_columns device_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = DB_DEVICE_ONLINE_SQL,
	.labels = "d.labels",
};

/* Epoch seconds of a timestamptz column. */
#define EPOCH(x) "floor(extract(epoch FROM " x "))::bigint"

/* The columns read_device() parses, in this order. The session age is
 * clamped at 0: a row refreshed by a transaction that started after this
 * one is as fresh as can be (and online on both sides of the rule). */
/* clang-format off */
#define DEVICE_COLS \
	"d.id::text, d.status, d.labels::text, d.model, d.serial, " \
	"d.fw_version, d.agent_version, d.inventory::text, " \
	EPOCH("d.created_at") ", " \
	EPOCH("d.decommissioned_at") ", " \
	EPOCH("coalesce(s.last_seen, d.last_seen)") ", " \
	EPOCH("s.connected_at") ", " \
	"CASE WHEN s.device_id IS NULL THEN -1 ELSE greatest(0, " \
	"floor(extract(epoch FROM now() - s.last_seen) * 1000000))::bigint " \
	"END, d.revision, c.serial, " \
	EPOCH("c.not_before") ", " EPOCH("c.not_after") ", c.status"
/* clang-format on */

#define DEVICE_FROM                                                          \
	" FROM devices d LEFT JOIN device_sessions s ON s.device_id = d.id " \
	"LEFT JOIN LATERAL (SELECT serial, not_before, not_after, status "   \
	"FROM certificates WHERE device_id = d.id ORDER BY status = "        \
	"'active' DESC, created_at DESC LIMIT 1) c ON true "

static int
read_device(const PGresult *res, int row, struct device *d)
{
	int failed = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", PQgetvalue(res, row, 0));
	d->active = strcmp(PQgetvalue(res, row, 1), "active") == 0;
	if (db_labels_parse(PQgetvalue(res, row, 2), &d->labels) != STORE_OK)
		failed = 1;
	d->model = db_text(res, row, 3, &failed);
	d->serial = db_text(res, row, 4, &failed);
	d->fw_version = db_text(res, row, 5, &failed);
	d->agent_version = db_text(res, row, 6, &failed);
	d->inventory_json = db_text(res, row, 7, &failed);
	d->created_at = db_int(res, row, 8);
	d->decommissioned_at = db_int(res, row, 9);
	d->last_seen = db_int(res, row, 10);
	d->connected_at = db_int(res, row, 11);
	d->session_age_us = db_int(res, row, 12);
	d->revision = db_int(res, row, 13);
	if (!PQgetisnull(res, row, 14)) {
		snprintf(d->cert.serial, sizeof(d->cert.serial), "%s",
			 PQgetvalue(res, row, 14));
		d->cert.not_before = db_int(res, row, 15);
		d->cert.not_after = db_int(res, row, 16);
		snprintf(d->cert.status, sizeof(d->cert.status), "%s",
			 PQgetvalue(res, row, 17));
	}
	if (failed) {
		device_clear(d);
		return -1;
	}
	return 0;
}

enum store_rc
store_device_get(struct store *st, const char *id, struct device *out)
{
	const char *params[1] = {id};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum store_rc rc = STORE_ERR;

	if (conn == NULL)
		return STORE_ERR;
	res = db_query(
		conn, "SELECT " DEVICE_COLS DEVICE_FROM "WHERE d.id = $1::uuid",
		1, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) == 0)
		rc = STORE_NOTFOUND;
	else if (read_device(res, 0, out) == 0)
		rc = STORE_OK;
	PQclear(res);
	return rc;
}

enum store_rc
store_device_list(struct store *st, const struct selector *sel,
		  long heartbeat_timeout_s, const struct page *page,
		  struct device **items, size_t *n, char next[PAGE_CURSOR_MAX])
{
	char hb[24], limit[16], err[160];
	const char **all = NULL;
	struct selector_sql q;
	struct device *list = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct buf sql;
	enum store_rc rc = STORE_ERR;
	int i, rows, count = 0;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 128 * 1024);
	if (conn == NULL)
		goto out;
	if (selector_to_sql(sel, &device_columns, DB_DEVICE_FIRST_PARAM, &q,
			    err, sizeof(err)) != 0)
		goto out;
	all = calloc(q.nparams + 3, sizeof(*all));
	if (all == NULL)
		goto out;
	snprintf(hb, sizeof(hb), "%ld", heartbeat_timeout_s);
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	all[0] = hb;
	all[1] = limit;
	all[2] = page->after;
	for (i = 0; i < (int)q.nparams; i++)
		all[3 + i] = q.params[i];
	if (buf_printf(
		    &sql,
		    "SELECT " DEVICE_COLS
		    ", fleet_cursor(d.created_at, d.id), " DB_DEVICE_ONLINE_SQL
			    DEVICE_FROM "WHERE ($3::text IS NULL OR "
		    "(d.created_at, d.id) > (fleet_cursor_ts(split_part("
		    "$3, ' ', 1)::bigint), split_part($3, ' ', 2)::uuid)) "
		    "AND %s ORDER BY d.created_at, d.id LIMIT $2::int",
		    q.where) != 0)
		goto out;
	res = db_query(conn, sql.data, (int)q.nparams + 3, all);
	if (res == NULL)
		goto out;
	rows = PQntuples(res);
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL)
		goto out;
	for (i = 0; i < rows && i < page->limit; i++) {
		if (read_device(res, i, &list[i]) != 0)
			goto out;
		list[i].store_online = strcmp(PQgetvalue(res, i, 19), "t") == 0;
		count++;
	}
	next[0] = '\0';
	if (rows > page->limit)
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 18));
	*items = list;
	*n = (size_t)count;
	list = NULL;
	rc = STORE_OK;
out:
	devices_free(list, (size_t)count);
	PQclear(res);
	buf_free(&sql);
	free(all);
	selector_sql_free(&q);
	return rc;
}

/* One transaction of a store function. */
static int
tx(PGconn *conn, const char *what)
{
	return db_exec(conn, what) == 0 ? 0 : -1;
}

static enum store_rc
rollback(PGconn *conn, enum store_rc rc)
{
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

static int
audit_insert(PGconn *conn, const char *actor, const char *action,
	     const char *target, const json_t *details)
{
	char *text = json_dumps(details, JSON_COMPACT);
	const char *params[4] = {actor, action, target, text};
	PGresult *res;

	if (text == NULL)
		return -1;
	res = db_query(conn,
		       "INSERT INTO audit_log (actor, action, target, details) "
		       "VALUES ($1, $2, $3, $4::jsonb)",
		       4, params);
	free(text);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Why an UPDATE ... WHERE id AND status AND revision matched nothing. */
static enum store_rc
device_refusal(PGconn *conn, const char *id, int64_t if_match)
{
	const char *params[1] = {id};
	PGresult *res;
	enum store_rc rc;

	res = db_query(
		conn,
		"SELECT status, revision FROM devices WHERE id = $1::uuid", 1,
		params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) == 0)
		rc = STORE_NOTFOUND;
	else if (strcmp(PQgetvalue(res, 0, 0), "active") != 0)
		rc = STORE_CONFLICT;
	else if (if_match >= 0 &&
		 strtoll(PQgetvalue(res, 0, 1), NULL, 10) != if_match)
		rc = STORE_PRECONDITION;
	else
		rc = STORE_CONFLICT;
	PQclear(res);
	return rc;
}

/* "UPDATE ... WHERE" matched one row? */
static int
updated_one(PGresult *res)
{
	return strtol(PQcmdTuples(res), NULL, 10) == 1;
}

static json_t *
labels_object(const struct label_set *labels)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o != NULL && i < labels->n; i++)
		if (json_object_set_new(o, labels->items[i].key,
					json_string(labels->items[i].value)) !=
		    0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

enum store_rc
store_device_set_labels(struct store *st, const char *id, int64_t revision,
			const struct label_set *labels,
			const struct label_patch *patch, const char *actor)
{
	char rev[24], *text = NULL;
	const char *params[3] = {id, rev, NULL};
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	json_t *obj = NULL, *details = NULL, *pj = NULL;
	enum store_rc rc = STORE_ERR;
	size_t i;

	if (conn == NULL)
		return STORE_ERR;
	obj = labels_object(labels);
	pj = labels_object(&patch->set);
	for (i = 0; pj != NULL && i < patch->nremove; i++)
		json_object_set_new(pj, patch->remove[i], json_null());
	details = pj ? json_pack("{s:O}", "labels", pj) : NULL;
	text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (text == NULL || details == NULL)
		goto out;
	snprintf(rev, sizeof(rev), "%" PRId64, revision);
	params[2] = text;
	if (tx(conn, "BEGIN") != 0)
		goto out;
	res = db_query(conn,
		       "UPDATE devices SET labels = $3::jsonb, "
		       "revision = revision + 1 WHERE id = $1::uuid AND "
		       "status = 'active' AND revision = $2::bigint",
		       3, params);
	if (res == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	if (!updated_one(res)) {
		rc = rollback(conn, device_refusal(conn, id, revision));
		goto out;
	}
	if (audit_insert(conn, actor, "device.update", id, details) != 0) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	rc = tx(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
out:
	PQclear(res);
	free(text);
	json_decref(obj);
	json_decref(pj);
	json_decref(details);
	return rc;
}

enum store_rc
store_device_decommission(struct store *st, const char *id, int64_t if_match,
			  int reason, const char *actor)
{
	char rev[24];
	const char *params[2] = {id, if_match >= 0 ? rev : NULL};
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	json_t *revoked = NULL, *details = NULL;
	enum store_rc rc = STORE_ERR;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(rev, sizeof(rev), "%" PRId64, if_match);
	if (tx(conn, "BEGIN") != 0)
		return STORE_ERR;
	res = db_query(conn,
		       "UPDATE devices SET status = 'decommissioned', "
		       "decommissioned_at = now(), revision = revision + 1 "
		       "WHERE id = $1::uuid AND status = 'active' AND "
		       "($2::bigint IS NULL OR revision = $2::bigint)",
		       2, params);
	if (res == NULL)
		return rollback(conn, STORE_ERR);
	if (!updated_one(res)) {
		PQclear(res);
		return rollback(conn, device_refusal(conn, id, if_match));
	}
	PQclear(res);
	if (db_certificates_revoke_device(conn, id, reason, &revoked) != DB_OK)
		return rollback(conn, STORE_ERR);
	details = json_pack("{s:o, s:i}", "revoked_certificates", revoked,
			    "reason", reason);
	if (details == NULL || audit_insert(conn, actor, "device.decommission",
					    id, details) != 0) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	/* The device channel closes the device's sessions on this and
	 * reloads its revoked-serial set. */
	res = db_query(conn, "SELECT pg_notify('fleet_devices', $1)", 1,
		       params);
	if (res == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	PQclear(res);
	rc = tx(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
out:
	json_decref(details);
	return rc;
}
