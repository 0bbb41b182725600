/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port for device reports and hellos (core/store_reports.h) on
 * PostgreSQL. A report is applied in one transaction that locks the
 * device's window row (device_report_windows), asks core's rule whether
 * the seq is new, and only then writes its effect and the marked window:
 * two job threads with the same (device, seq) serialise on the lock and
 * the second one finds a duplicate (db/reports.h: the window for other
 * kinds' modules too). Runs on job threads; every parameter is bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/store_reports.h"
#include "db/query.h"
#include "db/db.h"
#include "db/reports.h"
#include "db/store.h"
#include "log.h"

enum store_rc
db_report_window_begin(PGconn *conn, const char *device_id,
		       struct report_window *w)
{
	const char *id1[1] = {device_id};
	PGresult *res;

	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	/* The first report of a device makes its window row; a concurrent
	 * first report waits on the key and then finds it. */
	if (db_command_prepared(
		    conn,
		    "INSERT INTO device_report_windows (device_id) "
		    "SELECT id FROM devices WHERE id = $1::uuid "
		    "AND status = 'active' ON CONFLICT (device_id) DO NOTHING",
		    1, id1) != STORE_OK)
		goto fail;
	res = db_query_prepared(
		conn,
		"SELECT w.hwm, w.mask FROM device_report_windows w "
		"JOIN devices d ON d.id = w.device_id "
		"WHERE w.device_id = $1::uuid AND d.status = 'active' "
		"FOR UPDATE OF w",
		1, id1);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		(void)db_exec(conn, "ROLLBACK");
		return STORE_NOTFOUND;
	}
	w->hwm = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	w->mask = db_mask_from_text(PQgetvalue(res, 0, 1));
	PQclear(res);
	return STORE_OK;
fail:
	(void)db_exec(conn, "ROLLBACK");
	return STORE_ERR;
}

enum store_rc
db_report_window_mark(PGconn *conn, const char *device_id,
		      const struct report *r, struct report_window *w)
{
	char seq[32], hwm[32], mask[32];
	const char *eff[4] = {device_id, r->kind, seq, r->body};
	const char *win[3] = {device_id, hwm, mask};

	snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
	if (db_command_prepared(conn,
				"INSERT INTO device_reports AS r "
				"(device_id, kind, seq, body) "
				"VALUES ($1::uuid, $2, $3::bigint, $4::jsonb) "
				"ON CONFLICT (device_id, kind) DO UPDATE SET "
				"applied = r.applied + 1, "
				"body = CASE WHEN EXCLUDED.seq > r.seq "
				"THEN EXCLUDED.body ELSE r.body END, "
				"received_at = CASE WHEN EXCLUDED.seq > r.seq "
				"THEN now() ELSE r.received_at END, "
				"seq = greatest(r.seq, EXCLUDED.seq)",
				4, eff) != STORE_OK)
		return STORE_ERR;
	report_window_mark(w, r->seq);
	snprintf(hwm, sizeof(hwm), "%" PRIu64, w->hwm);
	db_mask_to_text(w->mask, mask, sizeof(mask));
	return db_command_prepared(
		conn,
		"UPDATE device_report_windows SET hwm = $2::bigint, "
		"mask = $3::bigint, updated_at = now() "
		"WHERE device_id = $1::uuid",
		3, win);
}

enum store_rc
store_report_apply(struct store *st, const char *device_id,
		   const struct report *r, enum report_verdict *verdict)
{
	PGconn *conn = store_conn(st);
	struct report_window w;
	enum report_verdict v;
	enum store_rc rc;

	if (conn == NULL)
		return STORE_ERR;
	rc = db_report_window_begin(conn, device_id, &w);
	if (rc != STORE_OK)
		return rc;
	v = report_window_check(&w, r->seq);
	if (v == REPORT_NEW &&
	    db_report_window_mark(conn, device_id, r, &w) != STORE_OK) {
		(void)db_exec(conn, "ROLLBACK");
		return STORE_ERR;
	}
	if (db_exec(conn, "COMMIT") != 0)
		return STORE_ERR;
	*verdict = v;
	return STORE_OK;
}

/* Sets key to the JSON text (parsed) when given; false on a parse error. */
static bool
set_json_text(json_t *obj, const char *key, const char *text)
{
	json_error_t jerr;
	json_t *v;

	if (text == NULL)
		return true;
	v = json_loads(text, JSON_DECODE_ANY, &jerr);
	return v != NULL && json_object_set_new(obj, key, v) == 0;
}

/* The hello's facts commit without waiting for the WAL flush or a standby
 * (DB_ASYNC_COMMIT): the welcome has been sent before they are written,
 * so nothing acknowledged rests on them, and a reconnect storm is
 * thousands of them a second. A crash of PostgreSQL may lose the last
 * fraction of a second of them: those devices show the facts of their
 * previous hello until their next one. */
enum store_rc
store_device_hello(struct store *st, const char *device_id,
		   const struct device_hello *h)
{
	PGconn *conn = store_conn(st);
	json_t *inv = json_object();
	char *inv_text = NULL;
	const char *params[6];
	enum store_rc rc = STORE_ERR;

	if (conn == NULL || inv == NULL)
		goto out;
	/* The inventory shown to operators: what the agent reported. */
	if (!set_json_text(inv, "reported", h->inventory) ||
	    !set_json_text(inv, "addresses", h->addresses))
		goto out;
	if (h->uptime >= 0)
		json_object_set_new(inv, "uptime",
				    json_integer((json_int_t)h->uptime));
	if (h->config_version >= 0)
		json_object_set_new(
			inv, "config_version",
			json_integer((json_int_t)h->config_version));
	if (h->config_hash != NULL)
		json_object_set_new(inv, "config_hash",
				    json_string(h->config_hash));
	if (h->fw_version_num >= 0)
		json_object_set_new(
			inv, "fw_version_num",
			json_integer((json_int_t)h->fw_version_num));
	inv_text = json_dumps(inv, JSON_COMPACT);
	if (inv_text == NULL)
		goto out;
	params[0] = device_id;
	params[1] = h->fw_version;
	params[2] = h->agent_version;
	params[3] = h->model;
	params[4] = h->boot_id;
	params[5] = inv_text;
	if (db_command_prepared(
		    conn,
		    "UPDATE devices SET fw_version = $2, agent_version = $3, "
		    "model = coalesce($4, model), boot_id = $5, "
		    "inventory = $6::jsonb, last_seen = now() "
		    "FROM " DB_ASYNC_COMMIT " "
		    "WHERE id = $1::uuid AND status = 'active'",
		    6, params) == 0)
		rc = STORE_OK;
out:
	free(inv_text);
	json_decref(inv);
	return rc;
}
