/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/devices: list with selectors (sorted, with a total exact up to
 * 1,000 unless the exact count is asked for), read with
 * ETag, label merge patch with If-Match, decommission (revokes
 * certificates, closes the session, moves the CRL's revocation generation
 * on), and the same two changes in bulk on a selector (dry run first). A
 * device is named by its id or a unique prefix of it (8+ characters).
 * JSON in, core calls (core/device.h, core/selector.h) and the store
 * port, JSON out. Runs on job threads; query strings and bodies are
 * untrusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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
		"s:o, s:I, s:o, s:o, s:o}",
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
		(json_int_t)d->revision, "certificate", cert_json(&d->cert),
		"address", opt_string(d->address), "keyset_version",
		d->keyset_version > 0 ? json_integer(d->keyset_version)
				      : json_null());
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

/* 404 naming what was not found. */
static void
device_not_found(struct api_call *c, const char *ref)
{
	char detail[128];

	snprintf(detail, sizeof(detail), "no device %.40s", ref);
	api_problem(c->resp, 404, "not-found", detail);
}

/* The answer for a device_rc other than DEVICE_OK. */
static void
device_refused(struct api_call *c, enum device_rc rc, const char *id,
	       const char *conflict)
{
	switch (rc) {
	case DEVICE_NOTFOUND:
	case DEVICE_BAD_REF:
		device_not_found(c, id);
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
	case DEVICE_AMBIGUOUS:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

/*
 * ?sort=: a key of device_sort_parse into *sort and the name of the list
 * its cursors are sealed for ("/api/v1/devices?sort=-last_seen"), so a
 * cursor of one order is refused by another. 0, or -1 answered 400.
 */
static int
sort_read(struct api_call *c, struct device_sort *sort, char *list,
	  size_t listlen)
{
	char text[32];
	int rc = api_query_param(c->req->query, "sort", text, sizeof(text));

	memset(sort, 0, sizeof(*sort));
	if (rc == 0)
		snprintf(text, sizeof(text), "created");
	if (rc < 0 || device_sort_parse(text, sort) != 0) {
		api_problem_field(c->resp, "sort",
				  "sort by created, last_seen or cert_expiry, "
				  "with a leading - for newest first");
		return -1;
	}
	snprintf(list, listlen, "%s?sort=%s", c->req->path, text);
	return 0;
}

/* ?limit and ?cursor of the devices list (sealed for list). */
static int
devices_page_read(struct api_call *c, const char *list, struct page *page,
		  char after[PAGE_CURSOR_MAX])
{
	unsigned char key[PAGE_KEY_LEN];
	const char *field = NULL;
	char probe[2];
	int rc;

	memset(key, 0, sizeof(key));
	if (api_query_param(c->req->query, "cursor", probe, sizeof(probe)) !=
		    0 &&
	    page_key(c->ctx->store, key) != 0) {
		api_store_failed(c);
		return -1;
	}
	rc = api_page_read(c->req->query, list, key, PAGE_CURSOR_TIME_ID, page,
			   after, &field);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == 0)
		return 0;
	if (strcmp(field, "limit") == 0)
		api_problem_field(c->resp, "limit", "limit must be 1..1000");
	else
		api_problem_field(c->resp, "cursor",
				  "not a cursor of this list (and sort)");
	return -1;
}

/*
 * The default bound of a list's total. Counting every match costs the
 * whole match set (0.1 to 2 s over a million devices, however small the
 * page); counting up to 1,000 costs a few milliseconds, and a person
 * paging 50 at a time reads "1,000+" as well as "734,211" (GitLab caps
 * its counts the same way). ?total=exact asks for the exact count when
 * the caller accepts its cost (docs/internals/device-list.md).
 */
#define DEVICES_TOTAL_CAP 1000

/*
 * ?total=: "capped" (the default) or "exact" into *cap (0 for exact, the
 * bound otherwise, as store_device_list takes it). 0, or -1 answered 400.
 */
static int
total_read(struct api_call *c, int64_t *cap)
{
	char text[16];
	int rc = api_query_param(c->req->query, "total", text, sizeof(text));

	*cap = DEVICES_TOTAL_CAP;
	if (rc == 0 || (rc > 0 && strcmp(text, "capped") == 0))
		return 0;
	if (rc > 0 && strcmp(text, "exact") == 0) {
		*cap = 0;
		return 0;
	}
	api_problem_field(c->resp, "total",
			  "total is capped (the default: counted up to "
			  "1000) or exact");
	return -1;
}

/*
 * 200 {"items", "next_cursor" (sealed for list), "total", "total_exact"};
 * steals items. counted is what the store counted under cap: more than
 * cap means "more than cap match", answered as total = cap, not exact.
 */
static void
devices_list_send(struct api_call *c, const char *list, json_t *items,
		  const char *next, int64_t counted, int64_t cap)
{
	bool exact = cap <= 0 || counted <= cap;
	int64_t total = exact ? counted : cap;
	unsigned char key[PAGE_KEY_LEN];
	char enc[PAGE_SEALED_MAX] = "";
	int failed = 0;

	if (next[0] != '\0') {
		if (page_key(c->ctx->store, key) != 0) {
			json_decref(items);
			api_store_failed(c);
			return;
		}
		failed = page_cursor_seal(key, list, next, enc, sizeof(enc));
		OPENSSL_cleanse(key, sizeof(key));
	}
	if (failed) {
		json_decref(items);
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200,
		 json_pack("{s:o, s:o, s:I, s:b}", "items", items,
			   "next_cursor",
			   enc[0] ? json_string(enc) : json_null(), "total",
			   (json_int_t)total, "total_exact", exact));
}

/* True if s is well-formed UTF-8 (no overlong forms, no surrogates). */
static bool
utf8_valid(const unsigned char *s)
{
	while (*s != '\0') {
		size_t n, i;
		unsigned long cp;

		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0) {
			n = 1;
			cp = *s & 0x1f;
		} else if ((*s & 0xf0) == 0xe0) {
			n = 2;
			cp = *s & 0x0f;
		} else if ((*s & 0xf8) == 0xf0) {
			n = 3;
			cp = *s & 0x07;
		} else {
			return false;
		}
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/*
 * ?selector= and ?online= into *sel. Without a status term, only active
 * devices are listed: a decommissioned device is not "offline" unless
 * asked for (status=decommissioned, or status in (active,decommissioned)).
 * 0, or -1 answered 400 (or 500).
 */
static int
list_selector(struct api_call *c, struct selector **sel)
{
	char text[SELECTOR_MAX_LEN + 1], err[200];
	int online = -1, rc;

	*sel = NULL;
	rc = api_query_param(c->req->query, "online", text, sizeof(text));
	if (rc != 0) {
		if (rc > 0 && strcmp(text, "true") == 0) {
			online = 1;
		} else if (rc > 0 && strcmp(text, "false") == 0) {
			online = 0;
		} else {
			api_problem_field(c->resp, "online",
					  "online is true or false");
			return -1;
		}
	}
	/* Up to SELECTOR_MAX_LEN (4096) bytes after percent-decoding. */
	rc = api_query_param(c->req->query, "selector", text, sizeof(text));
	if (rc < 0) {
		api_problem_field(c->resp, "selector",
				  "selector longer than 4096 bytes or badly "
				  "encoded");
		return -1;
	}
	if (rc == 0)
		text[0] = '\0';
	/* Label values are stored as JSON strings: UTF-8 only. */
	if (!utf8_valid((const unsigned char *)text)) {
		api_problem_field(c->resp, "selector",
				  "selector is not valid UTF-8");
		return -1;
	}
	if (selector_parse(text, sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		return -1;
	}
	if ((online >= 0 && selector_and_online(*sel, online == 1) != 0) ||
	    (!selector_has_key(*sel, "status") &&
	     selector_and_eq(*sel, "status", "active") != 0)) {
		api_problem(c->resp, 500, "internal-error", NULL);
		selector_free(*sel);
		*sel = NULL;
		return -1;
	}
	return 0;
}

static void
devices_list(struct api_call *c)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX], list[96];
	struct selector *sel = NULL;
	struct device *items = NULL;
	struct device_sort sort;
	struct page page;
	json_t *arr = NULL, *doc;
	size_t i, n = 0;
	int64_t cap = 0, total = 0;

	if (sort_read(c, &sort, list, sizeof(list)) != 0 ||
	    devices_page_read(c, list, &page, after) != 0 ||
	    total_read(c, &cap) != 0 || list_selector(c, &sel) != 0)
		return;
	if (store_device_list(c->ctx->store, sel,
			      c->ctx->env->heartbeat_timeout_s, &sort, &page,
			      &items, &n, next, cap, &total) != STORE_OK) {
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
	devices_list_send(c, list, arr, next, total, cap);
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
		device_not_found(c, id);
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
		device_refused(c, rc, id, "the device is decommissioned");
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
		device_refused(c, rc, id,
			       "the device is already decommissioned");
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

/* 409 ambiguous-id listing the devices the prefix may mean. */
static void
device_ambiguous(struct api_call *c, const char *ref,
		 const struct device_candidates *cands)
{
	char detail[160];
	json_t *doc = NULL, *list = json_array();
	size_t i;

	snprintf(detail, sizeof(detail),
		 "%.40s names %s%zu devices; give more of the id", ref,
		 cands->more ? "more than " : "", cands->n);
	api_problem(c->resp, 409, "ambiguous-id", detail);
	if (c->resp->body != NULL)
		doc = json_loads(c->resp->body, 0, NULL);
	for (i = 0; list != NULL && i < cands->n; i++)
		json_array_append_new(list, json_string(cands->ids[i]));
	if (doc == NULL || list == NULL ||
	    json_object_set_new(doc, "title", json_string("Ambiguous id")) !=
		    0 ||
	    json_object_set(doc, "candidates", list) != 0) {
		json_decref(doc);
		json_decref(list);
		return; /* the problem without the list */
	}
	json_decref(list);
	api_json(c->resp, 409, doc);
	c->resp->content_type = "application/problem+json";
}

/* ---- bulk actions: POST /api/v1/devices/bulk-label, bulk-decommission */

/* The answer: what matched (or would), a sample, and for a decommission
 * the certificates revoked. */
static void
bulk_send(struct api_call *c, const char *selector, bool dry_run,
	  const struct device_bulk_result *r, bool decommission)
{
	json_t *sample = json_array(), *doc;
	size_t i;

	for (i = 0; sample != NULL && i < r->nsample; i++)
		json_array_append_new(sample, json_string(r->sample[i]));
	doc = json_pack("{s:b, s:s, s:I, s:o}", "dry_run", dry_run, "selector",
			selector, "matched", (json_int_t)r->matched, "sample",
			sample ? sample : json_array());
	if (doc != NULL && decommission && !dry_run)
		json_object_set_new(doc, "revoked_certificates",
				    json_integer((json_int_t)r->revoked));
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
}

/*
 * The members every bulk body has: "selector" (required, not empty: a
 * bulk action on every device is said with a selector such as "id"),
 * "dry_run" (boolean, default false). 0, or -1 answered 400.
 */
static int
bulk_common(struct api_call *c, const json_t *body, struct selector **sel,
	    const char **text, bool *dry_run)
{
	const json_t *v = json_object_get(body, "dry_run");
	char err[200];

	*sel = NULL;
	if (api_opt_string(c, body, "selector", SELECTOR_MAX_LEN, text) != 0)
		return -1;
	if (*text == NULL || strspn(*text, " \t") == strlen(*text)) {
		api_problem_field(c->resp, "selector",
				  "a selector is required (\"id\" matches "
				  "every device)");
		return -1;
	}
	if (v != NULL && !json_is_boolean(v)) {
		api_problem_field(c->resp, "dry_run",
				  "dry_run is true or false");
		return -1;
	}
	*dry_run = json_is_true(v);
	if (selector_parse(*text, sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		return -1;
	}
	return 0;
}

static void
devices_bulk_label(struct api_call *c)
{
	static const char *const fields[] = {"selector", "labels", "dry_run",
					     NULL};
	struct selector *sel = NULL;
	struct label_patch patch;
	struct device_bulk_result r;
	json_t *body = NULL, *labels;
	const char *text = NULL;
	char detail[160];
	bool dry_run = false;
	enum device_rc rc;

	memset(&patch, 0, sizeof(patch));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    bulk_common(c, body, &sel, &text, &dry_run) != 0)
		goto out;
	labels = json_object_get(body, "labels");
	if (labels == NULL || !json_is_object(labels) ||
	    json_object_size(labels) == 0) {
		api_problem_field(c->resp, "labels",
				  "nothing to change: labels maps keys to "
				  "strings (set) or null (remove)");
		goto out;
	}
	if (patch_read(c, labels, &patch) != 0)
		goto out;
	rc = device_bulk_label(c->ctx->store, text, sel,
			       c->ctx->env->heartbeat_timeout_s, &patch,
			       dry_run, c->actor, &r);
	if (rc == DEVICE_TOO_MANY_LABELS) {
		snprintf(detail, sizeof(detail),
			 "device %s would have more than 64 labels; nothing "
			 "was changed",
			 r.blocked);
		api_problem(c->resp, 409, "conflict", detail);
	} else if (rc != DEVICE_OK) {
		device_refused(c, rc, "", NULL);
	} else {
		bulk_send(c, text, dry_run, &r, false);
	}
out:
	selector_free(sel);
	label_patch_clear(&patch);
	json_decref(body);
}

static void
devices_bulk_decommission(struct api_call *c)
{
	static const char *const fields[] = {"selector", "dry_run", NULL};
	struct selector *sel = NULL;
	struct device_bulk_result r;
	json_t *body = NULL;
	const char *text = NULL;
	bool dry_run = false;
	enum device_rc rc;

	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    bulk_common(c, body, &sel, &text, &dry_run) != 0)
		goto out;
	rc = device_bulk_decommission(c->ctx->store, text, sel,
				      c->ctx->env->heartbeat_timeout_s, dry_run,
				      c->actor, &r);
	if (rc != DEVICE_OK)
		device_refused(c, rc, "", NULL);
	else
		bulk_send(c, text, dry_run, &r, true);
out:
	selector_free(sel);
	json_decref(body);
}

/* /bulk-label and /bulk-decommission: 1 when rest was one of them. */
static int
devices_bulk(struct api_call *c, const char *rest)
{
	void (*run)(struct api_call * c);

	if (strcmp(rest, "/bulk-label") == 0)
		run = devices_bulk_label;
	else if (strcmp(rest, "/bulk-decommission") == 0)
		run = devices_bulk_decommission;
	else
		return 0;
	if (strcmp(c->req->method, "POST") == 0)
		run(c);
	else
		api_method_not_allowed(c->resp, "POST");
	return 1;
}

void
api_devices(struct api_call *c, const char *rest)
{
	const char *m = c->req->method, *tail;
	char ref[64], id[DEVICE_ID_LEN];
	struct device_candidates cands;
	size_t n;
	enum device_rc rc;

	if (rest[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			devices_list(c);
		else
			api_method_not_allowed(c->resp, "GET");
		return;
	}
	if (devices_bulk(c, rest))
		return;
	/* "/<id or prefix>[/<segment>...]" */
	tail = strchr(rest + 1, '/');
	n = tail != NULL ? (size_t)(tail - rest - 1) : strlen(rest + 1);
	if (tail == NULL)
		tail = "";
	if (n == 0 || n >= sizeof(ref)) {
		api_problem(c->resp, 404, "not-found",
			    "no device: give its id or a prefix of at least 8 "
			    "characters");
		return;
	}
	memcpy(ref, rest + 1, n);
	ref[n] = '\0';
	rc = device_resolve(c->ctx->store, ref, id, &cands);
	if (rc == DEVICE_AMBIGUOUS) {
		device_ambiguous(c, ref, &cands);
		return;
	}
	if (rc == DEVICE_BAD_REF) {
		api_problem(c->resp, 404, "not-found",
			    "no device: give its id or a prefix of at least 8 "
			    "characters");
		return;
	}
	if (rc != DEVICE_OK) {
		device_refused(c, rc, ref, NULL);
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
