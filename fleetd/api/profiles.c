/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/profiles: configuration profiles and their immutable versions
 * (docs/api.md, "Configuration profiles"). Create (Idempotency-Key),
 * list, show (ETag = latest version), publish (If-Match on the latest
 * version: a racing publish gets 412), versions. JSON in, core checks
 * (core/config.h) and the store port (core/store_config.h), JSON out.
 * Runs on job threads; names, bodies and documents are untrusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/config_int.h"
#include "core/config.h"
#include "core/idempotency.h"
#include "core/store_config.h"

/* A stored canonical text as a JSON value (NULL text: JSON null). */
json_t *
api_config_text_json(const char *text)
{
	json_t *v;

	if (text == NULL)
		return json_null();
	v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	return v != NULL ? v : json_null();
}

void
api_config_refused(struct api_call *c, enum config_rc rc, const char *detail)
{
	switch (rc) {
	case CONFIG_NOTFOUND:
		api_problem(c->resp, 404, "not-found", detail);
		return;
	case CONFIG_PROFILE_UNKNOWN:
		api_problem(c->resp, 422, "unknown-profile",
			    detail ? detail : "no profile of that name");
		return;
	case CONFIG_VERSION_UNKNOWN:
		api_problem(c->resp, 422, "unknown-version",
			    detail ? detail
				   : "the profile has no such version");
		return;
	case CONFIG_NO_VERSION:
		api_problem(c->resp, 409, "no-version",
			    "the profile has no published version yet");
		return;
	case CONFIG_NAME_TAKEN:
		api_problem(c->resp, 409, "conflict",
			    "a profile of that name exists");
		return;
	case CONFIG_PRECONDITION:
		api_problem(c->resp, 412, "precondition-failed",
			    detail ? detail
				   : "the document changed; GET it again");
		return;
	case CONFIG_DECOMMISSIONED:
		api_problem(c->resp, 409, "conflict",
			    "the device is decommissioned");
		return;
	case CONFIG_NO_MATCH:
		api_problem(c->resp, 422, "selector-matches-nothing",
			    "the selector matches no active device");
		return;
	case CONFIG_SOURCE_EMPTY:
		api_problem(c->resp, 422, "source-has-no-config",
			    detail ? detail
				   : "the source device has no configuration");
		return;
	case CONFIG_TOO_LARGE:
		api_problem(c->resp, 413, "payload-too-large",
			    detail ? detail
				   : "configuration documents are limited to "
				     "262144 bytes of canonical JSON");
		return;
	case CONFIG_INVALID_DOC:
		api_problem(c->resp, 400, "invalid-document", detail);
		return;
	case CONFIG_INVALID_PATCH:
		api_problem(c->resp, 400, "invalid-merge-patch", detail);
		return;
	case CONFIG_IDEM_TAKEN:
		api_problem(c->resp, 409, "conflict",
			    "a concurrent request used this Idempotency-Key");
		return;
	case CONFIG_ERR_STORE:
		api_store_failed(c);
		return;
	case CONFIG_OK:
	case CONFIG_ERR_NOMEM:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

static json_t *
version_json(const char *profile, const struct config_version *v, bool with_doc)
{
	json_t *doc = json_pack(
		"{s:s, s:i, s:s, s:s, s:o, s:s}", "profile", profile, "version",
		v->version, "sha256", v->doc.sha256, "note",
		v->note ? v->note : "", "created_at", api_time(v->created_at),
		"created_by", v->created_by ? v->created_by : "");

	if (doc != NULL && with_doc &&
	    json_object_set_new(doc, "document",
				api_config_text_json(v->doc.text)) != 0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* latest: the latest version (with document), or NULL. */
static json_t *
profile_json(const struct config_profile *p,
	     const struct config_version *latest)
{
	json_t *l;

	if (latest != NULL)
		l = version_json(p->name, latest, true);
	else if (p->latest_version > 0)
		l = json_pack("{s:s, s:i, s:s}", "profile", p->name, "version",
			      p->latest_version, "sha256", p->latest_sha256);
	else
		l = json_null();
	if (l == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:i, s:o, s:o, s:s, s:o}", "name", p->name,
			 "description", p->description ? p->description : "",
			 "latest_version", p->latest_version, "latest", l,
			 "created_at", api_time(p->created_at), "created_by",
			 p->created_by ? p->created_by : "", "updated_at",
			 api_time(p->updated_at));
}

static void
set_etag_int(struct api_call *c, int64_t v)
{
	snprintf(c->resp->etag, sizeof(c->resp->etag), "%" PRId64, v);
}

static void
profile_create(struct api_call *c)
{
	static const char *const fields[] = {"name", "description", NULL};
	struct config_profile p;
	struct idem_record rec;
	const char *name = NULL, *desc = NULL;
	json_t *body = NULL, *doc = NULL;
	enum config_rc rc;

	memset(&p, 0, sizeof(p));
	memset(&rec, 0, sizeof(rec));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    api_opt_string(c, body, "name", CONFIG_NAME_MAX, &name) != 0 ||
	    api_opt_string(c, body, "description", CONFIG_TEXT_MAX, &desc) != 0)
		goto out;
	if (name == NULL || !config_name_valid(name)) {
		api_problem_field(c->resp, "name",
				  "a name is [a-z0-9][a-z0-9._-]{0,62}");
		goto out;
	}
	if (api_idem_begin(c, &rec, 201) != 0)
		goto out;
	if (secret_uuid_v4(p.id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.description = (char *)(uintptr_t)(desc ? desc : "");
	p.created_by = c->actor;
	p.created_at = api_now();
	p.updated_at = p.created_at;
	doc = profile_json(&p, NULL);
	if (doc == NULL ||
	    (rec.key != NULL &&
	     (rec.body = json_dumps(doc, JSON_COMPACT)) == NULL)) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	rc = store_config_profile_create(c->ctx->store, &p, c->actor,
					 rec.key != NULL ? &rec : NULL);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/profiles/%s", p.name);
	api_json(c->resp, 201, doc);
	doc = NULL;
	set_etag_int(c, 0);
out:
	free(rec.body);
	json_decref(body);
	json_decref(doc);
}

static void
profile_list(struct api_call *c)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct config_profile *items = NULL;
	struct page page;
	json_t *arr;
	size_t i, n = 0;
	enum config_rc rc;

	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = store_config_profile_list(c->ctx->store, &page, &items, &n, next);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		json_t *doc = profile_json(&items[i], NULL);

		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	config_profiles_free(items, n);
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_list(c, arr, next);
}

static void
profile_show(struct api_call *c, const char *name)
{
	struct config_profile p;
	struct config_version v;
	enum config_rc rc;
	json_t *doc;

	memset(&p, 0, sizeof(p));
	memset(&v, 0, sizeof(v));
	rc = store_config_profile_get(c->ctx->store, name, &p);
	if (rc == CONFIG_OK && p.latest_version > 0)
		rc = store_config_version_get(c->ctx->store, name,
					      p.latest_version, &v);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		goto out;
	}
	doc = profile_json(&p, p.latest_version > 0 ? &v : NULL);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	api_json(c->resp, 200, doc);
	set_etag_int(c, p.latest_version);
out:
	config_profile_clear(&p);
	config_version_clear(&v);
}

/* Reads and checks a configuration document into canonical form.
 * Answers 400/413 and returns -1. */
int
api_config_document(struct api_call *c, const json_t *doc, const char *field,
		    struct config_doc *out)
{
	char err[320];
	enum config_rc rc;

	if (doc == NULL) {
		api_problem_field(c->resp, field, "a JSON object is required");
		return -1;
	}
	rc = config_document_check(doc, err, sizeof(err));
	if (rc == CONFIG_OK)
		rc = config_canon(doc, out);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc,
				   rc == CONFIG_INVALID_DOC ? err : NULL);
		return -1;
	}
	return 0;
}

static void
profile_publish(struct api_call *c, const char *name)
{
	static const char *const fields[] = {"document", "note", NULL};
	char change_id[CONFIG_ID_LEN], failed[CONFIG_ID_LEN], detail[160];
	struct config_publish_result res;
	struct config_publish req;
	struct config_version v;
	struct config_doc doc;
	const char *note = NULL;
	json_t *body = NULL, *out = NULL, *change;
	int64_t if_match;
	enum config_rc rc;

	memset(&doc, 0, sizeof(doc));
	memset(&v, 0, sizeof(v));
	if (api_if_match(c, &if_match) != 0 || api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    api_opt_string(c, body, "note", CONFIG_TEXT_MAX, &note) != 0 ||
	    api_config_document(c, json_object_get(body, "document"),
				"document", &doc) != 0)
		goto out;
	if (secret_uuid_v4(change_id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.profile = name;
	req.if_match = if_match;
	req.doc = &doc;
	req.note = note;
	req.actor = c->actor;
	req.change_id = change_id;
	rc = store_config_publish(c->ctx->store, &req, &res, failed);
	if (rc != CONFIG_OK) {
		if (rc == CONFIG_TOO_LARGE && failed[0] != '\0')
			snprintf(detail, sizeof(detail),
				 "the effective configuration of device %s "
				 "would exceed 262144 bytes",
				 failed);
		else if (rc == CONFIG_PRECONDITION)
			snprintf(detail, sizeof(detail),
				 "If-Match is not the latest version: another "
				 "publish won; GET the profile again");
		else
			detail[0] = '\0';
		api_config_refused(c, rc, detail[0] ? detail : NULL);
		goto out;
	}
	v.version = res.version;
	v.doc = doc;
	v.note = (char *)(uintptr_t)(note ? note : "");
	v.created_by = c->actor;
	v.created_at = res.created_at;
	out = version_json(name, &v, true);
	memset(&v, 0, sizeof(v));
	change = res.change_id[0] != '\0'
			 ? json_pack("{s:s, s:I, s:I}", "change_id",
				     res.change_id, "followers",
				     (json_int_t)res.followers, "changed",
				     (json_int_t)res.changed)
			 : json_null();
	if (out == NULL || json_object_set_new(out, "change", change) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/profiles/%s/versions/%d", name, res.version);
	api_json(c->resp, 201, out);
	out = NULL;
	set_etag_int(c, res.version);
out:
	config_doc_clear(&doc);
	json_decref(body);
	json_decref(out);
}

static void
version_list(struct api_call *c, const char *name)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct config_version *items = NULL;
	struct page page;
	json_t *arr;
	size_t i, n = 0;
	enum config_rc rc;

	if (api_page_parse(c, PAGE_CURSOR_ID, &page, after) != 0)
		return;
	rc = store_config_version_list(c->ctx->store, name, &page, &items, &n,
				       next);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		json_t *doc = version_json(name, &items[i], false);

		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	config_versions_free(items, n);
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_list(c, arr, next);
}

/* "1".."2147483647" in canonical decimal, else 0. */
static int
version_number(const char *s)
{
	long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 10 || s[0] == '0')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v <= CONFIG_VERSION_MAX ? (int)v : 0;
}

static void
version_show(struct api_call *c, const char *name, const char *num)
{
	struct config_version v;
	enum config_rc rc;
	int n = version_number(num);
	json_t *doc;

	memset(&v, 0, sizeof(v));
	if (n == 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	rc = store_config_version_get(c->ctx->store, name, n, &v);
	if (rc == CONFIG_VERSION_UNKNOWN)
		rc = CONFIG_NOTFOUND;
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		return;
	}
	doc = version_json(name, &v, true);
	config_version_clear(&v);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
	set_etag_int(c, n);
}

void
api_profiles(struct api_call *c, const char *rest)
{
	const char *m = c->req->method, *seg, *slash;
	char name[CONFIG_NAME_MAX + 1];
	size_t n;

	if (rest[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			profile_list(c);
		else if (strcmp(m, "POST") == 0)
			profile_create(c);
		else
			api_method_not_allowed(c->resp, "GET, POST");
		return;
	}
	seg = rest + 1;
	slash = strchr(seg, '/');
	n = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
	if (n == 0 || n > CONFIG_NAME_MAX) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	memcpy(name, seg, n);
	name[n] = '\0';
	if (!config_name_valid(name)) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	rest = seg + n;
	if (rest[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			profile_show(c, name);
		else
			api_method_not_allowed(c->resp, "GET");
	} else if (strcmp(rest, "/versions") == 0) {
		if (strcmp(m, "GET") == 0)
			version_list(c, name);
		else if (strcmp(m, "POST") == 0)
			profile_publish(c, name);
		else
			api_method_not_allowed(c->resp, "GET, POST");
	} else if (strncmp(rest, "/versions/", 10) == 0 &&
		   strchr(rest + 10, '/') == NULL) {
		if (strcmp(m, "GET") == 0)
			version_show(c, name, rest + 10);
		else
			api_method_not_allowed(c->resp, "GET");
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
	}
}
