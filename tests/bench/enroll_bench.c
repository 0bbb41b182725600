// SPDX-License-Identifier: Apache-2.0
/*
 * enroll_bench: device enrollments per second against a running fleetd,
 * each over a NEW TLS connection (connect, full handshake verifying the
 * server against the CA bundle, POST /enroll/v1 with a pre-generated P-256
 * CSR, read the whole answer, close), from N client threads. It is what a
 * factory line of devices does to the api listener. A benchmark: it prints
 * figures (rate, latency percentiles, failures by status) and asserts
 * nothing; it exits non-zero only when it cannot run or nothing succeeded.
 *
 * Usage: enroll_bench --url https://HOST:PORT --ca FILE --token fle_...
 *                     [--threads N] [--seconds S] [--warmup S]
 * The token needs as many uses as the run will enroll.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_SAMPLES 1000000
#define RESP_MAX (64 * 1024)

struct bench {
	const char *host;
	const char *port;
	const char *token;
	SSL_CTX *ctx;
	struct addrinfo *addr;
	double warmup_end; /* monotonic seconds */
	double end;
	atomic_long ok, fail_connect, fail_tls, fail_io;
	atomic_long by_status[600];
	pthread_mutex_t lock; /* samples */
	double *samples;
	size_t nsamples;
};

struct client {
	struct bench *b;
	char *request; /* the full HTTP request, with this thread's CSR */
	size_t request_len;
};

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
ssl_die(const char *what)
{
	fprintf(stderr, "enroll_bench: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A fresh P-256 key and a CSR for it, as PEM (caller frees). */
static char *
make_csr_pem(int n)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char cn[64], *pem = NULL, *data = NULL;
	long len;

	if (key == NULL || req == NULL || bio == NULL)
		ssl_die("cannot make a key");
	snprintf(cn, sizeof(cn), "bench-%d", n);
	name = X509_REQ_get_subject_name(req);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509_REQ(bio, req) != 1)
		ssl_die("cannot make a CSR");
	len = BIO_get_mem_data(bio, &data);
	pem = malloc((size_t)len + 1);
	if (pem == NULL)
		ssl_die("out of memory");
	memcpy(pem, data, (size_t)len);
	pem[len] = '\0';
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return pem;
}

/* The enrollment request; PEM newlines become JSON "\n" escapes. */
static void
make_request(struct client *c, int n)
{
	char *csr = make_csr_pem(n);
	size_t cap = strlen(csr) * 2 + strlen(c->b->token) + 1024;
	char *body = malloc(cap), *req = malloc(cap + 512);
	size_t bl = 0;
	int hl;

	if (body == NULL || req == NULL)
		ssl_die("out of memory");
	bl += (size_t)snprintf(body + bl, cap - bl,
			       "{\"token\":\"%s\",\"model\":\"bench\","
			       "\"csr\":\"",
			       c->b->token);
	for (const char *p = csr; *p != '\0'; p++) {
		if (*p == '\n') {
			body[bl++] = '\\';
			body[bl++] = 'n';
		} else {
			body[bl++] = *p;
		}
	}
	bl += (size_t)snprintf(body + bl, cap - bl, "\"}");
	hl = snprintf(req, cap + 512,
		      "POST /enroll/v1 HTTP/1.1\r\n"
		      "Host: %s:%s\r\n"
		      "Content-Type: application/json\r\n"
		      "Content-Length: %zu\r\n"
		      "Connection: close\r\n\r\n",
		      c->b->host, c->b->port, bl);
	memcpy(req + hl, body, bl);
	c->request = req;
	c->request_len = (size_t)hl + bl;
	free(body);
	free(csr);
}

/* One enrollment on a new connection; the HTTP status or -1..-3. */
static int
enroll_once(struct client *c, char *resp)
{
	struct bench *b = c->b;
	SSL *ssl = NULL;
	int fd, status = -1, n;
	size_t got = 0;

	fd = socket(b->addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, b->addr->ai_addr, b->addr->ai_addrlen) != 0)
		goto out; /* -1: connect */
	status = -2;
	ssl = SSL_new(b->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(ssl, b->host) != 1 ||
	    SSL_set1_host(ssl, b->host) != 1 || SSL_connect(ssl) != 1)
		goto out; /* -2: TLS (handshake or verification) */
	status = -3;
	if (SSL_write(ssl, c->request, (int)c->request_len) !=
	    (int)c->request_len)
		goto out;
	/* Connection: close: the answer ends when the server closes. */
	while (got < RESP_MAX - 1) {
		n = SSL_read(ssl, resp + got, (int)(RESP_MAX - 1 - got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	if (got > 12 && strncmp(resp, "HTTP/1.1 ", 9) == 0)
		status = (int)strtol(resp + 9, NULL, 10);
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	return status;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct bench *b = c->b;
	char *resp = malloc(RESP_MAX);
	double *mine = malloc(sizeof(double) * 100000);
	size_t nmine = 0;

	if (resp == NULL || mine == NULL)
		ssl_die("out of memory");
	for (;;) {
		double t0 = now_sec(), t1;
		int st = enroll_once(c, resp);

		t1 = now_sec();
		if (t0 >= b->end)
			break;
		if (t0 < b->warmup_end)
			continue;
		if (st == 201) {
			atomic_fetch_add(&b->ok, 1);
			if (nmine < 100000)
				mine[nmine++] = t1 - t0;
		} else if (st == -1) {
			atomic_fetch_add(&b->fail_connect, 1);
		} else if (st == -2) {
			atomic_fetch_add(&b->fail_tls, 1);
		} else if (st < 100 || st >= 600) {
			atomic_fetch_add(&b->fail_io, 1);
		} else {
			atomic_fetch_add(&b->by_status[st], 1);
			if (st == 401 && atomic_load(&b->ok) == 0 &&
			    atomic_load(&b->by_status[401]) == 1)
				fprintf(stderr, "enroll_bench: 401: %s\n",
					strstr(resp, "\r\n\r\n") != NULL
						? strstr(resp, "\r\n\r\n") + 4
						: resp);
		}
	}
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < nmine && b->nsamples < MAX_SAMPLES; i++)
		b->samples[b->nsamples++] = mine[i];
	pthread_mutex_unlock(&b->lock);
	free(mine);
	free(resp);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(const double *s, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1));
	return s[i] * 1000.0;
}

/* "https://host:port[/...]" -> host, port (static buffers). */
static int
parse_url(const char *url, char *host, size_t hl, char *port, size_t pl)
{
	const char *p, *colon, *slash;

	if (strncmp(url, "https://", 8) != 0)
		return -1;
	p = url + 8;
	slash = strchr(p, '/');
	colon = strrchr(p, ':');
	if (colon == NULL || (slash != NULL && colon > slash))
		return -1;
	snprintf(host, hl, "%.*s", (int)(colon - p), p);
	snprintf(port, pl, "%.*s",
		 (int)(slash != NULL ? slash - colon - 1
				     : (long)strlen(colon + 1)),
		 colon + 1);
	return host[0] != '\0' && port[0] != '\0' ? 0 : -1;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: enroll_bench --url https://HOST:PORT --ca FILE "
		"--token TOKEN [--threads N] [--seconds S] [--warmup S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct bench b;
	static struct client clients[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	const char *url = NULL, *ca = NULL;
	char host[256], port[16];
	long threads = 8;
	double seconds = 10, warmup = 1, t0, measured;
	struct addrinfo hints;
	long failures = 0;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(argv[i], "--url") == 0)
			url = v;
		else if (strcmp(argv[i], "--ca") == 0)
			ca = v;
		else if (strcmp(argv[i], "--token") == 0)
			b.token = v;
		else if (strcmp(argv[i], "--threads") == 0)
			threads = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(v, NULL);
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = strtod(v, NULL);
		else
			usage();
		i++;
	}
	if (url == NULL || ca == NULL || b.token == NULL || threads < 1 ||
	    threads > MAX_THREADS || seconds <= 0 || warmup < 0 ||
	    parse_url(url, host, sizeof(host), port, sizeof(port)) != 0)
		usage();
	b.host = host;
	b.port = port;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &b.addr) != 0) {
		fprintf(stderr, "enroll_bench: cannot resolve %s\n", host);
		return 1;
	}
	b.ctx = SSL_CTX_new(TLS_client_method());
	if (b.ctx == NULL ||
	    SSL_CTX_set_min_proto_version(b.ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(b.ctx, ca, NULL) != 1)
		ssl_die("cannot set up TLS (CA file?)");
	SSL_CTX_set_verify(b.ctx, SSL_VERIFY_PEER, NULL);
	/* Every connection does a full handshake, like a new device. */
	SSL_CTX_set_session_cache_mode(b.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(b.ctx, SSL_OP_NO_TICKET);
	b.samples = malloc(sizeof(double) * MAX_SAMPLES);
	if (b.samples == NULL)
		ssl_die("out of memory");
	pthread_mutex_init(&b.lock, NULL);

	for (long i = 0; i < threads; i++) {
		clients[i].b = &b;
		make_request(&clients[i], (int)i);
	}
	t0 = now_sec();
	b.warmup_end = t0 + warmup;
	b.end = b.warmup_end + seconds;
	for (long i = 0; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, client_main, &clients[i]) !=
		    0) {
			fprintf(stderr, "enroll_bench: cannot start threads\n");
			return 1;
		}
	}
	for (long i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	measured = seconds;

	qsort(b.samples, b.nsamples, sizeof(double), cmp_double);
	failures = atomic_load(&b.fail_connect) + atomic_load(&b.fail_tls) +
		   atomic_load(&b.fail_io);
	printf("enroll_bench: %s, %ld client threads, %.1f s measured "
	       "(after %.1f s warm-up), a new TLS connection per enrollment\n",
	       url, threads, measured, warmup);
	printf("enrollments:        %ld ok\n", atomic_load(&b.ok));
	printf("rate:               %.1f enrollments/s\n",
	       (double)atomic_load(&b.ok) / measured);
	printf("latency ms:         p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
	       pct(b.samples, b.nsamples, 0.50),
	       pct(b.samples, b.nsamples, 0.90),
	       pct(b.samples, b.nsamples, 0.99),
	       pct(b.samples, b.nsamples, 1.0));
	for (int st = 100; st < 600; st++) {
		long n = atomic_load(&b.by_status[st]);

		if (n > 0)
			printf("failed with HTTP %d: %ld\n", st, n);
		failures += n;
	}
	printf("failed: %ld (connect %ld, TLS %ld, I/O %ld)\n", failures,
	       atomic_load(&b.fail_connect), atomic_load(&b.fail_tls),
	       atomic_load(&b.fail_io));
	for (long i = 0; i < threads; i++)
		free(clients[i].request);
	free(b.samples);
	SSL_CTX_free(b.ctx);
	freeaddrinfo(b.addr);
	return atomic_load(&b.ok) > 0 ? 0 : 1;
}
