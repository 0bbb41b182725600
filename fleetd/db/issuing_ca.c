// SPDX-License-Identifier: Apache-2.0
/*
 * The issuing-CA registry and CRLs per issuing CA on PostgreSQL (the
 * adapter of core/store_issuing_ca.h; migration 0009). Runs in `fleetd
 * pki rotate-issuing|retire-issuing` and on API job threads. Key ids are
 * checked by the callers (core/issuing_ca.c, cmd_pki.c) and bound as
 * parameters.
 */
#include "core/store_issuing_ca.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/certificates.h"
#include "db/query.h"
#include "db/store.h"
#include "log.h"

struct rotate_args {
	const char *old_id, *old_pem, *new_id, *new_pem;
};

static enum store_rc
rotate_tx(PGconn *conn, void *arg)
{
	const struct rotate_args *a = arg;
	const char *p2[2] = {a->old_id, a->old_pem};
	const char *p1[1] = {a->old_id};
	const char *pn[2] = {a->new_id, a->new_pem};
	PGresult *res;
	bool ok;

	/* Serialise rotations; then the state must be "old is current, or
	 * nothing is registered", and no previous CA. */
	res = db_query(conn, "LOCK TABLE issuing_cas IN EXCLUSIVE MODE", 0,
		       NULL);
	if (res == NULL)
		return STORE_ERR;
	PQclear(res);
	res = db_query(conn,
		       "SELECT (SELECT count(*) FROM issuing_cas WHERE "
		       "status = 'previous') = 0 AND ((SELECT count(*) FROM "
		       "issuing_cas) = 0 OR EXISTS (SELECT 1 FROM issuing_cas "
		       "WHERE key_id = $1 AND status = 'current'))",
		       1, p1);
	if (res == NULL)
		return STORE_ERR;
	ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!ok)
		return STORE_CONFLICT;
	/* The first rotation registers the CA of `pki init` as the first
	 * one, and the certificates issued so far are its. */
	res = db_query(conn,
		       "WITH ins AS (INSERT INTO issuing_cas (key_id, "
		       "cert_pem, status, first) SELECT $1, $2, 'previous', "
		       "true WHERE NOT EXISTS (SELECT 1 FROM issuing_cas) "
		       "RETURNING key_id), upd AS (UPDATE issuing_cas SET "
		       "status = 'previous' WHERE key_id = $1 AND status = "
		       "'current' RETURNING key_id), fill AS (UPDATE "
		       "certificates SET issuer = $1 WHERE issuer IS NULL AND "
		       "EXISTS (SELECT 1 FROM ins)) "
		       "SELECT (SELECT count(*) FROM ins) + (SELECT count(*) "
		       "FROM upd)",
		       2, p2);
	if (res == NULL)
		return STORE_ERR;
	ok = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	PQclear(res);
	if (!ok)
		return STORE_CONFLICT;
	return db_command(conn,
			  "INSERT INTO issuing_cas (key_id, cert_pem, status) "
			  "VALUES ($1, $2, 'current')",
			  2, pn);
}

enum store_rc
store_issuing_ca_rotate(struct store *st, const char *old_id,
			const char *old_pem, const char *new_id,
			const char *new_pem, const struct audit_entry *audit)
{
	struct rotate_args a = {old_id, old_pem, new_id, new_pem};

	return db_unit(st, rotate_tx, &a, audit, NULL);
}

struct retire_args {
	const char *id;
	int64_t active;
};

static enum store_rc
retire_tx(PGconn *conn, void *arg)
{
	struct retire_args *a = arg;
	const char *p[1] = {a->id};
	PGresult *res;
	int n;

	res = db_query(conn,
		       "SELECT first FROM issuing_cas WHERE key_id = $1 AND "
		       "status = 'previous' FOR UPDATE",
		       1, p);
	if (res == NULL)
		return STORE_ERR;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1)
		return STORE_NOTFOUND;
	res = db_query(conn,
		       "SELECT count(*) FROM certificates WHERE issuer = $1 "
		       "AND status = 'active' AND not_after > now()",
		       1, p);
	if (res == NULL)
		return STORE_ERR;
	a->active = db_int(res, 0, 0);
	PQclear(res);
	if (a->active > 0)
		return STORE_CONFLICT;
	return db_command(conn,
			  "UPDATE issuing_cas SET status = 'retired', "
			  "retired_at = now() WHERE key_id = $1",
			  1, p);
}

enum store_rc
store_issuing_ca_retire(struct store *st, const char *id, int64_t *active_left,
			const struct audit_entry *audit)
{
	struct retire_args a = {id, 0};
	enum store_rc rc;

	rc = db_unit(st, retire_tx, &a, audit, NULL);
	*active_left = a.active;
	return rc;
}

enum store_rc
store_issuing_ca_crl_state(struct store *st, const char *key_id,
			   struct issuing_ca_crl_state *out)
{
	const char *p[1] = {key_id};
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct issuing_ca_crl_state s;
	enum store_rc rc = STORE_ERR;

	if (conn == NULL)
		return STORE_ERR;
	memset(&s, 0, sizeof(s));
	/* One statement, one snapshot; the DER as raw bytes (binary). */
	res = PQexecParams(
		conn,
		"SELECT (SELECT count(*) FROM issuing_cas) = 0, ca.key_id, "
		"ca.status = 'retired', g.generation::text, "
		"extract(epoch FROM now())::bigint::text, c.der, "
		"c.crl_number::text, c.generation::text, "
		"extract(epoch FROM c.next_update)::bigint::text "
		"FROM crl_generation g LEFT JOIN issuing_cas ca ON "
		"(ca.key_id = $1 OR ($1 = '' AND ca.first)) "
		"LEFT JOIN crl_cache_ca c ON c.issuer = ca.key_id",
		1, NULL, p, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_warn("postgresql: per-CA CRL: %s",
			 PQresultErrorMessage(res));
		goto out;
	}
	/* Binary results: bool is one byte, text is raw. */
	s.registry_empty = *PQgetvalue(res, 0, 0) != 0;
	s.found = !PQgetisnull(res, 0, 1);
	if (s.found) {
		if ((size_t)PQgetlength(res, 0, 1) >= sizeof(s.key_id))
			goto out;
		memcpy(s.key_id, PQgetvalue(res, 0, 1),
		       (size_t)PQgetlength(res, 0, 1));
		s.retired = *PQgetvalue(res, 0, 2) != 0;
	}
	{
		char num[32];

		snprintf(num, sizeof(num), "%.*s", PQgetlength(res, 0, 3),
			 PQgetvalue(res, 0, 3));
		s.generation = strtoll(num, NULL, 10);
		snprintf(num, sizeof(num), "%.*s", PQgetlength(res, 0, 4),
			 PQgetvalue(res, 0, 4));
		s.now = strtoll(num, NULL, 10);
		if (!PQgetisnull(res, 0, 5)) {
			size_t blen = (size_t)PQgetlength(res, 0, 5);

			s.cached.der = malloc(blen > 0 ? blen : 1);
			if (s.cached.der == NULL)
				goto out;
			memcpy(s.cached.der, PQgetvalue(res, 0, 5), blen);
			s.cached.len = blen;
			snprintf(num, sizeof(num), "%.*s",
				 PQgetlength(res, 0, 6), PQgetvalue(res, 0, 6));
			s.cached.number = strtoull(num, NULL, 10);
			snprintf(num, sizeof(num), "%.*s",
				 PQgetlength(res, 0, 7), PQgetvalue(res, 0, 7));
			s.cached.generation = strtoll(num, NULL, 10);
			snprintf(num, sizeof(num), "%.*s",
				 PQgetlength(res, 0, 8), PQgetvalue(res, 0, 8));
			s.cached.next_update = strtoll(num, NULL, 10);
		}
	}
	*out = s;
	memset(&s, 0, sizeof(s));
	rc = STORE_OK;
out:
	free(s.cached.der);
	PQclear(res);
	return rc;
}

enum store_rc
store_issuing_ca_crl_snapshot(struct store *st, const char *key_id,
			      struct crl_entry **entries, size_t *n,
			      int64_t *generation, uint64_t *number)
{
	const char *p[1] = {key_id};
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	/* As store_crl_snapshot (db/certificates.c), for one CA: its
	 * certificates, those without an issuer when it is the first CA, and
	 * those its successor's registration may have mislabelled (0009). */
	res = db_query(
		conn,
		"WITH ca AS (SELECT key_id, first, created_at FROM issuing_cas "
		"WHERE key_id = $1), nxt AS (SELECT n.key_id, n.created_at "
		"FROM issuing_cas n, ca WHERE n.created_at > ca.created_at "
		"ORDER BY n.created_at LIMIT 1), g AS (SELECT generation, "
		"nextval('crl_number_seq') AS number FROM crl_generation) "
		"SELECT g.generation, g.number, c.serial, "
		"extract(epoch FROM coalesce(c.revoked_at, "
		"c.superseded_at))::bigint, CASE WHEN c.status = 'superseded' "
		"THEN 4 ELSE coalesce(c.revoke_reason, 0) END FROM g LEFT JOIN "
		"certificates c ON c.status IN ('revoked', 'superseded') AND "
		"c.not_after > now() AND (c.issuer = $1 OR (c.issuer IS NULL "
		"AND (SELECT first FROM ca)) OR (c.issuer = (SELECT key_id "
		"FROM nxt) AND c.created_at < (SELECT created_at FROM nxt) + "
		"interval '1 day')) ORDER BY coalesce(c.revoked_at, "
		"c.superseded_at), c.serial",
		1, p);
	return db_crl_snapshot_read(res, entries, n, generation, number);
}

enum store_rc
store_issuing_ca_crl_save(struct store *st, const char *key_id, uint64_t number,
			  int64_t generation, const unsigned char *der,
			  size_t len, long validity_s)
{
	return db_crl_save(store_conn(st),
			   "INSERT INTO crl_cache_ca (issuer, crl_number, der, "
			   "this_update, next_update, generation) VALUES ($5, "
			   "$1::bigint, $2::bytea, now(), now() + $3::bigint * "
			   "interval '1 second', $4::bigint) ON CONFLICT "
			   "(issuer) DO UPDATE SET crl_number = "
			   "excluded.crl_number, der = excluded.der, "
			   "this_update = excluded.this_update, next_update = "
			   "excluded.next_update, generation = "
			   "excluded.generation WHERE crl_cache_ca.crl_number "
			   "< excluded.crl_number",
			   key_id, number, generation, der, len, validity_s);
}
