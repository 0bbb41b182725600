// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate revocation lists signed by the device issuing CA. Runs in the
 * `ca` process whenever a certificate is revoked and on a timer before
 * nextUpdate. Its input (serials, times, reasons) comes from fleetd's own
 * database; it is still checked: serials must be hex of at most 20 octets
 * and reasons must be RFC 5280 codes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

static bool
reason_valid(int reason)
{
	return reason >= PKI_CRL_UNSPECIFIED &&
	       reason <= PKI_CRL_AA_COMPROMISE && reason != 7;
}

static enum pki_result
serial_from_hex(const char *hex, ASN1_INTEGER **out, struct pki_error *err)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	size_t i, n;

	n = strnlen(hex, PKI_SERIAL_HEX_MAX);
	if (n == 0 || n >= PKI_SERIAL_HEX_MAX)
		return pki_err(err, PKI_ERR_ARG, "CRL: bad serial length");
	for (i = 0; i < n; i++) {
		char c = hex[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return pki_err(err, PKI_ERR_ARG,
				       "CRL: serial \"%s\" is not hex", hex);
	}
	if (BN_hex2bn(&bn, hex) != (int)n)
		goto fail;
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (ai == NULL)
		goto fail;
	*out = ai;
	return PKI_OK;
fail:
	return pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL: serial %s", hex);
}

static enum pki_result
add_entry(X509_CRL *crl, const struct pki_revoked *e, struct pki_error *err)
{
	enum pki_result r;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;

	if (!reason_valid(e->reason))
		return pki_err(err, PKI_ERR_ARG, "CRL: bad reason code %d",
			       e->reason);
	if (e->revoked_at <= 0)
		return pki_err(err, PKI_ERR_ARG, "CRL: bad revocation time");
	r = serial_from_hex(e->serial_hex, &serial, err);
	if (r != PKI_OK)
		return r;
	rev = X509_REVOKED_new();
	when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
	if (rev == NULL || when == NULL ||
	    X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
	    X509_REVOKED_set_revocationDate(rev, when) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL entry");
		goto out;
	}
	/* RFC 5280 5.3.1: omit the extension rather than say unspecified. */
	if (e->reason != PKI_CRL_UNSPECIFIED) {
		reason = ASN1_ENUMERATED_new();
		if (reason == NULL ||
		    ASN1_ENUMERATED_set(reason, e->reason) != 1 ||
		    X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
					      X509V3_ADD_DEFAULT) != 1) {
			r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL reason");
			goto out;
		}
	}
	if (X509_CRL_add0_revoked(crl, rev) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL entry");
		goto out;
	}
	rev = NULL;
	r = PKI_OK;
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return r;
}

enum pki_result
pki_crl_sign(X509 *issuer, EVP_PKEY *issuer_key,
	     const struct pki_revoked *revoked, size_t n, uint64_t crl_number,
	     int64_t next_update_seconds, unsigned char **der, size_t *der_len,
	     struct pki_error *err)
{
	enum pki_result r;
	X509_CRL *crl = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *num = NULL;
	AUTHORITY_KEYID *aki = NULL;
	const ASN1_OCTET_STRING *ski = NULL;
	const EVP_MD *md = NULL;
	unsigned char *buf = NULL;
	unsigned char *p = NULL;
	time_t now = time(NULL);
	size_t i;
	int len;

	if (issuer == NULL || issuer_key == NULL || der == NULL ||
	    der_len == NULL || (revoked == NULL && n > 0))
		return pki_err(err, PKI_ERR_ARG, "CRL: no issuer or output");
	if (next_update_seconds <= 0)
		return pki_err(err, PKI_ERR_ARG, "CRL: bad nextUpdate");
	if (n > 10000000)
		return pki_err(err, PKI_ERR_TOO_LARGE, "CRL: too many entries");
	r = pki_sign_md(issuer_key, &md, err);
	if (r != PKI_OK)
		return r;
	crl = X509_CRL_new();
	num = ASN1_INTEGER_new();
	aki = AUTHORITY_KEYID_new();
	if (crl == NULL || num == NULL || aki == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "CRL");
		goto out;
	}
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL");
		goto out;
	}
	t = ASN1_TIME_set(NULL, now);
	if (t == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
	    ASN1_TIME_set(t, now + (time_t)next_update_seconds) == NULL ||
	    X509_CRL_set1_nextUpdate(crl, t) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL times");
		goto out;
	}
	for (i = 0; i < n; i++) {
		r = add_entry(crl, &revoked[i], err);
		if (r != PKI_OK)
			goto out;
	}
	ski = X509_get0_subject_key_id(issuer);
	if (ski == NULL) {
		r = pki_err(err, PKI_ERR_ARG, "CRL: issuer has no key id");
		goto out;
	}
	aki->keyid = ASN1_OCTET_STRING_dup(ski);
	if (aki->keyid == NULL ||
	    ASN1_INTEGER_set_uint64(num, crl_number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0,
				  X509V3_ADD_DEFAULT) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0,
				  X509V3_ADD_DEFAULT) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "CRL extensions");
		goto out;
	}
	if (X509_CRL_sort(crl) != 1 ||
	    X509_CRL_sign(crl, issuer_key, md) <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "signing the CRL");
		goto out;
	}
	len = i2d_X509_CRL(crl, NULL);
	if (len <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "encoding the CRL");
		goto out;
	}
	buf = malloc((size_t)len);
	if (buf == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	p = buf;
	if (i2d_X509_CRL(crl, &p) != len) {
		free(buf);
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "encoding the CRL");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = PKI_OK;
out:
	AUTHORITY_KEYID_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return r;
}
