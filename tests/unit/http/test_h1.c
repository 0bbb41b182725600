/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd/http/h1.c: every head of the table gets exactly the answer of
 * its row (accepted with these fields, or refused with this status and
 * problem type), and a head that arrives in pieces is decided only once
 * it is whole or past a limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST "Host: localhost\r\n"

struct refusal_case {
	const char *what;
	const char *head;
	int status;
	const char *slug;
};

static const struct refusal_case refusals[] = {
	{"two Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST
	 "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
	 400, "bad-request"},
	{"equal Content-Length twice",
	 "POST /x HTTP/1.1\r\n" HOST
	 "Content-Length: 1\r\nContent-Length: 1\r\n\r\n",
	 400, "bad-request"},
	{"Content-Length list",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length: 1, 1\r\n\r\n", 400,
	 "bad-request"},
	{"non-numeric Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length: abc\r\n\r\n", 400,
	 "bad-request"},
	{"negative Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n", 400,
	 "bad-request"},
	{"signed Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length: +1\r\n\r\n", 400,
	 "bad-request"},
	{"overflowing Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST
	 "Content-Length: 9999999999999999999999\r\n\r\n",
	 400, "bad-request"},
	{"empty Content-Length",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n", 400,
	 "bad-request"},
	{"Transfer-Encoding chunked",
	 "POST /x HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n", 400,
	 "bad-request"},
	{"Content-Length and Transfer-Encoding",
	 "POST /x HTTP/1.1\r\n" HOST
	 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	 400, "bad-request"},
	{"space before the colon",
	 "POST /x HTTP/1.1\r\n" HOST "Content-Length : 5\r\n\r\n", 400,
	 "bad-request"},
	{"obs-fold", "GET /x HTTP/1.1\r\n" HOST "X-A: 1\r\n  2\r\n\r\n", 400,
	 "bad-request"},
	{"bare LF", "GET /x HTTP/1.1\n" HOST "\n", 400, "bad-request"},
	{"bare CR", "GET /x HTTP/1.1\r\nX-A: 1\r2\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"NUL in a header", "GET /x HTTP/1.1\r\n" HOST "X-A: a\0b\r\n\r\n", 400,
	 "bad-request"},
	{"control byte in a value",
	 "GET /x HTTP/1.1\r\n" HOST "X-A: a\x01\r\n\r\n", 400, "bad-request"},
	{"no Host", "GET /x HTTP/1.1\r\n\r\n", 400, "bad-request"},
	{"two Host", "GET /x HTTP/1.1\r\n" HOST HOST "\r\n", 400,
	 "bad-request"},
	{"two Authorization",
	 "GET /x HTTP/1.1\r\n" HOST
	 "Authorization: a\r\nAuthorization: b\r\n\r\n",
	 400, "bad-request"},
	{"two Idempotency-Key",
	 "POST /x HTTP/1.1\r\n" HOST
	 "Idempotency-Key: a\r\nIdempotency-Key: b\r\n\r\n",
	 400, "bad-request"},
	{"%00 in the path", "GET /a%00b HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"%0A in the path", "GET /a%0Ab HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"bad %-escape in the path", "GET /a%zz HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"%00 in the query", "GET /a?s=x%00y HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"bad %-escape in the query", "GET /a?s=%4 HTTP/1.1\r\n" HOST "\r\n",
	 400, "bad-request"},
	{"dot segment", "GET /api/../admin HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"encoded dot segment",
	 "GET /api/%2e%2e/admin HTTP/1.1\r\n" HOST "\r\n", 400, "bad-request"},
	{"absolute-form", "GET http://h/x HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"fragment in the target", "GET /x#y HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"two spaces", "GET  /x HTTP/1.1\r\n" HOST "\r\n", 400, "bad-request"},
	{"no version", "GET /x\r\n" HOST "\r\n", 400, "bad-request"},
	{"HTTP/2.0", "GET /x HTTP/2.0\r\n" HOST "\r\n", 505,
	 "http-version-not-supported"},
	{"CONNECT", "CONNECT h:443 HTTP/1.1\r\n" HOST "\r\n", 501,
	 "not-implemented"},
	{"TRACE", "TRACE /x HTTP/1.1\r\n" HOST "\r\n", 501, "not-implemented"},
	{"PROPFIND", "PROPFIND /x HTTP/1.1\r\n" HOST "\r\n", 501,
	 "not-implemented"},
	{"lower-case get", "get /x HTTP/1.1\r\n" HOST "\r\n", 501,
	 "not-implemented"},
	{"method with a slash", "G/T /x HTTP/1.1\r\n" HOST "\r\n", 400,
	 "bad-request"},
	{"Upgrade websocket",
	 "GET /agent/v1 HTTP/1.1\r\n" HOST
	 "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	 400, "upgrade-refused"},
	{"Upgrade h2c", "GET /x HTTP/1.1\r\n" HOST "Upgrade: h2c\r\n\r\n", 400,
	 "upgrade-refused"},
	{"Expect other", "POST /x HTTP/1.1\r\n" HOST "Expect: 200-ok\r\n\r\n",
	 417, "expectation-failed"},
};

static void
test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal_case *c = &refusals[i];
		/* sizeof-less: the heads with a NUL are measured by hand */
		size_t len = strlen(c->head);
		struct h1_request req;
		struct h1_error err;
		enum h1_result r;

		if (strcmp(c->what, "NUL in a header") == 0)
			len = sizeof("GET /x HTTP/1.1\r\n" HOST
				     "X-A: a\0b\r\n\r\n") -
			      1;
		r = h1_parse(c->head, len, &req, &err);
		if (r != H1_ERROR || err.status != c->status ||
		    strcmp(err.slug, c->slug) != 0)
			fail_msg("%s: got %d %d %s", c->what, r, err.status,
				 err.slug != NULL ? err.slug : "-");
		assert_true(err.detail[0] != '\0');
	}
}

static void
test_accepts_and_copies(void **state)
{
	static const char head[] =
		"\r\nPATCH /api/v1/devices/%41b?selector=site%3Db7&limit=2 "
		"HTTP/1.1\r\n"
		"host: localhost:8443\r\n"
		"AUTHORIZATION: Bearer fla_x\r\n"
		"Content-Type:application/merge-patch+json \r\n"
		"If-Match: \"7\"\r\n"
		"Idempotency-Key: k-1\r\n"
		"Expect: 100-continue\r\n"
		"X-Other: \x80\xff ok\r\n"
		"Content-Length: 12\r\n\r\n"
		"{\"labels\":{}}GET /next HTTP/1.1\r\n";
	struct h1_request req;
	struct h1_error err;

	(void)state;
	assert_int_equal(h1_parse(head, sizeof(head) - 1, &req, &err), H1_OK);
	assert_string_equal(req.method, "PATCH");
	assert_string_equal(req.path, "/api/v1/devices/Ab");
	assert_string_equal(req.query, "selector=site%3Db7&limit=2");
	assert_string_equal(req.authorization, "Bearer fla_x");
	assert_string_equal(req.content_type, "application/merge-patch+json");
	assert_string_equal(req.if_match, "\"7\"");
	assert_string_equal(req.idempotency_key, "k-1");
	assert_int_equal(req.content_length, 12);
	assert_true(req.expect_continue);
	assert_true(req.keep_alive);
	assert_false(req.http10);
	assert_memory_equal(head + req.head_len, "{\"labels\"", 9);
	h1_request_clear(&req);
}

static void
test_connection_and_versions(void **state)
{
	struct h1_request req;
	struct h1_error err;
	const char *h;

	(void)state;
	h = "GET / HTTP/1.1\r\n" HOST "Connection: keep-alive, close\r\n\r\n";
	assert_int_equal(h1_parse(h, strlen(h), &req, &err), H1_OK);
	assert_false(req.keep_alive);
	assert_string_equal(req.query, "");
	h1_request_clear(&req);
	h = "GET / HTTP/1.0\r\n\r\n"; /* 1.0 needs no Host, closes */
	assert_int_equal(h1_parse(h, strlen(h), &req, &err), H1_OK);
	assert_true(req.http10);
	assert_false(req.keep_alive);
	h1_request_clear(&req);
	h = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
	assert_int_equal(h1_parse(h, strlen(h), &req, &err), H1_OK);
	assert_true(req.keep_alive);
	h1_request_clear(&req);
}

/* Every prefix of a good head is incomplete; the whole is accepted. */
static void
test_pieces(void **state)
{
	static const char head[] = "POST /enroll/v1 HTTP/1.1\r\n" HOST
				   "Content-Length: 2\r\n\r\n{}";
	struct h1_request req;
	struct h1_error err;
	size_t whole = sizeof(head) - 1 - 2;

	(void)state;
	for (size_t n = 0; n < whole; n++)
		assert_int_equal(h1_parse(head, n, &req, &err), H1_INCOMPLETE);
	assert_int_equal(h1_parse(head, whole, &req, &err), H1_OK);
	assert_int_equal(req.head_len, whole);
	h1_request_clear(&req);
}

static char *
repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *b = malloc(p + n + s + 1);

	assert_non_null(b);
	memcpy(b, prefix, p);
	memset(b + p, c, n);
	memcpy(b + p + n, suffix, s + 1);
	return b;
}

static void
expect_refused(const char *head, size_t len, int status, const char *slug)
{
	struct h1_request req;
	struct h1_error err;

	assert_int_equal(h1_parse(head, len, &req, &err), H1_ERROR);
	assert_int_equal(err.status, status);
	assert_string_equal(err.slug, slug);
}

/* Over a limit: refused with the right status, never cut. */
static void
test_limits(void **state)
{
	struct h1_request req;
	struct h1_error err;
	char *h;

	(void)state;
	/* A 4096-byte selector, every byte percent-encoded: accepted whole. */
	h = repeat("GET /api/v1/devices?selector=", 'x', 3 * 4096,
		   " HTTP/1.1\r\n" HOST "\r\n");
	for (size_t i = 0; i < 4096; i++)
		memcpy(h + 29 + 3 * i, "%61", 3);
	assert_int_equal(h1_parse(h, strlen(h), &req, &err), H1_OK);
	assert_int_equal(strlen(req.query), 9 + 3 * 4096);
	h1_request_clear(&req);
	free(h);
	/* A target over H1_TARGET_MAX: 414, also before the head is whole. */
	h = repeat("GET /", 'a', H1_TARGET_MAX, " HTTP/1.1\r\n" HOST "\r\n");
	expect_refused(h, strlen(h), 414, "uri-too-long");
	expect_refused(h, H1_TARGET_MAX + 100, 414, "uri-too-long");
	free(h);
	h = repeat("GET /", 'a', H1_PATH_MAX, " HTTP/1.1\r\n" HOST "\r\n");
	expect_refused(h, strlen(h), 414, "uri-too-long");
	free(h);
	/* Header fields over their limits: 431. */
	h = repeat("GET / HTTP/1.1\r\n" HOST "If-Match: ", 'e', H1_IF_MATCH_MAX,
		   "\r\n\r\n");
	expect_refused(h, strlen(h), 431, "header-too-large");
	free(h);
	h = repeat("GET / HTTP/1.1\r\n" HOST "Idempotency-Key: ", 'k',
		   H1_IDEMPOTENCY_KEY_MAX, "\r\n\r\n");
	expect_refused(h, strlen(h), 431, "header-too-large");
	free(h);
	h = repeat("GET / HTTP/1.1\r\n" HOST "Authorization: Bearer ", 't',
		   H1_AUTHORIZATION_MAX, "\r\n\r\n");
	expect_refused(h, strlen(h), 431, "header-too-large");
	free(h);
	h = repeat("GET / HTTP/1.1\r\n" HOST "X-Big: ", 'b', H1_FIELD_LINE_MAX,
		   "\r\n\r\n");
	expect_refused(h, strlen(h), 431, "header-too-large");
	free(h);
	/* A head that never ends: decided at H1_HEAD_MAX. */
	h = repeat("GET / HTTP/1.1\r\n" HOST, 'h', H1_HEAD_MAX, "");
	for (size_t i = 40; i + 10 < H1_HEAD_MAX; i += 10)
		memcpy(h + i, "X-A: 12\r\n", 9);
	expect_refused(h, H1_HEAD_MAX, 431, "header-too-large");
	free(h);
	/* Too many parameters. */
	{
		char q[1024];
		size_t o = 0;

		o += (size_t)snprintf(q, sizeof(q), "GET /?");
		for (int i = 0; i <= H1_QUERY_PARAMS_MAX; i++)
			o += (size_t)snprintf(q + o, sizeof(q) - o, "%sp=%d",
					      i > 0 ? "&" : "", i);
		snprintf(q + o, sizeof(q) - o, " HTTP/1.1\r\n" HOST "\r\n");
		expect_refused(q, strlen(q), 400, "bad-request");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_accepts_and_copies),
		cmocka_unit_test(test_connection_and_versions),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
