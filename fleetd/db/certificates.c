/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate revocation and the CRL cache. Runs on job threads. The CRL
 * itself is signed by the ca process; here it is only stored and served.
 */
#include "db/certificates.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
		       "RETURNING serial), "
		       "c AS (UPDATE crl_cache SET stale = true) "
		       "SELECT serial FROM r",
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

int
db_crl_cached(PGconn *conn, long min_left_s, unsigned char **der, size_t *len)
{
	char left[24];
	const char *params[1] = {left};
	PGresult *res;
	unsigned char *copy;
	int n;

	snprintf(left, sizeof(left), "%ld", min_left_s);
	/* Binary results: the DER comes back as raw bytes. */
	res = PQexecParams(conn,
			   "SELECT der FROM crl_cache WHERE NOT stale AND "
			   "next_update > now() + $1::bigint * "
			   "interval '1 second'",
			   1, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("postgresql: crl cache: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return DB_ERR;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOTFOUND;
	}
	n = PQgetlength(res, 0, 0);
	copy = malloc(n > 0 ? (size_t)n : 1);
	if (copy == NULL) {
		PQclear(res);
		return DB_ERR;
	}
	memcpy(copy, PQgetvalue(res, 0, 0), (size_t)n);
	PQclear(res);
	*der = copy;
	*len = (size_t)n;
	return DB_OK;
}

int
db_crl_lock(PGconn *conn)
{
	PGresult *res = db_query(
		conn, "SELECT pg_advisory_xact_lock(hashtext('fleet_crl'))", 0,
		NULL);

	if (res == NULL)
		return DB_ERR;
	PQclear(res);
	return DB_OK;
}

PGresult *
db_crl_revoked(PGconn *conn)
{
	return db_query(
		conn,
		"SELECT serial, extract(epoch FROM revoked_at)::bigint, "
		"coalesce(revoke_reason, 0) FROM certificates "
		"WHERE status = 'revoked' AND not_after > now() "
		"ORDER BY revoked_at",
		0, NULL);
}

int
db_crl_next_number(PGconn *conn, uint64_t *number)
{
	PGresult *res =
		db_query(conn, "SELECT nextval('crl_number_seq')", 0, NULL);

	if (res == NULL)
		return DB_ERR;
	*number = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
db_crl_store(PGconn *conn, uint64_t number, const unsigned char *der,
	     size_t len, long next_update_s)
{
	char num[24], nu[24];
	const char *params[3] = {num, (const char *)der, nu};
	int lengths[3] = {0, (int)len, 0};
	int formats[3] = {0, 1, 0};
	PGresult *res;

	snprintf(num, sizeof(num), "%" PRIu64, number);
	snprintf(nu, sizeof(nu), "%ld", next_update_s);
	res = PQexecParams(
		conn,
		"INSERT INTO crl_cache (id, crl_number, der, this_update, "
		"next_update, stale) VALUES (true, $1::bigint, $2::bytea, "
		"now(), "
		"now() + $3::bigint * interval '1 second', false) "
		"ON CONFLICT (id) DO UPDATE SET crl_number = "
		"excluded.crl_number, "
		"der = excluded.der, this_update = excluded.this_update, "
		"next_update = excluded.next_update, stale = false",
		3, NULL, params, lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warn("postgresql: crl store: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return DB_ERR;
	}
	PQclear(res);
	return DB_OK;
}
