/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/campaigns: staged rollouts of firmware, configuration versions
 * and certificate rotations (issue 12; the contract is
 * docs/internals/campaigns.md "API"). Create (dry run, Idempotency-Key),
 * list (?status), show (ETag = revision), the admitted devices (?state,
 * ?phase), the event log, and the operator transitions start, pause,
 * resume (optionally with a new selector) and abort (If-Match). JSON in,
 * the rules of core/campaign.h and core/campaign_json.h, the store port
 * (core/store_campaigns.h), JSON out. Runs on job threads; bodies, ids,
 * selectors and query strings are untrusted. The devices are moved by
 * the driver (core/campaign_drive.c), never here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/campaign.h"
#include "core/campaign_json.h"
#include "core/selector.h"
#include "core/store_campaigns.h"

#define CAMPAIGN_NAME_MAX 200
#define CAMPAIGN_PROFILE_MAX 128
#define CAMPAIGN_REASON_MAX 1024

/* 422 validation naming the member: the body is well-formed JSON but not
 * a campaign we can run. */
static void
campaign_invalid(struct api_call *c, const char *field, const char *detail)
{
	api_problem(c->resp, 422, "validation", detail);
	if (field != NULL)
		api_problem_member(c->resp, "field", json_string(field));
}

/* The member a message of campaign_def_from_json names ("gate.soak...:",
 * "phase 2: ..."), for the problem's field; NULL when none. */
static const char *
def_field(const char *err)
{
	static const char *const members[] = {
		"phases", "unit", "gates", "gate", "window", "max_concurrent"};
	size_t i, n;

	if (strncmp(err, "phase ", 6) == 0)
		return "phases";
	for (i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		n = strlen(members[i]);
		if (strncmp(err, members[i], n) == 0 &&
		    (err[n] == ':' || err[n] == '.' || err[n] == '[' ||
		     err[n] == ' '))
			return members[i];
	}
	return NULL;
}

/* The campaign's status now, for a 409's "campaign_status" member (the
 * problem's own "status" is the HTTP status, RFC 7807); NULL when it
 * cannot be read. */
static json_t *
campaign_status_now(struct api_call *c, const char *id)
{
	json_t *doc = NULL, *status = NULL;

	if (id == NULL || store_campaign_get(c->ctx->store, id,
					     c->ctx->env->heartbeat_timeout_s,
					     &doc) != CAMPAIGN_OK)
		return NULL;
	status = json_object_get(doc, "status");
	if (json_is_string(status))
		status = json_string(json_string_value(status));
	else
		status = NULL;
	json_decref(doc);
	return status;
}

/* Answers a refusal of the store. id: the campaign, for a 409. */
static void
campaign_refused(struct api_call *c, enum campaign_rc rc, const char *id)
{
	json_t *status;

	switch (rc) {
	case CAMPAIGN_NOTFOUND:
		api_problem(c->resp, 404, "not-found", "no such campaign");
		return;
	case CAMPAIGN_UNKNOWN_ARTIFACT:
		api_problem(c->resp, 422, "unknown-artifact",
			    "no artifact with that id");
		return;
	case CAMPAIGN_ARTIFACT_NOT_READY:
		api_problem(c->resp, 409, "artifact-not-ready",
			    "the artifact's file is not uploaded yet "
			    "(status uploading)");
		return;
	case CAMPAIGN_ARTIFACT_EXPIRED:
		api_problem(c->resp, 422, "artifact-expired",
			    "the artifact's manifest has expired; every "
			    "agent would refuse it");
		return;
	case CAMPAIGN_PROFILE_UNKNOWN:
		api_problem(c->resp, 422, "unknown-profile",
			    "no configuration profile with that name");
		return;
	case CAMPAIGN_VERSION_UNKNOWN:
		api_problem(c->resp, 422, "unknown-version",
			    "the profile has no such version");
		return;
	case CAMPAIGN_NO_MATCH:
		api_problem(c->resp, 422, "no-match",
			    "the selector matches no active device");
		return;
	case CAMPAIGN_IDEM_TAKEN:
		api_problem(c->resp, 409, "idempotency-key-in-use",
			    "a concurrent request used this Idempotency-Key");
		return;
	case CAMPAIGN_BAD_TRANSITION:
		status = campaign_status_now(c, id);
		api_problem(c->resp, 409, "campaign-transition",
			    "not allowed in the campaign's status");
		if (status != NULL)
			api_problem_member(c->resp, "campaign_status", status);
		return;
	case CAMPAIGN_PRECONDITION:
		api_problem(c->resp, 412, "precondition-failed",
			    "the campaign changed: If-Match is not its ETag");
		return;
	case CAMPAIGN_ERR_STORE:
		api_store_failed(c);
		return;
	case CAMPAIGN_OK:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

/* 200 (or status) with the document and its ETag (the revision). */
static void
campaign_answer(struct api_call *c, int status, json_t *doc)
{
	json_t *rev = json_object_get(doc, "revision");

	if (json_is_integer(rev))
		snprintf(c->resp->etag, sizeof(c->resp->etag), "%" PRId64,
			 (int64_t)json_integer_value(rev));
	api_json(c->resp, status, doc);
}

/* An optional boolean member. Answers 400. */
static int
opt_bool(struct api_call *c, const json_t *body, const char *field, bool *out)
{
	const json_t *v = json_object_get(body, field);

	*out = false;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		api_problem_field(c->resp, field, "true or false");
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The kind's target members: exactly those of the kind, no others. */
static int
read_target(struct api_call *c, const json_t *body, enum campaign_kind kind,
	    struct campaign_create *req)
{
	const json_t *version = json_object_get(body, "version");
	json_int_t v;

	if (api_opt_string(c, body, "artifact_id", 36, &req->artifact_id) !=
		    0 ||
	    api_opt_string(c, body, "profile", CAMPAIGN_PROFILE_MAX,
			   &req->profile) != 0)
		return -1;
	if (req->artifact_id != NULL && !secret_is_uuid(req->artifact_id)) {
		api_problem_field(c->resp, "artifact_id", "a lowercase uuid");
		return -1;
	}
	switch (kind) {
	case CAMPAIGN_FIRMWARE:
		if (req->artifact_id == NULL) {
			campaign_invalid(c, "artifact_id",
					 "a firmware campaign needs "
					 "artifact_id");
			return -1;
		}
		if (req->profile != NULL || version != NULL) {
			campaign_invalid(c, "profile",
					 "profile and version are for config "
					 "campaigns");
			return -1;
		}
		return 0;
	case CAMPAIGN_CONFIG:
		if (req->artifact_id != NULL) {
			campaign_invalid(c, "artifact_id",
					 "artifact_id is for firmware "
					 "campaigns");
			return -1;
		}
		if (req->profile == NULL || req->profile[0] == '\0') {
			campaign_invalid(c, "profile",
					 "a config campaign needs profile "
					 "(a profile name) and version");
			return -1;
		}
		if (!json_is_integer(version)) {
			campaign_invalid(c, "version",
					 "a config campaign needs version, "
					 "an integer from 1");
			return -1;
		}
		v = json_integer_value(version);
		if (v < 1 || v > INT32_MAX) {
			campaign_invalid(c, "version",
					 "version is an integer from 1");
			return -1;
		}
		req->profile_version = (int)v;
		return 0;
	case CAMPAIGN_ROTATION:
		if (req->artifact_id != NULL || req->profile != NULL ||
		    version != NULL) {
			campaign_invalid(c, "kind",
					 "a rotation campaign takes neither "
					 "artifact_id nor profile/version");
			return -1;
		}
		return 0;
	}
	campaign_invalid(c, "kind", "firmware, config or rotation");
	return -1;
}

static void
campaign_create(struct api_call *c)
{
	static const char *const fields[] = {
		"name",	   "kind",     "artifact_id", "profile",
		"version", "selector", "phases",      "unit",
		"gate",	   "gates",    "window",      "max_concurrent",
		"start",   "dry_run",  NULL};
	struct campaign_create req;
	struct campaign_def def;
	struct idem_record rec;
	struct selector *sel = NULL;
	const char *name = NULL, *kind = NULL, *selector = NULL;
	json_t *body = NULL, *doc = NULL;
	char *answer = NULL, *definition = NULL, err[256];
	enum campaign_kind k;
	enum campaign_rc rc;

	memset(&req, 0, sizeof(req));
	memset(&rec, 0, sizeof(rec));
	memset(&def, 0, sizeof(def));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0 ||
	    api_opt_string(c, body, "name", CAMPAIGN_NAME_MAX, &name) != 0 ||
	    api_opt_string(c, body, "kind", 16, &kind) != 0 ||
	    api_opt_string(c, body, "selector", SELECTOR_MAX_LEN, &selector) !=
		    0 ||
	    opt_bool(c, body, "start", &req.start) != 0 ||
	    opt_bool(c, body, "dry_run", &req.dry_run) != 0)
		goto out;
	if (name == NULL || name[0] == '\0') {
		campaign_invalid(c, "name",
				 "name is required (1 to 200 bytes)");
		goto out;
	}
	if (kind == NULL || campaign_kind_parse(kind, &k) != 0) {
		campaign_invalid(c, "kind",
				 "kind is required: firmware, config or "
				 "rotation");
		goto out;
	}
	if (read_target(c, body, k, &req) != 0)
		goto out;
	if (json_object_get(body, "phases") == NULL) {
		campaign_invalid(c, "phases",
				 "phases is required, e.g. [1, 10, 50, 100]");
		goto out;
	}
	err[0] = '\0';
	if (campaign_def_from_json(body, &def, err, sizeof(err)) != 0) {
		campaign_invalid(c, def_field(err),
				 err[0] ? err : "bad definition");
		goto out;
	}
	def.kind = k;
	if (selector == NULL)
		selector = "";
	if (selector_parse(selector, &sel, err, sizeof(err)) != 0) {
		campaign_invalid(c, "selector", err);
		goto out;
	}
	definition = campaign_def_to_json(&def);
	if (definition == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	/* A dry run writes nothing, not even an idempotency record. */
	if (!req.dry_run && api_idem_begin(c, &rec, 201) != 0)
		goto out;
	if (secret_uuid_v4(req.id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	req.name = name;
	req.kind = k;
	req.def = &def;
	req.definition = definition;
	req.selector = sel;
	req.selector_text = selector;
	req.heartbeat_timeout_s = c->ctx->env->heartbeat_timeout_s;
	req.actor = c->actor;
	req.idem = rec.key != NULL ? &rec : NULL;
	rc = store_campaign_create(c->ctx->store, &req, &answer);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, NULL);
		goto out;
	}
	doc = json_loads(answer, 0, NULL);
	if (!json_is_object(doc)) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (req.dry_run) {
		api_json(c->resp, 200, doc);
	} else {
		snprintf(c->resp->location, sizeof(c->resp->location),
			 "/api/v1/campaigns/%s", req.id);
		campaign_answer(c, 201, doc);
	}
	doc = NULL;
out:
	free(answer);
	free(definition);
	json_decref(doc);
	json_decref(body);
	selector_free(sel);
}

static void
campaign_list(struct api_call *c)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX], status[16];
	struct page page;
	json_t *items = NULL;
	enum campaign_rc rc;
	size_t i;
	int q;

	q = api_query_param(c->req->query, "status", status, sizeof(status));
	if (q == 1) {
		for (i = 0; i < CAMPAIGN_STATUS_COUNT; i++)
			if (strcmp(status, campaign_status_name(
						   (enum campaign_status)i)) ==
			    0)
				break;
		if (i == CAMPAIGN_STATUS_COUNT)
			q = -1;
	}
	if (q < 0) {
		api_problem_field(c->resp, "status",
				  "one of draft, running, paused, completed, "
				  "aborted");
		return;
	}
	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = store_campaign_list(c->ctx->store, q == 1 ? status : NULL, &page,
				 &items, next);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, NULL);
		return;
	}
	api_list(c, items, next);
}

static void
campaign_show(struct api_call *c, const char *id)
{
	json_t *doc = NULL;
	enum campaign_rc rc;

	rc = store_campaign_get(c->ctx->store, id,
				c->ctx->env->heartbeat_timeout_s, &doc);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, id);
		return;
	}
	campaign_answer(c, 200, doc);
}

/* Per-device states an operator may filter by. */
static bool
device_state_valid(const char *s)
{
	static const char *const states[] = {
		"offered", "in_progress", "succeeded", "failed",
		"silent",  "rolled_back", "excluded",  "reverted"};
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(s, states[i]) == 0)
			return true;
	return false;
}

static void
campaign_devices(struct api_call *c, const char *id)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX], state[16];
	char phase_text[8], *end = NULL;
	struct page page;
	json_t *items = NULL;
	enum campaign_rc rc;
	long phase = -1;
	int q, qp;

	q = api_query_param(c->req->query, "state", state, sizeof(state));
	if (q < 0 || (q == 1 && !device_state_valid(state))) {
		api_problem_field(c->resp, "state",
				  "one of offered, in_progress, succeeded, "
				  "failed, silent, rolled_back, excluded, "
				  "reverted");
		return;
	}
	qp = api_query_param(c->req->query, "phase", phase_text,
			     sizeof(phase_text));
	if (qp == 1) {
		phase = strtol(phase_text, &end, 10);
		if (phase_text[0] < '1' || phase_text[0] > '9' ||
		    *end != '\0' || phase > CAMPAIGN_MAX_PHASES)
			qp = -1;
	}
	if (qp < 0) {
		api_problem_field(c->resp, "phase",
				  "a phase number from 1 (as show counts "
				  "them)");
		return;
	}
	if (api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	/* Operators count phases from 1; rows from 0. */
	rc = store_campaign_devices(c->ctx->store, id, q == 1 ? state : NULL,
				    qp == 1 ? (int)phase - 1 : -1, &page,
				    &items, next);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, id);
		return;
	}
	api_list(c, items, next);
}

static void
campaign_events(struct api_call *c, const char *id)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct page page;
	json_t *items = NULL;
	enum campaign_rc rc;

	if (api_page_parse(c, PAGE_CURSOR_ID, &page, after) != 0)
		return;
	rc = store_campaign_events(c->ctx->store, id, &page, &items, next);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, id);
		return;
	}
	api_list(c, items, next);
}

/* start, pause, resume, abort: body {"reason"?, "selector"? (resume)},
 * which may be empty. */
static void
campaign_op(struct api_call *c, const char *id, enum campaign_event ev)
{
	static const char *const fields[] = {"reason", "selector", NULL};
	struct campaign_op op;
	struct selector *sel = NULL;
	const char *reason = NULL, *selector = NULL;
	json_t *body = NULL, *doc = NULL;
	enum campaign_rc rc;
	char err[256];

	memset(&op, 0, sizeof(op));
	if (api_if_match(c, &op.if_match) != 0)
		return;
	if (c->req->body_len > 0) {
		if (api_body_object(c, &body) != 0)
			return;
		if (api_only_fields(c, body, fields) != 0 ||
		    api_opt_string(c, body, "reason", CAMPAIGN_REASON_MAX,
				   &reason) != 0 ||
		    api_opt_string(c, body, "selector", SELECTOR_MAX_LEN,
				   &selector) != 0)
			goto out;
	}
	if (selector != NULL) {
		if (ev != CAMPAIGN_EV_RESUME) {
			campaign_invalid(c, "selector",
					 "only resume may change the "
					 "selector");
			goto out;
		}
		if (selector_parse(selector, &sel, err, sizeof(err)) != 0) {
			campaign_invalid(c, "selector", err);
			goto out;
		}
	}
	op.id = id;
	op.ev = ev;
	op.actor = c->actor;
	op.reason = reason;
	op.selector = sel;
	op.selector_text = selector;
	rc = store_campaign_op(c->ctx->store, &op,
			       c->ctx->env->heartbeat_timeout_s, &doc);
	if (rc != CAMPAIGN_OK) {
		campaign_refused(c, rc, id);
		goto out;
	}
	campaign_answer(c, 200, doc);
out:
	json_decref(body);
	selector_free(sel);
}

static const struct {
	const char *tail;
	enum campaign_event ev;
} campaign_ops[] = {
	{"/start", CAMPAIGN_EV_START},
	{"/pause", CAMPAIGN_EV_PAUSE},
	{"/resume", CAMPAIGN_EV_RESUME},
	{"/abort", CAMPAIGN_EV_ABORT},
};

void
api_campaigns(struct api_call *c, const char *rest)
{
	const char *method = c->req->method;
	char id[SECRET_UUID_LEN];
	const char *tail = NULL;
	size_t i;

	if (rest[0] == '\0') {
		if (strcmp(method, "GET") == 0)
			campaign_list(c);
		else if (strcmp(method, "POST") == 0)
			campaign_create(c);
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
			campaign_show(c, id);
		else
			api_method_not_allowed(c->resp, "GET");
		return;
	}
	if (strcmp(tail, "/devices") == 0 || strcmp(tail, "/events") == 0) {
		if (strcmp(method, "GET") != 0)
			api_method_not_allowed(c->resp, "GET");
		else if (tail[1] == 'd')
			campaign_devices(c, id);
		else
			campaign_events(c, id);
		return;
	}
	for (i = 0; i < sizeof(campaign_ops) / sizeof(campaign_ops[0]); i++) {
		if (strcmp(tail, campaign_ops[i].tail) != 0)
			continue;
		if (strcmp(method, "POST") == 0)
			campaign_op(c, id, campaign_ops[i].ev);
		else
			api_method_not_allowed(c->resp, "POST");
		return;
	}
	api_problem(c->resp, 404, "not-found", NULL);
}
