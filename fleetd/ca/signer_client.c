/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker side of the CA signer protocol (see signer_proto.h). Runs on job
 * threads of a net worker. Requests are pipelined: every caller sends its
 * request at once (one SOCK_SEQPACKET record, never blocking) and waits for
 * the answer that repeats its id. No thread of our own reads the socket:
 * one of the waiting callers is the reader at a time; it receives the
 * answers, hands each to the caller whose id it carries and, once its own
 * has come, passes the reading on to another waiter. So N job threads keep
 * N requests in the ca's queue instead of one, and a caller waits for the
 * ca's work on its request, not for the round trips of the requests ahead.
 * Answers come from our own ca process, but are still size- and
 * shape-checked before use; an answer nobody waits for (a caller that
 * timed out, a worker that died before us) is dropped.
 */
#include "ca/signer_client.h"
#include "core/metrics.h"

#include "ca/signer_fd.h"
#include "ca/signer_proto.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIGNER_TIMEOUT_MS 5000
/* A CRL of 100,000+ entries takes the ca seconds to sign (more under a
 * sanitizer or a loaded host); an issue request stays short. */
#define SIGNER_CRL_TIMEOUT_MS 60000
/* A readiness probe says "not ready" soon rather than late. */
#define SIGNER_PING_TIMEOUT_MS 1000
/* The reader polls in slices so that signer_client_set_fd never waits
 * long for it. */
#define SIGNER_POLL_SLICE_MS 200

enum signer_wait_state {
	WAIT_PENDING,
	WAIT_ANSWERED, /* reply (and fd) set */
	WAIT_MALFORMED, /* an answer with our id that is not a JSON object */
	WAIT_CLOSED, /* the ca closed the channel */
};

/* A caller waiting for its answer; lives on the caller's stack. */
struct signer_wait {
	uint64_t id;
	uint32_t type; /* the request's */
	enum signer_wait_state state;
	json_t *reply;
	int fd; /* a descriptor that came with the answer, or -1 */
	pthread_cond_t cond;
	struct signer_wait *next;
};

struct signer_client {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* a reader finished its round */
	int fd;
	bool reading; /* a waiter is receiving (outside the lock) */
	struct signer_wait *waiting;
	unsigned char *buf; /* the reader's; SIGNER_MSG_MAX + 1 bytes */
};

struct signer_client *
signer_client_new(int fd)
{
	struct signer_client *sc = calloc(1, sizeof(*sc));
	pthread_condattr_t attr;

	if (sc == NULL)
		return NULL;
	sc->buf = malloc(SIGNER_MSG_MAX + 1);
	if (sc->buf == NULL) {
		free(sc);
		return NULL;
	}
	pthread_mutex_init(&sc->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->idle, &attr);
	pthread_condattr_destroy(&attr);
	sc->fd = fd;
	return sc;
}

void
signer_client_free(struct signer_client *sc)
{
	if (sc == NULL)
		return;
	if (sc->fd >= 0)
		close(sc->fd);
	pthread_cond_destroy(&sc->idle);
	pthread_mutex_destroy(&sc->lock);
	free(sc->buf);
	free(sc);
}

/* Every waiter fails with state (the channel is gone). Locked. */
static void
signer_fail_all(struct signer_client *sc, enum signer_wait_state state)
{
	for (struct signer_wait *w = sc->waiting; w != NULL; w = w->next) {
		if (w->state != WAIT_PENDING)
			continue;
		w->state = state;
		pthread_cond_signal(&w->cond);
	}
}

void
signer_client_set_fd(struct signer_client *sc, int fd)
{
	pthread_mutex_lock(&sc->lock);
	while (sc->reading)
		pthread_cond_wait(&sc->idle, &sc->lock);
	if (sc->fd >= 0)
		close(sc->fd);
	sc->fd = fd;
	/* Requests sent on the old socket get no answer on the new one. */
	signer_fail_all(sc, WAIT_CLOSED);
	pthread_mutex_unlock(&sc->lock);
}

static void
signer_unlink(struct signer_client *sc, struct signer_wait *w)
{
	for (struct signer_wait **pp = &sc->waiting; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

/* The absolute CLOCK_MONOTONIC time of a clock_mono_ms() deadline. */
static struct timespec
signer_abstime(uint64_t deadline_ms)
{
	struct timespec ts;
	uint64_t now = clock_mono_ms(), left;

	left = deadline_ms > now ? deadline_ms - now : 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/*
 * Hands one received record (n bytes in sc->buf, got_fd) to its waiter.
 * Called with the lock held; consumes got_fd.
 */
static void
signer_dispatch(struct signer_client *sc, size_t n, int got_fd)
{
	struct signer_header got;
	struct signer_wait *w = NULL;

	if (n >= sizeof(got) && n <= SIGNER_MSG_MAX) {
		memcpy(&got, sc->buf, sizeof(got));
		if (got.magic == SIGNER_MAGIC) {
			for (w = sc->waiting; w != NULL; w = w->next)
				if (w->state == WAIT_PENDING &&
				    w->id == got.id &&
				    got.type == (w->type | SIGNER_MSG_REPLY))
					break;
		}
	}
	/* Answers to requests of a worker that died before us, or of a
	 * caller that gave up. */
	if (w == NULL) {
		if (got_fd >= 0)
			close(got_fd);
		return;
	}
	w->reply = json_loadb((const char *)sc->buf + sizeof(got),
			      n - sizeof(got), 0, NULL);
	if (w->reply == NULL || !json_is_object(w->reply)) {
		json_decref(w->reply);
		w->reply = NULL;
		w->state = WAIT_MALFORMED;
		if (got_fd >= 0)
			close(got_fd);
	} else {
		w->state = WAIT_ANSWERED;
		w->fd = got_fd;
	}
	pthread_cond_signal(&w->cond);
}

/*
 * One round of the reader: waits up to a slice for the socket, then
 * receives what is there. Called with the lock held and sc->reading set
 * by the caller; the lock is released while waiting and receiving.
 */
static void
signer_read_round(struct signer_client *sc, uint64_t deadline)
{
	struct pollfd pfd = {sc->fd, POLLIN, 0};
	uint64_t now = clock_mono_ms();
	int wait_ms = deadline > now ? (int)(deadline - now) : 0;

	if (wait_ms > SIGNER_POLL_SLICE_MS)
		wait_ms = SIGNER_POLL_SLICE_MS;
	pthread_mutex_unlock(&sc->lock);
	if (poll(&pfd, 1, wait_ms) > 0) {
		for (;;) {
			int got_fd = -1;
			ssize_t n = signer_fd_recv(pfd.fd, sc->buf,
						   SIGNER_MSG_MAX + 1, &got_fd,
						   MSG_DONTWAIT);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			pthread_mutex_lock(&sc->lock);
			if (n <= 0) {
				if (got_fd >= 0)
					close(got_fd);
				signer_fail_all(sc, WAIT_CLOSED);
				return;
			}
			signer_dispatch(sc, (size_t)n, got_fd);
			pthread_mutex_unlock(&sc->lock);
		}
	}
	pthread_mutex_lock(&sc->lock);
}

/*
 * Sends request (type, body, and send_fd when >= 0) and waits for its
 * answer. Returns the parsed answer object (caller decrefs) or NULL with
 * err set (unavailable). A descriptor that came with the answer goes to
 * *recv_fd when recv_fd is not NULL (else it is closed).
 */
static json_t *
signer_call(struct signer_client *sc, uint32_t type, json_t *body, int send_fd,
	    int *recv_fd, char *err, size_t errlen)
{
	struct signer_header hdr = {SIGNER_MAGIC, type, 0};
	int timeout_ms = type == SIGNER_MSG_CRL	   ? SIGNER_CRL_TIMEOUT_MS
			 : type == SIGNER_MSG_PING ? SIGNER_PING_TIMEOUT_MS
						   : SIGNER_TIMEOUT_MS;
	uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
	struct signer_wait w;
	json_t *reply = NULL;
	unsigned char *msg = NULL;
	char *text = NULL;
	size_t len;

	memset(&w, 0, sizeof(w));
	w.fd = -1;
	text = json_dumps(body, JSON_COMPACT);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	len = strlen(text);
	if (len + sizeof(hdr) > SIGNER_MSG_MAX) {
		snprintf(err, errlen, "sign request too large (%zu bytes)",
			 len);
		goto out;
	}
	if (RAND_bytes((unsigned char *)&hdr.id, (int)sizeof(hdr.id)) != 1) {
		snprintf(err, errlen, "RNG failure");
		goto out;
	}
	msg = malloc(sizeof(hdr) + len);
	if (msg == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), text, len);
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&w.cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	w.id = hdr.id;
	w.type = type;

	pthread_mutex_lock(&sc->lock);
	/* Never block: a full socket means the ca is stopped or far behind.
	 * Sent under the lock so that the answer finds us registered. */
	if (signer_fd_send(sc->fd, msg, sizeof(hdr) + len, send_fd,
			   MSG_DONTWAIT) < 0) {
		snprintf(err, errlen, "ca process unreachable: %s",
			 strerror(errno));
		pthread_mutex_unlock(&sc->lock);
		pthread_cond_destroy(&w.cond);
		goto out;
	}
	w.next = sc->waiting;
	sc->waiting = &w;
	while (w.state == WAIT_PENDING && clock_mono_ms() < deadline) {
		if (!sc->reading) {
			sc->reading = true;
			signer_read_round(sc, deadline);
			sc->reading = false;
			pthread_cond_broadcast(&sc->idle);
		} else {
			struct timespec ts = signer_abstime(deadline);

			pthread_cond_timedwait(&w.cond, &sc->lock, &ts);
		}
	}
	signer_unlink(sc, &w);
	/* Someone else still waits: one of them reads next. */
	if (!sc->reading) {
		for (struct signer_wait *o = sc->waiting; o != NULL;
		     o = o->next) {
			if (o->state == WAIT_PENDING) {
				pthread_cond_signal(&o->cond);
				break;
			}
		}
	}
	pthread_mutex_unlock(&sc->lock);
	pthread_cond_destroy(&w.cond);

	switch (w.state) {
	case WAIT_ANSWERED:
		reply = w.reply;
		if (recv_fd != NULL)
			*recv_fd = w.fd;
		else if (w.fd >= 0)
			close(w.fd);
		break;
	case WAIT_MALFORMED:
		snprintf(err, errlen, "malformed answer from ca process");
		break;
	case WAIT_CLOSED:
		snprintf(err, errlen, "ca process closed the channel");
		break;
	case WAIT_PENDING:
		snprintf(err, errlen, "ca process did not answer within %d ms",
			 timeout_ms);
		break;
	}
out:
	free(msg);
	free(text);
	return reply;
}

/* Maps the answer's status; copies its error message. */
static enum signer_status
signer_reply_status(json_t *reply, char *err, size_t errlen)
{
	const char *status =
		json_string_value(json_object_get(reply, "status"));
	const char *msg = json_string_value(json_object_get(reply, "error"));

	if (status != NULL && strcmp(status, "ok") == 0)
		return SIGNER_OK;
	snprintf(err, errlen, "%s", msg != NULL ? msg : "ca process error");
	if (status != NULL && strcmp(status, "rejected") == 0)
		return SIGNER_REJECTED;
	return SIGNER_UNAVAILABLE;
}

/*
 * One exchange with the ca process: sends req (consumed), and on an "ok"
 * answer hands the reply to the caller in *out (the caller owns it). Any
 * other answer is freed here and its status returned with err filled in.
 */
static enum signer_status
signer_request(struct signer_client *sc, uint32_t type, json_t *req,
	       int send_fd, int *recv_fd, json_t **out, char *err,
	       size_t errlen)
{
	enum signer_status st;
	json_t *reply;

	if (recv_fd != NULL)
		*recv_fd = -1;
	uint64_t t0 = metrics_now_us();
	reply = signer_call(sc, type, req, send_fd, recv_fd, err, errlen);
	json_decref(req);
	metrics_observe_us(METRIC_SIGNER_SECONDS, metrics_now_us() - t0, "op",
			   type == SIGNER_MSG_ISSUE ? "issue"
			   : type == SIGNER_MSG_CRL ? "crl"
						    : "ping",
			   "result", reply != NULL ? "answered" : "unavailable",
			   NULL);
	if (reply == NULL)
		return SIGNER_UNAVAILABLE;
	st = signer_reply_status(reply, err, errlen);
	if (st != SIGNER_OK) {
		json_decref(reply);
		if (recv_fd != NULL && *recv_fd >= 0) {
			close(*recv_fd);
			*recv_fd = -1;
		}
		return st;
	}
	*out = reply;
	return SIGNER_OK;
}

enum signer_status
signer_issue_device(struct signer_client *sc, const char *csr_pem,
		    size_t csr_len, const char *device_id, long validity_s,
		    struct signer_issued *out, char *err, size_t errlen)
{
	enum signer_status st = SIGNER_UNAVAILABLE;
	json_t *req = NULL, *reply = NULL;
	const char *cert, *serial, *issuer;

	req = json_pack("{s:s%, s:s, s:I}", "csr", csr_pem, csr_len,
			"device_id", device_id, "validity",
			(json_int_t)validity_s);
	if (req == NULL) {
		/* Not valid UTF-8 or out of memory: not a CSR either way. */
		snprintf(err, errlen, "the CSR is not PEM text");
		return SIGNER_REJECTED;
	}
	st = signer_request(sc, SIGNER_MSG_ISSUE, req, -1, NULL, &reply, err,
			    errlen);
	if (st != SIGNER_OK)
		return st;
	cert = json_string_value(json_object_get(reply, "cert"));
	serial = json_string_value(json_object_get(reply, "serial"));
	if (cert == NULL || serial == NULL ||
	    strlen(serial) >= sizeof(out->serial)) {
		snprintf(err, errlen, "malformed answer from ca process");
		st = SIGNER_UNAVAILABLE;
		goto out;
	}
	out->cert_pem = strdup(cert);
	if (out->cert_pem == NULL) {
		snprintf(err, errlen, "out of memory");
		st = SIGNER_UNAVAILABLE;
		goto out;
	}
	snprintf(out->serial, sizeof(out->serial), "%s", serial);
	issuer = json_string_value(json_object_get(reply, "issuer"));
	snprintf(out->issuer, sizeof(out->issuer), "%s",
		 issuer != NULL ? issuer : "");
	out->not_before =
		json_integer_value(json_object_get(reply, "not_before"));
	out->not_after =
		json_integer_value(json_object_get(reply, "not_after"));
out:
	json_decref(reply);
	return st;
}

/* The revoked list as the sealed memfd of signer_proto.h; -1 on error. */
static int
signer_crl_input(const struct signer_revoked *revoked, size_t n, char *err,
		 size_t errlen)
{
	struct signer_crl_record *rec = NULL;
	int fd;

	rec = calloc(n > 0 ? n : 1, sizeof(*rec));
	if (rec == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (revoked[i].serial == NULL ||
		    strlen(revoked[i].serial) >= sizeof(rec[i].serial)) {
			free(rec);
			snprintf(err, errlen, "bad serial in the revoked list");
			return -1;
		}
		memcpy(rec[i].serial, revoked[i].serial,
		       strlen(revoked[i].serial));
		rec[i].revoked_at = revoked[i].revoked_at;
		rec[i].reason = revoked[i].reason;
	}
	fd = signer_fd_make("fleet-crl-input", rec, n * sizeof(*rec));
	free(rec);
	if (fd < 0)
		snprintf(err, errlen, "memfd: %s", strerror(errno));
	return fd;
}

enum signer_status
signer_sign_crl_for(struct signer_client *sc, const char *issuer,
		    const struct signer_revoked *revoked, size_t n,
		    uint64_t crl_number, long next_update_s,
		    unsigned char **out_der, size_t *out_len, char *err,
		    size_t errlen)
{
	enum signer_status st = SIGNER_UNAVAILABLE;
	json_t *req = NULL, *reply = NULL;
	json_int_t der_len;
	unsigned char *der = NULL;
	int in_fd, out_fd = -1;

	if (n > SIGNER_CRL_MAX_ENTRIES) {
		snprintf(err, errlen, "more than %u revoked certificates",
			 SIGNER_CRL_MAX_ENTRIES);
		return SIGNER_REJECTED;
	}
	in_fd = signer_crl_input(revoked, n, err, errlen);
	if (in_fd < 0)
		return SIGNER_UNAVAILABLE;
	req = json_pack("{s:I, s:I, s:I, s:s}", "count", (json_int_t)n,
			"number", (json_int_t)crl_number, "next_update",
			(json_int_t)next_update_s, "issuer",
			issuer != NULL ? issuer : "");
	if (req == NULL) {
		close(in_fd);
		snprintf(err, errlen, "out of memory");
		return SIGNER_UNAVAILABLE;
	}
	st = signer_request(sc, SIGNER_MSG_CRL, req, in_fd, &out_fd, &reply,
			    err, errlen);
	close(in_fd);
	if (st != SIGNER_OK)
		return st;
	st = SIGNER_UNAVAILABLE;
	der_len = json_integer_value(json_object_get(reply, "crl_len"));
	if (der_len <= 0 || (uint64_t)der_len > SIGNER_CRL_MAX_DER ||
	    signer_fd_read(out_fd, (size_t)der_len, &der) != 0) {
		snprintf(err, errlen, "malformed CRL from ca process");
		goto out;
	}
	*out_der = der;
	*out_len = (size_t)der_len;
	st = SIGNER_OK;
out:
	if (out_fd >= 0)
		close(out_fd);
	json_decref(reply);
	return st;
}

enum signer_status
signer_sign_crl(struct signer_client *sc, const struct signer_revoked *revoked,
		size_t n, uint64_t crl_number, long next_update_s,
		unsigned char **out_der, size_t *out_len, char *err,
		size_t errlen)
{
	return signer_sign_crl_for(sc, "", revoked, n, crl_number,
				   next_update_s, out_der, out_len, err,
				   errlen);
}

enum signer_status
signer_ping(struct signer_client *sc, char *err, size_t errlen)
{
	json_t *req = json_object(), *reply = NULL;
	enum signer_status st;

	if (req == NULL) {
		snprintf(err, errlen, "out of memory");
		return SIGNER_UNAVAILABLE;
	}
	st = signer_request(sc, SIGNER_MSG_PING, req, -1, NULL, &reply, err,
			    errlen);
	json_decref(reply);
	return st;
}

void
signer_issued_free(struct signer_issued *issued)
{
	if (issued == NULL)
		return;
	free(issued->cert_pem);
	issued->cert_pem = NULL;
}
