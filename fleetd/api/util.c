/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the API handlers: JSON answers, transactions, body and
 * query-string parsing, cursors, label validation, If-Match and
 * Idempotency-Key. Runs on job threads; all input is untrusted and
 * already bounded in size by the http layer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/selector.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "log.h"

void
api_json(struct api_response *resp, int status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL) {
		api_problem(resp, 500, "internal-error", "out of memory");
		return;
	}
	free(resp->body);
	resp->body = text;
	resp->body_len = strlen(text);
	resp->status = status;
	resp->content_type = "application/json";
}

int
api_connect(struct api_call *c)
{
	c->conn = db_conn(c->ctx->db);
	if (c->conn == NULL) {
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
		return -1;
	}
	return 0;
}

int
api_begin(struct api_call *c)
{
	if (db_exec(c->conn, "BEGIN") != 0) {
		api_db_failed(c);
		return -1;
	}
	return 0;
}

int
api_commit(struct api_call *c)
{
	if (db_exec(c->conn, "COMMIT") != 0) {
		api_db_failed(c);
		return -1;
	}
	return 0;
}

void
api_rollback(struct api_call *c)
{
	if (c->conn != NULL && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		(void)db_exec(c->conn, "ROLLBACK");
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
	json_error_t jerr;
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
	doc = json_loadb(c->req->body ? c->req->body : "", c->req->body_len,
			 JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(detail, sizeof(detail), "line %d column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		api_problem(c->resp, 400, "malformed-json", detail);
		return -1;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_problem(c->resp, 400, "malformed-json",
			    "the body must be a JSON object");
		return -1;
	}
	*out = doc;
	return 0;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
api_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), o = 0;
	const char *p = query;
	int hi, lo;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			for (p += nlen + 1; *p != '\0' && *p != '&'; p++) {
				if (o + 1 >= outlen)
					return -1;
				if (*p == '+') {
					out[o++] = ' ';
				} else if (*p == '%') {
					hi = hexval(p[1]);
					lo = hi < 0 ? -1 : hexval(p[2]);
					if (lo < 0 || (hi == 0 && lo == 0))
						return -1;
					out[o++] = (char)(hi * 16 + lo);
					p += 2;
				} else {
					out[o++] = *p;
				}
			}
			out[o] = '\0';
			return 1;
		}
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	return 0;
}

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
b64url_encode(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in), i, o = 0;
	unsigned v;

	for (i = 0; i < n && o + 5 < outlen; i += 3) {
		v = (unsigned)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
}

static int
b64url_decode(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in), i, o = 0;
	unsigned v = 0;
	int bits = 0;
	const char *pos;

	for (i = 0; i < n; i++) {
		pos = strchr(b64url, in[i]);
		if (pos == NULL || in[i] == '\0')
			return -1;
		v = (v << 6) | (unsigned)(pos - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return 0;
}

static bool
all_digits(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 19)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int
api_page(struct api_call *c, bool numeric, struct db_page *page,
	 char after[DB_CURSOR_MAX])
{
	char text[200], *end = NULL;
	const char *sp;
	long limit = API_LIMIT_DEFAULT;
	int rc;

	page->after = NULL;
	rc = api_query_param(c->req->query, "limit", text, sizeof(text));
	if (rc != 0) {
		errno = 0;
		limit = rc > 0 ? strtol(text, &end, 10) : 0;
		if (rc < 0 || errno != 0 || end == text || *end != '\0' ||
		    limit < 1 || limit > API_LIMIT_MAX) {
			api_problem_field(c->resp, "limit",
					  "limit must be 1..1000");
			return -1;
		}
	}
	page->limit = (int)limit;
	rc = api_query_param(c->req->query, "cursor", text, sizeof(text));
	if (rc == 0)
		return 0;
	if (rc < 0 || b64url_decode(text, after, DB_CURSOR_MAX) != 0)
		goto bad;
	if (numeric) {
		if (!all_digits(after, strlen(after)))
			goto bad;
	} else {
		sp = strchr(after, ' ');
		if (sp == NULL || !all_digits(after, (size_t)(sp - after)) ||
		    !secret_is_uuid(sp + 1))
			goto bad;
	}
	page->after = after;
	return 0;
bad:
	api_problem_field(c->resp, "cursor", "not a cursor of this list");
	return -1;
}

void
api_list(struct api_call *c, json_t *items, const char *next)
{
	char enc[DB_CURSOR_MAX * 2];
	json_t *doc;

	if (next != NULL && next[0] != '\0')
		b64url_encode(next, enc, sizeof(enc));
	doc = json_pack("{s:o, s:o}", "items", items, "next_cursor",
			next && next[0] ? json_string(enc) : json_null());
	api_json(c->resp, 200, doc);
}

static bool
utf8_text_ok(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true; /* jansson has already checked UTF-8 */
}

int
api_labels_check(struct api_call *c, const json_t *labels, const char *field,
		 bool allow_null)
{
	const char *key;
	json_t *value;
	char detail[160];

	if (!json_is_object(labels)) {
		api_problem_field(c->resp, field, "labels must be an object");
		return -1;
	}
	if (json_object_size(labels) > API_LABELS_MAX) {
		api_problem_field(c->resp, field, "at most 64 labels");
		return -1;
	}
	json_object_foreach((json_t *)(uintptr_t)labels, key, value)
	{
		if (!selector_key_valid(key, strlen(key))) {
			snprintf(detail, sizeof(detail),
				 "label keys are [A-Za-z0-9._/-]{1,63}");
			api_problem_field(c->resp, field, detail);
			return -1;
		}
		if (json_is_null(value) && allow_null)
			continue;
		if (!json_is_string(value) ||
		    !utf8_text_ok(json_string_value(value),
				  API_LABEL_VALUE_MAX)) {
			api_problem_field(c->resp, field,
					  "label values are strings up to 255 "
					  "bytes without control characters");
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
	if (!json_is_string(v) || !utf8_text_ok(json_string_value(v), max)) {
		snprintf(detail, sizeof(detail),
			 "%s must be a string up to %zu bytes", field, max);
		api_problem_field(c->resp, field, detail);
		return -1;
	}
	*out = json_string_value(v);
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
	if (errno != 0 || end == v || r < 0 ||
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

int
api_idem_begin(struct api_call *c, char hash[SECRET_SHA256_HEX])
{
	const char *key = c->req->idempotency_key;
	char *body = NULL, *tmp = NULL;
	size_t plen, i;
	int status = 0, rc;

	hash[0] = '\0';
	if (key == NULL)
		return 0;
	for (i = 0; key[i] != '\0'; i++)
		if ((unsigned char)key[i] < 0x21 || key[i] == 0x7f)
			break;
	if (i == 0 || key[i] != '\0' || i > 255) {
		api_problem_field(c->resp, "Idempotency-Key",
				  "1..255 visible characters");
		return 1;
	}
	/* The request is its method, path and body. */
	plen = strlen(c->req->method) + strlen(c->req->path) + 2;
	tmp = malloc(plen + c->req->body_len);
	if (tmp == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return 1;
	}
	snprintf(tmp, plen, "%s %s", c->req->method, c->req->path);
	tmp[plen - 1] = '\n';
	if (c->req->body_len > 0)
		memcpy(tmp + plen, c->req->body, c->req->body_len);
	secret_sha256_hex(tmp, plen + c->req->body_len, hash);
	free(tmp);
	rc = db_idempotency_get(c->conn, c->actor, key, hash, &status, &body);
	if (rc == DB_NOTFOUND)
		return 0;
	if (rc == DB_CONFLICT) {
		api_problem(c->resp, 409, "conflict",
			    "Idempotency-Key was used with another request");
		return 1;
	}
	if (rc != DB_OK) {
		api_db_failed(c);
		return 1;
	}
	free(c->resp->body);
	c->resp->body = body;
	c->resp->body_len = strlen(body);
	c->resp->status = status;
	c->resp->content_type = "application/json";
	return 1;
}

int
api_idem_finish(struct api_call *c, const char *hash, int status,
		const json_t *doc)
{
	json_t *copy;
	char *text;
	int rc;

	if (hash[0] == '\0')
		return 0;
	/* Secrets are shown once: a replay answers with "token": null. */
	copy = json_deep_copy(doc);
	if (copy != NULL && json_object_get(copy, "token") != NULL)
		json_object_set_new(copy, "token", json_null());
	text = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
	json_decref(copy);
	if (text == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return -1;
	}
	rc = db_idempotency_put(c->conn, c->actor, c->req->idempotency_key,
				hash, status, text);
	free(text);
	if (rc == DB_CONFLICT) {
		api_problem(c->resp, 409, "conflict",
			    "a concurrent request used this Idempotency-Key");
		return -1;
	}
	if (rc != DB_OK) {
		api_db_failed(c);
		return -1;
	}
	return 0;
}

void
api_token_collection(struct api_call *c, const char *rest,
		     const struct api_token_ops *ops)
{
	const char *m = c->req->method, *tail = NULL;
	char id[SECRET_UUID_LEN], after[DB_CURSOR_MAX], next[DB_CURSOR_MAX];
	struct db_page page;
	json_t *doc = NULL;
	int rc;

	if (rest[0] == '\0') {
		if (strcmp(m, "POST") == 0) {
			ops->create(c);
		} else if (strcmp(m, "GET") == 0) {
			if (api_page(c, false, &page, after) != 0)
				return;
			if (ops->list(c->conn, &page, &doc, next) != DB_OK) {
				api_db_failed(c);
				return;
			}
			api_list(c, doc, next);
		} else {
			api_method_not_allowed(c->resp, "GET, POST");
		}
		return;
	}
	if (api_path_id(rest, id, &tail) != 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(m, "GET") != 0) {
			api_method_not_allowed(c->resp, "GET");
			return;
		}
		rc = ops->get(c->conn, id, &doc);
		if (rc == DB_NOTFOUND)
			api_problem(c->resp, 404, "not-found", NULL);
		else if (rc != DB_OK)
			api_db_failed(c);
		else
			api_json(c->resp, 200, doc);
	} else if (strcmp(tail, "/revoke") == 0) {
		if (strcmp(m, "POST") != 0)
			api_method_not_allowed(c->resp, "POST");
		else
			ops->revoke(c, id);
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
	}
}
