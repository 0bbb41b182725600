/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for common/https.c: the base URL parser and the response
 * parser (framing, truncation, limits). No network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "https.h"

/* ---- URLs ------------------------------------------------------------- */

struct url_case {
	const char *url;
	int ok;
	const char *host, *port, *prefix;
	bool is_ip, is_ipv6;
	const char *err_part; /* for failures: part of the message */
};

static const struct url_case url_cases[] = {
	{"https://127.0.0.1:8443", 1, "127.0.0.1", "8443", "", true, false,
	 NULL},
	{"https://127.0.0.1:8443/", 1, "127.0.0.1", "8443", "", true, false,
	 NULL},
	{"https://fleet.example.com", 1, "fleet.example.com", "443", "", false,
	 false, NULL},
	{"HTTPS://fleet.example.com/base/v//", 1, "fleet.example.com", "443",
	 "/base/v", false, false, NULL},
	{"https://[::1]:9000/x", 1, "::1", "9000", "/x", true, true, NULL},
	{"https://[fe80::1]", 1, "fe80::1", "443", "", true, true, NULL},
	{"https://localhost:1", 1, "localhost", "1", "", false, false, NULL},
	{"https://h:65535", 1, "h", "65535", "", false, false, NULL},
	{"http://127.0.0.1:8443", 0, NULL, NULL, NULL, false, false,
	 "https://"},
	{"127.0.0.1:8443", 0, NULL, NULL, NULL, false, false, "https://"},
	{"https://", 0, NULL, NULL, NULL, false, false, "host"},
	{"https://:8443", 0, NULL, NULL, NULL, false, false, "host"},
	{"https://h:0", 0, NULL, NULL, NULL, false, false, "port"},
	{"https://h:65536", 0, NULL, NULL, NULL, false, false, "port"},
	{"https://h:123456", 0, NULL, NULL, NULL, false, false, "port"},
	{"https://h:80a", 0, NULL, NULL, NULL, false, false, "port"},
	{"https://h:", 0, NULL, NULL, NULL, false, false, "port"},
	{"https://[::1", 0, NULL, NULL, NULL, false, false, "]"},
	{"https://[::1]x", 0, NULL, NULL, NULL, false, false, "after"},
	{"https://[nothex]:1", 0, NULL, NULL, NULL, false, false, "IPv6"},
	{"https://user@h", 0, NULL, NULL, NULL, false, false, "user"},
	{"https://h?x=1", 0, NULL, NULL, NULL, false, false, "query"},
	{"https://h/a#f", 0, NULL, NULL, NULL, false, false, "query"},
	{"https://bad host", 0, NULL, NULL, NULL, false, false, "host"},
	{"https://h/a b", 0, NULL, NULL, NULL, false, false, "path"},
};

static void
test_url_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *tc = &url_cases[i];
		struct https_url u;
		char err[HTTPS_ERR_MAX] = "";
		int rc = https_url_parse(tc->url, &u, err, sizeof(err));

		if (tc->ok) {
			if (rc != 0)
				fail_msg("%s: %s", tc->url, err);
			assert_string_equal(u.host, tc->host);
			assert_string_equal(u.port, tc->port);
			assert_string_equal(u.prefix, tc->prefix);
			assert_int_equal(u.host_is_ip, tc->is_ip);
			assert_int_equal(u.host_is_ipv6, tc->is_ipv6);
		} else {
			if (rc != -1)
				fail_msg("%s: accepted", tc->url);
			if (strstr(err, tc->err_part) == NULL)
				fail_msg("%s: message '%s' lacks '%s'", tc->url,
					 err, tc->err_part);
		}
	}
}

/* ---- responses -------------------------------------------------------- */

/* Parses the whole of text with eof; returns the parser's result. */
static int
parse_all(const char *text, size_t max, struct https_response *r, char *err)
{
	return https_response_parse(text, strlen(text), true, false, max, r,
				    err, HTTPS_ERR_MAX);
}

/* Every prefix short of the whole, without EOF, is "need more", never done. */
static void
assert_prefixes_need_more(const char *text, size_t max)
{
	size_t n = strlen(text);
	struct https_response r;
	char err[HTTPS_ERR_MAX];

	for (size_t i = 0; i < n; i++)
		assert_int_equal(https_response_parse(text, i, false, false,
						      max, &r, err,
						      sizeof(err)),
				 0);
}

static void
test_content_length(void **state)
{
	const char *text = "HTTP/1.1 201 Created\r\n"
			   "Content-Type: application/json\r\n"
			   "ETag:   \"7\"  \r\n"
			   "Location: /api/v1/tokens/1\r\n"
			   "X-Other: a: b\r\n"
			   "Content-Length: 11\r\n"
			   "\r\n"
			   "{\"id\": \"1\"}trailing garbage ignored";
	struct https_response r;
	char err[HTTPS_ERR_MAX];

	(void)state;
	assert_int_equal(parse_all(text, 1024, &r, err), 1);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.reason, "Created");
	assert_string_equal(r.content_type, "application/json");
	assert_string_equal(r.etag, "\"7\"");
	assert_string_equal(r.location, "/api/v1/tokens/1");
	assert_string_equal(https_response_header(&r, "x-other"), "a: b");
	assert_null(https_response_header(&r, "X-Missing"));
	assert_int_equal(r.body_len, 11);
	assert_string_equal(r.body, "{\"id\": \"1\"}");
	https_response_free(&r);
	https_response_free(NULL);
}

static void
test_incremental(void **state)
{
	const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	size_t n = strlen(text);
	struct https_response r;
	char err[HTTPS_ERR_MAX];

	(void)state;
	assert_prefixes_need_more(text, 100);
	assert_int_equal(https_response_parse(text, n, false, false, 100, &r,
					      err, sizeof(err)),
			 1);
	assert_string_equal(r.body, "hello");
	https_response_free(&r);
}

static void
test_chunked(void **state)
{
	const char *text = "HTTP/1.1 200 OK\r\n"
			   "Transfer-Encoding: chunked\r\n"
			   "\r\n"
			   "5\r\nhello\r\n"
			   "1;ext=1\r\n \r\n"
			   "A\r\n0123456789\r\n"
			   "0\r\n"
			   "Trailer: x\r\n"
			   "\r\n";
	struct https_response r;
	char err[HTTPS_ERR_MAX];

	(void)state;
	assert_prefixes_need_more(text, 100);
	assert_int_equal(parse_all(text, 100, &r, err), 1);
	assert_int_equal(r.body_len, 16);
	assert_string_equal(r.body, "hello 0123456789");
	https_response_free(&r);

	/* LF-only line ends are accepted too. */
	assert_int_equal(parse_all("HTTP/1.1 200 OK\nTransfer-Encoding: "
				   "chunked\n\n3\nabc\n0\n\n",
				   100, &r, err),
			 1);
	assert_string_equal(r.body, "abc");
	https_response_free(&r);
}

static void
test_until_close(void **state)
{
	const char *text = "HTTP/1.0 200 OK\r\n\r\nall of it";
	struct https_response r;
	char err[HTTPS_ERR_MAX];

	(void)state;
	assert_int_equal(https_response_parse(text, strlen(text), false, false,
					      100, &r, err, sizeof(err)),
			 0);
	assert_int_equal(parse_all(text, 100, &r, err), 1);
	assert_string_equal(r.body, "all of it");
	https_response_free(&r);
}

static void
test_no_body(void **state)
{
	struct https_response r;
	char err[HTTPS_ERR_MAX];
	const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";

	(void)state;
	assert_int_equal(
		parse_all("HTTP/1.1 204 No Content\r\n\r\n", 10, &r, err), 1);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	assert_string_equal(r.body, "");
	https_response_free(&r);
	/* HEAD: Content-Length describes the GET, no body follows. */
	assert_int_equal(https_response_parse(h, strlen(h), false, true, 10, &r,
					      err, sizeof(err)),
			 1);
	assert_int_equal(r.body_len, 0);
	https_response_free(&r);
	/* Interim responses are skipped. */
	assert_int_equal(parse_all("HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 413 Payload Too Large\r\n"
				   "Content-Length: 2\r\n\r\nno",
				   10, &r, err),
			 1);
	assert_int_equal(r.status, 413);
	assert_string_equal(r.body, "no");
	https_response_free(&r);
}

struct bad_case {
	const char *text;
	size_t max;
	const char *err_part;
};

static const struct bad_case bad_cases[] = {
	{"", 100, "without a response"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", 100, "inside the headers"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 100,
	 "got 5 of 10"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 100,
	 "chunked"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	 100, "chunked"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100,
	 "malformed chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
	 100, "CRLF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "ffffffffffffffffffff\r\n",
	 100, "too large"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
	 10, "too large"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890", 10,
	 "too large"},
	{"HTTP/1.1 200 OK\r\n\r\n01234567890", 10, "too large"},
	{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 10, "Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	 10, "Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	 10, "Content-Length"},
	{"HTTP/2 200 OK\r\n\r\n", 10, "status line"},
	{"HTTP/1.1 2x0 OK\r\n\r\n", 10, "status line"},
	{"HTTP/1.1 099 Low\r\n\r\n", 10, "status code"},
	{"SSH-2.0-OpenSSH\r\n\r\n", 10, "status line"},
	{"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", 10, "header"},
	{"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", 10, "folding"},
	{"HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n", 10, "header name"},
};

static void
test_bad_responses(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct https_response r;
		char err[HTTPS_ERR_MAX] = "";
		int rc =
			parse_all(bad_cases[i].text, bad_cases[i].max, &r, err);

		if (rc != -1)
			fail_msg("case %zu: rc %d", i, rc);
		if (strstr(err, bad_cases[i].err_part) == NULL)
			fail_msg("case %zu: message '%s' lacks '%s'", i, err,
				 bad_cases[i].err_part);
	}
}

/* Found by fuzz_http_response: a NUL inside the header block. */
static void
test_nul_in_headers(void **state)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
	struct https_response r = {0};
	char err[HTTPS_ERR_MAX] = "";

	(void)state;
	assert_int_equal(https_response_parse(text, sizeof(text) - 1, true,
					      false, 100, &r, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "NUL"));
	https_response_free(&r);
}

static void
test_header_limits(void **state)
{
	size_t big = HTTPS_MAX_HEADER_BYTES + 10;
	char *text = malloc(big + 1);
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "";
	size_t off;

	(void)state;
	assert_non_null(text);
	/* An endless header block is refused without waiting for more. */
	off = (size_t)snprintf(text, big + 1, "HTTP/1.1 200 OK\r\nX: ");
	memset(text + off, 'a', big - off);
	text[big] = '\0';
	assert_int_equal(https_response_parse(text, big, false, false, 10, &r,
					      err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "headers too large"));
	free(text);

	/* More than HTTPS_MAX_HEADERS headers. */
	text = malloc(8192);
	assert_non_null(text);
	off = (size_t)snprintf(text, 8192, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i <= HTTPS_MAX_HEADERS; i++)
		off += (size_t)snprintf(text + off, 8192 - off, "H%d: v\r\n",
					i);
	snprintf(text + off, 8192 - off, "\r\n");
	assert_int_equal(parse_all(text, 10, &r, err), -1);
	assert_non_null(strstr(err, "too many"));
	free(text);
}

/* A chunked body made of many one-byte chunks is decoded exactly. */
static void
test_many_chunks(void **state)
{
	struct https_response r;
	char err[HTTPS_ERR_MAX];
	char *text = malloc(64 * 1024);
	size_t off;

	(void)state;
	assert_non_null(text);
	off = (size_t)snprintf(text, 64 * 1024,
			       "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
			       "gzip, chunked\r\n\r\n");
	for (int i = 0; i < 1000; i++)
		off += (size_t)snprintf(text + off, 64 * 1024 - off,
					"1\r\n%c\r\n", 'a' + i % 26);
	snprintf(text + off, 64 * 1024 - off, "0\r\n\r\n");
	assert_int_equal(parse_all(text, 1000, &r, err), 1);
	assert_int_equal(r.body_len, 1000);
	assert_int_equal(r.body[0], 'a');
	assert_int_equal(r.body[999], 'a' + 999 % 26);
	https_response_free(&r);
	/* One byte over the limit. */
	assert_int_equal(parse_all(text, 999, &r, err), -1);
	free(text);
}

static void
test_client_errors(void **state)
{
	struct https_options o = {.ca_file = "/nonexistent/ca.pem"};
	char err[HTTPS_ERR_MAX] = "";

	(void)state;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	assert_non_null(strstr(err, "No such file"));
	o.ca_file = NULL;
	o.cert_file = "/x.pem";
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "both"));
	https_client_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_table),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_until_close),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_nul_in_headers),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_many_chunks),
		cmocka_unit_test(test_client_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
