/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment's record on PostgreSQL (core/store_enroll.h): the device, its
 * first certificate, the configuration profile its token names, the audit
 * row and the Idempotency-Key record, and the token's use. Runs on API
 * job threads.
 *
 * Group commit (db/group_commit.c): the job threads of a worker that
 * record enrollments at the same time share transactions. A batch's
 * leader, on its own connection, takes the uses of all its records from
 * each token row once (uses_left - n, tokens in id order; the records
 * past zero are refused) in one asynchronous statement, then writes the
 * Idempotency-Key records, devices, certificates and audit rows of the
 * records that got a use in one statement of ONE durable transaction,
 * one commit (one WAL flush) for all; each caller is answered with its
 * own result. Should the transaction fail, it is rolled back, the uses go
 * back through the same session, and each record is written again on its
 * own, so one bad record never fails the others.
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
#include "db/idempotency.h"
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

/* Record ord of the batch statement's input; NULL when out of memory. */
static json_t *
enroll_row(const struct enroll_record *s, size_t ord)
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
	row = json_pack(
		"{s:I, s:s, s:o, s:s?, s:s?, s:s?, s:s, s:s, "
		"s:s?, s:I, s:I, s:s?, s:s?, s:s?, s:o?}",
		"ord", (json_int_t)ord, "device_id", e->device_id, "labels",
		labels, "model", e->model, "serial", e->serial, "profile",
		e->profile, "token_id", e->token_id, "cert_serial",
		e->cert_serial, "issuer",
		e->issuer != NULL && e->issuer[0] != '\0' ? e->issuer : NULL,
		"not_before", (json_int_t)e->not_before, "not_after",
		(json_int_t)e->not_after, "actor",
		s->audit != NULL ? s->audit->actor : NULL, "action",
		s->audit != NULL ? s->audit->action : NULL, "target",
		s->audit != NULL ? s->audit->target : NULL, "details", details);
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
 * Takes the uses of a batch's records: ONE statement per batch, whatever
 * its size, committed without waiting for the WAL flush (DB_ASYNC_COMMIT,
 * as the per-enrollment reservation it replaces).
 *
 *  - tok: the batch's tokens, locked in id order, so two batches (two
 *    workers, two hosts) that share tokens never wait for each other in a
 *    cycle; READ COMMITTED re-reads a row a concurrent batch changed.
 *  - pick: per token, the first uses_left of the records it is usable for
 *    (not revoked, not expired as of the record's now), in batch order;
 *    the others are refused.
 *  - use: uses_left - n, once per token.
 *
 * Why a statement of its own and not the first of the record's
 * transaction: a row lock lasts until its transaction ends, and the
 * record's transaction ends with a WAL flush. Every enrollment of a
 * factory line uses one token, so batches of every worker and host would
 * go one flush at a time behind that row (measured: the batch statement
 * 4-6 ms per call, mostly waiting, against 1 ms;
 * docs/internals/enroll-rate.md). An acknowledged enrollment still has
 * its use on disk: its record's durable commit flushes the WAL up to it,
 * this commit included.
 *
 * rows: the batch's records (ord, token_id, now). Answers the picked
 * ords in order; NULL when it failed (nothing taken, or the answer lost:
 * then the session is gone and the uses stay spent).
 */
static PGresult *
enroll_reserve(PGconn *conn, const char *rows)
{
	const char *params[1] = {rows};

	return db_query_prepared(
		conn,
		"WITH r AS (SELECT r.* FROM jsonb_to_recordset($1::jsonb) AS "
		"r(ord integer, token_id uuid, now bigint), " DB_ASYNC_COMMIT
		"), "
		"tok AS (SELECT id, uses_left, expires_at, revoked_at FROM "
		"enrollment_tokens WHERE id IN (SELECT token_id FROM r) ORDER "
		"BY id FOR NO KEY UPDATE), "
		"pick AS (SELECT ord, token_id FROM (SELECT r.ord, r.token_id, "
		"tok.uses_left, row_number() OVER (PARTITION BY r.token_id "
		"ORDER BY r.ord) AS k FROM r JOIN tok ON tok.id = r.token_id "
		"WHERE tok.revoked_at IS NULL AND tok.expires_at > "
		"to_timestamp(r.now)) c WHERE k <= uses_left), "
		"use AS (UPDATE enrollment_tokens t SET uses_left = "
		"t.uses_left "
		"- u.n FROM (SELECT token_id, count(*) AS n FROM pick GROUP BY "
		"token_id) u WHERE t.id = u.token_id) "
		"SELECT ord FROM pick ORDER BY ord",
		1, params);
}

/*
 * Gives back the uses enroll_reserve took for rows (a batch whose
 * transaction failed), only through the storage session that took them
 * (docs/ha.md): after a reconnect or failover the reservation may not
 * exist on the new server, and giving it back there would add a use the
 * token never had. A token may lose a use, never gain one. Asynchronous
 * like the reservation, and behind it on the same session.
 */
static void
enroll_give_back(struct store *st, uint64_t session, json_t *rows)
{
	const char *params[1] = {NULL};
	char *text = NULL;
	PGconn *conn = store_conn(st);

	if (conn == NULL || store_session(st) != session) {
		log_warn("enrollment: the storage session that took %zu token "
			 "uses is gone; they stay spent",
			 json_array_size(rows));
		return;
	}
	text = json_dumps(rows, JSON_COMPACT);
	params[0] = text;
	if (text == NULL ||
	    db_command_prepared(
		    conn,
		    "UPDATE enrollment_tokens t SET uses_left = "
		    "least(t.uses_total, t.uses_left + u.n) FROM (SELECT "
		    "token_id, count(*) AS n FROM "
		    "jsonb_to_recordset($1::jsonb) "
		    "AS r(token_id uuid) GROUP BY token_id) u, " DB_ASYNC_COMMIT
		    " WHERE t.id = u.token_id",
		    1, params) != STORE_OK)
		log_warn("enrollment: could not give back %zu token uses "
			 "(storage failed); they stay spent",
			 json_array_size(rows));
	free(text);
}

/*
 * The Idempotency-Key records, devices, certificates and audit rows of
 * the records that got a use, in ONE statement inside the batch's
 * durable transaction: one parse, one plan, one round trip per batch.
 *
 *  - idem: as db_idem_insert writes one: a live record of the key is a
 *    conflict (that record writes nothing), an expired one is replaced.
 *    DISTINCT ON keeps the first record of a key, so ON CONFLICT DO
 *    UPDATE never meets one row twice (enroll_batch_tx drops repeated
 *    keys before this already).
 *  - back: a record whose key was taken gives its use back in this same
 *    transaction (the session that took it; durable with the rest).
 *
 * No foreign key from devices to the token (0022): its KEY SHARE lock on
 * the hottest row of an enrollment made a MultiXact per enrollment; the
 * token ids come from the rows enroll_reserve updated. The certificate's
 * issuer is the signer's answer, so the certificates_issuer trigger does
 * not run (0022).
 *
 * Answers one row per input record, in input order: (ord, written).
 * Returns the result (caller PQclear()s) or NULL.
 */
static PGresult *
enroll_rows_insert(PGconn *conn, const char *rows)
{
	char retention[24];
	const char *params[2] = {rows, retention};

	snprintf(retention, sizeof(retention), "%ld", db_idem_retention());
	return db_query_prepared(
		conn,
		"WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS "
		"r(ord integer, device_id uuid, labels jsonb, model text, "
		"serial text, profile text, token_id uuid, cert_serial text, "
		"issuer text, not_before bigint, not_after bigint, actor text, "
		"action text, target text, details jsonb, idem_actor text, "
		"idem_key text, idem_sha256 text, idem_status integer, "
		"idem_body text)), "
		"idem AS (INSERT INTO idempotency_keys (actor, key, "
		"request_sha256, status, body) SELECT DISTINCT ON (idem_actor, "
		"idem_key) idem_actor, idem_key, idem_sha256, idem_status, "
		"idem_body FROM r WHERE idem_key IS NOT NULL ORDER BY "
		"idem_actor, idem_key, ord ON CONFLICT (actor, key) DO UPDATE "
		"SET request_sha256 = EXCLUDED.request_sha256, status = "
		"EXCLUDED.status, body = EXCLUDED.body, created_at = now() "
		"WHERE idempotency_keys.created_at < now() - $2::bigint * "
		"interval '1 second' RETURNING actor, key), "
		"ok AS (SELECT * FROM r p WHERE idem_key IS NULL OR (EXISTS "
		"(SELECT 1 FROM idem WHERE idem.actor = p.idem_actor AND "
		"idem.key = p.idem_key) AND NOT EXISTS (SELECT 1 FROM r q "
		"WHERE "
		"q.idem_actor = p.idem_actor AND q.idem_key = p.idem_key AND "
		"q.ord < p.ord))), "
		"back AS (UPDATE enrollment_tokens t SET uses_left = "
		"t.uses_left + b.n FROM (SELECT token_id, count(*) AS n FROM r "
		"WHERE ord NOT IN (SELECT ord FROM ok) GROUP BY token_id) b "
		"WHERE t.id = b.token_id), "
		"dev AS (INSERT INTO devices (id, labels, model, serial, "
		"profile, enrolled_with) SELECT device_id, labels, model, "
		"serial, profile, token_id FROM ok RETURNING id), "
		"aud AS (INSERT INTO audit_log (actor, action, target, "
		"details) SELECT actor, action, target, coalesce(details, "
		"'{}') FROM ok WHERE action IS NOT NULL), "
		"crt AS (INSERT INTO certificates (serial, device_id, "
		"not_before, not_after, issuer) SELECT ok.cert_serial, dev.id, "
		"to_timestamp(ok.not_before), to_timestamp(ok.not_after), "
		"ok.issuer FROM dev JOIN ok ON ok.device_id = dev.id RETURNING "
		"device_id) "
		"SELECT r.ord, r.device_id IN (SELECT device_id FROM crt) FROM "
		"r ORDER BY r.ord",
		2, params);
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

/* Which slot of v carries the record of ord (the batch's i-th row). */
static size_t
enroll_slot_of(const size_t *at, size_t n, long ord)
{
	for (size_t i = 0; i < n; i++)
		if (at[i] == (size_t)ord)
			return i;
	return n;
}

/*
 * Writes n records: their uses in one asynchronous statement
 * (enroll_reserve), then the records that got one in one durable
 * transaction. 0 when that committed (each slot's rc set: STORE_OK;
 * STORE_NOTFOUND when its token had no use for it; STORE_CONFLICT for an
 * Idempotency-Key taken meanwhile; those two write nothing and keep no
 * use), -1 when anything failed (rolled back, the uses given back through
 * the same session; the rcs mean nothing).
 */
static int
enroll_batch_tx(struct store *st, struct group_commit_slot **v, size_t n)
{
	json_t *rows = json_array(), *uses = json_array(),
	       *picked = json_array();
	size_t *at = malloc(n * sizeof(*at)); /* v[i]'s ord, or n */
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	char *text = NULL;
	uint64_t session = store_session(st);
	int rc = -1;

	if (conn == NULL || rows == NULL || uses == NULL || picked == NULL ||
	    at == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct enroll_record *r = enroll_rec(v[i]);

		at[i] = n;
		v[i]->rc = STORE_ERR;
		if (r->idem != NULL && r->idem->body == NULL)
			goto out; /* as db_idem_insert: nothing to record */
		/* The same key twice in one batch: the first takes it, as
		 * the first of two concurrent transactions would. */
		if (enroll_idem_repeated(v, i)) {
			v[i]->rc = STORE_CONFLICT;
			continue;
		}
		at[i] = json_array_size(rows);
		if (json_array_append_new(rows, enroll_row(r, at[i])) != 0 ||
		    json_array_append_new(
			    uses, json_pack("{s:I, s:s, s:I}", "ord",
					    (json_int_t)at[i], "token_id",
					    r->e->token_id, "now",
					    (json_int_t)r->e->now)) != 0)
			goto out;
		v[i]->rc = STORE_NOTFOUND; /* unless it gets a use (below) */
	}
	rc = 0;
	if (json_array_size(rows) == 0)
		goto out;
	text = json_dumps(uses, JSON_COMPACT);
	if (text == NULL || (res = enroll_reserve(conn, text)) == NULL) {
		rc = -1;
		goto out;
	}
	json_array_clear(uses);
	for (int k = 0; k < PQntuples(res); k++) {
		size_t ord = (size_t)db_int(res, k, 0);
		size_t i = enroll_slot_of(at, n, (long)ord);

		if (i == n ||
		    json_array_append(picked, json_array_get(rows, ord)) != 0 ||
		    json_array_append_new(
			    uses, json_pack("{s:s}", "token_id",
					    enroll_rec(v[i])->e->token_id)) !=
			    0) {
			rc = -1; /* an ord not sent, or out of memory */
			break;
		}
		v[i]->rc = STORE_OK; /* until the record says otherwise */
	}
	PQclear(res);
	res = NULL;
	free(text);
	text = NULL;
	if (rc != 0)
		goto give_back;
	if (json_array_size(picked) == 0)
		goto out; /* every record refused: nothing to write */
	/* Durable whatever the session's default: an enrollment is
	 * answered only once its record is on disk, and with it every
	 * earlier commit of the WAL, its use included. */
	text = json_dumps(picked, JSON_COMPACT);
	if (text == NULL ||
	    db_exec(conn, "BEGIN; SET LOCAL synchronous_commit TO on") != 0)
		goto give_back;
	res = enroll_rows_insert(conn, text);
	if (res == NULL || (size_t)PQntuples(res) != json_array_size(picked))
		goto rollback;
	for (int k = 0; k < PQntuples(res); k++) {
		size_t i = enroll_slot_of(at, n, (long)db_int(res, k, 0));

		if (i == n)
			goto rollback;
		if (strcmp(PQgetvalue(res, k, 1), "t") == 0)
			continue;
		if (enroll_rec(v[i])->idem == NULL)
			goto rollback; /* not written, and no reason why */
		v[i]->rc = STORE_CONFLICT; /* a concurrent request's key;
					    * its use went back with it */
	}
	/* The token's profile, for the records that name one. */
	for (size_t i = 0; i < n; i++) {
		const struct enrollment *e = enroll_rec(v[i])->e;

		if (v[i]->rc == STORE_OK && e->profile != NULL &&
		    e->profile[0] != '\0' &&
		    enroll_profile(conn, e->device_id, e->profile) != STORE_OK)
			goto rollback;
	}
	/* A failed COMMIT may have committed: the uses stay spent. */
	rc = db_exec(conn, "COMMIT") == 0 ? 0 : -1;
	goto out;
rollback:
	(void)db_exec(conn, "ROLLBACK");
give_back:
	rc = -1;
	if (json_array_size(uses) > 0)
		enroll_give_back(st, session, uses);
out:
	PQclear(res);
	free(text);
	json_decref(rows);
	json_decref(uses);
	json_decref(picked);
	free(at);
	return rc;
}

/* enroll_queue's batch (group_commit_run): v[0..n) in one transaction,
 * or one each when that fails. */
static void
enroll_batch(struct store *st, struct group_commit_slot **v, size_t n)
{
	int why;

	if (enroll_batch_tx(st, v, n) == 0)
		return; /* every rc set */
	/* Gone, or no standby confirmed the commit in time: each record
	 * alone would fare no better, and wait as long again. */
	why = store_failure(st);
	if (n == 1 || why != 0) {
		group_commit_fail(v, n, why);
		return;
	}
	log_warn("enrollment: a batch of %zu records failed; writing each "
		 "in its own transaction",
		 n);
	for (size_t i = 0; i < n; i++)
		if (enroll_batch_tx(st, &v[i], 1) != 0)
			group_commit_fail(&v[i], 1, store_failure(st));
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
	return store_group_commit(&enroll_queue, st, &rec);
}
