/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/admin-tokens (admin only): bearer tokens for operators and
 * integrations. "fla_" + 64 hex digits, returned once, stored as SHA-256.
 * Runs on job threads; bodies are untrusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "db/admin_tokens.h"
#include "db/audit.h"

static void
admin_tokens_create(struct api_call *c)
{
	json_t *body = NULL, *v, *doc = NULL, *details = NULL;
	const char *role, *name = NULL, *key;
	char token[80] = "", hash[SECRET_SHA256_HEX], idem[SECRET_SHA256_HEX];
	char id[SECRET_UUID_LEN];

	if (api_body_object(c, &body) != 0)
		return;
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "role") != 0 && strcmp(key, "name") != 0) {
			api_problem_field(c->resp, key, "unknown field");
			goto out;
		}
	}
	role = json_string_value(json_object_get(body, "role"));
	if (role == NULL ||
	    (strcmp(role, "admin") != 0 && strcmp(role, "operator") != 0 &&
	     strcmp(role, "viewer") != 0)) {
		api_problem_field(c->resp, "role",
				  "role must be admin, operator or viewer");
		goto out;
	}
	if (api_opt_string(c, body, "name", API_TEXT_MAX, &name) != 0)
		goto out;
	if (secret_uuid_v4(id) != 0 ||
	    secret_token_new("fla_", token, sizeof(token)) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	if (api_begin(c) != 0 || api_idem_begin(c, idem) != 0)
		goto out;
	if (db_admin_token_create(c->conn, id, hash, role, name ? name : "",
				  c->actor, &doc) != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	details =
		json_pack("{s:s, s:s}", "role", role, "name", name ? name : "");
	if (audit_write(c->conn, c->actor, "admin_token.create", id, details) !=
	    DB_OK) {
		api_db_failed(c);
		goto out;
	}
	json_object_set_new(doc, "token", json_string(token));
	if (api_idem_finish(c, idem, 201, doc) != 0 || api_commit(c) != 0)
		goto out;
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/admin-tokens/%s", id);
	api_json(c->resp, 201, doc);
	doc = NULL;
out:
	OPENSSL_cleanse(token, sizeof(token));
	json_decref(body);
	json_decref(doc);
	json_decref(details);
}

static void
admin_tokens_revoke(struct api_call *c, const char *id)
{
	json_t *doc = NULL;
	int rc;

	if (api_begin(c) != 0)
		return;
	rc = db_admin_token_revoke(c->conn, id, &doc);
	if (rc == DB_NOTFOUND) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (rc == DB_CONFLICT) {
		api_problem(c->resp, 409, "conflict",
			    "the token is already revoked");
		return;
	}
	if (rc != DB_OK || audit_write(c->conn, c->actor, "admin_token.revoke",
				       id, NULL) != DB_OK) {
		json_decref(doc);
		api_db_failed(c);
		return;
	}
	if (api_commit(c) != 0) {
		json_decref(doc);
		return;
	}
	api_json(c->resp, 200, doc);
}

static const struct api_token_ops api_admin_tokens_ops = {
	.create = admin_tokens_create,
	.list = db_admin_token_list,
	.get = db_admin_token_get,
	.revoke = admin_tokens_revoke,
};

void
api_admin_tokens(struct api_call *c, const char *rest)
{
	api_token_collection(c, rest, &api_admin_tokens_ops);
}
