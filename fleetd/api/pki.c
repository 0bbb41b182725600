/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /pki/v1/ca.pem and GET /pki/v1/crl (no auth). Runs on job threads.
 *
 * The CRL is cached in PostgreSQL (table crl_cache), shared by every fleetd
 * instance: served while fresh (not marked stale and more than
 * CRL_REFRESH_S before its nextUpdate); a revocation marks it stale in
 * the revoking transaction. A stale or missing CRL is re-signed by the ca
 * process under an advisory lock (one instance signs, the others then read
 * its result) with the next crl_number_seq value, so numbers only grow.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "ca/signer_client.h"
#include "db/certificates.h"
#include "log.h"

#define CRL_VALIDITY_S (7L * 86400)
#define CRL_REFRESH_S (3L * 86400)

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

static void
crl_answer(struct api_call *c, unsigned char *der, size_t len)
{
	free(c->resp->body);
	c->resp->body = (char *)der;
	c->resp->body_len = len;
	c->resp->status = 200;
	c->resp->content_type = "application/pkix-crl";
}

/* Signs a new CRL inside the open transaction. */
static int
crl_sign(struct api_call *c, unsigned char **der, size_t *len)
{
	PGresult *res = NULL;
	struct signer_revoked *list = NULL;
	uint64_t number = 0;
	char err[200] = "";
	enum signer_status st;
	int i, n, rc = -1;

	res = db_crl_revoked(c->conn);
	if (res == NULL) {
		api_db_failed(c);
		return -1;
	}
	n = PQntuples(res);
	list = calloc(n > 0 ? (size_t)n : 1, sizeof(*list));
	if (list == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	for (i = 0; i < n; i++) {
		list[i].serial = PQgetvalue(res, i, 0);
		list[i].revoked_at = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		list[i].reason = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
	}
	if (db_crl_next_number(c->conn, &number) != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	st = signer_sign_crl(c->ctx->signer, list, (size_t)n, number,
			     CRL_VALIDITY_S, der, len, err, sizeof(err));
	if (st != SIGNER_OK) {
		log_warn("CRL signing failed: %s", err);
		api_problem(c->resp, 503, "service-unavailable",
			    "the certificate authority is unavailable");
		goto out;
	}
	if (db_crl_store(c->conn, number, *der, *len, CRL_VALIDITY_S) !=
	    DB_OK) {
		free(*der);
		*der = NULL;
		api_db_failed(c);
		goto out;
	}
	rc = 0;
out:
	free(list);
	PQclear(res);
	return rc;
}

void
api_pki_crl(struct api_call *c)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int rc;

	if (api_connect(c) != 0)
		return;
	rc = db_crl_cached(c->conn, CRL_REFRESH_S, &der, &len);
	if (rc == DB_OK) {
		crl_answer(c, der, len);
		return;
	}
	if (rc != DB_NOTFOUND || api_begin(c) != 0 ||
	    db_crl_lock(c->conn) != DB_OK) {
		api_db_failed(c);
		return;
	}
	/* Another instance may have signed while we waited for the lock. */
	rc = db_crl_cached(c->conn, CRL_REFRESH_S, &der, &len);
	if (rc == DB_NOTFOUND && crl_sign(c, &der, &len) != 0)
		return;
	if (rc == DB_ERR) {
		api_db_failed(c);
		return;
	}
	if (api_commit(c) != 0) {
		free(der);
		return;
	}
	crl_answer(c, der, len);
}
