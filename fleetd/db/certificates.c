/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate revocation and the CRL cache on PostgreSQL (the adapter of
 * core/store_certificates.h). Runs on job threads. The CRL itself is
 * signed by the ca process; here it is only stored and served, and the
 * freshness rule lives in core/crl.c.
 */
#include "db/certificates.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "core/cert_installed_batch.h"
#include "core/cert_lifecycle.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/group_commit.h"
#include "db/query.h"
#include "db/store.h"
#include "log.h"
#include "pki.h"

_Static_assert(CERT_SERIAL_MAX == PKI_SERIAL_HEX_MAX,
	       "core and pki agree on the serial length");

/*
 * Last in every transaction that refuses certificates (revokes them,
 * supersedes them at an install, decommissions their device): the CRL
 * generation bumped, every certificate of the devices (a JSON array of
 * ids) refused in this transaction stamped with it (migration 0020), and
 * fleet_devices notified with it. Last, because the crl_generation row
 * stays locked until the commit: the transaction that gets G+1 waits for
 * the commit of the one that got G, so a worker that reads generation G
 * sees every certificate stamped up to G in the same snapshot, and loads
 * only those stamped after it next time (store_refused_serials). After
 * the change's own certificate row locks, where the bump always was: the
 * generation row is held for the shortest time, and a transaction waits
 * for it with its certificates locked rather than the reverse.
 */
static enum store_rc
refused_stamp(PGconn *conn, const char *devices)
{
	const char *params[1] = {devices};

	return db_command_prepared(
		conn,
		"WITH g AS (UPDATE crl_generation SET generation = generation "
		"+ 1 RETURNING generation), s AS (UPDATE certificates c SET "
		"refused_generation = g.generation FROM g WHERE c.device_id = "
		"ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)::"
		"uuid)) AND c.status <> 'active' AND c.refused_generation IS "
		"NULL) "
		"SELECT pg_notify('fleet_devices', generation::text) FROM g",
		1, params);
}

/* refused_stamp for one device. */
static enum store_rc
refused_stamp_device(PGconn *conn, const char *device_id)
{
	json_t *ids = json_pack("[s]", device_id);
	char *text = ids != NULL ? json_dumps(ids, JSON_COMPACT) : NULL;
	enum store_rc rc = STORE_ERR;

	if (text != NULL)
		rc = refused_stamp(conn, text);
	free(text);
	json_decref(ids);
	return rc;
}

int
db_certificates_revoke_device(PGconn *conn, const char *device_id, int reason,
			      json_t **serials)
{
	char reason_s[16];
	const char *params[2] = {device_id, reason_s};
	PGresult *res;
	json_t *arr;
	int i;

	snprintf(reason_s, sizeof(reason_s), "%d", reason);
	res = db_query(conn,
		       "WITH r AS (UPDATE certificates SET status = 'revoked', "
		       "revoked_at = now(), revoke_reason = $2::int "
		       "WHERE device_id = $1::uuid AND status <> 'revoked' "
		       "RETURNING serial) SELECT serial FROM r ORDER BY serial",
		       2, params);
	if (res == NULL)
		return DB_ERR;
	arr = json_array();
	for (i = 0; arr != NULL && i < PQntuples(res); i++)
		json_array_append_new(arr, json_string(PQgetvalue(res, i, 0)));
	PQclear(res);
	if (arr == NULL || refused_stamp_device(conn, device_id) != STORE_OK) {
		json_decref(arr);
		return DB_ERR;
	}
	*serials = arr;
	return DB_OK;
}

enum store_rc
store_crl_cached(struct store *st, struct crl_cached *out, int64_t *generation,
		 int64_t *now)
{
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct crl_cached c;
	enum store_rc rc = STORE_ERR;

	if (conn == NULL)
		return STORE_ERR;
	memset(&c, 0, sizeof(c));
	/* Text results except the DER (binary: raw bytes). One statement,
	 * one snapshot. */
	res = PQexecParams(
		conn,
		"SELECT g.generation::text, "
		"extract(epoch FROM now())::bigint::text, c.der, "
		"c.crl_number::text, c.generation::text, "
		"extract(epoch FROM c.next_update)::bigint::text "
		"FROM crl_generation g LEFT JOIN crl_cache c ON true",
		0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_warn("postgresql: crl cache: %s",
			 PQresultErrorMessage(res));
		goto out;
	}
	if (!PQgetisnull(res, 0, 2)) {
		size_t blen = 0;
		unsigned char *bytes = PQunescapeBytea(
			(const unsigned char *)PQgetvalue(res, 0, 2), &blen);

		if (bytes == NULL)
			goto out;
		c.der = malloc(blen > 0 ? blen : 1);
		if (c.der == NULL) {
			PQfreemem(bytes);
			goto out;
		}
		memcpy(c.der, bytes, blen);
		PQfreemem(bytes);
		c.len = blen;
		c.number = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		c.generation = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		c.next_update = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	}
	*generation = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*now = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	*out = c;
	memset(&c, 0, sizeof(c));
	rc = STORE_OK;
out:
	free(c.der);
	PQclear(res);
	return rc;
}

enum store_rc
db_crl_snapshot_read(PGresult *res, struct crl_entry **entries, size_t *n,
		     int64_t *generation, uint64_t *number)
{
	struct crl_entry *list = NULL;
	int i, rows;

	if (res == NULL)
		return STORE_ERR;
	rows = PQntuples(res);
	if (rows < 1)
		goto fail;
	list = calloc((size_t)rows, sizeof(*list));
	if (list == NULL)
		goto fail;
	*n = 0;
	for (i = 0; i < rows; i++) {
		if (PQgetisnull(res, i, 2))
			continue;
		if ((size_t)PQgetlength(res, i, 2) >= CERT_SERIAL_MAX)
			goto fail;
		snprintf(list[*n].serial, sizeof(list[*n].serial), "%s",
			 PQgetvalue(res, i, 2));
		list[*n].revoked_at = db_int(res, i, 3);
		list[*n].reason = (int)db_int(res, i, 4);
		(*n)++;
	}
	*generation = db_int(res, 0, 0);
	*number = (uint64_t)db_int(res, 0, 1);
	PQclear(res);
	if (*n == 0) {
		free(list);
		list = NULL;
	}
	*entries = list;
	return STORE_OK;
fail:
	free(list);
	PQclear(res);
	return STORE_ERR;
}

enum store_rc
store_crl_snapshot(struct store *st, struct crl_entry **entries, size_t *n,
		   int64_t *generation, uint64_t *number)
{
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	/* One statement: the generation and the revoked set it stands for
	 * come from the same snapshot. Row 0 may have no certificate.
	 * Superseded certificates are listed too (reason superseded): a
	 * renewal moves the generation when it supersedes one. */
	res = db_query(conn,
		       "WITH g AS (SELECT generation, "
		       "nextval('crl_number_seq') AS number "
		       "FROM crl_generation) "
		       "SELECT g.generation, g.number, c.serial, "
		       "extract(epoch FROM coalesce(c.revoked_at, "
		       "c.superseded_at))::bigint, CASE WHEN c.status = "
		       "'superseded' THEN 4 ELSE coalesce(c.revoke_reason, 0) "
		       "END FROM g LEFT JOIN certificates c ON c.status IN "
		       "('revoked', 'superseded') AND c.not_after > now() "
		       "ORDER BY coalesce(c.revoked_at, c.superseded_at), "
		       "c.serial",
		       0, NULL);
	return db_crl_snapshot_read(res, entries, n, generation, number);
}

enum store_rc
db_crl_save(PGconn *conn, const char *sql, const char *issuer, uint64_t number,
	    int64_t generation, const unsigned char *der, size_t len,
	    long validity_s)
{
	char num[24], gen[24], va[24];
	const char *params[5] = {num, (const char *)der, va, gen, issuer};
	int lengths[5] = {0, (int)len, 0, 0, 0};
	int formats[5] = {0, 1, 0, 0, 0};
	PGresult *res;
	long stored;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(num, sizeof(num), "%" PRIu64, number);
	snprintf(gen, sizeof(gen), "%" PRId64, generation);
	snprintf(va, sizeof(va), "%ld", validity_s);
	/* bounded by the commit timeout, as every self-committing write */
	res = db_query_binary(conn, sql, issuer != NULL ? 5 : 4, params,
			      lengths, formats);
	if (res == NULL)
		return STORE_ERR;
	stored = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return stored == 1 ? STORE_OK : STORE_CONFLICT;
}

enum store_rc
store_crl_save(struct store *st, uint64_t number, int64_t generation,
	       const unsigned char *der, size_t len, long validity_s)
{
	return db_crl_save(
		store_conn(st),
		"INSERT INTO crl_cache (id, crl_number, der, this_update, "
		"next_update, generation) VALUES (true, $1::bigint, $2::bytea, "
		"now(), now() + $3::bigint * interval '1 second', $4::bigint) "
		"ON CONFLICT (id) DO UPDATE SET crl_number = "
		"excluded.crl_number, der = excluded.der, "
		"this_update = excluded.this_update, "
		"next_update = excluded.next_update, "
		"generation = excluded.generation "
		"WHERE crl_cache.crl_number < excluded.crl_number",
		NULL, number, generation, der, len, validity_s);
}

/* The key of the session-level CRL signing lock. */
#define CRL_LOCK_SQL "hashtext('fleet_crl')"

enum store_rc
store_crl_lock(struct store *st)
{
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	res = db_query(conn, "SELECT pg_advisory_lock(" CRL_LOCK_SQL ")", 0,
		       NULL);
	if (res == NULL)
		return STORE_ERR;
	PQclear(res);
	return STORE_OK;
}

void
store_crl_unlock(struct store *st)
{
	PGconn *conn = store_conn(st);
	PGresult *res;

	/* A new connection holds no lock: nothing to release. */
	if (conn == NULL)
		return;
	res = db_query(conn, "SELECT pg_advisory_unlock(" CRL_LOCK_SQL ")", 0,
		       NULL);
	PQclear(res);
}

/* ---- certificate lifecycle ---------------------------------------------- */

enum store_rc
store_cert_renew_facts(struct store *st, const char *device_id,
		       const char *session_serial, const char *key_sha256,
		       struct cert_renew_facts *f)
{
	const char *params[3] = {device_id, session_serial, key_sha256};
	PGconn *conn = store_conn(st);
	PGresult *res;
	int status, failed = 0;

	if (conn == NULL)
		return STORE_ERR;
	memset(f, 0, sizeof(*f));
	/* One statement, one snapshot; the key row may be any device's. */
	res = db_query(
		conn,
		"SELECT (SELECT status = 'active' FROM devices WHERE id = "
		"$1::uuid), "
		"(SELECT status FROM certificates WHERE serial = $2 AND "
		"device_id = $1::uuid), "
		"k.serial, k.device_id = $1::uuid, k.status, "
		"k.installed_at IS NOT NULL, k.pem, " DB_EPOCH(
			"k.not_before") ", " DB_EPOCH("k.not_after") " FROM "
								     "(SELECT "
								     "1) one "
								     "LEFT "
								     "JOIN "
								     "certifica"
								     "tes k ON "
								     "k.public_"
								     "key_"
								     "sha256 = "
								     "$3",
		3, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) < 1) {
		PQclear(res);
		return STORE_ERR;
	}
	f->device_active =
		!PQgetisnull(res, 0, 0) && PQgetvalue(res, 0, 0)[0] == 't';
	status = PQgetisnull(res, 0, 1)
			 ? -1
			 : cert_status_parse(PQgetvalue(res, 0, 1));
	f->session_known = status >= 0;
	f->session_status =
		status >= 0 ? (enum cert_status)status : CERT_REVOKED;
	if (!PQgetisnull(res, 0, 2)) {
		f->key_known = true;
		snprintf(f->key_serial, sizeof(f->key_serial), "%s",
			 PQgetvalue(res, 0, 2));
		f->key_same_device = PQgetvalue(res, 0, 3)[0] == 't';
		status = cert_status_parse(PQgetvalue(res, 0, 4));
		f->key_status =
			status >= 0 ? (enum cert_status)status : CERT_REVOKED;
		f->key_installed = PQgetvalue(res, 0, 5)[0] == 't';
		f->key_pem = db_text(res, 0, 6, &failed);
		f->key_not_before = db_int(res, 0, 7);
		f->key_not_after = db_int(res, 0, 8);
	}
	PQclear(res);
	if (failed) {
		cert_renew_facts_clear(f);
		return STORE_ERR;
	}
	return STORE_OK;
}

static enum store_rc
record_renewal(PGconn *conn, void *arg)
{
	const struct cert_record *rec = arg;
	char nb[24], na[24], seq[24];
	const char *params[8] = {rec->serial, rec->device_id,  nb,
				 na,	      rec->key_sha256, rec->pem,
				 seq,	      rec->rotation_id};
	PGresult *res;
	int n;

	snprintf(nb, sizeof(nb), "%" PRId64, rec->not_before);
	snprintf(na, sizeof(na), "%" PRId64, rec->not_after);
	snprintf(seq, sizeof(seq), "%" PRIu64, rec->csr_seq);
	/* Only for an active device; a second certificate for the same key
	 * of the device (a concurrent duplicate report) is not recorded. */
	res = db_query(conn,
		       "INSERT INTO certificates (serial, device_id, "
		       "not_before, not_after, public_key_sha256, pem, "
		       "csr_seq, rotation_id) SELECT $1, d.id, "
		       "to_timestamp($3::bigint), to_timestamp($4::bigint), "
		       "$5, $6, $7::bigint, $8::uuid FROM devices d "
		       "WHERE d.id = $2::uuid AND d.status = 'active' "
		       "ON CONFLICT DO NOTHING RETURNING serial",
		       8, params);
	if (res == NULL)
		return STORE_ERR;
	n = PQntuples(res);
	PQclear(res);
	if (n == 1)
		return STORE_OK;
	{
		const char *one[1] = {rec->device_id};

		res = db_query(conn,
			       "SELECT 1 FROM devices WHERE id = $1::uuid "
			       "AND status = 'active'",
			       1, one);
		if (res == NULL)
			return STORE_ERR;
		n = PQntuples(res);
		PQclear(res);
	}
	return n == 1 ? STORE_CONFLICT : STORE_NOTFOUND;
}

/*
 * Renewals are recorded in batches (docs/internals/renew-rate.md): a
 * fleet rotated at once records thousands of certificates a second, and
 * one transaction each (BEGIN, the insert, the audit row, COMMIT: four
 * round trips, a parse and plan each, and a WAL flush) made PostgreSQL
 * the largest CPU cost of a renewal. Through a group commit
 * (db/group_commit.c, as the enrollments of db/enroll.c), a batch's
 * leader writes every queued record in ONE statement, durable (an
 * autocommit statement is its own transaction); a lone renewal goes at
 * once. Should the batch statement fail, each record is written again in
 * its own transaction.
 */
/* One batch at a time per worker, as for enrollments (db/enroll.c says
 * why); up to 128 records in it. */
#define RENEW_LEADERS 1
#define RENEW_BATCH_MAX 128

/* One caller's record, queued in a group_commit_slot. */
struct renew_record {
	const struct cert_record *rec;
	const struct audit_entry *audit;
};

/*
 * Runs a batch statement: sql takes rows (a JSON array of n objects,
 * consumed) as $1 and answers one row per input row, in input order. The
 * answer (caller PQclear()s), or NULL when the statement failed or
 * answered another number of rows. The batch record and the batch
 * install read their answers through it.
 */
static PGresult *
cert_batch_query(PGconn *conn, const char *sql, json_t *rows, size_t n)
{
	const char *params[1] = {NULL};
	char *text = json_dumps(rows, JSON_COMPACT);
	PGresult *res = NULL;

	json_decref(rows);
	if (text == NULL)
		return NULL;
	params[0] = text;
	res = db_query(conn, sql, 1, params);
	free(text);
	if (res != NULL && PQntuples(res) != (int)n) {
		PQclear(res);
		res = NULL;
	}
	return res;
}

/* Input row i's boolean in column col of a batch statement's answer. */
static bool
cert_batch_flag(const PGresult *res, size_t i, int col)
{
	return PQgetvalue(res, (int)i, col)[0] == 't';
}

/* One record of the batch statement's input; NULL when out of memory. */
static json_t *
renew_row(size_t i, const struct renew_record *s)
{
	const struct cert_record *r = s->rec;
	json_t *details = NULL;

	if (s->audit != NULL) {
		details = db_audit_details(s->audit);
		if (details == NULL)
			return NULL;
	}
	return json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:s?, "
		"s:s?, s:s?, s:s?, s:o?}",
		"i", (json_int_t)i, "serial", r->serial, "device_id",
		r->device_id, "nb", (json_int_t)r->not_before, "na",
		(json_int_t)r->not_after, "key", r->key_sha256, "pem", r->pem,
		"seq", (json_int_t)r->csr_seq, "rotation", r->rotation_id,
		"actor", s->audit != NULL ? s->audit->actor : NULL, "action",
		s->audit != NULL ? s->audit->action : NULL, "target",
		s->audit != NULL ? s->audit->target : NULL, "details", details);
}

/*
 * n records in ONE statement: the certificates of active devices
 * (record_renewal's insert for each, ON CONFLICT DO NOTHING as there:
 * a key certified already, also by an earlier row of this batch, is not
 * recorded again), the audit row of each one recorded, and per input row
 * whether it was recorded and whether its device is active (in input
 * order). 0 with every slot's rc set, -1 when the statement failed
 * (nothing written).
 */
static int
renew_batch_write(PGconn *conn, struct group_commit_slot **v, size_t n)
{
	json_t *rows = json_array();
	PGresult *res;

	if (rows == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(rows, renew_row(i, v[i]->record)) !=
		    0) {
			json_decref(rows);
			return -1;
		}
	}
	res = cert_batch_query(
		conn,
		"WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS "
		"x(i integer, serial text, device_id uuid, nb bigint, na "
		"bigint, key text, pem text, seq bigint, rotation uuid, actor "
		"text, action text, target text, details jsonb)), "
		"ins AS (INSERT INTO certificates (serial, device_id, "
		"not_before, not_after, public_key_sha256, pem, csr_seq, "
		"rotation_id) SELECT x.serial, d.id, to_timestamp(x.nb), "
		"to_timestamp(x.na), x.key, x.pem, x.seq, x.rotation FROM x "
		"JOIN devices d ON d.id = x.device_id AND d.status = 'active' "
		"ORDER BY x.i ON CONFLICT DO NOTHING RETURNING serial), "
		"aud AS (INSERT INTO audit_log (actor, action, target, "
		"details) SELECT x.actor, x.action, x.target, "
		"coalesce(x.details, '{}') FROM x JOIN ins ON ins.serial = "
		"x.serial WHERE x.action IS NOT NULL ORDER BY x.i) "
		"SELECT x.i, ins.serial IS NOT NULL, coalesce(d.status = "
		"'active', false) FROM x LEFT JOIN ins ON ins.serial = "
		"x.serial LEFT JOIN devices d ON d.id = x.device_id "
		"ORDER BY x.i",
		rows, n);
	if (res == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		bool recorded = cert_batch_flag(res, i, 1);
		bool active = cert_batch_flag(res, i, 2);

		v[i]->rc = recorded ? STORE_OK
			   : active ? STORE_CONFLICT
				    : STORE_NOTFOUND;
	}
	PQclear(res);
	return 0;
}

/* renew_queue's batch (group_commit_run): v[0..n) in one statement, or
 * one transaction each when that fails. */
static void
renew_batch(struct store *st, struct group_commit_slot **v, size_t n)
{
	PGconn *conn = store_conn(st);
	int why;

	if (conn != NULL && renew_batch_write(conn, v, n) == 0)
		return;
	/* Gone, or no standby confirmed the commit in time: each record
	 * alone would fare no better, and wait as long again. */
	why = store_failure(st);
	if (why != 0) {
		group_commit_fail(v, n, why);
		return;
	}
	if (n > 1)
		log_warn("renewal: a batch of %zu records failed; writing "
			 "each in its own transaction",
			 n);
	for (size_t i = 0; i < n; i++) {
		const struct renew_record *r = v[i]->record;
		struct cert_record copy = *r->rec;

		v[i]->rc = db_unit(st, record_renewal, &copy, r->audit, NULL);
		if (v[i]->rc == STORE_ERR)
			v[i]->why = store_failure(st);
	}
}

_Static_assert(RENEW_BATCH_MAX <= GROUP_COMMIT_BATCH_MAX,
	       "a batch fits group_commit's");

/* One queue per process (the job threads of one net worker). */
static struct group_commit renew_queue =
	GROUP_COMMIT_INIT(RENEW_LEADERS, RENEW_BATCH_MAX, renew_batch);

enum store_rc
store_cert_record_renewal(struct store *st, const struct cert_record *rec,
			  const struct audit_entry *audit)
{
	struct renew_record r = {rec, audit};
	return store_group_commit(&renew_queue, st, &r);
}

struct installed_arg {
	const char *device_id;
	const char *serial;
};

/* One install without the CRL generation and the notification: the
 * certificate marked installed, the device's older active ones
 * superseded, its pending rotation completed. STORE_CONFLICT: installed
 * before (nothing written); STORE_NOTFOUND: no such active certificate. */
static enum store_rc
install_one(PGconn *conn, const char *device_id, const char *serial)
{
	const char *params[2] = {device_id, serial};
	PGresult *res;
	bool was;

	/* The row lock orders concurrent reports of the same device. */
	res = db_query(conn,
		       "SELECT installed_at IS NOT NULL FROM certificates "
		       "WHERE serial = $2 AND device_id = $1::uuid AND "
		       "status = 'active' FOR UPDATE",
		       2, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	was = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (was)
		return STORE_CONFLICT;
	if (db_command(conn,
		       "UPDATE certificates SET installed_at = now() "
		       "WHERE serial = $2 AND device_id = $1::uuid",
		       2, params) != STORE_OK ||
	    /* Older active certificates of the device: superseded. */
	    db_command(conn,
		       "UPDATE certificates c SET status = 'superseded', "
		       "superseded_at = now() FROM certificates n "
		       "WHERE n.serial = $2 AND c.device_id = $1::uuid AND "
		       "c.status = 'active' AND c.serial <> $2 AND "
		       "c.created_at <= n.created_at",
		       2, params) != STORE_OK ||
	    db_command(conn,
		       "UPDATE cert_rotations r SET completed_at = now(), "
		       "serial = $2 FROM certificates n WHERE n.serial = $2 "
		       "AND r.device_id = $1::uuid AND r.completed_at IS NULL "
		       "AND n.created_at >= r.requested_at",
		       2, params) != STORE_OK)
		return STORE_ERR;
	return STORE_OK;
}

static enum store_rc
installed_unit(PGconn *conn, void *arg)
{
	struct installed_arg *ia = arg;
	enum store_rc rc = install_one(conn, ia->device_id, ia->serial);

	if (rc != STORE_OK)
		return rc; /* CONFLICT rolls back: no second audit row */
	/* Superseded certificates belong on the next CRL, and every worker
	 * must refuse them. */
	return refused_stamp_device(conn, ia->device_id);
}

enum store_rc
store_cert_installed(struct store *st, const char *device_id,
		     const char *serial, bool *again,
		     const struct audit_entry *audit)
{
	struct installed_arg ia = {device_id, serial};
	enum store_rc rc;

	rc = db_unit(st, installed_unit, &ia, audit, NULL);
	*again = rc == STORE_CONFLICT;
	return rc == STORE_CONFLICT ? STORE_OK : rc;
}

static int
install_row_cmp(const void *a, const void *b)
{
	const struct cert_install_row *const *x = a, *const *y = b;
	int c = strcmp((*x)->device_id, (*y)->device_id);

	return c != 0 ? c : strcmp((*x)->serial, (*y)->serial);
}

/*
 * The installs of a batch whose devices differ, in ONE statement (what
 * install_one and db_audit_insert do for one install, for all of them):
 * each certificate locked in device id order, then for those not
 * installed before: marked installed, the device's older active
 * certificates superseded, its pending rotation completed, its audit
 * row written. Five round trips per install were most of PostgreSQL's
 * time on the install path (docs/internals/renew-rate.md). Sets each
 * row's rc and again; *changed when something was installed. -1 when the
 * statement failed (the caller rolls back).
 */
static int
install_rows_write(PGconn *conn, struct cert_install_row **v, size_t n,
		   bool *changed)
{
	json_t *rows = json_array();
	PGresult *res;

	if (rows == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct audit_entry *a = v[i]->audit;
		json_t *details = a != NULL ? db_audit_details(a) : NULL;

		if ((a != NULL && details == NULL) ||
		    json_array_append_new(
			    rows,
			    json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:o?}",
				      "i", (json_int_t)i, "device_id",
				      v[i]->device_id, "serial", v[i]->serial,
				      "actor", a != NULL ? a->actor : NULL,
				      "action", a != NULL ? a->action : NULL,
				      "target", a != NULL ? a->target : NULL,
				      "details", details)) != 0) {
			json_decref(rows);
			return -1;
		}
	}
	res = cert_batch_query(
		conn,
		"WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS "
		"x(i integer, device_id uuid, serial text, actor text, action "
		"text, target text, details jsonb)), "
		/* The row locks order concurrent reports of a device. */
		"l AS (SELECT x.i, c.serial, c.device_id, c.created_at, "
		"c.installed_at IS NOT NULL AS was FROM x JOIN certificates c "
		"ON c.serial = x.serial AND c.device_id = x.device_id AND "
		"c.status = 'active' ORDER BY c.device_id FOR UPDATE OF c), "
		"inst AS (UPDATE certificates c SET installed_at = now() "
		"FROM l WHERE NOT l.was AND c.serial = l.serial AND "
		"c.device_id = l.device_id RETURNING c.serial), "
		"sup AS (UPDATE certificates c SET status = 'superseded', "
		"superseded_at = now() FROM l WHERE NOT l.was AND "
		"c.device_id = l.device_id AND c.status = 'active' AND "
		"c.serial <> l.serial AND c.created_at <= l.created_at "
		"RETURNING c.serial), "
		"rot AS (UPDATE cert_rotations r SET completed_at = now(), "
		"serial = l.serial FROM l WHERE NOT l.was AND r.device_id = "
		"l.device_id AND r.completed_at IS NULL AND l.created_at >= "
		"r.requested_at RETURNING r.id), "
		"aud AS (INSERT INTO audit_log (actor, action, target, "
		"details) SELECT x.actor, x.action, x.target, "
		"coalesce(x.details, '{}') FROM x JOIN l ON l.i = x.i WHERE "
		"NOT l.was AND x.action IS NOT NULL ORDER BY x.i) "
		"SELECT x.i, l.serial IS NOT NULL, coalesce(l.was, false) "
		"FROM x LEFT JOIN l ON l.i = x.i ORDER BY x.i",
		rows, n);
	if (res == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		bool found = cert_batch_flag(res, i, 1);
		bool was = cert_batch_flag(res, i, 2);

		v[i]->rc = found ? STORE_OK : STORE_NOTFOUND;
		v[i]->again = found && was;
		if (found && !was)
			*changed = true;
	}
	PQclear(res);
	return 0;
}

/* refused_stamp for the devices of v[0..n). */
static enum store_rc
installs_stamp(PGconn *conn, struct cert_install_row **v, size_t n)
{
	json_t *ids = json_array();
	char *text = NULL;
	enum store_rc rc = STORE_ERR;

	for (size_t i = 0; ids != NULL && i < n; i++) {
		if (json_array_append_new(ids, json_string(v[i]->device_id)) !=
		    0)
			goto out;
	}
	text = ids != NULL ? json_dumps(ids, JSON_COMPACT) : NULL;
	if (text != NULL)
		rc = refused_stamp(conn, text);
out:
	free(text);
	json_decref(ids);
	return rc;
}

enum store_rc
store_cert_installed_batch(struct store *st, struct cert_install_row *rows,
			   size_t n)
{
	PGconn *conn = store_conn(st);
	struct cert_install_row **order = NULL, **first = NULL, **rest = NULL;
	size_t nfirst = 0, nrest = 0;
	bool changed = false;
	enum store_rc rc = STORE_ERR;

	if (n == 0)
		return STORE_OK;
	if (conn == NULL)
		return STORE_ERR;
	order = calloc(n, sizeof(*order));
	first = calloc(n, sizeof(*first));
	rest = calloc(n, sizeof(*rest));
	if (order == NULL || first == NULL || rest == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		order[i] = &rows[i];
	/* One lock order for every batch: no deadlock between workers. */
	qsort(order, n, sizeof(*order), install_row_cmp);
	/* The set statement takes one install per device (its statements
	 * see one snapshot); a device's further reports of the batch (a
	 * re-send, a second certificate) follow one by one, in order, so
	 * each sees the effect of the one before, as in separate units. */
	for (size_t i = 0; i < n; i++) {
		if (i > 0 &&
		    strcmp(order[i]->device_id, order[i - 1]->device_id) == 0)
			rest[nrest++] = order[i];
		else
			first[nfirst++] = order[i];
	}
	if (db_exec(conn, "BEGIN") != 0)
		goto out;
	if (install_rows_write(conn, first, nfirst, &changed) != 0)
		goto rollback;
	for (size_t i = 0; i < nrest; i++) {
		struct cert_install_row *r = rest[i];
		enum store_rc one = install_one(conn, r->device_id, r->serial);

		r->again = one == STORE_CONFLICT;
		r->rc = one == STORE_NOTFOUND ? STORE_NOTFOUND : STORE_OK;
		if (one == STORE_ERR)
			goto rollback;
		if (one != STORE_OK)
			continue;
		if (r->audit != NULL &&
		    db_audit_insert(conn, r->audit) != DB_OK)
			goto rollback;
		changed = true;
	}
	/* Once per batch; first[] names every device of the batch. */
	if (changed && installs_stamp(conn, first, nfirst) != STORE_OK)
		goto rollback;
	if (db_exec(conn, "COMMIT") != 0)
		goto out;
	rc = STORE_OK;
	goto out;
rollback:
	(void)db_exec(conn, "ROLLBACK");
out:
	free(order);
	free(first);
	free(rest);
	return rc;
}

struct rotation_arg {
	const char *device_id;
	const char *reason;
	const char *actor;
	char *id; /* in: a fresh id; out: the pending rotation's */
	bool created;
};

static enum store_rc
rotation_unit(PGconn *conn, void *arg)
{
	struct rotation_arg *ra = arg;
	const char *params[4] = {ra->id, ra->device_id, ra->reason, ra->actor};
	PGresult *res;
	int n;

	res = db_query(conn,
		       "SELECT status = 'active' FROM devices WHERE id = "
		       "$1::uuid FOR UPDATE",
		       1, &params[1]);
	if (res == NULL)
		return STORE_ERR;
	n = PQntuples(res);
	if (n == 1 && PQgetvalue(res, 0, 0)[0] != 't')
		n = -1;
	PQclear(res);
	if (n == 0)
		return STORE_NOTFOUND;
	if (n < 0)
		return STORE_CONFLICT;
	/* One pending rotation per device: asking again keeps it. */
	res = db_query(conn,
		       "INSERT INTO cert_rotations (id, device_id, reason, "
		       "requested_by) VALUES ($1::uuid, $2::uuid, $3, $4) "
		       "ON CONFLICT (device_id) WHERE completed_at IS NULL "
		       "DO NOTHING RETURNING id",
		       4, params);
	if (res == NULL)
		return STORE_ERR;
	ra->created = PQntuples(res) == 1;
	PQclear(res);
	if (!ra->created) {
		res = db_query(conn,
			       "SELECT id FROM cert_rotations WHERE device_id "
			       "= $1::uuid AND completed_at IS NULL",
			       1, &params[1]);
		if (res == NULL)
			return STORE_ERR;
		if (PQntuples(res) != 1) {
			PQclear(res);
			return STORE_ERR;
		}
		snprintf(ra->id, 37, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	/* The worker holding the device sends cert.rotate now. */
	return db_command(conn, "SELECT pg_notify('fleet_certs', $1)", 1,
			  &params[1]);
}

enum store_rc
store_cert_rotation_request(struct store *st, const char *device_id,
			    const char *reason, char *id, bool *created,
			    const struct audit_entry *audit)
{
	struct rotation_arg ra = {device_id, reason,
				  audit != NULL ? audit->actor : "system", id,
				  false};
	enum store_rc rc = db_unit(st, rotation_unit, &ra, audit, NULL);

	*created = ra.created;
	return rc;
}

/* The due rotations of the devices whose sessions worker $1 holds (a
 * string literal: db_query_prepared names statements by their text). */
#define ROTATIONS_DUE                                               \
	"SELECT r.device_id, r.id, r.reason FROM cert_rotations r " \
	"JOIN device_sessions s ON s.device_id = r.device_id "      \
	"JOIN certificates c ON c.serial = s.cert_serial "          \
	"WHERE r.completed_at IS NULL AND s.worker_id = $1 "        \
	"AND c.created_at < r.requested_at "

enum store_rc
store_cert_rotations_due(struct store *st, const char *worker_id,
			 const char *device_id, struct cert_rotation_due **out,
			 size_t *n)
{
	const char *params[2] = {worker_id, device_id};
	PGconn *conn = store_conn(st);
	struct cert_rotation_due *list = NULL;
	PGresult *res;
	int rows;

	*out = NULL;
	*n = 0;
	if (conn == NULL)
		return STORE_ERR;
	/* Due while the session still presents a certificate older than
	 * the request (a session with a newer one is finishing it). One
	 * device (at its hello: by the pending rotation's index), or
	 * set-based, every due rotation of this worker's devices at once.
	 * Two statements, each prepared once: a single one with
	 * "$2 IS NULL OR" was planned at every hello, the most expensive
	 * statement of a reconnect storm. */
	if (device_id != NULL)
		res = db_query_prepared(
			conn, ROTATIONS_DUE "AND r.device_id = $2::uuid", 2,
			params);
	else
		res = db_query_prepared(conn, ROTATIONS_DUE, 1, params);
	if (res == NULL)
		return STORE_ERR;
	rows = PQntuples(res);
	if (rows > 0) {
		list = calloc((size_t)rows, sizeof(*list));
		if (list == NULL) {
			PQclear(res);
			return STORE_ERR;
		}
	}
	for (int i = 0; i < rows; i++) {
		snprintf(list[i].device_id, sizeof(list[i].device_id), "%s",
			 PQgetvalue(res, i, 0));
		snprintf(list[i].rotation_id, sizeof(list[i].rotation_id), "%s",
			 PQgetvalue(res, i, 1));
		snprintf(list[i].reason, sizeof(list[i].reason), "%s",
			 PQgetvalue(res, i, 2));
	}
	PQclear(res);
	*out = list;
	*n = (size_t)rows;
	return STORE_OK;
}

enum store_rc
store_cert_status(struct store *st, const char *device_id, const char *serial,
		  char *status)
{
	const char *params[2] = {device_id, serial};
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	res = db_query(conn,
		       "SELECT status FROM certificates WHERE serial = $2 AND "
		       "device_id = $1::uuid",
		       2, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return STORE_OK;
}

/* A device's certificates, newest first; one row with NULLs when it has
 * none (a LEFT JOIN from the device). */
#define CERT_LIST_SQL                                              \
	"SELECT c.serial, c.status, "                              \
	"floor(extract(epoch FROM c.not_before))::bigint, "        \
	"floor(extract(epoch FROM c.not_after))::bigint, "         \
	"floor(extract(epoch FROM c.created_at))::bigint, "        \
	"floor(extract(epoch FROM c.installed_at))::bigint, "      \
	"floor(extract(epoch FROM c.superseded_at))::bigint, "     \
	"floor(extract(epoch FROM c.revoked_at))::bigint, "        \
	"coalesce(c.revoke_reason, -1), "                          \
	"coalesce(c.public_key_sha256, ''), c.pem FROM devices d " \
	"LEFT JOIN certificates c ON c.device_id = d.id "          \
	"WHERE d.id = $1::uuid ORDER BY c.created_at DESC, c.serial"

enum store_rc
store_cert_list(struct store *st, const char *device_id, struct cert_row **rows,
		size_t *n)
{
	const char *params[1] = {device_id};
	PGconn *conn = store_conn(st);
	struct cert_row *list = NULL;
	PGresult *res;
	int count, failed = 0;

	*rows = NULL;
	*n = 0;
	if (conn == NULL)
		return STORE_ERR;
	/* Row 0 tells the device exists even when it has no certificate. */
	res = db_query(conn, CERT_LIST_SQL, 1, params);
	if (res == NULL)
		return STORE_ERR;
	count = PQntuples(res);
	if (count == 0) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	if (PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return STORE_OK;
	}
	list = calloc((size_t)count, sizeof(*list));
	if (list == NULL) {
		PQclear(res);
		return STORE_ERR;
	}
	for (int i = 0; i < count; i++) {
		struct cert_row *r = &list[i];

		snprintf(r->serial, sizeof(r->serial), "%s",
			 PQgetvalue(res, i, 0));
		snprintf(r->status, sizeof(r->status), "%s",
			 PQgetvalue(res, i, 1));
		r->not_before = db_int(res, i, 2);
		r->not_after = db_int(res, i, 3);
		r->created_at = db_int(res, i, 4);
		r->installed_at = db_int(res, i, 5);
		r->superseded_at = db_int(res, i, 6);
		r->revoked_at = db_int(res, i, 7);
		r->revoke_reason = (int)db_int(res, i, 8);
		snprintf(r->key_sha256, sizeof(r->key_sha256), "%s",
			 PQgetvalue(res, i, 9));
		r->pem = db_text(res, i, 10, &failed);
	}
	PQclear(res);
	if (failed) {
		cert_rows_free(list, (size_t)count);
		return STORE_ERR;
	}
	*rows = list;
	*n = (size_t)count;
	return STORE_OK;
}

struct revoke_arg {
	const char *serial;
	int reason;
	char *device_id;
	char reason_s[16];
};

static enum store_rc
revoke_unit(PGconn *conn, void *arg)
{
	struct revoke_arg *ra = arg;
	const char *params[2] = {ra->serial, ra->reason_s};
	PGresult *res;

	res = db_query(conn,
		       "SELECT device_id, status FROM certificates WHERE "
		       "serial = $1 FOR UPDATE",
		       1, params);
	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	snprintf(ra->device_id, 37, "%s", PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 1), "revoked") == 0) {
		PQclear(res);
		return STORE_CONFLICT;
	}
	PQclear(res);
	if (db_command(conn,
		       "UPDATE certificates SET status = 'revoked', revoked_at "
		       "= now(), revoke_reason = $2::int WHERE serial = $1",
		       2, params) != STORE_OK ||
	    refused_stamp_device(conn, ra->device_id) != STORE_OK)
		return STORE_ERR;
	return STORE_OK;
}

enum store_rc
store_cert_revoke(struct store *st, const char *serial, int reason,
		  const char *actor, char *device_id)
{
	struct revoke_arg ra;
	struct audit_entry a;

	memset(&ra, 0, sizeof(ra));
	ra.serial = serial;
	ra.reason = reason;
	ra.device_id = device_id;
	snprintf(ra.reason_s, sizeof(ra.reason_s), "%d", reason);
	device_id[0] = '\0';
	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = "certificate.revoke";
	a.target = serial;
	audit_add_int(&a, "reason", reason);
	return db_unit(st, revoke_unit, &ra, &a, NULL);
}
