/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Page cursors (core/page.h): the shapes the store makes, and their seal
 * (HMAC-SHA256 under the fleet's cursor key, bound to the list). Pure:
 * the key is a parameter. Job threads; cursors are untrusted.
 */
#include "core/page.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "secret.h"

/* Canonical decimal of len bytes, value in [lo, hi]. */
static bool
decimal_in(const char *s, size_t len, uint64_t lo, uint64_t hi)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0'); /* < 10^19 < 2^64 */
	}
	return v >= lo && v <= hi;
}

/* 9999-12-31T23:59:59.999999Z in microseconds since 1970. */
#define PAGE_TIME_MAX_US 253402300799999999ULL

bool
page_cursor_valid(const char *text, enum page_cursor_kind kind)
{
	const char *sp;

	if (text == NULL)
		return false;
	if (kind == PAGE_CURSOR_ID)
		return decimal_in(text, strlen(text), 1, INT64_MAX);
	sp = strchr(text, ' ');
	return sp != NULL &&
	       decimal_in(text, (size_t)(sp - text), 0, PAGE_TIME_MAX_US) &&
	       secret_is_uuid(sp + 1);
}

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of len bytes; -1 when out is too small. */
static int
b64url_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i < n; i += 3) {
		if (o + 5 > outlen)
			return -1;
		v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = b64url[v & 63];
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/* Decodes exactly len characters of canonical base64url (unused bits
 * zero); the number of bytes, or -1. */
static int
b64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	size_t i, o = 0;
	unsigned v = 0;
	int bits = 0;
	const char *pos;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		pos = in[i] != '\0' ? strchr(b64url, in[i]) : NULL;
		if (pos == NULL)
			return -1;
		v = (v << 6) | (unsigned)(pos - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)((v >> bits) & 0xff);
		}
	}
	if ((v & ((1u << bits) - 1)) != 0)
		return -1;
	return (int)o;
}

#define PAGE_TAG_LEN 16

static int
page_tag(const unsigned char key[PAGE_KEY_LEN], const char *list,
	 const char *cursor, unsigned char tag[PAGE_TAG_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[PAGE_CURSOR_MAX + 300];
	int n;

	/* The list's name binds a cursor to its list. */
	n = snprintf(msg, sizeof(msg), "%s\n%s", list, cursor);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(EVP_sha256(), key, PAGE_KEY_LEN, (const unsigned char *)msg,
		 (size_t)n, md, &mdlen) == NULL ||
	    mdlen < PAGE_TAG_LEN)
		return -1;
	memcpy(tag, md, PAGE_TAG_LEN);
	return 0;
}

int
page_cursor_seal(const unsigned char key[PAGE_KEY_LEN], const char *list,
		 const char *cursor, char *out, size_t outlen)
{
	unsigned char tag[PAGE_TAG_LEN];
	size_t n;

	if (page_tag(key, list, cursor, tag) != 0 ||
	    b64url_encode((const unsigned char *)cursor, strlen(cursor), out,
			  outlen) != 0)
		return -1;
	n = strlen(out);
	if (n + 1 >= outlen)
		return -1;
	out[n] = '.';
	return b64url_encode(tag, sizeof(tag), out + n + 1, outlen - n - 1);
}

int
page_cursor_open(const unsigned char key[PAGE_KEY_LEN], const char *list,
		 const char *sealed, enum page_cursor_kind kind,
		 char out[PAGE_CURSOR_MAX])
{
	unsigned char tag[PAGE_TAG_LEN + 4], want[PAGE_TAG_LEN];
	const char *dot = strchr(sealed, '.');
	int n;

	if (dot == NULL)
		return -1;
	n = b64url_decode(sealed, (size_t)(dot - sealed), (unsigned char *)out,
			  PAGE_CURSOR_MAX - 1);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	if (memchr(out, '\0', (size_t)n) != NULL ||
	    b64url_decode(dot + 1, strlen(dot + 1), tag, sizeof(tag)) !=
		    PAGE_TAG_LEN ||
	    page_tag(key, list, out, want) != 0 ||
	    CRYPTO_memcmp(tag, want, PAGE_TAG_LEN) != 0 ||
	    !page_cursor_valid(out, kind)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
