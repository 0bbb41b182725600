/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict parsers of untrusted API input (see api/input.h). Pure code:
 * the fuzz harnesses link it without PostgreSQL or libwebsockets.
 */
#include "api/input.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jscan {
	const unsigned char *p, *end, *start;
	const char *why;
};

static void
jskip_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
				 *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
jfail(struct jscan *s, const char *why)
{
	if (s->why == NULL)
		s->why = why;
	return false;
}

static bool
jliteral(struct jscan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return jfail(s, "invalid literal");
	s->p += n;
	return true;
}

static bool
jdigits(struct jscan *s)
{
	const unsigned char *from = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > from;
}

static bool
jnumber(struct jscan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0') {
		s->p++;
	} else if (!jdigits(s)) {
		return jfail(s, "invalid number");
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!jdigits(s))
			return jfail(s, "invalid number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!jdigits(s))
			return jfail(s, "invalid number");
	}
	return true;
}

static int
jhex4(struct jscan *s)
{
	int v = 0, i, d;

	if (s->end - s->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char ch = s->p[i];

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	s->p += 4;
	return v;
}

/* One UTF-8 sequence of 2..4 bytes starting at s->p (RFC 3629). */
static bool
jutf8(struct jscan *s)
{
	unsigned char c = *s->p;
	uint32_t cp, min;
	int n, i;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return jfail(s, "invalid UTF-8");
	}
	if (s->end - s->p <= n)
		return jfail(s, "invalid UTF-8");
	for (i = 1; i <= n; i++) {
		if ((s->p[i] & 0xc0) != 0x80)
			return jfail(s, "invalid UTF-8");
		cp = (cp << 6) | (s->p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return jfail(s, "invalid UTF-8");
	s->p += n + 1;
	return true;
}

static bool
jstring(struct jscan *s)
{
	int u, lo;

	s->p++; /* the opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return jfail(s, "control character in a string");
		if (c >= 0x80) {
			if (!jutf8(s))
				return false;
			continue;
		}
		s->p++;
		if (c != '\\')
			continue;
		if (s->p >= s->end)
			break;
		c = *s->p++;
		if (strchr("\"\\/bfnrt", c) != NULL && c != '\0')
			continue;
		if (c != 'u')
			return jfail(s, "invalid escape");
		u = jhex4(s);
		if (u <= 0)
			return jfail(s, u == 0 ? "\\u0000 in a string"
					       : "invalid \\u escape");
		if (u >= 0xdc00 && u <= 0xdfff)
			return jfail(s, "unpaired surrogate escape");
		if (u >= 0xd800 && u <= 0xdbff) {
			if (s->end - s->p < 2 || s->p[0] != '\\' ||
			    s->p[1] != 'u')
				return jfail(s, "unpaired surrogate escape");
			s->p += 2;
			lo = jhex4(s);
			if (lo < 0xdc00 || lo > 0xdfff)
				return jfail(s, "unpaired surrogate escape");
		}
	}
	return jfail(s, "unterminated string");
}

static bool jvalue(struct jscan *s, int depth);

/* An object or an array, s->p on its opening bracket. */
static bool
jcontainer(struct jscan *s, int depth)
{
	unsigned char close = *s->p == '{' ? '}' : ']';
	bool object = close == '}';

	if (depth >= API_JSON_DEPTH_MAX)
		return jfail(s, "nested too deeply");
	s->p++;
	jskip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return jfail(s, "expected a member name");
			if (!jstring(s))
				return false;
			jskip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return jfail(s, "expected ':'");
			s->p++;
		}
		if (!jvalue(s, depth + 1))
			return false;
		jskip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			jskip_ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return true;
		}
		return jfail(s, object ? "expected ',' or '}'"
				       : "expected ',' or ']'");
	}
}

static bool
jvalue(struct jscan *s, int depth)
{
	jskip_ws(s);
	if (s->p >= s->end)
		return jfail(s, "unexpected end of input");
	switch (*s->p) {
	case '{':
	case '[':
		return jcontainer(s, depth);
	case '"':
		return jstring(s);
	case 't':
		return jliteral(s, "true");
	case 'f':
		return jliteral(s, "false");
	case 'n':
		return jliteral(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return jnumber(s);
		return jfail(s, "unexpected byte");
	}
}

bool
api_json_strict(const char *buf, size_t len, char *err, size_t errlen)
{
	struct jscan s;
	bool ok;

	s.start = s.p = (const unsigned char *)buf;
	s.end = s.p + len;
	s.why = NULL;
	ok = buf != NULL && jvalue(&s, 0);
	if (ok) {
		jskip_ws(&s);
		if (s.p != s.end)
			ok = jfail(&s, "trailing data after the JSON text");
	} else if (buf == NULL) {
		s.why = "empty body";
	}
	if (!ok && err != NULL && errlen > 0)
		snprintf(err, errlen, "byte %zu: %s", (size_t)(s.p - s.start),
			 s.why ? s.why : "invalid");
	return ok;
}

json_t *
api_json_object_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc;

	if (!api_json_strict(buf, len, err, errlen))
		return NULL;
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(err, errlen, "byte %d: %s", jerr.position, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		snprintf(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return doc;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes one value (up to '&' or the end) into out. */
static int
query_value(const char *p, char *out, size_t outlen)
{
	size_t o = 0;
	int hi, lo;

	for (; *p != '\0' && *p != '&'; p++) {
		if (o + 1 >= outlen)
			return -1;
		if (*p == '+') {
			out[o++] = ' ';
		} else if (*p == '%') {
			hi = hexval(p[1]);
			lo = hi < 0 ? -1 : hexval(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			p += 2;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return 1;
}

int
api_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = query, *found = NULL;

	if (outlen == 0)
		return -1;
	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			/* Two values for one name: which one counts would
			 * depend on who reads it. */
			if (found != NULL)
				return -1;
			found = p + nlen + 1;
		}
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	if (found == NULL)
		return 0;
	return query_value(found, out, outlen);
}

int
api_page_read(const char *query, const char *list,
	      const unsigned char key[PAGE_KEY_LEN], enum page_cursor_kind kind,
	      struct page *page, char after[PAGE_CURSOR_MAX],
	      const char **field)
{
	char text[PAGE_SEALED_MAX];
	long limit = PAGE_LIMIT_DEFAULT;
	size_t i;
	int rc;

	page->limit = PAGE_LIMIT_DEFAULT;
	page->after = NULL;
	rc = api_query_param(query, "limit", text, sizeof(text));
	if (rc != 0) {
		/* 1..1000 in canonical decimal: no sign, blank or zero pad. */
		if (rc < 0 || text[0] < '1' || text[0] > '9' ||
		    strlen(text) > 4)
			goto bad_limit;
		for (limit = 0, i = 0; text[i] != '\0'; i++) {
			if (text[i] < '0' || text[i] > '9')
				goto bad_limit;
			limit = limit * 10 + (text[i] - '0');
		}
		if (limit > PAGE_LIMIT_MAX)
			goto bad_limit;
	}
	page->limit = (int)limit;
	rc = api_query_param(query, "cursor", text, sizeof(text));
	if (rc == 0)
		return 0;
	if (rc < 0 || page_cursor_open(key, list, text, kind, after) != 0) {
		*field = "cursor";
		return -1;
	}
	page->after = after;
	return 0;
bad_limit:
	*field = "limit";
	return -1;
}
