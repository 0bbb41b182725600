/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/tokens (enrollment tokens, operator) and /api/v1/admin-tokens
 * (admin tokens, admin only): one implementation for both collections.
 * They differ only in the fields of a create request and of the document
 * (read_spec and token_doc below); create, list, show and revoke are the
 * same calls into core/token.c. The token text is made by core, shown
 * once here and stored as SHA-256 only. Runs on job threads; bodies are
 * untrusted.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "core/idempotency.h"
#include "core/token.h"

struct token_collection {
	enum token_kind kind;
	const char *path; /* for Location */
	const char *const *fields; /* the members a create may send */
	int (*read_spec)(struct api_call *c, const json_t *body,
			 struct token_spec *spec);
};

/* "expires_in": seconds or "24h"/"30m"/"7d"; anything else makes the
 * spec fail its check (TOKEN_ERR_EXPIRES). */
static void
read_expires_in(const json_t *body, struct token_spec *spec)
{
	json_t *v = json_object_get(body, "expires_in");
	json_int_t n;

	if (v == NULL)
		return;
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (json_is_string(v))
		spec->expires_in = token_duration_parse(json_string_value(v));
	else
		spec->expires_in =
			n >= 1 && n <= TOKEN_EXPIRES_MAX ? (long)n : -1;
}

static int
enroll_read_spec(struct api_call *c, const json_t *body,
		 struct token_spec *spec)
{
	json_t *v;
	json_int_t n;

	v = json_object_get(body, "uses");
	if (v != NULL) {
		n = json_is_integer(v) ? json_integer_value(v) : 0;
		spec->uses = n >= 1 && n <= TOKEN_USES_MAX ? (long)n : 0;
	}
	read_expires_in(body, spec);
	v = json_object_get(body, "labels");
	if (v != NULL && api_labels_read(c, v, "labels", &spec->labels) != 0)
		return -1;
	return api_opt_string(c, body, "profile", TOKEN_TEXT_FIELD_MAX,
			      &spec->profile);
}

static int
admin_read_spec(struct api_call *c, const json_t *body, struct token_spec *spec)
{
	spec->role = token_role_parse(
		json_string_value(json_object_get(body, "role")));
	read_expires_in(body, spec);
	return api_opt_string(c, body, "name", TOKEN_TEXT_FIELD_MAX,
			      &spec->name);
}

static const char *const enroll_fields[] = {"uses", "expires_in", "labels",
					    "profile", NULL};
static const char *const admin_fields[] = {"role", "name", "expires_in", NULL};

static const struct token_collection collections[] = {
	[TOKEN_ENROLL] = {TOKEN_ENROLL, "/api/v1/tokens", enroll_fields,
			  enroll_read_spec},
	[TOKEN_ADMIN] = {TOKEN_ADMIN, "/api/v1/admin-tokens", admin_fields,
			 admin_read_spec},
};

/* The document of docs/api.md (without the secret). */
static json_t *
token_doc(const struct token *t)
{
	json_t *doc, *labels;
	size_t i;

	if (t->kind == TOKEN_ADMIN)
		return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id",
				 t->id, "role", token_role_name(t->role),
				 "name", t->name ? t->name : "", "created_at",
				 api_time(t->created_at), "expires_at",
				 api_time(t->expires_at), "last_used_at",
				 api_time(t->last_used_at), "revoked_at",
				 api_time(t->revoked_at));
	labels = json_object();
	for (i = 0; labels != NULL && i < t->labels.n; i++)
		json_object_set_new(labels, t->labels.items[i].key,
				    json_string(t->labels.items[i].value));
	doc = json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "id", t->id,
			"uses_total", (json_int_t)t->uses_total, "uses_left",
			(json_int_t)t->uses_left, "expires_at",
			api_time(t->expires_at), "labels",
			labels ? labels : json_null(), "profile",
			t->profile ? json_string(t->profile) : json_null(),
			"created_at", api_time(t->created_at), "revoked_at",
			api_time(t->revoked_at));
	return doc;
}

static void
spec_refused(struct api_call *c, enum token_kind kind, enum token_rc rc)
{
	switch (rc) {
	case TOKEN_ERR_USES:
		api_problem_field(c->resp, "uses",
				  "uses must be an integer 1..1000000");
		break;
	case TOKEN_ERR_EXPIRES:
		api_problem_field(c->resp, "expires_in",
				  "seconds or \"24h\", \"30m\", \"7d\"; "
				  "at most 366 days");
		break;
	case TOKEN_ERR_ROLE:
		api_problem_field(c->resp, "role",
				  "role must be admin, operator or viewer");
		break;
	default:
		api_problem_field(c->resp,
				  kind == TOKEN_ADMIN ? "name" : "profile",
				  "a string up to 255 bytes");
	}
}

static void
token_create(struct api_call *c, const struct token_collection *tc)
{
	json_t *body = NULL, *doc = NULL;
	char text[TOKEN_TEXT_MAX] = "", sha256[SECRET_SHA256_HEX];
	struct token_spec spec;
	struct idem_record rec;
	struct token tok;
	enum token_rc rc;

	token_spec_init(&spec, tc->kind);
	memset(&tok, 0, sizeof(tok));
	memset(&rec, 0, sizeof(rec));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, tc->fields) != 0 ||
	    tc->read_spec(c, body, &spec) != 0)
		goto out;
	rc = token_spec_check(&spec);
	if (rc != TOKEN_OK) {
		spec_refused(c, tc->kind, rc);
		goto out;
	}
	if (api_idem_begin(c, &rec, 201) != 0)
		goto out;
	if (token_make(&spec, api_now(), &tok, text, sha256) != TOKEN_OK ||
	    (doc = token_doc(&tok)) == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	/* A replay shows the document with "token": null: shown once. */
	json_object_set_new(doc, "token", json_null());
	if (rec.key != NULL &&
	    (rec.body = json_dumps(doc, JSON_COMPACT)) == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	rc = token_store(c->ctx->store, &tok, sha256, c->actor,
			 rec.key != NULL ? &rec : NULL);
	if (rc == TOKEN_IDEM_TAKEN) {
		api_problem(c->resp, 409, "conflict",
			    "a concurrent request used this Idempotency-Key");
		goto out;
	}
	if (rc != TOKEN_OK) {
		api_store_failed(c);
		goto out;
	}
	json_object_set_new(doc, "token", json_string(text));
	snprintf(c->resp->location, sizeof(c->resp->location), "%s/%s",
		 tc->path, tok.id);
	api_json_secret(c->resp, 201, doc);
	doc = NULL;
out:
	OPENSSL_cleanse(text, sizeof(text));
	free(rec.body);
	json_decref(body);
	json_decref(doc);
	token_clear(&tok);
	token_spec_clear(&spec);
}

static void
token_answer(struct api_call *c, enum token_rc rc, struct token *tok,
	     const struct token_collection *tc, const char *id)
{
	char detail[96];

	snprintf(detail, sizeof(detail), "no %s %s",
		 tc->kind == TOKEN_ADMIN ? "admin token" : "enrollment token",
		 id);
	if (rc == TOKEN_NOTFOUND)
		api_problem(c->resp, 404, "not-found", detail);
	else if (rc == TOKEN_ALREADY_REVOKED)
		api_problem(c->resp, 409, "conflict",
			    "the token is already revoked");
	else if (rc != TOKEN_OK)
		api_store_failed(c);
	else
		api_json(c->resp, 200, token_doc(tok));
	token_clear(tok);
}

static void
token_list_answer(struct api_call *c, const struct token_collection *tc)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct token *items = NULL;
	struct page page;
	json_t *arr;
	size_t i, n = 0;
	enum token_rc rc;

	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = token_list(c->ctx->store, tc->kind, &page, &items, &n, next);
	if (rc == TOKEN_NOTFOUND) {
		api_problem_field(c->resp, "cursor",
				  "not a cursor of this list");
		return;
	}
	if (rc != TOKEN_OK) {
		api_store_failed(c);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++)
		if (json_array_append_new(arr, token_doc(&items[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	tokens_free(items, n);
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return;
	}
	api_list(c, arr, next);
}

/* Routes "", "/{id}" and "/{id}/revoke" under a collection. */
static void
token_collection(struct api_call *c, const char *rest,
		 const struct token_collection *tc)
{
	const char *m = c->req->method, *tail = NULL;
	char id[SECRET_UUID_LEN];
	struct token tok;
	enum token_rc rc;

	memset(&tok, 0, sizeof(tok));
	if (rest[0] == '\0') {
		if (strcmp(m, "POST") == 0)
			token_create(c, tc);
		else if (strcmp(m, "GET") == 0)
			token_list_answer(c, tc);
		else
			api_method_not_allowed(c->resp, "GET, POST");
		return;
	}
	if (api_path_id(rest, id, &tail) != 0) {
		api_problem(c->resp, 404, "not-found",
			    "no such token: give its id (a UUID)");
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(m, "GET") != 0) {
			api_method_not_allowed(c->resp, "GET");
			return;
		}
		rc = token_get(c->ctx->store, tc->kind, id, &tok);
	} else if (strcmp(tail, "/revoke") == 0) {
		if (strcmp(m, "POST") != 0) {
			api_method_not_allowed(c->resp, "POST");
			return;
		}
		rc = token_revoke(c->ctx->store, tc->kind, id, c->actor,
				  api_now(), &tok);
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	token_answer(c, rc, &tok, tc, id);
}

void
api_tokens(struct api_call *c, const char *rest)
{
	token_collection(c, rest, &collections[TOKEN_ENROLL]);
}

void
api_admin_tokens(struct api_call *c, const char *rest)
{
	token_collection(c, rest, &collections[TOKEN_ADMIN]);
}
