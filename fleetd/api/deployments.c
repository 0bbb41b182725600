/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/deployments: offer one signed artifact to one device or to the
 * devices a selector matches (docs/api.md "Deployments",
 * docs/updates.md). Create (dry run, Idempotency-Key), list, show (counts
 * per state, failures), the devices of one (paged, ?state=), cancel.
 * JSON in, the rules of core/update.h through the store port
 * (core/store_deployments.h), JSON out. Runs on job threads; bodies, ids,
 * selectors and query strings are untrusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "clock.h"
#include "core/selector.h"
#include "core/store_deployments.h"
#include "core/update.h"

/* Answers a refusal of the store (shared with release_keysets.c through
 * api_deploy_refused). */
void api_deploy_refused(struct api_call *c, enum deploy_rc rc);

void
api_deploy_refused(struct api_call *c, enum deploy_rc rc)
{
	switch (rc) {
	case DEPLOY_NOTFOUND:
		api_problem(c->resp, 404, "not-found", "no such deployment");
		return;
	case DEPLOY_UNKNOWN_ARTIFACT:
		api_problem(c->resp, 422, "deployment-unknown-artifact",
			    "no artifact with that id");
		return;
	case DEPLOY_ARTIFACT_NOT_READY:
		api_problem(c->resp, 422, "deployment-artifact-not-ready",
			    "the artifact's file is not uploaded yet "
			    "(status uploading)");
		return;
	case DEPLOY_ARTIFACT_EXPIRED:
		api_problem(c->resp, 422, "deployment-artifact-expired",
			    "the artifact's manifest has expired; every "
			    "agent would refuse it");
		return;
	case DEPLOY_UNKNOWN_DEVICE:
		api_problem(c->resp, 422, "deployment-unknown-device",
			    "no active device with that id");
		return;
	case DEPLOY_NO_MATCH:
		api_problem(c->resp, 422, "selector-matches-nothing",
			    "the selector matches no active device");
		return;
	case DEPLOY_NO_TARGETS:
		api_problem(c->resp, 422, "deployment-no-targets",
			    "every matched device was skipped (hardware not "
			    "in the manifest, or installing another "
			    "release); see a dry run's counts");
		return;
	case DEPLOY_IDEM_TAKEN:
		api_problem(c->resp, 409, "conflict",
			    "a concurrent request used this Idempotency-Key");
		return;
	case DEPLOY_NOT_ACTIVE:
		api_problem(c->resp, 409, "deployment-not-active",
			    "the deployment is finished or cancelled");
		return;
	case DEPLOY_CAMPAIGN_OWNED:
		api_problem(c->resp, 409, "deployment-of-campaign",
			    "a campaign made this deployment: pause or abort "
			    "the campaign instead");
		return;
	case DEPLOY_KEYSET_VERSION:
		api_problem(c->resp, 409, "keyset-version-conflict",
			    "not the next key set version");
		return;
	case DEPLOY_ERR_STORE:
		api_store_failed(c);
		return;
	case DEPLOY_OK:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

/* An optional uuid member; *out borrowed. Answers 400. */
static int
opt_uuid(struct api_call *c, const json_t *body, const char *field,
	 const char **out)
{
	if (api_opt_string(c, body, field, 36, out) != 0)
		return -1;
	if (*out != NULL && !secret_is_uuid(*out)) {
		api_problem_field(c->resp, field, "a lowercase uuid");
		return -1;
	}
	return 0;
}

static void
deployment_create(struct api_call *c)
{
	static const char *const fields[] = {"artifact_id", "device_id",
					     "selector", "dry_run", NULL};
	struct deployment_create req;
	struct update_plan_counts counts;
	struct idem_record rec;
	struct selector *sel = NULL;
	const char *selector = NULL;
	json_t *body = NULL, *dry, *doc = NULL;
	char *answer = NULL, err[200];
	enum deploy_rc rc;

	memset(&req, 0, sizeof(req));
	memset(&rec, 0, sizeof(rec));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    opt_uuid(c, body, "artifact_id", &req.artifact_id) != 0 ||
	    opt_uuid(c, body, "device_id", &req.device_id) != 0 ||
	    api_opt_string(c, body, "selector", SELECTOR_MAX_LEN, &selector) !=
		    0)
		goto out;
	if (req.artifact_id == NULL) {
		api_problem_field(c->resp, "artifact_id",
				  "the artifact to deploy is required");
		goto out;
	}
	if ((req.device_id == NULL) == (selector == NULL)) {
		api_problem(c->resp, 400, "deployment-target",
			    "give exactly one of device_id and selector");
		goto out;
	}
	if (selector != NULL &&
	    selector_parse(selector, &sel, err, sizeof(err)) != 0) {
		api_problem_field(c->resp, "selector", err);
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
	if (secret_uuid_v4(req.id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	req.selector = sel;
	req.selector_text = selector;
	req.heartbeat_timeout_s = c->ctx->env->heartbeat_timeout_s;
	req.actor = c->actor;
	req.idem = rec.key != NULL ? &rec : NULL;
	memset(&counts, 0, sizeof(counts));
	rc = store_deployment_create(c->ctx->store, &req, &counts, &answer);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		goto out;
	}
	doc = json_loads(answer, 0, NULL);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (!req.dry_run)
		snprintf(c->resp->location, sizeof(c->resp->location),
			 "/api/v1/deployments/%s", req.id);
	api_json(c->resp, req.dry_run ? 200 : 201, doc);
	doc = NULL;
out:
	free(answer);
	json_decref(doc);
	json_decref(body);
	selector_free(sel);
}

/*
 * A deployment document as the store wrote it gets "stalled_reason":
 * core's update_deployment_stalled on the document's own status, pending
 * count and artifact, or null.
 */
static int
deployment_explain(json_t *doc, int64_t now)
{
	const json_t *art = json_object_get(doc, "artifact");
	const json_t *pending =
		json_object_get(json_object_get(doc, "counts"), "pending");
	const char *status = json_string_value(json_object_get(doc, "status"));
	const char *expires =
		json_string_value(json_object_get(art, "expires_at"));
	const char *aname = json_string_value(json_object_get(art, "name"));
	const char *aversion =
		json_string_value(json_object_get(art, "version"));
	char name[256], reason[512];
	struct update_stall_input in = {0};

	snprintf(name, sizeof(name), "%s %s", aname != NULL ? aname : "?",
		 aversion != NULL ? aversion : "?");
	in.active = status != NULL && strcmp(status, "active") == 0;
	in.pending = json_integer_value(pending);
	in.artifact = name;
	if (expires == NULL ||
	    clock_parse_rfc3339(expires, &in.expires_at) != 0)
		in.expires_at = 0;
	return json_object_set_new(
		doc, "stalled_reason",
		update_deployment_stalled(&in, now, reason, sizeof(reason))
			? json_string(reason)
			: json_null());
}

/* Deployment id's document as the API shows it. */
static enum deploy_rc
deployment_read(struct api_call *c, const char *id, json_t **doc)
{
	enum deploy_rc rc = store_deployment_get(c->ctx->store, id, doc);

	if (rc == DEPLOY_OK && deployment_explain(*doc, clock_wall_s()) != 0) {
		json_decref(*doc);
		*doc = NULL;
		rc = DEPLOY_ERR_STORE;
	}
	return rc;
}

static void
deployment_list(struct api_call *c)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct page page;
	json_t *items = NULL, *doc;
	enum deploy_rc rc;
	int64_t now;
	size_t i;

	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = store_deployment_list(c->ctx->store, &page, &items, next);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		return;
	}
	now = clock_wall_s();
	json_array_foreach(items, i, doc)
	{
		if (deployment_explain(doc, now) != 0) {
			json_decref(items);
			api_deploy_refused(c, DEPLOY_ERR_STORE);
			return;
		}
	}
	api_list(c, items, next);
}

static void
deployment_show(struct api_call *c, const char *id)
{
	json_t *doc = NULL;
	enum deploy_rc rc;

	rc = deployment_read(c, id, &doc);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		return;
	}
	api_json(c->resp, 200, doc);
}

static void
deployment_devices(struct api_call *c, const char *id)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX], state[32];
	enum update_state s;
	struct page page;
	json_t *items = NULL;
	enum deploy_rc rc;
	int q;

	q = api_query_param(c->req->query, "state", state, sizeof(state));
	if (q < 0 || (q == 1 && update_state_parse(state, &s) != 0)) {
		api_problem_field(c->resp, "state",
				  "one of the states of docs/updates.md "
				  "(pending, offered, ..., superseded)");
		return;
	}
	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = store_deployment_devices(c->ctx->store, id, q == 1 ? state : NULL,
				      &page, &items, next);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		return;
	}
	api_list(c, items, next);
}

static void
deployment_cancel(struct api_call *c, const char *id)
{
	size_t superseded = 0;
	json_t *doc = NULL;
	enum deploy_rc rc;

	rc = store_deployment_cancel(c->ctx->store, id, c->actor, &superseded);
	if (rc == DEPLOY_OK)
		rc = deployment_read(c, id, &doc);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		return;
	}
	json_object_set_new(doc, "cancelled_rows",
			    json_integer((json_int_t)superseded));
	api_json(c->resp, 200, doc);
}

void
api_deployments(struct api_call *c, const char *rest)
{
	const char *method = c->req->method;
	char id[SECRET_UUID_LEN];
	const char *tail = NULL;

	if (rest[0] == '\0') {
		if (strcmp(method, "GET") == 0)
			deployment_list(c);
		else if (strcmp(method, "POST") == 0)
			deployment_create(c);
		else
			api_method_not_allowed(c->resp, "GET, POST");
		return;
	}
	if (api_path_id(rest, id, &tail) != 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(method, "GET") == 0)
			deployment_show(c, id);
		else
			api_method_not_allowed(c->resp, "GET");
	} else if (strcmp(tail, "/devices") == 0) {
		if (strcmp(method, "GET") == 0)
			deployment_devices(c, id);
		else
			api_method_not_allowed(c->resp, "GET");
	} else if (strcmp(tail, "/cancel") == 0) {
		if (strcmp(method, "POST") == 0)
			deployment_cancel(c, id);
		else
			api_method_not_allowed(c->resp, "POST");
	} else {
		api_problem(c->resp, 404, "not-found", NULL);
	}
}
