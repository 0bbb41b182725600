/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_handle(): routes a request by path and method, authenticates bearer
 * admin tokens (core/token.c) and checks roles (viewer < operator <
 * admin). Runs on job threads of the net workers. Tokens are looked up by
 * their SHA-256, so there is no secret comparison to time; tokens are
 * never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
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

static int
authenticate(struct api_call *c)
{
	const char *auth = c->req->authorization;
	struct token tok;
	enum token_rc rc;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		goto unauthorized;
	auth += 7;
	while (*auth == ' ')
		auth++;
	rc = token_authenticate(c->ctx->store, auth, api_now(), &tok);
	if (rc == TOKEN_ERR_STORE) {
		api_store_failed(c);
		return -1;
	}
	if (rc != TOKEN_OK)
		goto unauthorized;
	c->role = (enum api_role)tok.role;
	snprintf(c->actor, sizeof(c->actor), "token:%s", tok.id);
	token_clear(&tok);
	return 0;
unauthorized:
	api_problem(c->resp, 401, "unauthorized",
		    "send Authorization: Bearer <admin token>");
	return -1;
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
};

static void
route_api(struct api_call *c)
{
	const char *rest = NULL;
	size_t i;

	if (authenticate(c) != 0)
		return;
	for (i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		if (!path_is(c->req->path, api_routes[i].prefix, &rest))
			continue;
		if (c->role <
		    required_role(c->req->method, api_routes[i].resource)) {
			api_problem(c->resp, 403, "forbidden",
				    "this token's role may not do that");
			return;
		}
		api_routes[i].handler(c, rest);
		return;
	}
	api_problem(c->resp, 404, "not-found", NULL);
}

void
api_handle(struct api_ctx *ctx, const struct api_request *req,
	   struct api_response *resp)
{
	struct api_call c;
	const char *rest = NULL;
	const char *path = req->path ? req->path : "";

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.req = req;
	c.resp = resp;
	if (path_is(path, "/api/v1", &rest)) {
		route_api(&c);
	} else if (strcmp(path, "/enroll/v1") == 0) {
		if (strcmp(req->method, "POST") == 0)
			api_enroll(&c);
		else
			api_method_not_allowed(resp, "POST");
	} else if (strcmp(path, "/pki/v1/ca.pem") == 0 ||
		   strcmp(path, "/pki/v1/crl") == 0 ||
		   strcmp(path, "/healthz") == 0) {
		if (strcmp(req->method, "GET") != 0)
			api_method_not_allowed(resp, "GET");
		else if (path[1] == 'h')
			api_health(&c);
		else if (path[8] == 'c' && path[9] == 'a')
			api_pki_ca(&c);
		else
			api_pki_crl(&c);
	} else {
		api_problem(resp, 404, "not-found", NULL);
	}
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
