/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RFC 7807 problem+json answers with the stable slugs of docs/api.md. Runs
 * on job threads. The detail is ours (never echoes a secret).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static const struct {
	const char *slug;
	const char *title;
} titles[] = {
	{"malformed-json", "Malformed JSON"},
	{"invalid-field", "Invalid field"},
	{"unauthorized", "Unauthorized"},
	{"forbidden", "Forbidden"},
	{"not-found", "Not found"},
	{"method-not-allowed", "Method not allowed"},
	{"conflict", "Conflict"},
	{"precondition-failed", "Precondition failed"},
	{"payload-too-large", "Payload too large"},
	{"unsupported-media-type", "Unsupported media type"},
	{"service-unavailable", "Service unavailable"},
	{"token-invalid", "Enrollment token invalid"},
	{"token-exhausted", "Enrollment token exhausted"},
	{"token-expired", "Enrollment token expired"},
	{"token-revoked", "Enrollment token revoked"},
	{"csr-rejected", "CSR rejected"},
	{"ambiguous-id", "Ambiguous id prefix"},
	{"not-ready", "Not ready"},
	{"invalid-document", "Invalid configuration document"},
	{"invalid-merge-patch", "Invalid merge patch"},
	{"no-version", "Profile has no version"},
	{"unknown-profile", "Unknown profile"},
	{"unknown-version", "Unknown profile version"},
	{"selector-matches-nothing", "Selector matches no device"},
	{"source-has-no-config", "Source device has no configuration"},
	{"certificate-expired-past-grace",
	 "Certificate expired past the grace window"},
	{"certificate-not-newest", "Not the device's newest certificate"},
	{"est-certificate-not-active", "Client certificate not active"},
	{"est-client-certificate-invalid", "Client certificate invalid"},
	{"est-client-certificate-required", "Client certificate required"},
	{"est-device-not-active", "Device not active"},
	{"est-grace-disabled", "Renewal after expiry disabled"},
	{"est-key-reused", "Key reused"},
	{"internal-error", "Internal error"},
};

static void
problem_fill(struct api_response *resp, int status, const char *slug,
	     const char *detail, const char *field)
{
	char type[96];
	const char *title = slug;
	json_t *doc;
	size_t i;

	for (i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		if (strcmp(titles[i].slug, slug) == 0)
			title = titles[i].title;
	snprintf(type, sizeof(type), "urn:fleet:problem:%s", slug);
	api_response_free(resp);
	resp->etag[0] = '\0';
	resp->location[0] = '\0';
	doc = json_pack("{s:s, s:s, s:i}", "type", type, "title", title,
			"status", status);
	if (doc != NULL && detail != NULL)
		json_object_set_new(doc, "detail", json_string(detail));
	if (doc != NULL && field != NULL)
		json_object_set_new(doc, "field", json_string(field));
	if (doc != NULL)
		resp->body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	resp->status = status;
	resp->content_type = "application/problem+json";
	resp->body_len = resp->body ? strlen(resp->body) : 0;
}

void
api_problem(struct api_response *resp, int status, const char *slug,
	    const char *detail)
{
	problem_fill(resp, status, slug, detail, NULL);
}

void
api_problem_field(struct api_response *resp, const char *field,
		  const char *detail)
{
	problem_fill(resp, 400, "invalid-field", detail, field);
}

void
api_method_not_allowed(struct api_response *resp, const char *allow)
{
	problem_fill(resp, 405, "method-not-allowed", NULL, NULL);
	snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
}

void
api_store_failed(struct api_call *c)
{
	if (c->ctx->store != NULL && store_write_unconfirmed(c->ctx->store))
		api_problem(c->resp, 503, "service-unavailable",
			    "the database did not confirm the write in time; "
			    "it may have been made: retry (with the same "
			    "Idempotency-Key, to get its answer)");
	else if (c->ctx->store == NULL || store_unavailable(c->ctx->store))
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
	else
		api_problem(c->resp, 500, "internal-error",
			    "a database query failed");
}
