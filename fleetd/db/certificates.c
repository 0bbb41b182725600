/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate revocation and the CRL cache on PostgreSQL (the adapter of
 * core/store_certificates.h). Runs on job threads. The CRL itself is
 * signed by the ca process; here it is only stored and served, and the
 * freshness rule lives in core/crl.c.
 */
#include "db/certificates.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/query.h"
#include "db/store.h"
#include "log.h"
#include "pki.h"

_Static_assert(CERT_SERIAL_MAX == PKI_SERIAL_HEX_MAX,
	       "core and pki agree on the serial length");

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
	/* The generation row is locked until this transaction ends, so
	 * revocations are counted in commit order. */
	res = db_query(conn,
		       "WITH r AS (UPDATE certificates SET status = 'revoked', "
		       "revoked_at = now(), revoke_reason = $2::int "
		       "WHERE device_id = $1::uuid AND status <> 'revoked' "
		       "RETURNING serial), "
		       "g AS (UPDATE crl_generation SET generation = "
		       "generation + 1) "
		       "SELECT serial FROM r ORDER BY serial",
		       2, params);
	if (res == NULL)
		return DB_ERR;
	arr = json_array();
	for (i = 0; arr != NULL && i < PQntuples(res); i++)
		json_array_append_new(arr, json_string(PQgetvalue(res, i, 0)));
	PQclear(res);
	if (arr == NULL)
		return DB_ERR;
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
store_crl_snapshot(struct store *st, struct crl_entry **entries, size_t *n,
		   int64_t *generation, uint64_t *number)
{
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct crl_entry *list = NULL;
	int i, rows;

	if (conn == NULL)
		return STORE_ERR;
	/* One statement: the generation and the revoked set it stands for
	 * come from the same snapshot. Row 0 may have no certificate. */
	res = db_query(conn,
		       "WITH g AS (SELECT generation, "
		       "nextval('crl_number_seq') AS number "
		       "FROM crl_generation) "
		       "SELECT g.generation, g.number, c.serial, "
		       "extract(epoch FROM c.revoked_at)::bigint, "
		       "coalesce(c.revoke_reason, 0) FROM g LEFT JOIN "
		       "certificates c ON c.status = 'revoked' AND "
		       "c.not_after > now() ORDER BY c.revoked_at, c.serial",
		       0, NULL);
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
		list[*n].revoked_at = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		list[*n].reason = (int)strtol(PQgetvalue(res, i, 4), NULL, 10);
		(*n)++;
	}
	*generation = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*number = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
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
store_crl_save(struct store *st, uint64_t number, int64_t generation,
	       const unsigned char *der, size_t len, long validity_s)
{
	char num[24], gen[24], va[24];
	const char *params[4] = {num, (const char *)der, va, gen};
	int lengths[4] = {0, (int)len, 0, 0};
	int formats[4] = {0, 1, 0, 0};
	PGconn *conn = store_conn(st);
	PGresult *res;
	long stored;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(num, sizeof(num), "%" PRIu64, number);
	snprintf(gen, sizeof(gen), "%" PRId64, generation);
	snprintf(va, sizeof(va), "%ld", validity_s);
	res = PQexecParams(
		conn,
		"INSERT INTO crl_cache (id, crl_number, der, this_update, "
		"next_update, generation) VALUES (true, $1::bigint, $2::bytea, "
		"now(), now() + $3::bigint * interval '1 second', $4::bigint) "
		"ON CONFLICT (id) DO UPDATE SET crl_number = "
		"excluded.crl_number, der = excluded.der, "
		"this_update = excluded.this_update, "
		"next_update = excluded.next_update, "
		"generation = excluded.generation "
		"WHERE crl_cache.crl_number < excluded.crl_number",
		4, NULL, params, lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warn("postgresql: crl store: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return STORE_ERR;
	}
	stored = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return stored == 1 ? STORE_OK : STORE_CONFLICT;
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
