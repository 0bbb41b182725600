/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/tokens: enrollment tokens (operator). The token text ("fle_" +
 * 64 hex digits) is made here, returned once and stored as SHA-256 only.
 * Runs on job threads; bodies are untrusted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "db/audit.h"
#include "db/tokens.h"

#define TOKEN_USES_MAX 1000000
#define TOKEN_EXPIRES_MAX (366L * 86400)
#define TOKEN_EXPIRES_DEFAULT 86400L

/* 86400 or "24h" / "30m" / "7d" / "90s" / "3600". -1 when invalid. */
static long
duration_parse(const json_t *v)
{
	const char *s, *end = NULL;
	long long n;
	long unit = 1;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
		return n >= 1 && n <= TOKEN_EXPIRES_MAX ? (long)n : -1;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, (char **)(uintptr_t)&end, 10);
	if (errno != 0 || n > TOKEN_EXPIRES_MAX)
		return -1;
	if (strcmp(end, "d") == 0)
		unit = 86400;
	else if (strcmp(end, "h") == 0)
		unit = 3600;
	else if (strcmp(end, "m") == 0)
		unit = 60;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return -1;
	n *= unit;
	return n >= 1 && n <= TOKEN_EXPIRES_MAX ? (long)n : -1;
}

static void
tokens_create(struct api_call *c)
{
	json_t *body = NULL, *v, *doc = NULL, *details = NULL;
	const char *profile = NULL, *key;
	char token[80] = "", hash[SECRET_SHA256_HEX], idem[SECRET_SHA256_HEX];
	char id[SECRET_UUID_LEN], *labels_text = NULL;
	long long uses = 1;
	long expires = TOKEN_EXPIRES_DEFAULT;
	int rc;

	if (api_body_object(c, &body) != 0)
		return;
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "uses") != 0 &&
		    strcmp(key, "expires_in") != 0 &&
		    strcmp(key, "labels") != 0 && strcmp(key, "profile") != 0) {
			api_problem_field(c->resp, key, "unknown field");
			goto out;
		}
	}
	v = json_object_get(body, "uses");
	if (v != NULL) {
		uses = json_is_integer(v) ? json_integer_value(v) : 0;
		if (uses < 1 || uses > TOKEN_USES_MAX) {
			api_problem_field(c->resp, "uses",
					  "uses must be an integer 1..1000000");
			goto out;
		}
	}
	v = json_object_get(body, "expires_in");
	if (v != NULL) {
		expires = duration_parse(v);
		if (expires < 0) {
			api_problem_field(
				c->resp, "expires_in",
				"seconds or \"24h\", \"30m\", \"7d\"; "
				"at most 366 days");
			goto out;
		}
	}
	v = json_object_get(body, "labels");
	if (v != NULL && api_labels_check(c, v, "labels", false) != 0)
		goto out;
	if (api_opt_string(c, body, "profile", API_TEXT_MAX, &profile) != 0)
		goto out;
	labels_text = v ? json_dumps(v, JSON_COMPACT) : strdup("{}");
	if (labels_text == NULL || secret_uuid_v4(id) != 0 ||
	    secret_token_new("fle_", token, sizeof(token)) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	if (api_begin(c) != 0 || api_idem_begin(c, idem) != 0)
		goto out;
	rc = db_enroll_token_create(c->conn, id, hash, (long)uses, expires,
				    labels_text, profile, c->actor, &doc);
	if (rc != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	details = json_pack("{s:I, s:I, s:O, s:s?}", "uses", (json_int_t)uses,
			    "expires_in", (json_int_t)expires, "labels",
			    json_object_get(doc, "labels"), "profile", profile);
	if (audit_write(c->conn, c->actor, "token.create", id, details) !=
	    DB_OK) {
		api_db_failed(c);
		goto out;
	}
	json_object_set_new(doc, "token", json_string(token));
	if (api_idem_finish(c, idem, 201, doc) != 0 || api_commit(c) != 0)
		goto out;
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/tokens/%s", id);
	api_json(c->resp, 201, doc);
	doc = NULL;
out:
	OPENSSL_cleanse(token, sizeof(token));
	json_decref(body);
	json_decref(doc);
	json_decref(details);
	free(labels_text);
}

static void
tokens_revoke(struct api_call *c, const char *id)
{
	json_t *doc = NULL;
	int rc;

	if (api_begin(c) != 0)
		return;
	rc = db_enroll_token_revoke(c->conn, id, &doc);
	if (rc == DB_NOTFOUND) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (rc == DB_CONFLICT) {
		api_problem(c->resp, 409, "conflict",
			    "the token is already revoked");
		return;
	}
	if (rc != DB_OK ||
	    audit_write(c->conn, c->actor, "token.revoke", id, NULL) != DB_OK) {
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

static const struct api_token_ops api_tokens_ops = {
	.create = tokens_create,
	.list = db_enroll_token_list,
	.get = db_enroll_token_get,
	.revoke = tokens_revoke,
};

void
api_tokens(struct api_call *c, const char *rest)
{
	api_token_collection(c, rest, &api_tokens_ops);
}
