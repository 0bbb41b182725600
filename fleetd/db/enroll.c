/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment's record on PostgreSQL (core/store_enroll.h): the device, its
 * first certificate, the configuration profile its token names, the audit
 * row and the Idempotency-Key record. The token's use was reserved before
 * (db/tokens.c), so this transaction locks no token row. Runs on API job
 * threads.
 *
 * Group commit: the job threads of a worker that record enrollments at the
 * same time share transactions. A caller queues its record; while fewer
 * than ENROLL_LEADERS transactions are open, it takes everything queued
 * (up to ENROLL_BATCH_MAX) and writes it in ONE transaction on its own
 * connection: the Idempotency-Key records, devices, certificates and
 * audit rows of all in one statement, one commit (one WAL flush) for all;
 * the others wait and are answered after that commit, each with its own
 * result. A lone enrollment
 * therefore goes at once, as before; under load the queue grows while a
 * batch commits and the next batch takes all of it (no timer). Should any
 * statement of a batch fail, the batch is rolled back and each record is
 * written again in its own transaction, so one bad record never fails the
 * others. docs/internals/enroll-rate.md has the figures.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/audit.h"
#include "db/db.h"
#include "db/query.h"
#include "db/store.h"
#include "db/tokens.h"
#include "core/audit.h"
#include "log.h"

/* Transactions open at once per worker, and records per transaction. */
#define ENROLL_LEADERS 2
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

/* One record waiting for (or written by) a batch. */
struct enroll_slot {
	const struct enrollment *e;
	const struct audit_entry *audit;
	const struct idem_record *idem;
	enum store_rc rc;
	bool done; /* rc is final */
	bool lead; /* woken to write the queue */
	pthread_cond_t cond;
	struct enroll_slot *next;
};

/* The worker's queue: one per process (the job threads of one net
 * worker); nothing in it survives a call. */
static struct {
	pthread_mutex_t mu;
	struct enroll_slot *head, *tail;
	int leaders;
} enroll_queue = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0};

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

/* An audit entry's details object, rendered as db/audit.c renders them
 * (audit_details there is private; see enroll-rate.md). */
static json_t *
enroll_audit_details(const struct audit_entry *a)
{
	json_t *obj = json_object(), *v;

	for (size_t i = 0; obj != NULL && i < a->n; i++) {
		const struct audit_field *f = &a->fields[i];

		switch (f->kind) {
		case AUDIT_STR:
			v = f->str != NULL ? json_string(f->str) : json_null();
			break;
		case AUDIT_INT:
			v = json_integer((json_int_t)f->num);
			break;
		default:
			v = enroll_labels_json(f->labels);
			break;
		}
		if (v == NULL || json_object_set_new(obj, f->key, v) != 0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* One record of the batch statement's input; NULL when out of memory. */
static json_t *
enroll_row(const struct enroll_slot *s)
{
	const struct enrollment *e = s->e;
	json_t *row, *labels = enroll_labels_json(e->labels), *details = NULL;

	if (labels == NULL)
		return NULL;
	if (s->audit != NULL) {
		details = enroll_audit_details(s->audit);
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

/* Whether v[i]'s Idempotency-Key is also v[j]'s for some j < i. */
static bool
enroll_idem_repeated(struct enroll_slot **v, size_t i)
{
	const struct idem_record *a = v[i]->idem;

	for (size_t j = 0; a != NULL && j < i; j++) {
		const struct idem_record *b = v[j]->idem;

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
enroll_batch_tx(PGconn *conn, struct enroll_slot **v, size_t n)
{
	json_t *rows = json_array();
	PGresult *res = NULL;

	if (rows == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		v[i]->rc = STORE_ERR;
		if (v[i]->idem != NULL && v[i]->idem->body == NULL)
			goto fail; /* as db_idem_insert: nothing to record */
		/* The same key twice in one batch: the first takes it, as
		 * the first of two concurrent transactions would. */
		if (enroll_idem_repeated(v, i)) {
			v[i]->rc = STORE_CONFLICT;
			continue;
		}
		if (json_array_append_new(rows, enroll_row(v[i])) != 0)
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
				       v[i]->e->device_id) == 0;
		if (found)
			continue;
		if (v[i]->idem == NULL)
			goto rollback; /* not written, and no reason why */
		v[i]->rc = STORE_CONFLICT; /* a concurrent request's key */
	}
	/* The token's profile, for the records that name one. */
	for (size_t i = 0; i < n; i++) {
		const struct enrollment *e = v[i]->e;

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

/* Writes v[0..n): one transaction, or one each when that fails. */
static void
enroll_batch(struct store *st, struct enroll_slot **v, size_t n)
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

/* Takes up to ENROLL_BATCH_MAX queued slots, self among them. Called
 * with the queue locked. */
static size_t
enroll_take(struct enroll_slot *self, struct enroll_slot **v)
{
	struct enroll_slot **pp = &enroll_queue.head, *prev = NULL;
	size_t n = 0;

	v[n++] = self;
	while (*pp != NULL) {
		struct enroll_slot *s = *pp;

		if (s != self && n >= ENROLL_BATCH_MAX) {
			prev = s;
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		if (s != self)
			v[n++] = s;
	}
	enroll_queue.tail = prev;
	return n;
}

enum store_rc
store_enroll_record(struct store *st, const struct enrollment *e,
		    const struct audit_entry *audit,
		    const struct idem_record *idem)
{
	struct enroll_slot self, *batch[ENROLL_BATCH_MAX];
	size_t n;

	memset(&self, 0, sizeof(self));
	self.e = e;
	self.audit = audit;
	self.idem = idem;
	self.rc = STORE_ERR;
	if (pthread_cond_init(&self.cond, NULL) != 0) {
		struct enroll_slot *one = &self;

		enroll_batch(st, &one, 1);
		return self.rc;
	}
	pthread_mutex_lock(&enroll_queue.mu);
	if (enroll_queue.tail != NULL)
		enroll_queue.tail->next = &self;
	else
		enroll_queue.head = &self;
	enroll_queue.tail = &self;
	if (enroll_queue.leaders < ENROLL_LEADERS) {
		enroll_queue.leaders++;
		self.lead = true;
	}
	while (!self.done && !self.lead)
		pthread_cond_wait(&self.cond, &enroll_queue.mu);
	if (self.done) {
		pthread_mutex_unlock(&enroll_queue.mu);
		pthread_cond_destroy(&self.cond);
		return self.rc;
	}
	n = enroll_take(&self, batch);
	pthread_mutex_unlock(&enroll_queue.mu);

	enroll_batch(st, batch, n);

	pthread_mutex_lock(&enroll_queue.mu);
	for (size_t i = 1; i < n; i++) {
		batch[i]->done = true;
		pthread_cond_signal(&batch[i]->cond);
	}
	/* What queued meanwhile goes next, led by its oldest caller. */
	if (enroll_queue.head != NULL) {
		enroll_queue.head->lead = true;
		pthread_cond_signal(&enroll_queue.head->cond);
	} else {
		enroll_queue.leaders--;
	}
	pthread_mutex_unlock(&enroll_queue.mu);
	pthread_cond_destroy(&self.cond);
	return self.rc;
}
