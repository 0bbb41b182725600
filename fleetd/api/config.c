/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device configuration and fleet-wide configuration changes (docs/api.md,
 * "Device configuration", "Clone", "Changes and drift"):
 * GET/PUT /api/v1/devices/{id}/config (desired, reported, their
 * difference; ETag/If-Match), POST /api/v1/config/clone (dry run,
 * Idempotency-Key), GET /api/v1/config/changes/{id} and
 * GET /api/v1/config/drift. JSON in, core rules (core/config.h) and the
 * store port (core/store_config.h), JSON out. Runs on job threads; every
 * body, selector and id is untrusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/config_int.h"
#include "core/config.h"
#include "core/device.h"
#include "core/selector.h"
#include "core/store_config.h"

static json_t *
opt_str(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* "version": n, "latest", or null without a profile. */
static json_t *
version_value(const char *profile, int pinned)
{
	if (profile == NULL || profile[0] == '\0')
		return json_null();
	return pinned > 0 ? json_integer(pinned) : json_string("latest");
}

static const char *
state_reason(const struct device_config *dc, enum config_state st)
{
	switch (st) {
	case CONFIG_STATE_FAILED:
		return dc->reported_reason ? dc->reported_reason
					   : "the device failed to apply it";
	case CONFIG_STATE_DRIFTED:
		return dc->reported_reason
			       ? dc->reported_reason
			       : "the device reported another document";
	case CONFIG_STATE_PENDING:
		return "not yet applied by the device";
	case CONFIG_STATE_OFFLINE:
		return "the device is offline";
	case CONFIG_STATE_NONE:
	case CONFIG_STATE_IN_SYNC:
		break;
	}
	return NULL;
}

static json_t *
reported_json(const struct device_config *dc)
{
	if (dc->reported_status == CONFIG_REPORTED_NONE)
		return json_null();
	return json_pack("{s:I, s:o, s:s, s:o, s:o}", "generation",
			 (json_int_t)dc->reported_generation, "sha256",
			 opt_str(dc->reported_sha256), "status",
			 config_reported_name(dc->reported_status), "reason",
			 opt_str(dc->reported_reason), "reported_at",
			 api_time(dc->reported_at));
}

/* The device config document of docs/api.md; with_doc adds the desired
 * document (not in drift lists). NULL when out of memory. */
static json_t *
device_config_json(const struct device_config *dc, long hb, bool drift_item)
{
	enum config_state st = device_config_state(dc, hb);
	bool online = device_online(dc->session_age_us, hb);
	json_t *desired, *diff, *doc;

	if (dc->desired.sha256[0] == '\0')
		desired = json_null();
	else if (drift_item)
		desired = json_pack("{s:I, s:s}", "generation",
				    (json_int_t)dc->desired_generation,
				    "sha256", dc->desired.sha256);
	else
		desired = json_pack("{s:I, s:s, s:o, s:o, s:o}", "generation",
				    (json_int_t)dc->desired_generation,
				    "sha256", dc->desired.sha256, "document",
				    api_config_text_json(dc->desired.text),
				    "change_id", opt_str(dc->desired_change_id),
				    "updated_at", api_time(dc->desired_at));
	if (drift_item)
		return json_pack(
			"{s:s, s:s, s:o, s:b, s:o, s:o, s:o}", "device_id",
			dc->device_id, "state", config_state_name(st), "reason",
			opt_str(state_reason(dc, st)), "online", online,
			"profile", opt_str(dc->profile), "desired", desired,
			"reported", reported_json(dc));
	if (st == CONFIG_STATE_NONE || st == CONFIG_STATE_IN_SYNC)
		diff = json_null();
	else
		diff = json_pack("{s:s, s:o, s:I, s:o, s:o}", "desired_sha256",
				 dc->desired.sha256, "reported_sha256",
				 opt_str(dc->reported_sha256),
				 "desired_generation",
				 (json_int_t)dc->desired_generation,
				 "reported_generation",
				 dc->reported_status != CONFIG_REPORTED_NONE
					 ? json_integer(dc->reported_generation)
					 : json_null(),
				 "reason", opt_str(state_reason(dc, st)));
	doc = json_pack(
		"{s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:b, s:s, s:o}",
		"device_id", dc->device_id, "profile", opt_str(dc->profile),
		"version", version_value(dc->profile, dc->pinned_version),
		"resolved_version",
		dc->profile[0] != '\0' && dc->version > 0
			? json_integer(dc->version)
			: json_null(),
		"overrides", api_config_text_json(dc->overrides), "revision",
		(json_int_t)dc->revision, "desired", desired, "reported",
		reported_json(dc), "online", online, "state",
		config_state_name(st), "difference", diff);
	return doc;
}

static void
device_config_send(struct api_call *c, const struct device_config *dc,
		   const char *change_id)
{
	json_t *doc =
		device_config_json(dc, c->ctx->env->heartbeat_timeout_s, false);

	if (doc != NULL && change_id != NULL &&
	    json_object_set_new(doc, "change_id", json_string(change_id)) !=
		    0) {
		json_decref(doc);
		doc = NULL;
	}
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
	snprintf(c->resp->etag, sizeof(c->resp->etag), "%" PRId64,
		 dc->revision);
}

static void
device_config_get(struct api_call *c, const char *id)
{
	struct device_config dc;
	enum config_rc rc;

	memset(&dc, 0, sizeof(dc));
	rc = store_config_device_get(c->ctx->store, id, &dc);
	if (rc != CONFIG_OK)
		api_config_refused(c, rc, NULL);
	else
		device_config_send(c, &dc, NULL);
	device_config_clear(&dc);
}

/* "version": a positive integer or "latest" (0). Answers 400. */
static int
read_version(struct api_call *c, const json_t *v, const char *field, int *out)
{
	if (v == NULL || (json_is_string(v) &&
			  strcmp(json_string_value(v), "latest") == 0)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= CONFIG_VERSION_MAX) {
		*out = (int)json_integer_value(v);
		return 0;
	}
	api_problem_field(c->resp, field,
			  "a version is a positive integer or \"latest\"");
	return -1;
}

/* "profile": a valid name or null/absent (*out NULL). Answers 400. */
static int
read_profile_name(struct api_call *c, const json_t *v, const char *field,
		  const char **out)
{
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || !config_name_valid(json_string_value(v))) {
		api_problem_field(
			c->resp, field,
			"a profile name is [a-z0-9][a-z0-9._-]{0,62}");
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/*
 * PUT replaces the assignment; PATCH (RFC 7386 on the assignment's
 * top-level members) replaces the members it names and keeps the others,
 * "overrides" as a whole. cur is the stored state for PATCH, else NULL.
 */
static void device_config_write(struct api_call *c, const char *id,
				const struct device_config *cur,
				const json_t *body, int64_t if_match);

static void
device_config_put(struct api_call *c, const char *id)
{
	json_t *body = NULL;
	int64_t if_match;

	if (api_if_match(c, &if_match) != 0 || api_body_object(c, &body) != 0)
		return;
	device_config_write(c, id, NULL, body, if_match);
	json_decref(body);
}

/* Without If-Match a PATCH is re-applied when a concurrent write wins
 * (as label patches are: core/device.h). */
#define CONFIG_PATCH_RETRIES 16

static void
device_config_patch(struct api_call *c, const char *id)
{
	struct device_config cur;
	json_t *body = NULL;
	int64_t if_match;
	enum config_rc rc;
	int i;

	if (api_if_match(c, &if_match) != 0 || api_body_object(c, &body) != 0)
		return;
	for (i = 0; i < CONFIG_PATCH_RETRIES; i++) {
		memset(&cur, 0, sizeof(cur));
		rc = store_config_device_get(c->ctx->store, id, &cur);
		if (rc != CONFIG_OK) {
			api_config_refused(c, rc, NULL);
			break;
		}
		if (if_match >= 0 && cur.revision != if_match) {
			api_config_refused(c, CONFIG_PRECONDITION, NULL);
			device_config_clear(&cur);
			break;
		}
		api_response_free(c->resp);
		c->resp->status = 0;
		device_config_write(c, id, &cur, body, cur.revision);
		device_config_clear(&cur);
		/* Retry only a lost race of a PATCH without If-Match. */
		if (if_match >= 0 || c->resp->status != 412)
			break;
	}
	json_decref(body);
}

static void
device_config_write(struct api_call *c, const char *id,
		    const struct device_config *cur, const json_t *body,
		    int64_t if_match)
{
	static const char *const fields[] = {"profile", "version", "overrides",
					     NULL};
	char change_id[CONFIG_ID_LEN], err[200];
	struct config_doc ov;
	struct device_config dc;
	struct config_set req;
	const char *profile = NULL, *overrides = NULL;
	const json_t *p = json_object_get(body, "profile");
	const json_t *v = json_object_get(body, "version");
	json_t *o = json_object_get(body, "overrides");
	int version = 0;
	enum config_rc rc;

	memset(&ov, 0, sizeof(ov));
	memset(&dc, 0, sizeof(dc));
	if (api_only_fields(c, body, fields) != 0 ||
	    read_profile_name(c, p, "profile", &profile) != 0 ||
	    read_version(c, v, "version", &version) != 0)
		goto out;
	/* PATCH: what the body does not name stays as it is. */
	if (cur != NULL && p == NULL) {
		profile = cur->profile[0] != '\0' ? cur->profile : NULL;
		if (v == NULL)
			version = cur->pinned_version;
	}
	if (cur != NULL && o == NULL)
		overrides = cur->overrides;
	if (profile == NULL && v != NULL && !json_is_null(v)) {
		api_problem_field(c->resp, "version",
				  "a version needs a profile");
		goto out;
	}
	if (o != NULL && !json_is_null(o)) {
		rc = config_patch_check(o, err, sizeof(err));
		if (rc == CONFIG_OK)
			rc = config_canon(o, &ov);
		if (rc != CONFIG_OK) {
			api_config_refused(
				c, rc, rc == CONFIG_INVALID_PATCH ? err : NULL);
			goto out;
		}
		overrides = ov.text;
	}
	if (secret_uuid_v4(change_id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.device_id = id;
	req.if_match = if_match;
	req.profile = profile;
	req.version = version;
	req.overrides = overrides;
	req.actor = c->actor;
	req.change_id = change_id;
	rc = store_config_device_set(c->ctx->store, &req, &dc);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc,
				   rc == CONFIG_TOO_LARGE
					   ? "the effective configuration "
					     "would exceed 262144 bytes"
					   : NULL);
		goto out;
	}
	device_config_send(c, &dc, change_id);
out:
	device_config_clear(&dc);
	config_doc_clear(&ov);
}

void
api_device_config(struct api_call *c, const char *id, const char *tail)
{
	if (tail[0] != '\0')
		api_problem(c->resp, 404, "not-found", NULL);
	else if (strcmp(c->req->method, "GET") == 0)
		device_config_get(c, id);
	else if (strcmp(c->req->method, "PUT") == 0)
		device_config_put(c, id);
	else if (strcmp(c->req->method, "PATCH") == 0)
		device_config_patch(c, id);
	else
		api_method_not_allowed(c->resp, "GET, PUT, PATCH");
}

/* The "source" member of a clone. Answers 400. */
static int
read_source(struct api_call *c, const json_t *src, struct config_clone *req)
{
	static const char *const dev_fields[] = {"device", NULL};
	static const char *const prof_fields[] = {"profile", "version", NULL};
	const json_t *dev = json_object_get(src, "device");
	const char *profile = NULL;

	if (!json_is_object(src)) {
		api_problem_field(c->resp, "source",
				  "{\"device\": id} or {\"profile\": name, "
				  "\"version\": n | \"latest\"}");
		return -1;
	}
	if (dev != NULL) {
		if (api_only_fields(c, src, dev_fields) != 0)
			return -1;
		if (!json_is_string(dev) ||
		    !secret_is_uuid(json_string_value(dev))) {
			api_problem_field(c->resp, "source.device",
					  "a device id (uuid)");
			return -1;
		}
		req->source_device = json_string_value(dev);
		return 0;
	}
	if (api_only_fields(c, src, prof_fields) != 0 ||
	    read_profile_name(c, json_object_get(src, "profile"),
			      "source.profile", &profile) != 0 ||
	    read_version(c, json_object_get(src, "version"), "source.version",
			 &req->source_version) != 0)
		return -1;
	if (profile == NULL) {
		api_problem_field(c->resp, "source",
				  "a source is a device or a profile");
		return -1;
	}
	req->source_profile = profile;
	return 0;
}

static void
config_clone(struct api_call *c)
{
	static const char *const fields[] = {"source", "selector", "mode",
					     "dry_run", NULL};
	char change_id[CONFIG_ID_LEN], err[200], detail[160];
	struct config_clone_result res;
	struct config_clone req;
	struct idem_record rec;
	struct selector *sel = NULL;
	const char *selector = NULL, *mode = NULL;
	json_t *body = NULL, *dry, *doc = NULL;
	enum config_rc rc;
	char *text = NULL;

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	memset(&rec, 0, sizeof(rec));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    read_source(c, json_object_get(body, "source"), &req) != 0 ||
	    api_opt_string(c, body, "selector", SELECTOR_MAX_LEN, &selector) !=
		    0 ||
	    api_opt_string(c, body, "mode", 16, &mode) != 0)
		goto out;
	if (selector == NULL) {
		api_problem_field(c->resp, "selector",
				  "a selector of the target devices is "
				  "required (\"\" matches every device)");
		goto out;
	}
	if (selector_parse(selector, &sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		goto out;
	}
	if (mode == NULL || strcmp(mode, "assign") == 0) {
		req.mode = CONFIG_CLONE_ASSIGN;
	} else if (strcmp(mode, "copy") == 0) {
		req.mode = CONFIG_CLONE_COPY;
	} else {
		api_problem_field(c->resp, "mode", "\"assign\" or \"copy\"");
		goto out;
	}
	dry = json_object_get(body, "dry_run");
	if (dry != NULL && !json_is_boolean(dry)) {
		api_problem_field(c->resp, "dry_run", "true or false");
		goto out;
	}
	req.dry_run = dry != NULL && json_is_true(dry);
	/* A dry run writes nothing, not even an idempotency record. */
	if (!req.dry_run && api_idem_begin(c, &rec, 201) != 0)
		goto out;
	if (secret_uuid_v4(change_id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	req.selector = sel;
	req.selector_text = selector;
	req.heartbeat_timeout_s = c->ctx->env->heartbeat_timeout_s;
	req.actor = c->actor;
	req.change_id = change_id;
	req.idem = rec.key != NULL ? &rec : NULL;
	rc = store_config_clone(c->ctx->store, &req, &res);
	if (rc != CONFIG_OK) {
		detail[0] = '\0';
		if (rc == CONFIG_TOO_LARGE && res.failed_device[0] != '\0')
			snprintf(detail, sizeof(detail),
				 "the effective configuration of device %s "
				 "would exceed 262144 bytes",
				 res.failed_device);
		else if (rc == CONFIG_SOURCE_EMPTY &&
			 req.mode == CONFIG_CLONE_ASSIGN)
			snprintf(detail, sizeof(detail),
				 "the source device has no profile to assign; "
				 "mode \"copy\" copies its document");
		else if (rc == CONFIG_NOTFOUND)
			snprintf(detail, sizeof(detail),
				 "no such source device");
		api_config_refused(c, rc, detail[0] ? detail : NULL);
		goto out;
	}
	text = config_clone_answer(&res);
	doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (!req.dry_run)
		snprintf(c->resp->location, sizeof(c->resp->location),
			 "/api/v1/config/changes/%s", res.change_id);
	api_json(c->resp, req.dry_run ? 200 : 201, doc);
	doc = NULL;
out:
	free(text);
	free(rec.body);
	json_decref(doc);
	json_decref(body);
	selector_free(sel);
	config_clone_result_clear(&res);
}

static void
config_change_show(struct api_call *c, const char *id)
{
	struct config_change ch;
	json_t *doc = NULL, *fails = NULL, *src;
	enum config_rc rc;
	size_t i;

	rc = store_config_change_get(c->ctx->store, id,
				     c->ctx->env->heartbeat_timeout_s, &ch);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		return;
	}
	fails = json_array();
	for (i = 0; fails != NULL && i < ch.nfailures; i++) {
		if (json_array_append_new(
			    fails,
			    json_pack("{s:s, s:o, s:o}", "device_id",
				      ch.failures[i].device_id, "reason",
				      opt_str(ch.failures[i].reason),
				      "reported_at",
				      api_time(ch.failures[i].reported_at))) !=
		    0) {
			json_decref(fails);
			fails = NULL;
		}
	}
	src = api_config_text_json(ch.source_json);
	if (fails != NULL)
		doc = json_pack(
			"{s:s, s:s, s:s, s:o, s:o, s:o, s:{s:I, s:I, s:I, "
			"s:I, s:I, s:I, s:I}, s:o, s:b}",
			"id", ch.id, "kind", ch.kind, "actor",
			ch.actor ? ch.actor : "", "source", src, "selector",
			opt_str(ch.selector), "created_at",
			api_time(ch.created_at), "counts", "matched",
			(json_int_t)ch.matched, "changed",
			(json_int_t)ch.changed, "applied",
			(json_int_t)ch.applied, "failed", (json_int_t)ch.failed,
			"pending", (json_int_t)ch.pending, "offline",
			(json_int_t)ch.offline, "superseded",
			(json_int_t)ch.superseded, "failures", fails,
			"failures_truncated", ch.failed > ch.nfailures);
	else
		json_decref(src);
	config_change_clear(&ch);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
}

static void
config_drift(struct api_call *c)
{
	char text[SELECTOR_MAX_LEN + 1], err[200];
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct device_config *items = NULL;
	struct selector *sel = NULL;
	struct page page;
	json_t *arr;
	size_t i, n = 0;
	enum config_rc rc;
	int q;

	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	q = api_query_param(c->req->query, "selector", text, sizeof(text));
	if (q < 0) {
		api_problem_field(c->resp, "selector",
				  "selector longer than 4096 bytes or badly "
				  "encoded");
		return;
	}
	if (q == 0)
		text[0] = '\0';
	if (selector_parse(text, &sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		return;
	}
	rc = store_config_drift_list(c->ctx->store, sel,
				     c->ctx->env->heartbeat_timeout_s, &page,
				     &items, &n, next);
	selector_free(sel);
	if (rc != CONFIG_OK) {
		api_config_refused(c, rc, NULL);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		json_t *doc = device_config_json(
			&items[i], c->ctx->env->heartbeat_timeout_s, true);

		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	device_configs_free(items, n);
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_list(c, arr, next);
}

void
api_config(struct api_call *c, const char *rest)
{
	const char *m = c->req->method, *tail = NULL;
	char id[SECRET_UUID_LEN];

	if (strcmp(rest, "/clone") == 0) {
		if (strcmp(m, "POST") == 0)
			config_clone(c);
		else
			api_method_not_allowed(c->resp, "POST");
	} else if (strcmp(rest, "/drift") == 0) {
		if (strcmp(m, "GET") == 0)
			config_drift(c);
		else
			api_method_not_allowed(c->resp, "GET");
	} else if (strncmp(rest, "/changes", 8) == 0 &&
		   api_path_id(rest + 8, id, &tail) == 0 && tail[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			config_change_show(c, id);
		else
			api_method_not_allowed(c->resp, "GET");
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
	}
}
