/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: API request bodies. The strict RFC 8259 check and the object
 * parser (api/input.c), then the request-object rules the handlers apply
 * (core: token create specs, labels, durations, enrollment requests and
 * the enrollment flow itself over the in-memory store and fake signer of
 * the core unit tests). Properties: nothing crashes or leaks; what the
 * strict check accepts, jansson parses; an accepted enrollment writes a
 * device whose labels hold the token's over the request's.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/input.h"
#include "core/enroll.h"
#include "core/token.h"
#include "fake_signer.h"
#include "fake_store_tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The labels member into set; -1 when the API would refuse it. */
static int
read_labels(const json_t *labels, struct label_set *set)
{
	const char *key;
	json_t *v;

	if (labels == NULL || json_is_null(labels))
		return 0;
	if (!json_is_object(labels))
		return -1;
	json_object_foreach((json_t *)(uintptr_t)labels, key, v)
	{
		if (!json_is_string(v) ||
		    label_set_put(set, key, json_string_value(v)) != LABEL_OK)
			return -1;
	}
	return 0;
}

static void
token_body(const json_t *doc)
{
	struct token_spec spec;
	json_t *v;

	token_spec_init(&spec, TOKEN_ENROLL);
	v = json_object_get(doc, "expires_in");
	if (json_is_string(v))
		spec.expires_in = token_duration_parse(json_string_value(v));
	v = json_object_get(doc, "uses");
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= TOKEN_USES_MAX)
		spec.uses = (long)json_integer_value(v);
	spec.profile = json_string_value(json_object_get(doc, "profile"));
	if (read_labels(json_object_get(doc, "labels"), &spec.labels) == 0)
		(void)token_spec_check(&spec);
	token_spec_clear(&spec);
	token_spec_init(&spec, TOKEN_ADMIN);
	spec.role = token_role_parse(
		json_string_value(json_object_get(doc, "role")));
	spec.name = json_string_value(json_object_get(doc, "name"));
	(void)token_spec_check(&spec);
}

/* Runs an enrollment of the body against a fresh token. */
static void
enroll_body(const json_t *doc)
{
	struct signer_client signer = {SIGNER_OK, 0, ""};
	char text[TOKEN_TEXT_MAX], sha[SECRET_SHA256_HEX], err[128];
	struct enroll_request req;
	struct enroll_result res;
	struct store *st = fake_store_new();
	struct token_spec spec;
	struct token tok;
	json_t *csr = json_object_get(doc, "csr");

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	token_spec_init(&spec, TOKEN_ENROLL);
	if (st == NULL || label_set_put(&spec.labels, "site", "b7") != 0 ||
	    token_make(&spec, 1000, &tok, text, sha) != TOKEN_OK)
		goto out;
	(void)token_store(st, &tok, sha, "fuzz", NULL);
	token_clear(&tok);
	req.token = json_string_value(json_object_get(doc, "token"));
	if (req.token != NULL && strcmp(req.token, "TOKEN") == 0)
		req.token = text;
	if (req.token == NULL || !json_is_string(csr) ||
	    read_labels(json_object_get(doc, "labels"), &req.labels) != 0)
		goto out;
	req.csr = json_string_value(csr);
	req.csr_len = json_string_length(csr);
	req.model = json_string_value(json_object_get(doc, "model"));
	req.serial = json_string_value(json_object_get(doc, "serial"));
	if (enroll_device(st, &signer, &req, 3600, 1000, NULL, &res, err,
			  sizeof(err)) == ENROLL_OK) {
		if (st->ndevices != 1 ||
		    strcmp(label_set_get(&st->devices[0].labels, "site"),
			   "b7") != 0)
			abort();
		enroll_result_clear(&res);
	}
out:
	enroll_request_clear(&req);
	token_spec_clear(&spec);
	fake_store_free(st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	json_error_t jerr;
	json_t *doc, *any;
	bool strict =
		api_json_strict((const char *)data, size, err, sizeof(err));

	if (strict) {
		/* jansson may refuse only numbers it cannot hold. */
		any = json_loadb((const char *)data, size,
				 JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (any == NULL && strstr(jerr.text, "too big") == NULL &&
		    strstr(jerr.text, "overflow") == NULL)
			abort();
		json_decref(any);
	}
	doc = api_json_object_parse((const char *)data, size, err, sizeof(err));
	if (doc == NULL)
		return 0;
	if (!strict)
		abort();
	token_body(doc);
	enroll_body(doc);
	json_decref(doc);
	return 0;
}
