/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_handle(): routes a request by path and method, authenticates bearer
 * admin tokens (core/token.c) and checks roles (viewer < operator <
 * admin). A refused token's 401 says why (reason: missing, unknown,
 * revoked, expired); a 403 names the role that may. Every path routed
 * here must be in the OpenAPI document (the fragments in
 * fleetd/api/openapi/): the unit test openapi_routes enumerates
 * api_paths[] and api_routes[]. Runs on job threads of the net workers.
 * Tokens are looked up by their SHA-256, so there is no secret
 * comparison to time; tokens are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "api/openapi.h"
#include "core/metrics.h"
#include "core/token.h"
#include "log.h"

static bool
path_is(const char *path, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) != 0 ||
	    (path[n] != '\0' && path[n] != '/'))
		return false;
	*rest = path + n;
	return true;
}

void
api_problem_member(struct api_response *resp, const char *name, json_t *value)
{
	json_t *doc = NULL;
	char *text = NULL;
	int rc;

	if (value == NULL || resp->body == NULL)
		goto out;
	doc = json_loadb(resp->body, resp->body_len, 0, NULL);
	if (!json_is_object(doc))
		goto out;
	rc = json_object_set_new(doc, name, value); /* steals value */
	value = NULL;
	if (rc != 0)
		goto out;
	text = json_dumps(doc, JSON_COMPACT);
	if (text == NULL)
		goto out;
	free(resp->body);
	resp->body = text;
	resp->body_len = strlen(text);
out:
	json_decref(value);
	json_decref(doc);
}

/* The 401: why the token was refused, in words and as "reason". */
static void
unauthorized(struct api_call *c, const char *reason, const char *detail)
{
	api_problem(c->resp, 401, "unauthorized", detail);
	api_problem_member(c->resp, "reason", json_string(reason));
}

static int
authenticate(struct api_call *c)
{
	const char *auth = c->req->authorization;
	struct token tok;
	enum token_rc rc;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
		unauthorized(c, "missing",
			     "send Authorization: Bearer <admin token>");
		return -1;
	}
	auth += 7;
	while (*auth == ' ')
		auth++;
	rc = token_authenticate(c->ctx->store, auth, api_now(), &tok);
	switch (rc) {
	case TOKEN_OK:
		break;
	case TOKEN_ERR_STORE:
		api_store_failed(c);
		return -1;
	case TOKEN_REVOKED:
		unauthorized(c, "revoked",
			     "this admin token was revoked; ask an admin for "
			     "a new one");
		return -1;
	case TOKEN_EXPIRED:
		unauthorized(c, "expired",
			     "this admin token has expired; ask an admin for "
			     "a new one");
		return -1;
	default:
		unauthorized(c, "unknown",
			     "unknown admin token (tokens are fla_ and 64 hex "
			     "digits)");
		return -1;
	}
	c->role = (enum api_role)tok.role;
	snprintf(c->actor, sizeof(c->actor), "token:%s", tok.id);
	token_clear(&tok);
	return 0;
}

/* The 403: which role may do it, and which this token has. */
static void
forbidden(struct api_call *c, enum api_role need)
{
	const char *need_name = token_role_name((enum token_role)need);
	char detail[160];

	snprintf(detail, sizeof(detail),
		 "%s %s needs the %s role or better; this token is %s",
		 c->req->method, c->req->path, need_name,
		 token_role_name((enum token_role)c->role));
	api_problem(c->resp, 403, "forbidden", detail);
	api_problem_member(c->resp, "required_role", json_string(need_name));
	api_problem_member(
		c->resp, "role",
		json_string(token_role_name((enum token_role)c->role)));
}

static enum api_role
required_role(const char *method, const char *resource)
{
	if (strcmp(resource, "admin-tokens") == 0)
		return API_ROLE_ADMIN;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return API_ROLE_VIEWER;
	if (strcmp(resource, "devices") == 0 || strcmp(resource, "tokens") == 0)
		return API_ROLE_OPERATOR;
	if (strcmp(resource, "certificates") == 0)
		return API_ROLE_OPERATOR;
	if (strcmp(resource, "profiles") == 0 ||
	    strcmp(resource, "config") == 0)
		return API_ROLE_OPERATOR;
	if (strcmp(resource, "deployments") == 0)
		return API_ROLE_OPERATOR;
	if (strcmp(resource, "artifacts") == 0)
		return API_ROLE_OPERATOR;
	if (strcmp(resource, "campaigns") == 0)
		return API_ROLE_OPERATOR;
	return API_ROLE_ADMIN;
}

static const struct {
	const char *prefix;
	const char *resource;
	void (*handler)(struct api_call *c, const char *rest);
} api_routes[] = {
	{"/api/v1/tokens", "tokens", api_tokens},
	{"/api/v1/admin-tokens", "admin-tokens", api_admin_tokens},
	{"/api/v1/devices", "devices", api_devices},
	{"/api/v1/audit", "audit", api_audit},
	{"/api/v1/certificates", "certificates", api_certificates},
	{"/api/v1/profiles", "profiles", api_profiles},
	{"/api/v1/config", "config", api_config},
	{"/api/v1/artifacts", "artifacts", api_artifacts},
	{"/api/v1/deployments", "deployments", api_deployments},
	{"/api/v1/release-keysets", "release-keysets", api_release_keysets},
	{"/api/v1/campaigns", "campaigns", api_campaigns},
};

static void
api_enroll_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_enroll(c);
}

static void
api_pki_ca_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_pki_ca(c);
}

static void
api_pki_crl_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_pki_crl(c);
}

static void
api_health_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_health(c);
}

static void
api_ready_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_ready(c);
}

static void
api_metrics_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_metrics(c);
}

static void
api_openapi_route(struct api_call *c, const char *rest)
{
	(void)rest;
	api_openapi(c);
}

/* Paths outside the /api/v1 resources, and the one public path inside:
 * exact paths with their only method, or a prefix whose handler routes
 * the rest (add "/.well-known/est" this way). Tried before api_routes[].
 * role: API_ROLE_NONE serves without an admin token (the handler checks
 * what it needs: an enrollment token in the body...). */
static const struct {
	const char *path;
	bool exact;
	const char *allow; /* exact paths: the only method */
	enum api_role role;
	void (*handler)(struct api_call *c, const char *rest);
} api_paths[] = {
	{"/api/v1/openapi.json", true, "GET", API_ROLE_NONE, api_openapi_route},
	{"/enroll/v1", true, "POST", API_ROLE_NONE, api_enroll_route},
	{"/pki/v1/ca.pem", true, "GET", API_ROLE_NONE, api_pki_ca_route},
	{"/pki/v1/crl", true, "GET", API_ROLE_NONE, api_pki_crl_route},
	{"/healthz", true, "GET", API_ROLE_NONE, api_health_route},
	{"/readyz", true, "GET", API_ROLE_NONE, api_ready_route},
	{"/metrics", true, "GET", API_ROLE_VIEWER, api_metrics_route},
	{"/.well-known/est", false, NULL, API_ROLE_NONE, api_est},
	{"/pki/v1/crl", false, "GET", API_ROLE_NONE, api_pki_crl_issuer},
};

#define API_NPATHS (sizeof(api_paths) / sizeof(api_paths[0]))
#define API_NROUTES (sizeof(api_routes) / sizeof(api_routes[0]))

const char *
api_route_at(size_t i, bool *exact, const char **allow)
{
	if (i < API_NPATHS) {
		*exact = api_paths[i].exact;
		*allow = api_paths[i].allow;
		return api_paths[i].path;
	}
	i -= API_NPATHS;
	if (i < API_NROUTES) {
		*exact = false;
		*allow = NULL;
		return api_routes[i].prefix;
	}
	return NULL;
}

int
api_route_find(const char *path)
{
	const char *rest = NULL;
	size_t i;

	for (i = 0; i < API_NPATHS; i++) {
		if (api_paths[i].exact
			    ? strcmp(path, api_paths[i].path) == 0
			    : path_is(path, api_paths[i].path, &rest))
			return (int)i;
	}
	for (i = 0; i < API_NROUTES; i++)
		if (path_is(path, api_routes[i].prefix, &rest))
			return (int)(API_NPATHS + i);
	return -1;
}

/* fleetd_enrollments_total: enrolled, or the problem type of the refusal
 * (token-revoked, csr-rejected, ...), documented reasons only. */
static void
count_enrollment(const struct api_response *resp)
{
	const char *result = "enrolled";
	json_t *doc = NULL;

	if (resp->status != 201) {
		const char *type;

		doc = json_loadb(resp->body ? resp->body : "", resp->body_len,
				 0, NULL);
		type = json_string_value(json_object_get(doc, "type"));
		result = type != NULL && strncmp(type,
						 "urn:fleet:problem:", 18) == 0
				 ? type + 18
				 : "error";
	}
	metrics_add(METRIC_ENROLLMENTS, 1, "result", result, NULL);
	json_decref(doc);
}

void
api_handle(struct api_ctx *ctx, const struct api_request *req,
	   struct api_response *resp)
{
	struct api_call c;
	const char *rest = "";
	const char *path = req->path ? req->path : "";
	int r = api_route_find(path);
	enum api_role need;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.req = req;
	c.resp = resp;
	if (r < 0) {
		/* Under /api/v1 the token is checked first, so that the set of
		 * resources is not probed without one. */
		if (!path_is(path, "/api/v1", &rest) || authenticate(&c) == 0)
			api_problem(resp, 404, "not-found", NULL);
		goto out;
	}
	if ((size_t)r < API_NPATHS) {
		need = api_paths[r].role;
		if (!api_paths[r].exact)
			path_is(path, api_paths[r].path, &rest);
	} else {
		need = required_role(req->method,
				     api_routes[r - API_NPATHS].resource);
		path_is(path, api_routes[r - API_NPATHS].prefix, &rest);
	}
	if (need != API_ROLE_NONE) {
		if (authenticate(&c) != 0)
			goto out;
		if (c.role < need) {
			forbidden(&c, need);
			goto out;
		}
	}
	if ((size_t)r < API_NPATHS) {
		if (api_paths[r].allow != NULL &&
		    strcmp(req->method, api_paths[r].allow) != 0)
			api_method_not_allowed(resp, api_paths[r].allow);
		else
			api_paths[r].handler(&c, rest);
		if (api_paths[r].handler == api_enroll_route)
			count_enrollment(resp);
	} else {
		api_routes[r - API_NPATHS].handler(&c, rest);
	}
out:
	if (resp->status == 0)
		api_problem(resp, 500, "internal-error", NULL);
	if (resp->status >= 500)
		log_write(LOG_LEVEL_WARN, req->request_id, "%s %s -> %d",
			  req->method, path, resp->status);
}

void
api_response_free(struct api_response *resp)
{
	if (resp == NULL)
		return;
	if (resp->secret && resp->body != NULL)
		OPENSSL_cleanse(resp->body, resp->body_len);
	resp->secret = 0;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}
