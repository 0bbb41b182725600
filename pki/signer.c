// SPDX-License-Identifier: Apache-2.0
/*
 * The in-process signer served by the `ca` process: it holds the issuing CA
 * key, applies the issuance policy in one place and issues device
 * certificates from CSRs and signs CRLs. Requests (CSR bytes, device id,
 * validity) come from other fleetd processes and, ultimately, devices; they
 * are checked here. What can be computed once per CA (issuer name, fixed
 * extensions, digest) is cached so the issue path stays lean.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

struct pki_signer {
	X509 *cert;
	EVP_PKEY *key;
	struct pki_policy policy;
	char *crl_url;
	struct pki_device_profile *profile;
	struct pki_csr_cache *csr_cache;
};

void
pki_signer_free(struct pki_signer *s)
{
	if (s == NULL)
		return;
	pki_device_profile_free(s->profile);
	pki_csr_cache_free(s->csr_cache);
	EVP_PKEY_free(s->key); /* OpenSSL clears private key material */
	X509_free(s->cert);
	free(s->crl_url);
	free(s);
}

X509 *
pki_signer_cert(const struct pki_signer *s)
{
	return s != NULL ? s->cert : NULL;
}

enum pki_result
pki_signer_new(X509 *cert, EVP_PKEY *key, const struct pki_policy *policy,
	       struct pki_signer **out, struct pki_error *err)
{
	struct pki_signer *s = NULL;
	enum pki_result r;

	if (cert == NULL || key == NULL || policy == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG,
			       "signer: need certificate, key and policy");
	if (policy->max_csr_bytes == 0 || policy->default_validity <= 0 ||
	    policy->max_validity < policy->default_validity)
		return pki_err(err, PKI_ERR_ARG,
			       "signer: policy limits are inconsistent");
	if (X509_check_private_key(cert, key) != 1)
		return pki_err_ssl(err, PKI_ERR_ARG,
				   "signer: key does not match the CA "
				   "certificate");
	if (X509_check_ca(cert) == 0)
		return pki_err(err, PKI_ERR_ARG,
			       "signer: certificate is not a CA");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	s->policy = *policy;
	if (policy->crl_url != NULL) {
		s->crl_url = strdup(policy->crl_url);
		if (s->crl_url == NULL) {
			r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
			goto fail;
		}
	}
	s->policy.crl_url = s->crl_url;
	r = pki_device_profile_new(cert, key, s->crl_url, &s->profile, err);
	if (r == PKI_OK)
		r = pki_csr_cache_new(&s->csr_cache, err);
	if (r != PKI_OK)
		goto fail;
	if (X509_up_ref(cert) != 1 || EVP_PKEY_up_ref(key) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "signer: references");
		goto fail;
	}
	s->cert = cert;
	s->key = key;
	*out = s;
	return PKI_OK;
fail:
	pki_signer_free(s);
	return r;
}

enum pki_result
pki_signer_open(const char *cert_path, const char *key_path,
		const struct pki_policy *policy, struct pki_signer **out,
		struct pki_error *err)
{
	enum pki_result r;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	r = pki_cert_load(cert_path, &cert, err);
	if (r != PKI_OK)
		return r;
	r = pki_key_load_private(key_path, &key, err);
	if (r == PKI_OK)
		r = pki_signer_new(cert, key, policy, out, err);
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

void
pki_issued_clear(struct pki_issued *r)
{
	if (r == NULL)
		return;
	free(r->cert_pem);
	free(r->cert_der);
	memset(r, 0, sizeof(*r));
}

/* PEM of the DER certificate, as PEM_write_bio writes it: base64 in lines
 * of 64 characters between the BEGIN and END lines. */
static enum pki_result
encode_pem(struct pki_issued *res, struct pki_error *err)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
	static const char end[] = "-----END CERTIFICATE-----\n";
	size_t lines = (res->cert_der_len + 47) / 48, cap, i, n, len = 0;
	char *pem = NULL;

	cap = sizeof(begin) - 1 + lines * 65 + sizeof(end);
	pem = malloc(cap);
	if (pem == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	memcpy(pem, begin, sizeof(begin) - 1);
	len = sizeof(begin) - 1;
	for (i = 0; i < res->cert_der_len; i += 48) {
		n = res->cert_der_len - i < 48 ? res->cert_der_len - i : 48;
		len += (size_t)EVP_EncodeBlock((unsigned char *)pem + len,
					       res->cert_der + i, (int)n);
		pem[len++] = '\n';
	}
	memcpy(pem + len, end, sizeof(end)); /* with its NUL */
	res->cert_pem = pem;
	res->cert_pem_len = len + sizeof(end) - 1;
	return PKI_OK;
}

enum pki_result
pki_signer_issue_device(struct pki_signer *s, const void *csr, size_t csr_len,
			const char *device_id, int64_t validity_seconds,
			struct pki_issued *out, struct pki_error *err)
{
	enum pki_result r;
	struct pki_issued res;
	unsigned char *spki = NULL;
	size_t spki_len = 0;
	int64_t now;

	memset(&res, 0, sizeof(res));
	if (s == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "signer: no signer or output");
	if (!pki_device_id_valid(device_id))
		return pki_err(err, PKI_ERR_ARG,
			       "device id is not a canonical lowercase UUID");
	if (validity_seconds == 0)
		validity_seconds = s->policy.default_validity;
	if (validity_seconds < 0 || validity_seconds > s->policy.max_validity)
		return pki_err(err, PKI_ERR_POLICY,
			       "validity of %lld s is outside 1..%lld s",
			       (long long)validity_seconds,
			       (long long)s->policy.max_validity);
	r = pki_csr_check_spki(csr, csr_len, &s->policy, s->csr_cache, &spki,
			       &spki_len, err);
	if (r != PKI_OK)
		return r;
	now = (int64_t)time(NULL);
	res.not_before = now - PKI_BACKDATE_SECONDS;
	res.not_after = now + validity_seconds;
	r = pki_device_profile_issue(s->profile, s->key, spki, spki_len,
				     device_id, res.not_before, res.not_after,
				     &res.cert_der, &res.cert_der_len,
				     res.serial_hex, err);
	if (r == PKI_OK)
		r = encode_pem(&res, err);
	free(spki);
	if (r != PKI_OK) {
		pki_issued_clear(&res);
		return r;
	}
	*out = res;
	return PKI_OK;
}

enum pki_result
pki_signer_sign_crl(struct pki_signer *s, const struct pki_revoked *revoked,
		    size_t n, uint64_t crl_number, int64_t next_update_seconds,
		    unsigned char **der, size_t *der_len, struct pki_error *err)
{
	if (s == NULL)
		return pki_err(err, PKI_ERR_ARG, "signer: no signer");
	return pki_crl_sign(s->cert, s->key, revoked, n, crl_number,
			    next_update_seconds, der, der_len, err);
}
