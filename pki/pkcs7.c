// SPDX-License-Identifier: Apache-2.0
/*
 * PKCS#7 / CMS "certs-only" messages (RFC 7030 §4.1.3, §4.2.3; RFC 5652
 * SignedData with no signers and no content), the answer format of EST.
 * Made by fleetd's api on job threads from certificates it issued or
 * holds; parsed by the EST client of the agent from a server it reached
 * over verified TLS (still untrusted input: size-bounded, strict DER, no
 * trailing bytes, fuzzed by tests/fuzz/fuzz_pkcs7.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "pki_int.h"

enum pki_result
pki_pkcs7_certs_der(X509 *const *certs, size_t n, unsigned char **der,
		    size_t *der_len, struct pki_error *err)
{
	PKCS7 *p7 = NULL;
	PKCS7_SIGNED *sd = NULL;
	unsigned char *buf = NULL, *p;
	enum pki_result r;
	int len;

	if (certs == NULL || n == 0 || der == NULL || der_len == NULL)
		return pki_err(err, PKI_ERR_ARG, "PKCS#7: no certificates");
	p7 = PKCS7_new();
	sd = PKCS7_SIGNED_new();
	if (p7 == NULL || sd == NULL) {
		PKCS7_SIGNED_free(sd);
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "PKCS#7");
		goto out;
	}
	/* As `openssl crl2pkcs7 -nocrl` builds it: SignedData version 1, no
	 * digest algorithms, encapContentInfo id-data without content, the
	 * certificates, no CRLs, no signerInfos. */
	p7->type = OBJ_nid2obj(NID_pkcs7_signed);
	p7->d.sign = sd;
	sd->contents->type = OBJ_nid2obj(NID_pkcs7_data);
	sd->cert = sk_X509_new_null();
	if (sd->cert == NULL || ASN1_INTEGER_set(sd->version, 1) != 1) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "PKCS#7");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (certs[i] == NULL || X509_up_ref(certs[i]) != 1) {
			r = pki_err(err, PKI_ERR_ARG, "PKCS#7: no certificate");
			goto out;
		}
		if (sk_X509_push(sd->cert, certs[i]) <= 0) {
			X509_free(certs[i]);
			r = pki_err_ssl(err, PKI_ERR_NOMEM, "PKCS#7");
			goto out;
		}
	}
	len = i2d_PKCS7(p7, NULL);
	if (len <= 0) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "encoding PKCS#7");
		goto out;
	}
	buf = malloc((size_t)len);
	if (buf == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	p = buf;
	if (i2d_PKCS7(p7, &p) != len) {
		free(buf);
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "encoding PKCS#7");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = PKI_OK;
out:
	PKCS7_free(p7);
	return r;
}

enum pki_result
pki_pkcs7_certs_base64(X509 *const *certs, size_t n, char **out,
		       size_t *out_len, struct pki_error *err)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	enum pki_result r;

	r = pki_pkcs7_certs_der(certs, n, &der, &der_len, err);
	if (r != PKI_OK)
		return r;
	r = pki_base64_encode(der, der_len, out, out_len, err);
	free(der);
	return r;
}

enum pki_result
pki_base64_encode(const void *data, size_t len, char **out, size_t *out_len,
		  struct pki_error *err)
{
	const unsigned char *in = data;
	size_t lines = (len + 47) / 48, cap, i, k, n = 0;
	char *b64;

	if (out == NULL || out_len == NULL || (data == NULL && len > 0))
		return pki_err(err, PKI_ERR_ARG, "base64: no input or output");
	/* 64 characters and CRLF per line (RFC 2045 style, which RFC 8951
	 * allows and every EST client reads). */
	cap = lines * 66 + 1;
	b64 = malloc(cap);
	if (b64 == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	for (i = 0; i < len; i += 48) {
		k = len - i < 48 ? len - i : 48;
		n += (size_t)EVP_EncodeBlock((unsigned char *)b64 + n, in + i,
					     (int)k);
		b64[n++] = '\r';
		b64[n++] = '\n';
	}
	b64[n] = '\0';
	*out = b64;
	*out_len = n;
	return PKI_OK;
}

enum pki_result
pki_base64_decode(const void *text, size_t len, size_t max_out,
		  unsigned char **out, size_t *out_len, struct pki_error *err)
{
	const unsigned char *in = text;
	unsigned char *clean = NULL, *bin = NULL;
	size_t n = 0, pad = 0, i;
	int got;

	if (text == NULL || out == NULL || out_len == NULL)
		return pki_err(err, PKI_ERR_ARG, "base64: no input or output");
	if (len / 4 * 3 > max_out + 3)
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "base64 input longer than %zu bytes decoded",
			       max_out);
	clean = malloc(len + 1);
	if (clean == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	/* Whitespace (line breaks of any style) is skipped; anything else
	 * outside the alphabet, or data after padding, is an error. */
	for (i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '+' || c == '/') {
			if (pad > 0)
				goto bad;
		} else {
			goto bad;
		}
		clean[n++] = c;
	}
	if (n == 0 || n % 4 != 0 || pad > 2)
		goto bad;
	bin = malloc(n / 4 * 3 + 1);
	if (bin == NULL) {
		free(clean);
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	}
	got = EVP_DecodeBlock(bin, clean, (int)n);
	free(clean);
	if (got < 0 || (size_t)got < pad) {
		free(bin);
		return pki_err(err, PKI_ERR_PARSE, "malformed base64");
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	*out_len = (size_t)got - pad;
	if (*out_len > max_out) {
		free(bin);
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "decoded input longer than %zu bytes", max_out);
	}
	*out = bin;
	return PKI_OK;
bad:
	free(clean);
	return pki_err(err, PKI_ERR_PARSE, "malformed base64");
}

void
pki_certs_free(X509 **certs, size_t n)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	free(certs);
}

enum pki_result
pki_pkcs7_certs_parse(const void *der, size_t len, size_t max_certs,
		      X509 ***certs, size_t *n, struct pki_error *err)
{
	const unsigned char *p = der;
	PKCS7 *p7 = NULL;
	STACK_OF(X509) *sk = NULL;
	X509 **list = NULL;
	enum pki_result r;
	int count;

	if (der == NULL || certs == NULL || n == NULL || len == 0)
		return pki_err(err, PKI_ERR_ARG, "PKCS#7: no input");
	if (len > PKI_PKCS7_MAX_BYTES)
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "PKCS#7 message over %u bytes",
			       PKI_PKCS7_MAX_BYTES);
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7 == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE, "PKCS#7 is not DER");
	if ((size_t)(p - (const unsigned char *)der) != len) {
		r = pki_err(err, PKI_ERR_PARSE, "PKCS#7: trailing bytes");
		goto out;
	}
	if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL) {
		r = pki_err(err, PKI_ERR_PARSE, "PKCS#7 is not SignedData");
		goto out;
	}
	sk = p7->d.sign->cert;
	count = sk != NULL ? sk_X509_num(sk) : 0;
	if (count <= 0) {
		r = pki_err(err, PKI_ERR_PARSE, "PKCS#7 holds no certificate");
		goto out;
	}
	if ((size_t)count > max_certs) {
		r = pki_err(err, PKI_ERR_TOO_LARGE,
			    "PKCS#7 holds %d certificates (at most %zu)", count,
			    max_certs);
		goto out;
	}
	list = calloc((size_t)count, sizeof(*list));
	if (list == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < count; i++) {
		list[i] = sk_X509_value(sk, i);
		if (X509_up_ref(list[i]) != 1) {
			pki_certs_free(list, (size_t)i);
			list = NULL;
			r = pki_err_ssl(err, PKI_ERR_CRYPTO, "PKCS#7");
			goto out;
		}
	}
	*certs = list;
	*n = (size_t)count;
	r = PKI_OK;
out:
	PKCS7_free(p7);
	return r;
}

enum pki_result
pki_certs_parse_pem(const char *pem, size_t len, size_t max_certs,
		    X509 ***certs, size_t *n, struct pki_error *err)
{
	BIO *bio = NULL;
	X509 **list = NULL;
	X509 *x;
	size_t count = 0;
	enum pki_result r;

	if (pem == NULL || certs == NULL || n == NULL || max_certs == 0 ||
	    len > INT32_MAX)
		return pki_err(err, PKI_ERR_ARG, "PEM bundle: no input");
	list = calloc(max_certs, sizeof(*list));
	bio = BIO_new_mem_buf(pem, (int)len);
	if (list == NULL || bio == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (count == max_certs) {
			X509_free(x);
			r = pki_err(err, PKI_ERR_TOO_LARGE,
				    "PEM bundle holds more than %zu "
				    "certificates",
				    max_certs);
			goto fail;
		}
		list[count++] = x;
	}
	ERR_clear_error(); /* the end of the buffer */
	if (count == 0) {
		r = pki_err(err, PKI_ERR_PARSE,
			    "PEM bundle holds no certificate");
		goto fail;
	}
	BIO_free(bio);
	*certs = list;
	*n = count;
	return PKI_OK;
fail:
	BIO_free(bio);
	pki_certs_free(list, count);
	return r;
}
