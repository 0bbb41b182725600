/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment's record on PostgreSQL (core/store_enroll.h): the device, its
 * first certificate, the configuration profile its token names, the audit
 * row and the Idempotency-Key record in one transaction. The token's use was reserved before (db/tokens.c), so this
 * transaction locks no token row. Runs on API job threads.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/query.h"
#include "db/tokens.h"

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

	res = db_query(conn,
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
	rc = db_command(
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

static enum store_rc
enroll_record_tx(PGconn *conn, void *arg)
{
	const struct enrollment *e = arg;
	char nb[24], na[24], *labels = NULL;
	const char *params[9];
	enum store_rc rc;

	labels = db_labels_json(e->labels);
	if (labels == NULL)
		return STORE_ERR;
	snprintf(nb, sizeof(nb), "%" PRId64, e->not_before);
	snprintf(na, sizeof(na), "%" PRId64, e->not_after);
	params[0] = e->device_id;
	params[1] = labels;
	params[2] = e->model;
	params[3] = e->serial;
	params[4] = e->profile;
	params[5] = e->token_id;
	params[6] = e->cert_serial;
	params[7] = nb;
	params[8] = na;
	/* The certificate's FK is checked at the end of the statement, when
	 * the device row of the first CTE exists. */
	rc = db_command(conn,
			"WITH dev AS (INSERT INTO devices (id, labels, model, "
			"serial, profile, enrolled_with) VALUES ($1::uuid, "
			"$2::jsonb, $3, $4, $5, $6::uuid) RETURNING id) "
			"INSERT INTO certificates (serial, device_id, "
			"not_before, not_after) SELECT $7, id, "
			"to_timestamp($8::bigint), to_timestamp($9::bigint) "
			"FROM dev",
			9, params);
	free(labels);
	if (rc == STORE_OK && e->profile != NULL && e->profile[0] != '\0')
		rc = enroll_profile(conn, e->device_id, e->profile);
	return rc;
}

enum store_rc
store_enroll_record(struct store *st, const struct enrollment *e,
		    const struct audit_entry *audit,
		    const struct idem_record *idem)
{
	return db_unit(st, enroll_record_tx, (void *)(uintptr_t)e, audit, idem);
}
