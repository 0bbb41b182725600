/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Release key sets on PostgreSQL (core/store_deployments.h): versions 2
 * and up, stored as uploaded (fleetd cannot verify them: it does not know
 * the set baked into device images; agents verify each against the set
 * they pin), handed to the channel in order. Schema:
 * migrations/0011_updates.sql. Runs on API and channel job threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "core/store_deployments.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/query.h"
#include "db/store.h"

enum deploy_rc
store_keyset_add(struct store *st, int64_t version, const char *envelope,
		 const char *keyset, const char *actor, int64_t *expected)
{
	PGconn *conn = store_conn(st);
	struct audit_entry audit;
	char ver[32];
	const char *p[4] = {ver, envelope, keyset, actor};
	PGresult *res;
	int64_t next;

	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	snprintf(ver, sizeof(ver), "%" PRId64, version);
	if (db_exec(conn, "BEGIN") != 0)
		return DEPLOY_ERR_STORE;
	/* Uploads are serialised, so "the next version" is well defined. */
	res = db_query(conn,
		       "SELECT pg_advisory_xact_lock(hashtext("
		       "'fleet_release_keysets')), (SELECT coalesce(max("
		       "version), 1) + 1 FROM release_keysets)",
		       0, NULL);
	if (res == NULL)
		goto fail;
	next = db_int(res, 0, 1);
	PQclear(res);
	if (version != next) {
		(void)db_exec(conn, "ROLLBACK");
		*expected = next;
		return DEPLOY_KEYSET_VERSION;
	}
	if (db_command(conn,
		       "INSERT INTO release_keysets (version, envelope, "
		       "keyset, created_by) VALUES ($1::bigint, $2::jsonb, "
		       "$3::jsonb, $4)",
		       4, p) != STORE_OK)
		goto fail;
	memset(&audit, 0, sizeof(audit));
	audit.actor = actor;
	audit.action = "release_keyset.create";
	audit.target = NULL;
	audit_add_int(&audit, "version", version);
	if (db_audit_insert(conn, &audit) != DB_OK ||
	    db_command(conn, "SELECT pg_notify('fleet_keys', $1)", 1, p) !=
		    STORE_OK)
		goto fail;
	if (db_exec(conn, "COMMIT") != 0)
		return DEPLOY_ERR_STORE;
	return DEPLOY_OK;
fail:
	(void)db_exec(conn, "ROLLBACK");
	return DEPLOY_ERR_STORE;
}

enum deploy_rc
store_keyset_list(struct store *st, json_t **items)
{
	PGconn *conn = store_conn(st);
	json_t *arr = NULL;
	PGresult *res;

	if (conn == NULL)
		return DEPLOY_ERR_STORE;
	res = db_query(conn,
		       "SELECT coalesce(json_agg(json_build_object('version', "
		       "version, 'threshold', keyset->'threshold', 'keys', "
		       "(SELECT coalesce(json_agg(k->>'keyid'), '[]') FROM "
		       "jsonb_array_elements(keyset->'keys') k), "
		       "'created_by', created_by, 'created_at', "
		       "fleet_ts(created_at), 'envelope', envelope) ORDER BY "
		       "version), '[]')::text FROM release_keysets",
		       0, NULL);
	if (res == NULL)
		return DEPLOY_ERR_STORE;
	arr = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	PQclear(res);
	if (arr == NULL)
		return DEPLOY_ERR_STORE;
	*items = arr;
	return DEPLOY_OK;
}

void
update_keysets_free(struct update_keyset *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].envelope);
	free(list);
}

/* Rows (device_id, version, envelope) into *out. */
static enum store_rc
keyset_rows(PGresult *res, struct update_keyset **out, size_t *nout)
{
	struct update_keyset *list = NULL;
	size_t count = (size_t)PQntuples(res);
	int failed = 0;

	if (count > 0) {
		list = calloc(count, sizeof(*list));
		if (list == NULL)
			goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		snprintf(list[i].device_id, sizeof(list[i].device_id), "%s",
			 PQgetvalue(res, (int)i, 0));
		list[i].version = db_int(res, (int)i, 1);
		list[i].envelope = db_text(res, (int)i, 2, &failed);
		if (failed || list[i].envelope == NULL)
			goto fail;
	}
	PQclear(res);
	*out = list;
	*nout = count;
	return STORE_OK;
fail:
	update_keysets_free(list, count);
	PQclear(res);
	return STORE_ERR;
}

enum store_rc
store_update_hello_keys(struct store *st, const char *device_id,
			int64_t version, struct update_keyset **out,
			size_t *nout)
{
	PGconn *conn = store_conn(st);
	char ver[32];
	const char *p[2] = {device_id, ver};
	PGresult *res;

	*out = NULL;
	*nout = 0;
	if (conn == NULL)
		return STORE_ERR;
	snprintf(ver, sizeof(ver), "%" PRId64, version);
	/* The hello says what the agent pins now (a re-imaged device may
	 * pin an older set than it once adopted). */
	if (version >= 1 &&
	    db_command_prepared(
		    conn,
		    "UPDATE devices SET keyset_version = $2::bigint "
		    "WHERE id = $1::uuid AND keyset_version IS DISTINCT "
		    "FROM $2::bigint",
		    2, p) != STORE_OK)
		return STORE_ERR;
	res = db_query_prepared(
		conn,
		"SELECT $1::text, version, envelope::text FROM "
		"release_keysets WHERE version > greatest($2::bigint, "
		"1) ORDER BY version",
		2, p);
	if (res == NULL)
		return STORE_ERR;
	return keyset_rows(res, out, nout);
}

enum store_rc
store_update_keys_due(struct store *st, const char *const *ids, size_t n,
		      struct update_keyset **out, size_t *nout)
{
	PGconn *conn = store_conn(st);
	const char *p[1];
	PGresult *res;
	char *arr;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return STORE_OK;
	if (conn == NULL)
		return STORE_ERR;
	arr = db_uuid_array(ids, n);
	if (arr == NULL)
		return STORE_ERR;
	p[0] = arr;
	res = db_query_prepared(
		conn,
		"SELECT d.id::text, k.version, k.envelope::text FROM "
		"devices d JOIN release_keysets k ON k.version > "
		"coalesce(d.keyset_version, 1) WHERE d.id = "
		"ANY($1::uuid[]) AND d.status = 'active' ORDER BY "
		"d.id::text COLLATE \"C\", k.version",
		1, p);
	free(arr);
	if (res == NULL)
		return STORE_ERR;
	return keyset_rows(res, out, nout);
}
