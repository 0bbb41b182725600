/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/devices: list with selectors, read with ETag, label merge patch
 * with If-Match, decommission (revokes certificates, closes the session,
 * moves the CRL's revocation generation on). JSON in, core calls
 * (core/device.h, core/selector.h) and the store port, JSON out. Runs on
 * job threads; query strings and bodies are untrusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/device.h"
#include "core/selector.h"
#include "core/store_devices.h"

/* The certificate part of a device document; null when it has none. */
static json_t *
cert_json(const struct cert_info *cert)
{
	if (cert->serial[0] == '\0')
		return json_null();
	return json_pack("{s:s, s:o, s:o, s:s}", "serial", cert->serial,
			 "not_before", api_time(cert->not_before), "not_after",
			 api_time(cert->not_after), "status", cert->status);
}

static json_t *
opt_string(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
labels_json(const struct label_set *labels)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o != NULL && i < labels->n; i++)
		json_object_set_new(o, labels->items[i].key,
				    json_string(labels->items[i].value));
	return o;
}

/* The device document of docs/api.md. NULL when out of memory. */
static json_t *
device_json(const struct device *d, long heartbeat_timeout_s)
{
	json_t *inventory = NULL;

	if (d->inventory_json != NULL)
		inventory = json_loads(d->inventory_json, 0, NULL);
	return json_pack(
		"{s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
		"s:o, s:I, s:o}",
		"id", d->id, "status", d->active ? "active" : "decommissioned",
		"labels", labels_json(&d->labels), "online",
		device_online(d->session_age_us, heartbeat_timeout_s),
		"last_seen", api_time(d->last_seen), "connected_at",
		api_time(d->connected_at), "model", opt_string(d->model),
		"serial", opt_string(d->serial), "fw_version",
		opt_string(d->fw_version), "agent_version",
		opt_string(d->agent_version), "inventory",
		inventory != NULL ? inventory : json_object(), "created_at",
		api_time(d->created_at), "decommissioned_at",
		api_time(d->decommissioned_at), "revision",
		(json_int_t)d->revision, "certificate", cert_json(&d->cert));
}

/* 200 with the document and its ETag. */
static void
device_send(struct api_call *c, const struct device *d)
{
	json_t *doc = device_json(d, c->ctx->env->heartbeat_timeout_s);

	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
	snprintf(c->resp->etag, sizeof(c->resp->etag), "%" PRId64, d->revision);
}

/* The answer for a device_rc other than DEVICE_OK. */
static void
device_refused(struct api_call *c, enum device_rc rc, const char *conflict)
{
	switch (rc) {
	case DEVICE_NOTFOUND:
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	case DEVICE_PRECONDITION:
		api_problem(c->resp, 412, "precondition-failed",
			    "the device changed; GET it again");
		return;
	case DEVICE_CONFLICT:
		api_problem(c->resp, 409, "conflict", conflict);
		return;
	case DEVICE_TOO_MANY_LABELS:
		api_problem_field(c->resp, "labels",
				  "a device has at most 64 labels");
		return;
	case DEVICE_ERR_STORE:
		api_store_failed(c);
		return;
	case DEVICE_OK:
	case DEVICE_ERR_NOMEM:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

static void
devices_list(struct api_call *c)
{
	char text[SELECTOR_MAX_LEN + 1], err[200];
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct selector *sel = NULL;
	struct device *items = NULL;
	struct page page;
	json_t *arr = NULL, *doc;
	size_t i, n = 0;
	int online = -1, rc;

	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = api_query_param(c->req->query, "online", text, sizeof(text));
	if (rc != 0) {
		if (rc > 0 && strcmp(text, "true") == 0) {
			online = 1;
		} else if (rc > 0 && strcmp(text, "false") == 0) {
			online = 0;
		} else {
			api_problem_field(c->resp, "online",
					  "online is true or false");
			return;
		}
	}
	/* Up to SELECTOR_MAX_LEN (4096) bytes after percent-decoding. */
	rc = api_query_param(c->req->query, "selector", text, sizeof(text));
	if (rc < 0) {
		api_problem_field(c->resp, "selector",
				  "selector longer than 4096 bytes or badly "
				  "encoded");
		return;
	}
	if (rc == 0)
		text[0] = '\0';
	if (selector_parse(text, &sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		return;
	}
	if (online >= 0 && selector_and_online(sel, online == 1) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (store_device_list(c->ctx->store, sel,
			      c->ctx->env->heartbeat_timeout_s, &page, &items,
			      &n, next) != STORE_OK) {
		api_store_failed(c);
		goto out;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		doc = device_json(&items[i], c->ctx->env->heartbeat_timeout_s);
		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	api_list(c, arr, next);
out:
	devices_free(items, n);
	selector_free(sel);
}

static void
device_show(struct api_call *c, const char *id)
{
	struct device d;
	enum store_rc rc;

	memset(&d, 0, sizeof(d));
	rc = store_device_get(c->ctx->store, id, &d);
	if (rc == STORE_OK)
		device_send(c, &d);
	else if (rc == STORE_NOTFOUND)
		api_problem(c->resp, 404, "not-found", NULL);
	else
		api_store_failed(c);
	device_clear(&d);
}

/* The "labels" member of a merge patch: strings set, nulls remove. */
static int
patch_read(struct api_call *c, const json_t *labels, struct label_patch *p)
{
	const char *key;
	json_t *v;

	if (api_labels_check(c, labels, "labels", true) != 0)
		return -1;
	json_object_foreach((json_t *)(uintptr_t)labels, key, v)
	{
		enum label_rc rc =
			json_is_null(v) ? label_patch_remove(p, key)
					: label_set_put(&p->set, key,
							json_string_value(v));

		if (rc != LABEL_OK) {
			api_problem_field(c->resp, "labels",
					  "labels must map keys to strings");
			return -1;
		}
	}
	return 0;
}

static void
devices_patch(struct api_call *c, const char *id)
{
	static const char *const fields[] = {"labels", NULL};
	struct label_patch patch;
	struct device d;
	json_t *body = NULL, *labels;
	int64_t if_match;
	enum device_rc rc;

	memset(&patch, 0, sizeof(patch));
	memset(&d, 0, sizeof(d));
	if (api_if_match(c, &if_match) != 0 || api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0)
		goto out;
	labels = json_object_get(body, "labels");
	if (labels == NULL) {
		api_problem_field(c->resp, "labels", "nothing to change");
		goto out;
	}
	if (patch_read(c, labels, &patch) != 0)
		goto out;
	rc = device_patch_labels(c->ctx->store, id, if_match, &patch, c->actor,
				 &d);
	if (rc != DEVICE_OK) {
		device_refused(c, rc, "the device is decommissioned");
		goto out;
	}
	device_send(c, &d);
out:
	device_clear(&d);
	label_patch_clear(&patch);
	json_decref(body);
}

static void
devices_decommission(struct api_call *c, const char *id)
{
	struct device d;
	int64_t if_match;
	enum device_rc rc;

	memset(&d, 0, sizeof(d));
	if (api_if_match(c, &if_match) != 0)
		return;
	rc = device_decommission(c->ctx->store, id, if_match, c->actor, &d);
	if (rc != DEVICE_OK) {
		device_refused(c, rc, "the device is already decommissioned");
		return;
	}
	device_send(c, &d);
	device_clear(&d);
}

/*
 * Per-device sub-resources: /api/v1/devices/{id}/<segment>[/...]. One line
 * per segment; the handler checks the method itself (405 with Allow) and
 * gets the device id as a full UUID (a prefix is already resolved; the
 * device may still not exist: answer 404 as device_show does) and tail,
 * the path after the segment ("" or "/..."). Other files add their lines
 * here (config, certificates, rotate) with the prototype in api_int.h.
 */
static void device_decommission_route(struct api_call *c, const char *id,
				      const char *tail);

static const struct {
	const char *segment;
	void (*handler)(struct api_call *c, const char *id, const char *tail);
} device_subresources[] = {
	{"decommission", device_decommission_route},
	{"certificates", api_device_certificates},
	{"rotate", api_device_rotate},
	{"config", api_device_config},
};

static void
device_decommission_route(struct api_call *c, const char *id, const char *tail)
{
	if (tail[0] != '\0')
		api_problem(c->resp, 404, "not-found", NULL);
	else if (strcmp(c->req->method, "POST") == 0)
		devices_decommission(c, id);
	else
		api_method_not_allowed(c->resp, "POST");
}

/* tail is "/<segment>[/...]": the handler of that segment, or 404. */
static void
device_subresource(struct api_call *c, const char *id, const char *tail)
{
	const char *seg = tail + 1, *end = strchr(seg, '/');
	size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg), i;

	for (i = 0;
	     i < sizeof(device_subresources) / sizeof(device_subresources[0]);
	     i++) {
		if (strlen(device_subresources[i].segment) == n &&
		    strncmp(device_subresources[i].segment, seg, n) == 0) {
			device_subresources[i].handler(c, id, seg + n);
			return;
		}
	}
	api_problem(c->resp, 404, "not-found", NULL);
}

void
api_devices(struct api_call *c, const char *rest)
{
	const char *m = c->req->method, *tail = NULL;
	char id[SECRET_UUID_LEN];

	if (rest[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			devices_list(c);
		else
			api_method_not_allowed(c->resp, "GET");
		return;
	}
	if (api_path_id(rest, id, &tail) != 0 ||
	    (tail[0] != '\0' && tail[0] != '/')) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			device_show(c, id);
		else if (strcmp(m, "PATCH") == 0)
			devices_patch(c, id);
		else
			api_method_not_allowed(c->resp, "GET, PATCH");
	} else {
		device_subresource(c, id, tail);
	}
}
