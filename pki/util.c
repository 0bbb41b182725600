// SPDX-License-Identifier: Apache-2.0
/*
 * Error messages, result names, digest choice and small encoders shared by
 * the libfleetpki modules. Runs in every process that links the library;
 * trusts nothing beyond its arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "pki_int.h"

const char *
pki_result_str(enum pki_result r)
{
	switch (r) {
	case PKI_OK:
		return "PKI_OK";
	case PKI_ERR_ARG:
		return "PKI_ERR_ARG";
	case PKI_ERR_NOMEM:
		return "PKI_ERR_NOMEM";
	case PKI_ERR_IO:
		return "PKI_ERR_IO";
	case PKI_ERR_EXISTS:
		return "PKI_ERR_EXISTS";
	case PKI_ERR_PARSE:
		return "PKI_ERR_PARSE";
	case PKI_ERR_TOO_LARGE:
		return "PKI_ERR_TOO_LARGE";
	case PKI_ERR_SIGNATURE:
		return "PKI_ERR_SIGNATURE";
	case PKI_ERR_POLICY:
		return "PKI_ERR_POLICY";
	case PKI_ERR_THRESHOLD:
		return "PKI_ERR_THRESHOLD";
	case PKI_ERR_CRYPTO:
		return "PKI_ERR_CRYPTO";
	}
	return "PKI_ERR_UNKNOWN";
}

void
pki_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

enum pki_result
pki_err(struct pki_error *err, enum pki_result r, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return r;
}

enum pki_result
pki_err_ssl(struct pki_error *err, enum pki_result r, const char *fmt, ...)
{
	va_list ap;
	size_t used;
	unsigned long e;
	char buf[160];

	if (err == NULL) {
		ERR_clear_error();
		return r;
	}
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	used = strlen(err->msg);
	e = ERR_get_error();
	while (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		if (used + 3 < sizeof(err->msg)) {
			snprintf(err->msg + used, sizeof(err->msg) - used,
				 ": %s", buf);
			used = strlen(err->msg);
		}
		e = ERR_get_error();
	}
	return r;
}

enum pki_result
pki_sign_md(const EVP_PKEY *key, const EVP_MD **md, struct pki_error *err)
{
	int bits;

	if (EVP_PKEY_is_a(key, "ED25519")) {
		*md = NULL;
		return PKI_OK;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		bits = EVP_PKEY_get_bits(key);
		*md = bits > 256 ? EVP_sha384() : EVP_sha256();
		return PKI_OK;
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		*md = EVP_sha256();
		return PKI_OK;
	}
	return pki_err(err, PKI_ERR_POLICY, "unsupported signing key type");
}

void
pki_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

enum pki_result
pki_serial_hex(const unsigned char *mag, size_t len, char *out, size_t cap,
	       struct pki_error *err)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, n;

	/* i2a_ASN1_INTEGER (openssl x509 -serial, openssl crl -text) prints
	 * the content octets of the minimal encoding, so a leading 0x0X
	 * octet keeps its zero digit. */
	while (len > 0 && mag[0] == 0) {
		mag++;
		len--;
	}
	n = len == 0 ? 1 : len;
	if (out == NULL || cap < 2 * n + 1)
		return pki_err(err, PKI_ERR_ARG, "serial buffer too small");
	if (len == 0) {
		memcpy(out, "00", 3);
		return PKI_OK;
	}
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[mag[i] >> 4];
		out[2 * i + 1] = digits[mag[i] & 0x0f];
	}
	out[2 * len] = '\0';
	return PKI_OK;
}

enum pki_result
pki_bio_take(BIO *bio, char **out, size_t *len, struct pki_error *err)
{
	char *data = NULL;
	char *copy = NULL;
	long n;

	n = BIO_get_mem_data(bio, &data);
	if (n < 0 || data == NULL)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "reading memory BIO");
	copy = malloc((size_t)n + 1);
	if (copy == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	*out = copy;
	if (len != NULL)
		*len = (size_t)n;
	return PKI_OK;
}
