/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/download.c against a real TLS server on loopback (a thread with
 * its own self-signed certificate, one scripted answer per connection):
 * a whole download, a resume with Range from the partial file, a dropped
 * connection resumed by the retry, a server that ignores Range, the byte
 * limit (a Content-Length past the size, endless close-delimited data),
 * a stalled server against the deadline, a file whose sha256 is not the
 * manifest's, a 404 that fails after the retries, a cancel, and a
 * file system without room (/proc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent_test_util.h"
#include "clock.h"
#include "download.h"
#include "tls_cert_fixture.h"

#define ART_SIZE 300000u
#define MAX_CONNS 8

struct server;
typedef void (*scenario_fn)(struct server *sv, SSL *ssl, int conn);

struct server {
	SSL_CTX *ctx;
	int lfd, port, nconns;
	pthread_t thread;
	scenario_fn scenario;
	char head[MAX_CONNS][2048];
	volatile int served;
	volatile bool quit;
};

static char g_cert[512], g_key[512], g_dir[64];
static char g_sha[65];

/* The artifact: byte i is i % 251. */
static void
pattern(char *buf, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)((off + i) % 251);
}

static void
art_sha(void)
{
	static char buf[ART_SIZE];
	unsigned char md[32];
	unsigned int mdlen = 0;

	pattern(buf, 0, ART_SIZE);
	EVP_Digest(buf, ART_SIZE, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(g_sha + 2 * i, 3, "%02x", md[i]);
}

static void *
server_main(void *arg)
{
	struct server *sv = arg;

	for (int c = 0; c < sv->nconns && !sv->quit; c++) {
		int fd = accept(sv->lfd, NULL, NULL);
		SSL *ssl;

		if (fd < 0)
			break;
		ssl = SSL_new(sv->ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			size_t n = 0;

			while (n + 1 < sizeof(sv->head[c]) &&
			       SSL_read(ssl, sv->head[c] + n, 1) == 1) {
				n++;
				if (n >= 4 && memcmp(sv->head[c] + n - 4,
						     "\r\n\r\n", 4) == 0)
					break;
			}
			sv->head[c][n] = '\0';
			sv->scenario(sv, ssl, c);
		}
		sv->served = c + 1;
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static void
server_start(struct server *sv, scenario_fn fn, int nconns)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	memset(sv, 0, sizeof(*sv));
	sv->scenario = fn;
	sv->nconns = nconns;
	sv->ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate_chain_file(sv->ctx, g_cert),
			 1);
	assert_int_equal(
		SSL_CTX_use_PrivateKey_file(sv->ctx, g_key, SSL_FILETYPE_PEM),
		1);
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
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
	sv->quit = true;
	shutdown(sv->lfd, SHUT_RDWR); /* wakes accept() */
	pthread_join(sv->thread, NULL);
	close(sv->lfd);
	SSL_CTX_free(sv->ctx);
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

static void
send_pattern(SSL *ssl, uint64_t off, uint64_t n)
{
	char buf[16384];

	while (n > 0) {
		size_t k = n > sizeof(buf) ? sizeof(buf) : (size_t)n;

		pattern(buf, off, k);
		write_all(ssl, buf, k);
		off += k;
		n -= k;
	}
}

/* The Range start the client asked for, or 0. */
static uint64_t
range_of(const char *head)
{
	const char *r = strstr(head, "Range: bytes=");

	return r != NULL ? strtoull(r + 13, NULL, 10) : 0;
}

/* A correct server: 200, or 206 from the requested offset. */
static void
serve_from(SSL *ssl, const char *head, uint64_t upto)
{
	uint64_t from = range_of(head);
	char h[256];

	if (from > 0)
		snprintf(h, sizeof(h),
			 "HTTP/1.1 206 Partial Content\r\nContent-Length: "
			 "%u\r\nContent-Range: bytes %u-%u/%u\r\n\r\n",
			 (unsigned)(ART_SIZE - from), (unsigned)from,
			 ART_SIZE - 1, ART_SIZE);
	else
		snprintf(h, sizeof(h),
			 "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
			 ART_SIZE);
	write_str(ssl, h);
	send_pattern(ssl, from, (upto < ART_SIZE ? upto : ART_SIZE) - from);
}

static void
sc_good(struct server *sv, SSL *ssl, int c)
{
	serve_from(ssl, sv->head[c], ART_SIZE);
}

/* The first connection drops after 100000 bytes; the next resumes. */
static void
sc_drop_then_good(struct server *sv, SSL *ssl, int c)
{
	serve_from(ssl, sv->head[c], c == 0 ? 100000u : ART_SIZE);
}

/* Range ignored: always the whole file with 200. */
static void
sc_ignore_range(struct server *sv, SSL *ssl, int c)
{
	char h[128];

	(void)sv;
	(void)c;
	snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 ART_SIZE);
	write_str(ssl, h);
	send_pattern(ssl, 0, ART_SIZE);
}

static void
sc_long_length(struct server *sv, SSL *ssl, int c)
{
	char h[128];

	(void)sv;
	(void)c;
	snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 ART_SIZE + 1);
	write_str(ssl, h);
	send_pattern(ssl, 0, ART_SIZE + 1);
}

/* No length, and more data than the manifest's size, until it closes. */
static void
sc_endless(struct server *sv, SSL *ssl, int c)
{
	(void)sv;
	(void)c;
	write_str(ssl, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	for (int i = 0; i < 40 && !sv->quit; i++) /* 40 x 16 KiB past */
		send_pattern(ssl, 0, ART_SIZE / 10);
}

/* Headers and a little, then nothing until the client gives up. */
static void
sc_stall(struct server *sv, SSL *ssl, int c)
{
	char h[128], b;

	(void)c;
	snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 ART_SIZE);
	write_str(ssl, h);
	send_pattern(ssl, 0, 1000);
	while (!sv->quit && SSL_read(ssl, &b, 1) > 0)
		;
}

/* The right size, other bytes. */
static void
sc_wrong_bytes(struct server *sv, SSL *ssl, int c)
{
	char h[128];

	(void)sv;
	(void)c;
	snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 ART_SIZE);
	write_str(ssl, h);
	send_pattern(ssl, 1, ART_SIZE);
}

static void
sc_404(struct server *sv, SSL *ssl, int c)
{
	(void)sv;
	(void)c;
	write_str(ssl, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

struct prog {
	unsigned calls;
	uint64_t last;
};

static void
on_progress(void *arg, uint64_t bytes)
{
	struct prog *p = arg;

	p->calls++;
	p->last = bytes;
}

static void
opts_for(struct dl_opts *o, const struct server *sv, char *base, size_t cap,
	 char *part, size_t partcap, struct prog *p)
{
	snprintf(base, cap, "https://127.0.0.1:%d", sv->port);
	snprintf(part, partcap, "%s/artifact.part", g_dir);
	memset(o, 0, sizeof(*o));
	o->url = "/artifacts/x";
	o->base_url = base;
	o->ca_file = g_cert;
	o->part_path = part;
	o->size = ART_SIZE;
	o->sha256 = g_sha;
	o->deadline_s = 20;
	o->stall_s = 5;
	o->retries = 2;
	o->backoff_base_ms = 10;
	o->progress = on_progress;
	o->arg = p;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The first n bytes of the artifact as a partial file. */
static void
write_part(const char *path, size_t n)
{
	static char buf[ART_SIZE];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	pattern(buf, 0, n);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void
test_whole(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_good, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OK);
	server_stop(&sv);
	assert_int_equal(file_size(part), ART_SIZE);
	assert_null(strstr(sv.head[0], "Range:"));
	assert_true(p.calls > 0);
	assert_true(p.last == ART_SIZE);
	unlink(part);
}

static void
test_resume_from_part(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_good, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	write_part(part, 123456);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OK);
	server_stop(&sv);
	assert_non_null(strstr(sv.head[0], "Range: bytes=123456-\r\n"));
	assert_int_equal(file_size(part), ART_SIZE);
	unlink(part);
}

static void
test_drop_resumes(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_drop_then_good, 2);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OK);
	server_stop(&sv);
	assert_int_equal(sv.served, 2);
	assert_non_null(strstr(sv.head[1], "Range: bytes=100000-\r\n"));
	unlink(part);
}

static void
test_range_ignored(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_ignore_range, 2);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	write_part(part, 5000);
	/* a 200 to a Range request: the part is dropped, started over */
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OK);
	server_stop(&sv);
	assert_int_equal(file_size(part), ART_SIZE);
	unlink(part);
}

static void
test_oversize(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_long_length, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OVERSIZE);
	server_stop(&sv);
	assert_string_equal(dl_result_reason(DL_OVERSIZE), "oversize");
	assert_int_equal(file_size(part), -1);

	server_start(&sv, sc_endless, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_OVERSIZE);
	server_stop(&sv);
	/* it stopped at the size: never more than size bytes written */
	assert_true(p.last <= ART_SIZE);
	assert_int_equal(file_size(part), -1);
}

static void
test_stall_deadline(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];
	uint64_t t0;

	(void)state;
	server_start(&sv, sc_stall, MAX_CONNS);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	o.deadline_s = 3;
	o.stall_s = 1;
	o.retries = 100;
	t0 = clock_mono_ms();
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_TIMEOUT);
	assert_true(clock_mono_ms() - t0 < 8000);
	server_stop(&sv);
	assert_string_equal(dl_result_reason(DL_TIMEOUT), "download-timeout");
	assert_non_null(strstr(err, "within 3 s"));
	/* what arrived is kept for a resume */
	assert_true(file_size(part) >= 1000);
	unlink(part);
}

static void
test_hash_mismatch(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_wrong_bytes, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_HASH_MISMATCH);
	server_stop(&sv);
	assert_int_equal(file_size(part), -1);
	assert_non_null(strstr(err, g_sha));
}

static void
test_not_found_fails(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_404, 3);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	unlink(part);
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_FAILED);
	server_stop(&sv);
	assert_int_equal(sv.served, 3); /* the first try and 2 retries */
	assert_non_null(strstr(err, "404"));
	assert_string_equal(dl_result_reason(DL_FAILED), "download-failed");
}

static void
test_cancel(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];
	volatile bool cancel = true;

	(void)state;
	server_start(&sv, sc_good, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	o.cancel = &cancel;
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_CANCELLED);
	server_stop(&sv);
}

/* /proc has no free blocks: refused before a byte is asked for. */
static void
test_no_space(void **state)
{
	struct server sv;
	struct dl_opts o;
	struct prog p = {0};
	char base[64], part[128], err[512];

	(void)state;
	server_start(&sv, sc_good, 1);
	opts_for(&o, &sv, base, sizeof(base), part, sizeof(part), &p);
	o.part_path = "/proc/artifact.part";
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_NO_SPACE);
	server_stop(&sv);
	assert_int_equal(sv.served, 0);
	assert_string_equal(dl_result_reason(DL_NO_SPACE), "no-space");
	assert_non_null(strstr(err, "free space"));
}

static void
test_bad_url(void **state)
{
	struct dl_opts o;
	char err[512];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.url = "ftp://example/x";
	o.part_path = "/nonexistent/x";
	o.size = 1;
	o.sha256 = g_sha;
	assert_int_equal(dl_fetch(&o, err, sizeof(err)), DL_FAILED);
	assert_non_null(strstr(err, "https://"));
}

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	atu_state_dir(g_dir, sizeof(g_dir));
	test_self_signed_cert(g_dir, g_cert, g_key, sizeof(g_cert));
	art_sha();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	atu_rmtree(g_dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_resume_from_part),
		cmocka_unit_test(test_drop_resumes),
		cmocka_unit_test(test_range_ignored),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_stall_deadline),
		cmocka_unit_test(test_hash_mismatch),
		cmocka_unit_test(test_not_found_fails),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_bad_url),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
