/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery on PostgreSQL (core/store_config_delivery.h):
 * the set-based desired-vs-reported comparison for a worker's connected
 * devices, and config.status reports applied once with their effect on
 * device_config_reported (migrations/0006_config.sql, its contract, and
 * 0007), one at a time or in batches (core/store_config_batch.h). Runs on the channel's job threads; every parameter is bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/store_config_batch.h"
#include "core/store_config_delivery.h"
#include "db/db.h"
#include "db/query.h"
#include "db/store.h"

void
config_pending_free(struct config_pending *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].document);
	free(list);
}

enum store_rc
store_config_pending(struct store *st, const char *const *ids, size_t n,
		     struct config_pending **out, size_t *nout)
{
	PGconn *conn = store_conn(st);
	struct config_pending *list = NULL;
	const char *params[1];
	PGresult *res = NULL;
	char *arr = NULL;
	size_t count = 0;
	int failed = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return STORE_OK;
	if (conn == NULL)
		return STORE_ERR;
	arr = db_uuid_array(ids, n);
	if (arr == NULL)
		return STORE_ERR;
	params[0] = arr;
	/* Differs: no report yet, another generation or hash, or not
	 * applied (failed, drifted). Sorted as the caller searches. */
	res = db_query_prepared(
		conn,
		"SELECT dc.device_id, dc.desired_generation, "
		"dc.desired_sha256, dc.desired_document "
		"FROM device_config dc "
		"LEFT JOIN device_config_reported r "
		"ON r.device_id = dc.device_id "
		"WHERE dc.device_id = ANY($1::uuid[]) "
		"AND dc.desired_document IS NOT NULL "
		"AND dc.desired_generation > 0 "
		"AND (r.device_id IS NULL "
		"OR r.generation <> dc.desired_generation "
		"OR r.sha256 IS DISTINCT FROM dc.desired_sha256 "
		"OR r.status <> 'applied') "
		"ORDER BY dc.device_id::text COLLATE \"C\"",
		1, params);
	free(arr);
	if (res == NULL)
		return STORE_ERR;
	count = (size_t)PQntuples(res);
	if (count > 0) {
		list = calloc(count, sizeof(*list));
		if (list == NULL)
			goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		struct config_pending *p = &list[i];

		snprintf(p->device_id, sizeof(p->device_id), "%s",
			 PQgetvalue(res, (int)i, 0));
		p->generation = db_int(res, (int)i, 1);
		snprintf(p->sha256, sizeof(p->sha256), "%s",
			 PQgetvalue(res, (int)i, 2));
		p->document = db_text(res, (int)i, 3, &failed);
		if (failed || p->document == NULL)
			goto fail;
	}
	PQclear(res);
	*out = list;
	*nout = count;
	return STORE_OK;
fail:
	config_pending_free(list, count);
	PQclear(res);
	return STORE_ERR;
}

/* ---- config.status ----------------------------------------------------- */

/*
 * A config.status applied once, in five round trips instead of nine (a
 * clone makes one report per device, so each one counts): BEGIN with
 * synchronous_commit off; the window row made if missing; the window
 * locked and read together with the desired and reported state; then,
 * for a new seq only, one statement writing the generic report effect,
 * the reported state or the ignored counter, and the marked window;
 * COMMIT.
 */
#define STATUS_EFFECT                                                     \
	"WITH rep AS (INSERT INTO device_reports AS r "                   \
	"(device_id, kind, seq, body) "                                   \
	"VALUES ($1::uuid, 'config.status', $2::bigint, $3::jsonb) "      \
	"ON CONFLICT (device_id, kind) DO UPDATE SET "                    \
	"applied = r.applied + 1, "                                       \
	"body = CASE WHEN EXCLUDED.seq > r.seq THEN EXCLUDED.body "       \
	"ELSE r.body END, "                                               \
	"received_at = CASE WHEN EXCLUDED.seq > r.seq THEN now() "        \
	"ELSE r.received_at END, "                                        \
	"seq = greatest(r.seq, EXCLUDED.seq) RETURNING 1), "              \
	"win AS (UPDATE device_report_windows SET hwm = $4::bigint, "     \
	"mask = $5::bigint, updated_at = now() "                          \
	"WHERE device_id = $1::uuid RETURNING 1), "                       \
	"acc AS (INSERT INTO device_config_reported AS c "                \
	"(device_id, generation, sha256, status, reason, seq) "           \
	"SELECT $1::uuid, $6::bigint, $7, $8, $9, $2::bigint WHERE "      \
	"$10::boolean "                                                   \
	"ON CONFLICT (device_id) DO UPDATE SET "                          \
	"generation = EXCLUDED.generation, sha256 = EXCLUDED.sha256, "    \
	"status = EXCLUDED.status, reason = EXCLUDED.reason, "            \
	"seq = EXCLUDED.seq, reported_at = now() RETURNING 1), "          \
	"ign AS (INSERT INTO config_reports_ignored AS i "                \
	"(device_id, last_verdict, last_body) "                           \
	"SELECT $1::uuid, $11, $3::jsonb WHERE NOT $10::boolean "         \
	"ON CONFLICT (device_id) DO UPDATE SET count = i.count + 1, "     \
	"last_verdict = EXCLUDED.last_verdict, "                          \
	"last_body = EXCLUDED.last_body, last_at = now() RETURNING 1) "   \
	"SELECT (SELECT count(*) FROM rep), (SELECT count(*) FROM win), " \
	"(SELECT count(*) FROM acc), (SELECT count(*) FROM ign)"

enum store_rc
store_config_report_apply(struct store *st, const char *device_id,
			  const struct report *r,
			  const struct config_status *status,
			  enum report_verdict *verdict,
			  enum config_report_verdict *cv)
{
	PGconn *conn = store_conn(st);
	struct report_window w;
	struct config_desired_state d = {0, NULL};
	struct config_reported_state rep = {false, 0, 0};
	enum report_verdict v;
	char seq[32], hwm[32], mask[32], gen[32];
	const char *id1[1] = {device_id};
	const char *eff[11] = {
		device_id,	seq,	       r->body,	       hwm,  mask, gen,
		status->sha256, status->state, status->reason, NULL, NULL};
	PGresult *res = NULL;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
	snprintf(gen, sizeof(gen), "%" PRId64, status->generation);
	/* No wait for the WAL flush: a config.status is state the server
	 * can ask for again. Lost in a PostgreSQL crash after its ack, the
	 * reported state is older than the device's, so the next comparison
	 * (reconnect, re-check) sends config.apply again and the agent
	 * answers applied without writing anything; the window row is lost
	 * with it, so no seq is ever half applied. Waiting for the fsync of
	 * every report instead bounds a clone to 10,000 devices by the disk
	 * (docs/internals/config-delivery.md). */
	if (db_exec(conn, "BEGIN; SET LOCAL synchronous_commit TO off") != 0) {
		(void)db_exec(conn, "ROLLBACK");
		return STORE_ERR;
	}
	/* The report window, as store_report_apply (db/reports.c) keeps it:
	 * one window per device for every kind of report. */
	if (db_command_prepared(
		    conn,
		    "INSERT INTO device_report_windows (device_id) "
		    "SELECT id FROM devices WHERE id = $1::uuid "
		    "AND status = 'active' ON CONFLICT (device_id) DO NOTHING",
		    1, id1) != STORE_OK)
		goto fail;
	res = db_query_prepared(
		conn,
		"SELECT w.hwm, w.mask, dc.desired_generation, "
		"dc.desired_sha256, r.generation, r.seq "
		"FROM device_report_windows w "
		"JOIN devices d ON d.id = w.device_id "
		"LEFT JOIN device_config dc ON dc.device_id = d.id "
		"LEFT JOIN device_config_reported r "
		"ON r.device_id = d.id "
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
	w.hwm = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	w.mask = db_mask_from_text(PQgetvalue(res, 0, 1));
	if (!PQgetisnull(res, 0, 2))
		d.generation = db_int(res, 0, 2);
	if (!PQgetisnull(res, 0, 3))
		d.sha256 = PQgetvalue(res, 0, 3);
	if (!PQgetisnull(res, 0, 4)) {
		rep.present = true;
		rep.generation = db_int(res, 0, 4);
		rep.seq = (uint64_t)db_int(res, 0, 5);
	}
	v = report_window_check(&w, r->seq);
	*cv = CONFIG_REPORT_ACCEPT;
	if (v == REPORT_NEW) {
		*cv = config_report_check(&d, &rep, status, r->seq);
		report_window_mark(&w, r->seq);
		snprintf(hwm, sizeof(hwm), "%" PRIu64, w.hwm);
		db_mask_to_text(w.mask, mask, sizeof(mask));
		eff[9] = *cv == CONFIG_REPORT_ACCEPT ? "true" : "false";
		eff[10] = config_report_verdict_name(*cv);
		PQclear(res); /* d.sha256 is not used below */
		res = NULL;
		if (db_command_prepared(conn, STATUS_EFFECT, 11, eff) !=
		    STORE_OK)
			goto fail;
	}
	PQclear(res);
	res = NULL;
	if (db_exec(conn, "COMMIT") != 0)
		return STORE_ERR;
	*verdict = v;
	return STORE_OK;
fail:
	PQclear(res);
	(void)db_exec(conn, "ROLLBACK");
	return STORE_ERR;
}

/* ---- config.status in batches (core/store_config_batch.h) ------------- */

/* The effect of every new report of a batch, one statement: the rows of
 * $1 (a JSON array built below) are what STATUS_EFFECT's parameters are
 * for one report. Each target row is written at most once (the devices
 * of a batch are distinct), in device id order. */
#define BATCH_EFFECT                                                        \
	"WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("      \
	"d uuid, seq text, body jsonb, hwm text, mask text, gen text, "     \
	"sha text, state text, reason text, accept boolean, verdict text) " \
	"ORDER BY d), "                                                     \
	"rep AS (INSERT INTO device_reports AS r "                          \
	"(device_id, kind, seq, body) "                                     \
	"SELECT d, 'config.status', seq::bigint, body FROM x "              \
	"ON CONFLICT (device_id, kind) DO UPDATE SET "                      \
	"applied = r.applied + 1, "                                         \
	"body = CASE WHEN EXCLUDED.seq > r.seq THEN EXCLUDED.body "         \
	"ELSE r.body END, "                                                 \
	"received_at = CASE WHEN EXCLUDED.seq > r.seq THEN now() "          \
	"ELSE r.received_at END, "                                          \
	"seq = greatest(r.seq, EXCLUDED.seq) RETURNING 1), "                \
	"win AS (UPDATE device_report_windows w SET hwm = x.hwm::bigint, "  \
	"mask = x.mask::bigint, updated_at = now() FROM x "                 \
	"WHERE w.device_id = x.d RETURNING 1), "                            \
	"acc AS (INSERT INTO device_config_reported AS c "                  \
	"(device_id, generation, sha256, status, reason, seq) "             \
	"SELECT d, gen::bigint, sha, state, reason, seq::bigint FROM x "    \
	"WHERE accept "                                                     \
	"ON CONFLICT (device_id) DO UPDATE SET "                            \
	"generation = EXCLUDED.generation, sha256 = EXCLUDED.sha256, "      \
	"status = EXCLUDED.status, reason = EXCLUDED.reason, "              \
	"seq = EXCLUDED.seq, reported_at = now() RETURNING 1), "            \
	"ign AS (INSERT INTO config_reports_ignored AS i "                  \
	"(device_id, last_verdict, last_body) "                             \
	"SELECT d, verdict, body FROM x WHERE NOT accept "                  \
	"ON CONFLICT (device_id) DO UPDATE SET count = i.count + 1, "       \
	"last_verdict = EXCLUDED.last_verdict, "                            \
	"last_body = EXCLUDED.last_body, last_at = now() RETURNING 1) "     \
	"SELECT (SELECT count(*) FROM rep), (SELECT count(*) FROM win), "   \
	"(SELECT count(*) FROM acc), (SELECT count(*) FROM ign)"

static int
item_cmp(const void *a, const void *b)
{
	const struct config_report_item *const *x = a, *const *y = b;

	return strcmp((*x)->device_id, (*y)->device_id);
}

static int
item_find(const void *key, const void *elem)
{
	const struct config_report_item *const *y = elem;

	return strcmp(key, (*y)->device_id);
}

/* The effect row of one new report (STATUS_EFFECT's parameters), after
 * the window w has been marked with it. */
static int
batch_row(json_t *rows, const struct config_report_item *it,
	  const struct report_window *w)
{
	char seq[32], gen[32], hwm[32], mask[32];
	json_error_t jerr;
	json_t *body;

	body = json_loads(it->r.body, 0, &jerr);
	if (body == NULL)
		return -1;
	snprintf(seq, sizeof(seq), "%" PRIu64, it->r.seq);
	snprintf(gen, sizeof(gen), "%" PRId64, it->status.generation);
	snprintf(hwm, sizeof(hwm), "%" PRIu64, w->hwm);
	db_mask_to_text(w->mask, mask, sizeof(mask));
	/* "o" steals body, also when packing fails. */
	return json_array_append_new(
		rows,
		json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s?, "
			  "s:b, s:s}",
			  "d", it->device_id, "seq", seq, "body", body, "hwm",
			  hwm, "mask", mask, "gen", gen, "sha",
			  it->status.sha256, "state", it->status.state,
			  "reason", it->status.reason, "accept",
			  it->cv == CONFIG_REPORT_ACCEPT, "verdict",
			  config_report_verdict_name(it->cv)));
}

/* The ids of the batch as one uuid[] parameter, in device id order. */
static char *
batch_ids(struct config_report_item **sorted, size_t n)
{
	const char **ids = calloc(n, sizeof(*ids));
	char *arr;

	if (ids == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ids[i] = sorted[i]->device_id;
	arr = db_uuid_array(ids, n);
	free(ids);
	return arr;
}

enum store_rc
store_config_report_apply_batch(struct store *st,
				struct config_report_item *items, size_t n)
{
	PGconn *conn = store_conn(st);
	struct config_report_item **sorted = NULL;
	const char *params[1];
	PGresult *res = NULL;
	json_t *rows = NULL;
	char *arr = NULL, *text = NULL;
	enum store_rc rc = STORE_ERR;

	if (n == 0)
		return STORE_OK;
	if (conn == NULL)
		return STORE_ERR;
	sorted = calloc(n, sizeof(*sorted));
	rows = json_array();
	if (sorted == NULL || rows == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		sorted[i] = &items[i];
	qsort(sorted, n, sizeof(*sorted), item_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1]->device_id, sorted[i]->device_id) == 0)
			goto out; /* the caller's contract: distinct devices */
	arr = batch_ids(sorted, n);
	if (arr == NULL)
		goto out;
	params[0] = arr;
	/* synchronous_commit off, as for one report (see above). */
	if (db_exec(conn, "BEGIN; SET LOCAL synchronous_commit TO off") != 0)
		goto rollback;
	/* Windows made if missing and then locked in device id order: two
	 * batches (or a batch and a single report) never wait on each other
	 * in a cycle. */
	if (db_command_prepared(
		    conn,
		    "INSERT INTO device_report_windows (device_id) "
		    "SELECT id FROM devices WHERE id = ANY($1::uuid[]) "
		    "AND status = 'active' ORDER BY id "
		    "ON CONFLICT (device_id) DO NOTHING",
		    1, params) != STORE_OK)
		goto rollback;
	res = db_query_prepared(
		conn,
		"SELECT w.device_id, w.hwm, w.mask, "
		"dc.desired_generation, dc.desired_sha256, "
		"r.generation, r.seq "
		"FROM device_report_windows w "
		"JOIN devices d ON d.id = w.device_id "
		"LEFT JOIN device_config dc ON dc.device_id = d.id "
		"LEFT JOIN device_config_reported r "
		"ON r.device_id = d.id "
		"WHERE w.device_id = ANY($1::uuid[]) "
		"AND d.status = 'active' "
		"ORDER BY w.device_id FOR UPDATE OF w",
		1, params);
	if (res == NULL)
		goto rollback;
	for (size_t i = 0; i < n; i++)
		items[i].rc = STORE_NOTFOUND; /* unless its window is found */
	for (int row = 0; row < PQntuples(res); row++) {
		struct config_report_item **hit, *it;
		struct report_window w;
		struct config_desired_state d = {0, NULL};
		struct config_reported_state rep = {false, 0, 0};

		hit = bsearch(PQgetvalue(res, row, 0), sorted, n,
			      sizeof(*sorted), item_find);
		if (hit == NULL)
			continue;
		it = *hit;
		it->rc = STORE_OK;
		w.hwm = strtoull(PQgetvalue(res, row, 1), NULL, 10);
		w.mask = db_mask_from_text(PQgetvalue(res, row, 2));
		if (!PQgetisnull(res, row, 3))
			d.generation = db_int(res, row, 3);
		if (!PQgetisnull(res, row, 4))
			d.sha256 = PQgetvalue(res, row, 4);
		if (!PQgetisnull(res, row, 5)) {
			rep.present = true;
			rep.generation = db_int(res, row, 5);
			rep.seq = (uint64_t)db_int(res, row, 6);
		}
		it->verdict = report_window_check(&w, it->r.seq);
		it->cv = CONFIG_REPORT_ACCEPT;
		if (it->verdict != REPORT_NEW)
			continue;
		it->cv = config_report_check(&d, &rep, &it->status, it->r.seq);
		report_window_mark(&w, it->r.seq);
		if (batch_row(rows, it, &w) != 0)
			goto rollback;
	}
	PQclear(res);
	res = NULL;
	if (json_array_size(rows) > 0) {
		text = json_dumps(rows, JSON_COMPACT);
		if (text == NULL)
			goto rollback;
		params[0] = text;
		if (db_command_prepared(conn, BATCH_EFFECT, 1, params) !=
		    STORE_OK)
			goto rollback;
	}
	if (db_exec(conn, "COMMIT") != 0)
		goto out;
	rc = STORE_OK;
	goto out;
rollback:
	PQclear(res);
	(void)db_exec(conn, "ROLLBACK");
out:
	free(text);
	free(arr);
	json_decref(rows);
	free(sorted);
	return rc;
}
