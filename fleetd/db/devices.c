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

/*
 * The same rule for selectors, on the devices row (migration 0021): the
 * device has a session row (in_session, which devices_online_idx holds
 * in the list's order), and session_seen, the row's last_seen rounded
 * down to its minute, says it was seen within the timeout;
 * only a device in the 60-second band below the boundary has its session
 * row looked up. So "online" with other terms is a filter of the rows a
 * scan walks, not a session join per device (device-list.md). The
 * coalesce keeps the lookup from running for a NULL session_seen, and
 * "!online" (selector_sql.c wraps it in NOT coalesce) takes the devices
 * without a session.
 */
#define DB_DEVICE_ONLINE_SEL_SQL                                           \
	"d.in_session AND (d.session_seen > now() - $1::double precision " \
	"* interval '1 second' OR (coalesce(d.session_seen > now() - "     \
	"($1::double precision + 60) * interval '1 second', false) AND "   \
	"EXISTS (SELECT 1 FROM device_sessions s1 WHERE s1.device_id = "   \
	"d.id AND s1.last_seen > now() - $1::double precision * "          \
	"interval '1 second')))"

static const struct selector_columns device_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = DB_DEVICE_ONLINE_SEL_SQL,
	.status = "d.status",
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
	EPOCH("c.not_before") ", " EPOCH("c.not_after") ", c.status, s.peer, " \
	"coalesce(d.keyset_version, 0)"
/* clang-format on */

/* The number of DEVICE_COLS: lists read their extra columns after them. */
#define DEVICE_NCOLS 20

#define DEVICE_JOINS                                                       \
	"LEFT JOIN device_sessions s ON s.device_id = d.id "               \
	"LEFT JOIN LATERAL (SELECT serial, not_before, not_after, status " \
	"FROM certificates WHERE device_id = d.id ORDER BY status = "      \
	"'active' DESC, created_at DESC LIMIT 1) c ON true "

#define DEVICE_FROM " FROM devices d " DEVICE_JOINS

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
	d->address = db_text(res, row, 18, &failed);
	d->keyset_version = db_int(res, row, 19);
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

/* The sort key of a list as a timestamptz expression over DEVICE_FROM;
 * times a device does not have sort as the epoch (oldest). */
static const char *
sort_expr(const struct device_sort *sort)
{
	switch (sort != NULL ? sort->key : DEVICE_SORT_CREATED) {
	case DEVICE_SORT_LAST_SEEN:
		return "coalesce(s.last_seen, d.last_seen, "
		       "'epoch'::timestamptz)";
	case DEVICE_SORT_CERT_EXPIRY:
		return "coalesce(c.not_after, 'epoch'::timestamptz)";
	case DEVICE_SORT_CREATED:
		break;
	}
	return "d.created_at";
}

/*
 * The count of a list as a scalar subquery: every match when cap <= 0,
 * else at most cap + 1 of them (more than cap: "more than cap match").
 * The LIMIT lets PostgreSQL stop at cap + 1 rows, walking the table or
 * an index instead of collecting every match first.
 */
static int
count_sql(struct buf *sql, const struct selector_sql *q, int64_t cap)
{
	if (cap <= 0)
		return buf_printf(sql,
				  "(SELECT count(*) FROM devices d LEFT JOIN "
				  "device_sessions s ON s.device_id = d.id "
				  "WHERE %s)",
				  q->where);
	return buf_printf(sql,
			  "(SELECT count(*) FROM (SELECT FROM devices d LEFT "
			  "JOIN device_sessions s ON s.device_id = d.id "
			  "WHERE %s LIMIT %" PRId64 ") m)",
			  q->where, cap + 1);
}

/* How many devices the WHERE fragment matches, up to cap (for an empty
 * page). */
static enum store_rc
count_matches(PGconn *conn, const struct selector_sql *q, const char **all,
	      int64_t cap, int64_t *total)
{
	struct buf sql;
	PGresult *res = NULL;
	enum store_rc rc = STORE_ERR;

	buf_init(&sql, 128 * 1024);
	/* $1..$3 may be unused here but are typed, so the numbering
	 * holds. */
	if (buf_printf(&sql, "SELECT ") != 0 || count_sql(&sql, q, cap) != 0 ||
	    buf_printf(&sql, ", $1::double precision, $2::int, $3::text") != 0)
		goto out;
	res = db_query(conn, sql.data, (int)q->nparams + 3, all);
	if (res == NULL)
		goto out;
	*total = db_int(res, 0, 0);
	rc = STORE_OK;
out:
	PQclear(res);
	buf_free(&sql);
	return rc;
}

/*
 * The list of core/store_devices.h. A positive count_max bounds the
 * count (the API's default, api/devices.c); the count and the page are
 * one snapshot either way.
 */
enum store_rc
store_device_list(struct store *st, const struct selector *sel,
		  long heartbeat_timeout_s, const struct device_sort *sort,
		  const struct page *page, struct device **items, size_t *n,
		  char next[PAGE_CURSOR_MAX], int64_t count_max, int64_t *total)
{
	char hb[24], limit[16], err[160];
	const char **all = NULL;
	const char *key = sort_expr(sort);
	bool desc = sort != NULL && sort->desc;
	bool by_cert = sort != NULL && sort->key == DEVICE_SORT_CERT_EXPIRY;
	struct selector_sql q;
	struct device *list = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct buf sql;
	enum store_rc rc = STORE_ERR;
	int64_t cap = count_max;
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
	/*
	 * One statement, so the total and the page are one snapshot. Unless
	 * the sort key is the certificate's, the page's ids are chosen
	 * first and the certificate LATERAL runs for those only: when the
	 * planner misjudges a selector as rare it sorts all matches, and the
	 * LATERAL ran for every one of them (20,000 for 50, perf.md).
	 */
	if (buf_printf(&sql,
		       "SELECT " DEVICE_COLS
		       ", fleet_cursor(%s, d.id), " DB_DEVICE_ONLINE_SQL ", ",
		       key) != 0 ||
	    (total != NULL ? count_sql(&sql, &q, cap)
			   : buf_printf(&sql, "0")) != 0 ||
	    buf_printf(&sql,
		       "%s"
		       "WHERE ($3::text IS NULL OR (%s, d.id) %s "
		       "(fleet_cursor_ts(split_part($3, ' ', 1)::bigint), "
		       "split_part($3, ' ', 2)::uuid)) AND %s "
		       "ORDER BY %s %s, d.id %s LIMIT $2::int",
		       by_cert ? DEVICE_FROM
			       : " FROM (SELECT d.id AS page_id FROM devices d "
				 "LEFT JOIN device_sessions s ON "
				 "s.device_id = d.id ",
		       key, desc ? "<" : ">", q.where, key, desc ? "DESC" : "",
		       desc ? "DESC" : "") != 0)
		goto out;
	if (!by_cert &&
	    buf_printf(&sql,
		       ") p JOIN devices d ON d.id = p.page_id " DEVICE_JOINS
		       "ORDER BY %s %s, d.id %s",
		       key, desc ? "DESC" : "", desc ? "DESC" : "") != 0)
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
		list[i].store_online =
			strcmp(PQgetvalue(res, i, DEVICE_NCOLS + 1), "t") == 0;
		count++;
	}
	next[0] = '\0';
	if (rows > page->limit)
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, DEVICE_NCOLS));
	if (total != NULL) {
		if (rows > 0)
			*total = db_int(res, 0, DEVICE_NCOLS + 2);
		else if (page->after == NULL)
			*total = 0; /* the first page is empty: none match */
		else if (count_matches(conn, &q, all, cap, total) != STORE_OK)
			goto out;
	}
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
	if (db_exec(conn, "BEGIN") != 0)
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
	rc = db_exec(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
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
	if (db_exec(conn, "BEGIN") != 0)
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
	rc = db_exec(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
out:
	json_decref(details);
	return rc;
}

enum store_rc
store_device_ids_between(struct store *st, const char *lo, const char *hi,
			 size_t max, char (*ids)[DEVICE_ID_LEN], size_t *n,
			 bool *more)
{
	char limit[24];
	const char *params[3] = {lo, hi, limit};
	PGconn *conn = store_conn(st);
	PGresult *res;
	size_t i, rows;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(limit, sizeof(limit), "%zu", max + 1);
	res = db_query(conn,
		       "SELECT id::text FROM devices WHERE id BETWEEN "
		       "$1::uuid AND $2::uuid ORDER BY id LIMIT $3::int",
		       3, params);
	if (res == NULL)
		return STORE_ERR;
	rows = (size_t)PQntuples(res);
	for (i = 0; i < rows && i < max; i++)
		snprintf(ids[i], DEVICE_ID_LEN, "%s",
			 PQgetvalue(res, (int)i, 0));
	*n = i;
	*more = rows > max;
	PQclear(res);
	return STORE_OK;
}

/*
 * A selector over devices as a statement: "SELECT d.id::text <extra>
 * FROM devices d LEFT JOIN device_sessions s ... WHERE <sel> ORDER BY
 * age <tail>", its parameters after the first_extra ones the caller
 * fills ($1 is always the heartbeat). all[] is malloc'd (free it) with
 * room for the caller's parameters first.
 */
struct bulk_query {
	struct selector_sql q;
	struct buf sql;
	const char **all;
	int nall;
	char hb[24];
};

static int
bulk_query_build(struct bulk_query *b, const struct selector *sel,
		 long heartbeat_timeout_s, int nfirst, const char *extra,
		 const char *tail)
{
	char err[160];
	int i;

	memset(b, 0, sizeof(*b));
	buf_init(&b->sql, 128 * 1024);
	if (selector_to_sql(sel, &device_columns, nfirst + 1, &b->q, err,
			    sizeof(err)) != 0)
		return -1;
	b->nall = nfirst + (int)b->q.nparams;
	b->all = calloc((size_t)b->nall + 1, sizeof(*b->all));
	if (b->all == NULL)
		return -1;
	snprintf(b->hb, sizeof(b->hb), "%ld", heartbeat_timeout_s);
	b->all[0] = b->hb;
	for (i = 0; i < (int)b->q.nparams; i++)
		b->all[nfirst + i] = b->q.params[i];
	return buf_printf(&b->sql,
			  "SELECT d.id::text%s FROM devices d LEFT JOIN "
			  "device_sessions s ON s.device_id = d.id WHERE "
			  "(%s) AND $1::double precision IS NOT NULL "
			  "ORDER BY d.created_at, d.id%s",
			  extra, b->q.where, tail);
}

static void
bulk_query_free(struct bulk_query *b)
{
	selector_sql_free(&b->q);
	buf_free(&b->sql);
	free(b->all);
}

/* matched and the sample from the ids in column 0 of res. */
static void
bulk_sample(const PGresult *res, struct device_bulk_result *out)
{
	int i, rows = PQntuples(res);

	out->matched = rows;
	for (i = 0; i < rows && i < DEVICE_BULK_SAMPLE; i++)
		snprintf(out->sample[i], DEVICE_ID_LEN, "%s",
			 PQgetvalue(res, i, 0));
	out->nsample = (size_t)i;
}

/* The ids in column 0 of res as a JSON array; NULL when out of memory. */
static json_t *
bulk_ids(const PGresult *res)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr != NULL && i < PQntuples(res); i++)
		if (json_array_append_new(
			    arr, json_string(PQgetvalue(res, i, 0))) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	return arr;
}

enum store_rc
store_device_bulk_preview(struct store *st, const struct selector *sel,
			  long heartbeat_timeout_s,
			  struct device_bulk_result *out)
{
	struct bulk_query b;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	enum store_rc rc = STORE_ERR;

	if (conn != NULL &&
	    bulk_query_build(&b, sel, heartbeat_timeout_s, 1, "", "") == 0) {
		res = db_query(conn, b.sql.data, b.nall, b.all);
		if (res != NULL) {
			bulk_sample(res, out);
			rc = STORE_OK;
		}
	}
	PQclear(res);
	if (conn != NULL)
		bulk_query_free(&b);
	return rc;
}

/* The patch as stored in the audit row: {"k": "v", "gone": null}. */
static json_t *
patch_json(const struct label_patch *patch)
{
	json_t *pj = labels_object(&patch->set);
	size_t i;

	for (i = 0; pj != NULL && i < patch->nremove; i++)
		if (json_object_set_new(pj, patch->remove[i], json_null()) !=
		    0) {
			json_decref(pj);
			return NULL;
		}
	return pj;
}

enum store_rc
store_device_bulk_label(struct store *st, const struct selector *sel,
			long heartbeat_timeout_s, const char *selector_text,
			const struct label_patch *patch, size_t labels_max,
			const char *actor, struct device_bulk_result *out)
{
	char max[24], *set = NULL, *rm = NULL, *ids_text = NULL;
	const char *p3[3];
	struct bulk_query b;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	json_t *setj = NULL, *rmj = NULL, *ids = NULL, *pj = NULL,
	       *details = NULL;
	enum store_rc rc = STORE_ERR;
	size_t i;
	int row;

	if (conn == NULL)
		return STORE_ERR;
	memset(&b, 0, sizeof(b));
	setj = labels_object(&patch->set);
	rmj = json_array();
	for (i = 0; rmj != NULL && i < patch->nremove; i++)
		json_array_append_new(rmj, json_string(patch->remove[i]));
	set = setj ? json_dumps(setj, JSON_COMPACT) : NULL;
	rm = rmj ? json_dumps(rmj, JSON_COMPACT) : NULL;
	if (set == NULL || rm == NULL)
		goto out;
	snprintf(max, sizeof(max), "%zu", labels_max);
	/* $2 removals (JSON array), $3 sets (JSON object), $4 the limit:
	 * column 1 says whether the device would pass it (the rule of
	 * device_labels_apply: at most max(limit, the labels it has)). */
	if (bulk_query_build(
		    &b, sel, heartbeat_timeout_s, 4,
		    ", (SELECT count(*) FROM jsonb_object_keys((d.labels - "
		    "ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) || "
		    "$3::jsonb)) > greatest($4::int, (SELECT count(*) FROM "
		    "jsonb_object_keys(d.labels)))",
		    " FOR UPDATE OF d") != 0)
		goto out;
	b.all[1] = rm;
	b.all[2] = set;
	b.all[3] = max;
	if (db_exec(conn, "BEGIN") != 0)
		goto out;
	res = db_query(conn, b.sql.data, b.nall, b.all);
	if (res == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	bulk_sample(res, out);
	for (row = 0; row < PQntuples(res); row++) {
		if (strcmp(PQgetvalue(res, row, 1), "t") == 0) {
			snprintf(out->blocked, DEVICE_ID_LEN, "%s",
				 PQgetvalue(res, row, 0));
			rc = rollback(conn, STORE_CONFLICT);
			goto out;
		}
	}
	ids = bulk_ids(res);
	ids_text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
	pj = patch_json(patch);
	details = ids && pj
			  ? json_pack("{s:s, s:O, s:I, s:O}", "selector",
				      selector_text, "labels", pj, "count",
				      (json_int_t)out->matched, "devices", ids)
			  : NULL;
	if (ids_text == NULL || details == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	p3[0] = ids_text;
	p3[1] = rm;
	p3[2] = set;
	PQclear(res);
	res = db_query(conn,
		       "UPDATE devices SET labels = (labels - ARRAY(SELECT "
		       "jsonb_array_elements_text($2::jsonb))) || $3::jsonb, "
		       "revision = revision + 1 WHERE id IN (SELECT "
		       "jsonb_array_elements_text($1::jsonb)::uuid)",
		       3, p3);
	if (res == NULL || audit_insert(conn, actor, "device.bulk_label",
					selector_text, details) != 0) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	rc = db_exec(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
out:
	PQclear(res);
	bulk_query_free(&b);
	free(set);
	free(rm);
	free(ids_text);
	json_decref(setj);
	json_decref(rmj);
	json_decref(ids);
	json_decref(pj);
	json_decref(details);
	return rc;
}

enum store_rc
store_device_bulk_decommission(struct store *st, const struct selector *sel,
			       long heartbeat_timeout_s,
			       const char *selector_text, int reason,
			       const char *actor,
			       struct device_bulk_result *out)
{
	char *ids_text = NULL;
	const char *p1[1];
	struct bulk_query b;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL, *upd = NULL;
	json_t *ids = NULL, *serials = NULL, *details = NULL;
	enum store_rc rc = STORE_ERR;
	int row;

	if (conn == NULL)
		return STORE_ERR;
	memset(&b, 0, sizeof(b));
	if (bulk_query_build(&b, sel, heartbeat_timeout_s, 1, "",
			     " FOR UPDATE OF d") != 0)
		goto out;
	if (db_exec(conn, "BEGIN") != 0)
		goto out;
	res = db_query(conn, b.sql.data, b.nall, b.all);
	if (res == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	bulk_sample(res, out);
	ids = bulk_ids(res);
	ids_text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
	if (ids_text == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	p1[0] = ids_text;
	upd = db_query(conn,
		       "UPDATE devices SET status = 'decommissioned', "
		       "decommissioned_at = now(), revision = revision + 1 "
		       "WHERE id IN (SELECT jsonb_array_elements_text("
		       "$1::jsonb)::uuid)",
		       1, p1);
	if (upd == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	for (row = 0; row < PQntuples(res); row++) {
		if (db_certificates_revoke_device(conn, PQgetvalue(res, row, 0),
						  reason, &serials) != DB_OK) {
			rc = rollback(conn, STORE_ERR);
			goto out;
		}
		out->revoked += (int64_t)json_array_size(serials);
		json_decref(serials);
		serials = NULL;
	}
	details = json_pack("{s:s, s:I, s:O, s:I, s:i}", "selector",
			    selector_text, "count", (json_int_t)out->matched,
			    "devices", ids, "revoked_certificates",
			    (json_int_t)out->revoked, "reason", reason);
	if (details == NULL ||
	    audit_insert(conn, actor, "device.bulk_decommission", selector_text,
			 details) != 0) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	/* One notification for the change set: the workers reload the
	 * revoked serials and close the sessions of all of them. */
	PQclear(upd);
	upd = db_query(conn, "SELECT pg_notify('fleet_devices', 'bulk')", 0,
		       NULL);
	if (upd == NULL) {
		rc = rollback(conn, STORE_ERR);
		goto out;
	}
	rc = db_exec(conn, "COMMIT") == 0 ? STORE_OK : STORE_ERR;
out:
	PQclear(res);
	PQclear(upd);
	bulk_query_free(&b);
	free(ids_text);
	json_decref(ids);
	json_decref(serials);
	json_decref(details);
	return rc;
}
