// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate profiles: the root CA, the device issuing CA, the TLS server
 * certificate and device certificates (DESIGN.md §4). Runs in fleetd (`pki
 * init` and the `ca` process). It trusts its callers: the device public key
 * it is given has already passed pki_csr_parse_check. Every extension is
 * built here from the profile; nothing is copied from a request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

#define SERIAL_BYTES 16

bool
pki_device_id_valid(const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return false;
		} else if (!((id[i] >= '0' && id[i] <= '9') ||
			     (id[i] >= 'a' && id[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

/* A random positive serial of 128 bits (RFC 5280 allows up to 20 octets). */
static enum pki_result
set_random_serial(X509 *x, struct pki_error *err)
{
	unsigned char buf[SERIAL_BYTES];
	BIGNUM *bn = NULL;
	enum pki_result r = PKI_OK;

	do {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return pki_err_ssl(err, PKI_ERR_CRYPTO, "serial");
		BN_free(bn);
		bn = BN_bin2bn(buf, sizeof(buf), NULL);
		if (bn == NULL)
			return pki_err_ssl(err, PKI_ERR_NOMEM, "serial");
	} while (BN_is_zero(bn));
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "serial");
	BN_free(bn);
	return r;
}

enum pki_result
pki_cert_serial_hex(const X509 *cert, char *out, size_t cap,
		    struct pki_error *err)
{
	const ASN1_INTEGER *ai = NULL;

	if (cert == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no certificate");
	ai = X509_get0_serialNumber(cert);
	/* RFC 5280 4.1.2.2: positive; a negative one is not ours. */
	if (ai == NULL || ASN1_STRING_type(ai) != V_ASN1_INTEGER)
		return pki_err(err, PKI_ERR_ARG, "negative or missing serial");
	return pki_serial_hex(ASN1_STRING_get0_data(ai),
			      (size_t)ASN1_STRING_length(ai), out, cap, err);
}

static enum pki_result
set_validity(X509 *x, int64_t not_before, int64_t not_after,
	     struct pki_error *err)
{
	if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "validity");
	return PKI_OK;
}

/* Encode value as extension nid and append it to x. */
static enum pki_result
add_ext(X509 *x, int nid, int crit, void *value, struct pki_error *err)
{
	if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) != 1)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "extension %s",
				   OBJ_nid2sn(nid));
	return PKI_OK;
}

static X509_EXTENSION *
ext_basic_constraints(bool ca, long pathlen)
{
	BASIC_CONSTRAINTS *bc = NULL;
	X509_EXTENSION *ext = NULL;

	bc = BASIC_CONSTRAINTS_new();
	if (bc == NULL)
		return NULL;
	bc->ca = ca ? 0xff : 0;
	if (ca && pathlen >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (bc->pathlen == NULL ||
		    ASN1_INTEGER_set(bc->pathlen, pathlen) != 1)
			goto out;
	}
	ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
out:
	BASIC_CONSTRAINTS_free(bc);
	return ext;
}

/* KU bits are numbered as in RFC 5280: 0 digitalSignature, 5 keyCertSign,
 * 6 cRLSign. */
static X509_EXTENSION *
ext_key_usage(const int *bits, size_t n)
{
	ASN1_BIT_STRING *ku = NULL;
	X509_EXTENSION *ext = NULL;
	size_t i;

	ku = ASN1_BIT_STRING_new();
	if (ku == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (ASN1_BIT_STRING_set_bit(ku, bits[i], 1) != 1)
			goto out;
	ext = X509V3_EXT_i2d(NID_key_usage, 1, ku);
out:
	ASN1_BIT_STRING_free(ku);
	return ext;
}

static X509_EXTENSION *
ext_eku(int nid)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	X509_EXTENSION *ext = NULL;

	eku = sk_ASN1_OBJECT_new_null();
	if (eku == NULL)
		return NULL;
	if (sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nid)) <= 0)
		goto out;
	ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
out:
	sk_ASN1_OBJECT_free(eku);
	return ext;
}

/* AKI naming the issuer by its SKI (or, for a self-signed certificate
 * without one yet, by the hash of its own key). */
static X509_EXTENSION *
ext_aki(const unsigned char *keyid, size_t len)
{
	AUTHORITY_KEYID *aki = NULL;
	X509_EXTENSION *ext = NULL;

	aki = AUTHORITY_KEYID_new();
	if (aki == NULL)
		return NULL;
	aki->keyid = ASN1_OCTET_STRING_new();
	if (aki->keyid == NULL ||
	    ASN1_OCTET_STRING_set(aki->keyid, keyid, (int)len) != 1)
		goto out;
	ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, aki);
out:
	AUTHORITY_KEYID_free(aki);
	return ext;
}

static X509_EXTENSION *
ext_crldp(const char *url)
{
	CRL_DIST_POINTS *dps = NULL;
	DIST_POINT *dp = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *uri = NULL;
	X509_EXTENSION *ext = NULL;

	dps = sk_DIST_POINT_new_null();
	dp = DIST_POINT_new();
	if (dps == NULL || dp == NULL)
		goto out;
	if (sk_DIST_POINT_push(dps, dp) <= 0)
		goto out;
	dp->distpoint = DIST_POINT_NAME_new();
	if (dp->distpoint == NULL)
		goto out_dp;
	dp->distpoint->type = 0;
	dp->distpoint->name.fullname = GENERAL_NAMES_new();
	uri = ASN1_IA5STRING_new();
	gn = GENERAL_NAME_new();
	if (dp->distpoint->name.fullname == NULL || uri == NULL || gn == NULL)
		goto out_dp;
	if (ASN1_STRING_set(uri, url, -1) != 1)
		goto out_dp;
	GENERAL_NAME_set0_value(gn, GEN_URI, uri);
	uri = NULL;
	if (sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) <= 0)
		goto out_dp;
	gn = NULL;
	ext = X509V3_EXT_i2d(NID_crl_distribution_points, 0, dps);
out_dp:
	dp = NULL; /* owned by dps now */
out:
	GENERAL_NAME_free(gn);
	ASN1_IA5STRING_free(uri);
	DIST_POINT_free(dp);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return ext;
}

/* Append ext (if not NULL) and free it. */
static enum pki_result
add_owned_ext(X509 *x, X509_EXTENSION *ext, const char *what,
	      struct pki_error *err)
{
	int ok;

	if (ext == NULL)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "extension %s", what);
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "extension %s", what);
	return PKI_OK;
}

/* SKI = SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1). */
static enum pki_result
add_ski(X509 *x, unsigned char *ski, unsigned int *ski_len,
	struct pki_error *err)
{
	ASN1_OCTET_STRING *os = NULL;
	enum pki_result r;

	if (X509_pubkey_digest(x, EVP_sha1(), ski, ski_len) != 1)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "key identifier");
	os = ASN1_OCTET_STRING_new();
	if (os == NULL || ASN1_OCTET_STRING_set(os, ski, (int)*ski_len) != 1) {
		ASN1_OCTET_STRING_free(os);
		return pki_err_ssl(err, PKI_ERR_NOMEM, "key identifier");
	}
	r = add_ext(x, NID_subject_key_identifier, 0, os, err);
	ASN1_OCTET_STRING_free(os);
	return r;
}

static enum pki_result
issuer_keyid(X509 *issuer, unsigned char *id, size_t *len,
	     struct pki_error *err)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);

	if (ski == NULL || ASN1_STRING_length(ski) <= 0 ||
	    ASN1_STRING_length(ski) > EVP_MAX_MD_SIZE)
		return pki_err(err, PKI_ERR_ARG,
			       "issuer certificate has no subject key id");
	memcpy(id, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski));
	*len = (size_t)ASN1_STRING_length(ski);
	return PKI_OK;
}

static enum pki_result
sign_cert(X509 *x, EVP_PKEY *key, struct pki_error *err)
{
	enum pki_result r;
	const EVP_MD *md = NULL;

	r = pki_sign_md(key, &md, err);
	if (r != PKI_OK)
		return r;
	if (X509_sign(x, key, md) <= 0)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "signing certificate");
	return PKI_OK;
}

static X509_NAME *
name_cn(const char *cn)
{
	X509_NAME *name = X509_NAME_new();

	if (name == NULL)
		return NULL;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

/* Common skeleton: v3, random serial, names, validity backdated 5 minutes,
 * public key. issuer == NULL makes it self-issued. */
static enum pki_result
new_cert(X509 *issuer, EVP_PKEY *pubkey, const char *cn,
	 int64_t validity_seconds, X509 **out, struct pki_error *err)
{
	enum pki_result r;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	int64_t now = (int64_t)time(NULL);

	if (pubkey == NULL || cn == NULL || cn[0] == '\0' ||
	    validity_seconds <= 0)
		return pki_err(err, PKI_ERR_ARG,
			       "certificate: no key, name or validity");
	x = X509_new();
	name = name_cn(cn);
	if (x == NULL || name == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "certificate");
		goto fail;
	}
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer != NULL
					    ? X509_get_subject_name(issuer)
					    : name) != 1 ||
	    X509_set_pubkey(x, pubkey) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "certificate fields");
		goto fail;
	}
	r = set_random_serial(x, err);
	if (r != PKI_OK)
		goto fail;
	r = set_validity(x, now - PKI_BACKDATE_SECONDS, now + validity_seconds,
			 err);
	if (r != PKI_OK)
		goto fail;
	X509_NAME_free(name);
	*out = x;
	return PKI_OK;
fail:
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

static enum pki_result
finish_ca(X509 *x, X509 *issuer, EVP_PKEY *issuer_key, long pathlen,
	  struct pki_error *err)
{
	static const int ca_bits[] = {5, 6};
	enum pki_result r;
	unsigned char ski[EVP_MAX_MD_SIZE];
	unsigned char akid[EVP_MAX_MD_SIZE];
	unsigned int ski_len = 0;
	size_t akid_len = 0;

	r = add_owned_ext(x, ext_basic_constraints(true, pathlen),
			  "basicConstraints", err);
	if (r == PKI_OK)
		r = add_owned_ext(x, ext_key_usage(ca_bits, 2), "keyUsage",
				  err);
	if (r == PKI_OK)
		r = add_ski(x, ski, &ski_len, err);
	if (r != PKI_OK)
		return r;
	if (issuer == NULL) {
		memcpy(akid, ski, ski_len);
		akid_len = ski_len;
	} else {
		r = issuer_keyid(issuer, akid, &akid_len, err);
		if (r != PKI_OK)
			return r;
	}
	r = add_owned_ext(x, ext_aki(akid, akid_len), "authorityKeyIdentifier",
			  err);
	if (r != PKI_OK)
		return r;
	return sign_cert(x, issuer_key, err);
}

enum pki_result
pki_ca_create_root(EVP_PKEY *key, const char *cn, int64_t validity_seconds,
		   X509 **out, struct pki_error *err)
{
	enum pki_result r;
	X509 *x = NULL;

	if (out == NULL)
		return pki_err(err, PKI_ERR_ARG, "root CA: no output");
	r = new_cert(NULL, key, cn, validity_seconds, &x, err);
	if (r != PKI_OK)
		return r;
	r = finish_ca(x, NULL, key, -1, err);
	if (r != PKI_OK) {
		X509_free(x);
		return r;
	}
	*out = x;
	return PKI_OK;
}

enum pki_result
pki_ca_create_issuing(X509 *root, EVP_PKEY *root_key, EVP_PKEY *issuing_key,
		      const char *cn, int64_t validity_seconds, X509 **out,
		      struct pki_error *err)
{
	enum pki_result r;
	X509 *x = NULL;

	if (root == NULL || root_key == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "issuing CA: no root");
	r = new_cert(root, issuing_key, cn, validity_seconds, &x, err);
	if (r != PKI_OK)
		return r;
	r = finish_ca(x, root, root_key, 0, err);
	if (r != PKI_OK) {
		X509_free(x);
		return r;
	}
	*out = x;
	return PKI_OK;
}

static bool
dns_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static enum pki_result
add_server_san(X509 *x, const char *const *names, size_t n,
	       struct pki_error *err)
{
	enum pki_result r = PKI_OK;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_OCTET_STRING *ip = NULL;
	ASN1_IA5STRING *dns = NULL;
	size_t i;

	gens = GENERAL_NAMES_new();
	if (gens == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "subjectAltName");
	for (i = 0; i < n; i++) {
		gn = GENERAL_NAME_new();
		if (gn == NULL) {
			r = pki_err_ssl(err, PKI_ERR_NOMEM, "subjectAltName");
			goto out;
		}
		ip = a2i_IPADDRESS(names[i]);
		if (ip != NULL) {
			GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		} else {
			ERR_clear_error();
			if (!dns_name_valid(names[i])) {
				r = pki_err(err, PKI_ERR_ARG,
					    "server name \"%s\" is neither a "
					    "DNS name nor an IP address",
					    names[i]);
				goto out;
			}
			dns = ASN1_IA5STRING_new();
			if (dns == NULL ||
			    ASN1_STRING_set(dns, names[i], -1) != 1) {
				ASN1_IA5STRING_free(dns);
				r = pki_err_ssl(err, PKI_ERR_NOMEM, "SAN");
				goto out;
			}
			GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
		}
		if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
			r = pki_err_ssl(err, PKI_ERR_NOMEM, "SAN");
			goto out;
		}
		gn = NULL;
	}
	r = add_ext(x, NID_subject_alt_name, 0, gens, err);
out:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return r;
}

enum pki_result
pki_cert_create_server(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *server_key,
		       const char *const *names, size_t n,
		       int64_t validity_seconds, X509 **out,
		       struct pki_error *err)
{
	static const int ku_bits[] = {0};
	enum pki_result r;
	X509 *x = NULL;
	unsigned char ski[EVP_MAX_MD_SIZE];
	unsigned char akid[EVP_MAX_MD_SIZE];
	unsigned int ski_len = 0;
	size_t akid_len = 0;

	if (issuer == NULL || issuer_key == NULL || names == NULL || n == 0 ||
	    n > PKI_INIT_MAX_NAMES || out == NULL)
		return pki_err(err, PKI_ERR_ARG,
			       "server certificate: need an issuer and 1 to "
			       "%d names",
			       PKI_INIT_MAX_NAMES);
	r = issuer_keyid(issuer, akid, &akid_len, err);
	if (r != PKI_OK)
		return r;
	r = new_cert(issuer, server_key, names[0], validity_seconds, &x, err);
	if (r != PKI_OK)
		return r;
	r = add_owned_ext(x, ext_basic_constraints(false, -1),
			  "basicConstraints", err);
	if (r == PKI_OK)
		r = add_owned_ext(x, ext_key_usage(ku_bits, 1), "keyUsage",
				  err);
	if (r == PKI_OK)
		r = add_owned_ext(x, ext_eku(NID_server_auth),
				  "extendedKeyUsage", err);
	if (r == PKI_OK)
		r = add_server_san(x, names, n, err);
	if (r == PKI_OK)
		r = add_ski(x, ski, &ski_len, err);
	if (r == PKI_OK)
		r = add_owned_ext(x, ext_aki(akid, akid_len),
				  "authorityKeyIdentifier", err);
	if (r == PKI_OK)
		r = sign_cert(x, issuer_key, err);
	if (r != PKI_OK) {
		X509_free(x);
		return r;
	}
	*out = x;
	return PKI_OK;
}

/* ---- device profile, cached per issuer ------------------------------- */

/*
 * A device certificate is the same bytes every time except for the serial,
 * the validity, the device id (subject CN and SAN URI), the key and its
 * SKI. The profile holds everything else DER encoded, and issuing writes
 * the TBSCertificate around the caller's SubjectPublicKeyInfo bytes: the
 * key is never decoded and re-encoded. The layout is what the X509 API
 * produced before (v3, serial, signature, issuer, validity, subject, key,
 * then basicConstraints, keyUsage, EKU, AKI, CRL DP, SAN, SKI).
 */
struct pki_device_profile {
	unsigned char *issuer; /* DER Name */
	size_t issuer_len;
	unsigned char *sigalg; /* DER AlgorithmIdentifier of the signature */
	size_t sigalg_len;
	unsigned char *exts; /* DER Extensions the same in every cert */
	size_t exts_len;
	const EVP_MD *md; /* NULL for Ed25519 */
	EVP_MD *sha1; /* for the SKI */
	size_t sig_max;
};

void
pki_device_profile_free(struct pki_device_profile *p)
{
	if (p == NULL)
		return;
	OPENSSL_free(p->issuer);
	free(p->sigalg);
	free(p->exts);
	EVP_MD_free(p->sha1);
	free(p);
}

/* The AlgorithmIdentifier X509_sign would write for issuer_key. */
static enum pki_result
profile_sigalg(struct pki_device_profile *p, EVP_PKEY *issuer_key,
	       struct pki_error *err)
{
	unsigned char aid[256];
	OSSL_PARAM params[2];
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	enum pki_result r = PKI_OK;

	md = EVP_MD_CTX_new();
	if (md == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "device profile");
	params[0] = OSSL_PARAM_construct_octet_string(
		OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_DigestSignInit(md, &pctx, p->md, NULL, issuer_key) != 1 ||
	    EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
	    !OSSL_PARAM_modified(&params[0]) || params[0].return_size == 0 ||
	    params[0].return_size > sizeof(aid)) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO,
				"device profile: signature algorithm");
		goto out;
	}
	p->sigalg = malloc(params[0].return_size);
	if (p->sigalg == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(p->sigalg, aid, params[0].return_size);
	p->sigalg_len = params[0].return_size;
out:
	EVP_MD_CTX_free(md);
	return r;
}

/* Append the DER of ext to p->exts and free ext. */
static bool
profile_add_ext(struct pki_device_profile *p, X509_EXTENSION *ext)
{
	unsigned char *grown = NULL, *q;
	int n;

	if (ext == NULL)
		return false;
	n = i2d_X509_EXTENSION(ext, NULL);
	if (n > 0)
		grown = realloc(p->exts, p->exts_len + (size_t)n);
	if (grown != NULL) {
		p->exts = grown;
		q = grown + p->exts_len;
		if (i2d_X509_EXTENSION(ext, &q) == n)
			p->exts_len += (size_t)n;
		else
			grown = NULL;
	}
	X509_EXTENSION_free(ext);
	return grown != NULL;
}

enum pki_result
pki_device_profile_new(X509 *issuer, EVP_PKEY *issuer_key, const char *crl_url,
		       struct pki_device_profile **out, struct pki_error *err)
{
	static const int ku_bits[] = {0};
	struct pki_device_profile *p = NULL;
	unsigned char akid[EVP_MAX_MD_SIZE];
	size_t akid_len = 0;
	int n;
	enum pki_result r;

	if (issuer == NULL || issuer_key == NULL)
		return pki_err(err, PKI_ERR_ARG, "device profile: no issuer");
	if (crl_url != NULL && (crl_url[0] == '\0' || strlen(crl_url) > 1024))
		return pki_err(err, PKI_ERR_ARG, "bad CRL URL");
	r = issuer_keyid(issuer, akid, &akid_len, err);
	if (r != PKI_OK)
		return r;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	r = pki_sign_md(issuer_key, &p->md, err);
	if (r == PKI_OK)
		r = profile_sigalg(p, issuer_key, err);
	if (r != PKI_OK)
		goto fail;
	n = EVP_PKEY_get_size(issuer_key);
	p->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	p->issuer = NULL;
	p->issuer_len = 0;
	if (n <= 0 || p->sha1 == NULL) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "device profile");
		goto fail;
	}
	p->sig_max = (size_t)n;
	n = i2d_X509_NAME(X509_get_subject_name(issuer), &p->issuer);
	if (n <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "device profile: issuer");
		goto fail;
	}
	p->issuer_len = (size_t)n;
	if (!profile_add_ext(p, ext_basic_constraints(false, -1)) ||
	    !profile_add_ext(p, ext_key_usage(ku_bits, 1)) ||
	    !profile_add_ext(p, ext_eku(NID_client_auth)) ||
	    !profile_add_ext(p, ext_aki(akid, akid_len)) ||
	    (crl_url != NULL && !profile_add_ext(p, ext_crldp(crl_url)))) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO,
				"device profile: extensions");
		goto fail;
	}
	*out = p;
	return PKI_OK;
fail:
	pki_device_profile_free(p);
	return r;
}

/* A random positive serial of 128 bits as a minimal DER INTEGER content
 * (into out[SERIAL_BYTES + 1]) and as hex the way pki_cert_serial_hex
 * prints it (the same function writes both). */
static enum pki_result
random_serial(unsigned char *out, size_t *out_len, char hex[PKI_SERIAL_HEX_MAX],
	      struct pki_error *err)
{
	unsigned char buf[SERIAL_BYTES];
	size_t i = 0, n = 0;

	do {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return pki_err_ssl(err, PKI_ERR_CRYPTO, "serial");
		for (i = 0; i < sizeof(buf) && buf[i] == 0; i++)
			;
	} while (i == sizeof(buf));
	if (buf[i] & 0x80)
		out[n++] = 0;
	memcpy(out + n, buf + i, sizeof(buf) - i);
	*out_len = n + sizeof(buf) - i;
	return pki_serial_hex(buf + i, sizeof(buf) - i, hex, PKI_SERIAL_HEX_MAX,
			      err);
}

/* UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5, as
 * ASN1_TIME_set chooses). */
static bool
put_time(struct pki_der_w *w, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];
	int year, n;

	if (OPENSSL_gmtime(&tt, &tm) == NULL)
		return false;
	year = tm.tm_year + 1900;
	if (year >= 1950 && year < 2050) {
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ",
			     year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			     tm.tm_min, tm.tm_sec);
		if (n != 13)
			return false;
		pki_der_put_tlv(w, 0x17, s, 13);
	} else {
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", year,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec);
		if (year < 0 || n != 15)
			return false;
		pki_der_put_tlv(w, 0x18, s, 15);
	}
	return true;
}

/* The subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
static bool
spki_key_bits(const unsigned char *spki, size_t len, struct pki_der *bits)
{
	struct pki_der in = {spki, len}, seq, v;

	if (!pki_der_get(&in, 0x30, &seq, NULL) || in.len != 0 ||
	    !pki_der_get(&seq, 0x30, NULL, NULL) ||
	    !pki_der_get(&seq, 0x03, &v, NULL) || seq.len != 0 || v.len < 1)
		return false;
	bits->p = v.p + 1;
	bits->len = v.len - 1;
	return true;
}

/* Sizes of the variable parts, to write each length before its content. */
struct device_sizes {
	size_t serial, validity, atv, rdn, name, uri, gn, gns, san, ski, exts,
		exts_seq, tbs;
};

static const unsigned char oid_cn[] = {0x06, 0x03, 0x55, 0x04, 0x03};
static const unsigned char oid_san[] = {0x06, 0x03, 0x55, 0x1d, 0x11};
static const unsigned char oid_ski[] = {0x06, 0x03, 0x55, 0x1d, 0x0e};
static const char uri_prefix[] = "urn:fleet:device:";

#define TIME_MAX 17 /* GeneralizedTime element */

static void
device_sizes(const struct pki_device_profile *p, size_t serial_len,
	     size_t id_len, size_t spki_len, struct device_sizes *z)
{
	z->serial = pki_der_tl_len(serial_len) + serial_len;
	z->atv = sizeof(oid_cn) + pki_der_tl_len(id_len) + id_len;
	z->rdn = pki_der_tl_len(z->atv) + z->atv;
	z->name = pki_der_tl_len(z->rdn) + z->rdn;
	z->uri = sizeof(uri_prefix) - 1 + id_len;
	z->gn = pki_der_tl_len(z->uri) + z->uri;
	z->gns = pki_der_tl_len(z->gn) + z->gn;
	z->san = sizeof(oid_san) + pki_der_tl_len(z->gns) + z->gns;
	z->ski = sizeof(oid_ski) + 2 + 2 + SHA_DIGEST_LENGTH;
	z->exts_seq = p->exts_len + pki_der_tl_len(z->san) + z->san +
		      pki_der_tl_len(z->ski) + z->ski;
	z->exts = pki_der_tl_len(z->exts_seq) + z->exts_seq;
	/* version, serial, signature, issuer, validity (upper bound),
	 * subject, key, extensions */
	z->validity = 2 + 2 * TIME_MAX;
	z->tbs = 5 + z->serial + p->sigalg_len + p->issuer_len + z->validity +
		 pki_der_tl_len(z->name) + z->name + spki_len +
		 pki_der_tl_len(z->exts) + z->exts;
}

/* TBSCertificate into w; the validity is written at its exact size, so the
 * outer length is fixed up once it is known. */
static enum pki_result
write_tbs(struct pki_der_w *w, const struct pki_device_profile *p,
	  const unsigned char *serial, size_t serial_len,
	  const unsigned char *spki, size_t spki_len, const char *device_id,
	  int64_t not_before, int64_t not_after, struct pki_error *err)
{
	static const unsigned char version[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
	struct device_sizes z;
	struct pki_der bits;
	unsigned char ski[SHA_DIGEST_LENGTH], times[2 * TIME_MAX];
	struct pki_der_w tw = {times, 0, sizeof(times), false};
	size_t id_len = strlen(device_id);
	unsigned int md_len = 0;

	if (!spki_key_bits(spki, spki_len, &bits))
		return pki_err(err, PKI_ERR_ARG,
			       "device certificate: key is not a DER "
			       "SubjectPublicKeyInfo");
	if (EVP_Digest(bits.p, bits.len, ski, &md_len, p->sha1, NULL) != 1 ||
	    md_len != sizeof(ski))
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "key identifier");
	if (!put_time(&tw, not_before) || !put_time(&tw, not_after) ||
	    tw.overflow)
		return pki_err(err, PKI_ERR_ARG, "validity out of range");
	device_sizes(p, serial_len, id_len, spki_len, &z);
	z.tbs = z.tbs - z.validity + pki_der_tl_len(tw.len) + tw.len;

	pki_der_put_tl(w, 0x30, z.tbs);
	pki_der_put(w, version, sizeof(version));
	pki_der_put_tlv(w, 0x02, serial, serial_len);
	pki_der_put(w, p->sigalg, p->sigalg_len);
	pki_der_put(w, p->issuer, p->issuer_len);
	pki_der_put_tlv(w, 0x30, times, tw.len);
	/* subject: CN = device id, UTF8String */
	pki_der_put_tl(w, 0x30, z.name);
	pki_der_put_tl(w, 0x31, z.rdn);
	pki_der_put_tl(w, 0x30, z.atv);
	pki_der_put(w, oid_cn, sizeof(oid_cn));
	pki_der_put_tlv(w, 0x0c, device_id, id_len);
	pki_der_put(w, spki, spki_len);
	/* [3] { SEQUENCE { fixed..., SAN, SKI } } */
	pki_der_put_tl(w, 0xa3, z.exts);
	pki_der_put_tl(w, 0x30, z.exts_seq);
	pki_der_put(w, p->exts, p->exts_len);
	pki_der_put_tl(w, 0x30, z.san);
	pki_der_put(w, oid_san, sizeof(oid_san));
	pki_der_put_tl(w, 0x04, z.gns);
	pki_der_put_tl(w, 0x30, z.gn);
	pki_der_put_tl(w, 0x86, z.uri);
	pki_der_put(w, uri_prefix, sizeof(uri_prefix) - 1);
	pki_der_put(w, device_id, id_len);
	pki_der_put_tl(w, 0x30, z.ski);
	pki_der_put(w, oid_ski, sizeof(oid_ski));
	pki_der_put_tl(w, 0x04, 2 + sizeof(ski));
	pki_der_put_tlv(w, 0x04, ski, sizeof(ski));
	if (w->overflow)
		return pki_err(err, PKI_ERR_CRYPTO,
			       "device certificate: encoding");
	return PKI_OK;
}

enum pki_result
pki_device_profile_issue(const struct pki_device_profile *p,
			 EVP_PKEY *issuer_key, const unsigned char *spki,
			 size_t spki_len, const char *device_id,
			 int64_t not_before, int64_t not_after,
			 unsigned char **der, size_t *der_len,
			 char serial_hex[PKI_SERIAL_HEX_MAX],
			 struct pki_error *err)
{
	enum pki_result r;
	struct device_sizes z;
	struct pki_der_w tbs = {NULL, 0, 0, false};
	struct pki_der_w cert = {NULL, 0, 0, false};
	unsigned char serial[SERIAL_BYTES + 1];
	char hex[PKI_SERIAL_HEX_MAX];
	unsigned char *sig = NULL;
	size_t serial_len = 0, sig_len = 0, body;
	EVP_MD_CTX *md = NULL;

	if (p == NULL || issuer_key == NULL || spki == NULL || spki_len == 0 ||
	    spki_len > 65535 || der == NULL || der_len == NULL ||
	    serial_hex == NULL)
		return pki_err(err, PKI_ERR_ARG, "device certificate: no key");
	if (!pki_device_id_valid(device_id))
		return pki_err(err, PKI_ERR_ARG,
			       "device id is not a canonical lowercase UUID");
	r = random_serial(serial, &serial_len, hex, err);
	if (r != PKI_OK)
		return r;
	device_sizes(p, serial_len, strlen(device_id), spki_len, &z);
	tbs.cap = pki_der_tl_len(z.tbs) + z.tbs;
	tbs.p = malloc(tbs.cap);
	sig = malloc(p->sig_max);
	md = EVP_MD_CTX_new();
	if (tbs.p == NULL || sig == NULL || md == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	r = write_tbs(&tbs, p, serial, serial_len, spki, spki_len, device_id,
		      not_before, not_after, err);
	if (r != PKI_OK)
		goto out;
	sig_len = p->sig_max;
	if (EVP_DigestSignInit(md, NULL, p->md, NULL, issuer_key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, tbs.p, tbs.len) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "signing certificate");
		goto out;
	}
	/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING } */
	body = tbs.len + p->sigalg_len + pki_der_tl_len(sig_len + 1) + sig_len +
	       1;
	cert.cap = pki_der_tl_len(body) + body;
	cert.p = malloc(cert.cap);
	if (cert.p == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	pki_der_put_tl(&cert, 0x30, body);
	pki_der_put(&cert, tbs.p, tbs.len);
	pki_der_put(&cert, p->sigalg, p->sigalg_len);
	pki_der_put_tl(&cert, 0x03, sig_len + 1);
	pki_der_put(&cert, "", 1);
	pki_der_put(&cert, sig, sig_len);
	if (cert.overflow || cert.len != cert.cap) {
		r = pki_err(err, PKI_ERR_CRYPTO,
			    "device certificate: encoding");
		goto out;
	}
	*der = cert.p;
	*der_len = cert.len;
	cert.p = NULL;
	memcpy(serial_hex, hex, sizeof(hex));
out:
	EVP_MD_CTX_free(md);
	free(cert.p);
	free(sig);
	free(tbs.p);
	return r;
}

enum pki_result
pki_cert_issue_device(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pubkey,
		      const char *device_id, int64_t validity_seconds,
		      const char *crl_url, X509 **out, struct pki_error *err)
{
	struct pki_device_profile *p = NULL;
	enum pki_result r;
	int64_t now = (int64_t)time(NULL);
	unsigned char *spki = NULL, *der = NULL;
	const unsigned char *q;
	char serial[PKI_SERIAL_HEX_MAX];
	size_t der_len = 0;
	X509 *x = NULL;
	int n;

	if (pubkey == NULL || out == NULL || validity_seconds <= 0)
		return pki_err(err, PKI_ERR_ARG,
			       "device certificate: no key or validity");
	n = i2d_PUBKEY(pubkey, &spki);
	if (n <= 0)
		return pki_err_ssl(err, PKI_ERR_ARG,
				   "device certificate: encoding the key");
	r = pki_device_profile_new(issuer, issuer_key, crl_url, &p, err);
	if (r == PKI_OK)
		r = pki_device_profile_issue(
			p, issuer_key, spki, (size_t)n, device_id,
			now - PKI_BACKDATE_SECONDS, now + validity_seconds,
			&der, &der_len, serial, err);
	if (r == PKI_OK) {
		q = der;
		x = d2i_X509(NULL, &q, (long)der_len);
		if (x == NULL || q != der + der_len) {
			X509_free(x);
			r = pki_err_ssl(err, PKI_ERR_CRYPTO,
					"device certificate: decoding");
		} else {
			*out = x;
		}
	}
	free(der);
	OPENSSL_free(spki);
	pki_device_profile_free(p);
	return r;
}

enum pki_result
pki_cert_pem(X509 *const *certs, size_t n, char **out, size_t *len,
	     struct pki_error *err)
{
	enum pki_result r;
	BIO *bio = NULL;
	size_t i;

	if (certs == NULL || n == 0 || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no certificates");
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_new");
	for (i = 0; i < n; i++) {
		if (certs[i] == NULL ||
		    PEM_write_bio_X509(bio, certs[i]) != 1) {
			r = pki_err_ssl(err, PKI_ERR_CRYPTO,
					"encoding certificate %zu", i);
			goto out;
		}
	}
	r = pki_bio_take(bio, out, len, err);
out:
	BIO_free(bio);
	return r;
}

enum pki_result
pki_cert_parse(const void *buf, size_t len, X509 **out, struct pki_error *err)
{
	X509 *x = NULL;
	const unsigned char *p = buf;
	BIO *bio = NULL;

	if (buf == NULL || len == 0 || len > INT32_MAX || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no certificate data");
	if (len > 11 && memcmp(buf, "-----BEGIN ", 11) == 0) {
		bio = BIO_new_mem_buf(buf, (int)len);
		if (bio == NULL)
			return pki_err_ssl(err, PKI_ERR_NOMEM, "BIO");
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		x = d2i_X509(NULL, &p, (long)len);
		if (x != NULL && p != (const unsigned char *)buf + len) {
			X509_free(x);
			return pki_err(err, PKI_ERR_PARSE,
				       "certificate: trailing bytes");
		}
	}
	if (x == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE, "malformed certificate");
	*out = x;
	return PKI_OK;
}

enum pki_result
pki_cert_load(const char *path, X509 **out, struct pki_error *err)
{
	X509 *x = NULL;
	BIO *bio = NULL;

	if (path == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no path");
	bio = BIO_new_file(path, "r");
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_IO, "opening %s", path);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE,
				   "%s: not a certificate PEM", path);
	*out = x;
	return PKI_OK;
}
