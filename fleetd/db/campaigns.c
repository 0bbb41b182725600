/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaigns on PostgreSQL, the operator's half (core/store_campaigns.h):
 * create (and its preflight), list, show with per-phase counts, the
 * admitted devices, the event log and the operator transitions. These
 * change only campaigns and campaign_events rows (with their audit rows
 * in the same transaction) and NOTIFY fleet_campaign; the effects on
 * devices are the driver's (db/campaign_drive.c). Also here, shared with
 * the driver: reading a campaigns row (db/campaign_row.h) and counting
 * its devices per phase and state. Schema: migrations/0013_campaigns.sql.
 * Runs on API job threads and the driver thread; every parameter is
 * bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "core/campaign.h"
#include "core/campaign_json.h"
#include "core/selector.h"
#include "core/store_campaigns.h"
#include "db/campaign_row.h"
#include "db/db.h"
#include "db/query.h"
#include "db/selector_sql.h"
#include "db/store.h"
#include "log.h"

/*
 * store_campaign_counts has no heartbeat parameter, yet a selector may
 * name the built-in `online`: it is judged with fleetd's default
 * heartbeat_timeout (fleetd/config.c) there.
 */
#define CAMP_DEFAULT_HEARTBEAT_S 90

/* The SQL mirror of device_online() (core/device.c), as in db/devices.c:
 * $1 is the heartbeat timeout in seconds. */
#define CAMP_ONLINE_SQL                                          \
	"coalesce(s.last_seen > now() - $1::double precision * " \
	"interval '1 second', false)"

static const struct selector_columns camp_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = CAMP_ONLINE_SQL,
	.status = "d.status",
	.labels = "d.labels",
};

/* ---- the campaigns row ------------------------------------------------- */

int
db_campaign_status_parse(const char *s, enum campaign_status *out)
{
	for (int i = 0; i < CAMPAIGN_STATUS_COUNT; i++) {
		if (strcmp(s, campaign_status_name((enum campaign_status)i)) ==
		    0) {
			*out = (enum campaign_status)i;
			return 0;
		}
	}
	return -1;
}

static void
id_copy(char dst[37], const char *src)
{
	snprintf(dst, 37, "%s", src);
}

int
db_campaign_row_read(const PGresult *res, int row, struct campaign_row *out,
		     char *err, size_t errlen)
{
	struct campaign_row r;
	json_t *def = NULL;
	json_error_t jerr;
	char derr[160];

	memset(&r, 0, sizeof(r));
	memset(out, 0, sizeof(*out));
	if (PQnfields(res) < DB_CAMPAIGN_ROW_NCOLS) {
		snprintf(err, errlen, "campaign row: %d columns, want %d",
			 PQnfields(res), DB_CAMPAIGN_ROW_NCOLS);
		return -1;
	}
	id_copy(r.id, PQgetvalue(res, row, 0));
	if (campaign_kind_parse(PQgetvalue(res, row, 1), &r.kind) != 0) {
		snprintf(err, errlen, "campaign %s: unknown kind", r.id);
		return -1;
	}
	if (db_campaign_status_parse(PQgetvalue(res, row, 2), &r.status) != 0) {
		snprintf(err, errlen, "campaign %s: unknown status", r.id);
		return -1;
	}
	def = json_loads(PQgetvalue(res, row, 3), 0, &jerr);
	if (def == NULL) {
		snprintf(err, errlen, "campaign %s: definition: %s", r.id,
			 jerr.text);
		return -1;
	}
	if (campaign_def_from_json(def, &r.def, derr, sizeof(derr)) != 0) {
		snprintf(err, errlen, "campaign %s: definition: %s", r.id,
			 derr);
		json_decref(def);
		return -1;
	}
	json_decref(def);
	r.state.status = r.status;
	r.state.phase = (size_t)db_int(res, row, 4);
	r.state.gate_met_at = db_int(res, row, 5);
	r.abort_done = PQgetvalue(res, row, 7)[0] == 't';
	id_copy(r.artifact_id, PQgetvalue(res, row, 8));
	id_copy(r.deployment_id, PQgetvalue(res, row, 9));
	id_copy(r.profile_id, PQgetvalue(res, row, 10));
	r.profile_version = (int)db_int(res, row, 11);
	r.revision = db_int(res, row, 12);
	r.selector = strdup(PQgetvalue(res, row, 6));
	if (r.selector == NULL) {
		snprintf(err, errlen, "campaign %s: out of memory", r.id);
		return -1;
	}
	*out = r;
	return 0;
}

void
campaign_row_clear(struct campaign_row *r)
{
	if (r == NULL)
		return;
	free(r->selector);
	r->selector = NULL;
}

void
campaign_rows_free(struct campaign_row *rows, size_t n)
{
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		campaign_row_clear(&rows[i]);
	free(rows);
}

/* ---- counts -------------------------------------------------------------- */

static int
counts_add(struct campaign_counts *c, const char *state, uint32_t n)
{
	if (strcmp(state, "offered") == 0)
		c->offered += n;
	else if (strcmp(state, "in_progress") == 0)
		c->in_progress += n;
	else if (strcmp(state, "succeeded") == 0)
		c->succeeded += n;
	else if (strcmp(state, "failed") == 0)
		c->failed += n;
	else if (strcmp(state, "silent") == 0)
		c->silent += n;
	else if (strcmp(state, "rolled_back") == 0)
		c->rolled_back += n;
	else if (strcmp(state, "excluded") != 0 &&
		 strcmp(state, "reverted") != 0)
		return -1;
	return 0;
}

/*
 * The counts of campaign id with selector sel (text) on conn, inside the
 * caller's transaction if any. One statement, so the matched figure and
 * the admitted ones come from one snapshot: a row (-1, 'matched', n) and
 * then (phase, state, n) per admitted group. $1 the heartbeat, $2 the
 * campaign, the selector's parameters from $3.
 */
static enum store_rc
counts_read(PGconn *conn, const char *id, const char *sel_text, long hb_s,
	    struct campaign_counts *counts, uint64_t *matched)
{
	struct selector *sel = NULL;
	struct selector_sql q;
	const char **params = NULL;
	enum store_rc rc = STORE_ERR;
	PGresult *res = NULL;
	char hb[24], err[160];
	struct buf sql;
	uint64_t m = 0;
	int rows;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 64 * 1024);
	if (selector_parse(sel_text, &sel, err, sizeof(err)) != 0 ||
	    selector_to_sql(sel, &camp_columns, 3, &q, err, sizeof(err)) != 0) {
		log_warn("campaign %s: selector: %s", id, err);
		goto out;
	}
	params = calloc(q.nparams + 2, sizeof(*params));
	if (params == NULL)
		goto out;
	snprintf(hb, sizeof(hb), "%ld", hb_s);
	params[0] = hb;
	params[1] = id;
	for (size_t i = 0; i < q.nparams; i++)
		params[2 + i] = q.params[i];
	if (buf_printf(&sql,
		       "SELECT -1, 'matched', count(*) FROM (SELECT d.id "
		       "FROM devices d LEFT JOIN device_sessions s ON "
		       "s.device_id = d.id WHERE d.status = 'active' AND "
		       "$1::double precision IS NOT NULL AND (%s) UNION "
		       "SELECT device_id FROM campaign_devices WHERE "
		       "campaign_id = $2::uuid AND state NOT IN ('excluded', "
		       "'reverted')) m UNION ALL SELECT phase, state, count(*) "
		       "FROM campaign_devices WHERE campaign_id = $2::uuid "
		       "GROUP BY 1, 2",
		       q.where) != 0)
		goto out;
	res = db_query(conn, sql.data, (int)q.nparams + 2, params);
	if (res == NULL)
		goto out;
	memset(counts, 0, CAMPAIGN_MAX_PHASES * sizeof(*counts));
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		int64_t phase = db_int(res, i, 0);
		int64_t n = db_int(res, i, 2);

		if (phase == -1) {
			m = (uint64_t)n;
			continue;
		}
		if (phase < 0 || phase >= CAMPAIGN_MAX_PHASES) {
			log_warn("campaign %s: devices in phase %" PRId64, id,
				 phase);
			continue;
		}
		if (counts_add(&counts[phase], PQgetvalue(res, i, 1),
			       (uint32_t)n) != 0) {
			log_warn("campaign %s: unknown device state %s", id,
				 PQgetvalue(res, i, 1));
			goto out;
		}
	}
	*matched = m;
	rc = STORE_OK;
out:
	PQclear(res);
	free(params);
	buf_free(&sql);
	selector_sql_free(&q);
	selector_free(sel);
	return rc;
}

enum store_rc
store_campaign_counts(struct store *st, const struct campaign_row *c,
		      struct campaign_counts *counts, uint64_t *matched)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return STORE_ERR;
	return counts_read(conn, c->id, c->selector ? c->selector : "",
			   CAMP_DEFAULT_HEARTBEAT_S, counts, matched);
}
