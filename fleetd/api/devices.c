/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/devices: list with selectors, read with ETag, label merge patch
 * with If-Match, decommission (revokes certificates, closes the session
 * through NOTIFY, makes the CRL stale). Runs on job threads; query strings
 * and bodies are untrusted; selectors reach SQL as bound parameters only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/selector.h"
#include "db/audit.h"
#include "db/devices.h"

static const struct selector_columns device_columns = {
	.id = DB_DEVICE_COL_ID,
	.model = DB_DEVICE_COL_MODEL,
	.fw_version = DB_DEVICE_COL_FW_VERSION,
	.online = DB_DEVICE_COL_ONLINE,
	.labels = DB_DEVICE_COL_LABELS,
};

static void
devices_list(struct api_call *c)
{
	char text[SELECTOR_MAX_LEN + 1], err[200];
	char after[DB_CURSOR_MAX], next[DB_CURSOR_MAX];
	struct selector *sel = NULL;
	struct selector_sql q;
	struct db_page page;
	json_t *items = NULL;
	int online = -1, rc;

	memset(&q, 0, sizeof(q));
	if (api_page(c, false, &page, after) != 0)
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
	rc = api_query_param(c->req->query, "selector", text, sizeof(text));
	if (rc < 0) {
		api_problem_field(c->resp, "selector",
				  "selector too long or badly encoded");
		return;
	}
	if (rc == 0)
		text[0] = '\0';
	if (selector_parse(text, &sel, err, sizeof(err)) != 0 ||
	    selector_to_sql(sel, &device_columns, DB_DEVICE_FIRST_PARAM, &q,
			    err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
		goto out;
	}
	if (db_device_list(c->conn, c->ctx->env->heartbeat_timeout_s, q.where,
			   (const char *const *)q.params, (int)q.nparams,
			   online, &page, &items, next) != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	api_list(c, items, next);
out:
	selector_sql_free(&q);
	selector_free(sel);
}

/* Answers 200 with the device document and its ETag. */
static void
device_answer(struct api_call *c, const char *id)
{
	json_t *doc = NULL;
	int64_t rev = 0;
	int rc;

	rc = db_device_get(c->conn, id, c->ctx->env->heartbeat_timeout_s, &doc,
			   &rev);
	if (rc == DB_NOTFOUND) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (rc != DB_OK) {
		api_db_failed(c);
		return;
	}
	api_json(c->resp, 200, doc);
	snprintf(c->resp->etag, sizeof(c->resp->etag), "%" PRId64, rev);
}

/* The answer for a refused mutation. */
static void
device_refused(struct api_call *c, int rc, const char *what)
{
	if (rc == DB_NOTFOUND)
		api_problem(c->resp, 404, "not-found", NULL);
	else if (rc == DB_PRECONDITION)
		api_problem(c->resp, 412, "precondition-failed",
			    "the device changed; GET it again");
	else if (rc == DB_CONFLICT)
		api_problem(c->resp, 409, "conflict", what);
	else
		api_db_failed(c);
}

static void
devices_patch(struct api_call *c, const char *id)
{
	json_t *body = NULL, *labels, *v;
	const char *key;
	char *patch = NULL;
	int64_t if_match;
	int rc;

	if (api_if_match(c, &if_match) != 0 || api_body_object(c, &body) != 0)
		return;
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "labels") != 0) {
			api_problem_field(c->resp, key,
					  "only labels may be changed");
			goto out;
		}
	}
	labels = json_object_get(body, "labels");
	if (labels == NULL) {
		api_problem_field(c->resp, "labels", "nothing to change");
		goto out;
	}
	if (api_labels_check(c, labels, "labels", true) != 0)
		goto out;
	patch = json_dumps(labels, JSON_COMPACT);
	if (patch == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (api_begin(c) != 0)
		goto out;
	rc = db_device_patch_labels(c->conn, id, if_match, patch);
	if (rc != DB_OK) {
		device_refused(c, rc, "the device is decommissioned");
		goto out;
	}
	if (audit_write(c->conn, c->actor, "device.update", id, body) !=
	    DB_OK) {
		api_db_failed(c);
		goto out;
	}
	if (api_commit(c) != 0)
		goto out;
	device_answer(c, id);
out:
	free(patch);
	json_decref(body);
}

static void
devices_decommission(struct api_call *c, const char *id)
{
	json_t *revoked = NULL, *details = NULL;
	int64_t if_match;
	int rc;

	if (api_if_match(c, &if_match) != 0 || api_begin(c) != 0)
		return;
	rc = db_device_decommission(c->conn, id, if_match, &revoked);
	if (rc != DB_OK) {
		device_refused(c, rc, "the device is already decommissioned");
		return;
	}
	details = json_pack("{s:o, s:i}", "revoked_certificates", revoked,
			    "reason", 5);
	if (audit_write(c->conn, c->actor, "device.decommission", id,
			details) != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	if (api_commit(c) != 0)
		goto out;
	device_answer(c, id);
out:
	json_decref(details);
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
	if (api_path_id(rest, id, &tail) != 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			device_answer(c, id);
		else if (strcmp(m, "PATCH") == 0)
			devices_patch(c, id);
		else
			api_method_not_allowed(c->resp, "GET, PATCH");
	} else if (strcmp(tail, "/decommission") == 0) {
		if (strcmp(m, "POST") == 0)
			devices_decommission(c, id);
		else
			api_method_not_allowed(c->resp, "POST");
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
	}
}
