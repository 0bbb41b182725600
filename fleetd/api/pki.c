/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /pki/v1/ca.pem, GET /pki/v1/crl and GET /pki/v1/crl/{key_id} (no
 * auth). Runs on job threads. The CRL rule (cached while fresh, re-signed
 * from one snapshot of the revoked set) lives in core/crl.c, per issuing
 * CA in core/issuing_ca.c; this file only maps them to HTTP.
 *
 * ca.pem is the bundle: the root and every trusted issuing CA (two during
 * a rollover). /pki/v1/crl is the CRL that the certificates of the first
 * issuing CA name; until a rollover it is the fleet's one CRL (crl.c),
 * after it the first CA's own. A CA made by `fleetd pki rotate-issuing`
 * names /pki/v1/crl/{its key id} (docs/pki.md, "CRLs").
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/crl.h"
#include "core/issuing_ca.h"
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

/* The CRL of one issuing CA ("" = the first); 0 when answered, 1 when
 * there was no rollover yet (serve crl_current). */
static int
pki_crl_of(struct api_call *c, const char *key_id)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char err[200];

	switch (issuing_ca_crl(c->ctx->store, c->ctx->signer, key_id, &der,
			       &len, err, sizeof(err))) {
	case ISSUING_CA_CRL_OK:
		free(c->resp->body);
		c->resp->body = (char *)der;
		c->resp->body_len = len;
		c->resp->status = 200;
		c->resp->content_type = "application/pkix-crl";
		return 0;
	case ISSUING_CA_CRL_NO_ROLLOVER:
	case ISSUING_CA_CRL_NOT_FOUND:
		/* Before a rollover no CA is registered by key id. */
		if (key_id[0] == '\0')
			return 1;
		api_problem(c->resp, 404, "not-found",
			    "no issuing CA with that key id (before a "
			    "rollover the CRL is /pki/v1/crl)");
		return 0;
	case ISSUING_CA_CRL_ERR_SIGNER:
		log_warn("CRL signing failed: %s", err);
		api_problem(c->resp, 503, "service-unavailable",
			    "the certificate authority is unavailable");
		return 0;
	case ISSUING_CA_CRL_ERR_STORE:
		api_store_failed(c);
		return 0;
	case ISSUING_CA_CRL_ERR_NOMEM:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
	return 0;
}

void
api_pki_crl_issuer(struct api_call *c, const char *rest)
{
	if (rest[0] != '/' || !issuing_ca_id_valid(rest + 1)) {
		api_problem(c->resp, 404, "not-found",
			    "/pki/v1/crl/{key_id}: the key id is 64 lowercase "
			    "hex digits (SHA-256 of the CA's public key)");
		return;
	}
	(void)pki_crl_of(c, rest + 1);
}

void
api_pki_crl(struct api_call *c)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char err[200];

	if (pki_crl_of(c, "") == 0)
		return;
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
		api_store_failed(c);
		return;
	case CRL_ERR_NOMEM:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}
