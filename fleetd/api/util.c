/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the API handlers: JSON answers, strict bodies, pages,
 * labels, short texts, If-Match, ids and times. Runs on job threads; all
 * input is untrusted and already bounded in size by the http layer. The
 * pure parsers live in api/input.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "core/selector.h"

static void
api_json_set(struct api_response *resp, int status, json_t *doc, bool secret)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	/* jansson frees its strings without wiping them. */
	if (secret)
		api_json_string_cleanse(json_object_get(doc, "token"));
	json_decref(doc);
	if (text == NULL) {
		api_problem(resp, 500, "internal-error", "out of memory");
		return;
	}
	api_response_free(resp);
	resp->body = text;
	resp->body_len = strlen(text);
	resp->status = status;
	resp->content_type = "application/json";
	resp->secret = secret;
}

void
api_json(struct api_response *resp, int status, json_t *doc)
{
	api_json_set(resp, status, doc, false);
}

void
api_json_secret(struct api_response *resp, int status, json_t *doc)
{
	api_json_set(resp, status, doc, true);
}

/* "application/json", "application/json; charset=utf-8", ... */
static bool
media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (ct == NULL || strncasecmp(ct, type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int
api_body_object(struct api_call *c, json_t **out)
{
	json_t *doc;
	char detail[200];

	if (!media_type_is(c->req->content_type, "application/json") &&
	    !(strcmp(c->req->method, "PATCH") == 0 &&
	      media_type_is(c->req->content_type,
			    "application/merge-patch+json"))) {
		api_problem(c->resp, 415, "unsupported-media-type",
			    "send application/json");
		return -1;
	}
	doc = api_json_object_parse(c->req->body, c->req->body_len, detail,
				    sizeof(detail));
	if (doc == NULL) {
		api_problem(c->resp, 400, "malformed-json", detail);
		return -1;
	}
	*out = doc;
	return 0;
}

/* The cursor key, loaded only when a cursor is read or made. */
static int
api_page_key(struct api_call *c, unsigned char key[PAGE_KEY_LEN])
{
	if (page_key(c->ctx->store, key) == 0)
		return 0;
	api_store_failed(c);
	return -1;
}

int
api_page_parse(struct api_call *c, enum page_cursor_kind kind,
	       struct page *page, char after[PAGE_CURSOR_MAX])
{
	unsigned char key[PAGE_KEY_LEN];
	const char *field = NULL;
	char probe[2];
	int rc;

	memset(key, 0, sizeof(key));
	/* Without a cursor, no key is needed (and no storage round trip). */
	if (api_query_param(c->req->query, "cursor", probe, sizeof(probe)) !=
		    0 &&
	    api_page_key(c, key) != 0)
		return -1;
	rc = api_page_read(c->req->query, c->req->path, key, kind, page, after,
			   &field);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == 0)
		return 0;
	if (strcmp(field, "limit") == 0)
		api_problem_field(c->resp, "limit", "limit must be 1..1000");
	else
		api_problem_field(c->resp, "cursor",
				  "not a cursor of this list");
	return -1;
}

void
api_list(struct api_call *c, json_t *items, const char *next)
{
	unsigned char key[PAGE_KEY_LEN];
	char enc[PAGE_SEALED_MAX];
	json_t *doc;

	if (next != NULL && next[0] != '\0') {
		if (api_page_key(c, key) != 0) {
			json_decref(items);
			return;
		}
		if (page_cursor_seal(key, c->req->path, next, enc,
				     sizeof(enc)) != 0) {
			OPENSSL_cleanse(key, sizeof(key));
			json_decref(items);
			api_problem(c->resp, 500, "internal-error", NULL);
			return;
		}
		OPENSSL_cleanse(key, sizeof(key));
	}
	doc = json_pack("{s:o, s:o}", "items", items, "next_cursor",
			next && next[0] ? json_string(enc) : json_null());
	api_json(c->resp, 200, doc);
}

int
api_labels_check(struct api_call *c, const json_t *labels, const char *field,
		 bool allow_null)
{
	const char *key;
	json_t *value;

	if (!json_is_object(labels)) {
		api_problem_field(c->resp, field, "labels must be an object");
		return -1;
	}
	if (json_object_size(labels) > LABELS_MAX) {
		api_problem_field(c->resp, field, "at most 64 labels");
		return -1;
	}
	json_object_foreach((json_t *)(uintptr_t)labels, key, value)
	{
		if (!selector_key_valid(key, strlen(key))) {
			api_problem_field(
				c->resp, field,
				"label keys are [A-Za-z0-9._/-]{1,63}");
			return -1;
		}
		if (json_is_null(value) && allow_null)
			continue;
		if (!json_is_string(value) ||
		    !label_text_valid(json_string_value(value),
				      LABEL_VALUE_MAX)) {
			api_problem_field(c->resp, field,
					  "label values are strings up to 255 "
					  "bytes without control characters");
			return -1;
		}
	}
	return 0;
}

int
api_labels_read(struct api_call *c, const json_t *labels, const char *field,
		struct label_set *set)
{
	const char *key;
	json_t *value;

	if (api_labels_check(c, labels, field, false) != 0)
		return -1;
	json_object_foreach((json_t *)(uintptr_t)labels, key, value)
	{
		if (label_set_put(set, key, json_string_value(value)) !=
		    LABEL_OK) {
			api_problem(c->resp, 500, "internal-error",
				    "out of memory");
			return -1;
		}
	}
	return 0;
}

int
api_opt_string(struct api_call *c, const json_t *obj, const char *field,
	       size_t max, const char **out)
{
	json_t *v = json_object_get(obj, field);
	char detail[96];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    !label_text_valid(json_string_value(v), max)) {
		snprintf(detail, sizeof(detail),
			 "%s must be a string up to %zu bytes", field, max);
		api_problem_field(c->resp, field, detail);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int
api_only_fields(struct api_call *c, const json_t *obj, const char *const *names)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)(uintptr_t)obj, key, v)
	{
		for (i = 0; names[i] != NULL; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (names[i] == NULL) {
			api_problem_field(c->resp, key, "unknown field");
			return -1;
		}
	}
	return 0;
}

int
api_if_match(struct api_call *c, int64_t *revision)
{
	const char *v = c->req->if_match;
	char *end = NULL;
	long long r;

	*revision = -1;
	if (v == NULL || strcmp(v, "*") == 0)
		return 0;
	if (strncmp(v, "W/", 2) == 0)
		v += 2;
	if (*v == '"')
		v++;
	errno = 0;
	r = strtoll(v, &end, 10);
	if (errno != 0 || end == v || r < 0 || *v < '0' || *v > '9' ||
	    !(*end == '\0' || (end[0] == '"' && end[1] == '\0'))) {
		api_problem(c->resp, 412, "precondition-failed",
			    "If-Match must be the ETag of the document");
		return -1;
	}
	*revision = r;
	return 0;
}

int
api_path_id(const char *path, char id[SECRET_UUID_LEN], const char **rest)
{
	if (path[0] != '/' || strlen(path + 1) < SECRET_UUID_LEN - 1)
		return -1;
	memcpy(id, path + 1, SECRET_UUID_LEN - 1);
	id[SECRET_UUID_LEN - 1] = '\0';
	if (!secret_is_uuid(id))
		return -1;
	*rest = path + SECRET_UUID_LEN;
	return 0;
}

json_t *
api_time(int64_t t)
{
	char text[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(text);
}

int64_t
api_now(void)
{
	return (int64_t)time(NULL);
}

void
api_json_string_cleanse(json_t *s)
{
	if (json_is_string(s))
		OPENSSL_cleanse((void *)(uintptr_t)json_string_value(s),
				json_string_length(s));
}

int
api_idem_begin(struct api_call *c, struct idem_record *rec, int status)
{
	const char *key = c->req->idempotency_key;
	char *body = NULL;
	int st = 0;
	enum idem_rc rc;

	memset(rec, 0, sizeof(*rec));
	if (key == NULL)
		return 0;
	if (!idem_key_valid(key)) {
		api_problem_field(c->resp, "Idempotency-Key",
				  "1..255 visible characters");
		return 1;
	}
	rec->actor = c->actor;
	rec->key = key;
	rec->status = status;
	idem_request_hash(c->req->method, c->req->path, c->req->body,
			  c->req->body_len, rec->request_sha256);
	rc = idem_lookup(c->ctx->store, rec, &st, &body);
	if (rc == IDEM_NEW)
		return 0;
	if (rc == IDEM_MISMATCH)
		api_problem(c->resp, 409, "conflict",
			    "Idempotency-Key was used with another request");
	else if (rc == IDEM_ERR)
		api_store_failed(c);
	if (rc != IDEM_REPLAY)
		return 1;
	api_response_free(c->resp);
	c->resp->body = body;
	c->resp->body_len = strlen(body);
	c->resp->status = st;
	c->resp->content_type = "application/json";
	return 1;
}
