/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaigns on PostgreSQL, the driver's half (core/store_campaigns.h;
 * the contract is docs/internals/campaigns.md): the advisory lock that
 * makes one worker the driver, its wake-ups (LISTEN fleet_campaign), the
 * campaigns it looks at, syncing device states from the delivery's rows,
 * recording campaign_step's decisions, admitting devices and the effects
 * of an abort. Runs on the driver thread of whichever net worker holds
 * the lock, on that thread's own connection.
 *
 * Set-based throughout: admitting a phase of 10,000 devices is one
 * SELECT of the candidates (ranks, positions and phases computed by
 * PostgreSQL), a few INSERT/UPDATE .. SELECT statements whose device
 * lists travel as array parameters, and one NOTIFY, in one transaction
 * guarded by the campaign row (still running at the phase and revision
 * the driver saw), so a replaced driver never admits a device twice.
 * Sync updates only rows whose state changes. Every parameter is bound;
 * the only SQL text built here is the selector's WHERE fragment
 * (selector_sql.c, bound parameters too).
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "core/campaign.h"
#include "core/selector.h"
#include "core/store_campaigns.h"
#include "db/audit.h"
#include "db/campaign_row.h"
#include "db/config_assign.h"
#include "db/db.h"
#include "db/deployment_rows.h"
#include "db/query.h"
#include "db/selector_sql.h"
#include "db/store.h"
#include "log.h"

#define DRIVER_ACTOR "campaign-driver"

static void
rollback(PGconn *conn)
{
	(void)db_exec(conn, "ROLLBACK");
}

/* ---- the lock and the wake-ups ---------------------------------------- */

enum store_rc
store_campaign_driver_lock(struct store *st, bool *held)
{
	char key[24], name[64];
	const char *params[1] = {key};
	PGconn *conn;
	PGresult *res;
	bool had, now;

	*held = false;
	/* A lost connection is replaced here by a new backend, which holds
	 * no lock: the statement below then tries for it again. */
	conn = store_conn(st);
	if (conn == NULL)
		return STORE_ERR;
	snprintf(key, sizeof(key), "%d", CAMPAIGN_DRIVER_LOCK);
	/* Whether this session holds it already (pg_locks), else one try
	 * (CASE: evaluated only then): trying again while holding would
	 * stack the session lock. */
	res = db_query(conn,
		       "SELECT h, CASE WHEN h THEN true ELSE "
		       "pg_try_advisory_lock($1::bigint) END FROM "
		       "(SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype "
		       "= 'advisory' AND pid = pg_backend_pid() AND granted "
		       "AND classid = 0 AND objid = $1::bigint::oid AND "
		       "objsubid = 1) AS h) x",
		       1, params);
	if (res == NULL)
		return STORE_ERR;
	had = PQgetvalue(res, 0, 0)[0] == 't';
	now = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (now && !had) {
		/* So an operator (and the tests) can find the driving
		 * worker in pg_stat_activity. */
		snprintf(name, sizeof(name), "fleetd campaign driver pid=%ld",
			 (long)getpid());
		params[0] = name;
		if (db_command(conn,
			       "SELECT set_config('application_name', $1, "
			       "false)",
			       1, params) != STORE_OK)
			return STORE_ERR;
		log_info("campaigns: this worker drives campaigns now");
	}
	*held = now;
	return STORE_OK;
}

enum store_rc
store_campaign_wait(struct store *st, int timeout_ms, bool *woken)
{
	PGconn *conn = store_conn(st);
	struct pollfd pfd;
	PGnotify *note;
	bool any = false;

	*woken = false;
	if (conn == NULL)
		return STORE_ERR;
	/* Listening again is a no-op on the same backend, and makes a new
	 * one (after a reconnect) listen. */
	if (db_exec(conn, "LISTEN fleet_campaign") != 0)
		return STORE_ERR;
	if (PQconsumeInput(conn) == 0)
		return STORE_ERR;
	while ((note = PQnotifies(conn)) != NULL) {
		any = true;
		PQfreemem(note);
	}
	if (!any && timeout_ms > 0) {
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0)
			return STORE_ERR;
		if (poll(&pfd, 1, timeout_ms) > 0) {
			if (PQconsumeInput(conn) == 0 ||
			    PQstatus(conn) != CONNECTION_OK)
				return STORE_ERR;
			while ((note = PQnotifies(conn)) != NULL) {
				any = true;
				PQfreemem(note);
			}
		}
	}
	*woken = any;
	return STORE_OK;
}

/* ---- the campaigns to look at ----------------------------------------- */

/* The predicate of campaigns_live_idx, and completed campaigns whose
 * devices still move (a min_success below 1 completes with some still
 * updating: their states are synced until they finish); after the row's
 * columns, the artifact's expiry and "name version" (firmware). */
/* clang-format off */
#define CAMPAIGN_DUE_SQL                                                     \
	"SELECT " DB_CAMPAIGN_ROW_COLS ", "                                  \
	"coalesce(" DB_EPOCH("a.expires_at") ", 0), "                        \
	"coalesce(a.name || ' ' || a.version, '') "                          \
	"FROM campaigns c LEFT JOIN artifacts a ON a.id = c.artifact_id "    \
	"WHERE c.status IN ('running', 'paused') OR (c.status = 'aborted' "  \
	"AND NOT c.abort_done) OR (c.status = 'completed' AND EXISTS "       \
	"(SELECT 1 FROM campaign_devices x WHERE x.campaign_id = c.id AND "  \
	"x.state IN ('offered', 'in_progress'))) ORDER BY c.created_at, c.id"
/* clang-format on */

enum store_rc
store_campaign_due(struct store *st, struct campaign_row **out, size_t *n)
{
	PGconn *conn = store_conn(st);
	struct campaign_row *rows = NULL;
	PGresult *res;
	size_t count = 0;
	char err[160];
	int nrows;

	*out = NULL;
	*n = 0;
	if (conn == NULL)
		return STORE_ERR;
	res = db_query(conn, CAMPAIGN_DUE_SQL, 0, NULL);
	if (res == NULL)
		return STORE_ERR;
	nrows = PQntuples(res);
	if (nrows > 0) {
		rows = calloc((size_t)nrows, sizeof(*rows));
		if (rows == NULL) {
			PQclear(res);
			return STORE_ERR;
		}
	}
	for (int i = 0; i < nrows; i++) {
		/* A row that does not read (a definition this build
		 * refuses) is skipped and logged, not fatal for the
		 * others. */
		if (db_campaign_row_read(res, i, &rows[count], err,
					 sizeof(err)) != 0) {
			log_warn("campaign %s: %s", PQgetvalue(res, i, 0), err);
			continue;
		}
		rows[count].artifact_expires_at =
			db_int(res, i, DB_CAMPAIGN_ROW_NCOLS);
		snprintf(rows[count].artifact_label,
			 sizeof(rows[count].artifact_label), "%s",
			 PQgetvalue(res, i, DB_CAMPAIGN_ROW_NCOLS + 1));
		count++;
	}
	PQclear(res);
	if (count == 0) {
		free(rows);
		rows = NULL;
	}
	*out = rows;
	*n = count;
	return STORE_OK;
}

/* ---- sync ------------------------------------------------------------- */

/*
 * Each kind's mapping (docs/internals/campaigns.md, "One engine, three
 * deliveries") as one UPDATE .. FROM over the campaign's rows that can
 * still move, joined to the delivery's row, writing only those whose
 * state, as mapped, differs: the mapping is written once as a state, a
 * reason and a finish time, and used in the SET and in the WHERE, so an
 * unchanged campaign is one read of its open rows and nothing written.
 * Which rows can move: firmware and rotation rows until they finish (a
 * finished deployment row or rotation never changes again); config rows
 * until they succeed (a failed device may apply on a retry; once it
 * applied the campaign's document, a later change by someone else is
 * not the campaign's). Succeeded and silent rows are the health step's.
 * $1 the campaign, and for firmware $2 its deployment.
 */
#define SYNC_SQL(open, from, where, st, why, fin)                          \
	"UPDATE campaign_devices cd SET state = " st ", reason = " why     \
	", finished_at = " fin ", updated_at = now() FROM " from " WHERE " \
	"cd.campaign_id = $1::uuid AND cd.state IN " open " AND " where    \
	" AND (" st ") IS DISTINCT FROM cd.state"

/* clang-format off */
#define FW_ST                                                           \
	"CASE WHEN x.state IN ('pending', 'offered') THEN 'offered' "   \
	"WHEN x.state = 'committed' THEN 'succeeded' "                  \
	"WHEN x.state IN ('failed', 'refused', 'superseded') THEN "     \
	"'failed' WHEN x.state = 'rolled_back' THEN 'rolled_back' "     \
	"ELSE 'in_progress' END"
#define FW_WHY                                                          \
	"CASE WHEN x.state = 'superseded' THEN 'superseded' "           \
	"WHEN x.state IN ('failed', 'refused', 'rolled_back') THEN "    \
	"left(coalesce(x.reason, x.error, x.state), 4096) END"
#define FW_FIN "CASE WHEN x.finished THEN x.updated_at END"

static const char *const sync_firmware_sql = SYNC_SQL(
	"('offered', 'in_progress')", "deployment_devices x",
	"x.deployment_id = $2::uuid AND x.device_id = cd.device_id",
	FW_ST, FW_WHY, FW_FIN);

/* Success: a report of the campaign's generation or later, applied with
 * the desired hash (CONFIG_DRIFT_SQL's "in sync"); failure: failed for
 * that generation or later. A device that never reported stays
 * offered. */
#define CFG_NOW "r.generation >= cd.generation"
#define CFG_OK  CFG_NOW " AND r.status IN ('applied', 'drifted') AND " \
	"r.sha256 = c.desired_sha256"
#define CFG_BAD CFG_NOW " AND r.status = 'failed'"
#define CFG_ST                                                         \
	"CASE WHEN " CFG_OK " THEN 'succeeded' WHEN " CFG_BAD " THEN "  \
	"'failed' ELSE 'offered' END"
#define CFG_WHY                                                        \
	"CASE WHEN " CFG_BAD " THEN left(coalesce(r.reason, 'failed'), " \
	"4096) END"
#define CFG_FIN                                                        \
	"CASE WHEN (" CFG_OK ") OR (" CFG_BAD ") THEN r.reported_at END"

static const char *const sync_config_sql = SYNC_SQL(
	"('offered', 'failed')", "device_config_reported r, device_config c",
	"r.device_id = cd.device_id AND c.device_id = cd.device_id",
	CFG_ST, CFG_WHY, CFG_FIN);

/* Success: the rotation completed; in progress: a certificate was
 * issued for it but not installed yet; failure: the device was
 * decommissioned or a certificate of it revoked since its admission. */
#define ROT_REVOKED                                                     \
	"EXISTS (SELECT 1 FROM certificates k WHERE k.device_id = "     \
	"cd.device_id AND k.status = 'revoked' AND k.revoked_at >= "    \
	"cd.admitted_at)"
#define ROT_ST                                                          \
	"CASE WHEN r.completed_at IS NOT NULL THEN 'succeeded' "        \
	"WHEN d.status <> 'active' OR " ROT_REVOKED " THEN 'failed' "   \
	"WHEN EXISTS (SELECT 1 FROM certificates k WHERE k.device_id = " \
	"cd.device_id AND k.created_at >= r.requested_at) THEN "        \
	"'in_progress' ELSE 'offered' END"
#define ROT_WHY                                                         \
	"CASE WHEN r.completed_at IS NOT NULL THEN NULL "               \
	"WHEN d.status <> 'active' THEN 'decommissioned' "              \
	"WHEN " ROT_REVOKED " THEN 'revoked' END"
#define ROT_FIN                                                         \
	"CASE WHEN r.completed_at IS NOT NULL THEN r.completed_at "     \
	"WHEN d.status <> 'active' OR " ROT_REVOKED " THEN now() END"

static const char *const sync_rotation_sql = SYNC_SQL(
	"('offered', 'in_progress')", "cert_rotations r, devices d",
	"r.id = cd.rotation_id AND d.id = cd.device_id",
	ROT_ST, ROT_WHY, ROT_FIN);

/*
 * The health window: a succeeded device gone quiet whose last contact
 * was at most its phase's window ($3: seconds per phase, 1-based
 * array) after it finished is silent; a silent one online again is
 * succeeded. Gone quiet: no live session, and nothing heard for over
 * a heartbeat timeout. devices.last_seen is written at most once per
 * timeout while a session lives, so only a value older than two of them
 * says so; a device whose session just ended (its worker was killed and
 * replaced, it is reconnecting) is not silent for the second or two it
 * takes to come back. A device admitted as already running the release
 * did not update, so it cannot go silent after updating. $1 the
 * campaign, $2 the heartbeat.
 */
static const char *const sync_health_sql =
	"UPDATE campaign_devices cd SET state = CASE WHEN cd.state = "
	"'silent' THEN 'succeeded' ELSE 'silent' END, updated_at = now() "
	"FROM devices d LEFT JOIN device_sessions s ON s.device_id = d.id "
	"WHERE cd.campaign_id = $1::uuid AND cd.state IN ('succeeded', "
	"'silent') AND d.id = cd.device_id AND CASE WHEN cd.state = "
	"'succeeded' THEN NOT " DB_CAMPAIGN_ONLINE_SQL("$2")
	" AND d.last_seen < now() - 2 * $2::double precision * "
	"interval '1 second' AND cd.finished_at IS NOT NULL AND "
	"cd.reason IS DISTINCT FROM 'already-running' AND "
	"greatest(s.last_seen, d.last_seen) <= cd.finished_at + "
	"coalesce(($3::bigint[])[cd.phase + 1], 0) * interval '1 second' "
	"WHEN cd.state = 'silent' THEN " DB_CAMPAIGN_ONLINE_SQL("$2")
	" ELSE false END";
/* clang-format on */

/*
 * Devices an operator's new selector excluded (state excluded, reason
 * 'selector': store_campaign_op on resume) are no longer the campaign's
 * targets: firmware offers they have not started installing are
 * withdrawn (superseded, reason 'excluded'), and rotations the campaign
 * asked for them that are still pending are withdrawn. What they
 * installed stays (a rollback is a new, signed release); a config they
 * were given stays too (taking it back is an abort's revert).
 */
static enum store_rc
withdraw_excluded(PGconn *conn, const struct campaign_row *c)
{
	const char *params[2] = {c->id, c->deployment_id};
	PGresult *res;
	size_t n = 0;
	int rc = 0;

	if (c->kind == CAMPAIGN_ROTATION)
		return db_command(conn,
				  "DELETE FROM cert_rotations r USING "
				  "campaign_devices cd WHERE cd.campaign_id = "
				  "$1::uuid AND cd.state = 'excluded' AND "
				  "cd.reason = 'selector' AND r.id = "
				  "cd.rotation_id AND r.completed_at IS NULL "
				  "AND r.requested_by = 'campaign:' || "
				  "$1::uuid::text",
				  1, params);
	if (c->kind != CAMPAIGN_FIRMWARE)
		return STORE_OK;
	res = db_query(conn,
		       "SELECT coalesce(array_agg(x.device_id)::text, '{}'), "
		       "count(*) FROM campaign_devices cd JOIN "
		       "deployment_devices x ON x.deployment_id = $2::uuid AND "
		       "x.device_id = cd.device_id WHERE cd.campaign_id = "
		       "$1::uuid AND cd.state = 'excluded' AND cd.reason = "
		       "'selector' AND x.state IN " DB_DEPLOY_SUPERSEDABLE_SQL,
		       2, params);
	if (res == NULL)
		return STORE_ERR;
	if (db_int(res, 0, 1) > 0) {
		rc = db_exec(conn, "BEGIN");
		if (rc == 0)
			rc = db_deployment_withdraw(conn, c->deployment_id,
						    PQgetvalue(res, 0, 0),
						    "excluded", &n);
		if (rc == 0)
			rc = db_exec(conn, "COMMIT");
		if (rc != 0)
			rollback(conn);
		else
			log_info("campaign %s: %zu offers to devices its "
				 "selector no longer matches withdrawn",
				 c->id, n);
	}
	PQclear(res);
	return rc == 0 ? STORE_OK : STORE_ERR;
}

enum store_rc
store_campaign_sync(struct store *st, const struct campaign_row *c,
		    long heartbeat_timeout_s)
{
	PGconn *conn = store_conn(st);
	char hb[24], windows[CAMPAIGN_MAX_PHASES * 24 + 4];
	const char *params[3] = {c->id, NULL, NULL};
	const char *sql;
	size_t len = 0;
	int np = 1;

	if (conn == NULL)
		return STORE_ERR;
	switch (c->kind) {
	case CAMPAIGN_FIRMWARE:
		/* Nothing was admitted before the deployment exists. */
		if (c->deployment_id[0] == '\0')
			return STORE_OK;
		sql = sync_firmware_sql;
		params[1] = c->deployment_id;
		np = 2;
		break;
	case CAMPAIGN_CONFIG:
		sql = sync_config_sql;
		break;
	case CAMPAIGN_ROTATION:
		sql = sync_rotation_sql;
		break;
	default:
		return STORE_ERR;
	}
	windows[len++] = '{';
	for (size_t p = 0; p < c->def.n_phases && p < CAMPAIGN_MAX_PHASES; p++)
		len += (size_t)snprintf(windows + len, sizeof(windows) - len,
					"%s%" PRId64, p > 0 ? "," : "",
					c->def.phases[p].gate.health_window_s);
	snprintf(windows + len, sizeof(windows) - len, "}");
	snprintf(hb, sizeof(hb), "%ld", heartbeat_timeout_s);
	/* Statements each atomic: the health step reads what the mapping
	 * wrote, and a pass killed between them leaves rows the next pass
	 * finishes. */
	if (withdraw_excluded(conn, c) != STORE_OK ||
	    db_command(conn, sql, np, params) != STORE_OK)
		return STORE_ERR;
	params[1] = hb;
	params[2] = windows;
	return db_command(conn, sync_health_sql, 3, params);
}

/* ---- record ----------------------------------------------------------- */

static const char *
default_message(enum campaign_action a)
{
	switch (a) {
	case CAMPAIGN_ACT_GATE_MET:
		return "the phase met its success gate";
	case CAMPAIGN_ACT_RELEASE:
		return "phase released";
	case CAMPAIGN_ACT_PAUSE:
		return "paused by a failure gate";
	case CAMPAIGN_ACT_COMPLETE:
		return "completed";
	default:
		return "";
	}
}

enum store_rc
store_campaign_record(struct store *st, const struct campaign_row *c,
		      const struct campaign_decision *d, bool *applied)
{
	static const char *const updates[] = {
		[CAMPAIGN_ACT_GATE_MET] = "gate_met_at = now()",
		[CAMPAIGN_ACT_RELEASE] = "phase = $4::int, phase_started_at = "
					 "now(), gate_met_at = NULL",
		[CAMPAIGN_ACT_PAUSE] = "status = 'paused', paused_by = "
				       "'" DRIVER_ACTOR "', pause_reason = $5",
		[CAMPAIGN_ACT_COMPLETE] = "status = 'completed', finished_at "
					  "= now()",
	};
	static const char *const kinds[] = {
		[CAMPAIGN_ACT_GATE_MET] = "gate_met",
		[CAMPAIGN_ACT_RELEASE] = "phase_released",
		[CAMPAIGN_ACT_PAUSE] = "paused",
		[CAMPAIGN_ACT_COMPLETE] = "completed",
	};
	PGconn *conn = store_conn(st);
	char phase[24], rev[24], dphase[24], sql[512];
	const char *msg =
		d->reason[0] != '\0' ? d->reason : default_message(d->action);
	const char *params[5] = {c->id, phase, rev, dphase, msg};
	const char *ev[4];
	const char *action = NULL;
	json_t *details = NULL;
	PGresult *res;
	bool moved;

	*applied = false;
	if (d->action != CAMPAIGN_ACT_GATE_MET &&
	    d->action != CAMPAIGN_ACT_RELEASE &&
	    d->action != CAMPAIGN_ACT_PAUSE &&
	    d->action != CAMPAIGN_ACT_COMPLETE)
		return STORE_OK; /* NONE and WAIT write nothing */
	if (conn == NULL)
		return STORE_ERR;
	snprintf(phase, sizeof(phase), "%zu", c->state.phase);
	snprintf(rev, sizeof(rev), "%" PRId64, c->revision);
	snprintf(dphase, sizeof(dphase), "%zu",
		 d->action == CAMPAIGN_ACT_GATE_MET ||
				 d->action == CAMPAIGN_ACT_COMPLETE
			 ? c->state.phase
			 : d->phase);
	/* Every decision binds the same five parameters; the two a SET does
	 * not use are typed by the trivially true tail. */
	snprintf(sql, sizeof(sql),
		 "UPDATE campaigns SET %s, revision = revision + 1, "
		 "updated_at = now() WHERE id = $1::uuid AND status = "
		 "'running' AND phase = $2::int AND revision = $3::bigint "
		 "AND $4::int IS NOT NULL AND $5::text IS NOT NULL",
		 updates[d->action]);
	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	/* The guard: an operator's pause, resume or abort (which bump the
	 * revision) wins over a decision taken on older rows. */
	res = db_query(conn, sql, 5, params);
	if (res == NULL)
		goto fail;
	moved = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	if (!moved) {
		rollback(conn);
		return STORE_OK;
	}
	ev[0] = c->id;
	ev[1] = kinds[d->action];
	ev[2] = dphase;
	ev[3] = msg;
	if (db_command(conn,
		       "INSERT INTO campaign_events (campaign_id, actor, kind, "
		       "phase, message) VALUES ($1::uuid, '" DRIVER_ACTOR
		       "', $2, $3::int, left($4, 4096))",
		       4, ev) != STORE_OK)
		goto fail;
	if (d->action == CAMPAIGN_ACT_PAUSE)
		action = "campaign.auto_pause";
	else if (d->action == CAMPAIGN_ACT_COMPLETE)
		action = "campaign.complete";
	if (action != NULL) {
		details = json_pack("{s:I, s:s}", "phase",
				    (json_int_t)d->phase + 1, "reason", msg);
		if (details == NULL || audit_write(conn, DRIVER_ACTOR, action,
						   c->id, details) != DB_OK)
			goto fail;
	}
	if (db_command(conn, "SELECT pg_notify('fleet_campaign', $1)", 1,
		       params) != STORE_OK ||
	    db_exec(conn, "COMMIT") != 0)
		goto fail;
	json_decref(details);
	*applied = true;
	return STORE_OK;
fail:
	json_decref(details);
	rollback(conn);
	return STORE_ERR;
}

/* ---- admit ------------------------------------------------------------ */

/*
 * The devices to admit now, lowest rank first, as three array literals
 * (ids, ranks, phases) and their count: the matched set (active devices
 * the selector matches, plus admitted ones not excluded or reverted: the
 * figure store_campaign_counts gives) ordered by rank puts each device
 * at a position, width_bucket over the cutoffs gives its phase, and
 * those of released phases without a row are taken up to the budget.
 * A firmware campaign passes over devices whose open deployment row is
 * installing (they get their turn when it finishes). Ranks are computed
 * only for devices without a row (the others keep theirs) and sorted
 * bytewise (hex sorts as the number; a locale's collation is slower).
 * $1 heartbeat, $2 campaign, $3 released phase, $4 cutoffs, $5 budget,
 * $6 firmware, then the selector's parameters.
 */
/* clang-format off */
#define ADMIT_CANDIDATES_SQL                                                 \
	DB_CAMPAIGN_PHASES_CTE("$2", "$4") ", "                               \
	"k AS (SELECT p.id, p.rank, p.phase FROM p WHERE p.fresh AND "       \
	"p.phase <= $3::int AND (NOT $6::boolean OR NOT EXISTS (SELECT 1 "   \
	"FROM deployment_devices o WHERE o.device_id = p.id AND NOT "        \
	"o.finished AND o.state NOT IN " DB_DEPLOY_SUPERSEDABLE_SQL "))"     \
	" ORDER BY p.rank COLLATE \"C\", p.id LIMIT $5::bigint) "            \
	"SELECT coalesce(array_agg(k.id ORDER BY k.rank COLLATE \"C\", "    \
	"k.id)::text, '{}'), coalesce(array_agg(k.rank ORDER BY k.rank "      \
	"COLLATE \"C\", k.id)::text, '{}'), coalesce(array_agg(k.phase "     \
	"ORDER BY k.rank COLLATE \"C\", k.id)::text, '{}'), count(*) FROM k"
/* clang-format on */

struct admit {
	const struct campaign_row *c;
	PGresult *cand; /* ids, ranks, phases, count */
	const char *ids, *ranks, *phases;
	size_t n;
	char new_id[37]; /* a fresh uuid: the deployment or the change */
	char deployment_id[37]; /* firmware, as the locked row says */
};

static int
admit_candidates(PGconn *conn, struct admit *ad, const uint64_t *cutoffs,
		 uint32_t budget)
{
	const struct campaign_row *c = ad->c;
	char phase[24], limit[24], cuts[DB_CAMPAIGN_CUTOFFS_MAX], err[160];
	const char *fixed[6] = {DB_CAMPAIGN_HEARTBEAT_S,
				c->id,
				phase,
				cuts,
				limit,
				c->kind == CAMPAIGN_FIRMWARE ? "true"
							     : "false"};
	struct selector *sel = NULL;

	if (selector_parse(c->selector ? c->selector : "", &sel, err,
			   sizeof(err)) != 0) {
		log_warn("campaign %s: selector: %s", c->id, err);
		return -1;
	}
	db_campaign_cutoffs_text(&c->def, cutoffs, cuts, sizeof(cuts));
	snprintf(phase, sizeof(phase), "%zu", c->state.phase);
	snprintf(limit, sizeof(limit), "%" PRIu32, budget);
	ad->cand = selector_query(conn, sel, &db_campaign_columns,
				  ADMIT_CANDIDATES_SQL, fixed, 6,
				  "campaign admit");
	selector_free(sel);
	if (ad->cand == NULL)
		return -1;
	ad->ids = PQgetvalue(ad->cand, 0, 0);
	ad->ranks = PQgetvalue(ad->cand, 0, 1);
	ad->phases = PQgetvalue(ad->cand, 0, 2);
	ad->n = (size_t)db_int(ad->cand, 0, 3);
	return 0;
}

/* The count of a "SELECT count(*) FROM ins" statement, or -1. */
static int64_t
count_of(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = db_query(conn, sql, n, params);
	int64_t v;

	if (res == NULL)
		return -1;
	v = db_int(res, 0, 0);
	PQclear(res);
	return v;
}

/*
 * Firmware: the campaign's deployment made at the first admission; each
 * device admitted as excluded ('hardware': its model is not in the
 * artifact's hw), succeeded ('already-running': it reported the version
 * or a newer one) or offered, and each offered one given a pending row
 * in the deployment after its open row elsewhere (not installing: the
 * candidates' lock below made sure) was superseded.
 */
static int
admit_firmware(PGconn *conn, struct admit *ad, size_t *admitted)
{
	const struct campaign_row *c = ad->c;
	const char *mk[3] = {ad->new_id, c->artifact_id, c->id};
	const char *upd[2] = {ad->new_id, c->id};
	const char *lock[1] = {ad->ids};
	const char *ins[6] = {c->id,	  ad->ids,	  ad->ranks,
			      ad->phases, c->artifact_id, NULL};
	const char *two[2];
	PGresult *res = NULL;
	const char *offered;
	size_t superseded = 0;
	int rc = -1;

	if (ad->deployment_id[0] == '\0') {
		if (db_command(conn,
			       "INSERT INTO deployments (id, artifact_id, "
			       "selector, campaign_id, created_by) SELECT "
			       "$1::uuid, $2::uuid, c.selector, c.id, "
			       "'campaign:' || c.id::text FROM campaigns c "
			       "WHERE c.id = $3::uuid",
			       3, mk) != STORE_OK ||
		    db_command(conn,
			       "UPDATE campaigns SET deployment_id = $1::uuid "
			       "WHERE id = $2::uuid",
			       2, upd) != STORE_OK)
			return -1;
		snprintf(ad->deployment_id, sizeof(ad->deployment_id), "%s",
			 ad->new_id);
	}
	ins[5] = ad->deployment_id;
	/* The open rows of the candidates, locked: a report cannot move
	 * one into installing between the check and the supersede. */
	if (db_command(conn,
		       "SELECT 1 FROM deployment_devices WHERE device_id = "
		       "ANY($1::uuid[]) AND NOT finished ORDER BY device_id "
		       "FOR UPDATE",
		       1, lock) != STORE_OK)
		return -1;
	res = db_query(
		conn,
		"WITH t AS (SELECT * FROM unnest($2::uuid[], $3::text[], "
		"$4::int[]) AS t(id, rank, phase)), a AS (SELECT hw, "
		"version_int FROM artifacts WHERE id = $5::uuid), "
		"k AS (SELECT t.id, t.rank, t.phase, CASE WHEN d.model IS "
		"NULL OR NOT d.model = ANY (a.hw) THEN 'excluded' WHEN "
		"jsonb_typeof(d.inventory -> 'fw_version_num') = 'number' AND "
		"(d.inventory ->> 'fw_version_num')::numeric >= a.version_int "
		"THEN 'succeeded' ELSE 'offered' END AS st FROM t JOIN "
		"devices d ON d.id = t.id CROSS JOIN a WHERE NOT EXISTS "
		"(SELECT 1 FROM deployment_devices o WHERE o.device_id = t.id "
		"AND NOT o.finished AND o.deployment_id <> $6::uuid AND "
		"o.state NOT IN " DB_DEPLOY_SUPERSEDABLE_SQL ")), "
		"ins AS (INSERT INTO campaign_devices (campaign_id, "
		"device_id, rank, phase, state, reason, finished_at) SELECT "
		"$1::uuid, k.id, k.rank, k.phase, k.st, CASE k.st WHEN "
		"'excluded' THEN 'hardware' WHEN 'succeeded' THEN "
		"'already-running' END, CASE WHEN k.st = 'succeeded' THEN "
		"now() END FROM k ORDER BY k.id RETURNING device_id, state) "
		"SELECT coalesce(array_agg(device_id ORDER BY device_id) "
		"FILTER (WHERE state = 'offered'), '{}')::text, count(*), "
		"count(*) FILTER (WHERE state = 'offered') FROM ins",
		6, ins);
	if (res == NULL)
		return -1;
	*admitted = (size_t)db_int(res, 0, 1);
	if (db_int(res, 0, 2) == 0) {
		rc = 0;
		goto out;
	}
	offered = PQgetvalue(res, 0, 0);
	two[0] = ad->deployment_id;
	two[1] = offered;
	if (db_deployment_supersede(conn, offered, ad->deployment_id,
				    &superseded) != 0 ||
	    db_command(conn,
		       "INSERT INTO deployment_devices (deployment_id, "
		       "device_id) SELECT $1::uuid, unnest($2::uuid[]) "
		       "ON CONFLICT DO NOTHING",
		       2, two) != STORE_OK ||
	    /* Rows of an earlier phase may all have finished it. */
	    db_command(conn,
		       "UPDATE deployments SET status = 'active', "
		       "finished_at = NULL WHERE id = $1::uuid AND status = "
		       "'finished'",
		       1, two) != STORE_OK ||
	    db_command(conn, "SELECT pg_notify('fleet_update', $1)", 1, two) !=
		    STORE_OK)
		goto out;
	if (superseded > 0)
		log_info("campaign %s: %zu offers of other deployments "
			 "superseded",
			 c->id, superseded);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* Rotation: a pending cert_rotations row per device (an existing
 * pending one is kept and remembered). */
static int
admit_rotation(PGconn *conn, struct admit *ad, size_t *admitted)
{
	const char *rot[2] = {ad->c->id, ad->ids};
	const char *ins[4] = {ad->c->id, ad->ids, ad->ranks, ad->phases};
	int64_t n;

	if (db_command(conn,
		       "INSERT INTO cert_rotations (id, device_id, reason, "
		       "requested_by) SELECT gen_random_uuid(), t.id, "
		       "'campaign', 'campaign:' || $1::uuid::text FROM "
		       "unnest($2::uuid[]) AS t(id) ORDER BY t.id "
		       "ON CONFLICT (device_id) WHERE completed_at IS NULL "
		       "DO NOTHING",
		       2, rot) != STORE_OK)
		return -1;
	n = count_of(conn,
		     "WITH ins AS (INSERT INTO campaign_devices (campaign_id, "
		     "device_id, rank, phase, rotation_id) SELECT $1::uuid, "
		     "t.id, t.rank, t.phase, r.id FROM unnest($2::uuid[], "
		     "$3::text[], $4::int[]) AS t(id, rank, phase) LEFT JOIN "
		     "cert_rotations r ON r.device_id = t.id AND "
		     "r.completed_at IS NULL ORDER BY t.id RETURNING 1) "
		     "SELECT count(*) FROM ins",
		     4, ins);
	if (n < 0)
		return -1;
	*admitted = (size_t)n;
	/* The workers look at due rotations (store_cert_rotations_due). */
	return n == 0 || db_command(conn, "SELECT pg_notify('fleet_certs', $1)",
				    1, rot) == STORE_OK
		       ? 0
		       : -1;
}

/* "{t,f,...}" of the prepared devices' changed flags, and their ids. */
static int
assign_arrays(const struct db_config_assign *a, char **ids, char **changed)
{
	size_t n = db_config_assign_count(a);
	const char **list = calloc(n + 1, sizeof(*list));
	struct buf b;

	*ids = NULL;
	*changed = NULL;
	if (list == NULL)
		return -1;
	buf_init(&b, 4 * n + 16);
	(void)buf_append(&b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		list[i] = db_config_assign_device(a, i);
		if ((i > 0 && buf_append(&b, ",", 1) != 0) ||
		    buf_append(&b, db_config_assign_changed(a, i) ? "t" : "f",
			       1) != 0)
			break;
	}
	if (b.data != NULL && buf_append(&b, "}", 1) == 0) {
		*changed = strdup(b.data);
		*ids = db_uuid_array(list, n);
	}
	buf_free(&b);
	free(list);
	if (*ids == NULL || *changed == NULL) {
		free(*ids);
		free(*changed);
		*ids = *changed = NULL;
		return -1;
	}
	return 0;
}

/*
 * Config: the devices get the campaign's profile at its version,
 * pinned, their overrides kept (clone's assign mode, same code), with
 * their previous assignment and the generation that carries the
 * campaign's document remembered; one config_changes row for the batch
 * so GET /config/changes/{id} follows it too.
 */
static int
admit_config(PGconn *conn, struct admit *ad, size_t *admitted)
{
	const struct campaign_row *c = ad->c;
	struct db_config_assign *a = NULL;
	const char *ins[6] = {c->id,	  ad->ids, ad->ranks,
			      ad->phases, NULL,	   NULL};
	const char *note[1] = {ad->new_id};
	char *ids = NULL, *changed = NULL, actor[64];
	json_t *source = NULL;
	int64_t n;
	int rc = -1;

	switch (db_config_assign_prepare(conn, c->profile_id,
					 c->profile_version, ad->ids, &a)) {
	case CONFIG_OK:
		break;
	case CONFIG_TOO_LARGE:
		log_warn("campaign %s: a device's document would exceed the "
			 "limit",
			 c->id);
		rc = 1;
		goto out;
	default:
		goto out;
	}
	if (assign_arrays(a, &ids, &changed) != 0)
		goto out;
	ins[4] = ids;
	ins[5] = changed;
	n = count_of(
		conn,
		"WITH ins AS (INSERT INTO campaign_devices (campaign_id, "
		"device_id, rank, phase, prev_profile_id, "
		"prev_pinned_version, prev_overrides, generation) SELECT "
		"$1::uuid, t.id, t.rank, t.phase, c.profile_id, "
		"c.pinned_version, c.overrides, c.desired_generation + CASE "
		"WHEN ch.changed THEN 1 ELSE 0 END FROM unnest($2::uuid[], "
		"$3::text[], $4::int[]) AS t(id, rank, phase) JOIN "
		"device_config c ON c.device_id = t.id JOIN "
		"unnest($5::uuid[], $6::boolean[]) AS ch(id, changed) ON "
		"ch.id = t.id ORDER BY t.id RETURNING 1) "
		"SELECT count(*) FROM ins",
		6, ins);
	if (n < 0)
		goto out;
	*admitted = (size_t)n;
	if (n == 0) {
		rc = 0;
		goto out;
	}
	snprintf(actor, sizeof(actor), "campaign:%s", c->id);
	source = json_pack("{s:s, s:s, s:i, s:s}", "campaign", c->id,
			   "profile_id", c->profile_id, "version",
			   c->profile_version, "mode", "assign");
	if (source == NULL ||
	    db_config_change_insert(conn, ad->new_id, actor, "clone", source,
				    c->selector, db_config_assign_count(a),
				    db_config_assign_nchanged(a)) != 0 ||
	    db_config_assign_write(conn, a, ad->new_id) != 0 ||
	    db_command(conn, "SELECT pg_notify('fleet_config', $1)", 1, note) !=
		    STORE_OK)
		goto out;
	rc = 0;
out:
	json_decref(source);
	free(ids);
	free(changed);
	db_config_assign_free(a);
	return rc;
}

enum store_rc
store_campaign_admit(struct store *st, const struct campaign_row *c,
		     const uint64_t *cutoffs, uint32_t budget, size_t *admitted)
{
	PGconn *conn = store_conn(st);
	char phase[24], rev[24];
	const char *guard[3] = {c->id, phase, rev};
	struct admit ad;
	PGresult *res;
	size_t n = 0;
	int rc;

	*admitted = 0;
	if (budget == 0 || c->def.n_phases == 0)
		return STORE_OK;
	if (conn == NULL)
		return STORE_ERR;
	memset(&ad, 0, sizeof(ad));
	ad.c = c;
	snprintf(phase, sizeof(phase), "%zu", c->state.phase);
	snprintf(rev, sizeof(rev), "%" PRId64, c->revision);
	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	/* The guard: the row locked, still running at the phase and
	 * revision the driver decided on. A replaced driver's late admit,
	 * or one racing an operator's pause, admits nothing. */
	res = db_query(conn,
		       "SELECT coalesce(deployment_id::text, ''), "
		       "gen_random_uuid()::text FROM campaigns WHERE id = "
		       "$1::uuid AND status = 'running' AND phase = $2::int "
		       "AND revision = $3::bigint FOR UPDATE",
		       3, guard);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		rollback(conn);
		return STORE_OK;
	}
	snprintf(ad.deployment_id, sizeof(ad.deployment_id), "%s",
		 PQgetvalue(res, 0, 0));
	snprintf(ad.new_id, sizeof(ad.new_id), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	/* Firmware: one writer of open rows at a time, as deployments. */
	if (c->kind == CAMPAIGN_FIRMWARE &&
	    db_deployment_create_lock(conn) != 0)
		goto fail;
	if (admit_candidates(conn, &ad, cutoffs, budget) != 0)
		goto fail;
	if (ad.n == 0) {
		PQclear(ad.cand);
		rollback(conn);
		return STORE_OK;
	}
	switch (c->kind) {
	case CAMPAIGN_FIRMWARE:
		rc = admit_firmware(conn, &ad, &n);
		break;
	case CAMPAIGN_CONFIG:
		rc = admit_config(conn, &ad, &n);
		break;
	case CAMPAIGN_ROTATION:
		rc = admit_rotation(conn, &ad, &n);
		break;
	default:
		rc = -1;
	}
	PQclear(ad.cand);
	ad.cand = NULL;
	if (rc == 1) { /* cannot be delivered: the driver pauses */
		rollback(conn);
		return STORE_CONFLICT;
	}
	if (rc != 0 || db_exec(conn, "COMMIT") != 0)
		goto fail;
	*admitted = n;
	return STORE_OK;
fail:
	PQclear(ad.cand);
	rollback(conn);
	return STORE_ERR;
}

/* ---- abort ------------------------------------------------------------ */

static int
event_add(PGconn *conn, const char *id, const char *kind, const char *msg,
	  const json_t *details)
{
	char *text = json_dumps(details, JSON_COMPACT);
	const char *params[4] = {id, kind, msg, text};
	int rc;

	if (text == NULL)
		return -1;
	rc = db_command(
		     conn,
		     "INSERT INTO campaign_events (campaign_id, actor, kind, "
		     "message, details) VALUES ($1::uuid, '" DRIVER_ACTOR
		     "', $2, $3, $4::jsonb)",
		     4, params) == STORE_OK
		     ? 0
		     : -1;
	free(text);
	return rc;
}

/* Firmware: the offers not installing yet are withdrawn and the
 * deployment cancelled; devices already installing finish as they
 * would (a rollback is a new, signed release). */
static int
abort_firmware(PGconn *conn, const struct campaign_row *c,
	       const char *deployment_id)
{
	char msg[128];
	json_t *details;
	size_t n = 0;
	int rc;

	if (deployment_id[0] == '\0')
		return 0;
	if (db_deployment_cancel_open(conn, deployment_id, &n) != 0)
		return -1;
	snprintf(msg, sizeof(msg), "%zu open offers cancelled", n);
	details = json_pack("{s:I, s:s}", "cancelled", (json_int_t)n,
			    "deployment_id", deployment_id);
	rc = details != NULL
		     ? event_add(conn, c->id, "cancelled_offers", msg, details)
		     : -1;
	json_decref(details);
	return rc;
}

/*
 * Config: every device whose desired state is still the campaign's
 * (the generation it gave, the profile and pin it set) gets its previous
 * assignment back, computed like any assignment; devices that had none
 * lose the document; devices a new selector excluded too, since the
 * campaign changed them. One group per previous (profile, pin), one
 * change row for all, one NOTIFY.
 */
static int
abort_config(PGconn *conn, const struct campaign_row *c, const char *change_id)
{
	char ver[16], msg[160], actor[64];
	const char *sel[3] = {c->id, c->profile_id, ver};
	const char *mark[2] = {c->id, NULL};
	const char *note[1] = {change_id};
	struct db_config_assign *a = NULL;
	json_t *source = NULL, *details = NULL;
	size_t total = 0, changed = 0;
	PGresult *res = NULL;
	int64_t n;
	int rc = -1;

	snprintf(ver, sizeof(ver), "%d", c->profile_version);
	/* The profiles first (FOR SHARE, as a clone takes its source), then
	 * the devices in device order, as clones and publishes lock them,
	 * so the choice below cannot be overtaken by a set, a clone or a
	 * publish, and none of them waits for this in a circle. */
	if (db_command(conn,
		       "SELECT 1 FROM config_profiles WHERE id = $2::uuid OR "
		       "id IN (SELECT prev_profile_id FROM campaign_devices "
		       "WHERE campaign_id = $1::uuid) ORDER BY id FOR SHARE",
		       2, sel) != STORE_OK)
		return -1;
	if (db_command(conn,
		       "SELECT 1 FROM device_config c JOIN campaign_devices cd "
		       "ON cd.device_id = c.device_id WHERE cd.campaign_id = "
		       "$1::uuid ORDER BY c.device_id FOR UPDATE OF c",
		       1, sel) != STORE_OK)
		return -1;
	res = db_query(conn,
		       "SELECT cd.prev_profile_id::text, coalesce("
		       "cd.prev_pinned_version, 0), cd.prev_profile_id IS "
		       "NULL AND cd.prev_overrides IS NULL, array_agg("
		       "cd.device_id ORDER BY cd.device_id)::text FROM "
		       "campaign_devices cd JOIN device_config c ON "
		       "c.device_id = cd.device_id WHERE cd.campaign_id = "
		       "$1::uuid AND cd.state <> 'reverted' AND "
		       "c.desired_generation = cd.generation AND "
		       "c.profile_id = $2::uuid AND c.pinned_version = "
		       "$3::int GROUP BY 1, 2, 3",
		       3, sel);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *ids = PQgetvalue(res, i, 3);
		size_t k = 0;

		if (PQgetvalue(res, i, 2)[0] == 't') {
			if (db_config_clear_devices(conn, change_id, ids, &k) !=
			    0)
				goto out;
			changed += k;
		} else {
			if (db_config_assign_prepare(
				    conn,
				    PQgetisnull(res, i, 0)
					    ? NULL
					    : PQgetvalue(res, i, 0),
				    (int)db_int(res, i, 1), ids,
				    &a) != CONFIG_OK ||
			    db_config_assign_write(conn, a, change_id) != 0)
				goto out;
			changed += db_config_assign_nchanged(a);
			db_config_assign_free(a);
			a = NULL;
		}
		mark[1] = ids;
		n = count_of(conn,
			     "WITH up AS (UPDATE campaign_devices SET state = "
			     "'reverted', reason = 'aborted', updated_at = "
			     "now() WHERE campaign_id = $1::uuid AND device_id "
			     "= ANY($2::uuid[]) RETURNING 1) SELECT count(*) "
			     "FROM up",
			     2, mark);
		if (n < 0)
			goto out;
		total += (size_t)n;
	}
	if (total > 0) {
		snprintf(actor, sizeof(actor), "campaign:%s", c->id);
		source =
			json_pack("{s:s, s:b}", "campaign", c->id, "revert", 1);
		if (source == NULL ||
		    db_config_change_insert(conn, change_id, actor, "clone",
					    source, c->selector, total,
					    changed) != 0 ||
		    db_command(conn, "SELECT pg_notify('fleet_config', $1)", 1,
			       note) != STORE_OK)
			goto out;
	}
	snprintf(msg, sizeof(msg),
		 "%zu devices got their previous configuration back", total);
	details = json_pack("{s:I, s:I, s:o}", "reverted", (json_int_t)total,
			    "changed", (json_int_t)changed, "change_id",
			    total > 0 ? json_string(change_id) : json_null());
	if (details == NULL ||
	    event_add(conn, c->id, "reverted", msg, details) != 0)
		goto out;
	rc = 0;
out:
	db_config_assign_free(a);
	json_decref(source);
	json_decref(details);
	PQclear(res);
	return rc;
}

/* Rotation: the pending rotations the campaign asked for are withdrawn
 * (one an operator asked for before, and the campaign reused, stays). */
static int
abort_rotation(PGconn *conn, const struct campaign_row *c)
{
	const char *params[1] = {c->id};
	char msg[128];
	json_t *details;
	int64_t n;
	int rc;

	n = count_of(conn,
		     "WITH x AS (DELETE FROM cert_rotations r USING "
		     "campaign_devices cd WHERE cd.campaign_id = $1::uuid AND "
		     "r.id = cd.rotation_id AND r.completed_at IS NULL AND "
		     "r.reason = 'campaign' AND r.requested_by = 'campaign:' "
		     "|| $1::uuid::text RETURNING 1) SELECT count(*) FROM x",
		     1, params);
	if (n < 0)
		return -1;
	snprintf(msg, sizeof(msg), "%" PRId64 " pending rotations withdrawn",
		 n);
	details = json_pack("{s:I}", "withdrawn", (json_int_t)n);
	rc = details != NULL
		     ? event_add(conn, c->id, "cancelled_offers", msg, details)
		     : -1;
	json_decref(details);
	return rc;
}

enum store_rc
store_campaign_abort_effects(struct store *st, const struct campaign_row *c)
{
	PGconn *conn = store_conn(st);
	const char *params[1] = {c->id};
	char deployment_id[37], new_id[37];
	PGresult *res;
	int rc;

	if (conn == NULL)
		return STORE_ERR;
	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	/* Once: the row locked, and abort_done set in the same
	 * transaction as the effects. */
	res = db_query(conn,
		       "SELECT coalesce(deployment_id::text, ''), "
		       "gen_random_uuid()::text FROM campaigns WHERE id = "
		       "$1::uuid AND status = 'aborted' AND NOT abort_done "
		       "FOR UPDATE",
		       1, params);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		rollback(conn);
		return STORE_OK;
	}
	snprintf(deployment_id, sizeof(deployment_id), "%s",
		 PQgetvalue(res, 0, 0));
	snprintf(new_id, sizeof(new_id), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	switch (c->kind) {
	case CAMPAIGN_FIRMWARE:
		rc = abort_firmware(conn, c, deployment_id);
		break;
	case CAMPAIGN_CONFIG:
		rc = abort_config(conn, c, new_id);
		break;
	case CAMPAIGN_ROTATION:
		rc = abort_rotation(conn, c);
		break;
	default:
		rc = -1;
	}
	if (rc != 0 ||
	    db_command(conn,
		       "UPDATE campaigns SET abort_done = true, updated_at = "
		       "now() WHERE id = $1::uuid",
		       1, params) != STORE_OK ||
	    db_command(conn, "SELECT pg_notify('fleet_campaign', $1)", 1,
		       params) != STORE_OK ||
	    db_exec(conn, "COMMIT") != 0)
		goto fail;
	return STORE_OK;
fail:
	rollback(conn);
	return STORE_ERR;
}
