// SPDX-License-Identifier: Apache-2.0
/*
 * enroll_bench: device enrollments per second against a running fleetd,
 * POST /enroll/v1 with a pre-generated P-256 CSR per client, in up to
 * three phases run one after the other:
 *
 *   new        a NEW TCP and TLS connection per enrollment (full handshake
 *              verifying the server against the CA bundle, the request,
 *              the whole answer, close), from N client threads: a line of
 *              devices enrolling themselves;
 *   keepalive  N parallel keep-alive connections, each sending
 *              enrollments in a row: a factory station enrolling the
 *              devices it programs;
 *   resumed    like new, but each client resumes its previous TLS session
 *              (a ticket): what a device that talked to the api listener
 *              before (e.g. fetched ca.pem) would do. Not run by default.
 *
 * For each phase it prints the rate, latency percentiles, failures by
 * status, and (with --fleetd-pid / --postgres-pid) the CPU that fleetd's
 * processes (by name: fleetd-ca, fleetd-net1..), PostgreSQL and the bench
 * itself used, as a share of one core and per enrollment, with the
 * machine's load. A benchmark: it asserts nothing; it exits non-zero only
 * when it cannot run or a phase had no success.
 *
 * Usage: enroll_bench --url https://HOST:PORT --ca FILE --token fle_...
 *                     [--threads N] [--connections N] [--seconds S]
 *                     [--warmup S] [--modes new,keepalive,resumed]
 *                     [--fleetd-pid PID] [--postgres-pid PID]
 *                     [--idempotency 0|1]
 * With --idempotency 1 every request carries a new Idempotency-Key, as
 * fleet-agent's enrollments do (one more lookup and one more row each).
 * The token needs as many uses as the run will enroll.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
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
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_SAMPLES 1000000
#define RESP_MAX (64 * 1024)
#define MAX_PROCS 64

enum mode { MODE_NEW, MODE_KEEPALIVE, MODE_RESUMED };
static const char *const mode_name[] = {"new", "keepalive", "resumed"};

struct bench {
	const char *host;
	const char *port;
	const char *token;
	SSL_CTX *ctx;
	struct addrinfo *addr;
	enum mode mode;
	bool idempotency; /* an Idempotency-Key on every request */
	double warmup_end; /* monotonic seconds */
	double end;
	atomic_long ok, fail_connect, fail_tls, fail_io, resumed;
	atomic_long by_status[600];
	pthread_mutex_t lock; /* samples */
	double *samples;
	size_t nsamples;
};

struct client {
	struct bench *b;
	char *body; /* the JSON body, with this client's CSR */
	size_t body_len;
	char *out; /* the request being sent: head and body */
	unsigned long seq; /* requests sent, for Idempotency-Keys */
	int n;
	SSL_SESSION *session; /* resumed mode: the last one */
	SSL *ssl; /* keep-alive mode: the open connection */
	int fd;
};

/* CPU used by one process (or a group: every child of postgres). */
struct proc_cpu {
	char name[32];
	long ticks;
};

struct cpu_snap {
	struct proc_cpu p[MAX_PROCS];
	size_t n;
	double self_s; /* this process, user + system */
	long long busy, total; /* /proc/stat, all cores */
	double at;
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

/* The enrollment body; PEM newlines become JSON "\n" escapes. */
static void
make_request(struct client *c, int n)
{
	char *csr = make_csr_pem(n);
	size_t cap = strlen(csr) * 2 + strlen(c->b->token) + 1024;
	char *body = malloc(cap);
	size_t bl = 0;

	if (body == NULL)
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
	c->body = body;
	c->body_len = bl;
	c->out = malloc(bl + 1024);
	if (c->out == NULL)
		ssl_die("out of memory");
	c->n = n;
	free(csr);
}

/* The next request into c->out; its length. With --idempotency each
 * request carries a new Idempotency-Key, as fleet-agent's do. */
static size_t
next_request(struct client *c, bool keepalive)
{
	char key[96] = "";
	int hl;

	if (c->b->idempotency)
		snprintf(key, sizeof(key),
			 "Idempotency-Key: bench-%ld-%s-%d-%lu\r\n",
			 (long)getpid(), mode_name[c->b->mode], c->n, c->seq);
	c->seq++;
	hl = snprintf(c->out, 1024,
		      "POST /enroll/v1 HTTP/1.1\r\n"
		      "Host: %s:%s\r\n"
		      "Content-Type: application/json\r\n"
		      "Content-Length: %zu\r\n"
		      "%s"
		      "Connection: %s\r\n\r\n",
		      c->b->host, c->b->port, c->body_len, key,
		      keepalive ? "keep-alive" : "close");
	memcpy(c->out + hl, c->body, c->body_len);
	return (size_t)hl + c->body_len;
}

static void
client_close(struct client *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Connects c (TCP and TLS); 0, -1 (connect) or -2 (TLS). */
static int
client_connect(struct client *c)
{
	struct bench *b = c->b;

	c->fd = socket(b->addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    connect(c->fd, b->addr->ai_addr, b->addr->ai_addrlen) != 0)
		return -1;
	c->ssl = SSL_new(b->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, b->host) != 1 ||
	    SSL_set1_host(c->ssl, b->host) != 1)
		return -2;
	if (b->mode == MODE_RESUMED && c->session != NULL)
		SSL_set_session(c->ssl, c->session);
	if (SSL_connect(c->ssl) != 1)
		return -2;
	return 0;
}

/* Reads one HTTP answer (head and Content-Length body, or until close);
 * its status, or -3. *closing: the server will close the connection. */
static int
read_answer(struct client *c, char *resp, bool *closing)
{
	size_t got = 0, head = 0, want = 0;
	bool have_len = false;
	int n;

	*closing = true;
	for (;;) {
		if (head == 0) {
			char *e;

			resp[got] = '\0';
			e = strstr(resp, "\r\n\r\n");
			if (e != NULL) {
				const char *cl;

				head = (size_t)(e - resp) + 4;
				for (char *p = resp; p < e; p++)
					*p = (char)tolower((unsigned char)*p);
				cl = strstr(resp, "\r\ncontent-length:");
				if (cl != NULL) {
					want = (size_t)strtoul(cl + 17, NULL,
							       10);
					have_len = true;
				}
				*closing = strstr(resp, "\r\nconnection: "
							"close") != NULL ||
					   !have_len;
			}
		}
		if (head != 0 && have_len && got >= head + want)
			break;
		if (got >= RESP_MAX - 1)
			break;
		n = SSL_read(c->ssl, resp + got, (int)(RESP_MAX - 1 - got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	if (head == 0 || (have_len && got < head + want) || got < 12 ||
	    strncmp(resp, "http/1.1 ", 9) != 0)
		return -3;
	return (int)strtol(resp + 9, NULL, 10);
}

/* One enrollment; the HTTP status or -1 (connect), -2 (TLS), -3 (I/O). */
static int
enroll_once(struct client *c, char *resp)
{
	struct bench *b = c->b;
	bool keepalive = b->mode == MODE_KEEPALIVE, closing;
	size_t len;
	int status;

	if (c->ssl == NULL) {
		status = client_connect(c);
		if (status != 0) {
			client_close(c);
			return status;
		}
		if (b->mode == MODE_RESUMED) {
			if (SSL_session_reused(c->ssl))
				atomic_fetch_add(&b->resumed, 1);
			SSL_SESSION_free(c->session);
			c->session = SSL_get1_session(c->ssl);
		}
	}
	len = next_request(c, keepalive);
	if (SSL_write(c->ssl, c->out, (int)len) != (int)len) {
		client_close(c);
		return -3;
	}
	status = read_answer(c, resp, &closing);
	if (b->mode == MODE_RESUMED && c->session != NULL) {
		/* TLS 1.3 tickets arrive after the handshake. */
		SSL_SESSION_free(c->session);
		c->session = SSL_get1_session(c->ssl);
	}
	if (!keepalive || closing || status < 0)
		client_close(c);
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
			if (atomic_load(&b->by_status[st]) == 1)
				fprintf(stderr, "enroll_bench: HTTP %d: %s\n",
					st,
					strstr(resp, "\r\n\r\n") != NULL
						? strstr(resp, "\r\n\r\n") + 4
						: resp);
		}
	}
	client_close(c);
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

/* pid's name, parent and CPU ticks (user + system) from /proc. */
static int
proc_stat(long pid, char *name, size_t nl, long *ppid, long *ticks)
{
	char path[64], buf[1024], *rp;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	char *lp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	lp = strchr(buf, '(');
	rp = strrchr(buf, ')');
	if (lp == NULL || rp == NULL || rp < lp)
		return -1;
	snprintf(name, nl, "%.*s", (int)(rp - lp - 1), lp + 1);
	/* After ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime. */
	if (sscanf(rp + 2,
		   "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", ppid,
		   &ut, &st) != 3)
		return -1;
	*ticks = (long)(ut + st);
	return 0;
}

static void
snap_add(struct cpu_snap *s, const char *name, long ticks)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->p[i].name, name) == 0) {
			s->p[i].ticks += ticks;
			return;
		}
	}
	if (s->n < MAX_PROCS) {
		snprintf(s->p[s->n].name, sizeof(s->p[s->n].name), "%s", name);
		s->p[s->n++].ticks = ticks;
	}
}

/* fleetd's children by name, the supervisor, every process of postgres
 * (the postmaster and its children) as one, ourselves, the machine. */
static void
cpu_snapshot(long fleetd_pid, long pg_pid, struct cpu_snap *s)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	struct rusage ru;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->at = now_sec();
	while (d != NULL && (de = readdir(d)) != NULL) {
		char name[32];
		long pid, ppid, ticks;
		char *end;

		pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 ||
		    proc_stat(pid, name, sizeof(name), &ppid, &ticks) != 0)
			continue;
		if (fleetd_pid > 0 && ppid == fleetd_pid)
			snap_add(s, name, ticks);
		else if (fleetd_pid > 0 && pid == fleetd_pid)
			snap_add(s, "fleetd (supervisor)", ticks);
		else if (pg_pid > 0 && (ppid == pg_pid || pid == pg_pid))
			snap_add(s, "postgres (all)", ticks);
	}
	if (d != NULL)
		closedir(d);
	getrusage(RUSAGE_SELF, &ru);
	s->self_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	f = fopen("/proc/stat", "r");
	if (f != NULL) {
		long long v[8] = {0};

		if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7]) == 8) {
			s->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] +
				   v[6] + v[7];
			s->busy = s->total - v[3] - v[4];
		}
		fclose(f);
	}
}

static void
cpu_report(const struct cpu_snap *a, const struct cpu_snap *z, long ok)
{
	double hz = (double)sysconf(_SC_CLK_TCK), dt = z->at - a->at;
	double loadavg[3] = {0, 0, 0};

	if (dt <= 0)
		return;
	for (size_t i = 0; i < z->n; i++) {
		long before = 0;
		double s;

		for (size_t j = 0; j < a->n; j++)
			if (strcmp(a->p[j].name, z->p[i].name) == 0)
				before = a->p[j].ticks;
		s = (double)(z->p[i].ticks - before) / hz;
		printf("cpu %-22s %5.1f %% of a core, %.3f ms/enrollment\n",
		       z->p[i].name, 100.0 * s / dt,
		       ok > 0 ? 1000.0 * s / (double)ok : 0.0);
	}
	printf("cpu %-22s %5.1f %% of a core, %.3f ms/enrollment\n",
	       "enroll_bench (client)", 100.0 * (z->self_s - a->self_s) / dt,
	       ok > 0 ? 1000.0 * (z->self_s - a->self_s) / (double)ok : 0.0);
	getloadavg(loadavg, 3);
	printf("machine: %.0f %% busy (all %ld cores), load average %.2f "
	       "%.2f %.2f\n",
	       z->total > a->total ? 100.0 * (double)(z->busy - a->busy) /
					     (double)(z->total - a->total)
				   : 0.0,
	       sysconf(_SC_NPROCESSORS_ONLN), loadavg[0], loadavg[1],
	       loadavg[2]);
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
		"--token TOKEN [--threads N] [--connections N] [--seconds S] "
		"[--warmup S] [--modes new,keepalive,resumed] "
		"[--fleetd-pid PID] [--postgres-pid PID] "
		"[--idempotency 0|1]\n");
	exit(2);
}

/* Runs one phase; 0 when something succeeded. */
static int
run_phase(struct bench *b, enum mode mode, long threads, double warmup,
	  double seconds, long fleetd_pid, long pg_pid, const char *url)
{
	static struct client clients[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	struct cpu_snap before, after;
	long failures, ok;
	double t0;

	b->mode = mode;
	atomic_store(&b->ok, 0);
	atomic_store(&b->fail_connect, 0);
	atomic_store(&b->fail_tls, 0);
	atomic_store(&b->fail_io, 0);
	atomic_store(&b->resumed, 0);
	for (int st = 0; st < 600; st++)
		atomic_store(&b->by_status[st], 0);
	b->nsamples = 0;
	for (long i = 0; i < threads; i++) {
		memset(&clients[i], 0, sizeof(clients[i]));
		clients[i].b = b;
		clients[i].fd = -1;
		make_request(&clients[i], (int)i);
	}
	t0 = now_sec();
	b->warmup_end = t0 + warmup;
	b->end = b->warmup_end + seconds;
	for (long i = 0; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, client_main, &clients[i]) !=
		    0) {
			fprintf(stderr, "enroll_bench: cannot start threads\n");
			exit(1);
		}
	}
	/* The CPU is counted over the measured seconds only. */
	while (now_sec() < b->warmup_end)
		usleep(10000);
	cpu_snapshot(fleetd_pid, pg_pid, &before);
	while (now_sec() < b->end)
		usleep(10000);
	cpu_snapshot(fleetd_pid, pg_pid, &after);
	for (long i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);

	qsort(b->samples, b->nsamples, sizeof(double), cmp_double);
	ok = atomic_load(&b->ok);
	failures = atomic_load(&b->fail_connect) + atomic_load(&b->fail_tls) +
		   atomic_load(&b->fail_io);
	printf("\n== %s: %s, %ld %s, %.1f s measured (after %.1f s "
	       "warm-up)%s\n",
	       mode_name[mode], url, threads,
	       mode == MODE_KEEPALIVE ? "keep-alive connections"
				      : "client threads",
	       seconds, warmup,
	       mode == MODE_NEW	      ? ", a new TLS connection (full "
					"handshake) per enrollment"
	       : mode == MODE_RESUMED ? ", a new TCP connection per "
					"enrollment resuming the client's "
					"last TLS session"
				      : ", enrollments in a row on each");
	printf("enrollments:        %ld ok%s\n", ok,
	       b->idempotency ? " (each with an Idempotency-Key)" : "");
	printf("rate:               %.1f enrollments/s\n",
	       (double)ok / seconds);
	printf("latency ms:         p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
	       pct(b->samples, b->nsamples, 0.50),
	       pct(b->samples, b->nsamples, 0.90),
	       pct(b->samples, b->nsamples, 0.99),
	       pct(b->samples, b->nsamples, 1.0));
	if (mode == MODE_RESUMED)
		printf("TLS sessions resumed: %ld\n", atomic_load(&b->resumed));
	for (int st = 100; st < 600; st++) {
		long n = atomic_load(&b->by_status[st]);

		if (n > 0)
			printf("failed with HTTP %d: %ld\n", st, n);
		failures += n;
	}
	printf("failed: %ld (connect %ld, TLS %ld, I/O %ld)\n", failures,
	       atomic_load(&b->fail_connect), atomic_load(&b->fail_tls),
	       atomic_load(&b->fail_io));
	cpu_report(&before, &after, ok);
	fflush(stdout);
	for (long i = 0; i < threads; i++) {
		free(clients[i].body);
		free(clients[i].out);
		SSL_SESSION_free(clients[i].session);
	}
	return ok > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static struct bench b;
	const char *url = NULL, *ca = NULL, *modes = "new,keepalive";
	char host[256], port[16];
	long threads = 8, connections = 0, fleetd_pid = 0, pg_pid = 0;
	double seconds = 10, warmup = 1;
	struct addrinfo hints;
	int rc = 0;

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
		else if (strcmp(argv[i], "--connections") == 0)
			connections = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(v, NULL);
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = strtod(v, NULL);
		else if (strcmp(argv[i], "--modes") == 0)
			modes = v;
		else if (strcmp(argv[i], "--idempotency") == 0)
			b.idempotency = strcmp(v, "1") == 0;
		else if (strcmp(argv[i], "--fleetd-pid") == 0)
			fleetd_pid = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--postgres-pid") == 0)
			pg_pid = strtol(v, NULL, 10);
		else
			usage();
		i++;
	}
	if (connections == 0)
		connections = threads;
	if (url == NULL || ca == NULL || b.token == NULL || threads < 1 ||
	    threads > MAX_THREADS || connections < 1 ||
	    connections > MAX_THREADS || seconds <= 0 || warmup < 0 ||
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
	/* Sessions are kept by the clients themselves (resumed mode). */
	SSL_CTX_set_session_cache_mode(b.ctx, SSL_SESS_CACHE_OFF);
	b.samples = malloc(sizeof(double) * MAX_SAMPLES);
	if (b.samples == NULL)
		ssl_die("out of memory");
	pthread_mutex_init(&b.lock, NULL);

	for (int m = MODE_NEW; m <= MODE_RESUMED; m++) {
		const char *p = strstr(modes, mode_name[m]);
		size_t l = strlen(mode_name[m]);

		if (p == NULL || (p[l] != '\0' && p[l] != ','))
			continue;
		if (run_phase(&b, (enum mode)m,
			      m == MODE_KEEPALIVE ? connections : threads,
			      warmup, seconds, fleetd_pid, pg_pid, url) != 0)
			rc = 1;
	}
	free(b.samples);
	SSL_CTX_free(b.ctx);
	freeaddrinfo(b.addr);
	return rc;
}
