/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v1/artifacts (issue 11): releases as DSSE envelopes and their
 * files. POST takes {"envelope": {...}} and copies the manifest out of
 * the envelope's payload (pki_manifest_parse); fleetd cannot verify the
 * signatures (it holds no release key, by design: agents verify), so it
 * checks only that the envelope is a DSSE envelope of the manifest type
 * with at least one signature. PUT .../file streams the file through
 * core/artifact.c. GET lists and shows, DELETE removes. Runs on api job
 * threads; every input is untrusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/artifacts.h"
#include "core/artifact.h"
#include "core/store_artifacts.h"
#include "pki.h"
#include "release.h"

bool
api_artifacts_streamed(const char *method, const char *path)
{
	static const char prefix[] = "/api/v1/artifacts/";
	size_t n = strlen(path);

	return strcmp(method, "PUT") == 0 &&
	       strncmp(path, prefix, sizeof(prefix) - 1) == 0 && n > 5 &&
	       strcmp(path + n - 5, "/file") == 0;
}

/* ---- answers ------------------------------------------------------------ */

static void
refused(struct api_call *c, enum artifact_rc rc, const char *detail)
{
	switch (rc) {
	case ARTIFACT_OK:
		break;
	case ARTIFACT_NOTFOUND:
		api_problem(c->resp, 404, "not-found", detail);
		break;
	case ARTIFACT_EXISTS:
		api_problem(c->resp, 409, "artifact-exists",
			    "this release (name, version_int and sha256) is "
			    "already stored");
		break;
	case ARTIFACT_BLOB_MISMATCH:
		api_problem(c->resp, 422, "artifact-manifest-mismatch",
			    "a file with this sha256 is stored with another "
			    "size: the manifest cannot be right");
		break;
	case ARTIFACT_IN_USE:
		api_problem(c->resp, 409, "artifact-in-use",
			    "a deployment that is not finished offers this "
			    "artifact; cancel it or wait for it to finish");
		break;
	case ARTIFACT_BUSY:
		api_problem(c->resp, 409, "artifact-upload-busy",
			    "another upload of this file is running; retry "
			    "when it has finished");
		break;
	case ARTIFACT_TOO_LARGE:
		api_problem(c->resp, 413, "artifact-too-large", detail);
		break;
	case ARTIFACT_SIZE_MISMATCH:
		api_problem(c->resp, 422, "artifact-size-mismatch", detail);
		break;
	case ARTIFACT_HASH_MISMATCH:
		api_problem(c->resp, 422, "artifact-hash-mismatch", detail);
		break;
	case ARTIFACT_IDEM_TAKEN:
		api_problem(c->resp, 409, "conflict",
			    "a request with this Idempotency-Key is running");
		break;
	case ARTIFACT_ABORTED:
		/* Nobody reads this answer: the client has gone. */
		api_problem(c->resp, 400, "bad-request",
			    "the upload ended before Content-Length bytes");
		break;
	case ARTIFACT_ERR_NOMEM:
		api_problem(c->resp, 500, "internal-error", "out of memory");
		break;
	case ARTIFACT_ERR_STORE:
		api_store_failed(c);
		break;
	}
}

static json_t *
artifact_json(const struct artifact *a, bool full)
{
	json_t *hw = json_array(), *doc;

	for (size_t i = 0; hw != NULL && i < a->n_hw; i++)
		json_array_append_new(hw, json_string(a->hw[i]));
	doc = json_pack("{s:s,s:s,s:s,s:I,s:o,s:s,s:I,s:s,s:o,s:s,s:s,s:o}",
			"id", a->id, "name", a->name, "version", a->version,
			"version_int", (json_int_t)a->version_int, "hw", hw,
			"installer", a->installer, "size", (json_int_t)a->size,
			"sha256", a->sha256, "expires", api_time(a->expires_at),
			"status", artifact_status(a), "created_by",
			a->created_by, "created_at", api_time(a->created_at));
	if (doc != NULL && full && a->envelope != NULL) {
		json_t *env = json_loads(a->envelope, 0, NULL);

		if (env == NULL ||
		    json_object_set_new(doc, "envelope", env) != 0) {
			json_decref(doc);
			doc = NULL;
		}
	}
	return doc;
}

/* ---- POST: the envelope --------------------------------------------------- */

/* A 422 artifact-bad-envelope naming what is wrong. */
static void
bad_envelope(struct api_call *c, const char *detail)
{
	api_problem(c->resp, 422, "artifact-bad-envelope", detail);
}

/*
 * The shape of a DSSE envelope (payloadType, payload, signatures with
 * keyid and sig), then the manifest out of its payload. 0, or -1 answered.
 */
static int
read_envelope(struct api_call *c, json_t *env, struct artifact *a)
{
	static const char *const env_fields[] = {"payload", "payloadType",
						 "signatures", NULL};
	const char *type, *payload;
	json_t *sigs, *v;
	unsigned char *bytes = NULL;
	size_t len = 0, i;
	struct pki_manifest m;
	struct pki_error err;
	const char *k;

	if (!json_is_object(env)) {
		bad_envelope(c, "envelope must be a DSSE envelope (an object "
				"with payload, payloadType and signatures)");
		return -1;
	}
	json_object_foreach(env, k, v)
	{
		bool known = false;

		for (i = 0; env_fields[i] != NULL; i++)
			known |= strcmp(k, env_fields[i]) == 0;
		if (!known) {
			bad_envelope(c, "envelope has a member other than "
					"payload, payloadType and signatures");
			return -1;
		}
	}
	type = json_string_value(json_object_get(env, "payloadType"));
	payload = json_string_value(json_object_get(env, "payload"));
	sigs = json_object_get(env, "signatures");
	if (type == NULL || payload == NULL || !json_is_array(sigs)) {
		bad_envelope(c, "not a DSSE envelope: payload, payloadType "
				"and signatures are required");
		return -1;
	}
	if (strcmp(type, PKI_RELEASE_MANIFEST_TYPE) != 0) {
		bad_envelope(c,
			     "payloadType must be " PKI_RELEASE_MANIFEST_TYPE);
		return -1;
	}
	if (json_array_size(sigs) == 0 ||
	    json_array_size(sigs) > PKI_DSSE_MAX_SIGNATURES) {
		bad_envelope(c, "an envelope carries 1 to 16 signatures");
		return -1;
	}
	json_array_foreach(sigs, i, v)
	{
		if (!json_is_object(v) ||
		    !json_is_string(json_object_get(v, "sig")) ||
		    (json_object_get(v, "keyid") != NULL &&
		     !json_is_string(json_object_get(v, "keyid")))) {
			bad_envelope(c, "each signature is an object with "
					"keyid and sig strings");
			return -1;
		}
	}
	if (pki_base64_decode(payload, strlen(payload), ARTIFACT_ENVELOPE_MAX,
			      &bytes, &len, &err) != PKI_OK) {
		bad_envelope(c, "payload is not base64");
		return -1;
	}
	memset(&m, 0, sizeof(m));
	if (pki_manifest_parse(bytes, len, &m, &err) != PKI_OK) {
		char detail[300];

		snprintf(detail, sizeof(detail), "manifest: %s", err.msg);
		free(bytes);
		bad_envelope(c, detail);
		return -1;
	}
	snprintf(a->name, sizeof(a->name), "%s", m.name);
	snprintf(a->version, sizeof(a->version), "%s", m.version);
	a->version_int = m.version_int;
	for (i = 0; i < m.n_hw && i < ARTIFACT_HW_MAX; i++)
		snprintf(a->hw[i], sizeof(a->hw[i]), "%s", m.hw[i]);
	a->n_hw = i;
	snprintf(a->installer, sizeof(a->installer), "%s", m.installer);
	a->size = m.size;
	snprintf(a->sha256, sizeof(a->sha256), "%s", m.sha256);
	a->expires_at = (int64_t)m.expires;
	a->manifest = malloc(len + 1);
	if (a->manifest != NULL) {
		memcpy(a->manifest, bytes, len);
		a->manifest[len] = '\0';
	}
	free(bytes);
	a->envelope = json_dumps(env, JSON_COMPACT);
	if (a->manifest == NULL || a->envelope == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return -1;
	}
	return 0;
}

static void
artifact_create(struct api_call *c)
{
	static const char *const fields[] = {"envelope", NULL};
	struct artifact a;
	struct idem_record rec;
	json_t *body = NULL, *doc = NULL;
	enum artifact_rc rc;

	memset(&a, 0, sizeof(a));
	memset(&rec, 0, sizeof(rec));
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0)
		goto out;
	if (json_object_get(body, "envelope") == NULL) {
		api_problem_field(c->resp, "envelope",
				  "the release's DSSE envelope is required");
		goto out;
	}
	if (read_envelope(c, json_object_get(body, "envelope"), &a) != 0)
		goto out;
	/* Every agent would refuse it ("expired"): say so now. */
	if (a.expires_at <= api_now()) {
		api_problem(c->resp, 422, "artifact-expired",
			    "the manifest has expired; sign the release again "
			    "with a later --expires");
		goto out;
	}
	if (api_idem_begin(c, &rec, 201) != 0)
		goto out;
	if (secret_uuid_v4(a.id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	snprintf(a.created_by, sizeof(a.created_by), "%s", c->actor);
	a.created_at = api_now();
	/* The answer recorded for a replay says what creation knew; ready
	 * is known only inside the transaction, so a replay of an
	 * "uploading" answer stays "uploading" (GET shows the truth). */
	doc = artifact_json(&a, false);
	if (doc == NULL ||
	    (rec.key != NULL &&
	     (rec.body = json_dumps(doc, JSON_COMPACT)) == NULL)) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	rc = store_artifact_create(c->ctx->store, &a, c->actor,
				   rec.key != NULL ? &rec : NULL);
	if (rc != ARTIFACT_OK) {
		refused(c, rc, NULL);
		goto out;
	}
	json_decref(doc);
	doc = artifact_json(&a, false);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/artifacts/%s", a.id);
	api_json(c->resp, 201, doc);
	doc = NULL;
out:
	free(rec.body);
	artifact_clear(&a);
	json_decref(body);
	json_decref(doc);
}

/* ---- GET, DELETE ------------------------------------------------------------ */

static int
filter(struct api_call *c, const char *name, char *buf, size_t len,
       const char **out)
{
	int rc = api_query_param(c->req->query, name, buf, len);

	*out = NULL;
	if (rc < 0) {
		api_problem_field(c->resp, name,
				  "at most 128 bytes, percent-encoded");
		return -1;
	}
	if (rc > 0)
		*out = buf;
	return 0;
}

static void
artifact_list(struct api_call *c)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	char name_buf[ARTIFACT_NAME_MAX + 1],
		version_buf[ARTIFACT_NAME_MAX + 1];
	const char *name = NULL, *version = NULL;
	struct artifact *items = NULL;
	struct page page;
	json_t *arr;
	size_t i, n = 0;
	enum artifact_rc rc;

	if (filter(c, "name", name_buf, sizeof(name_buf), &name) != 0 ||
	    filter(c, "version", version_buf, sizeof(version_buf), &version) !=
		    0 ||
	    api_page_parse(c, PAGE_CURSOR_TIME_ID, &page, after) != 0)
		return;
	rc = store_artifact_list(c->ctx->store, &page, name, version, &items,
				 &n, next);
	if (rc != ARTIFACT_OK) {
		refused(c, rc, NULL);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		json_t *doc = artifact_json(&items[i], false);

		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	artifacts_free(items, n);
	if (arr == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_list(c, arr, next);
}

static void
artifact_show(struct api_call *c, const char *id)
{
	struct artifact a;
	enum artifact_rc rc;
	json_t *doc;

	memset(&a, 0, sizeof(a));
	rc = store_artifact_get(c->ctx->store, id, &a);
	if (rc != ARTIFACT_OK) {
		refused(c, rc, NULL);
		return;
	}
	doc = artifact_json(&a, true);
	artifact_clear(&a);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
}

static void
artifact_delete(struct api_call *c, const char *id)
{
	enum artifact_rc rc =
		store_artifact_delete(c->ctx->store, id, c->actor);

	if (rc != ARTIFACT_OK) {
		refused(c, rc, NULL);
		return;
	}
	c->resp->status = 204;
}

/* ---- PUT .../file ------------------------------------------------------------ */

static bool
is_octet_stream(const char *ct)
{
	static const char t[] = "application/octet-stream";

	return ct != NULL && strncmp(ct, t, sizeof(t) - 1) == 0 &&
	       (ct[sizeof(t) - 1] == '\0' || ct[sizeof(t) - 1] == ';' ||
		ct[sizeof(t) - 1] == ' ');
}

static void
artifact_upload_file(struct api_call *c, const char *id)
{
	const struct api_body_stream *s = c->req->body_stream;
	struct artifact_source src;
	struct artifact_upload_result res;
	struct artifact a;
	char detail[200];
	enum artifact_rc rc;
	json_t *doc;

	if (s == NULL) {
		api_problem(c->resp, 500, "internal-error",
			    "upload without a body stream");
		return;
	}
	if (!is_octet_stream(c->req->content_type)) {
		api_problem(c->resp, 415, "unsupported-media-type",
			    "send application/octet-stream");
		return;
	}
	memset(&a, 0, sizeof(a));
	src.read = s->read;
	src.arg = s->arg;
	src.length = s->length;
	src.max_size = s->max_size;
	rc = artifact_upload(c->ctx->store, id, &src, c->actor, &a, &res);
	if (s->consumed != NULL)
		*s->consumed = res.read == s->length;
	switch (rc) {
	case ARTIFACT_OK:
		break;
	case ARTIFACT_TOO_LARGE:
		snprintf(detail, sizeof(detail),
			 "artifacts are limited to %" PRIu64
			 " bytes (artifact_max_size)",
			 s->max_size);
		refused(c, rc, detail);
		return;
	case ARTIFACT_SIZE_MISMATCH:
		snprintf(detail, sizeof(detail),
			 "Content-Length is %" PRIu64
			 " bytes; the manifest says %" PRIu64,
			 s->length, res.size);
		refused(c, rc, detail);
		return;
	case ARTIFACT_HASH_MISMATCH:
		snprintf(detail, sizeof(detail),
			 "the file's sha256 is %s, not the manifest's; "
			 "nothing was kept",
			 res.sha256);
		refused(c, rc, detail);
		return;
	default:
		refused(c, rc, NULL);
		return;
	}
	doc = artifact_json(&a, false);
	artifact_clear(&a);
	if (doc == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	api_json(c->resp, 200, doc);
}

/* ---- routing -------------------------------------------------------------------- */

void
api_artifacts(struct api_call *c, const char *rest)
{
	const char *m = c->req->method;
	char id[SECRET_UUID_LEN];
	const char *tail = NULL;

	if (rest[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			artifact_list(c);
		else if (strcmp(m, "POST") == 0)
			artifact_create(c);
		else
			api_method_not_allowed(c->resp, "GET, POST");
		return;
	}
	if (api_path_id(rest, id, &tail) != 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (tail[0] == '\0') {
		if (strcmp(m, "GET") == 0)
			artifact_show(c, id);
		else if (strcmp(m, "DELETE") == 0)
			artifact_delete(c, id);
		else
			api_method_not_allowed(c->resp, "GET, DELETE");
		return;
	}
	if (strcmp(tail, "/file") == 0) {
		if (strcmp(m, "PUT") == 0)
			artifact_upload_file(c, id);
		else
			api_method_not_allowed(c->resp, "PUT");
		return;
	}
	api_problem(c->resp, 404, "not-found", NULL);
}
