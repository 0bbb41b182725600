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
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
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
	BIGNUM *bn = NULL;
	char *hex = NULL;
	const char *p;
	size_t i, n;
	enum pki_result r = PKI_OK;

	if (cert == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no certificate");
	ai = X509_get0_serialNumber(cert);
	bn = ASN1_INTEGER_to_BN(ai, NULL);
	if (bn == NULL)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "serial");
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (hex == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "serial");
	p = hex;
	while (p[0] == '0' && p[1] != '\0')
		p++;
	n = strlen(p);
	if (n + 1 > cap) {
		r = pki_err(err, PKI_ERR_ARG, "serial buffer too small");
		goto out;
	}
	for (i = 0; i <= n; i++)
		out[i] =
			(p[i] >= 'A' && p[i] <= 'F') ? (char)(p[i] + 32) : p[i];
out:
	OPENSSL_free(hex);
	return r;
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

struct pki_device_profile {
	X509_NAME *issuer_name;
	X509_EXTENSION *bc;
	X509_EXTENSION *ku;
	X509_EXTENSION *eku;
	X509_EXTENSION *aki;
	X509_EXTENSION *crldp; /* NULL without a CRL URL */
	const EVP_MD *md;
};

void
pki_device_profile_free(struct pki_device_profile *p)
{
	if (p == NULL)
		return;
	X509_NAME_free(p->issuer_name);
	X509_EXTENSION_free(p->bc);
	X509_EXTENSION_free(p->ku);
	X509_EXTENSION_free(p->eku);
	X509_EXTENSION_free(p->aki);
	X509_EXTENSION_free(p->crldp);
	free(p);
}

enum pki_result
pki_device_profile_new(X509 *issuer, EVP_PKEY *issuer_key, const char *crl_url,
		       struct pki_device_profile **out, struct pki_error *err)
{
	static const int ku_bits[] = {0};
	struct pki_device_profile *p = NULL;
	unsigned char akid[EVP_MAX_MD_SIZE];
	size_t akid_len = 0;
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
	if (r != PKI_OK)
		goto fail;
	p->issuer_name = X509_NAME_dup(X509_get_subject_name(issuer));
	p->bc = ext_basic_constraints(false, -1);
	p->ku = ext_key_usage(ku_bits, 1);
	p->eku = ext_eku(NID_client_auth);
	p->aki = ext_aki(akid, akid_len);
	if (p->issuer_name == NULL || p->bc == NULL || p->ku == NULL ||
	    p->eku == NULL || p->aki == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "device profile");
		goto fail;
	}
	if (crl_url != NULL) {
		p->crldp = ext_crldp(crl_url);
		if (p->crldp == NULL) {
			r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL URL");
			goto fail;
		}
	}
	*out = p;
	return PKI_OK;
fail:
	pki_device_profile_free(p);
	return r;
}

static X509_EXTENSION *
ext_device_san(const char *device_id)
{
	char uri[64];
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *s = NULL;
	X509_EXTENSION *ext = NULL;

	snprintf(uri, sizeof(uri), "urn:fleet:device:%s", device_id);
	gens = GENERAL_NAMES_new();
	gn = GENERAL_NAME_new();
	s = ASN1_IA5STRING_new();
	if (gens == NULL || gn == NULL || s == NULL ||
	    ASN1_STRING_set(s, uri, -1) != 1)
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	s = NULL;
	if (sk_GENERAL_NAME_push(gens, gn) <= 0)
		goto out;
	gn = NULL;
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
out:
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return ext;
}

enum pki_result
pki_device_profile_issue(const struct pki_device_profile *p,
			 EVP_PKEY *issuer_key, EVP_PKEY *pubkey,
			 const char *device_id, int64_t not_before,
			 int64_t not_after, X509 **out, struct pki_error *err)
{
	enum pki_result r;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	unsigned char ski[EVP_MAX_MD_SIZE];
	unsigned int ski_len = 0;

	if (!pki_device_id_valid(device_id))
		return pki_err(err, PKI_ERR_ARG,
			       "device id is not a canonical lowercase UUID");
	x = X509_new();
	name = name_cn(device_id);
	if (x == NULL || name == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "certificate");
		goto fail;
	}
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, p->issuer_name) != 1 ||
	    X509_set_pubkey(x, pubkey) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "certificate fields");
		goto fail;
	}
	r = set_random_serial(x, err);
	if (r == PKI_OK)
		r = set_validity(x, not_before, not_after, err);
	if (r != PKI_OK)
		goto fail;
	if (X509_add_ext(x, p->bc, -1) != 1 ||
	    X509_add_ext(x, p->ku, -1) != 1 ||
	    X509_add_ext(x, p->eku, -1) != 1 ||
	    X509_add_ext(x, p->aki, -1) != 1 ||
	    (p->crldp != NULL && X509_add_ext(x, p->crldp, -1) != 1)) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "extensions");
		goto fail;
	}
	r = add_owned_ext(x, ext_device_san(device_id), "subjectAltName", err);
	if (r == PKI_OK)
		r = add_ski(x, ski, &ski_len, err);
	if (r != PKI_OK)
		goto fail;
	if (X509_sign(x, issuer_key, p->md) <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "signing certificate");
		goto fail;
	}
	X509_NAME_free(name);
	*out = x;
	return PKI_OK;
fail:
	X509_NAME_free(name);
	X509_free(x);
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

	if (pubkey == NULL || out == NULL || validity_seconds <= 0)
		return pki_err(err, PKI_ERR_ARG,
			       "device certificate: no key or validity");
	r = pki_device_profile_new(issuer, issuer_key, crl_url, &p, err);
	if (r != PKI_OK)
		return r;
	r = pki_device_profile_issue(p, issuer_key, pubkey, device_id,
				     now - PKI_BACKDATE_SECONDS,
				     now + validity_seconds, out, err);
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
