// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate signing requests: creation on the device (agent) and the
 * server-side check run by the `ca` process before anything is issued. The
 * CSR comes from the network and is trusted for nothing: it is size-limited,
 * must parse completely, must carry a valid self-signature (proof of
 * possession) made with SHA-256 or better (or Ed25519), and a key type the
 * policy allows, on a named curve for EC. Its subject, attributes and
 * requested extensions are never used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
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

/*
 * Issue 14: an EC key must name its curve (RFC 5480 2.1.1: namedCurve
 * only). OpenSSL maps explicit parameters of a known curve back to it, so
 * the key type alone would pass, and the certificate would then carry the
 * explicit parameters and fail `openssl verify -x509_strict`.
 */
static enum pki_result
check_named_curve(X509_REQ *req, struct pki_error *err)
{
	X509_PUBKEY *pub = X509_REQ_get_X509_PUBKEY(req);
	const ASN1_OBJECT *alg = NULL;
	const void *pval = NULL;
	X509_ALGOR *algor = NULL;
	int ptype = 0;

	if (pub == NULL ||
	    X509_PUBKEY_get0_param(NULL, NULL, NULL, &algor, pub) != 1)
		return pki_err_ssl(err, PKI_ERR_PARSE, "CSR: no public key");
	X509_ALGOR_get0(&alg, &ptype, &pval, algor);
	if (OBJ_obj2nid(alg) == NID_X9_62_id_ecPublicKey &&
	    ptype != V_ASN1_OBJECT)
		return pki_err(err, PKI_ERR_POLICY,
			       "CSR: EC key with explicit curve parameters "
			       "(only named curves are allowed)");
	return PKI_OK;
}

/* Issue 14: the self-signature uses SHA-256 or better (or is Ed25519);
 * SHA-1 and MD5 are refused. */
static enum pki_result
check_signature_digest(const X509_REQ *req, struct pki_error *err)
{
	const X509_ALGOR *sigalg = NULL;
	const ASN1_OBJECT *oid = NULL;
	int md = NID_undef, pk = NID_undef;

	X509_REQ_get0_signature(req, NULL, &sigalg);
	if (sigalg == NULL)
		return pki_err(err, PKI_ERR_PARSE, "CSR: no signature");
	X509_ALGOR_get0(&oid, NULL, NULL, sigalg);
	if (OBJ_find_sigid_algs(OBJ_obj2nid(oid), &md, &pk) != 1)
		return pki_err(err, PKI_ERR_POLICY,
			       "CSR: unknown signature algorithm");
	switch (md) {
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
	case NID_sha3_256:
	case NID_sha3_384:
	case NID_sha3_512:
		return PKI_OK;
	case NID_undef:
		if (pk == NID_ED25519 || pk == NID_ED448)
			return PKI_OK;
		break;
	default:
		break;
	}
	return pki_err(err, PKI_ERR_POLICY,
		       "CSR: signed with %s (SHA-256 or better is required)",
		       md != NID_undef ? OBJ_nid2sn(md) : "an unknown digest");
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
	if (r == PKI_OK)
		r = check_named_curve(req, err);
	if (r == PKI_OK)
		r = check_signature_digest(req, err);
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

/* ---- the signer's CSR check ------------------------------------------ */

/*
 * The keys and signature algorithms the walk below handles itself, as the
 * exact DER of their AlgorithmIdentifier. Anything else (RSA, other curves,
 * explicit parameters, parameters spelt differently) goes to
 * pki_csr_parse_check, so the walk never accepts what OpenSSL's parser would
 * refuse and never decides a result that parser would decide differently.
 */
static const unsigned char alg_p256[] = {
	0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char alg_p384[] = {0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
					 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
					 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char alg_ed25519[] = {0x30, 0x05, 0x06, 0x03,
					    0x2b, 0x65, 0x70};
static const unsigned char sig_ecdsa_sha256[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const unsigned char sig_ecdsa_sha384[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const unsigned char sig_ecdsa_sha512[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};

struct pki_csr_cache {
	EVP_PKEY *p256; /* domain parameters only */
	EVP_PKEY *p384;
};

void
pki_csr_cache_free(struct pki_csr_cache *c)
{
	if (c == NULL)
		return;
	EVP_PKEY_free(c->p256);
	EVP_PKEY_free(c->p384);
	free(c);
}

static EVP_PKEY *
ec_domain(const char *group)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[2];
	char name[16];

	snprintf(name, sizeof(name), "%s", group);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     name, 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEY_PARAMETERS, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

enum pki_result
pki_csr_cache_new(struct pki_csr_cache **out, struct pki_error *err)
{
	struct pki_csr_cache *c = NULL;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	c->p256 = ec_domain("P-256");
	c->p384 = ec_domain("P-384");
	if (c->p256 == NULL || c->p384 == NULL) {
		pki_csr_cache_free(c);
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "EC domain parameters");
	}
	*out = c;
	return PKI_OK;
}

/* What the walk found in a CSR it can handle itself. */
struct csr_parts {
	struct pki_der tbs; /* CertificationRequestInfo, whole element */
	struct pki_der spki; /* SubjectPublicKeyInfo, whole element */
	struct pki_der key; /* subjectPublicKey bits (no unused-bits octet) */
	struct pki_der sig; /* signature bits (no unused-bits octet) */
	enum pki_key_type type;
	const char *md; /* NULL for Ed25519 */
};

static bool
der_equal(const struct pki_der *d, const unsigned char *want, size_t len)
{
	return d->len == len && memcmp(d->p, want, len) == 0;
}

/* A BIT STRING's content without its unused-bits octet, which must be 0. */
static bool
whole_bits(const struct pki_der *bits, struct pki_der *out)
{
	if (bits->len < 1 || bits->p[0] != 0)
		return false;
	out->p = bits->p + 1;
	out->len = bits->len - 1;
	return true;
}

/* Name and attributes are ignored but must still parse as OpenSSL would
 * parse them inside the CSR: the same items, decoded to their end. */
static bool
ignored_parts_parse(const struct pki_der *name, const struct pki_der *attrs)
{
	struct pki_der in = *attrs, tlv;
	const unsigned char *p = name->p;
	X509_NAME *n = NULL;
	X509_ATTRIBUTE *a = NULL;

	n = d2i_X509_NAME(NULL, &p, (long)name->len);
	X509_NAME_free(n);
	if (n == NULL || p != name->p + name->len)
		return false;
	while (in.len > 0) {
		if (!pki_der_get(&in, 0x30, NULL, &tlv))
			return false;
		p = tlv.p;
		a = d2i_X509_ATTRIBUTE(NULL, &p, (long)tlv.len);
		X509_ATTRIBUTE_free(a);
		if (a == NULL || p != tlv.p + tlv.len)
			return false;
	}
	return true;
}

/*
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE {
 *     version INTEGER (0), subject Name, subjectPKInfo SPKI,
 *     attributes [0] IMPLICIT SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * in strict DER with nothing after it. false: not a CSR this walk handles.
 */
static bool
csr_walk(const unsigned char *buf, size_t len, struct csr_parts *out)
{
	struct pki_der in = {buf, len}, csr, cri, ver, name, attrs, spki, alg,
		       bits, sigalg, sig;

	if (!pki_der_get(&in, 0x30, &csr, NULL) || in.len != 0 ||
	    !pki_der_get(&csr, 0x30, &cri, &out->tbs) ||
	    !pki_der_get(&csr, 0x30, NULL, &sigalg) ||
	    !pki_der_get(&csr, 0x03, &sig, NULL) || csr.len != 0)
		return false;
	if (!pki_der_get(&cri, 0x02, &ver, NULL) || ver.len != 1 ||
	    ver.p[0] != 0 || !pki_der_get(&cri, 0x30, NULL, &name) ||
	    !pki_der_get(&cri, 0x30, &spki, &out->spki) ||
	    !pki_der_get(&cri, 0xa0, &attrs, NULL) || cri.len != 0)
		return false;
	if (!pki_der_get(&spki, 0x30, NULL, &alg) ||
	    !pki_der_get(&spki, 0x03, &bits, NULL) || spki.len != 0 ||
	    !whole_bits(&bits, &out->key) || !whole_bits(&sig, &out->sig))
		return false;
	if (der_equal(&alg, alg_ed25519, sizeof(alg_ed25519))) {
		if (!der_equal(&sigalg, alg_ed25519, sizeof(alg_ed25519)))
			return false;
		out->type = PKI_KEY_ED25519;
		out->md = NULL;
	} else {
		if (der_equal(&alg, alg_p256, sizeof(alg_p256)))
			out->type = PKI_KEY_P256;
		else if (der_equal(&alg, alg_p384, sizeof(alg_p384)))
			out->type = PKI_KEY_P384;
		else
			return false;
		if (der_equal(&sigalg, sig_ecdsa_sha256,
			      sizeof(sig_ecdsa_sha256)))
			out->md = "SHA256";
		else if (der_equal(&sigalg, sig_ecdsa_sha384,
				   sizeof(sig_ecdsa_sha384)))
			out->md = "SHA384";
		else if (der_equal(&sigalg, sig_ecdsa_sha512,
				   sizeof(sig_ecdsa_sha512)))
			out->md = "SHA512";
		else
			return false;
	}
	return ignored_parts_parse(&name, &attrs);
}

/* The device key from its raw bits; NULL if they are not a valid key (for
 * EC, a point on the curve). */
static EVP_PKEY *
device_key(const struct csr_parts *c, const struct pki_csr_cache *cache)
{
	EVP_PKEY *dom = NULL, *key = NULL;

	if (c->type == PKI_KEY_ED25519)
		return EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL,
						      c->key.p, c->key.len);
	if (cache != NULL) {
		dom = c->type == PKI_KEY_P256 ? cache->p256 : cache->p384;
		key = EVP_PKEY_dup(dom);
	} else {
		key = ec_domain(c->type == PKI_KEY_P256 ? "P-256" : "P-384");
	}
	if (key != NULL &&
	    EVP_PKEY_set1_encoded_public_key(key, c->key.p, c->key.len) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

static enum pki_result
check_parts(const struct csr_parts *c, const struct pki_policy *policy,
	    const struct pki_csr_cache *cache, struct pki_error *err)
{
	enum pki_result r = PKI_OK;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;

	/* Same order as pki_csr_parse_check: key, policy, signature. */
	key = device_key(c, cache);
	if (key == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE,
				   "CSR: no usable public key");
	if ((policy->allowed_keys & (unsigned)c->type) == 0) {
		r = pki_err(err, PKI_ERR_POLICY,
			    "key type is not allowed by policy");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "CSR: out of memory");
		goto out;
	}
	if (EVP_DigestVerifyInit_ex(md, NULL, c->md, NULL, NULL, key, NULL) !=
		    1 ||
	    EVP_DigestVerify(md, c->sig.p, c->sig.len, c->tbs.p, c->tbs.len) !=
		    1)
		r = pki_err_ssl(err, PKI_ERR_SIGNATURE,
				"CSR: signature does not verify (no proof of "
				"possession)");
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return r;
}

/* The unusual CSRs: OpenSSL's parser and check, and the key as
 * X509_set_pubkey would have encoded it. */
static enum pki_result
check_spki_slow(const void *buf, size_t len, const struct pki_policy *policy,
		unsigned char **spki, size_t *spki_len, struct pki_error *err)
{
	enum pki_result r;
	X509_REQ *req = NULL;
	unsigned char *der = NULL, *p;
	int n;

	r = pki_csr_parse_check(buf, len, policy, &req, err);
	if (r != PKI_OK)
		return r;
	n = i2d_PUBKEY(X509_REQ_get0_pubkey(req), NULL);
	if (n <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CSR: encoding key");
		goto out;
	}
	der = malloc((size_t)n);
	if (der == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(X509_REQ_get0_pubkey(req), &p) != n) {
		free(der);
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CSR: encoding key");
		goto out;
	}
	*spki = der;
	*spki_len = (size_t)n;
out:
	X509_REQ_free(req);
	return r;
}

/* The DER inside a PEM CSR, under the same names PEM_read_bio_X509_REQ
 * accepts. false: not readable, leave it to the full parser. */
static bool
pem_body(const void *buf, size_t len, unsigned char **der, long *der_len)
{
	BIO *bio = NULL;
	bool ok;

	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL)
		return false;
	ok = PEM_bytes_read_bio(der, der_len, NULL, PEM_STRING_X509_REQ, bio,
				NULL, NULL) == 1;
	BIO_free(bio);
	if (!ok)
		ERR_clear_error();
	return ok;
}

enum pki_result
pki_csr_check_spki(const void *buf, size_t len, const struct pki_policy *policy,
		   const struct pki_csr_cache *cache, unsigned char **spki,
		   size_t *spki_len, struct pki_error *err)
{
	enum pki_result r;
	struct csr_parts c;
	unsigned char *pem_der = NULL, *copy = NULL;
	long pem_len = 0;
	bool walked;

	if (buf == NULL || policy == NULL || spki == NULL || spki_len == NULL)
		return pki_err(err, PKI_ERR_ARG, "CSR: no input");
	if (len == 0 || len > policy->max_csr_bytes || len > INT32_MAX)
		return check_spki_slow(buf, len, policy, spki, spki_len, err);
	memset(&c, 0, sizeof(c));
	if (looks_like_pem(buf, len)) {
		walked = pem_body(buf, len, &pem_der, &pem_len) &&
			 csr_walk(pem_der, (size_t)pem_len, &c);
	} else {
		walked = csr_walk(buf, len, &c);
	}
	if (!walked) {
		OPENSSL_free(pem_der);
		return check_spki_slow(buf, len, policy, spki, spki_len, err);
	}
	r = check_parts(&c, policy, cache, err);
	if (r == PKI_OK) {
		copy = malloc(c.spki.len);
		if (copy == NULL) {
			r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		} else {
			memcpy(copy, c.spki.p, c.spki.len);
			*spki = copy;
			*spki_len = c.spki.len;
		}
	}
	OPENSSL_free(pem_der);
	return r;
}
