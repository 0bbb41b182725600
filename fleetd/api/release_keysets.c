/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/release-keysets: release key sets after the first (docs/api.md
 * "Release key sets", docs/internals/updates.md). fleetd stores and
 * forwards them: it checks that the body is a DSSE envelope of the key
 * set type whose payload parses (pki_keyset_parse) and names the next
 * version, but it cannot verify the signatures (it does not know version
 * 1, which is baked into device images); every agent verifies the chain
 * against the set it pins before it adopts one. Runs on job threads; the
 * body is untrusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/store_deployments.h"
#include "pki.h"
#include "release.h"

/* The protocol carries an envelope in update.keys up to this many bytes
 * of compact JSON (docs/protocol.md). */
#define KEYSET_ENVELOPE_MAX 32768

/* deployments.c: a store refusal as problem+json. */
void api_deploy_refused(struct api_call *c, enum deploy_rc rc);

static void
keyset_invalid(struct api_call *c, const char *detail)
{
	api_problem(c->resp, 422, "keyset-invalid", detail);
}

static void
keyset_create(struct api_call *c)
{
	static const char *const fields[] = {"envelope", NULL};
	struct pki_keyset ks;
	struct pki_error perr;
	json_t *body = NULL, *env, *doc = NULL;
	const char *type, *payload;
	unsigned char *raw = NULL;
	char *env_text = NULL, *ks_text = NULL, detail[320];
	json_t *ks_doc = NULL;
	size_t raw_len = 0;
	int64_t expected = 0;
	enum deploy_rc rc;

	memset(&ks, 0, sizeof(ks));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0)
		goto out;
	env = json_object_get(body, "envelope");
	if (!json_is_object(env)) {
		api_problem_field(c->resp, "envelope",
				  "a DSSE envelope (JSON object) is required");
		goto out;
	}
	env_text = json_dumps(env, JSON_COMPACT);
	if (env_text == NULL || strlen(env_text) > KEYSET_ENVELOPE_MAX) {
		api_problem_field(c->resp, "envelope",
				  "an envelope is at most 32768 bytes of "
				  "compact JSON");
		goto out;
	}
	type = json_string_value(json_object_get(env, "payloadType"));
	payload = json_string_value(json_object_get(env, "payload"));
	if (type == NULL || strcmp(type, PKI_RELEASE_KEYSET_TYPE) != 0) {
		keyset_invalid(c, "payloadType must be "
				  "application/vnd.fleet.keyset+json");
		goto out;
	}
	if (!json_is_array(json_object_get(env, "signatures")) ||
	    json_array_size(json_object_get(env, "signatures")) == 0) {
		keyset_invalid(c, "the envelope has no signatures");
		goto out;
	}
	if (payload == NULL ||
	    pki_base64_decode(payload, strlen(payload), KEYSET_ENVELOPE_MAX,
			      &raw, &raw_len, &perr) != PKI_OK) {
		keyset_invalid(c, "payload is not base64");
		goto out;
	}
	if (pki_keyset_parse(raw, raw_len, &ks, &perr) != PKI_OK) {
		snprintf(detail, sizeof(detail), "payload: %s", perr.msg);
		keyset_invalid(c, detail);
		goto out;
	}
	if (ks.version < 2) {
		keyset_invalid(c, "version 1 is the set in device images; "
				  "upload version 2 and up");
		goto out;
	}
	ks_doc = json_loadb((const char *)raw, raw_len, 0, NULL);
	ks_text = ks_doc != NULL ? json_dumps(ks_doc, JSON_COMPACT) : NULL;
	if (ks_text == NULL) {
		keyset_invalid(c, "payload is not a JSON object");
		goto out;
	}
	rc = store_keyset_add(c->ctx->store, ks.version, env_text, ks_text,
			      c->actor, &expected);
	if (rc == DEPLOY_KEYSET_VERSION) {
		snprintf(detail, sizeof(detail),
			 "key set version %lld uploaded; the next one is %lld",
			 (long long)ks.version, (long long)expected);
		api_problem(c->resp, 409, "keyset-version-conflict", detail);
		goto out;
	}
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		goto out;
	}
	doc = json_pack("{s:I, s:I, s:I}", "version", (json_int_t)ks.version,
			"threshold", (json_int_t)ks.threshold, "keys",
			(json_int_t)ks.n);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/release-keysets");
	api_json(c->resp, 201, doc);
out:
	pki_keyset_clear(&ks);
	free(raw);
	free(env_text);
	free(ks_text);
	json_decref(ks_doc);
	json_decref(body);
}

static void
keyset_list(struct api_call *c)
{
	json_t *items = NULL;
	enum deploy_rc rc;

	rc = store_keyset_list(c->ctx->store, &items);
	if (rc != DEPLOY_OK) {
		api_deploy_refused(c, rc);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "items", items));
}

void
api_release_keysets(struct api_call *c, const char *rest)
{
	const char *method = c->req->method;

	if (rest[0] != '\0') {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (strcmp(method, "GET") == 0)
		keyset_list(c);
	else if (strcmp(method, "POST") == 0)
		keyset_create(c);
	else
		api_method_not_allowed(c->resp, "GET, POST");
}
