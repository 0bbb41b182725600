/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token and identifier helpers used by fleetd (admin and enrollment tokens,
 * device ids) and fleetctl. Tokens are only ever stored as SHA-256.
 */
#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

void
hex_encode(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
secret_token_new(const char *prefix, char *out, size_t outlen)
{
	unsigned char raw[SECRET_TOKEN_BYTES];
	size_t plen = strlen(prefix);

	if (outlen < plen + 2 * sizeof(raw) + 1)
		return -1;
	if (RAND_bytes(raw, (int)sizeof(raw)) != 1)
		return -1;
	memcpy(out, prefix, plen);
	hex_encode(raw, sizeof(raw), out + plen);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void
secret_sha256_hex(const void *data, size_t len, char out[SECRET_SHA256_HEX])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}

bool
secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (la != strlen(b))
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}

int
secret_uuid_v4(char out[SECRET_UUID_LEN])
{
	unsigned char u[16];

	if (RAND_bytes(u, (int)sizeof(u)) != 1)
		return -1;
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(out, SECRET_UUID_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	return 0;
}

bool
secret_is_uuid(const char *s)
{
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') ||
			     (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return s[36] == '\0';
}
