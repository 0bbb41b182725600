/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deployments on PostgreSQL (core/store_deployments.h): creating one
 * (a selector's or one device's targets decided by core/update.c, in one
 * transaction with its audit row, Idempotency-Key and NOTIFY
 * fleet_update), listing and showing them with counts per state,
 * cancelling, the offers the channel sends, and update.status /
 * keys.status reports applied once with their effect. Schema:
 * migrations/0011_updates.sql (the contract) and 0012. Runs on API and
 * channel job threads; every parameter is bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "core/audit.h"
#include "core/idempotency.h"
#include "core/store_deployments.h"
#include "core/update.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/deployment_rows.h"
#include "db/idempotency.h"
#include "db/query.h"
#include "db/reports.h"
#include "db/selector_sql.h"
#include "db/store.h"
#include "log.h"

/* The SQL mirror of device_online() (core/device.c), as in db/devices.c:
 * $1 is the heartbeat timeout in seconds. */
#define DEP_ONLINE_SQL                                           \
	"coalesce(s.last_seen > now() - $1::double precision * " \
	"interval '1 second', false)"

static const struct selector_columns dep_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = DEP_ONLINE_SQL,
	.labels = "d.labels",
};

/* The SQL mirror of update_counts_finished() (core/update.c): active
 * deployments among $1 with no open row left become finished. */
#define DEP_FINISH_SQL                                                \
	"UPDATE deployments dp SET status = 'finished', "             \
	"finished_at = now() WHERE dp.id = ANY($1::uuid[]) AND "      \
	"dp.status = 'active' AND NOT EXISTS (SELECT 1 FROM "         \
	"deployment_devices x WHERE x.deployment_id = dp.id AND NOT " \
	"x.finished)"

static enum deploy_rc
rollback(PGconn *conn, enum deploy_rc rc)
{
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

/* ---- create ------------------------------------------------------------ */

struct dep_artifact {
	bool complete;
	bool expired;
	char *hw[16]; /* the manifest's models (PKI_RELEASE_MAX_HW) */
	size_t nhw;
};

static void
dep_artifact_clear(struct dep_artifact *a)
{
	for (size_t i = 0; i < a->nhw; i++)
		free(a->hw[i]);
	a->nhw = 0;
}

static enum deploy_rc
artifact_read(PGconn *conn, const char *artifact_id, struct dep_artifact *a)
{
	const char *params[1] = {artifact_id};
	json_t *hw = NULL;
	PGresult *res;
	size_t i;

	res = db_query(conn,
		       "SELECT b.complete, a.expires_at <= now(), "
		       "array_to_json(a.hw)::text FROM artifacts a JOIN "
		       "artifact_blobs b ON b.sha256 = a.sha256 WHERE a.id = "
		       "$1::uuid",
		       1, params);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return DEPLOY_UNKNOWN_ARTIFACT;
	}
	a->complete = PQgetvalue(res, 0, 0)[0] == 't';
	a->expired = PQgetvalue(res, 0, 1)[0] == 't';
	hw = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
	PQclear(res);
	if (!json_is_array(hw))
		goto fail;
	for (i = 0; i < json_array_size(hw) && a->nhw < 16; i++) {
		const char *m = json_string_value(json_array_get(hw, i));

		if (m == NULL || (a->hw[a->nhw] = strdup(m)) == NULL)
			goto fail;
		a->nhw++;
	}
	json_decref(hw);
	return DEPLOY_OK;
fail:
	json_decref(hw);
	dep_artifact_clear(a);
	return DEPLOY_ERR_STORE;
}

/* The matched devices: id, model, online, open row state, its
 * deployment. $1 heartbeat, then the selector's parameters or $2 the
 * device id. */
static PGresult *
candidates_read(PGconn *conn, const struct deployment_create *req, bool lock)
{
	struct selector_sql q;
	const char **all = NULL;
	char hb[24], err[160];
	PGresult *res = NULL;
	struct buf sql;
	const char *where;
	size_t np = 1;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 64 * 1024);
	snprintf(hb, sizeof(hb), "%ld", req->heartbeat_timeout_s);
	if (req->device_id != NULL) {
		where = "d.id = $2::uuid";
		np = 2;
	} else {
		if (selector_to_sql(req->selector, &dep_columns, 2, &q, err,
				    sizeof(err)) != 0) {
			log_warn("deployment: selector: %s", err);
			goto out;
		}
		where = q.where;
		np = 1 + q.nparams;
	}
	all = calloc(np + 1, sizeof(*all));
	if (all == NULL)
		goto out;
	all[0] = hb;
	if (req->device_id != NULL)
		all[1] = req->device_id;
	for (size_t i = 0; req->device_id == NULL && i < q.nparams; i++)
		all[1 + i] = q.params[i];
	/* The open rows first, locked, so a report cannot move one between
	 * the decision and the supersede. */
	if (lock) {
		if (buf_printf(&sql,
			       "SELECT 1 FROM deployment_devices o WHERE NOT "
			       "o.finished AND o.device_id IN (SELECT d.id "
			       "FROM devices d LEFT JOIN device_sessions s ON "
			       "s.device_id = d.id WHERE d.status = 'active' "
			       "AND $1::double precision IS NOT NULL AND (%s)) "
			       "FOR UPDATE OF o",
			       where) != 0)
			goto out;
		res = db_query(conn, sql.data, (int)np, all);
		if (res == NULL)
			goto out;
		PQclear(res);
		res = NULL;
		buf_reset(&sql);
	}
	if (buf_printf(&sql,
		       "SELECT d.id, d.model, " DEP_ONLINE_SQL
		       ", o.state FROM devices d LEFT JOIN device_sessions s "
		       "ON s.device_id = d.id LEFT JOIN deployment_devices o "
		       "ON o.device_id = d.id AND NOT o.finished WHERE "
		       "d.status = 'active' AND (%s) ORDER BY d.id",
		       where) != 0)
		goto out;
	res = db_query(conn, sql.data, (int)np, all);
out:
	free(all);
	buf_free(&sql);
	selector_sql_free(&q);
	return res;
}

struct dep_plan {
	struct update_plan_counts counts;
	const char **targets; /* borrowed from res */
	size_t ntargets;
	const char **superseded; /* device ids */
	size_t nsuperseded;
};

static int
plan_make(PGresult *res, const struct dep_artifact *a, struct dep_plan *p)
{
	int rows = PQntuples(res);

	p->targets = calloc((size_t)rows + 1, sizeof(*p->targets));
	p->superseded = calloc((size_t)rows + 1, sizeof(*p->superseded));
	if (p->targets == NULL || p->superseded == NULL)
		return -1;
	for (int i = 0; i < rows; i++) {
		struct update_candidate c;
		enum update_target t;

		memset(&c, 0, sizeof(c));
		c.model = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
		c.online = PQgetvalue(res, i, 2)[0] == 't';
		c.has_open = !PQgetisnull(res, i, 3);
		if (c.has_open && update_state_parse(PQgetvalue(res, i, 3),
						     &c.open_state) != 0)
			return -1;
		t = update_target_of(&c, (const char *const *)a->hw, a->nhw);
		update_plan_add(&p->counts, &c, t);
		if (t == UPDATE_TARGET_OFFER || t == UPDATE_TARGET_SUPERSEDE)
			p->targets[p->ntargets++] = PQgetvalue(res, i, 0);
		if (t == UPDATE_TARGET_SUPERSEDE)
			p->superseded[p->nsuperseded++] = PQgetvalue(res, i, 0);
	}
	return 0;
}

static char *
create_answer(const struct deployment_create *req,
	      const struct update_plan_counts *c)
{
	json_t *doc = json_pack(
		"{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run",
		req->dry_run, "artifact_id", req->artifact_id, "matched",
		(json_int_t)c->matched, "targets", (json_int_t)c->targets,
		"offline", (json_int_t)c->offline, "supersede",
		(json_int_t)c->supersede, "hardware_mismatch",
		(json_int_t)c->hardware_mismatch, "busy", (json_int_t)c->busy);
	char *text = NULL;

	if (doc == NULL)
		return NULL;
	if (!req->dry_run) {
		json_object_set_new(doc, "id", json_string(req->id));
		json_object_set_new(doc, "status", json_string("active"));
	}
	json_object_set_new(doc, "device_id",
			    req->device_id ? json_string(req->device_id)
					   : json_null());
	json_object_set_new(
		doc, "selector",
		json_string(req->selector_text ? req->selector_text : ""));
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return text;
}

/* Writes the plan: the deployment, superseded rows, new rows, finished
 * deployments, NOTIFY. */
static enum deploy_rc
plan_write(PGconn *conn, const struct deployment_create *req,
	   const struct dep_plan *p)
{
	char *targets = NULL, *sup = NULL;
	const char *ins[4] = {req->id, req->artifact_id,
			      req->selector_text ? req->selector_text : "",
			      req->actor};
	const char *two[2] = {req->id, NULL};
	enum deploy_rc rc = DEPLOY_ERR_STORE;
	PGresult *res = NULL;

	targets = db_uuid_array(p->targets, p->ntargets);
	sup = db_uuid_array(p->superseded, p->nsuperseded);
	if (targets == NULL || sup == NULL)
		goto out;
	if (db_command(conn,
		       "INSERT INTO deployments (id, artifact_id, selector, "
		       "created_by) VALUES ($1::uuid, $2::uuid, $3, $4)",
		       4, ins) != STORE_OK)
		goto out;
	if (p->nsuperseded > 0) {
		/* The deployments that lose rows may finish with it. */
		const char *one[1] = {sup};

		res = db_query(conn,
			       "WITH s AS (UPDATE deployment_devices SET "
			       "state = 'superseded', reason = 'superseded', "
			       "updated_at = now() WHERE device_id = "
			       "ANY($1::uuid[]) AND NOT finished RETURNING "
			       "deployment_id) SELECT coalesce(array_agg("
			       "DISTINCT deployment_id)::text, '{}') FROM s",
			       1, one);
		if (res == NULL)
			goto out;
		two[0] = PQgetvalue(res, 0, 0);
		if (db_command(conn, DEP_FINISH_SQL, 1, two) != STORE_OK)
			goto out;
		PQclear(res);
		res = NULL;
	}
	two[0] = req->id;
	two[1] = targets;
	if (db_command(conn,
		       "INSERT INTO deployment_devices (deployment_id, "
		       "device_id) SELECT $1::uuid, unnest($2::uuid[])",
		       2, two) != STORE_OK)
		goto out;
	if (db_command(conn, "SELECT pg_notify('fleet_update', $1)", 1, two) !=
	    STORE_OK)
		goto out;
	rc = DEPLOY_OK;
out:
	PQclear(res);
	free(targets);
	free(sup);
	return rc;
}

enum deploy_rc
store_deployment_create(struct store *st, const struct deployment_create *req,
			struct update_plan_counts *counts, char **answer)
{
	PGconn *conn = store_conn(st);
	struct dep_artifact a;
	struct dep_plan p;
	struct audit_entry audit;
	struct idem_record rec;
	PGresult *res = NULL;
	enum deploy_rc rc;
	char *text = NULL;
	int irc;

	memset(&a, 0, sizeof(a));
	memset(&p, 0, sizeof(p));
	*answer = NULL;
	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	if (db_exec(conn, "BEGIN") != 0)
		return DEPLOY_ERR_STORE;
	/* One creation at a time: two concurrent ones must not both give a
	 * device an open row (the unique index would fail the second). */
	if (!req->dry_run) {
		if (db_deployment_create_lock(conn) != 0) {
			rc = rollback(conn, DEPLOY_ERR_STORE);
			goto out;
		}
	}
	rc = artifact_read(conn, req->artifact_id, &a);
	if (rc == DEPLOY_OK && !a.complete)
		rc = DEPLOY_ARTIFACT_NOT_READY;
	if (rc == DEPLOY_OK && a.expired)
		rc = DEPLOY_ARTIFACT_EXPIRED;
	if (rc != DEPLOY_OK) {
		rc = rollback(conn, rc);
		goto out;
	}
	res = candidates_read(conn, req, !req->dry_run);
	if (res == NULL || plan_make(res, &a, &p) != 0) {
		rc = rollback(conn, DEPLOY_ERR_STORE);
		goto out;
	}
	if (p.counts.matched == 0) {
		rc = rollback(conn, req->device_id != NULL
					    ? DEPLOY_UNKNOWN_DEVICE
					    : DEPLOY_NO_MATCH);
		goto out;
	}
	text = create_answer(req, &p.counts);
	if (text == NULL) {
		rc = rollback(conn, DEPLOY_ERR_STORE);
		goto out;
	}
	if (req->dry_run) {
		rc = rollback(conn, DEPLOY_OK);
		goto done;
	}
	if (p.counts.targets == 0) {
		rc = rollback(conn, DEPLOY_NO_TARGETS);
		goto out;
	}
	if (req->idem != NULL) {
		rec = *req->idem;
		rec.status = 201;
		rec.body = text;
		irc = db_idem_insert(conn, &rec);
		if (irc != 0) {
			rc = rollback(conn, irc == DB_CONFLICT
						    ? DEPLOY_IDEM_TAKEN
						    : DEPLOY_ERR_STORE);
			goto out;
		}
	}
	rc = plan_write(conn, req, &p);
	memset(&audit, 0, sizeof(audit));
	audit.actor = req->actor;
	audit.action = "deployment.create";
	audit.target = req->id;
	audit_add_str(&audit, "artifact_id", req->artifact_id);
	if (req->device_id != NULL)
		audit_add_str(&audit, "device_id", req->device_id);
	else
		audit_add_str(&audit, "selector", req->selector_text);
	audit_add_int(&audit, "targets", (int64_t)p.counts.targets);
	audit_add_int(&audit, "superseded", (int64_t)p.counts.supersede);
	if (rc == DEPLOY_OK && db_audit_insert(conn, &audit) != DB_OK)
		rc = DEPLOY_ERR_STORE;
	if (rc != DEPLOY_OK) {
		rc = rollback(conn, rc);
		goto out;
	}
	if (db_exec(conn, "COMMIT") != 0) {
		rc = DEPLOY_ERR_STORE;
		goto out;
	}
done:
	*counts = p.counts;
	*answer = text;
	text = NULL;
out:
	free(text);
	PQclear(res);
	free(p.targets);
	free(p.superseded);
	dep_artifact_clear(&a);
	return rc;
}

/* ---- list, show, devices, cancel --------------------------------------- */

/* One deployment as the API shows it; counts per state from
 * deployment_devices. */
#define DEP_DOC                                                              \
	"json_build_object('id', dp.id, 'artifact_id', dp.artifact_id, "     \
	"'artifact', json_build_object('name', a.name, 'version', "          \
	"a.version, 'version_int', a.version_int, 'sha256', a.sha256, "      \
	"'size', a.size, 'expires_at', fleet_ts(a.expires_at)), "            \
	"'selector', dp.selector, 'campaign_id', "                           \
	"dp.campaign_id, 'status', dp.status, 'created_by', dp.created_by, " \
	"'created_at', fleet_ts(dp.created_at), 'finished_at', "             \
	"fleet_ts(dp.finished_at), 'counts', (SELECT "                       \
	"coalesce(json_object_agg(c.state, c.n), '{}') FROM (SELECT "        \
	"state, count(*) AS n FROM deployment_devices WHERE deployment_id "  \
	"= dp.id GROUP BY state) c), 'total', (SELECT count(*) FROM "        \
	"deployment_devices WHERE deployment_id = dp.id), 'open', (SELECT "  \
	"count(*) FROM deployment_devices WHERE deployment_id = dp.id AND "  \
	"NOT finished))"

/* A page's JSON rows (column 0) and cursor (column 1): db_json_page. */
static enum deploy_rc
page_rows(PGresult *res, const struct page *page, json_t **items,
	  char next[PAGE_CURSOR_MAX])
{
	enum deploy_rc rc =
		db_json_page(res, page, 0, 1, items, next, PAGE_CURSOR_MAX) == 0
			? DEPLOY_OK
			: DEPLOY_ERR_STORE;

	PQclear(res);
	return rc;
}

enum deploy_rc
store_deployment_list(struct store *st, const struct page *page, json_t **items,
		      char next[PAGE_CURSOR_MAX])
{
	PGconn *conn = store_conn(st);
	char limit[16];
	const char *params[2] = {limit, page->after};
	PGresult *res;

	next[0] = '\0';
	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(conn,
		       "SELECT " DEP_DOC "::text, fleet_cursor(dp.created_at, "
		       "dp.id) FROM deployments dp JOIN artifacts a ON a.id = "
		       "dp.artifact_id WHERE $2::text IS NULL OR "
		       "(dp.created_at, dp.id) > (fleet_cursor_ts(split_part("
		       "$2, ' ', 1)::bigint), split_part($2, ' ', 2)::uuid) "
		       "ORDER BY dp.created_at, dp.id LIMIT $1::int",
		       2, params);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	return page_rows(res, page, items, next);
}

enum deploy_rc
store_deployment_get(struct store *st, const char *id, json_t **doc)
{
	PGconn *conn = store_conn(st);
	const char *params[1] = {id};
	PGresult *res;
	json_t *v;

	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	res = db_query(
		conn,
		"SELECT " DEP_DOC
		"::text, (SELECT coalesce(json_agg(json_build_object("
		"'device_id', f.device_id, 'state', f.state, 'reason', "
		"f.reason, 'error', f.error, 'running_version', "
		"f.running_version, 'fw_version', f.fw_version, "
		"'updated_at', fleet_ts(f.updated_at)) ORDER BY "
		"f.updated_at DESC), '[]')::text FROM (SELECT * FROM "
		"deployment_devices WHERE deployment_id = dp.id AND state IN "
		"('failed', 'rolled_back', 'refused') ORDER BY updated_at "
		"DESC LIMIT 100) f) FROM deployments dp JOIN artifacts a ON "
		"a.id = dp.artifact_id WHERE dp.id = $1::uuid",
		1, params);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return DEPLOY_NOTFOUND;
	}
	v = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (v != NULL && json_object_set_new(v, "failures",
					     json_loads(PQgetvalue(res, 0, 1),
							0, NULL)) != 0) {
		json_decref(v);
		v = NULL;
	}
	PQclear(res);
	if (v == NULL)
		return DEPLOY_ERR_STORE;
	*doc = v;
	return DEPLOY_OK;
}

enum deploy_rc
store_deployment_devices(struct store *st, const char *id, const char *state,
			 const struct page *page, json_t **items,
			 char next[PAGE_CURSOR_MAX])
{
	PGconn *conn = store_conn(st);
	char limit[16];
	const char *params[4] = {id, limit, page->after, state};
	PGresult *res;
	int rows;

	next[0] = '\0';
	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(conn, "SELECT 1 FROM deployments WHERE id = $1::uuid", 1,
		       params);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	rows = PQntuples(res);
	PQclear(res);
	if (rows != 1)
		return DEPLOY_NOTFOUND;
	res = db_query(
		conn,
		"SELECT json_build_object('device_id', x.device_id, 'state', "
		"x.state, 'reason', x.reason, 'error', x.error, 'progress', "
		"x.progress, 'bytes', x.bytes, 'running_version', "
		"x.running_version, 'fw_version', x.fw_version, 'model', "
		"d.model, 'offered_at', fleet_ts(x.offered_at), "
		"'updated_at', fleet_ts(x.updated_at))::text, "
		"fleet_cursor(d.created_at, d.id) FROM deployment_devices x "
		"JOIN devices d ON d.id = x.device_id WHERE x.deployment_id = "
		"$1::uuid AND ($4::text IS NULL OR x.state = $4) AND "
		"($3::text IS NULL OR (d.created_at, d.id) > "
		"(fleet_cursor_ts(split_part($3, ' ', 1)::bigint), "
		"split_part($3, ' ', 2)::uuid)) ORDER BY d.created_at, d.id "
		"LIMIT $2::int",
		4, params);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	return page_rows(res, page, items, next);
}

/* The rows of update_state_supersedable() (core/update.c) of deployment
 * id become superseded ('cancelled'). */
static int
cancel_rows(PGconn *conn, const char *id, size_t *n)
{
	const char *params[1] = {id};
	PGresult *res;

	res = db_query(conn,
		       "WITH s AS (UPDATE deployment_devices SET state = "
		       "'superseded', reason = 'cancelled', updated_at = "
		       "now() WHERE deployment_id = $1::uuid AND state "
		       "IN " DB_DEPLOY_SUPERSEDABLE_SQL " RETURNING 1) "
		       "SELECT count(*) FROM s",
		       1, params);
	if (res == NULL)
		return -1;
	*n = (size_t)db_int(res, 0, 0);
	PQclear(res);
	return 0;
}

enum deploy_rc
store_deployment_cancel(struct store *st, const char *id, const char *actor,
			size_t *superseded)
{
	PGconn *conn = store_conn(st);
	const char *params[1] = {id};
	struct audit_entry audit;
	PGresult *res;
	size_t n;

	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	if (db_exec(conn, "BEGIN") != 0)
		return DEPLOY_ERR_STORE;
	/* Rows before the deployment, in the order a report and a creation
	 * lock them (a row, then its deployment when it finishes), so the
	 * three never wait for each other in a circle. */
	res = db_query(conn,
		       "SELECT 1 FROM deployment_devices WHERE deployment_id = "
		       "$1::uuid AND NOT finished FOR UPDATE",
		       1, params);
	if (res == NULL)
		return rollback(conn, DEPLOY_ERR_STORE);
	PQclear(res);
	res = db_query(conn,
		       "SELECT status, campaign_id IS NOT NULL FROM "
		       "deployments WHERE id = $1::uuid FOR UPDATE",
		       1, params);
	if (res == NULL)
		return rollback(conn, DEPLOY_ERR_STORE);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return rollback(conn, DEPLOY_NOTFOUND);
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		/* its campaign would go on adding devices to it */
		PQclear(res);
		return rollback(conn, DEPLOY_CAMPAIGN_OWNED);
	}
	if (strcmp(PQgetvalue(res, 0, 0), "active") != 0) {
		PQclear(res);
		return rollback(conn, DEPLOY_NOT_ACTIVE);
	}
	PQclear(res);
	if (cancel_rows(conn, id, &n) != 0)
		return rollback(conn, DEPLOY_ERR_STORE);
	if (db_command(conn,
		       "UPDATE deployments SET status = 'cancelled', "
		       "finished_at = now() WHERE id = $1::uuid",
		       1, params) != STORE_OK)
		return rollback(conn, DEPLOY_ERR_STORE);
	memset(&audit, 0, sizeof(audit));
	audit.actor = actor;
	audit.action = "deployment.cancel";
	audit.target = id;
	audit_add_int(&audit, "superseded", (int64_t)n);
	if (db_audit_insert(conn, &audit) != DB_OK ||
	    db_command(conn, "SELECT pg_notify('fleet_update', $1)", 1,
		       params) != STORE_OK)
		return rollback(conn, DEPLOY_ERR_STORE);
	if (db_exec(conn, "COMMIT") != 0)
		return DEPLOY_ERR_STORE;
	*superseded = n;
	return DEPLOY_OK;
}

/* ---- offers for the channel -------------------------------------------- */

void
update_offers_free(struct update_offer *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].envelope);
	free(list);
}

enum store_rc
store_update_offers(struct store *st, const char *const *ids, size_t n,
		    bool pending_only, struct update_offer **out, size_t *nout)
{
	PGconn *conn = store_conn(st);
	struct update_offer *list = NULL;
	const char *params[2];
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
	params[1] = pending_only ? "true" : "false";
	/* One statement: pending rows become offered, and every row asked
	 * for comes back with its artifact. */
	res = db_query_prepared(
		conn,
		/* clang-format off */
		"WITH o AS (SELECT x.deployment_id, x.device_id, x.state, "
		"d.campaign_id, a.sha256, a.version_int, a.size, a.envelope, "
		"a.expires_at FROM deployment_devices x "
		"JOIN deployments d ON d.id = x.deployment_id "
		"JOIN artifacts a ON a.id = d.artifact_id "
		"WHERE x.device_id = ANY($1::uuid[]) AND NOT x.finished "
		"AND (NOT $2::boolean OR x.state = 'pending') "
		"AND a.expires_at > now()), "
		"m AS (UPDATE deployment_devices y SET state = 'offered', "
		"offered_at = now(), updated_at = now() FROM o "
		"WHERE y.deployment_id = o.deployment_id AND "
		"y.device_id = o.device_id AND y.state = 'pending' RETURNING 1) "
		"SELECT o.device_id, o.deployment_id, "
		"coalesce(o.campaign_id::text, ''), o.sha256, o.version_int, "
		"o.size, o.envelope::text, (SELECT count(*) FROM m), "
		DB_EPOCH("o.expires_at") " FROM o "
		"ORDER BY o.device_id::text COLLATE \"C\"",
		/* clang-format on */
		2, params);
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
		struct update_offer *o = &list[i];
		int r = (int)i;

		snprintf(o->device_id, sizeof(o->device_id), "%s",
			 PQgetvalue(res, r, 0));
		snprintf(o->deployment_id, sizeof(o->deployment_id), "%s",
			 PQgetvalue(res, r, 1));
		snprintf(o->campaign_id, sizeof(o->campaign_id), "%s",
			 PQgetvalue(res, r, 2));
		snprintf(o->sha256, sizeof(o->sha256), "%s",
			 PQgetvalue(res, r, 3));
		o->version = db_int(res, r, 4);
		o->size = db_int(res, r, 5);
		o->expires_at = db_int(res, r, 8);
		o->envelope = db_text(res, r, 6, &failed);
		if (failed || o->envelope == NULL)
			goto fail;
	}
	PQclear(res);
	*out = list;
	*nout = count;
	return STORE_OK;
fail:
	update_offers_free(list, count);
	PQclear(res);
	return STORE_ERR;
}

/* ---- reports ----------------------------------------------------------- */

static void
int_text(int64_t v, char *buf, size_t cap, const char **out)
{
	if (v < 0) {
		*out = NULL;
		return;
	}
	snprintf(buf, cap, "%" PRId64, v);
	*out = buf;
}

/* The accepted report's effect: the row, the device's firmware, the
 * deployment finished when nothing is open any more. */
static enum store_rc
status_effect(PGconn *conn, const char *device_id, const char *deployment_id,
	      const struct update_status *s, uint64_t seq)
{
	char seqs[32], prog[32], bytes[32], run[32];
	const char *p[10] = {deployment_id, device_id, s->state, s->reason,
			     s->error,	    NULL,      NULL,	 NULL,
			     s->fw_version, seqs};
	const char *fw[3] = {device_id, s->fw_version, NULL};
	char arr[48];
	const char *fin[1] = {arr};
	enum update_state st;

	snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
	int_text(s->progress, prog, sizeof(prog), &p[5]);
	int_text(s->bytes, bytes, sizeof(bytes), &p[6]);
	int_text(s->running_version, run, sizeof(run), &p[7]);
	if (db_command_prepared(
		    conn,
		    "UPDATE deployment_devices SET state = $3, reason = "
		    "$4, error = $5, progress = coalesce($6::integer, "
		    "CASE WHEN $3 IN ('downloaded', 'installing', "
		    "'installed', 'rebooting', 'verifying', 'committed') "
		    "THEN 100 ELSE progress END), bytes = "
		    "coalesce($7::bigint, bytes), running_version = "
		    "coalesce($8::bigint, running_version), fw_version = "
		    "coalesce($9, fw_version), seq = $10::bigint, "
		    "updated_at = now() WHERE deployment_id = $1::uuid AND "
		    "device_id = $2::uuid",
		    10, p) != STORE_OK)
		return STORE_ERR;
	if (update_status_sets_firmware(s)) {
		fw[2] = p[7];
		if (db_command_prepared(
			    conn,
			    "UPDATE devices SET fw_version = coalesce($2, "
			    "fw_version), inventory = CASE WHEN $3::bigint "
			    "IS NULL THEN inventory ELSE jsonb_set("
			    "inventory, '{fw_version_num}', "
			    "to_jsonb($3::bigint)) END WHERE id = $1::uuid",
			    3, fw) != STORE_OK)
			return STORE_ERR;
	}
	snprintf(arr, sizeof(arr), "{\"%s\"}", deployment_id);
	/* A row that just finished may be the deployment's last: lock the
	 * deployment before looking, so that of two last reports committing
	 * at once the second sees the first's row finished (rows, then the
	 * deployment: cancel's lock order). */
	if (update_state_parse(s->state, &st) == 0 &&
	    update_state_finished(st) &&
	    db_command_prepared(
		    conn,
		    "SELECT 1 FROM deployments WHERE id = $1::uuid FOR "
		    "UPDATE",
		    1, p) != STORE_OK)
		return STORE_ERR;
	return db_command_prepared(conn, DEP_FINISH_SQL, 1, fin);
}

enum store_rc
store_update_report_apply(struct store *st, const char *device_id,
			  const struct report *r,
			  const struct update_status *status,
			  enum report_verdict *verdict, enum update_verdict *uv)
{
	PGconn *conn = store_conn(st);
	const char *id1[1] = {device_id};
	struct update_open_row row;
	struct report_window w;
	enum report_verdict v;
	enum store_rc rc;
	PGresult *res = NULL;

	if (conn == NULL)
		return STORE_ERR;
	rc = db_report_window_begin(conn, device_id, &w);
	if (rc != STORE_OK)
		return rc;
	v = report_window_check(&w, r->seq);
	*uv = UPDATE_ACCEPT;
	if (v != REPORT_NEW)
		goto commit;
	res = db_query_prepared(
		conn,
		"SELECT x.deployment_id, a.version_int, x.state, x.seq "
		"FROM deployment_devices x JOIN deployments dp ON "
		"dp.id = x.deployment_id JOIN artifacts a ON a.id = "
		"dp.artifact_id WHERE x.device_id = $1::uuid AND NOT "
		"x.finished FOR UPDATE OF x",
		1, id1);
	if (res == NULL)
		goto fail;
	memset(&row, 0, sizeof(row));
	if (PQntuples(res) == 1 &&
	    update_state_parse(PQgetvalue(res, 0, 2), &row.state) == 0) {
		row.present = true;
		row.deployment_id = PQgetvalue(res, 0, 0);
		row.version = db_int(res, 0, 1);
		row.seq = (uint64_t)db_int(res, 0, 3);
	}
	*uv = update_report_check(&row, status, r->seq);
	if (*uv == UPDATE_ACCEPT) {
		if (status_effect(conn, device_id, row.deployment_id, status,
				  r->seq) != STORE_OK)
			goto fail;
	} else {
		const char *ign[3] = {device_id, update_verdict_name(*uv),
				      r->body};

		if (db_command_prepared(
			    conn,
			    "INSERT INTO update_reports_ignored AS i "
			    "(device_id, last_verdict, last_body) VALUES "
			    "($1::uuid, $2, $3::jsonb) ON CONFLICT "
			    "(device_id) DO UPDATE SET count = i.count + 1, "
			    "last_verdict = EXCLUDED.last_verdict, "
			    "last_body = EXCLUDED.last_body, last_at = "
			    "now()",
			    3, ign) != STORE_OK)
			goto fail;
	}
	PQclear(res);
	res = NULL;
	if (db_report_window_mark(conn, device_id, r, &w) != STORE_OK)
		goto fail;
commit:
	if (db_exec(conn, "COMMIT") != 0)
		return STORE_ERR;
	*verdict = v;
	return STORE_OK;
fail:
	PQclear(res);
	(void)db_exec(conn, "ROLLBACK");
	return STORE_ERR;
}

enum store_rc
store_keys_report_apply(struct store *st, const char *device_id,
			const struct report *r, int64_t version,
			const char *state, enum report_verdict *verdict)
{
	PGconn *conn = store_conn(st);
	struct report_window w;
	enum report_verdict v;
	enum store_rc rc;
	char ver[32];
	const char *p[2] = {device_id, ver};

	if (conn == NULL)
		return STORE_ERR;
	rc = db_report_window_begin(conn, device_id, &w);
	if (rc != STORE_OK)
		return rc;
	v = report_window_check(&w, r->seq);
	if (v == REPORT_NEW) {
		snprintf(ver, sizeof(ver), "%" PRId64, version);
		/* A pinned set only moves forward. */
		if (strcmp(state, "adopted") == 0 &&
		    db_command_prepared(conn,
					"UPDATE devices SET keyset_version = "
					"greatest(coalesce(keyset_version, 1), "
					"$2::bigint) WHERE id = $1::uuid",
					2, p) != STORE_OK)
			goto fail;
		if (db_report_window_mark(conn, device_id, r, &w) != STORE_OK)
			goto fail;
	}
	if (db_exec(conn, "COMMIT") != 0)
		return STORE_ERR;
	*verdict = v;
	return STORE_OK;
fail:
	(void)db_exec(conn, "ROLLBACK");
	return STORE_ERR;
}

/* ---- rows for other db modules (db/deployment_rows.h) ------------------ */

int
db_deployment_create_lock(PGconn *conn)
{
	return db_command_prepared(conn,
				   "SELECT pg_advisory_xact_lock(hashtext("
				   "'fleet_deployments'))",
				   0, NULL) == STORE_OK
		       ? 0
		       : -1;
}

int
db_deployment_supersede(PGconn *conn, const char *ids_array,
			const char *keep_id, size_t *n)
{
	const char *params[2] = {ids_array, keep_id};
	const char *fin[1];
	PGresult *res;
	int rc = -1;

	/* The deployments that lose rows may finish with it. */
	res = db_query_prepared(
		conn,
		"WITH s AS (UPDATE deployment_devices SET state = "
		"'superseded', reason = 'superseded', updated_at = "
		"now() WHERE device_id = ANY($1::uuid[]) AND NOT "
		"finished AND ($2::uuid IS NULL OR deployment_id <> "
		"$2::uuid) AND state IN " DB_DEPLOY_SUPERSEDABLE_SQL
		" RETURNING deployment_id) SELECT coalesce(array_agg("
		"DISTINCT deployment_id)::text, '{}'), count(*) FROM s",
		2, params);
	if (res == NULL)
		return -1;
	*n = (size_t)db_int(res, 0, 1);
	fin[0] = PQgetvalue(res, 0, 0);
	if (*n == 0 ||
	    db_command_prepared(conn, DEP_FINISH_SQL, 1, fin) == STORE_OK)
		rc = 0;
	PQclear(res);
	return rc;
}

int
db_deployment_withdraw(PGconn *conn, const char *id, const char *ids_array,
		       const char *reason, size_t *n)
{
	const char *params[3] = {id, ids_array, reason};
	char arr[48];
	const char *fin[1] = {arr};
	PGresult *res;

	res = db_query_prepared(
		conn,
		"WITH s AS (UPDATE deployment_devices SET state = "
		"'superseded', reason = $3, updated_at = now() WHERE "
		"deployment_id = $1::uuid AND device_id = "
		"ANY($2::uuid[]) AND state IN " DB_DEPLOY_SUPERSEDABLE_SQL
		" RETURNING 1) SELECT count(*) FROM s",
		3, params);
	if (res == NULL)
		return -1;
	*n = (size_t)db_int(res, 0, 0);
	PQclear(res);
	if (*n == 0)
		return 0;
	snprintf(arr, sizeof(arr), "{\"%s\"}", id);
	if (db_command_prepared(conn, DEP_FINISH_SQL, 1, fin) != STORE_OK ||
	    db_command_prepared(conn, "SELECT pg_notify('fleet_update', $1)", 1,
				params) != STORE_OK)
		return -1;
	return 0;
}

int
db_deployment_cancel_open(PGconn *conn, const char *id, size_t *n)
{
	const char *params[1] = {id};

	/* Rows before the deployment, as store_deployment_cancel. */
	if (db_command_prepared(
		    conn,
		    "SELECT 1 FROM deployment_devices WHERE deployment_id = "
		    "$1::uuid AND NOT finished FOR UPDATE",
		    1, params) != STORE_OK ||
	    db_command_prepared(conn,
				"SELECT 1 FROM deployments WHERE id = $1::uuid "
				"FOR UPDATE",
				1, params) != STORE_OK ||
	    cancel_rows(conn, id, n) != 0 ||
	    db_command_prepared(
		    conn,
		    "UPDATE deployments SET status = 'cancelled', "
		    "finished_at = now() WHERE id = $1::uuid AND status = "
		    "'active'",
		    1, params) != STORE_OK ||
	    db_command_prepared(conn, "SELECT pg_notify('fleet_update', $1)", 1,
				params) != STORE_OK)
		return -1;
	return 0;
}
