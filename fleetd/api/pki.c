/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /pki/v1/ca.pem and GET /pki/v1/crl (no auth). Runs on job threads.
 * The CRL rule (cached while fresh, re-signed from one snapshot of the
 * revoked set) lives in core/crl.c; this file only maps it to HTTP.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/crl.h"
#include "core/store.h"
#include "log.h"

void
api_pki_ca(struct api_call *c)
{
	const char *pem = c->ctx->env->ca_bundle_pem;

	c->resp->body = strdup(pem ? pem : "");
	if (c->resp->body == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	c->resp->body_len = strlen(c->resp->body);
	c->resp->status = 200;
	c->resp->content_type = "application/pem-certificate-chain";
}

void
api_pki_crl(struct api_call *c)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char err[200];

	switch (crl_current(c->ctx->store, c->ctx->signer, &der, &len, err,
			    sizeof(err))) {
	case CRL_OK:
		free(c->resp->body);
		c->resp->body = (char *)der;
		c->resp->body_len = len;
		c->resp->status = 200;
		c->resp->content_type = "application/pkix-crl";
		return;
	case CRL_ERR_SIGNER:
		log_warn("CRL signing failed: %s", err);
		api_problem(c->resp, 503, "service-unavailable",
			    "the certificate authority is unavailable");
		return;
	case CRL_ERR_STORE:
		if (store_unavailable(c->ctx->store)) {
			api_problem(c->resp, 503, "service-unavailable",
				    "the database is unreachable");
			return;
		}
		break;
	case CRL_ERR_NOMEM:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}
