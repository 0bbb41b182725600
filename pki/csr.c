// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate signing requests: creation on the device (agent) and the
 * server-side check run by the `ca` process before anything is issued. The
 * CSR comes from the network and is trusted for nothing: it is size-limited,
 * must parse completely, must carry a valid self-signature (proof of
 * possession) and a key type the policy allows. Its subject, attributes and
 * requested extensions are never used.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki_int.h"

void
pki_policy_default(struct pki_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->allowed_keys = PKI_KEY_P256 | PKI_KEY_P384 | PKI_KEY_ED25519;
	p->allow_rsa = false;
	p->max_csr_bytes = PKI_DEFAULT_MAX_CSR_BYTES;
	p->default_validity = PKI_DEFAULT_VALIDITY;
	p->max_validity = PKI_DEFAULT_MAX_VALIDITY;
	p->crl_url = NULL;
}

enum pki_result
pki_policy_check_key(const struct pki_policy *policy, const EVP_PKEY *key,
		     struct pki_error *err)
{
	enum pki_result r;
	enum pki_key_type type;
	int bits = 0;

	r = pki_key_type_of(key, &type, &bits, err);
	if (r != PKI_OK)
		return r;
	if (type == PKI_KEY_RSA) {
		if (!policy->allow_rsa)
			return pki_err(err, PKI_ERR_POLICY,
				       "RSA keys are not allowed");
		if (bits < PKI_MIN_RSA_BITS)
			return pki_err(err, PKI_ERR_POLICY,
				       "RSA key of %d bits is too small "
				       "(minimum %d)",
				       bits, PKI_MIN_RSA_BITS);
		return PKI_OK;
	}
	if ((policy->allowed_keys & (unsigned)type) == 0)
		return pki_err(err, PKI_ERR_POLICY,
			       "key type is not allowed by policy");
	return PKI_OK;
}

enum pki_result
pki_csr_create(EVP_PKEY *key, const char *cn, char **pem, size_t *len,
	       struct pki_error *err)
{
	enum pki_result r;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	const EVP_MD *md = NULL;
	BIO *bio = NULL;

	if (key == NULL || cn == NULL || pem == NULL)
		return pki_err(err, PKI_ERR_ARG, "CSR: no key or name");
	r = pki_sign_md(key, &md, err);
	if (r != PKI_OK)
		return r;
	req = X509_REQ_new();
	name = X509_NAME_new();
	bio = BIO_new(BIO_s_mem());
	if (req == NULL || name == NULL || bio == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "CSR: out of memory");
		goto out;
	}
	if (X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CSR: building");
		goto out;
	}
	if (X509_REQ_sign(req, key, md) <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CSR: signing");
		goto out;
	}
	if (PEM_write_bio_X509_REQ(bio, req) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CSR: encoding");
		goto out;
	}
	r = pki_bio_take(bio, pem, len, err);
out:
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return r;
}

static bool
looks_like_pem(const unsigned char *buf, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	size_t i = 0;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' ||
			   buf[i] == '\n'))
		i++;
	return len - i >= sizeof(tag) - 1 &&
	       memcmp(buf + i, tag, sizeof(tag) - 1) == 0;
}

static enum pki_result
parse_req(const unsigned char *buf, size_t len, X509_REQ **out,
	  struct pki_error *err)
{
	X509_REQ *req = NULL;
	const unsigned char *p = buf;
	BIO *bio = NULL;

	if (looks_like_pem(buf, len)) {
		bio = BIO_new_mem_buf(buf, (int)len);
		if (bio == NULL)
			return pki_err_ssl(err, PKI_ERR_NOMEM, "CSR: BIO");
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (req == NULL)
			return pki_err_ssl(err, PKI_ERR_PARSE,
					   "CSR: malformed PEM");
	} else {
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req == NULL)
			return pki_err_ssl(err, PKI_ERR_PARSE,
					   "CSR: malformed DER");
		if (p != buf + len) {
			X509_REQ_free(req);
			return pki_err(err, PKI_ERR_PARSE,
				       "CSR: %zu trailing bytes after DER",
				       (size_t)(buf + len - p));
		}
	}
	*out = req;
	return PKI_OK;
}

enum pki_result
pki_csr_parse_check(const void *buf, size_t len,
		    const struct pki_policy *policy, X509_REQ **out,
		    struct pki_error *err)
{
	enum pki_result r;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;

	if (buf == NULL || policy == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "CSR: no input");
	if (len == 0)
		return pki_err(err, PKI_ERR_PARSE, "CSR: empty");
	if (len > policy->max_csr_bytes || len > INT32_MAX)
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "CSR: %zu bytes, limit is %zu", len,
			       policy->max_csr_bytes);
	r = parse_req(buf, len, &req, err);
	if (r != PKI_OK)
		return r;
	key = X509_REQ_get0_pubkey(req);
	if (key == NULL) {
		r = pki_err_ssl(err, PKI_ERR_PARSE,
				"CSR: no usable public key");
		goto fail;
	}
	/* Policy first: it is cheap and refuses keys we would not verify. */
	r = pki_policy_check_key(policy, key, err);
	if (r != PKI_OK)
		goto fail;
	if (X509_REQ_verify(req, key) != 1) {
		r = pki_err_ssl(err, PKI_ERR_SIGNATURE,
				"CSR: signature does not verify (no proof of "
				"possession)");
		goto fail;
	}
	*out = req;
	return PKI_OK;
fail:
	X509_REQ_free(req);
	return r;
}
