/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment's record on PostgreSQL (core/store_enroll.h): the device, its
 * first certificate, the configuration profile its token names, the audit
 * row and the Idempotency-Key record. The token's use was reserved before
 * (db/tokens.c), so this transaction locks no token row. Runs on API job
 * threads.
 *
 * Group commit (db/group_commit.c): the job threads of a worker that
 * record enrollments at the same time share transactions. A batch's
 * leader writes it in ONE transaction on its own connection: the
 * Idempotency-Key records, devices, certificates and audit rows of all in
 * one statement, one commit (one WAL flush) for all; each caller is
 * answered with its own result. Should any statement of a batch fail, the
 * batch is rolled back and each record is written again in its own
 * transaction, so one bad record never fails the others.
 * docs/internals/enroll-rate.md has the figures.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/audit.h"
#include "db/db.h"
#include "db/group_commit.h"
#include "db/query.h"
#include "db/store.h"
#include "db/tokens.h"
#include "core/audit.h"
#include "log.h"

/*
 * Transactions open at once per worker, and records per transaction. One
 * at a time: the two of the queue this replaced became one after the
 * first race (docs/internals/group-commit.md), and every figure was
 * measured so; two real ones halved the batches (1.75 -> 1.2 records)
 * and cost PostgreSQL 15-20 % more CPU per enrollment on this CPU-bound
 * machine, for no steady gain in rate.
 */
#define ENROLL_LEADERS 1
#define ENROLL_BATCH_MAX 64

/*
 * The token's profile, followed at `latest`: the new device's desired
 * configuration is that version's document (generation 1), so it gets it
 * on its first connection. The profile row is taken FOR SHARE, as every
 * reader of a latest version does, so a publish running meanwhile is
 * either seen whole or moves this device too. A profile that does not
 * exist (deleted or never made) gives the device no configuration.
 */
static enum store_rc
enroll_profile(PGconn *conn, const char *device_id, const char *profile)
{
	const char *params[3] = {profile, NULL, NULL};
	char id[40];
	PGresult *res;
	enum store_rc rc;

	res = db_query_prepared(conn,
				"SELECT id::text, latest_version::text FROM "
				"config_profiles WHERE name = $1 FOR SHARE",
				1, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_OK;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	params[0] = device_id;
	params[1] = id;
	params[2] = PQgetvalue(res, 0, 1);
	rc = db_command_prepared(
		conn,
		"INSERT INTO device_config (device_id, profile_id, "
		"desired_document, desired_sha256, desired_generation, "
		"desired_at) SELECT $1::uuid, $2::uuid, v.document, "
		"v.sha256, CASE WHEN v.document IS NULL THEN 0 ELSE 1 "
		"END, CASE WHEN v.document IS NULL THEN NULL ELSE now() "
		"END FROM (SELECT 1) one LEFT JOIN config_versions v ON "
		"v.profile_id = $2::uuid AND v.version = $3::integer",
		3, params);
	PQclear(res);
	return rc;
}

/* One caller's record, queued in a group_commit_slot. */
struct enroll_record {
	const struct enrollment *e;
	const struct audit_entry *audit;
	const struct idem_record *idem;
};

/* A label set as a JSON object; NULL when out of memory. */
static json_t *
enroll_labels_json(const struct label_set *labels)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj != NULL && labels != NULL && i < labels->n;
	     i++) {
		if (json_object_set_new(obj, labels->items[i].key,
					json_string(labels->items[i].value)) !=
		    0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* One record of the batch statement's input; NULL when out of memory. */
static json_t *
enroll_row(const struct enroll_record *s)
{
	const struct enrollment *e = s->e;
	json_t *row, *labels = enroll_labels_json(e->labels), *details = NULL;

	if (labels == NULL)
		return NULL;
	if (s->audit != NULL) {
		details = db_audit_details(s->audit);
		if (details == NULL) {
			json_decref(labels);
			return NULL;
		}
	}
	row = json_pack("{s:s, s:o, s:s?, s:s?, s:s?, s:s, s:s, s:I, s:I, "
			"s:s?, s:s?, s:s?, s:o?}",
			"device_id", e->device_id, "labels", labels, "model",
			e->model, "serial", e->serial, "profile", e->profile,
			"token_id", e->token_id, "cert_serial", e->cert_serial,
			"not_before", (json_int_t)e->not_before, "not_after",
			(json_int_t)e->not_after, "actor",
			s->audit != NULL ? s->audit->actor : NULL, "action",
			s->audit != NULL ? s->audit->action : NULL, "target",
			s->audit != NULL ? s->audit->target : NULL, "details",
			details);
	if (row != NULL && s->idem != NULL &&
	    json_object_update_new(
		    row, json_pack("{s:s, s:s, s:s, s:i, s:s}", "idem_actor",
				   s->idem->actor, "idem_key", s->idem->key,
				   "idem_sha256", s->idem->request_sha256,
				   "idem_status", s->idem->status, "idem_body",
				   s->idem->body)) != 0) {
		json_decref(row);
		row = NULL;
	}
	return row;
}

/*
 * The Idempotency-Key records, devices, certificates and audit rows of a
 * batch in ONE statement (what db_idem_insert, enroll_record_tx's
 * statement and db_audit_insert did for one record, for every record at
 * once): one parse, one plan, one round trip per batch. A record whose
 * key is taken (ON CONFLICT DO NOTHING, as db_idem_insert) writes nothing
 * else. The certificates' FK is checked at the end of the statement, when
 * the device rows exist. Returns the result (the device id of every
 * record written; caller PQclear()s) or NULL.
 */
static PGresult *
enroll_rows_insert(PGconn *conn, json_t *rows)
{
	const char *params[1];
	char *text = json_dumps(rows, JSON_COMPACT);
	PGresult *res;

	if (text == NULL)
		return NULL;
	params[0] = text;
	res = db_query_prepared(
		conn,
		"WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS "
		"r(device_id uuid, labels jsonb, model text, serial text, "
		"profile text, token_id uuid, cert_serial text, not_before "
		"bigint, not_after bigint, actor text, action text, target "
		"text, details jsonb, idem_actor text, idem_key text, "
		"idem_sha256 text, idem_status integer, idem_body text)), "
		"idem AS (INSERT INTO idempotency_keys (actor, key, "
		"request_sha256, status, body) SELECT idem_actor, idem_key, "
		"idem_sha256, idem_status, idem_body FROM r WHERE idem_key IS "
		"NOT NULL ON CONFLICT DO NOTHING RETURNING actor, key), "
		"ok AS (SELECT * FROM r WHERE idem_key IS NULL OR EXISTS "
		"(SELECT 1 FROM idem WHERE idem.actor = r.idem_actor AND "
		"idem.key = r.idem_key)), "
		"dev AS (INSERT INTO devices (id, labels, model, serial, "
		"profile, enrolled_with) SELECT device_id, labels, model, "
		"serial, profile, token_id FROM ok RETURNING id), "
		"aud AS (INSERT INTO audit_log (actor, action, target, "
		"details) SELECT actor, action, target, coalesce(details, "
		"'{}') FROM ok WHERE action IS NOT NULL), "
		"crt AS (INSERT INTO certificates (serial, device_id, "
		"not_before, not_after) SELECT ok.cert_serial, dev.id, "
		"to_timestamp(ok.not_before), to_timestamp(ok.not_after) FROM "
		"dev JOIN ok ON ok.device_id = dev.id RETURNING device_id) "
		"SELECT device_id::text FROM crt",
		1, params);
	free(text);
	return res;
}

/* The record a slot of enroll_queue carries. */
static const struct enroll_record *
enroll_rec(const struct group_commit_slot *s)
{
	return s->record;
}

/* Whether v[i]'s Idempotency-Key is also v[j]'s for some j < i. */
static bool
enroll_idem_repeated(struct group_commit_slot **v, size_t i)
{
	const struct idem_record *a = enroll_rec(v[i])->idem;

	for (size_t j = 0; a != NULL && j < i; j++) {
		const struct idem_record *b = enroll_rec(v[j])->idem;

		if (b != NULL && strcmp(a->actor, b->actor) == 0 &&
		    strcmp(a->key, b->key) == 0)
			return true;
	}
	return false;
}

/*
 * Writes n records in one transaction. 0 when committed (each slot's rc
 * set: STORE_OK, or STORE_CONFLICT for an Idempotency-Key taken meanwhile,
 * which writes nothing for that record), -1 when anything failed (rolled
 * back; the rcs mean nothing).
 */
static int
enroll_batch_tx(PGconn *conn, struct group_commit_slot **v, size_t n)
{
	json_t *rows = json_array();
	PGresult *res = NULL;

	if (rows == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct enroll_record *r = enroll_rec(v[i]);

		v[i]->rc = STORE_ERR;
		if (r->idem != NULL && r->idem->body == NULL)
			goto fail; /* as db_idem_insert: nothing to record */
		/* The same key twice in one batch: the first takes it, as
		 * the first of two concurrent transactions would. */
		if (enroll_idem_repeated(v, i)) {
			v[i]->rc = STORE_CONFLICT;
			continue;
		}
		if (json_array_append_new(rows, enroll_row(r)) != 0)
			goto fail;
		v[i]->rc = STORE_OK; /* unless its key is taken (below) */
	}
	/* Durable whatever the session's default: an enrollment is
	 * answered only once its record is on disk (and with it every
	 * earlier commit of the WAL, such as its token reservation). */
	if (db_exec(conn, "BEGIN; SET LOCAL synchronous_commit TO on") != 0)
		goto fail;
	if (json_array_size(rows) > 0) {
		res = enroll_rows_insert(conn, rows);
		if (res == NULL)
			goto rollback;
	}
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		if (v[i]->rc != STORE_OK)
			continue;
		for (int k = 0; res != NULL && k < PQntuples(res) && !found;
		     k++)
			found = strcmp(PQgetvalue(res, k, 0),
				       enroll_rec(v[i])->e->device_id) == 0;
		if (found)
			continue;
		if (enroll_rec(v[i])->idem == NULL)
			goto rollback; /* not written, and no reason why */
		v[i]->rc = STORE_CONFLICT; /* a concurrent request's key */
	}
	/* The token's profile, for the records that name one. */
	for (size_t i = 0; i < n; i++) {
		const struct enrollment *e = enroll_rec(v[i])->e;

		if (v[i]->rc == STORE_OK && e->profile != NULL &&
		    e->profile[0] != '\0' &&
		    enroll_profile(conn, e->device_id, e->profile) != STORE_OK)
			goto rollback;
	}
	PQclear(res);
	json_decref(rows);
	if (db_exec(conn, "COMMIT") != 0)
		return -1;
	return 0;
rollback:
	(void)db_exec(conn, "ROLLBACK");
fail:
	PQclear(res);
	json_decref(rows);
	return -1;
}

/* enroll_queue's batch (group_commit_run): v[0..n) in one transaction,
 * or one each when that fails. */
static void
enroll_batch(struct store *st, struct group_commit_slot **v, size_t n)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL || enroll_batch_tx(conn, v, n) == 0)
		return; /* every rc set (STORE_ERR without a connection) */
	if (n == 1) {
		v[0]->rc = STORE_ERR;
		return;
	}
	log_warn("enrollment: a batch of %zu records failed; writing each "
		 "in its own transaction",
		 n);
	for (size_t i = 0; i < n; i++) {
		conn = store_conn(st);
		if (conn == NULL || enroll_batch_tx(conn, &v[i], 1) != 0)
			v[i]->rc = STORE_ERR;
	}
}

_Static_assert(ENROLL_BATCH_MAX <= GROUP_COMMIT_BATCH_MAX,
	       "a batch fits group_commit's");

/* The worker's queue: one per process (the job threads of one net
 * worker); nothing in it survives a call. */
static struct group_commit enroll_queue =
	GROUP_COMMIT_INIT(ENROLL_LEADERS, ENROLL_BATCH_MAX, enroll_batch);

enum store_rc
store_enroll_record(struct store *st, const struct enrollment *e,
		    const struct audit_entry *audit,
		    const struct idem_record *idem)
{
	struct enroll_record rec = {e, audit, idem};

	return group_commit(&enroll_queue, st, &rec);
}
