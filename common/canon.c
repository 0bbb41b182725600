/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Canonical JSON serialisation (RFC 8785 JCS as the model; the differences
 * are listed in canon.h) and the SHA-256 over it. Runs in fleetd's workers,
 * in the agent and in fleetctl; trusts nothing about the value it is given
 * beyond it being a well-formed jansson tree.
 */
#include "canon.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct member {
	const char *key;
	size_t key_len;
	json_t *value;
};

static int emit(struct buf *out, const json_t *v, int depth);

static int
emit_string(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	if (buf_append(out, "\"", 1) != 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t esc_len = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		/* Flush the literal run before the character to escape. */
		if (buf_append(out, s + run, i - run) != 0)
			return -1;
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			esc_len = 6;
			break;
		}
		if (buf_append(out, esc, esc_len) != 0)
			return -1;
	}
	if (buf_append(out, s + run, len - run) != 0)
		return -1;
	return buf_append(out, "\"", 1);
}

/*
 * ECMAScript Number.prototype.toString of a finite double: the shortest
 * digit string that reads back to v (found by asking printf for 1..17
 * significant digits), laid out by the position of the decimal point.
 */
static int
emit_real(struct buf *out, double v)
{
	char tmp[40], digits[20];
	int p, k = 0, n, exp10 = 0, i;
	const char *c;

	if (!isfinite(v))
		return -1;
	if (v == 0)
		return buf_append(out, "0", 1); /* -0 too */
	if (v < 0) {
		if (buf_append(out, "-", 1) != 0)
			return -1;
		v = -v;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp is d[.ddd]e[+-]xx; the decimal point may be locale's. */
	for (c = tmp; *c != '\0' && *c != 'e'; c++)
		if (*c >= '0' && *c <= '9' && k < (int)sizeof(digits) - 1)
			digits[k++] = *c;
	if (*c != 'e')
		return -1;
	exp10 = (int)strtol(c + 1, NULL, 10);
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	n = exp10 + 1; /* v = 0.digits * 10^n */

	/* Integral values are written as digits only while they fit an
	 * int64: a parser (jansson's, the agent's) reads digits as an
	 * integer and refuses one past int64, so 1e20 stays 1e+20 and the
	 * canonical text always parses back to itself. */
	if (k <= n && n <= 21 && v < 9223372036854775808.0) {
		if (buf_append(out, digits, (size_t)k) != 0)
			return -1;
		for (i = 0; i < n - k; i++)
			if (buf_append(out, "0", 1) != 0)
				return -1;
		return 0;
	}
	if (0 < n && n < k && n <= 21) {
		if (buf_append(out, digits, (size_t)n) != 0 ||
		    buf_append(out, ".", 1) != 0)
			return -1;
		return buf_append(out, digits + n, (size_t)(k - n));
	}
	if (-6 < n && n <= 0) {
		if (buf_append(out, "0.", 2) != 0)
			return -1;
		for (i = 0; i < -n; i++)
			if (buf_append(out, "0", 1) != 0)
				return -1;
		return buf_append(out, digits, (size_t)k);
	}
	if (buf_append(out, digits, 1) != 0)
		return -1;
	if (k > 1 && (buf_append(out, ".", 1) != 0 ||
		      buf_append(out, digits + 1, (size_t)(k - 1)) != 0))
		return -1;
	return buf_printf(out, "e%c%d", n - 1 < 0 ? '-' : '+',
			  n - 1 < 0 ? 1 - n : n - 1);
}

static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int
emit_object(struct buf *out, const json_t *obj, int depth)
{
	size_t n = json_object_size(obj), i = 0;
	struct member *m = NULL;
	const char *key;
	size_t key_len;
	json_t *value;
	int rc = -1;

	if (n > 0) {
		m = calloc(n, sizeof(*m));
		if (m == NULL)
			return -1;
	}
	/* jansson's iteration macros take a non-const object. */
	json_object_keylen_foreach((json_t *)(uintptr_t)obj, key, key_len,
				   value)
	{
		if (i == n)
			goto out;
		m[i].key = key;
		m[i].key_len = key_len;
		m[i].value = value;
		i++;
	}
	if (i != n)
		goto out;
	if (n > 1)
		qsort(m, n, sizeof(*m), member_cmp);
	if (buf_append(out, "{", 1) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (i > 0 && buf_append(out, ",", 1) != 0)
			goto out;
		if (emit_string(out, m[i].key, m[i].key_len) != 0 ||
		    buf_append(out, ":", 1) != 0 ||
		    emit(out, m[i].value, depth + 1) != 0)
			goto out;
	}
	rc = buf_append(out, "}", 1);
out:
	free(m);
	return rc;
}

static int
emit(struct buf *out, const json_t *v, int depth)
{
	size_t i;

	if (v == NULL || depth > CANON_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_NULL:
		return buf_append(out, "null", 4);
	case JSON_TRUE:
		return buf_append(out, "true", 4);
	case JSON_FALSE:
		return buf_append(out, "false", 5);
	case JSON_INTEGER:
		return buf_printf(out, "%" JSON_INTEGER_FORMAT,
				  json_integer_value(v));
	case JSON_REAL:
		return emit_real(out, json_real_value(v));
	case JSON_STRING:
		return emit_string(out, json_string_value(v),
				   json_string_length(v));
	case JSON_ARRAY:
		if (buf_append(out, "[", 1) != 0)
			return -1;
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0 && buf_append(out, ",", 1) != 0)
				return -1;
			if (emit(out, json_array_get(v, i), depth + 1) != 0)
				return -1;
		}
		return buf_append(out, "]", 1);
	case JSON_OBJECT:
		return emit_object(out, v, depth);
	}
	return -1;
}

char *
canon_json(const json_t *doc, size_t *len)
{
	struct buf out;
	char *text;
	size_t n = 0;

	buf_init(&out, CANON_MAX_BYTES);
	if (emit(&out, doc, 0) != 0) {
		buf_free(&out);
		return NULL;
	}
	text = buf_detach(&out, &n);
	if (text == NULL) {
		/* An empty buffer has no data yet; no value is empty. */
		buf_free(&out);
		return NULL;
	}
	if (len != NULL)
		*len = n;
	return text;
}

int
canon_sha256_hex_bytes(const void *data, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int md_len = 0;
	int i;

	if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != sizeof(md))
		return -1;
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
	return 0;
}

int
canon_sha256_hex(const json_t *doc, char hex[65])
{
	size_t len = 0;
	char *text = canon_json(doc, &len);
	int rc;

	if (text == NULL)
		return -1;
	rc = canon_sha256_hex_bytes(text, len, hex);
	free(text);
	return rc;
}
