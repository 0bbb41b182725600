/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP requests on the api listener, inside a net worker's event loop.
 * The worker adopts api connections as raw TLS sockets: lws does the TLS
 * and nothing else, h1.c parses each request head strictly (RFC 9112) and
 * refuses what it must (framing, methods, limits, %00, upgrades) with
 * problem+json, and this file serves the connection: the body is
 * collected on the loop (bounded: max_body, sized once from
 * Content-Length), the request is handed to a job thread that runs
 * api_handle(), and the answer is written back in RAW_WRITEABLE. One
 * request at a time: reading pauses while one runs, so pipelined bytes
 * wait; a refusal closes the connection, so nothing after it (a smuggled
 * body, a pipelined request) is ever read as a request. All input is
 * untrusted. A connection that closes while its job runs orphans the job;
 * the loop frees it when it comes back. Buffers that held an
 * Authorization header, a body or an answer are wiped before they are
 * freed. docs/internals/threat-model.md has the limits table and why lws's
 * own HTTP parser is kept away from this listener.
 *
 * One request streams instead: an artifact upload (PUT
 * /api/v1/artifacts/{id}/file, api_artifacts_streamed()). Its job starts
 * after the head and reads the body through a bounded ring as the loop
 * receives it, the socket paused while the ring is full (struct
 * http_stream; docs/internals/artifacts.md).
 */
#include "http/http.h"

#include "api/artifacts.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "api/metrics.h"
#include "core/metrics.h"
#include "http/h1.h"
#include "http/jobs.h"
#include "log.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_CHUNK 16384

/*
 * A streamed request body (PUT /api/v1/artifacts/{id}/file): the loop
 * copies bytes in as they arrive, the job thread reads them out. Bounded:
 * STREAM_RING bytes; the loop stops reading the socket (rx flow control)
 * once STREAM_HIGH are waiting and resumes when the job has taken them,
 * so a fast client waits for PostgreSQL instead of filling memory. The
 * job owns the stream (it lives until the job is freed, on the loop); the
 * session points at it while the connection is open.
 */
#define STREAM_RING (2u * 1024u * 1024u)
#define STREAM_HIGH (1024u * 1024u)
#define STREAM_POLL_US 1000 /* while paused: look again every 1 ms */
#define STREAM_WAIT_S 60 /* the job's longest wait for a byte */
#define STREAM_DRAIN_S 2 /* after an early answer: read, drop, close */

/* Streamed uploads of this worker (one process, one loop thread: only
 * the loop touches it). Each holds an api job thread for as long as its
 * client sends, so at most half of them (at least one) take uploads and
 * the rest keep serving the API; more uploads are answered 503. */
static size_t http_streams_active;

struct http_stream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *ring;
	size_t start, len; /* the waiting bytes: ring[start..start+len) */
	uint64_t length; /* Content-Length */
	uint64_t received; /* by the loop */
	bool closed; /* the connection is gone: reads fail */
	bool reading; /* the job asked for a byte (100 Continue) */
	bool consumed; /* the handler read the whole body */
};

struct http_job {
	struct job job;
	struct lws *wsi; /* NULL once the connection has closed */
	bool in_pool; /* owned by the job pool until done() */
	bool head; /* HEAD: run as GET, answer without the body */
	struct worker *worker;
	uint64_t started_ms;
	uint64_t submitted_us; /* metrics: queue wait */
	char method[16];
	char path[H1_PATH_MAX];
	char *query; /* as sent, malloc'd */
	char authorization[H1_AUTHORIZATION_MAX];
	char content_type[H1_CONTENT_TYPE_MAX];
	char if_match[H1_IF_MATCH_MAX];
	char idempotency_key[H1_IDEMPOTENCY_KEY_MAX];
	char request_id[32];
	char peer[64];
	char *body; /* body_cap bytes, wiped before free */
	size_t body_len;
	size_t body_cap;
	unsigned char *client_cert; /* DER of the TLS client certificate */
	size_t client_cert_len;
	enum api_client_cert client_cert_state;
	struct http_stream *stream; /* streamed body, or NULL */
	uint64_t max_stream; /* artifact_max_size */
	struct api_response resp;
};

/* One connection (lws keeps it for the connection's life). */
struct http_session {
	struct http_job *job; /* being collected, in the pool, or answering */
	char *body; /* exactly Content-Length + 1 bytes, never realloc'd */
	size_t body_len;
	size_t body_cap;
	bool answered; /* a refusal (4xx, 503) is queued */
	bool started; /* the job was handed out */
	bool close_after;
	bool counted; /* in worker.api_open */
	enum {
		RAW_HEAD = 0,
		RAW_BODY,
		RAW_STREAM, /* the job reads the body as it arrives */
		RAW_RUN,
		RAW_DRAIN, /* answered early: drop the rest, then close */
		RAW_CLOSING
	} raw_phase;
	bool raw_continue; /* 100 Continue to write */
	bool raw_overflow; /* input past H1_HEAD_MAX was dropped: close */
	char *in; /* H1_HEAD_MAX bytes: what is read but not yet used */
	size_t in_len;
	char *out; /* LWS_PRE + the answer (head and body) */
	size_t out_len, out_sent;
	/* RAW_STREAM */
	struct lws *wsi;
	struct http_stream *stream; /* the job's; NULL once closed */
	bool stream_paused; /* rx flow off because the ring is full */
	bool stream_continue; /* 100 Continue owed once the job reads */
	bool sul_armed;
	uint64_t drain_left; /* RAW_DRAIN: body bytes still to drop */
	lws_sorted_usec_list_t sul;
};

size_t
http_session_size(void)
{
	return sizeof(struct http_session);
}

/* Frees a body buffer after wiping it: it may hold an enrollment token. */
static void
http_body_free(char *body, size_t cap)
{
	if (body == NULL)
		return;
	OPENSSL_cleanse(body, cap);
	free(body);
}

/* ---- streamed bodies --------------------------------------------------- */

static struct http_stream *
http_stream_new(uint64_t length)
{
	struct http_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->ring = malloc(STREAM_RING);
	if (st->ring == NULL || pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st->ring);
		free(st);
		return NULL;
	}
	if (pthread_cond_init(&st->cv, NULL) != 0) {
		pthread_mutex_destroy(&st->mu);
		free(st->ring);
		free(st);
		return NULL;
	}
	st->length = length;
	return st;
}

static void
http_stream_free(struct http_stream *st)
{
	if (st == NULL)
		return;
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->ring); /* firmware, not secrets: no wipe of 2 MiB */
	free(st);
}

/* Loop: bytes of the body in (at most what the ring has room for; the
 * loop pauses reading long before it is full). Returns the count taken. */
static size_t
http_stream_put(struct http_stream *st, const char *data, size_t len)
{
	size_t room, end, first;

	pthread_mutex_lock(&st->mu);
	room = STREAM_RING - st->len;
	if (len > room)
		len = room;
	end = (st->start + st->len) % STREAM_RING;
	first = STREAM_RING - end < len ? STREAM_RING - end : len;
	memcpy(st->ring + end, data, first);
	memcpy(st->ring, data + first, len - first);
	st->len += len;
	st->received += len;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return len;
}

/* Loop: the connection is gone; a waiting read fails. */
static void
http_stream_close(struct http_stream *st)
{
	pthread_mutex_lock(&st->mu);
	st->closed = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

/* Job thread (struct api_body_stream.read): blocks until bytes arrive;
 * <= 0 when the client went away or stayed silent for STREAM_WAIT_S. */
static long
http_stream_read(void *arg, void *buf, size_t cap)
{
	struct http_stream *st = arg;
	struct timespec until;
	size_t n, first;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STREAM_WAIT_S;
	pthread_mutex_lock(&st->mu);
	st->reading = true;
	while (st->len == 0 && !st->closed) {
		if (pthread_cond_timedwait(&st->cv, &st->mu, &until) ==
		    ETIMEDOUT)
			break;
	}
	if (st->len == 0) {
		pthread_mutex_unlock(&st->mu);
		return -1;
	}
	n = cap < st->len ? cap : st->len;
	if (n > (size_t)LONG_MAX)
		n = (size_t)LONG_MAX;
	first = STREAM_RING - st->start < n ? STREAM_RING - st->start : n;
	memcpy(buf, st->ring + st->start, first);
	memcpy((char *)buf + first, st->ring, n - first);
	st->start = (st->start + n) % STREAM_RING;
	st->len -= n;
	pthread_mutex_unlock(&st->mu);
	return (long)n;
}

static void
http_job_free(struct http_job *job)
{
	if (job == NULL)
		return;
	http_stream_free(job->stream);
	http_body_free(job->body, job->body_cap);
	free(job->query);
	free(job->client_cert);
	/* The answer may carry a new token. */
	if (job->resp.body != NULL)
		OPENSSL_cleanse(job->resp.body, job->resp.body_len);
	api_response_free(&job->resp);
	OPENSSL_cleanse(job, sizeof(*job)); /* the Authorization copy */
	free(job);
}

/* ---- problem+json answers made here --------------------------------- */

/* Titles of the problem types answered here; those the API answers too
 * (not-found, payload-too-large, service-unavailable) carry api/problem.c's
 * title, so one type keeps one title. */
static const struct {
	const char *slug;
	const char *title;
} http_titles[] = {
	{"bad-request", "Bad request"},
	{"not-found", "Not found"},
	{"payload-too-large", "Payload too large"},
	{"length-required", "Length required"},
	{"uri-too-long", "URI too long"},
	{"header-too-large", "Request header fields too large"},
	{"upgrade-refused", "Upgrade refused"},
	{"expectation-failed", "Expectation failed"},
	{"not-implemented", "Not implemented"},
	{"service-unavailable", "Service unavailable"},
	{"http-version-not-supported", "HTTP version not supported"},
};

static const char *
http_title(int status, const char *slug)
{
	for (size_t i = 0; i < sizeof(http_titles) / sizeof(http_titles[0]);
	     i++)
		if (strcmp(http_titles[i].slug, slug) == 0)
			return http_titles[i].title;
	return h1_reason(status);
}

/* The problem document of RFC 7807; detail is ours (no secrets). Returns
 * a malloc'd NUL-terminated string or NULL. */
static char *
http_problem_json(int status, const char *slug, const char *detail)
{
	struct buf b;

	buf_init(&b, 1024);
	if (buf_printf(&b,
		       "{\"type\":\"urn:fleet:problem:%s\",\"title\":\"%s\","
		       "\"status\":%d",
		       slug, http_title(status, slug), status) != 0)
		goto fail;
	if (detail != NULL) {
		if (buf_append(&b, ",\"detail\":\"", 11) != 0)
			goto fail;
		for (const char *p = detail; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;
			int rc;

			if (c == '"' || c == '\\')
				rc = buf_printf(&b, "\\%c", c);
			else if (c < 0x20)
				rc = buf_printf(&b, "\\u%04x", c);
			else
				rc = buf_append(&b, p, 1);
			if (rc != 0)
				goto fail;
		}
		if (buf_append(&b, "\"", 1) != 0)
			goto fail;
	}
	if (buf_append(&b, "}", 1) != 0)
		goto fail;
	return buf_detach(&b, NULL);
fail:
	buf_free(&b);
	return NULL;
}

static void
http_problem(struct api_response *resp, int status, const char *slug,
	     const char *detail)
{
	api_response_free(resp);
	memset(resp, 0, sizeof(*resp));
	resp->status = status;
	resp->content_type = "application/problem+json";
	resp->body = http_problem_json(status, slug, detail);
	resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
}

/*
 * The TLS client certificate of the connection, as verified in the
 * handshake (worker.c: the device issuing CA(s) are the only anchors, the
 * outcome is kept in the SSL's ex-data). A resumed session carries a
 * certificate verified in an earlier handshake, maybe before a revocation
 * or expiry: it counts as none, and the client makes a full handshake.
 */
static void
http_client_cert(struct lws *wsi, struct http_job *job)
{
	SSL *ssl = lws_get_ssl(wsi);
	X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	unsigned char *p;
	int len;

	job->client_cert_state = API_CLIENT_CERT_NONE;
	if (peer == NULL || SSL_session_reused(ssl))
		return;
	len = i2d_X509(peer, NULL);
	if (len <= 0)
		return;
	job->client_cert = malloc((size_t)len);
	if (job->client_cert == NULL)
		return;
	p = job->client_cert;
	if (i2d_X509(peer, &p) != len) {
		free(job->client_cert);
		job->client_cert = NULL;
		return;
	}
	job->client_cert_len = (size_t)len;
	job->client_cert_state = worker_client_cert_state(ssl);
}

static struct http_job *
http_job_new(struct worker *w, struct lws *wsi, const char *method)
{
	struct http_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->wsi = wsi;
	job->worker = w;
	job->started_ms = clock_mono_ms();
	snprintf(job->method, sizeof(job->method), "%s",
		 method != NULL ? method : "-");
	snprintf(job->request_id, sizeof(job->request_id), "w%d-%llu", w->slot,
		 (unsigned long long)++w->request_seq);
	lws_get_peer_simple(wsi, job->peer, sizeof(job->peer));
	http_client_cert(wsi, job);
	return job;
}

/* ---- the job ---------------------------------------------------------- */

static void
http_job_run(struct job *j, void *state)
{
	struct http_job *job = (struct http_job *)j;
	struct api_ctx *ctx = state;
	struct api_body_stream bs = {
		.read = http_stream_read,
		.arg = job->stream,
		.length = job->stream != NULL ? job->stream->length : 0,
		.max_size = job->max_stream,
		.consumed = job->stream != NULL ? &job->stream->consumed : NULL,
	};
	struct api_request req = {
		.method = job->head ? "GET" : job->method,
		.path = job->path,
		.query = job->query != NULL ? job->query : "",
		.authorization = job->authorization[0] != '\0'
					 ? job->authorization
					 : NULL,
		.content_type =
			job->content_type[0] != '\0' ? job->content_type : NULL,
		.if_match = job->if_match[0] != '\0' ? job->if_match : NULL,
		.idempotency_key = job->idempotency_key[0] != '\0'
					   ? job->idempotency_key
					   : NULL,
		.request_id = job->request_id,
		.peer = job->peer,
		.body = job->body != NULL ? job->body : "",
		.body_len = job->body_len,
		.client_cert_der = job->client_cert,
		.client_cert_der_len = job->client_cert_len,
		.client_cert = job->client_cert_state,
	};

	metrics_observe_us(METRIC_JOB_WAIT_SECONDS,
			   metrics_now_us() - job->submitted_us, "pool", "api",
			   NULL);
	if (job->stream != NULL)
		req.body_stream = &bs;
	api_handle(ctx, &req, &job->resp);
}

/* Back on the loop: answer, or drop the job if its connection is gone. */
static void
http_job_done(struct job *j)
{
	struct http_job *job = (struct http_job *)j;

	job->in_pool = false;
	if (job->wsi == NULL) {
		http_job_free(job);
		return;
	}
	lws_callback_on_writable(job->wsi);
}

static void
http_start_job(struct worker *w, struct http_session *s)
{
	struct http_job *job = s->job;

	if (s->started)
		return;
	s->started = true;
	job->body = s->body;
	job->body_len = s->body_len;
	job->body_cap = s->body_cap;
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	job->job.run = http_job_run;
	job->job.done = http_job_done;
	job->submitted_us = metrics_now_us();
	job->in_pool = true;
	if (!job_pool_submit(w->jobs, &job->job)) {
		job->in_pool = false;
		http_problem(&job->resp, 503, "service-unavailable",
			     "this worker is overloaded; retry later");
		lws_callback_on_writable(job->wsi);
	}
}

/* ---- writing the answer ---------------------------------------------- */

static void
http_log_request(const struct http_job *job)
{
	log_write(job->resp.status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
		  job->request_id, "%s %s -> %d (%llu ms) peer=%s", job->method,
		  job->path[0] != '\0' ? job->path : "-", job->resp.status,
		  (unsigned long long)(clock_mono_ms() - job->started_ms),
		  job->peer);
	api_metrics_request(job->method, job->path, job->resp.status,
			    (clock_mono_ms() - job->started_ms) * 1000);
}

/* ---- api connections as raw TLS sockets, parsed by h1.c --------------- */

/*
 * When the worker adopts api connections as raw TLS sockets
 * (LWS_ADOPT_SOCKET | LWS_ADOPT_ALLOW_SSL, protocol "http"), lws does the
 * TLS and nothing else: the request head is parsed by h1.c, which refuses
 * what lws's own parser drops or answers in HTML (%00, an over-long URL or
 * header, unknown methods and upgrades). The same path serves a CONNECT,
 * or with LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG an
 * unknown method, that lws gives up to protocols[0] as a raw socket: h1.c
 * answers it 501. One request at a time: reading stops while a request
 * runs (pipelined bytes wait in the input buffer), and a refusal closes.
 */

#define RAW_HEAD_TIMEOUT_S 10 /* from the first byte of a head */
#define RAW_BODY_TIMEOUT_S 30
#define RAW_IDLE_TIMEOUT_S 30 /* keep-alive */

/* Appends to the input buffer; past H1_HEAD_MAX the bytes are dropped
 * and the connection closes after the current answer. */
static void
raw_stash(struct http_session *s, const char *data, size_t len)
{
	size_t room;

	if (len == 0)
		return;
	if (s->in == NULL) {
		s->in = malloc(H1_HEAD_MAX);
		if (s->in == NULL) {
			s->raw_overflow = true;
			return;
		}
	}
	room = H1_HEAD_MAX - s->in_len;
	if (len > room) {
		s->raw_overflow = true;
		len = room;
	}
	memcpy(s->in + s->in_len, data, len);
	s->in_len += len;
}

/* Drops the first n buffered bytes; an idle connection keeps no buffer. */
static void
raw_consume(struct http_session *s, size_t n)
{
	OPENSSL_cleanse(s->in, n);
	memmove(s->in, s->in + n, s->in_len - n);
	s->in_len -= n;
	if (s->in_len == 0) {
		OPENSSL_cleanse(s->in, H1_HEAD_MAX); /* moved copies too */
		free(s->in);
		s->in = NULL;
	}
}

/* Builds the whole answer (head + body) for RAW_WRITEABLE. */
static int
raw_prepare(struct http_session *s)
{
	const struct api_response *resp = &s->job->resp;
	size_t body_len = s->job->head ? 0 : resp->body_len;
	struct buf h;
	int rc = 0;

	buf_init(&h, 4096);
	rc |= buf_printf(&h, "HTTP/1.1 %d %s\r\n", resp->status,
			 h1_reason(resp->status));
	if (resp->content_type != NULL)
		rc |= buf_printf(&h, "content-type: %s\r\n",
				 resp->content_type);
	rc |= buf_printf(&h, "content-length: %zu\r\n", resp->body_len);
	{
		/* RFC 9110 §6.6.1: an origin server with a clock sends Date. */
		char date[64];
		time_t now = time(NULL);
		struct tm tm;

		if (gmtime_r(&now, &tm) != NULL &&
		    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
			     &tm) > 0)
			rc |= buf_printf(&h, "date: %s\r\n", date);
	}
	if (resp->etag[0] != '\0')
		rc |= buf_printf(&h, "etag: \"%s\"\r\n", resp->etag);
	if (resp->location[0] != '\0')
		rc |= buf_printf(&h, "location: %s\r\n", resp->location);
	if (resp->allow[0] != '\0')
		rc |= buf_printf(&h, "allow: %s\r\n", resp->allow);
	if (resp->extra_headers != NULL)
		rc |= buf_printf(&h, "%s", resp->extra_headers);
	rc |= buf_printf(&h,
			 "x-request-id: %s\r\ncache-control: no-store\r\n%s"
			 "\r\n",
			 s->job->request_id,
			 s->close_after ? "connection: close\r\n" : "");
	if (rc != 0) {
		buf_free(&h);
		return -1;
	}
	s->out_len = h.len + body_len;
	s->out = malloc(LWS_PRE + s->out_len);
	if (s->out == NULL) {
		buf_free(&h);
		return -1;
	}
	memcpy(s->out + LWS_PRE, h.data, h.len);
	if (body_len > 0)
		memcpy(s->out + LWS_PRE + h.len, resp->body, body_len);
	s->out_sent = 0;
	buf_free(&h);
	return 0;
}

static void
raw_out_free(struct http_session *s)
{
	if (s->out != NULL) {
		OPENSSL_cleanse(s->out, LWS_PRE + s->out_len);
		free(s->out);
	}
	s->out = NULL;
	s->out_len = s->out_sent = 0;
}

/* A refusal: answered, then closed; nothing more is read. */
static void
raw_refuse(struct lws *wsi, struct http_session *s, int status,
	   const char *slug, const char *detail)
{
	http_problem(&s->job->resp, status, slug, detail);
	s->answered = true;
	s->close_after = true;
	s->raw_phase = RAW_RUN;
	lws_rx_flow_control(wsi, 0);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	lws_callback_on_writable(wsi);
}

static void raw_feed(struct lws *wsi, struct worker *w, struct http_session *s,
		     const char *data, size_t len);

/* Loop: looks whether a streamed request needs the loop (the job has
 * drained the ring, or asked for its first byte: 100 Continue); the
 * answer is given in RAW_WRITEABLE, a callback on the connection. */
static void
raw_stream_poll(lws_sorted_usec_list_t *sul)
{
	struct http_session *s =
		lws_container_of(sul, struct http_session, sul);
	bool wake = false;

	s->sul_armed = false;
	if (s->stream == NULL || s->raw_phase != RAW_STREAM)
		return;
	pthread_mutex_lock(&s->stream->mu);
	if (s->stream_paused && s->stream->len < STREAM_HIGH)
		wake = true;
	if (s->stream_continue && s->stream->reading)
		wake = true;
	pthread_mutex_unlock(&s->stream->mu);
	if (wake) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	s->sul_armed = true;
	lws_sul_schedule(lws_get_context(s->wsi), 0, &s->sul, raw_stream_poll,
			 STREAM_POLL_US);
}

static void
raw_stream_arm(struct http_session *s)
{
	if (s->sul_armed)
		return;
	s->sul_armed = true;
	lws_sul_schedule(lws_get_context(s->wsi), 0, &s->sul, raw_stream_poll,
			 STREAM_POLL_US);
}

/* Body bytes of a streamed request: into the ring, pausing the socket
 * when it fills. Bytes past Content-Length are dropped (the connection
 * closes after a streamed request). */
static void
raw_stream_feed(struct lws *wsi, struct http_session *s, const char *data,
		size_t len)
{
	struct http_stream *st = s->stream;
	uint64_t want;
	size_t n, took;
	bool full;

	if (st == NULL)
		return;
	/* A stopping worker waits for its jobs: past the grace for open
	 * connections, an upload is cut (the client retries it from the
	 * start, on another worker) so a restart is never held up by it. */
	{
		struct worker *w = lws_context_user(lws_get_context(wsi));

		if (w->stopping && clock_mono_ms() >= w->stop_deadline_ms) {
			log_info("worker %d: stopping: an upload is cut",
				 w->slot);
			http_stream_close(st);
			s->raw_phase = RAW_CLOSING;
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
			return;
		}
	}
	want = st->length - st->received;
	n = len < want ? len : (size_t)want;
	took = n > 0 ? http_stream_put(st, data, n) : 0;
	if (took < n) {
		/* More than the ring holds although reading was paused:
		 * never happens with lws's read sizes; refuse, never grow. */
		log_warn("streamed upload: input past the buffer; closing");
		http_stream_close(st);
		s->raw_phase = RAW_CLOSING;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	pthread_mutex_lock(&st->mu);
	full = st->len >= STREAM_HIGH;
	pthread_mutex_unlock(&st->mu);
	if (st->received == st->length || full) {
		lws_rx_flow_control(wsi, 0);
		/* Waiting on the job, not on the client: no body timeout. */
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		s->stream_paused = st->received < st->length;
		if (s->stream_paused)
			raw_stream_arm(s);
		return;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, RAW_BODY_TIMEOUT_S);
}

/* PUT /api/v1/artifacts/{id}/file: the job starts at once and reads the
 * body as it arrives (docs/internals/artifacts.md). */
static void
raw_begin_stream(struct lws *wsi, struct worker *w, struct http_session *s,
		 struct h1_request *req)
{
	struct http_job *job = s->job;

	s->close_after = true;
	if (!req->has_content_length) {
		raw_refuse(wsi, s, 411, "length-required",
			   "an artifact upload needs Content-Length");
		return;
	}
	if (http_streams_active >=
	    (w->cfg->job_threads > 1 ? (size_t)w->cfg->job_threads / 2 : 1)) {
		raw_refuse(wsi, s, 503, "service-unavailable",
			   "as many uploads as this worker takes are running; "
			   "retry later");
		return;
	}
	job->stream = http_stream_new((uint64_t)req->content_length);
	if (job->stream == NULL) {
		raw_refuse(wsi, s, 503, "service-unavailable", "out of memory");
		return;
	}
	job->max_stream = (uint64_t)w->cfg->artifact_max_size;
	s->wsi = wsi;
	s->stream = job->stream;
	http_streams_active++;
	s->raw_phase = RAW_STREAM;
	/* 100 Continue only once the handler asks for the body: a refusal
	 * (401, 413, 422) comes before the client sends it. */
	s->stream_continue = req->expect_continue;
	if (s->stream_continue)
		raw_stream_arm(s);
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, RAW_BODY_TIMEOUT_S);
	http_start_job(w, s);
	if (!s->job->in_pool)
		s->raw_phase = RAW_RUN; /* refused (503) before it ran */
	/* Bytes read with the head are in s->in: raw_feed passes them on. */
}

/* A parsed head: copy it into a job, then the body or the job. */
static void
raw_begin(struct lws *wsi, struct worker *w, struct http_session *s,
	  struct h1_request *req)
{
	struct http_job *job = s->job;

	snprintf(job->method, sizeof(job->method), "%s", req->method);
	job->head = strcmp(req->method, "HEAD") == 0;
	memcpy(job->path, req->path, sizeof(job->path));
	job->query = req->query;
	req->query = NULL;
	memcpy(job->authorization, req->authorization,
	       sizeof(job->authorization));
	memcpy(job->content_type, req->content_type, sizeof(job->content_type));
	memcpy(job->if_match, req->if_match, sizeof(job->if_match));
	memcpy(job->idempotency_key, req->idempotency_key,
	       sizeof(job->idempotency_key));
	s->close_after = !req->keep_alive || s->raw_overflow;
	/* A stopping worker still serves the connections it accepted (the
	 * listen sockets are the other workers' now), then closes them. */
	if (w->stopping)
		s->close_after = true;
	if (api_artifacts_streamed(req->method, req->path)) {
		raw_begin_stream(wsi, w, s, req);
		return;
	}
	if (req->content_length > w->cfg->max_body) {
		char detail[128];

		snprintf(detail, sizeof(detail),
			 "request bodies are limited to %ld bytes",
			 w->cfg->max_body);
		raw_refuse(wsi, s, 413, "payload-too-large", detail);
		return;
	}
	s->body_len = 0;
	s->body_cap = 0;
	if (req->content_length > 0) {
		s->body_cap = (size_t)req->content_length + 1;
		s->body = calloc(1, s->body_cap);
		if (s->body == NULL) {
			s->body_cap = 0;
			raw_refuse(wsi, s, 503, "service-unavailable",
				   "out of memory");
			return;
		}
		s->raw_phase = RAW_BODY;
		s->raw_continue = req->expect_continue;
		if (s->raw_continue)
			lws_callback_on_writable(wsi);
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
				RAW_BODY_TIMEOUT_S);
		return;
	}
	s->raw_phase = RAW_RUN;
	lws_rx_flow_control(wsi, 0);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	http_start_job(w, s);
}

/* Feeds bytes from the network (or, with len 0, what is buffered). */
static void
raw_feed(struct lws *wsi, struct worker *w, struct http_session *s,
	 const char *data, size_t len)
{
	struct h1_request req;
	struct h1_error err;

again:
	if (s->raw_phase == RAW_STREAM) {
		if (s->in_len > 0) {
			size_t n = s->in_len;

			raw_stream_feed(wsi, s, s->in, n);
			raw_consume(s, n);
		}
		if (len > 0 && s->raw_phase == RAW_STREAM)
			raw_stream_feed(wsi, s, data, len);
		return;
	}
	if (s->raw_phase == RAW_DRAIN) {
		/* Answered before the body was read: drop it so the close
		 * does not reset the connection under the answer. */
		s->drain_left -= len < s->drain_left ? len : s->drain_left;
		if (s->drain_left == 0) {
			s->raw_phase = RAW_CLOSING;
			lws_callback_on_writable(wsi);
		}
		return;
	}
	while (s->raw_phase == RAW_HEAD || s->raw_phase == RAW_BODY) {
		if (s->raw_phase == RAW_BODY) {
			size_t want = s->body_cap - 1 - s->body_len, n;

			/* First what is buffered, then the new bytes. */
			n = s->in_len < want ? s->in_len : want;
			if (n > 0) {
				memcpy(s->body + s->body_len, s->in, n);
				s->body_len += n;
				raw_consume(s, n);
				want -= n;
			}
			n = len < want ? len : want;
			if (n > 0) {
				memcpy(s->body + s->body_len, data, n);
				s->body_len += n;
				data += n;
				len -= n;
				want -= n;
			}
			if (want > 0)
				return;
			s->body[s->body_len] = '\0';
			s->raw_phase = RAW_RUN;
			s->raw_continue = false;
			lws_rx_flow_control(wsi, 0);
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
			http_start_job(w, s);
			break;
		}
		/* RAW_HEAD */
		if (len > 0) {
			size_t room = H1_HEAD_MAX - s->in_len;
			size_t n = len < room ? len : room;

			raw_stash(s, data, n);
			data += n;
			len -= n;
		}
		if (s->in_len == 0)
			return;
		if (s->job == NULL) {
			s->job = http_job_new(w, wsi, NULL);
			if (s->job == NULL) {
				s->raw_phase = RAW_CLOSING;
				lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
						LWS_TO_KILL_ASYNC);
				return;
			}
			lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
					RAW_HEAD_TIMEOUT_S);
		}
		switch (h1_parse(s->in, s->in_len, &req, &err)) {
		case H1_INCOMPLETE:
			/* h1_parse refuses a full buffer itself (431). */
			return;
		case H1_ERROR:
			raw_refuse(wsi, s, err.status, err.slug, err.detail);
			return;
		case H1_OK:
			raw_consume(s, req.head_len);
			raw_begin(wsi, w, s, &req);
			h1_request_clear(&req);
			break;
		}
	}
	if (s->raw_phase == RAW_STREAM)
		goto again;
	/* Running: later bytes wait (reading is paused; these are what
	 * was already read). */
	raw_stash(s, data, len);
}

/* RAW_WRITEABLE: 100 Continue, or the answer in chunks, then the next
 * request on a kept-alive connection. Returns -1 to close. */
/*
 * lws_write() may keep the tail of an answer (TLS could not take it all);
 * closing then would cut the answer short. Close once lws has sent it.
 */
static int
raw_close_when_flushed(struct lws *wsi)
{
	if (!lws_partial_buffered(wsi))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* RAW_STREAM, the job still reading: 100 Continue once it asked for
 * the body, and reading again once it drained the ring. */
static int
raw_stream_writeable(struct lws *wsi, struct http_session *s)
{
	bool resume = false, cont = false;

	if (s->stream == NULL)
		return 0;
	pthread_mutex_lock(&s->stream->mu);
	if (s->stream_paused && s->stream->len < STREAM_HIGH)
		resume = true;
	if (s->stream_continue && s->stream->reading)
		cont = true;
	pthread_mutex_unlock(&s->stream->mu);
	if (cont) {
		static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
		unsigned char buf[LWS_PRE + sizeof(text)];

		s->stream_continue = false;
		memcpy(buf + LWS_PRE, text, sizeof(text) - 1);
		if (lws_write(wsi, buf + LWS_PRE, sizeof(text) - 1,
			      LWS_WRITE_RAW) != (int)(sizeof(text) - 1))
			return -1;
	}
	if (resume) {
		s->stream_paused = false;
		lws_rx_flow_control(wsi, 1);
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
				RAW_BODY_TIMEOUT_S);
	}
	if (s->stream_paused || s->stream_continue)
		raw_stream_arm(s);
	return 0;
}

static int
raw_writeable(struct lws *wsi, struct worker *w, struct http_session *s)
{
	size_t n;

	if (s->raw_phase == RAW_BODY && s->raw_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		unsigned char buf[LWS_PRE + sizeof(cont)];

		s->raw_continue = false;
		memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
		return lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1,
				 LWS_WRITE_RAW) == (int)(sizeof(cont) - 1)
			       ? 0
			       : -1;
	}
	if (s->raw_phase == RAW_CLOSING)
		return raw_close_when_flushed(wsi);
	if (s->raw_phase == RAW_DRAIN)
		return 0;
	if (s->raw_phase == RAW_STREAM) {
		if (s->job != NULL && !s->job->in_pool) {
			/* The handler is done: answer; what it did not read
			 * is dropped while the answer goes out. */
			s->raw_phase = RAW_RUN;
			lws_rx_flow_control(wsi, 0);
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		} else {
			return raw_stream_writeable(wsi, s);
		}
	}
	if (s->raw_phase != RAW_RUN || s->job == NULL || s->job->in_pool)
		return 0;
	if (s->out == NULL && raw_prepare(s) != 0)
		return -1;
	n = s->out_len - s->out_sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	if (n > 0) {
		unsigned char *p =
			(unsigned char *)s->out + LWS_PRE + s->out_sent;

		/* LWS_PRE bytes before p are ours: the head room, or bytes
		 * already sent. */
		if (lws_write(wsi, p, n, LWS_WRITE_RAW) != (int)n)
			return -1;
		s->out_sent += n;
	}
	if (s->out_sent < s->out_len) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	http_log_request(s->job);
	raw_out_free(s);
	if (s->stream != NULL) {
		struct http_stream *st = s->stream;

		s->stream = NULL;
		http_streams_active--;
		if (!st->consumed && st->received < st->length &&
		    s->raw_phase == RAW_RUN) {
			s->drain_left = st->length - st->received;
			http_job_free(s->job);
			s->job = NULL;
			s->raw_phase = RAW_DRAIN;
			lws_rx_flow_control(wsi, 1);
			lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
					STREAM_DRAIN_S);
			return 0;
		}
	}
	http_job_free(s->job);
	s->job = NULL;
	http_body_free(s->body, s->body_cap);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	if (s->close_after) {
		s->raw_phase = RAW_CLOSING;
		return raw_close_when_flushed(wsi);
	}
	/* Kept alive: the next request, maybe already buffered. */
	s->answered = false;
	s->started = false;
	s->raw_phase = RAW_HEAD;
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE,
			RAW_IDLE_TIMEOUT_S);
	lws_rx_flow_control(wsi, 1);
	raw_feed(wsi, w, s, NULL, 0);
	return 0;
}

static void
raw_close(struct http_session *s)
{
	if (s->sul_armed)
		lws_sul_cancel(&s->sul);
	s->sul_armed = false;
	if (s->stream != NULL) {
		http_stream_close(s->stream); /* wakes a waiting read */
		http_streams_active--;
	}
	s->stream = NULL;
	if (s->job != NULL) {
		if (s->job->in_pool)
			s->job->wsi = NULL; /* freed when it comes back */
		else
			http_job_free(s->job);
		s->job = NULL;
	}
	http_body_free(s->body, s->body_cap);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	raw_out_free(s);
	if (s->in != NULL) {
		OPENSSL_cleanse(s->in, H1_HEAD_MAX);
		free(s->in);
	}
	s->in = NULL;
	s->in_len = 0;
}

static int
http_raw(struct lws *wsi, struct worker *w, enum lws_callback_reasons reason,
	 struct http_session *s, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		w->api_open++;
		s->counted = true;
		s->raw_phase = RAW_HEAD;
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE,
				RAW_IDLE_TIMEOUT_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		/* Never anything in the clear: lws hands a plaintext client
		 * on the TLS port to the raw protocol when the vhost falls
		 * back to raw. */
		if (lws_get_ssl(wsi) == NULL)
			return -1;
		if (s->raw_phase == RAW_CLOSING)
			return 0;
		raw_feed(wsi, w, s, in, len);
		if (in != NULL && len > 0)
			OPENSSL_cleanse(in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (lws_get_ssl(wsi) == NULL)
			return -1;
		return raw_writeable(wsi, w, s);
	case LWS_CALLBACK_RAW_CLOSE:
		if (s->counted && w->api_open > 0)
			w->api_open--;
		s->counted = false;
		raw_close(s);
		return 0;
	default:
		return 0;
	}
}

int
http_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		  void *in, size_t len)
{
	struct http_session *s = user;
	struct worker *w = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
	case LWS_CALLBACK_RAW_RX:
	case LWS_CALLBACK_RAW_WRITEABLE:
	case LWS_CALLBACK_RAW_CLOSE:
		if (s == NULL)
			return -1;
		return http_raw(wsi, w, reason, s, in, len);
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_ESTABLISHED:
		/* lws's HTTP or websocket roles never serve this listener
		 * (connections are adopted raw); should one get here, close. */
		return -1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
