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
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "core/audit.h"
#include "core/campaign.h"
#include "core/campaign_json.h"
#include "core/idempotency.h"
#include "core/page.h"
#include "core/selector.h"
#include "core/store_campaigns.h"
#include "db/audit.h"
#include "db/campaign_row.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "db/query.h"
#include "db/selector_sql.h"
#include "db/store.h"
#include "log.h"

const struct selector_columns db_campaign_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = DB_CAMPAIGN_ONLINE_SQL("$1"),
	.status = "d.status",
	.labels = "d.labels",
};

void
db_campaign_cutoffs_text(const struct campaign_def *def,
			 const uint64_t *cutoffs, char *out, size_t cap)
{
	size_t len = 0;

	len += (size_t)snprintf(out, cap, "{");
	for (size_t p = 0; p < def->n_phases && len < cap; p++)
		len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64,
					p > 0 ? "," : "", cutoffs[p]);
	if (len < cap)
		snprintf(out + len, cap - len, "}");
}

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
 * The devices of the matched set that have no row yet (pending), by the
 * phase their position puts them in (DB_CAMPAIGN_PHASES_CTE with the
 * cutoffs for *matched), into counts[].pending: the devices the driver
 * would admit next, so a phase never waits for a device that another
 * phase holds.
 */
static enum store_rc
pending_read(PGconn *conn, const struct campaign_row *c,
	     const struct selector *sel, const char *hb, uint64_t matched,
	     struct campaign_counts *counts)
{
	uint64_t cutoffs[CAMPAIGN_MAX_PHASES];
	char cuts[DB_CAMPAIGN_CUTOFFS_MAX];
	const char *fixed[3] = {hb, c->id, cuts};
	PGresult *res;

	for (size_t p = 0; p < c->def.n_phases; p++)
		cutoffs[p] = campaign_phase_cutoff(&c->def, p, matched);
	db_campaign_cutoffs_text(&c->def, cutoffs, cuts, sizeof(cuts));
	res = selector_query(
		conn, sel, &db_campaign_columns,
		DB_CAMPAIGN_PHASES_CTE(
			"$2",
			"$3") "SELECT p.phase, count(*) FROM p WHERE p.fresh "
			      "GROUP BY 1",
		fixed, 3, "campaign pending");
	if (res == NULL)
		return STORE_ERR;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t phase = db_int(res, i, 0);

		/* past the last cutoff: not in any phase (none when the
		 * cutoffs hold every matched device) */
		if (phase >= 0 && (size_t)phase < c->def.n_phases)
			counts[phase].pending = (uint32_t)db_int(res, i, 1);
	}
	PQclear(res);
	return STORE_OK;
}

/*
 * Counts of campaign c: *matched (the active devices its selector
 * matches plus its admitted devices that no longer match, not excluded
 * or reverted), the admitted devices by phase and state, and the pending
 * ones by phase (pending_read). hb_s judges `online` in the selector.
 */
static enum store_rc
counts_read(PGconn *conn, const struct campaign_row *c, long hb_s,
	    struct campaign_counts *counts, uint64_t *matched)
{
	struct selector *sel = NULL;
	enum store_rc rc = STORE_ERR;
	PGresult *res = NULL;
	char hb[24], err[160];
	const char *fixed[2] = {hb, c->id};
	uint64_t m = 0;

	snprintf(hb, sizeof(hb), "%ld", hb_s);
	if (selector_parse(c->selector ? c->selector : "", &sel, err,
			   sizeof(err)) != 0) {
		log_warn("campaign %s: selector: %s", c->id, err);
		return STORE_ERR;
	}
	res = selector_query(
		conn, sel, &db_campaign_columns,
		"SELECT -1, 'matched', count(*) FROM (SELECT d.id FROM "
		"devices d LEFT JOIN device_sessions s ON s.device_id = d.id "
		"WHERE d.status = 'active' AND $1::double precision IS NOT "
		"NULL AND (%s) UNION SELECT device_id FROM campaign_devices "
		"WHERE campaign_id = $2::uuid AND state NOT IN ('excluded', "
		"'reverted')) m UNION ALL SELECT phase, state, count(*) FROM "
		"campaign_devices WHERE campaign_id = $2::uuid GROUP BY 1, 2",
		fixed, 2, "campaign counts");
	if (res == NULL)
		goto out;
	memset(counts, 0, CAMPAIGN_MAX_PHASES * sizeof(*counts));
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t phase = db_int(res, i, 0);
		int64_t n = db_int(res, i, 2);

		if (phase == -1) {
			m = (uint64_t)n;
			continue;
		}
		if (phase < 0 || phase >= CAMPAIGN_MAX_PHASES) {
			log_warn("campaign %s: devices in phase %" PRId64,
				 c->id, phase);
			continue;
		}
		if (counts_add(&counts[phase], PQgetvalue(res, i, 1),
			       (uint32_t)n) != 0) {
			log_warn("campaign %s: unknown device state %s", c->id,
				 PQgetvalue(res, i, 1));
			goto out;
		}
	}
	if (pending_read(conn, c, sel, hb, m, counts) != STORE_OK)
		goto out;
	*matched = m;
	rc = STORE_OK;
out:
	PQclear(res);
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
	return counts_read(conn, c, strtol(DB_CAMPAIGN_HEARTBEAT_S, NULL, 10),
			   counts, matched);
}

/* ---- shared pieces of the operator's half ------------------------------ */

static enum campaign_rc
rollback(PGconn *conn, enum campaign_rc rc)
{
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

/* One campaign as the API shows it, without matched and counts (added
 * in C by doc_read); FROM campaigns c LEFT JOIN config_profiles p. */
#define CAMP_DOC                                                             \
	"json_build_object('id', c.id, 'name', c.name, 'kind', c.kind, "     \
	"'status', c.status, 'selector', c.selector, 'artifact_id', "        \
	"c.artifact_id, 'profile', p.name, 'version', c.profile_version, "   \
	"'deployment_id', c.deployment_id, 'definition', c.definition, "     \
	"'phase', CASE WHEN c.started_at IS NULL THEN 0 ELSE c.phase + 1 "   \
	"END, 'phases', CASE WHEN jsonb_typeof(c.definition->'phases') = "   \
	"'array' THEN jsonb_array_length(c.definition->'phases') ELSE 0 "    \
	"END, 'pause_reason', c.pause_reason, 'paused_by', c.paused_by, "    \
	"'created_by', c.created_by, 'created_at', fleet_ts(c.created_at), " \
	"'started_at', fleet_ts(c.started_at), 'finished_at', "              \
	"fleet_ts(c.finished_at), 'updated_at', fleet_ts(c.updated_at), "    \
	"'revision', c.revision)"
#define CAMP_FROM                      \
	" FROM campaigns c LEFT JOIN " \
	"config_profiles p ON p.id = c.profile_id "

/* The selector's matches among active devices on conn: how many, and how
 * many of them are offline now. $1 the heartbeat, the selector's
 * parameters from $2. */
static enum campaign_rc
match_count(PGconn *conn, const struct selector *sel, long hb_s,
	    uint64_t *matched, uint64_t *offline)
{
	char hb[24];
	const char *fixed[1] = {hb};
	PGresult *res;

	snprintf(hb, sizeof(hb), "%ld", hb_s);
	res = selector_query(conn, sel, &db_campaign_columns,
			     "SELECT count(*), count(*) FILTER (WHERE "
			     "NOT " DB_CAMPAIGN_ONLINE_SQL(
				     "$1") ") FROM devices d LEFT JOIN "
					   "device_sessions s ON s.device_id "
					   "= d.id WHERE d.status = 'active' "
					   "AND (%s)",
			     fixed, 1, "campaign preflight");
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	*matched = (uint64_t)db_int(res, 0, 0);
	*offline = (uint64_t)db_int(res, 0, 1);
	PQclear(res);
	return CAMPAIGN_OK;
}

/* An event of the campaign's log; phase -1 for none. details: a JSON
 * object text or NULL. The message is cut to 1000 characters (the
 * column holds 4096 bytes). */
static enum campaign_rc
event_add(PGconn *conn, const char *id, const char *actor, const char *kind,
	  long phase, const char *message, const char *details)
{
	char ph[24];
	const char *params[6] = {id,	  actor,  kind, phase >= 0 ? ph : NULL,
				 message, details};

	snprintf(ph, sizeof(ph), "%ld", phase);
	if (db_command(conn,
		       "INSERT INTO campaign_events (campaign_id, actor, kind, "
		       "phase, message, details) VALUES ($1::uuid, $2, $3, "
		       "$4::int, left($5, 1000), coalesce($6::jsonb, '{}'))",
		       6, params) != STORE_OK)
		return CAMPAIGN_ERR_STORE;
	return CAMPAIGN_OK;
}

/* The event of a phase release: "phase 1 of 4 released: 3 of 40
 * devices", with the figures in details. */
static enum campaign_rc
event_released(PGconn *conn, const char *id, const char *actor,
	       const struct campaign_def *def, size_t phase, uint64_t matched)
{
	uint64_t cut = campaign_phase_cutoff(def, phase, matched);
	char msg[160], details[160];

	snprintf(msg, sizeof(msg),
		 "phase %zu of %zu released: %" PRIu64 " of %" PRIu64
		 " devices",
		 phase + 1, def->n_phases, cut, matched);
	snprintf(details, sizeof(details),
		 "{\"phase\": %zu, \"cutoff\": %" PRIu64
		 ", \"matched\": %" PRIu64 "}",
		 phase + 1, cut, matched);
	return event_add(conn, id, actor, "phase_released", (long)phase, msg,
			 details);
}

static enum campaign_rc
notify(PGconn *conn, const char *id)
{
	const char *params[1] = {id};

	if (db_command(conn, "SELECT pg_notify('fleet_campaign', $1)", 1,
		       params) != STORE_OK)
		return CAMPAIGN_ERR_STORE;
	return CAMPAIGN_OK;
}

/* Adds matched, counts (one per phase) and totals to doc. */
static int
doc_add_counts(json_t *doc, const struct campaign_def *def, uint64_t matched,
	       const struct campaign_counts *counts)
{
	struct campaign_counts tot;
	json_t *arr = json_array();
	json_t *t;

	memset(&tot, 0, sizeof(tot));
	if (arr == NULL)
		return -1;
	for (size_t p = 0; p < def->n_phases; p++) {
		const struct campaign_counts *c = &counts[p];
		json_t *o = campaign_counts_to_json(p, c);

		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return -1;
		}
		tot.total += c->total;
		tot.pending += c->pending;
		tot.offered += c->offered;
		tot.in_progress += c->in_progress;
		tot.succeeded += c->succeeded;
		tot.failed += c->failed;
		tot.silent += c->silent;
		tot.rolled_back += c->rolled_back;
	}
	t = campaign_counts_to_json(SIZE_MAX, &tot);
	if (t == NULL || json_object_set_new(doc, "counts", arr) != 0) {
		json_decref(t);
		json_decref(arr);
		return -1;
	}
	if (json_object_set_new(doc, "totals", t) != 0 ||
	    json_object_set_new(doc, "matched",
				json_integer((json_int_t)matched)) != 0)
		return -1;
	return 0;
}

/*
 * The campaign document on conn (inside the caller's transaction, if
 * any, so an operation answers what it committed): the row's fields,
 * then matched, per-phase counts and totals. CAMPAIGN_NOTFOUND.
 */
static enum campaign_rc
doc_read(PGconn *conn, const char *id, long hb_s, json_t **doc)
{
	struct campaign_counts counts[CAMPAIGN_MAX_PHASES];
	const char *params[1] = {id};
	enum campaign_rc rc = CAMPAIGN_ERR_STORE;
	struct campaign_row row;
	json_t *v = NULL;
	PGresult *res;
	uint64_t matched = 0;
	char err[256];

	memset(&row, 0, sizeof(row));
	res = db_query(conn,
		       "SELECT " DB_CAMPAIGN_ROW_COLS ", " CAMP_DOC
		       "::text" CAMP_FROM "WHERE c.id = $1::uuid",
		       1, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return CAMPAIGN_NOTFOUND;
	}
	if (db_campaign_row_read(res, 0, &row, err, sizeof(err)) != 0) {
		log_warn("%s", err);
		goto out;
	}
	v = json_loads(PQgetvalue(res, 0, DB_CAMPAIGN_ROW_NCOLS), 0, NULL);
	if (v == NULL)
		goto out;
	if (counts_read(conn, &row, hb_s, counts, &matched) != STORE_OK)
		goto out;
	campaign_counts_fill(&row.def, counts);
	if (doc_add_counts(v, &row.def, matched, counts) != 0)
		goto out;
	*doc = v;
	v = NULL;
	rc = CAMPAIGN_OK;
out:
	json_decref(v);
	campaign_row_clear(&row);
	PQclear(res);
	return rc;
}

/* A page's rows: at most page->limit of them in *items, and the cursor
 * (column ccol) of the last one in next when there are more. */
static enum campaign_rc
page_rows(PGresult *res, const struct page *page, int col, int ccol,
	  json_t **items, char next[PAGE_CURSOR_MAX])
{
	return db_json_page(res, page, col, ccol, items, next,
			    PAGE_CURSOR_MAX) == 0
		       ? CAMPAIGN_OK
		       : CAMPAIGN_ERR_STORE;
}

static enum campaign_rc
exists(PGconn *conn, const char *id)
{
	const char *params[1] = {id};
	PGresult *res;
	int rows;

	res = db_query(conn, "SELECT 1 FROM campaigns WHERE id = $1::uuid", 1,
		       params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	rows = PQntuples(res);
	PQclear(res);
	return rows == 1 ? CAMPAIGN_OK : CAMPAIGN_NOTFOUND;
}

/* ---- create --------------------------------------------------------------- */

/* The artifact exists, its file is complete and it has not expired. */
static enum campaign_rc
artifact_check(PGconn *conn, const char *artifact_id)
{
	const char *params[1] = {artifact_id};
	enum campaign_rc rc = CAMPAIGN_OK;
	PGresult *res;

	if (artifact_id == NULL)
		return CAMPAIGN_UNKNOWN_ARTIFACT;
	res = db_query(conn,
		       "SELECT coalesce(b.complete, false), a.expires_at <= "
		       "now() FROM artifacts a LEFT JOIN artifact_blobs b ON "
		       "b.sha256 = a.sha256 WHERE a.id = $1::uuid",
		       1, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	if (PQntuples(res) != 1)
		rc = CAMPAIGN_UNKNOWN_ARTIFACT;
	else if (PQgetvalue(res, 0, 0)[0] != 't')
		rc = CAMPAIGN_ARTIFACT_NOT_READY;
	else if (PQgetvalue(res, 0, 1)[0] == 't')
		rc = CAMPAIGN_ARTIFACT_EXPIRED;
	PQclear(res);
	return rc;
}

/* The profile by name and its version: the profile's id into id. */
static enum campaign_rc
profile_check(PGconn *conn, const char *name, int version, char id[37])
{
	char ver[24];
	const char *params[2] = {name, ver};
	enum campaign_rc rc = CAMPAIGN_OK;
	PGresult *res;

	if (name == NULL)
		return CAMPAIGN_PROFILE_UNKNOWN;
	snprintf(ver, sizeof(ver), "%d", version);
	res = db_query(conn,
		       "SELECT p.id::text, v.version IS NOT NULL FROM "
		       "config_profiles p LEFT JOIN config_versions v ON "
		       "v.profile_id = p.id AND v.version = $2::int WHERE "
		       "p.name = $1",
		       2, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	if (PQntuples(res) != 1)
		rc = CAMPAIGN_PROFILE_UNKNOWN;
	else if (PQgetvalue(res, 0, 1)[0] != 't')
		rc = CAMPAIGN_VERSION_UNKNOWN;
	else
		id_copy(id, PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* The dry run's answer: per-phase sizes for the fleet as it is now and
 * the earliest completion the soak times allow. */
static char *
preflight_answer(const struct campaign_def *def, uint64_t matched,
		 uint64_t offline)
{
	uint64_t sizes[CAMPAIGN_MAX_PHASES];
	int64_t min = campaign_min_duration(def);
	time_t at = time(NULL) + (time_t)min;
	json_t *doc = NULL, *phases = json_array();
	char *text = NULL;
	char when[32];
	struct tm tm;

	if (phases == NULL || gmtime_r(&at, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		goto out;
	campaign_phase_sizes(def, matched, sizes);
	for (size_t p = 0; p < def->n_phases; p++) {
		json_t *o = json_pack("{s:I, s:I}", "phase", (json_int_t)p + 1,
				      "devices", (json_int_t)sizes[p]);

		if (o == NULL || json_array_append_new(phases, o) != 0)
			goto out;
	}
	doc = json_pack("{s:b, s:I, s:I, s:O, s:I, s:s}", "dry_run", 1,
			"matched", (json_int_t)matched, "offline",
			(json_int_t)offline, "phases", phases,
			"min_duration_seconds", (json_int_t)min,
			"earliest_completion", when);
	if (doc != NULL)
		text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(phases);
	json_decref(doc);
	return text;
}

/* The campaigns row and its first events. */
static enum campaign_rc
create_write(PGconn *conn, const struct campaign_create *req,
	     const char *profile_id, uint64_t matched)
{
	char ver[24];
	const char *params[10] = {
		req->id,
		req->name,
		campaign_kind_name(req->kind),
		req->start ? "running" : "draft",
		req->selector_text ? req->selector_text : "",
		req->kind == CAMPAIGN_FIRMWARE ? req->artifact_id : NULL,
		req->kind == CAMPAIGN_CONFIG ? profile_id : NULL,
		req->kind == CAMPAIGN_CONFIG ? ver : NULL,
		req->definition,
		req->actor,
	};
	char msg[320];
	enum campaign_rc rc;

	snprintf(ver, sizeof(ver), "%d", req->profile_version);
	if (db_command(conn,
		       "INSERT INTO campaigns (id, name, kind, status, "
		       "selector, artifact_id, profile_id, profile_version, "
		       "definition, phase_started_at, started_at, created_by) "
		       "VALUES ($1::uuid, $2, $3, $4::text, $5, $6::uuid, "
		       "$7::uuid, $8::int, $9::jsonb, CASE WHEN $4::text = "
		       "'running' THEN now() END, CASE WHEN $4::text = "
		       "'running' THEN now() END, $10)",
		       10, params) != STORE_OK)
		return CAMPAIGN_ERR_STORE;
	snprintf(msg, sizeof(msg),
		 "%s campaign created by %.80s: %zu phases, %" PRIu64
		 " devices match",
		 campaign_kind_name(req->kind), req->actor, req->def->n_phases,
		 matched);
	rc = event_add(conn, req->id, req->actor, "created", -1, msg, NULL);
	if (rc == CAMPAIGN_OK && req->start) {
		snprintf(msg, sizeof(msg), "started by %.80s", req->actor);
		rc = event_add(conn, req->id, req->actor, "started", 0, msg,
			       NULL);
	}
	if (rc == CAMPAIGN_OK && req->start)
		rc = event_released(conn, req->id, req->actor, req->def, 0,
				    matched);
	return rc;
}

enum campaign_rc
store_campaign_create(struct store *st, const struct campaign_create *req,
		      char **answer)
{
	PGconn *conn = store_conn(st);
	struct audit_entry audit;
	struct idem_record rec;
	enum campaign_rc rc;
	uint64_t matched = 0, offline = 0;
	char profile_id[37] = "";
	json_t *doc = NULL;
	char *text = NULL;
	int irc;

	*answer = NULL;
	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	if (db_exec(conn, "BEGIN") != 0)
		return CAMPAIGN_ERR_STORE;
	rc = CAMPAIGN_OK;
	if (req->kind == CAMPAIGN_FIRMWARE)
		rc = artifact_check(conn, req->artifact_id);
	else if (req->kind == CAMPAIGN_CONFIG)
		rc = profile_check(conn, req->profile, req->profile_version,
				   profile_id);
	if (rc == CAMPAIGN_OK)
		rc = match_count(conn, req->selector, req->heartbeat_timeout_s,
				 &matched, &offline);
	if (rc == CAMPAIGN_OK && matched == 0)
		rc = CAMPAIGN_NO_MATCH;
	if (rc != CAMPAIGN_OK)
		return rollback(conn, rc);
	if (req->dry_run) {
		text = preflight_answer(req->def, matched, offline);
		rc = rollback(conn, text ? CAMPAIGN_OK : CAMPAIGN_ERR_STORE);
		*answer = text;
		return rc;
	}
	rc = create_write(conn, req, profile_id, matched);
	if (rc == CAMPAIGN_OK)
		rc = doc_read(conn, req->id, req->heartbeat_timeout_s, &doc);
	if (rc == CAMPAIGN_OK) {
		text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
		if (text == NULL)
			rc = CAMPAIGN_ERR_STORE;
	}
	if (rc == CAMPAIGN_OK && req->idem != NULL) {
		rec = *req->idem;
		rec.status = 201;
		rec.body = text;
		irc = db_idem_insert(conn, &rec);
		if (irc != 0)
			rc = irc == DB_CONFLICT ? CAMPAIGN_IDEM_TAKEN
						: CAMPAIGN_ERR_STORE;
	}
	memset(&audit, 0, sizeof(audit));
	audit.actor = req->actor;
	audit.action = "campaign.create";
	audit.target = req->id;
	audit_add_str(&audit, "name", req->name);
	audit_add_str(&audit, "kind", campaign_kind_name(req->kind));
	audit_add_str(&audit, "selector",
		      req->selector_text ? req->selector_text : "");
	if (req->kind == CAMPAIGN_FIRMWARE)
		audit_add_str(&audit, "artifact_id", req->artifact_id);
	else if (req->kind == CAMPAIGN_CONFIG) {
		audit_add_str(&audit, "profile", req->profile);
		audit_add_int(&audit, "version", req->profile_version);
	}
	audit_add_str(&audit, "status", req->start ? "running" : "draft");
	if (rc == CAMPAIGN_OK && db_audit_insert(conn, &audit) != DB_OK)
		rc = CAMPAIGN_ERR_STORE;
	if (rc == CAMPAIGN_OK)
		rc = notify(conn, req->id);
	if (rc != CAMPAIGN_OK) {
		free(text);
		json_decref(doc);
		return rollback(conn, rc);
	}
	json_decref(doc);
	if (db_exec(conn, "COMMIT") != 0) {
		free(text);
		return CAMPAIGN_ERR_STORE;
	}
	*answer = text;
	return CAMPAIGN_OK;
}

/* ---- list, show, devices, events ------------------------------------------ */

enum campaign_rc
store_campaign_list(struct store *st, const char *status,
		    const struct page *page, json_t **items,
		    char next[PAGE_CURSOR_MAX])
{
	PGconn *conn = store_conn(st);
	char limit[16];
	const char *params[3] = {limit, page->after, status};
	enum campaign_rc rc;
	PGresult *res;

	next[0] = '\0';
	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	if (page->after != NULL &&
	    !page_cursor_valid(page->after, PAGE_CURSOR_TIME_ID)) {
		log_warn("campaigns: a cursor the store did not make");
		return CAMPAIGN_ERR_STORE;
	}
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(conn,
		       "SELECT " CAMP_DOC "::text, fleet_cursor(c.created_at, "
		       "c.id)" CAMP_FROM
		       "WHERE ($3::text IS NULL OR c.status = $3) AND "
		       "($2::text IS NULL OR (c.created_at, c.id) < "
		       "(fleet_cursor_ts(split_part($2, ' ', 1)::bigint), "
		       "split_part($2, ' ', 2)::uuid)) ORDER BY c.created_at "
		       "DESC, c.id DESC LIMIT $1::int",
		       3, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	rc = page_rows(res, page, 0, 1, items, next);
	PQclear(res);
	return rc;
}

enum campaign_rc
store_campaign_get(struct store *st, const char *id, long heartbeat_timeout_s,
		   json_t **doc)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	return doc_read(conn, id, heartbeat_timeout_s, doc);
}

/*
 * Devices are paged by (rank, device id). The cursor has the shape the
 * API already checks for time-ordered lists ("<number> <uuid>",
 * PAGE_CURSOR_TIME_ID): the number is the rank's first 56 bits (its
 * first 14 hex digits, below the largest time such a cursor may hold),
 * and the page order is that prefix, then the device id. Ranks are
 * SHA-256 bits, so this is the rank order but for devices whose ranks
 * share 56 bits, which are ordered by id: still one total order.
 */
#define CAMP_RANK_KEY "substr(x.rank, 1, 14) COLLATE \"C\""

enum campaign_rc
store_campaign_devices(struct store *st, const char *id, const char *state,
		       int phase, const struct page *page, json_t **items,
		       char next[PAGE_CURSOR_MAX])
{
	PGconn *conn = store_conn(st);
	char limit[16], ph[16];
	const char *params[5] = {id, limit, page->after, state, ph};
	enum campaign_rc rc;
	PGresult *res;

	next[0] = '\0';
	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	if (page->after != NULL &&
	    !page_cursor_valid(page->after, PAGE_CURSOR_TIME_ID)) {
		log_warn("campaign devices: a cursor the store did not make");
		return CAMPAIGN_ERR_STORE;
	}
	rc = exists(conn, id);
	if (rc != CAMPAIGN_OK)
		return rc;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	snprintf(ph, sizeof(ph), "%d", phase);
	res = db_query(
		conn,
		"SELECT json_build_object('device_id', x.device_id, 'phase', "
		"x.phase + 1, 'rank', x.rank, 'state', x.state, 'reason', "
		"x.reason, 'admitted_at', fleet_ts(x.admitted_at), "
		"'finished_at', fleet_ts(x.finished_at))::text, ('x' || "
		"substr(x.rank, 1, 14))::bit(56)::bigint::text || ' ' || "
		"x.device_id::text FROM campaign_devices x WHERE "
		"x.campaign_id = $1::uuid AND ($4::text IS NULL OR x.state = "
		"$4) AND ($5::int < 0 OR x.phase = $5::int) AND ($3::text IS "
		"NULL OR (" CAMP_RANK_KEY ", x.device_id) > (lpad(to_hex("
		"split_part($3, ' ', 1)::bigint), 14, '0') COLLATE \"C\", "
		"split_part($3, ' ', 2)::uuid)) ORDER BY " CAMP_RANK_KEY
		", x.device_id LIMIT $2::int",
		5, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	rc = page_rows(res, page, 0, 1, items, next);
	PQclear(res);
	return rc;
}

enum campaign_rc
store_campaign_events(struct store *st, const char *id, const struct page *page,
		      json_t **items, char next[PAGE_CURSOR_MAX])
{
	PGconn *conn = store_conn(st);
	char limit[16];
	const char *params[3] = {id, limit, page->after};
	enum campaign_rc rc;
	PGresult *res;

	next[0] = '\0';
	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	if (page->after != NULL &&
	    !page_cursor_valid(page->after, PAGE_CURSOR_ID)) {
		log_warn("campaign events: a cursor the store did not make");
		return CAMPAIGN_ERR_STORE;
	}
	rc = exists(conn, id);
	if (rc != CAMPAIGN_OK)
		return rc;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(conn,
		       "SELECT json_build_object('id', e.id, 'at', "
		       "fleet_ts(e.at), 'actor', e.actor, 'kind', e.kind, "
		       "'phase', e.phase + 1, 'message', e.message, "
		       "'details', e.details)::text, e.id::text FROM "
		       "campaign_events e WHERE e.campaign_id = $1::uuid AND "
		       "($3::bigint IS NULL OR e.id > $3::bigint) ORDER BY "
		       "e.id LIMIT $2::int",
		       3, params);
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	rc = page_rows(res, page, 0, 1, items, next);
	PQclear(res);
	return rc;
}

/* ---- operator transitions --------------------------------------------------- */

static const char *
op_name(enum campaign_event ev)
{
	switch (ev) {
	case CAMPAIGN_EV_START:
		return "start";
	case CAMPAIGN_EV_PAUSE:
		return "pause";
	case CAMPAIGN_EV_RESUME:
		return "resume";
	case CAMPAIGN_EV_ABORT:
		return "abort";
	default:
		return NULL;
	}
}

/*
 * RESUME with a new selector: admitted devices it no longer matches
 * (or no longer active) that have not succeeded leave the counts as
 * `excluded`, reason 'selector'. $1 the heartbeat, $2 the campaign, the
 * selector's parameters from $3. *n: how many.
 */
static enum campaign_rc
exclude_unmatched(PGconn *conn, const char *id, const struct selector *sel,
		  long hb_s, uint64_t *n)
{
	char hb[24];
	const char *fixed[2] = {hb, id};
	PGresult *res;

	snprintf(hb, sizeof(hb), "%ld", hb_s);
	res = selector_query(
		conn, sel, &db_campaign_columns,
		"WITH x AS (UPDATE campaign_devices cd SET state = 'excluded', "
		"reason = 'selector', updated_at = now() WHERE cd.campaign_id "
		"= $2::uuid AND cd.state NOT IN ('succeeded', 'excluded', "
		"'reverted') AND NOT EXISTS (SELECT 1 FROM devices d LEFT JOIN "
		"device_sessions s ON s.device_id = d.id WHERE d.id = "
		"cd.device_id AND d.status = 'active' AND $1::double "
		"precision IS NOT NULL AND (%s)) RETURNING 1) SELECT count(*) "
		"FROM x",
		fixed, 2, "campaign resume");
	if (res == NULL)
		return CAMPAIGN_ERR_STORE;
	*n = (uint64_t)db_int(res, 0, 0);
	PQclear(res);
	return CAMPAIGN_OK;
}

/* The row's new state for the event; $1 id, $2 new status, $3 reason,
 * $4 actor, $5 new selector or NULL. */
static enum campaign_rc
op_update(PGconn *conn, const struct campaign_op *op, const char *to)
{
	static const char *const sets[] = {
		[CAMPAIGN_EV_START] = "phase = 0, phase_started_at = now(), "
				      "started_at = now(), gate_met_at = NULL",
		[CAMPAIGN_EV_PAUSE] = "pause_reason = coalesce($3, 'paused by "
				      "' || $4), paused_by = $4",
		[CAMPAIGN_EV_RESUME] = "pause_reason = NULL, paused_by = NULL, "
				       "gate_met_at = NULL, selector = "
				       "coalesce($5, selector)",
		[CAMPAIGN_EV_ABORT] = "finished_at = now(), abort_done = false",
	};
	const char *params[5] = {op->id, to, op->reason, op->actor,
				 op->ev == CAMPAIGN_EV_RESUME &&
						 op->selector != NULL
					 ? op->selector_text
					 : NULL};
	char sql[512];

	/* num_nulls() only gives every parameter a type: each SET uses
	 * some of them. */
	snprintf(sql, sizeof(sql),
		 "UPDATE campaigns SET status = $2, %s, revision = revision + "
		 "1, updated_at = now() WHERE id = $1::uuid AND "
		 "num_nulls($3::text, $4::text, $5::text) >= 0",
		 sets[op->ev]);
	if (db_command(conn, sql, 5, params) != STORE_OK)
		return CAMPAIGN_ERR_STORE;
	return CAMPAIGN_OK;
}

/* The events of the transition (and of a START's phase release or a
 * RESUME's new selector). */
static enum campaign_rc
op_events(PGconn *conn, const struct campaign_op *op,
	  const struct campaign_row *row, long hb_s, uint64_t excluded)
{
	static const char *const kinds[] = {
		[CAMPAIGN_EV_START] = "started",
		[CAMPAIGN_EV_PAUSE] = "paused",
		[CAMPAIGN_EV_RESUME] = "resumed",
		[CAMPAIGN_EV_ABORT] = "aborted",
	};
	long phase = op->ev == CAMPAIGN_EV_START ? 0 : (long)row->state.phase;
	json_t *details = NULL;
	char *dtext = NULL;
	char msg[1200];
	enum campaign_rc rc = CAMPAIGN_ERR_STORE;
	uint64_t matched = 0, offline = 0;
	struct selector *sel = NULL;
	char err[160];

	snprintf(msg, sizeof(msg), "%s by %.80s%s%.1000s", kinds[op->ev],
		 op->actor, op->reason ? ": " : "",
		 op->reason ? op->reason : "");
	details = json_pack("{s:s, s:s?}", "from",
			    campaign_status_name(row->status), "reason",
			    op->reason);
	if (details == NULL ||
	    (dtext = json_dumps(details, JSON_COMPACT)) == NULL)
		goto out;
	rc = event_add(conn, op->id, op->actor, kinds[op->ev], phase, msg,
		       dtext);
	if (rc != CAMPAIGN_OK)
		goto out;
	if (op->ev == CAMPAIGN_EV_RESUME && op->selector != NULL) {
		snprintf(msg, sizeof(msg),
			 "selector changed by %.80s from \"%.400s\" to "
			 "\"%.400s\": %" PRIu64 " admitted devices excluded",
			 op->actor, row->selector, op->selector_text, excluded);
		json_decref(details);
		details = json_pack("{s:s, s:s, s:I}", "from", row->selector,
				    "to", op->selector_text, "excluded",
				    (json_int_t)excluded);
		free(dtext);
		dtext = NULL;
		if (details == NULL ||
		    (dtext = json_dumps(details, JSON_COMPACT)) == NULL) {
			rc = CAMPAIGN_ERR_STORE;
			goto out;
		}
		rc = event_add(conn, op->id, op->actor, "selector_changed",
			       phase, msg, dtext);
	}
	if (rc == CAMPAIGN_OK && op->ev == CAMPAIGN_EV_START) {
		rc = CAMPAIGN_ERR_STORE;
		if (selector_parse(row->selector, &sel, err, sizeof(err)) !=
		    0) {
			log_warn("campaign %s: selector: %s", op->id, err);
			goto out;
		}
		rc = match_count(conn, sel, hb_s, &matched, &offline);
		if (rc == CAMPAIGN_OK)
			rc = event_released(conn, op->id, op->actor, &row->def,
					    0, matched);
	}
out:
	selector_free(sel);
	free(dtext);
	json_decref(details);
	return rc;
}

enum campaign_rc
store_campaign_op(struct store *st, const struct campaign_op *op,
		  long heartbeat_timeout_s, json_t **doc)
{
	PGconn *conn = store_conn(st);
	const char *params[1] = {op->id};
	enum campaign_status to = CAMPAIGN_DRAFT;
	struct audit_entry audit;
	struct campaign_row row;
	enum campaign_rc rc;
	uint64_t excluded = 0;
	char action[32], err[256];
	PGresult *res;
	json_t *v = NULL;

	memset(&row, 0, sizeof(row));
	if (op_name(op->ev) == NULL)
		return CAMPAIGN_BAD_TRANSITION;
	if (conn == NULL)
		return CAMPAIGN_ERR_STORE;
	if (db_exec(conn, "BEGIN") != 0)
		return CAMPAIGN_ERR_STORE;
	/* The row lock orders this against the driver's record and admit,
	 * which lock the same row and check the revision we bump. */
	res = db_query(conn,
		       "SELECT " DB_CAMPAIGN_ROW_COLS
		       " FROM campaigns c WHERE c.id = $1::uuid FOR UPDATE",
		       1, params);
	if (res == NULL)
		return rollback(conn, CAMPAIGN_ERR_STORE);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return rollback(conn, CAMPAIGN_NOTFOUND);
	}
	if (db_campaign_row_read(res, 0, &row, err, sizeof(err)) != 0) {
		log_warn("%s", err);
		PQclear(res);
		return rollback(conn, CAMPAIGN_ERR_STORE);
	}
	PQclear(res);
	if (op->if_match >= 0 && op->if_match != row.revision)
		rc = CAMPAIGN_PRECONDITION;
	else if (campaign_transition(row.status, op->ev, &to) != 0)
		rc = CAMPAIGN_BAD_TRANSITION;
	else
		rc = op_update(conn, op, campaign_status_name(to));
	if (rc == CAMPAIGN_OK && op->ev == CAMPAIGN_EV_RESUME &&
	    op->selector != NULL)
		rc = exclude_unmatched(conn, op->id, op->selector,
				       heartbeat_timeout_s, &excluded);
	if (rc == CAMPAIGN_OK)
		rc = op_events(conn, op, &row, heartbeat_timeout_s, excluded);
	if (rc != CAMPAIGN_OK)
		goto fail;
	snprintf(action, sizeof(action), "campaign.%s", op_name(op->ev));
	memset(&audit, 0, sizeof(audit));
	audit.actor = op->actor;
	audit.action = action;
	audit.target = op->id;
	audit_add_str(&audit, "from", campaign_status_name(row.status));
	audit_add_str(&audit, "to", campaign_status_name(to));
	audit_add_str(&audit, "reason", op->reason);
	if (op->ev == CAMPAIGN_EV_RESUME && op->selector != NULL) {
		audit_add_str(&audit, "selector", op->selector_text);
		audit_add_int(&audit, "excluded", (int64_t)excluded);
	}
	if (db_audit_insert(conn, &audit) != DB_OK) {
		rc = CAMPAIGN_ERR_STORE;
		goto fail;
	}
	rc = notify(conn, op->id);
	if (rc == CAMPAIGN_OK)
		rc = doc_read(conn, op->id, heartbeat_timeout_s, &v);
	if (rc != CAMPAIGN_OK)
		goto fail;
	campaign_row_clear(&row);
	if (db_exec(conn, "COMMIT") != 0) {
		json_decref(v);
		return CAMPAIGN_ERR_STORE;
	}
	*doc = v;
	return CAMPAIGN_OK;
fail:
	campaign_row_clear(&row);
	json_decref(v);
	return rollback(conn, rc);
}
