/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The strict HTTP/1.1 request-head parser of h1.h. Runs on a net worker's
 * event loop over bytes straight from the network; every length is
 * checked before use and nothing is copied past its limit: a field over
 * its limit is an error, never a shorter field.
 */
#include "http/h1.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum h1_result h1_fail(struct h1_error *err, int status,
			      const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum h1_result
h1_fail(struct h1_error *err, int status, const char *slug, const char *fmt,
	...)
{
	va_list ap;

	err->status = status;
	err->slug = slug;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return H1_ERROR;
}

static const struct {
	int status;
	const char *reason;
} h1_reasons[] = {
	{100, "Continue"},
	{200, "OK"},
	{201, "Created"},
	{202, "Accepted"},
	{204, "No Content"},
	{206, "Partial Content"},
	{304, "Not Modified"},
	{400, "Bad Request"},
	{401, "Unauthorized"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{409, "Conflict"},
	{410, "Gone"},
	{411, "Length Required"},
	{412, "Precondition Failed"},
	{413, "Content Too Large"},
	{414, "URI Too Long"},
	{415, "Unsupported Media Type"},
	{416, "Range Not Satisfiable"},
	{417, "Expectation Failed"},
	{422, "Unprocessable Content"},
	{428, "Precondition Required"},
	{429, "Too Many Requests"},
	{431, "Request Header Fields Too Large"},
	{500, "Internal Server Error"},
	{501, "Not Implemented"},
	{502, "Bad Gateway"},
	{503, "Service Unavailable"},
	{504, "Gateway Timeout"},
	{505, "HTTP Version Not Supported"},
};

const char *
h1_reason(int status)
{
	for (size_t i = 0; i < sizeof(h1_reasons) / sizeof(h1_reasons[0]); i++)
		if (h1_reasons[i].status == status)
			return h1_reasons[i].reason;
	return "Status";
}

void
h1_request_clear(struct h1_request *req)
{
	if (req == NULL)
		return;
	free(req->query);
	OPENSSL_cleanse(req, sizeof(*req));
}

/* RFC 9110 §5.6.2 token characters. */
static bool
h1_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
h1_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The methods some route of the API serves; every other one gets 501. */
static bool
h1_method_served(const char *m, size_t n)
{
	static const char *const served[] = {"GET", "HEAD",  "POST",
					     "PUT", "PATCH", "DELETE"};

	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		if (strlen(served[i]) == n && memcmp(m, served[i], n) == 0)
			return true;
	return false;
}

/* Offset of the first "\r\n" in buf[from..len), or len. */
static size_t
h1_find_crlf(const char *buf, size_t from, size_t len)
{
	for (size_t i = from; i + 1 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n')
			return i;
	return len;
}

/*
 * Bytes that can never be part of a valid head end it early: a NUL, and a
 * LF not after a CR (a bare LF is a line end to some parsers and not to
 * others: the smuggling kind of ambiguity).
 */
static enum h1_result
h1_scan(const char *buf, size_t len, struct h1_error *err)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0')
			return h1_fail(err, 400, "bad-request",
				       "a NUL byte in the request head");
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return h1_fail(err, 400, "bad-request",
				       "header lines end in CRLF");
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
			return h1_fail(err, 400, "bad-request",
				       "a CR not followed by LF");
	}
	return H1_OK;
}

/* Path: origin-form, percent-decoded, no NUL or control bytes, no dot
 * segments (lws used to rewrite them; we refuse them). */
static enum h1_result
h1_path(const char *p, size_t n, struct h1_request *req, struct h1_error *err)
{
	size_t o = 0;

	if (n == 0 || p[0] != '/')
		return h1_fail(err, 400, "bad-request",
			       "the request target must be a path (/...)");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			int hi = i + 2 < n ? h1_hex((unsigned char)p[i + 1])
					   : -1;
			int lo = hi >= 0 ? h1_hex((unsigned char)p[i + 2]) : -1;

			if (lo < 0)
				return h1_fail(err, 400, "bad-request",
					       "bad percent-encoding in the "
					       "path");
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return h1_fail(err, 400, "bad-request",
				       "NUL or control characters in the path");
		if (o + 1 >= sizeof(req->path))
			return h1_fail(err, 414, "uri-too-long",
				       "paths are limited to %zu bytes",
				       sizeof(req->path) - 1);
		req->path[o++] = (char)c;
	}
	req->path[o] = '\0';
	/* Dot segments, checked on the decoded path. */
	for (size_t i = 0; i < o; i++) {
		if (req->path[i] != '/')
			continue;
		if ((req->path[i + 1] == '.' &&
		     (req->path[i + 2] == '/' || req->path[i + 2] == '\0')) ||
		    (req->path[i + 1] == '.' && req->path[i + 2] == '.' &&
		     (req->path[i + 3] == '/' || req->path[i + 3] == '\0')))
			return h1_fail(err, 400, "bad-request",
				       "dot segments in the path");
	}
	return H1_OK;
}

/* Query: kept as sent (the API decodes it), checked: %XX well formed, no
 * %00, at most H1_QUERY_PARAMS_MAX parameters. */
static enum h1_result
h1_query(const char *q, size_t n, struct h1_request *req, struct h1_error *err)
{
	size_t params = n > 0 ? 1 : 0;

	for (size_t i = 0; i < n; i++) {
		if (q[i] == '&')
			params++;
		if (q[i] != '%')
			continue;
		if (i + 2 >= n || h1_hex((unsigned char)q[i + 1]) < 0 ||
		    h1_hex((unsigned char)q[i + 2]) < 0)
			return h1_fail(err, 400, "bad-request",
				       "bad percent-encoding in the query");
		if (q[i + 1] == '0' && q[i + 2] == '0')
			return h1_fail(err, 400, "bad-request",
				       "%%00 in a query parameter");
	}
	if (params > H1_QUERY_PARAMS_MAX)
		return h1_fail(err, 400, "bad-request",
			       "at most %d query parameters",
			       H1_QUERY_PARAMS_MAX);
	req->query = malloc(n + 1);
	if (req->query == NULL)
		return h1_fail(err, 503, "service-unavailable",
			       "out of memory");
	memcpy(req->query, q, n);
	req->query[n] = '\0';
	return H1_OK;
}

static enum h1_result
h1_request_line(const char *l, size_t n, struct h1_request *req,
		struct h1_error *err)
{
	size_t m = 0, t, tn, v;

	while (m < n && h1_tchar((unsigned char)l[m]))
		m++;
	if (m == 0 || m >= n || l[m] != ' ')
		return h1_fail(err, 400, "bad-request",
			       "malformed request line");
	if (!h1_method_served(l, m))
		return h1_fail(err, 501, "not-implemented",
			       "the API serves GET, HEAD, POST, PUT, PATCH "
			       "and DELETE");
	memcpy(req->method, l, m);
	req->method[m] = '\0';
	t = m + 1;
	for (tn = 0; t + tn < n && l[t + tn] != ' '; tn++) {
		unsigned char c = (unsigned char)l[t + tn];

		if (c <= 0x20 || c >= 0x7f || c == '#')
			return h1_fail(err, 400, "bad-request",
				       "invalid characters in the request "
				       "target");
	}
	if (tn >= H1_TARGET_MAX)
		return h1_fail(err, 414, "uri-too-long",
			       "request targets are limited to %d bytes",
			       H1_TARGET_MAX - 1);
	v = t + tn + 1;
	if (t + tn >= n || v >= n)
		return h1_fail(err, 400, "bad-request",
			       "malformed request line");
	if (n - v == 8 && memcmp(l + v, "HTTP/1.1", 8) == 0) {
		req->http10 = false;
	} else if (n - v == 8 && memcmp(l + v, "HTTP/1.0", 8) == 0) {
		req->http10 = true;
	} else if (n - v == 8 && memcmp(l + v, "HTTP/", 5) == 0 &&
		   l[v + 5] >= '0' && l[v + 5] <= '9' && l[v + 6] == '.' &&
		   l[v + 7] >= '0' && l[v + 7] <= '9') {
		return h1_fail(err, 505, "http-version-not-supported",
			       "the api listener speaks HTTP/1.1");
	} else {
		return h1_fail(err, 400, "bad-request",
			       "malformed request line");
	}
	{
		const char *target = l + t;
		const char *qmark = memchr(target, '?', tn);
		size_t plen = qmark != NULL ? (size_t)(qmark - target) : tn;

		if (h1_path(target, plen, req, err) != H1_OK)
			return H1_ERROR;
		if (qmark != NULL)
			return h1_query(qmark + 1, tn - plen - 1, req, err);
		return h1_query("", 0, req, err);
	}
}

/* Copies a single-valued field: repeated -> 400, too long -> 431. */
static enum h1_result
h1_single(const char *name, const char *v, size_t vn, char *out, size_t max,
	  bool *seen, struct h1_error *err)
{
	if (*seen)
		return h1_fail(err, 400, "bad-request",
			       "%s is sent more than once", name);
	*seen = true;
	if (vn >= max)
		return h1_fail(err, 431, "header-too-large",
			       "%s is limited to %zu bytes", name, max - 1);
	memcpy(out, v, vn);
	out[vn] = '\0';
	return H1_OK;
}

struct h1_seen {
	int host;
	bool content_length, authorization, content_type, if_match,
		idempotency_key, expect;
	bool close, keep_alive;
};

static bool
h1_name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Connection: a comma-separated token list. */
static void
h1_connection(const char *v, size_t vn, struct h1_seen *seen)
{
	size_t i = 0;

	while (i < vn) {
		size_t s, e;

		while (i < vn && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < vn && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == 5 && strncasecmp(v + s, "close", 5) == 0)
			seen->close = true;
		if (e - s == 10 && strncasecmp(v + s, "keep-alive", 10) == 0)
			seen->keep_alive = true;
	}
}

static enum h1_result
h1_field(const char *l, size_t n, struct h1_request *req, struct h1_seen *seen,
	 struct h1_error *err)
{
	size_t c = 0, vs, ve;
	const char *v;

	if (n >= H1_FIELD_LINE_MAX)
		return h1_fail(err, 431, "header-too-large",
			       "a header line is limited to %d bytes",
			       H1_FIELD_LINE_MAX - 1);
	if (l[0] == ' ' || l[0] == '\t')
		return h1_fail(err, 400, "bad-request",
			       "folded header lines are not accepted");
	while (c < n && h1_tchar((unsigned char)l[c]))
		c++;
	if (c == 0 || c >= n || l[c] != ':')
		return h1_fail(err, 400, "bad-request",
			       "malformed header line (a name, then a colon "
			       "without whitespace before it)");
	vs = c + 1;
	while (vs < n && (l[vs] == ' ' || l[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
		ve--;
	for (size_t i = vs; i < ve; i++) {
		unsigned char ch = (unsigned char)l[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return h1_fail(err, 400, "bad-request",
				       "control characters in a header value");
	}
	v = l + vs;
	if (h1_name_is(l, c, "transfer-encoding"))
		return h1_fail(err, 400, "bad-request",
			       "Transfer-Encoding is not accepted; send the "
			       "body with one Content-Length");
	if (h1_name_is(l, c, "upgrade"))
		return h1_fail(err, 400, "upgrade-refused",
			       "the api listener does not upgrade connections; "
			       "websockets are served on the device listener");
	if (h1_name_is(l, c, "content-length")) {
		long long cl = 0;

		if (seen->content_length)
			return h1_fail(err, 400, "bad-request",
				       "Content-Length is sent more than once");
		seen->content_length = true;
		if (ve == vs || ve - vs > H1_CONTENT_LENGTH_DIGITS)
			goto bad_length;
		for (size_t i = vs; i < ve; i++) {
			if (l[i] < '0' || l[i] > '9')
				goto bad_length;
			cl = cl * 10 + (l[i] - '0');
		}
		req->content_length = cl;
		req->has_content_length = true;
		return H1_OK;
	bad_length:
		return h1_fail(err, 400, "bad-request",
			       "Content-Length must be one decimal number");
	}
	if (h1_name_is(l, c, "host")) {
		if (++seen->host > 1)
			return h1_fail(err, 400, "bad-request",
				       "Host is sent more than once");
		return H1_OK;
	}
	if (h1_name_is(l, c, "authorization"))
		return h1_single("Authorization", v, ve - vs,
				 req->authorization, sizeof(req->authorization),
				 &seen->authorization, err);
	if (h1_name_is(l, c, "content-type"))
		return h1_single("Content-Type", v, ve - vs, req->content_type,
				 sizeof(req->content_type), &seen->content_type,
				 err);
	if (h1_name_is(l, c, "if-match"))
		return h1_single("If-Match", v, ve - vs, req->if_match,
				 sizeof(req->if_match), &seen->if_match, err);
	if (h1_name_is(l, c, "idempotency-key"))
		return h1_single("Idempotency-Key", v, ve - vs,
				 req->idempotency_key,
				 sizeof(req->idempotency_key),
				 &seen->idempotency_key, err);
	if (h1_name_is(l, c, "connection")) {
		h1_connection(v, ve - vs, seen);
		return H1_OK;
	}
	if (h1_name_is(l, c, "expect")) {
		if (seen->expect || ve - vs != 12 ||
		    strncasecmp(v, "100-continue", 12) != 0)
			return h1_fail(err, 417, "expectation-failed",
				       "only Expect: 100-continue is met");
		seen->expect = true;
		req->expect_continue = true;
		return H1_OK;
	}
	return H1_OK; /* a field we do not use */
}

enum h1_result
h1_parse(const char *buf, size_t len, struct h1_request *req,
	 struct h1_error *err)
{
	struct h1_seen seen;
	size_t start = 0, end, pos, line_end, nfields = 0;
	size_t scan = len < H1_HEAD_MAX ? len : H1_HEAD_MAX;

	memset(req, 0, sizeof(*req));
	memset(err, 0, sizeof(*err));
	memset(&seen, 0, sizeof(seen));
	/* RFC 9112 §2.2: empty lines before a request line are ignored. */
	while (start + 1 < scan && buf[start] == '\r' && buf[start + 1] == '\n')
		start += 2;
	end = start;
	for (;;) {
		end = h1_find_crlf(buf, end, scan);
		if (end >= scan)
			break;
		if (end + 3 < scan && buf[end + 2] == '\r' &&
		    buf[end + 3] == '\n')
			break;
		end += 2;
	}
	/* Only the head: the body may hold any byte. */
	if (h1_scan(buf + start, (end < scan ? end + 4 : scan) - start, err) !=
	    H1_OK)
		return H1_ERROR;
	if (end >= scan) {
		/* Not whole yet: refuse as soon as a limit is passed. */
		size_t rl = h1_find_crlf(buf, start, scan);

		if (rl >= scan && scan - start > H1_TARGET_MAX + 32)
			return h1_fail(err, 414, "uri-too-long",
				       "request targets are limited to %d "
				       "bytes",
				       H1_TARGET_MAX - 1);
		if (len >= H1_HEAD_MAX)
			return h1_fail(err, 431, "header-too-large",
				       "request heads are limited to %d bytes",
				       H1_HEAD_MAX);
		return H1_INCOMPLETE;
	}
	line_end = h1_find_crlf(buf, start, end + 2);
	if (h1_request_line(buf + start, line_end - start, req, err) != H1_OK)
		goto fail;
	for (pos = line_end + 2; pos < end + 2; pos = line_end + 2) {
		line_end = h1_find_crlf(buf, pos, end + 2);
		if (++nfields > H1_FIELDS_MAX) {
			h1_fail(err, 431, "header-too-large",
				"at most %d header lines", H1_FIELDS_MAX);
			goto fail;
		}
		if (h1_field(buf + pos, line_end - pos, req, &seen, err) !=
		    H1_OK)
			goto fail;
	}
	if (!req->http10 && seen.host == 0) {
		h1_fail(err, 400, "bad-request", "HTTP/1.1 requires Host");
		goto fail;
	}
	req->keep_alive =
		req->http10 ? seen.keep_alive && !seen.close : !seen.close;
	req->head_len = end + 4;
	return H1_OK;
fail:
	h1_request_clear(req);
	return H1_ERROR;
}
