/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqtt_idle: opens N mutually authenticated TLS connections to an MQTT
 * broker, sends an MQTT 3.1.1 CONNECT on each (client id "idle-<n>",
 * keep-alive 0: never pinged), waits for every CONNACK, prints
 * "mqtt_idle: N connected in S s" and then holds the connections idle
 * until SIGTERM or SIGINT. conn_bench.sh uses it to measure Mosquitto's
 * memory per idle mTLS client the way it measures fleetd's: RSS growth
 * over the count (issue 15, "Side by side").
 *
 *   mqtt_idle --port P --count N --ca FILE --cert FILE --key FILE
 *             [--host 127.0.0.1] [--sources 127.0.0.1,127.0.0.2,...]
 *             [--inflight 256]
 *
 * Loopback only: --host and --sources must be in 127.0.0.0/8.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_SOURCES 16
#define MAX_COUNT 200000

enum conn_state { C_FREE, C_CONNECTING, C_HANDSHAKE, C_CONNACK, C_IDLE };

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state state;
	unsigned char ack[4];
	size_t nack;
	size_t index;
};

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
loopback(const char *addr, struct in_addr *out)
{
	if (inet_pton(AF_INET, addr, out) != 1)
		return -1;
	return (ntohl(out->s_addr) >> 24) == 127 ? 0 : -1;
}

/* The MQTT 3.1.1 CONNECT of client "idle-<n>": clean session, keep-alive
 * 0, no will, no credentials. */
static size_t
connect_packet(size_t n, unsigned char *p, size_t cap)
{
	char id[32];
	int idlen = snprintf(id, sizeof(id), "idle-%zu", n);
	size_t rem = 10 + 2 + (size_t)idlen, len = 0;

	if (idlen < 0 || rem > 127 || rem + 2 > cap)
		return 0;
	p[len++] = 0x10;
	p[len++] = (unsigned char)rem;
	memcpy(p + len, "\x00\x04MQTT\x04\x02\x00\x00", 10);
	len += 10;
	p[len++] = 0;
	p[len++] = (unsigned char)idlen;
	memcpy(p + len, id, (size_t)idlen);
	return len + (size_t)idlen;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL && c->state == C_IDLE)
		SSL_shutdown(c->ssl); /* a close_notify, not a bare EOF */
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->state = C_FREE;
}

static int
conn_open(struct conn *c, SSL_CTX *ctx, int ep, const struct in_addr *src,
	  const struct sockaddr_in *dst)
{
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = *src};
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The port is chosen by connect(), per destination: a bind() that
	 * chose it would reserve it, and one source address would then hold
	 * at most the ephemeral range (28,232 ports) of connections. */
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		   sizeof(one));
	if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
	    (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0 &&
	     errno != EINPROGRESS)) {
		conn_close(c);
		return -1;
	}
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_close(c);
		return -1;
	}
	SSL_set_connect_state(c->ssl);
	c->state = C_HANDSHAKE;
	c->nack = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* Moves c on; 1 when it became idle, -1 when it failed, 0 otherwise. */
static int
conn_step(struct conn *c, int ep)
{
	unsigned char pkt[64];
	size_t len;
	int rc, err;

	if (c->state == C_HANDSHAKE) {
		rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			err = SSL_get_error(c->ssl, rc);
			return err == SSL_ERROR_WANT_READ ||
					       err == SSL_ERROR_WANT_WRITE
				       ? 0
				       : -1;
		}
		len = connect_packet(c->index, pkt, sizeof(pkt));
		if (len == 0 || SSL_write(c->ssl, pkt, (int)len) != (int)len)
			return -1;
		c->state = C_CONNACK;
		{
			struct epoll_event ev = {.events = EPOLLIN,
						 .data.ptr = c};

			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	if (c->state == C_CONNACK) {
		rc = SSL_read(c->ssl, c->ack + c->nack,
			      (int)(sizeof(c->ack) - c->nack));
		if (rc <= 0) {
			err = SSL_get_error(c->ssl, rc);
			return err == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->nack += (size_t)rc;
		if (c->nack < sizeof(c->ack))
			return 0;
		if (c->ack[0] != 0x20 || c->ack[1] != 0x02 || c->ack[3] != 0)
			return -1;
		c->state = C_IDLE;
		return 1;
	}
	if (c->state == C_IDLE) {
		/* an idle connection that becomes readable was closed */
		rc = SSL_read(c->ssl, pkt, sizeof(pkt));
		if (rc <= 0) {
			err = SSL_get_error(c->ssl, rc);
			return err == SSL_ERROR_WANT_READ ? 0 : -1;
		}
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mqtt_idle --port P --count N --ca FILE "
			"--cert FILE --key FILE\n"
			"                 [--host 127.0.0.1] [--sources "
			"A,B,...] [--inflight N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"count", required_argument, NULL, 'n'},
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"sources", required_argument, NULL, 's'},
		{"inflight", required_argument, NULL, 'i'},
		{NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1", *ca = NULL, *cert = NULL, *key = NULL;
	char sources_buf[512] = "127.0.0.1", *tok, *save;
	struct in_addr src[MAX_SOURCES];
	struct sockaddr_in dst = {.sin_family = AF_INET};
	struct epoll_event evs[256];
	struct conn *conns;
	size_t count = 0, nsrc = 0, inflight_max = 256, opened = 0, idle = 0,
	       inflight = 0, failed = 0, i;
	long port = 0;
	double t0;
	SSL_CTX *ctx;
	int ep, o, n;
	struct rlimit rl;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = strtol(optarg, NULL, 10);
			break;
		case 'n':
			count = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'a':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 's':
			snprintf(sources_buf, sizeof(sources_buf), "%s",
				 optarg);
			break;
		case 'i':
			inflight_max = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 || count == 0 || count > MAX_COUNT ||
	    ca == NULL || cert == NULL || key == NULL || inflight_max == 0)
		usage();
	dst.sin_port = htons((uint16_t)port);
	if (loopback(host, &dst.sin_addr) != 0) {
		fprintf(stderr, "mqtt_idle: --host must be in 127.0.0.0/8\n");
		return 2;
	}
	for (tok = sources_buf; tok != NULL; tok = save) {
		save = strchr(tok, ',');
		if (save != NULL)
			*save++ = '\0';
		if (nsrc == MAX_SOURCES || loopback(tok, &src[nsrc]) != 0) {
			fprintf(stderr,
				"mqtt_idle: --sources: up to %d "
				"addresses in 127.0.0.0/8\n",
				MAX_SOURCES);
			return 2;
		}
		nsrc++;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < count + 16) {
			fprintf(stderr,
				"mqtt_idle: %zu connections need %zu "
				"descriptors; the limit is %llu\n",
				count, count + 16,
				(unsigned long long)rl.rlim_cur);
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "mqtt_idle: TLS set-up failed:\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	conns = calloc(count, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (conns == NULL || ep < 0) {
		perror("mqtt_idle");
		return 1;
	}
	for (i = 0; i < count; i++) {
		conns[i].fd = -1;
		conns[i].index = i;
	}

	t0 = now_s();
	while (!stopping && idle + failed < count) {
		while (opened < count && inflight < inflight_max) {
			struct conn *c = &conns[opened];

			if (conn_open(c, ctx, ep, &src[opened % nsrc], &dst) !=
			    0)
				failed++;
			else
				inflight++;
			opened++;
		}
		n = epoll_wait(ep, evs, 256, 1000);
		for (o = 0; o < n; o++) {
			struct conn *c = evs[o].data.ptr;
			int r = conn_step(c, ep);

			if (r == 1) {
				idle++;
				inflight--;
			} else if (r < 0) {
				conn_close(c);
				failed++;
				inflight--;
			}
		}
	}
	printf("mqtt_idle: %zu connected in %.2f s (%zu failed)\n", idle,
	       now_s() - t0, failed);
	fflush(stdout);
	/* Hold them; report connections the broker closes. */
	while (!stopping) {
		n = epoll_wait(ep, evs, 256, 1000);
		for (o = 0; o < n; o++) {
			struct conn *c = evs[o].data.ptr;

			if (conn_step(c, ep) < 0) {
				conn_close(c);
				idle--;
				fprintf(stderr,
					"mqtt_idle: the broker closed a "
					"connection (%zu left)\n",
					idle);
			}
		}
	}
	for (i = 0; i < count; i++)
		if (conns[i].state != C_FREE)
			conn_close(&conns[i]);
	free(conns);
	close(ep);
	SSL_CTX_free(ctx);
	return failed > 0 ? 1 : 0;
}
