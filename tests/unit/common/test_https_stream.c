/* SPDX-License-Identifier: Apache-2.0 */
/*
 * https_stream (common/https.c) against a real TLS server on loopback: a
 * thread with its own self-signed certificate (SAN IP 127.0.0.1) that
 * plays one scripted server per test. Covers a streamed upload with
 * progress, a download handed to a sink with the headers seen first,
 * chunked bodies, the byte limit (Content-Length and past it), a body cut
 * short, the idle and total deadlines, an early answer to an upload, and
 * https_url_split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "https.h"
#include "tls_cert_fixture.h"

struct server;
typedef void (*scenario_fn)(struct server *sv, SSL *ssl);

struct server {
	SSL_CTX *ctx;
	int lfd;
	int port;
	pthread_t thread;
	scenario_fn scenario;
	/* what the scenario saw */
	unsigned long long body_seen;
	char head[4096];
};

static char cert_path[] = "/tmp/test_https_stream_XXXXXX";
static char dir_made[sizeof(cert_path) + 32];

/* ---- the server ------------------------------------------------------ */

static char g_cert[512], g_key[512];

static void *
server_main(void *arg)
{
	struct server *sv = arg;
	int fd = accept(sv->lfd, NULL, NULL);
	SSL *ssl;

	if (fd < 0)
		return NULL;
	ssl = SSL_new(sv->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1)
		sv->scenario(sv, ssl);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void
server_start(struct server *sv, scenario_fn fn)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	memset(sv, 0, sizeof(*sv));
	sv->scenario = fn;
	sv->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(sv->ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(sv->ctx, g_cert),
			 1);
	assert_int_equal(
		SSL_CTX_use_PrivateKey_file(sv->ctx, g_key, SSL_FILETYPE_PEM),
		1);
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->lfd, 4), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &al), 0);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->thread, NULL, server_main, sv), 0);
}

static void
server_stop(struct server *sv)
{
	pthread_join(sv->thread, NULL);
	close(sv->lfd);
	SSL_CTX_free(sv->ctx);
}

/* Reads the request head into sv->head; returns its Content-Length. */
static unsigned long long
read_head(struct server *sv, SSL *ssl)
{
	size_t n = 0;
	char *cl;

	while (n + 1 < sizeof(sv->head)) {
		if (SSL_read(ssl, sv->head + n, 1) != 1)
			break;
		n++;
		if (n >= 4 && memcmp(sv->head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	sv->head[n] = '\0';
	cl = strstr(sv->head, "Content-Length: ");
	return cl != NULL ? strtoull(cl + 16, NULL, 10) : 0;
}

static void
write_all(SSL *ssl, const void *p, size_t n)
{
	while (n > 0) {
		int w = SSL_write(ssl, p, (int)n);

		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void
write_str(SSL *ssl, const char *s)
{
	write_all(ssl, s, strlen(s));
}

/* Reads and counts the request body (the byte pattern i % 251 checked). */
static void
read_body(struct server *sv, SSL *ssl, unsigned long long len)
{
	char buf[16384];

	while (sv->body_seen < len) {
		int n = SSL_read(ssl, buf, sizeof(buf));

		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			if ((unsigned char)buf[i] !=
			    (unsigned char)((sv->body_seen + (unsigned)i) %
					    251))
				return;
		}
		sv->body_seen += (unsigned)n;
	}
}

/* ---- the client side ------------------------------------------------- */

struct sink {
	unsigned long long got;
	unsigned long long pattern_errors;
	int head_status;
	char content_range[64];
	unsigned long long progress_last;
	unsigned progress_calls;
	unsigned long long src_pos; /* the upload source */
	unsigned long long src_len;
};

static long
src_read(void *arg, void *buf, size_t cap)
{
	struct sink *k = arg;
	unsigned char *p = buf;
	size_t n = 0;

	while (n < cap && k->src_pos < k->src_len)
		p[n++] = (unsigned char)(k->src_pos++ % 251);
	return (long)n;
}

static void
on_progress(void *arg, unsigned long long sent, unsigned long long total)
{
	struct sink *k = arg;

	assert_true(sent >= k->progress_last);
	assert_int_equal(total, k->src_len);
	k->progress_last = sent;
	k->progress_calls++;
}

static int
on_head(void *arg, const struct https_response *h)
{
	struct sink *k = arg;
	const char *cr = https_response_header(h, "Content-Range");

	k->head_status = h->status;
	assert_null(h->body);
	if (cr != NULL)
		snprintf(k->content_range, sizeof(k->content_range), "%s", cr);
	return 0;
}

static int
on_body(void *arg, const void *data, size_t len)
{
	struct sink *k = arg;
	const unsigned char *p = data;

	assert_true(k->head_status != 0); /* headers came first */
	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)((k->got + i) % 251))
			k->pattern_errors++;
	}
	k->got += len;
	return 0;
}

static struct https_client *
client(void)
{
	struct https_options o = {.ca_file = g_cert, .timeout_ms = 5000};
	char err[HTTPS_ERR_MAX];
	struct https_client *c = https_client_new(&o, err, sizeof(err));

	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

static void
url_of(const struct server *sv, struct https_url *u)
{
	char s[64], err[HTTPS_ERR_MAX];

	snprintf(s, sizeof(s), "https://127.0.0.1:%d", sv->port);
	assert_int_equal(https_url_parse(s, u, err, sizeof(err)), 0);
}

/* Sends n bytes of the pattern, starting at offset off. */
static void
send_pattern(SSL *ssl, unsigned long long off, unsigned long long n)
{
	char buf[16384];

	while (n > 0) {
		size_t k = n > sizeof(buf) ? sizeof(buf) : (size_t)n;

		for (size_t i = 0; i < k; i++)
			buf[i] = (char)((off + i) % 251);
		write_all(ssl, buf, k);
		off += k;
		n -= k;
	}
}

/* ---- scenarios --------------------------------------------------------- */

static void
sc_upload(struct server *sv, SSL *ssl)
{
	unsigned long long len = read_head(sv, ssl);
	char answer[256];
	char body[64];

	read_body(sv, ssl, len);
	snprintf(body, sizeof(body), "{\"received\": %llu}", sv->body_seen);
	snprintf(answer, sizeof(answer),
		 "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen(body), body);
	write_str(ssl, answer);
}

static void
test_upload(void **state)
{
	struct server sv;
	struct https_client *c = client();
	struct https_url u;
	struct sink k = {.src_len = 5u * 1024 * 1024 + 17};
	struct https_header h = {"Content-Type", "application/octet-stream"};
	struct https_request req = {.method = "PUT",
				    .path = "/file",
				    .headers = &h,
				    .n_headers = 1};
	struct https_stream s = {.read = src_read,
				 .body_len = k.src_len,
				 .progress = on_progress,
				 .arg = &k};
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "", want[64];
	unsigned long long got = 0;
	enum https_stream_result rc;

	(void)state;
	server_start(&sv, sc_upload);
	url_of(&sv, &u);
	rc = https_stream(c, &u, &req, &s, &r, &got, err, sizeof(err));
	server_stop(&sv);
	if (rc != HTTPS_STREAM_OK)
		fail_msg("%s: %s", https_stream_result_name(rc), err);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(sv.head, "PUT /file HTTP/1.1\r\n"));
	assert_non_null(strstr(sv.head, "Content-Length: 5242897\r\n"));
	assert_int_equal(sv.body_seen, k.src_len);
	snprintf(want, sizeof(want), "{\"received\": %llu}", k.src_len);
	assert_string_equal(r.body, want);
	assert_int_equal(r.body_len, strlen(want));
	assert_int_equal(got, strlen(want));
	assert_int_equal(k.progress_last, k.src_len);
	assert_true(k.progress_calls > 10);
	https_response_free(&r);
	https_client_free(c);
}

#define DL_SIZE (3u * 1024u * 1024u + 5u)

static void
sc_download(struct server *sv, SSL *ssl)
{
	char h[256];

	(void)read_head(sv, ssl);
	snprintf(h, sizeof(h),
		 "HTTP/1.1 206 Partial Content\r\n"
		 "Content-Range: bytes 0-%u/%u\r\nContent-Length: %u\r\n\r\n",
		 DL_SIZE - 1, DL_SIZE, DL_SIZE);
	write_str(ssl, h);
	send_pattern(ssl, 0, DL_SIZE);
}

static void
test_download_sink(void **state)
{
	struct server sv;
	struct https_client *c = client();
	struct https_url u;
	struct sink k = {0};
	struct https_header h = {"Range", "bytes=0-"};
	struct https_request req = {
		.method = "GET", .path = "/a", .headers = &h, .n_headers = 1};
	struct https_stream s = {.on_head = on_head,
				 .on_body = on_body,
				 .arg = &k,
				 .max_body = DL_SIZE,
				 .total_ms = 20000,
				 .idle_ms = 5000};
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "";
	unsigned long long got = 0;
	enum https_stream_result rc;

	(void)state;
	server_start(&sv, sc_download);
	url_of(&sv, &u);
	rc = https_stream(c, &u, &req, &s, &r, &got, err, sizeof(err));
	server_stop(&sv);
	if (rc != HTTPS_STREAM_OK)
		fail_msg("%s: %s", https_stream_result_name(rc), err);
	assert_non_null(strstr(sv.head, "Range: bytes=0-\r\n"));
	assert_null(strstr(sv.head, "Content-Length"));
	assert_int_equal(r.status, 206);
	assert_int_equal(k.head_status, 206);
	assert_string_equal(k.content_range, "bytes 0-3145732/3145733");
	assert_string_equal(https_response_header(&r, "Content-Range"),
			    "bytes 0-3145732/3145733");
	assert_null(r.body); /* handed to the sink, not kept */
	assert_int_equal(k.got, DL_SIZE);
	assert_int_equal(got, DL_SIZE);
	assert_int_equal(k.pattern_errors, 0);
	https_response_free(&r);
	https_client_free(c);
}

static void
sc_chunked(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 100 Continue\r\n\r\n"
		       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	/* Chunks of 1, 7000 and 70000 bytes, with an extension, split over
	 * TLS records at awkward places. */
	write_str(ssl, "1;x=y\r\n");
	send_pattern(ssl, 0, 1);
	write_str(ssl, "\r\n1b58\r");
	write_str(ssl, "\n");
	send_pattern(ssl, 1, 7000);
	write_str(ssl, "\r\n11170\r\n");
	send_pattern(ssl, 7001, 70000);
	write_str(ssl, "\r\n0\r\nX-Trailer: 1\r\n\r\n");
}

static void
test_chunked(void **state)
{
	struct server sv;
	struct https_client *c = client();
	struct https_url u;
	struct sink k = {0};
	struct https_request req = {.method = "GET", .path = "/c"};
	struct https_stream s = {
		.on_head = on_head, .on_body = on_body, .arg = &k};
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "";
	enum https_stream_result rc;

	(void)state;
	server_start(&sv, sc_chunked);
	url_of(&sv, &u);
	rc = https_stream(c, &u, &req, &s, &r, NULL, err, sizeof(err));
	server_stop(&sv);
	if (rc != HTTPS_STREAM_OK)
		fail_msg("%s: %s", https_stream_result_name(rc), err);
	assert_int_equal(r.status, 200);
	assert_int_equal(k.got, 77001);
	assert_int_equal(k.pattern_errors, 0);
	https_response_free(&r);
	https_client_free(c);
}

/* ---- limits, truncation, deadlines ---------------------------------- */

static void
sc_length_over(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	send_pattern(ssl, 0, 1000);
}

static void
sc_close_over(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	send_pattern(ssl, 0, 1000);
}

static void
sc_chunked_over(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "3e8\r\n");
	send_pattern(ssl, 0, 1000);
	write_str(ssl, "\r\n0\r\n\r\n");
}

static void
sc_truncated(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	send_pattern(ssl, 0, 400);
}

static void
sc_stall(struct server *sv, SSL *ssl)
{
	char b;

	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	send_pattern(ssl, 0, 10);
	/* Hold the connection until the client gives up. */
	(void)SSL_read(ssl, &b, 1);
}

static void
sc_drip(struct server *sv, SSL *ssl)
{
	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	/* A byte every 50 ms: never idle, never done; stops when the client
	 * has gone (the write fails). */
	for (unsigned i = 0; i < 100; i++) {
		char b = (char)(i % 251);

		if (SSL_write(ssl, &b, 1) != 1)
			break;
		clock_sleep_ms(50);
	}
}

struct limit_case {
	const char *what;
	scenario_fn fn;
	unsigned long long max_body;
	int total_ms, idle_ms;
	enum https_stream_result want;
	unsigned long long want_bytes;
	const char *err_part;
};

static void
test_limits(void **state)
{
	static const struct limit_case cases[] = {
		{"Content-Length over the limit", sc_length_over, 500, 0, 0,
		 HTTPS_STREAM_TOO_LARGE, 0, "limit of 500"},
		{"close-delimited past the limit", sc_close_over, 500, 0, 0,
		 HTTPS_STREAM_TOO_LARGE, 500, "limit of 500"},
		{"chunked past the limit", sc_chunked_over, 500, 0, 0,
		 HTTPS_STREAM_TOO_LARGE, 500, "limit of 500"},
		{"exactly the limit", sc_length_over, 1000, 0, 0,
		 HTTPS_STREAM_OK, 1000, NULL},
		{"cut short", sc_truncated, 0, 0, 0, HTTPS_STREAM_TRUNCATED,
		 400, "after 400 body bytes"},
		{"stalled", sc_stall, 0, 0, 300, HTTPS_STREAM_IDLE, 10,
		 "nothing received"},
		{"slow drip", sc_drip, 0, 400, 1000, HTTPS_STREAM_TIMEOUT, 0,
		 "deadline of 400 ms"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct limit_case *tc = &cases[i];
		struct server sv;
		struct https_client *c = client();
		struct https_url u;
		struct sink k = {0};
		struct https_request req = {.method = "GET", .path = "/x"};
		struct https_stream s = {.on_head = on_head,
					 .on_body = on_body,
					 .arg = &k,
					 .max_body = tc->max_body,
					 .total_ms = tc->total_ms,
					 .idle_ms = tc->idle_ms};
		struct https_response r;
		char err[HTTPS_ERR_MAX] = "";
		unsigned long long got = 99;
		uint64_t t0 = clock_mono_ms();
		enum https_stream_result rc;

		server_start(&sv, tc->fn);
		url_of(&sv, &u);
		rc = https_stream(c, &u, &req, &s, &r, &got, err, sizeof(err));
		https_client_free(c); /* closes nothing the server waits on */
		server_stop(&sv);
		if (rc != tc->want)
			fail_msg("%s: %s (%s), want %s", tc->what,
				 https_stream_result_name(rc), err,
				 https_stream_result_name(tc->want));
		if (tc->err_part != NULL && strstr(err, tc->err_part) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", tc->what, err,
				 tc->err_part);
		if (tc->want != HTTPS_STREAM_TIMEOUT && got != tc->want_bytes)
			fail_msg("%s: %llu bytes delivered, want %llu",
				 tc->what, got, tc->want_bytes);
		assert_int_equal(got, k.got);
		assert_int_equal(k.pattern_errors, 0);
		assert_int_equal(r.status, 200); /* the head is kept */
		/* The deadlines end the call close to their time. */
		assert_true(clock_mono_ms() - t0 < 3000);
		https_response_free(&r);
	}
}

/* The server refuses an upload after its head and stops reading; the
 * client sees the answer instead of blocking on a full socket. */
static void
sc_early(struct server *sv, SSL *ssl)
{
	char buf[16384];

	(void)read_head(sv, ssl);
	write_str(ssl, "HTTP/1.1 413 Payload Too Large\r\n"
		       "Content-Type: application/problem+json\r\n"
		       "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
	/* Drain politely until the client closes, so no RST eats the
	 * answer. */
	for (;;) {
		if (SSL_read(ssl, buf, sizeof(buf)) <= 0)
			break;
	}
}

static void
test_early_answer(void **state)
{
	struct server sv;
	struct https_client *c = client();
	struct https_url u;
	struct sink k = {.src_len = 256ull * 1024 * 1024};
	struct https_request req = {.method = "PUT", .path = "/big"};
	struct https_stream s = {.read = src_read,
				 .body_len = k.src_len,
				 .progress = on_progress,
				 .arg = &k};
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "";
	enum https_stream_result rc;

	(void)state;
	server_start(&sv, sc_early);
	url_of(&sv, &u);
	rc = https_stream(c, &u, &req, &s, &r, NULL, err, sizeof(err));
	https_client_free(c);
	server_stop(&sv);
	if (rc != HTTPS_STREAM_OK)
		fail_msg("%s: %s", https_stream_result_name(rc), err);
	assert_int_equal(r.status, 413);
	assert_string_equal(r.body, "{}");
	assert_true(k.src_pos < k.src_len); /* stopped early */
	https_response_free(&r);
}

static void
test_connect_refused(void **state)
{
	struct server sv;
	struct https_client *c = client();
	struct https_url u;
	struct https_request req = {.method = "GET", .path = "/"};
	struct https_stream s = {0};
	struct https_response r;
	char err[HTTPS_ERR_MAX] = "";
	int port;

	(void)state;
	/* A port that was just free. */
	server_start(&sv, NULL);
	port = sv.port;
	shutdown(sv.lfd, SHUT_RDWR);
	server_stop(&sv);
	sv.port = port;
	url_of(&sv, &u);
	assert_int_equal(
		https_stream(c, &u, &req, &s, &r, NULL, err, sizeof(err)),
		HTTPS_STREAM_ERROR);
	assert_non_null(strstr(err, "connect 127.0.0.1"));
	assert_int_equal(r.status, 0);
	https_response_free(&r);
	https_client_free(c);
}

/* The decoder against https_response_parse (the whole-response parser):
 * for each response, cut into pieces of every size from 1 to 7 bytes, the
 * same status and body. */
static void
test_decode_matches_parser(void **state)
{
	static const char *const cases[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
		"Content-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n"
		"Trailer: x\r\n\r\n",
		"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
		"HTTP/1.0 200 OK\r\n\r\nall of it until the close",
		"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes "
		"*/10\r\nContent-Length: 0\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *text = cases[i];
		size_t len = strlen(text);
		struct https_response want;
		char err[HTTPS_ERR_MAX];

		assert_int_equal(https_response_parse(text, len, true, false,
						      1024, &want, err,
						      sizeof(err)),
				 1);
		for (size_t cut = 1; cut <= 7; cut++) {
			const char *pieces[512];
			size_t lens[512], n = 0;
			struct https_stream s = {.max_body = 1024};
			struct https_response got;
			enum https_stream_result rc;

			for (size_t off = 0; off < len; off += cut) {
				pieces[n] = text + off;
				lens[n++] = len - off < cut ? len - off : cut;
			}
			rc = https_stream_decode(&s, pieces, lens, n, false,
						 &got, NULL, err, sizeof(err));
			if (rc != HTTPS_STREAM_OK)
				fail_msg("case %zu cut %zu: %s", i, cut, err);
			assert_int_equal(got.status, want.status);
			assert_int_equal(got.body_len, want.body_len);
			assert_memory_equal(got.body, want.body, want.body_len);
			https_response_free(&got);
		}
		https_response_free(&want);
	}
}

static void
test_url_split(void **state)
{
	struct https_url u;
	char path[256], err[HTTPS_ERR_MAX];

	(void)state;
	assert_int_equal(https_url_split("https://mirror.example:8443/a/b/"
					 "ab12?sig=x",
					 &u, path, sizeof(path), err,
					 sizeof(err)),
			 0);
	assert_string_equal(u.host, "mirror.example");
	assert_string_equal(u.port, "8443");
	assert_string_equal(u.prefix, "");
	assert_string_equal(path, "/a/b/ab12?sig=x");
	assert_int_equal(https_url_split("https://[::1]", &u, path,
					 sizeof(path), err, sizeof(err)),
			 0);
	assert_string_equal(path, "/");
	assert_int_equal(https_url_split("http://x/a", &u, path, sizeof(path),
					 err, sizeof(err)),
			 -1);
	assert_int_equal(https_url_split("https://x/a b", &u, path,
					 sizeof(path), err, sizeof(err)),
			 -1);
	assert_int_equal(https_url_split("https://x/a#f", &u, path,
					 sizeof(path), err, sizeof(err)),
			 -1);
	assert_int_equal(https_url_split("https://x/abcdef", &u, path, 4, err,
					 sizeof(err)),
			 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_download_sink),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_early_answer),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_decode_matches_parser),
		cmocka_unit_test(test_url_split),
	};
	char *dir;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	dir = mkdtemp(cert_path);
	assert_non_null(dir);
	snprintf(dir_made, sizeof(dir_made), "%s", dir);
	test_self_signed_cert(dir, g_cert, g_key, sizeof(g_cert));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(g_cert);
	unlink(g_key);
	rmdir(dir_made);
	return rc;
}
