// SPDX-License-Identifier: Apache-2.0
/*
 * Renewal after expiry (docs/pki.md, "Renewal after expiry"): a device
 * that was offline past its certificate's end cannot renew over the
 * channel (the device listener refuses an expired certificate), so it
 * renews over EST simplereenroll on the api listener, presenting the
 * expired certificate in the TLS handshake (which proves possession of its
 * key over fresh server randomness); fleetd accepts it there within its
 * grace window (cert_grace), for the newest certificate of an active
 * device, with a NEW key. The answer becomes the next identity generation
 * (identity.c: one atomic identity.json switch), so a kill at any point
 * leaves the old identity or the new one, never none.
 *
 * Blocking (HTTPS); runs in fleet-agent at start and after a connection
 * the server refused for an expired certificate. The server's answer is
 * untrusted: bounded by the HTTPS client, base64 and PKCS#7 parsed
 * strictly (pki/pkcs7.c, fuzzed), and the certificate must carry the new
 * key and name this device before it is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "agent_int.h"
#include "clock.h"
#include "https.h"
#include "log.h"

#define EST_TIMEOUT_MS 30000
#define EST_MAX_BODY (64u * 1024u)
#define EST_MAX_CERTS 8

bool
agent_est_due(const struct agent_identity *id, int tls_alert)
{
	return id->not_after > 0 && (id->not_after <= clock_wall_s() ||
				     tls_alert == SSL_AD_CERTIFICATE_EXPIRED);
}

/* A certs-only PKCS#7 answer (base64) as PEM text of its certificates,
 * and the first one parsed. */
static int
est_certs(const struct https_response *resp, char **pem, X509 **first,
	  char *err, size_t errlen)
{
	struct pki_error perr;
	unsigned char *der = NULL;
	size_t der_len = 0, n = 0, len = 0;
	X509 **certs = NULL;
	int rc = -1;

	if (pki_base64_decode(resp->body, resp->body_len, PKI_PKCS7_MAX_BYTES,
			      &der, &der_len, &perr) != PKI_OK ||
	    pki_pkcs7_certs_parse(der, der_len, EST_MAX_CERTS, &certs, &n,
				  &perr) != PKI_OK ||
	    pki_cert_pem(certs, n, pem, &len, &perr) != PKI_OK) {
		snprintf(err, errlen, "EST answer: %s", perr.msg);
		goto out;
	}
	if (first != NULL) {
		*first = certs[0];
		certs[0] = NULL;
	}
	rc = 0;
out:
	pki_certs_free(certs, n);
	free(der);
	return rc;
}

/* The body of a CSR request: the base64 lines of the PEM CSR (its DER). */
static char *
est_csr_body(const char *pem, size_t *len)
{
	const char *b = strstr(pem, "-----\n"), *e = strstr(pem, "-----END");
	char *out;

	if (b == NULL || e == NULL || e < b + 6)
		return NULL;
	b += 6;
	*len = (size_t)(e - b);
	out = malloc(*len + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, b, *len);
	out[*len] = '\0';
	return out;
}

/* One EST exchange; *resp owned by the caller on 0. */
static int
est_call(const char *api_url, const struct https_options *opts,
	 const char *method, const char *op, const char *body, size_t len,
	 struct https_response *resp, char *err, size_t errlen)
{
	struct https_header h[1] = {{"Content-Type", "application/pkcs10"}};
	struct https_client *c = NULL;
	struct https_request req;
	struct https_url url;
	char path[128];
	int rc = -1;

	if (https_url_parse(api_url, &url, err, errlen) != 0)
		return -1;
	c = https_client_new(opts, err, errlen);
	if (c == NULL)
		return -1;
	snprintf(path, sizeof(path), "/.well-known/est/%s", op);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.headers = body != NULL ? h : NULL;
	req.n_headers = body != NULL ? 1 : 0;
	req.body = body;
	req.body_len = len;
	if (https_request(c, &url, &req, resp, err, errlen) == 0)
		rc = 0;
	https_client_free(c);
	return rc;
}

int
agent_est_renew(const char *dir, const char *api_url, const char *ca_file,
		struct agent_identity *id, struct agent_renew *renew,
		const char *logctx, char *err, size_t errlen)
{
	struct agent_identity_files cur, next;
	char key[AGENT_PATH_MAX], client[AGENT_PATH_MAX],
		newkey[AGENT_PATH_MAX];
	struct https_options opts;
	struct https_response resp;
	struct agent_identity out;
	struct pki_error perr;
	EVP_PKEY *k = NULL;
	X509 *cert = NULL;
	char *csr = NULL, *body = NULL, *cert_pem = NULL, *chain = NULL;
	size_t csr_len = 0, body_len = 0;
	int gen, old = id->generation, rc = -1;

	memset(&resp, 0, sizeof(resp));
	gen = (renew->state != AGENT_RENEW_NONE && renew->gen > old ? renew->gen
								    : old) +
	      1;
	if (api_url == NULL || agent_identity_files(old, &cur) != 0 ||
	    agent_identity_files(gen, &next) != 0 ||
	    agent_path(key, sizeof(key), dir, cur.key) != 0 ||
	    agent_path(client, sizeof(client), dir, cur.client) != 0 ||
	    agent_path(newkey, sizeof(newkey), dir, next.key) != 0) {
		snprintf(err, errlen, "EST: no api_url or bad paths");
		return -1;
	}
	/* A NEW key (the server refuses the old one), written first. */
	if (pki_key_generate(PKI_KEY_P256, &k, &perr) != PKI_OK ||
	    pki_key_save_private(k, newkey, true, &perr) != PKI_OK ||
	    pki_csr_create(k, id->device_id, &csr, &csr_len, &perr) != PKI_OK) {
		snprintf(err, errlen, "EST: %s", perr.msg);
		goto out;
	}
	body = est_csr_body(csr, &body_len);
	if (body == NULL) {
		snprintf(err, errlen, "EST: cannot encode the CSR");
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.ca_file = ca_file;
	opts.cert_file = client;
	opts.key_file = key;
	opts.timeout_ms = EST_TIMEOUT_MS;
	opts.max_body = EST_MAX_BODY;
	if (est_call(api_url, &opts, "POST", "simplereenroll", body, body_len,
		     &resp, err, errlen) != 0)
		goto out;
	if (resp.status != 200) {
		/* problem+json: its detail says why (past the grace window,
		 * revoked, decommissioned...). */
		json_t *doc = json_loadb(resp.body ? resp.body : "",
					 resp.body_len, 0, NULL);
		const char *type =
			json_string_value(json_object_get(doc, "type"));

		snprintf(err, errlen, "EST re-enroll refused: %d %s",
			 resp.status, type != NULL ? type : "");
		json_decref(doc);
		goto out;
	}
	if (est_certs(&resp, &cert_pem, &cert, err, errlen) != 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), k) != 1) {
		snprintf(err, errlen,
			 "EST: the certificate is not for the new "
			 "key");
		goto out;
	}
	{
		char cn[64] = "";

		if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					      NID_commonName, cn,
					      sizeof(cn)) <= 0 ||
		    strcmp(cn, id->device_id) != 0) {
			snprintf(err, errlen,
				 "EST: the certificate names another device");
			goto out;
		}
	}
	/* The chain: the CA certificates now (after an issuing-CA rollover
	 * the new certificate may come from the new CA). */
	https_response_free(&resp);
	opts.cert_file = NULL;
	opts.key_file = NULL;
	if (est_call(api_url, &opts, "GET", "cacerts", NULL, 0, &resp, err,
		     errlen) != 0)
		goto out;
	if (resp.status != 200 ||
	    est_certs(&resp, &chain, NULL, err, errlen) != 0) {
		if (resp.status != 200)
			snprintf(err, errlen, "EST cacerts: %d", resp.status);
		goto out;
	}
	if (agent_identity_write_generation(dir, gen, cert_pem, chain, err,
					    errlen) != 0 ||
	    agent_identity_switch(dir, id, gen, &out, err, errlen) != 0)
		goto out;
	/* The new identity is in use: the expired one and any renewal that
	 * was pending over the channel are of no use now. */
	if (renew->state != AGENT_RENEW_NONE) {
		char journal[AGENT_PATH_MAX];

		if (renew->gen != gen)
			agent_identity_remove_generation(dir, renew->gen);
		if (agent_path(journal, sizeof(journal), dir,
			       AGENT_RENEW_FILE) == 0)
			unlink(journal);
		memset(renew, 0, sizeof(*renew));
	}
	agent_identity_remove_generation(dir, old);
	log_write(LOG_LEVEL_INFO, logctx,
		  "renewed the expired certificate %s over EST: now %s "
		  "(generation %d)",
		  id->cert_serial, out.cert_serial, gen);
	*id = out;
	rc = 0;
out:
	if (rc != 0) {
		char stale[AGENT_PATH_MAX];

		/* The unused key goes (the next try makes another). */
		if (agent_path(stale, sizeof(stale), dir, next.key) == 0)
			unlink(stale);
	}
	https_response_free(&resp);
	X509_free(cert);
	EVP_PKEY_free(k);
	free(csr);
	free(body);
	free(cert_pem);
	free(chain);
	return rc;
}
