/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device websocket sessions inside a net worker. Input is untrusted: the
 * device id comes from the verified client certificate, never from a
 * message; frames are bounded (64 KiB: larger closes with 1009); malformed
 * or unknown messages get an `error` answer and are counted. Database work
 * (presence, inventory) runs on job threads; a listener thread LISTENs for
 * `fleet_devices` and reloads the revoked-serial set, after which the loop
 * closes every session whose certificate is revoked. Level-triggered: a
 * lost notification is made up at the next reconnect of the listener.
 */
#include "channel/channel.h"
#include "channel/channel_int.h"

#include "buf.h"
#include "channel/revoked.h"
#include "clock.h"
#include "config.h"
#include "db/db.h"
#include "db/presence.h"
#include "http/jobs.h"
#include "api/api.h"
#include "log.h"
#include "pki.h"
#include "secret.h"

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHANNEL_FRAME_MAX (64 * 1024)
#define CHANNEL_ERRORS_MAX 100

struct channel_msg {
	struct channel_msg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE + len */
};

struct channel_session {
	struct channel_session *prev, *next; /* the worker's sessions */
	struct lws *wsi;
	uint64_t id;
	char device_id[SECRET_UUID_LEN];
	char serial[PKI_SERIAL_HEX_MAX];
	char peer[64];
	char *rx;
	size_t rx_len;
	bool rx_too_big;
	struct channel_msg *out_head, *out_tail;
	unsigned errors;
	int close_code; /* nonzero: close at the next writeable */
	const char *close_reason;
	bool offline; /* the session row's removal is submitted */
	uint64_t last_rx_ms; /* any frame or pong from the peer */
	uint64_t last_ping_ms;
	bool ping_due;
};

struct channel {
	struct lws_context *context;
	struct job_pool *jobs;
	const struct fleetd_config *cfg;
	int slot;
	char worker_id[128];
	struct revoked_set *revoked;
	struct channel_session *sessions;
	uint64_t next_session_id;
	lws_retry_bo_t idle_policy;
	lws_sorted_usec_list_t tick;
	bool tick_in_flight;
	atomic_bool sweep_wanted;
	atomic_bool stopping;
	pthread_t listener;
	bool listener_started;
	unsigned long bad_messages;
};

/* ---- jobs ------------------------------------------------------------ */

enum channel_job_kind {
	JOB_OPEN,
	JOB_CLOSE,
	JOB_WORK, /* a message handler's work (channel_submit_work) */
	JOB_TICK,
};

struct channel_job {
	struct job job;
	struct channel *ch;
	enum channel_job_kind kind;
	uint64_t session_id;
	char device_id[SECRET_UUID_LEN];
	char serial[PKI_SERIAL_HEX_MAX];
	char peer[64];
	struct channel_work work; /* JOB_WORK */
	char *live; /* JOB_TICK: uuid[] literal of the worker's sessions */
	bool ok;
	bool allowed;
};

static struct channel_session *
channel_find(struct channel *ch, uint64_t session_id)
{
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->id == session_id)
			return s;
	}
	return NULL;
}

static void channel_submit(struct channel *ch, enum channel_job_kind kind,
			   const struct channel_session *s);

/* Whether another session of device_id, not on its way out, lives here. */
static bool
channel_device_live(struct channel *ch, const char *device_id,
		    const struct channel_session *except)
{
	for (struct channel_session *o = ch->sessions; o != NULL; o = o->next) {
		if (o != except && !o->offline && o->close_code == 0 &&
		    strcmp(o->device_id, device_id) == 0)
			return true;
	}
	return false;
}

/*
 * The device goes offline the moment the session is over for us, not when
 * lws frees the connection: a TLS close to a peer that does not answer can
 * linger for seconds. The row is left alone while a newer session of the
 * device on this worker owns it.
 */
static void
session_offline(struct channel *ch, struct channel_session *s)
{
	if (s->offline || s->device_id[0] == '\0')
		return;
	s->offline = true;
	if (!atomic_load(&ch->stopping) &&
	    !channel_device_live(ch, s->device_id, s))
		channel_submit(ch, JOB_CLOSE, s);
}

static void
session_close(struct channel *ch, struct channel_session *s, int code,
	      const char *reason)
{
	session_offline(ch, s);
	if (s->close_code != 0)
		return;
	s->close_code = code;
	s->close_reason = reason;
	lws_callback_on_writable(s->wsi);
}

static void
channel_job_run(struct job *j, void *state)
{
	struct channel_job *job = (struct channel_job *)j;
	struct api_ctx *ctx = state;
	PGconn *conn;
	struct channel *ch = job->ch;

	if (job->kind == JOB_WORK) {
		job->work.run(ctx->store, job->device_id, job->work.arg);
		return;
	}
	conn = db_conn(ctx->db);
	if (conn == NULL)
		return;
	switch (job->kind) {
	case JOB_OPEN:
		job->ok = db_presence_open(conn, job->device_id, ch->worker_id,
					   job->serial, job->peer,
					   &job->allowed) == 0;
		break;
	case JOB_CLOSE:
		job->ok = db_presence_close(conn, job->device_id,
					    ch->worker_id) == 0;
		break;
	case JOB_WORK:
		break;
	case JOB_TICK:
		job->ok = db_presence_tick(conn, ch->worker_id, job->live,
					   ch->cfg->heartbeat_timeout) == 0;
		break;
	}
}

static void
channel_job_done(struct job *j)
{
	struct channel_job *job = (struct channel_job *)j;
	struct channel_session *s;

	if (job->kind == JOB_TICK)
		job->ch->tick_in_flight = false;
	if (job->kind == JOB_WORK) {
		s = channel_find(job->ch, job->session_id);
		if (s != NULL && (s->offline || s->close_code != 0))
			s = NULL;
		job->work.done(job->ch, s, job->work.arg);
		free(job);
		return;
	}
	if (job->kind == JOB_OPEN) {
		s = channel_find(job->ch, job->session_id);
		if (s != NULL && !job->ok)
			session_close(job->ch, s,
				      LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				      "database unavailable");
		else if (s != NULL && !job->allowed) {
			log_write(LOG_LEVEL_INFO, job->device_id,
				  "session refused: device not active or "
				  "certificate revoked");
			session_close(job->ch, s,
				      LWS_CLOSE_STATUS_POLICY_VIOLATION,
				      "device not active");
		} else if (job->ok && job->allowed &&
			   (s == NULL || s->offline) &&
			   !atomic_load(&job->ch->stopping) &&
			   !channel_device_live(job->ch, job->device_id,
						NULL)) {
			/* The session ended while its row was being written
			 * (a close job may have run first on another
			 * thread): take the row away again, after it. */
			struct channel_session gone;

			memset(&gone, 0, sizeof(gone));
			memcpy(gone.device_id, job->device_id,
			       sizeof(gone.device_id));
			channel_submit(job->ch, JOB_CLOSE, &gone);
		}
	}
	free(job->live);
	free(job);
}

static struct channel_job *
channel_job_new(struct channel *ch, enum channel_job_kind kind,
		const struct channel_session *s)
{
	struct channel_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->job.run = channel_job_run;
	job->job.done = channel_job_done;
	job->ch = ch;
	job->kind = kind;
	if (s != NULL) {
		job->session_id = s->id;
		memcpy(job->device_id, s->device_id, sizeof(job->device_id));
		memcpy(job->serial, s->serial, sizeof(job->serial));
		memcpy(job->peer, s->peer, sizeof(job->peer));
	}
	return job;
}

static void
channel_submit(struct channel *ch, enum channel_job_kind kind,
	       const struct channel_session *s)
{
	struct channel_job *job = channel_job_new(ch, kind, s);

	if (job == NULL)
		return;
	if (!job_pool_submit(ch->jobs, &job->job)) {
		log_warn("channel: job queue full; dropped a presence update");
		job->job.done(&job->job);
	}
}

bool
channel_submit_work(struct channel *ch, struct channel_session *s,
		    const struct channel_work *work)
{
	struct channel_job *job = channel_job_new(ch, JOB_WORK, s);

	if (job == NULL)
		return false;
	job->work = *work;
	if (!job_pool_submit(ch->jobs, &job->job)) {
		free(job);
		return false;
	}
	return true;
}

/* ---- outgoing messages ---------------------------------------------- */

void
channel_send(struct channel_session *s, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	struct channel_msg *m;
	size_t len;

	json_decref(msg);
	if (text == NULL)
		return;
	len = strlen(text);
	m = malloc(sizeof(*m) + LWS_PRE + len);
	if (m == NULL) {
		free(text);
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data + LWS_PRE, text, len);
	free(text);
	if (s->out_tail != NULL)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	lws_callback_on_writable(s->wsi);
}

void
channel_send_error(struct channel *ch, struct channel_session *s,
		   const char *code, const char *message)
{
	ch->bad_messages++;
	s->errors++;
	log_write(LOG_LEVEL_INFO, s->device_id, "channel: %s: %s", code,
		  message);
	if (s->errors > CHANNEL_ERRORS_MAX) {
		session_close(ch, s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			      "too many bad messages");
		return;
	}
	channel_send(s, json_pack("{s:s, s:s, s:s}", "type", "error", "code",
				  code, "message", message));
}

const char *
channel_session_device_id(const struct channel_session *s)
{
	return s->device_id;
}

long
channel_heartbeat_interval(const struct channel *ch)
{
	return ch->cfg->heartbeat_interval;
}

/* ---- incoming frames ------------------------------------------------ */

static int
session_receive(struct channel *ch, struct channel_session *s, const void *in,
		size_t len)
{
	if (lws_frame_is_binary(s->wsi)) {
		s->rx_too_big = false;
		s->rx_len = 0;
		channel_send_error(ch, s, "malformed",
				   "binary frames are not used");
		return 0;
	}
	if (len > CHANNEL_FRAME_MAX - s->rx_len) {
		log_write(LOG_LEVEL_INFO, s->device_id,
			  "channel: frame over %d bytes; closing",
			  CHANNEL_FRAME_MAX);
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too big", 15);
		return -1;
	}
	if (s->rx == NULL) {
		s->rx = malloc(CHANNEL_FRAME_MAX);
		if (s->rx == NULL)
			return -1;
	}
	memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (!lws_is_final_fragment(s->wsi) ||
	    lws_remaining_packet_payload(s->wsi) > 0)
		return 0;
	channel_dispatch(ch, s, s->rx, s->rx_len);
	s->rx_len = 0;
	/* Idle sessions keep no receive buffer. */
	free(s->rx);
	s->rx = NULL;
	return 0;
}

/* ---- session life --------------------------------------------------- */

/* Reads the device id (CN) and serial of the verified peer certificate. */
static int
session_identity(struct channel_session *s)
{
	SSL *ssl = lws_get_ssl(s->wsi);
	X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	struct pki_error err;
	char cn[64];

	if (peer == NULL)
		return -1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
				      NID_commonName, cn, sizeof(cn)) <= 0 ||
	    !secret_is_uuid(cn))
		return -1;
	if (pki_cert_serial_hex(peer, s->serial, sizeof(s->serial), &err) !=
	    PKI_OK)
		return -1;
	memcpy(s->device_id, cn, sizeof(s->device_id));
	return 0;
}

static void
session_established(struct channel *ch, struct channel_session *s,
		    struct lws *wsi)
{
	memset(s, 0, sizeof(*s));
	s->wsi = wsi;
	s->id = ++ch->next_session_id;
	s->last_rx_ms = clock_mono_ms();
	s->last_ping_ms = s->last_rx_ms;
	lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
	s->next = ch->sessions;
	if (ch->sessions != NULL)
		ch->sessions->prev = s;
	ch->sessions = s;
	if (session_identity(s) != 0) {
		log_warn("channel: peer %s: certificate without a device id",
			 s->peer);
		session_close(ch, s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			      "certificate names no device");
		return;
	}
	/* A device has one session here: a new one replaces the old. */
	for (struct channel_session *o = ch->sessions; o != NULL; o = o->next) {
		if (o != s && strcmp(o->device_id, s->device_id) == 0)
			session_close(ch, o, LWS_CLOSE_STATUS_NORMAL,
				      "replaced by a new session");
	}
	log_write(LOG_LEVEL_INFO, s->device_id,
		  "channel: connected from %s (certificate %s)", s->peer,
		  s->serial);
	channel_submit(ch, JOB_OPEN, s);
}

static void
session_closed(struct channel *ch, struct channel_session *s)
{
	struct channel_msg *m = s->out_head;

	if (s->wsi == NULL)
		return; /* never established */
	if (s->device_id[0] != '\0')
		log_write(LOG_LEVEL_INFO, s->device_id, "channel: closed");
	session_offline(ch, s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ch->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	while (m != NULL) {
		struct channel_msg *next = m->next;

		free(m);
		m = next;
	}
	free(s->rx);
	memset(s, 0, sizeof(*s));
}

static int
session_writeable(struct channel_session *s)
{
	struct channel_msg *m = s->out_head;

	if (s->close_code != 0) {
		lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
				 (unsigned char *)(uintptr_t)s->close_reason,
				 strlen(s->close_reason));
		return -1;
	}
	if (s->ping_due) {
		/* lws's own pings are empty, and lws does not pass empty pongs
		 * up; ours carry a payload so the answer is seen here. */
		unsigned char ping[LWS_PRE + 8];

		s->ping_due = false;
		memcpy(ping + LWS_PRE, "fleet.v1", 8);
		if (lws_write(s->wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 8)
			return -1;
		if (m != NULL)
			lws_callback_on_writable(s->wsi);
		return 0;
	}
	if (m == NULL)
		return 0;
	if (lws_write(s->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) <
	    (int)m->len)
		return -1;
	s->out_head = m->next;
	if (s->out_head == NULL)
		s->out_tail = NULL;
	free(m);
	if (s->out_head != NULL)
		lws_callback_on_writable(s->wsi);
	return 0;
}

/* ---- TLS ------------------------------------------------------------ */

static int channel_ssl_index = -1;

/* In the handshake: refuse certificates whose serial is revoked. */
static int
channel_verify(X509_STORE_CTX *store, SSL *ssl, int preverify_ok)
{
	struct channel *ch;
	struct pki_error err;
	char serial[PKI_SERIAL_HEX_MAX];
	X509 *cert;

	if (!preverify_ok)
		return 1;
	if (X509_STORE_CTX_get_error_depth(store) != 0)
		return 0;
	ch = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), channel_ssl_index);
	cert = X509_STORE_CTX_get_current_cert(store);
	if (ch == NULL || cert == NULL)
		return 1;
	/* Fail closed until the worker knows which serials are revoked. */
	if (!revoked_set_loaded(ch->revoked)) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
		log_info("channel: revocations not loaded yet; refusing a "
			 "handshake");
		return 1;
	}
	if (pki_cert_serial_hex(cert, serial, sizeof(serial), &err) != PKI_OK ||
	    revoked_set_contains(ch->revoked, serial)) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
		log_info("channel: refused revoked certificate %s", serial);
		return 1;
	}
	return 0;
}

/*
 * lws's own SNI callback would move a connection to the vhost it picks by
 * name or port, i.e. to the api listener's TLS context (no client
 * certificates). The device listener serves one identity for any name.
 */
static int
channel_servername(SSL *ssl, int *alert, void *arg)
{
	(void)ssl;
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

static void
channel_ssl_setup(SSL_CTX *ctx, struct channel *ch)
{
	SSL_CTX_set_tlsext_servername_callback(ctx, channel_servername);
	if (channel_ssl_index < 0)
		channel_ssl_index =
			SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	SSL_CTX_set_ex_data(ctx, channel_ssl_index, ch);
	/* Idle connections should not hold TLS record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

/* ---- the protocol callback ------------------------------------------- */

/*
 * The channel a connection belongs to: the one whose SSL_CTX verified its
 * client certificate. lws may move an upgraded connection to another vhost
 * (it picks vhosts by port, and adopted sockets share one), so the TLS
 * context is the one reliable mark of "came in on the device listener";
 * an upgrade on the api listener has none and is refused.
 */
static struct channel *
channel_of(struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	if (ssl == NULL || channel_ssl_index < 0)
		return NULL;
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), channel_ssl_index);
}

static bool
channel_path_ok(struct lws *wsi)
{
	char uri[64];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return false;
	return strcmp(uri, "/agent/v1") == 0;
}

int
channel_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		 void *in, size_t len)
{
	struct channel_session *s = user;
	struct channel *ch = NULL;

	if (reason == LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION)
		return channel_verify(user, in, (int)len);
	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS) {
		channel_ssl_setup(user, lws_vhost_user(in));
		return 0;
	}
	if (wsi != NULL)
		ch = channel_of(wsi);
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return channel_path_ok(wsi) && ch != NULL &&
				       !atomic_load(&ch->stopping)
			       ? 0
			       : -1;
	case LWS_CALLBACK_ESTABLISHED:
		if (ch == NULL)
			return -1;
		session_established(ch, s, wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (ch == NULL || s->wsi == NULL)
			return -1;
		s->last_rx_ms = clock_mono_ms();
		if (s->close_code != 0)
			return 0;
		return session_receive(ch, s, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s->wsi != NULL)
			s->last_rx_ms = clock_mono_ms();
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return session_writeable(s);
	case LWS_CALLBACK_CLOSED:
		if (ch != NULL)
			session_closed(ch, s);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

size_t
channel_session_size(void)
{
	return sizeof(struct channel_session);
}

const lws_retry_bo_t *
channel_idle_policy(struct channel *ch)
{
	return &ch->idle_policy;
}

/* ---- revocations and presence ticks ---------------------------------- */

void
channel_on_wake(struct channel *ch)
{
	if (ch == NULL || !atomic_exchange(&ch->sweep_wanted, false))
		return;
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->serial[0] != '\0' &&
		    revoked_set_contains(ch->revoked, s->serial)) {
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: certificate %s revoked; closing",
				  s->serial);
			session_close(ch, s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				      "certificate revoked");
		}
	}
}

/*
 * Once per half heartbeat interval: ping every heartbeat_interval; a peer
 * silent for heartbeat_timeout is offline at once and its connection
 * killed (lws's own idle hang-up would wait seconds more for the peer to
 * close, and only then say CLOSED). The job refreshes exactly the rows of
 * the sessions this loop holds, so a row whose session is gone (a lost or
 * reordered close) stops counting as online within heartbeat_timeout.
 */
static void
channel_tick(lws_sorted_usec_list_t *sul)
{
	struct channel *ch = lws_container_of(sul, struct channel, tick);
	uint64_t now = clock_mono_ms();
	uint64_t interval = (uint64_t)ch->cfg->heartbeat_interval * 1000u;
	uint64_t timeout = (uint64_t)ch->cfg->heartbeat_timeout * 1000u;
	struct channel_job *job;
	struct buf live;
	bool first = true;
	int rc;

	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->offline || s->close_code != 0)
			continue;
		if (now - s->last_rx_ms >= timeout) {
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: silent for %llu ms; dropping",
				  (unsigned long long)(now - s->last_rx_ms));
			session_offline(ch, s);
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
		} else if (now - s->last_ping_ms >= interval) {
			s->last_ping_ms = now;
			s->ping_due = true;
			lws_callback_on_writable(s->wsi);
		}
	}
	if (!ch->tick_in_flight && !atomic_load(&ch->stopping)) {
		buf_init(&live, 64u * 1024 * 1024);
		rc = buf_append(&live, "{", 1);

		for (struct channel_session *s = ch->sessions;
		     s != NULL && rc == 0; s = s->next) {
			if (s->offline || s->device_id[0] == '\0')
				continue;
			rc = buf_printf(&live, "%s%s", first ? "" : ",",
					s->device_id);
			first = false;
		}
		if (rc == 0)
			rc = buf_append(&live, "}", 1);
		job = calloc(1, sizeof(*job));
		if (rc == 0 && job != NULL) {
			job->job.run = channel_job_run;
			job->job.done = channel_job_done;
			job->ch = ch;
			job->kind = JOB_TICK;
			job->live = buf_detach(&live, NULL);
			ch->tick_in_flight = true;
			if (!job_pool_submit(ch->jobs, &job->job)) {
				log_warn("channel: job queue full; presence "
					 "tick skipped");
				job->job.done(&job->job);
			}
		} else {
			free(job);
			log_warn("channel: out of memory; presence tick "
				 "skipped");
		}
		buf_free(&live);
	}
	lws_sul_schedule(ch->context, 0, &ch->tick, channel_tick,
			 ch->cfg->heartbeat_interval * LWS_US_PER_SEC / 2);
}

static int
channel_reload(struct channel *ch, PGconn *conn)
{
	char **serials = NULL;
	size_t n = 0;

	if (db_revoked_serials(conn, &serials, &n) != 0)
		return -1;
	revoked_set_replace(ch->revoked, serials, n);
	atomic_store(&ch->sweep_wanted, true);
	lws_cancel_service(ch->context);
	return 0;
}

/* The LISTEN thread: one connection per worker, reloads on every change. */
static void *
channel_listener(void *arg)
{
	struct channel *ch = arg;
	struct db *db = db_new(ch->cfg->database);
	uint32_t delay_ms = 100;

	while (db != NULL && !atomic_load(&ch->stopping)) {
		PGconn *conn = db_conn(db);
		struct pollfd pfd;
		PGnotify *note;
		bool changed = false;

		if (conn == NULL ||
		    db_exec(conn, "LISTEN fleet_devices") != 0 ||
		    channel_reload(ch, conn) != 0) {
			clock_sleep_ms(delay_ms);
			delay_ms = delay_ms < 5000 ? delay_ms * 2 : 5000;
			continue;
		}
		delay_ms = 100;
		while (!atomic_load(&ch->stopping) &&
		       PQstatus(conn) == CONNECTION_OK) {
			pfd.fd = PQsocket(conn);
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 500) <= 0)
				continue;
			if (PQconsumeInput(conn) == 0)
				break;
			while ((note = PQnotifies(conn)) != NULL) {
				changed = true;
				PQfreemem(note);
			}
			if (changed && channel_reload(ch, conn) != 0)
				break;
			changed = false;
		}
	}
	db_free(db);
	return NULL;
}

static int
channel_register(struct channel *ch)
{
	char host[64] = "localhost";
	PGconn *conn;
	int rc;

	gethostname(host, sizeof(host) - 1);
	snprintf(ch->worker_id, sizeof(ch->worker_id), "%s:%d:%ld", host,
		 ch->slot, (long)getpid());
	conn = PQconnectdb(ch->cfg->database);
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("channel: database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	rc = db_presence_register(conn, ch->worker_id, host, (long)getpid(),
				  ch->slot);
	PQfinish(conn);
	return rc;
}

struct channel *
channel_new(struct lws_context *context, struct job_pool *jobs,
	    const struct fleetd_config *cfg, int slot)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return NULL;
	ch->context = context;
	ch->jobs = jobs;
	ch->cfg = cfg;
	ch->slot = slot;
	ch->idle_policy.secs_since_valid_ping =
		(uint16_t)cfg->heartbeat_interval;
	ch->idle_policy.secs_since_valid_hangup =
		(uint16_t)cfg->heartbeat_timeout;
	ch->revoked = revoked_set_new();
	if (ch->revoked == NULL || channel_register(ch) != 0)
		goto fail;
	if (pthread_create(&ch->listener, NULL, channel_listener, ch) != 0)
		goto fail;
	ch->listener_started = true;
	lws_sul_schedule(context, 0, &ch->tick, channel_tick,
			 cfg->heartbeat_interval * LWS_US_PER_SEC / 2);
	return ch;
fail:
	log_error("channel: cannot start the device channel");
	channel_free(ch);
	return NULL;
}

void
channel_stop(struct channel *ch)
{
	if (ch == NULL)
		return;
	atomic_store(&ch->stopping, true);
	if (ch->listener_started)
		pthread_join(ch->listener, NULL);
	ch->listener_started = false;
}

void
channel_free(struct channel *ch)
{
	PGconn *conn;

	if (ch == NULL)
		return;
	channel_stop(ch);
	/* A clean stop takes this worker's sessions offline at once. */
	if (ch->worker_id[0] != '\0') {
		conn = PQconnectdb(ch->cfg->database);
		if (PQstatus(conn) == CONNECTION_OK)
			(void)db_presence_unregister(conn, ch->worker_id);
		PQfinish(conn);
	}
	revoked_set_free(ch->revoked);
	free(ch);
}
