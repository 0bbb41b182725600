/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery on PostgreSQL (core/store_config_delivery.h):
 * the set-based desired-vs-reported comparison for a worker's connected
 * devices, and config.status reports applied once with their effect on
 * device_config_reported (migrations/0006_config.sql, its contract, and
 * 0007). Runs on the channel's job threads; every parameter is bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/store_config_delivery.h"
#include "db/db.h"
#include "db/query.h"
#include "db/store.h"

/* The ids as one uuid[] literal parameter: {"id","id",...}. Ids come from
 * verified certificates, are checked here again (hex and '-'), and are
 * bound, never spliced into SQL. */
static char *
ids_array(const char *const *ids, size_t n)
{
	size_t cap = 2 + n * 39 + 1, at = 0;
	char *text = malloc(cap);

	if (text == NULL)
		return NULL;
	text[at++] = '{';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(ids[i]);

		if (len != 36 || strspn(ids[i], "0123456789abcdef-") != 36) {
			free(text);
			return NULL;
		}
		if (i > 0)
			text[at++] = ',';
		text[at++] = '"';
		memcpy(text + at, ids[i], 36);
		at += 36;
		text[at++] = '"';
	}
	text[at++] = '}';
	text[at] = '\0';
	return text;
}

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
	arr = ids_array(ids, n);
	if (arr == NULL)
		return STORE_ERR;
	params[0] = arr;
	/* Differs: no report yet, another generation or hash, or not
	 * applied (failed, drifted). Sorted as the caller searches. */
	res = db_query(conn,
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
	if (db_command(
		    conn,
		    "INSERT INTO device_report_windows (device_id) "
		    "SELECT id FROM devices WHERE id = $1::uuid "
		    "AND status = 'active' ON CONFLICT (device_id) DO NOTHING",
		    1, id1) != STORE_OK)
		goto fail;
	res = db_query(conn,
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
		if (db_command(conn, STATUS_EFFECT, 11, eff) != STORE_OK)
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
