/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device websocket sessions inside a net worker. Input is untrusted: the
 * device id comes from a client certificate that a device issuing CA (not
 * the root) signed, never from a message; nothing a session sends is read
 * until its identity and revocation checks (JOB_OPEN) have passed; frames
 * are bounded (64 KiB: larger closes with 1009), messages are rate-limited
 * per session (a token bucket; a persistent flooder is closed with 1008)
 * and so is each session's output queue (1008 when a peer does not read);
 * malformed or unknown messages get an `error` answer and are counted.
 * Storage work runs on the channel's own job threads through the store
 * port (core/store_presence.h); presence ticks have a thread of their own,
 * so no device can hold up the worker's heartbeat. A listener thread
 * learns revocations and reloads the revoked-serial set, after which the
 * loop closes every session whose certificate is revoked. Level-triggered:
 * a lost notification is made up at the next reconnect of the listener.
 * docs/internals/channel.md has the rules and the reasons.
 */
#include "channel/channel.h"
#include "channel/channel_int.h"
#include "channel/config_delivery.h"

#include "channel/cert.h"
#include "channel/download.h"
#include "channel/revoked.h"
#include "channel/tls_tickets.h"
#include "channel/tls_trim.h"
#include "channel/update.h"
#include "channel/ws.h"
#include "clock.h"
#include "config.h"
#include "core/metrics.h"
#include "core/store_certificates.h"
#include "core/store_presence.h"
#include "http/jobs.h"
#include "log.h"
#include "pki.h"
#include "secret.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHANNEL_FRAME_MAX (64 * 1024)
#define CHANNEL_ERRORS_MAX 100
/* Per-session message rate: a bucket of RATE_BURST messages refilled at
 * RATE_PER_S; a message that finds it empty is refused, and a session
 * refused RATE_REFUSED_MAX times since its bucket was last full is closed
 * (1008). Generous for an agent (a hello, then reports), cheap to enforce
 * (checked before the frame is parsed). */
#define CHANNEL_RATE_PER_S 50
#define CHANNEL_RATE_BURST 200
#define CHANNEL_RATE_REFUSED_MAX 100
/* What may wait for a peer to read: past either bound the session closes
 * with 1008 (a config document is at most 256 KiB). */
#define CHANNEL_OUT_MAX_BYTES (1024 * 1024)
#define CHANNEL_OUT_MAX_MSGS 256
/* A session being closed whose peer does not take the close frame is cut
 * after this long. */
#define CHANNEL_CLOSE_GRACE_S 3
/* Bytes a session may have received but not processed: one whole frame
 * and a TLS record more (frames are held until the session is checked). */
#define CHANNEL_IN_MAX (CHANNEL_FRAME_MAX + 14 + 16384)
/* What a closing peer may still send before it is not read any more. */
#define CHANNEL_DISCARD_MAX (64 * 1024)
/* From TCP accept to a checked upgrade request, at most. */
#define CHANNEL_UPGRADE_TIMEOUT_MS 10000
/* The close code of a session replaced by a newer one of its device. */
#define CHANNEL_CLOSE_REPLACED 4000
/* The refused-serial set is reloaded at most this often (cert.c). */
#define CHANNEL_RELOAD_MIN_MS 100
/* Between full loads of the set (which also drop certificates that have
 * expired), deltas: what was refused after the CRL generation of the last
 * load (exact, store_refused_serials). */
#define CHANNEL_REFUSED_FULL_MS (60u * 1000u)
/* RFC 6455 1013 "try again later" (not in lws 4.1's enum). */
#define CHANNEL_CLOSE_TRY_AGAIN 1013

struct channel_msg {
	struct channel_msg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE + len */
};

struct channel_session {
	struct channel_session *prev, *next; /* the worker's sessions */
	/* Chains of the worker's two session hashes (sessions_by_*), from
	 * session_established to session_closed. */
	struct channel_session *next_by_id, *next_by_device;
	bool hashed;
	struct channel *ch;
	struct lws *wsi;
	uint64_t id;
	char device_id[SECRET_UUID_LEN];
	char serial[PKI_SERIAL_HEX_MAX];
	char key_id[PKI_KEY_ID_LEN]; /* of the certificate's public key */
	char peer[64];
	unsigned char *in; /* received, not yet parsed (bounded) */
	size_t in_len;
	char *rx; /* the message being assembled from its frames */
	size_t rx_len;
	uint8_t rx_op; /* its opcode, 0 when none */
	uint64_t adopted_ms;
	bool upgraded; /* the 101 is queued: frames from now on */
	bool answer_pending; /* the HTTP answer is queued, not written yet */
	bool hangup; /* close the connection once the queue is written */
	bool close_sent;
	size_t discarded; /* bytes ignored since the close began */
	bool pong_due;
	unsigned char pong[125];
	size_t pong_len;
	struct channel_msg *out_head, *out_tail;
	size_t out_bytes, out_msgs;
	bool opened; /* JOB_OPEN allowed it: frames are read from now on */
	double tokens; /* rate limit bucket */
	uint64_t tokens_ms;
	unsigned refused;
	unsigned errors;
	int close_code; /* nonzero: close at the next writeable */
	const char *close_reason;
	bool offline; /* the session row's removal is submitted */
	uint64_t last_rx_ms; /* any frame or pong from the peer */
	uint64_t last_ping_ms;
	bool ping_due;
	int64_t config_sent; /* config.c: generation sent on this session */
	char rotation_sent[SECRET_UUID_LEN]; /* cert.c */
	struct download *dl; /* an artifact request took the connection */
};

struct channel {
	struct lws_context *context;
	struct job_pool *jobs; /* channel work; thread state: struct store */
	struct job_pool *presence_jobs; /* ticks only */
	struct store *store; /* the loop thread's: register, unregister */
	struct store *listener_store;
	const struct fleetd_config *cfg;
	int slot;
	char worker_id[128];
	char host[64];
	long pid;
	uint64_t tick_ok_since_ms; /* start of the run of good ticks, or 0 */
	struct revoked_set *revoked;
	struct tls_tickets *tickets; /* session resumption (tls_tickets.c) */
	struct tls_trim *trim; /* idle sessions without their handshake's */
	struct channel_session *sessions;
	/*
	 * The established sessions hashed by session id (jobs coming back)
	 * and by device id (a device's other sessions, answers to a batch):
	 * a lookup per job or report costs O(1), not a walk of every
	 * connection of the worker (3 % of a worker's CPU in a rotation at
	 * 1,000 devices; O(N^2) over a reconnect storm). Both tables have
	 * hash_size buckets (a power of two), doubled when the sessions
	 * outnumber them.
	 */
	struct channel_session **by_id, **by_device;
	size_t hash_size, hashed;
	uint64_t next_session_id;
	lws_retry_bo_t idle_policy;
	lws_sorted_usec_list_t tick;
	bool tick_in_flight;
	atomic_bool sweep_wanted;
	atomic_bool stopping;
	pthread_t listener;
	bool listener_started;
	unsigned long bad_messages;
	struct channel_cfg *cfg_delivery; /* config.c */
	struct channel_upd *upd_delivery; /* update.c */
	struct signer_client *signer; /* renewals (cert.c) */
	uint64_t reloaded_ms; /* the listener's last reload of the set */
	uint64_t refused_full_ms; /* its last full load (0: none yet) */
	int64_t refused_generation; /* the CRL generation of the last load */
	atomic_bool certs_wanted; /* fleet_certs: look at rotations */
	struct cert_install_batch *cert_installs; /* cert.c's queue */
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
	uint64_t idle_ms; /* JOB_CLOSE: since the device's last frame */
	uint64_t submitted_ms;
	struct channel_work work; /* JOB_WORK */
	struct presence_session *live; /* JOB_TICK: the worker's sessions */
	char (*live_ids)[SECRET_UUID_LEN];
	char (*live_serials)[PKI_SERIAL_HEX_MAX];
	char (*live_peers)[64];
	size_t nlive;
	bool sweep;
	char **lost; /* JOB_TICK result */
	size_t nlost;
	bool ok;
	bool allowed;
};

/* ---- the session hashes ----------------------------------------------- */

#define CHANNEL_HASH_MIN 1024

static size_t
hash_session_id(uint64_t id, size_t size)
{
	/* Fibonacci hashing: ids are consecutive. */
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (size - 1);
}

static size_t
hash_device_id(const char *device_id, size_t size)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)device_id;
	     *p != '\0'; p++)
		h = (h ^ *p) * UINT64_C(0x100000001b3);
	return (size_t)(h ^ (h >> 32)) & (size - 1);
}

static void
hash_link(struct channel *ch, struct channel_session *s)
{
	size_t i = hash_session_id(s->id, ch->hash_size);
	size_t d = hash_device_id(s->device_id, ch->hash_size);

	s->next_by_id = ch->by_id[i];
	ch->by_id[i] = s;
	s->next_by_device = ch->by_device[d];
	ch->by_device[d] = s;
}

/* Doubles both tables (or makes them); false when out of memory. */
static bool
hash_grow(struct channel *ch)
{
	size_t size = ch->hash_size != 0 ? ch->hash_size * 2 : CHANNEL_HASH_MIN;
	struct channel_session **by_id = calloc(size, sizeof(*by_id));
	struct channel_session **by_device = calloc(size, sizeof(*by_device));

	if (by_id == NULL || by_device == NULL) {
		free(by_id);
		free(by_device);
		return false;
	}
	free(ch->by_id);
	free(ch->by_device);
	ch->by_id = by_id;
	ch->by_device = by_device;
	ch->hash_size = size;
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->hashed)
			hash_link(ch, s);
	}
	return true;
}

/* Adds an established session (its id and device id set) to both
 * tables. false when out of memory (the caller closes the session). */
static bool
hash_add(struct channel *ch, struct channel_session *s)
{
	if (ch->hashed >= ch->hash_size && !hash_grow(ch) && ch->hash_size == 0)
		return false;
	s->hashed = true;
	ch->hashed++;
	hash_link(ch, s);
	return true;
}

static void
hash_remove(struct channel *ch, struct channel_session *s)
{
	struct channel_session **pp;

	if (!s->hashed)
		return;
	pp = &ch->by_id[hash_session_id(s->id, ch->hash_size)];
	while (*pp != s)
		pp = &(*pp)->next_by_id;
	*pp = s->next_by_id;
	pp = &ch->by_device[hash_device_id(s->device_id, ch->hash_size)];
	while (*pp != s)
		pp = &(*pp)->next_by_device;
	*pp = s->next_by_device;
	s->hashed = false;
	ch->hashed--;
}

/* The first session of device_id in its bucket; walk on with
 * device_next. */
static struct channel_session *
device_first(struct channel *ch, const char *device_id)
{
	struct channel_session *s;

	if (ch->hash_size == 0)
		return NULL;
	s = ch->by_device[hash_device_id(device_id, ch->hash_size)];
	while (s != NULL && strcmp(s->device_id, device_id) != 0)
		s = s->next_by_device;
	return s;
}

static struct channel_session *
device_next(struct channel_session *s)
{
	const char *device_id = s->device_id;

	s = s->next_by_device;
	while (s != NULL && strcmp(s->device_id, device_id) != 0)
		s = s->next_by_device;
	return s;
}

static struct channel_session *
channel_find(struct channel *ch, uint64_t session_id)
{
	struct channel_session *s;

	if (ch->hash_size == 0)
		return NULL;
	s = ch->by_id[hash_session_id(session_id, ch->hash_size)];
	while (s != NULL && s->id != session_id)
		s = s->next_by_id;
	return s;
}

static void channel_submit(struct channel *ch, enum channel_job_kind kind,
			   const struct channel_session *s);
static void session_feed(struct channel *ch, struct channel_session *s);

/* Whether another checked session of device_id, not on its way out,
 * lives here (an unchecked one owns no row). */
static bool
channel_device_live(struct channel *ch, const char *device_id,
		    const struct channel_session *except)
{
	for (struct channel_session *o = device_first(ch, device_id); o != NULL;
	     o = device_next(o)) {
		if (o != except && o->opened && !o->offline &&
		    o->close_code == 0)
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
	/* A session that never passed its check owns no row and writes
	 * nothing (if its JOB_OPEN is still running, channel_job_done takes
	 * the row away again). */
	if (s->opened && !atomic_load(&ch->stopping) &&
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
	/* A peer that does not take the close frame (it does not read) is
	 * cut after a grace period; what it sends meanwhile is ignored. */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CHANNEL_CLOSE_GRACE_S);
	lws_callback_on_writable(s->wsi);
}

static uint64_t
elapsed_ms(uint64_t since)
{
	uint64_t now = clock_mono_ms();

	return now > since ? now - since : 0;
}

static void
channel_job_run(struct job *j, void *state)
{
	struct channel_job *job = (struct channel_job *)j;
	struct store *st = state;
	struct channel *ch = job->ch;
	struct presence_worker w = {ch->worker_id, ch->host, ch->pid, ch->slot};
	struct presence_session ps = {job->device_id, job->serial, job->peer,
				      0};
	/* Ages were taken on the loop; add the time spent in the queue. */
	uint64_t queued = elapsed_ms(job->submitted_ms);

	switch (job->kind) {
	case JOB_WORK:
		job->work.run(st, job->device_id, job->work.arg);
		break;
	case JOB_OPEN:
		job->ok = store_presence_open(st, ch->worker_id, &ps,
					      &job->allowed) == STORE_OK;
		break;
	case JOB_CLOSE:
		job->ok =
			store_presence_close(st, ch->worker_id, job->device_id,
					     job->idle_ms + queued) == STORE_OK;
		break;
	case JOB_TICK:
		for (size_t i = 0; i < job->nlive; i++)
			job->live[i].idle_ms += queued;
		job->ok = store_presence_tick(st, &w, job->live, job->nlive,
					      ch->cfg->heartbeat_timeout,
					      job->sweep, &job->lost,
					      &job->nlost) == STORE_OK;
		break;
	}
}

static void
channel_job_free(struct channel_job *job)
{
	for (size_t i = 0; i < job->nlost; i++)
		free(job->lost[i]);
	free(job->lost);
	free(job->live);
	free(job->live_ids);
	free(job->live_serials);
	free(job->live_peers);
	free(job);
}

/* A tick came back: note the run of good ticks, close lost sessions. */
static void
channel_tick_done(struct channel *ch, struct channel_job *job)
{
	ch->tick_in_flight = false;
	if (!job->ok) {
		ch->tick_ok_since_ms = 0;
		return;
	}
	if (ch->tick_ok_since_ms == 0)
		ch->tick_ok_since_ms = clock_mono_ms();
	for (size_t i = 0; i < job->nlost; i++) {
		for (struct channel_session *s = device_first(ch, job->lost[i]);
		     s != NULL; s = device_next(s)) {
			if (!s->opened || s->close_code != 0)
				continue;
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: a newer session of the device "
				  "owns its presence, or it may no longer "
				  "connect; closing");
			/* Not ours to delete: keep the other's row. */
			s->offline = true;
			session_close(ch, s, CHANNEL_CLOSE_REPLACED,
				      "replaced by a newer session");
		}
	}
}

/*
 * JOB_OPEN allowed the session: it owns the row now. A device has one
 * session: the newest checked one wins (here at once; on another worker at
 * its next presence tick). Only now: a session that has not passed the
 * check must not push the device's live session out.
 */
static void
session_opened(struct channel *ch, struct channel_session *s)
{
	for (struct channel_session *o = device_first(ch, s->device_id);
	     o != NULL; o = device_next(o)) {
		if (o != s && o->upgraded) {
			o->offline = true; /* the new session owns the row */
			session_close(ch, o, CHANNEL_CLOSE_REPLACED,
				      "replaced by a newer session");
		}
	}
	/* Identity and revocation checked: read from now on (frames that
	 * came early were held). */
	s->opened = true;
	s->last_rx_ms = clock_mono_ms();
	metrics_add(METRIC_DEVICES_CONNECTED, 1, NULL);
	lws_rx_flow_control(s->wsi, 1);
	session_feed(ch, s);
	/* What differs from its desired configuration (config.c). */
	channel_cfg_session_opened(ch->cfg_delivery, s);
	/* Its certificate's status and a pending rotation (cert.c). */
	cert_session_opened(ch, s);
}

static void
channel_job_done(struct job *j)
{
	struct channel_job *job = (struct channel_job *)j;
	struct channel_session *s;

	if (job->kind == JOB_TICK) {
		channel_tick_done(job->ch, job);
		channel_job_free(job);
		return;
	}
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
			session_close(job->ch, s, CHANNEL_CLOSE_TRY_AGAIN,
				      "database unavailable");
		else if (s != NULL && !job->allowed) {
			log_write(LOG_LEVEL_INFO, job->device_id,
				  "session refused: device not active or "
				  "certificate revoked or unknown");
			session_close(job->ch, s,
				      LWS_CLOSE_STATUS_POLICY_VIOLATION,
				      "device not active");
		} else if (s != NULL && !s->offline && s->close_code == 0) {
			session_opened(job->ch, s);
		} else if (job->ok && job->allowed &&
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
			gone.last_rx_ms = clock_mono_ms();
			channel_submit(job->ch, JOB_CLOSE, &gone);
		}
	}
	channel_job_free(job);
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
	job->submitted_ms = clock_mono_ms();
	if (s != NULL) {
		job->session_id = s->id;
		memcpy(job->device_id, s->device_id, sizeof(job->device_id));
		memcpy(job->serial, s->serial, sizeof(job->serial));
		memcpy(job->peer, s->peer, sizeof(job->peer));
		job->idle_ms = elapsed_ms(s->last_rx_ms);
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

static void
session_out_free(struct channel_session *s)
{
	struct channel_msg *m = s->out_head;

	while (m != NULL) {
		struct channel_msg *next = m->next;

		free(m);
		m = next;
	}
	s->out_head = NULL;
	s->out_tail = NULL;
	s->out_bytes = 0;
	s->out_msgs = 0;
	/* Without its 101 the peer has no websocket: no close frame then,
	 * just hang up. */
	if (s->answer_pending) {
		s->answer_pending = false;
		s->upgraded = false;
	}
}

/* Queues bytes for the peer: a frame of opcode, or raw bytes (the HTTP
 * answer) when opcode is -1. */
static int
session_queue(struct channel_session *s, int opcode, const void *data,
	      size_t len)
{
	unsigned char head[10];
	size_t hlen =
		opcode >= 0 ? ws_frame_header((uint8_t)opcode, len, head) : 0;
	struct channel_msg *m = malloc(sizeof(*m) + LWS_PRE + hlen + len);

	if (m == NULL)
		return -1;
	m->next = NULL;
	m->len = hlen + len;
	memcpy(m->data + LWS_PRE, head, hlen);
	memcpy(m->data + LWS_PRE + hlen, data, len);
	if (s->out_tail != NULL)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	s->out_bytes += m->len;
	s->out_msgs++;
	lws_callback_on_writable(s->wsi);
	return 0;
}

void
channel_send(struct channel_session *s, json_t *msg)
{
	char *text = NULL;
	size_t len;

	if (s->close_code != 0) {
		json_decref(msg);
		return;
	}
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL)
		return;
	len = strlen(text);
	if (!s->upgraded) {
		free(text);
		return;
	}
	if (s->out_msgs >= CHANNEL_OUT_MAX_MSGS ||
	    len > CHANNEL_OUT_MAX_BYTES - s->out_bytes) {
		free(text);
		log_write(LOG_LEVEL_INFO, s->device_id,
			  "channel: the peer does not read (%zu messages, "
			  "%zu bytes waiting); closing",
			  s->out_msgs, s->out_bytes);
		/* Nothing queued will be sent any more. */
		session_out_free(s);
		session_close(s->ch, s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			      "output queue full");
		return;
	}
	(void)session_queue(s, WS_OP_TEXT, text, len);
	free(text);
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

struct signer_client *
channel_signer(const struct channel *ch)
{
	return ch->signer;
}

long
channel_cert_validity(const struct channel *ch)
{
	return ch->cfg->cert_validity;
}

const char *
channel_pki_dir(const struct channel *ch)
{
	return ch->cfg->pki_dir;
}

const char *
channel_worker_id(const struct channel *ch)
{
	return ch->worker_id;
}

const char *
channel_session_serial(const struct channel_session *s)
{
	return s->serial;
}

const char *
channel_session_key_id(const struct channel_session *s)
{
	return s->key_id;
}

char *
channel_session_rotation_sent(struct channel_session *s)
{
	return s->rotation_sent;
}

struct channel_cfg *
channel_cfg_of(struct channel *ch)
{
	return ch->cfg_delivery;
}

struct cert_install_batch **
channel_cert_install_slot(struct channel *ch)
{
	return &ch->cert_installs;
}

struct channel_upd *
channel_upd_of(struct channel *ch)
{
	return ch->upd_delivery;
}

struct channel_session *
channel_find_device(struct channel *ch, const char *device_id)
{
	for (struct channel_session *s = device_first(ch, device_id); s != NULL;
	     s = device_next(s)) {
		if (s->opened && !s->offline && s->close_code == 0)
			return s;
	}
	return NULL;
}

void
channel_close_session(struct channel *ch, struct channel_session *s, int code,
		      const char *reason)
{
	session_close(ch, s, code, reason);
}

void
channel_foreach_session(struct channel *ch,
			void (*fn)(struct channel *ch,
				   struct channel_session *s, void *arg),
			void *arg)
{
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->opened && !s->offline && s->close_code == 0)
			fn(ch, s, arg);
	}
}

int64_t *
channel_session_config_sent(struct channel_session *s)
{
	return &s->config_sent;
}

/* ---- incoming frames ------------------------------------------------ */

/* Takes a token from the session's bucket; false when it is empty. */
static bool
session_rate_take(struct channel_session *s)
{
	uint64_t now = clock_mono_ms();

	s->tokens += (double)(now - s->tokens_ms) * CHANNEL_RATE_PER_S / 1000.0;
	s->tokens_ms = now;
	if (s->tokens >= CHANNEL_RATE_BURST) {
		s->tokens = CHANNEL_RATE_BURST;
		s->refused = 0;
	}
	if (s->tokens < 1.0)
		return false;
	s->tokens -= 1.0;
	return true;
}

/* A complete message arrived: dispatch it unless over the rate. */
static void
session_message(struct channel *ch, struct channel_session *s)
{
	if (session_rate_take(s)) {
		channel_dispatch(ch, s, s->rx != NULL ? s->rx : "", s->rx_len);
		return;
	}
	s->refused++;
	if (s->refused == 1)
		log_write(LOG_LEVEL_INFO, s->device_id,
			  "channel: over %d messages/s; refusing messages",
			  CHANNEL_RATE_PER_S);
	if (s->refused > CHANNEL_RATE_REFUSED_MAX) {
		log_write(LOG_LEVEL_INFO, s->device_id,
			  "channel: keeps flooding; closing");
		session_close(ch, s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			      "message rate exceeded");
		return;
	}
	channel_send(s, json_pack("{s:s, s:s, s:s}", "type", "error", "code",
				  "rate-limited", "message",
				  "message refused: too many messages; slow "
				  "down"));
}

/* Appends a data frame's payload to the message being assembled. */
static int
session_append(struct channel_session *s, const unsigned char *data, size_t len)
{
	char *grown;

	if (len == 0)
		return 0;
	if (len > CHANNEL_FRAME_MAX - s->rx_len)
		return -1;
	/* Exactly what the message needs (most are small). */
	grown = realloc(s->rx, s->rx_len + len);
	if (grown == NULL)
		return -1;
	s->rx = grown;
	memcpy(s->rx + s->rx_len, data, len);
	s->rx_len += len;
	return 0;
}

static void
session_message_done(struct channel *ch, struct channel_session *s)
{
	if (s->rx_op == WS_OP_BINARY)
		channel_send_error(ch, s, "malformed",
				   "binary frames are not used");
	else
		session_message(ch, s);
	s->rx_op = 0;
	s->rx_len = 0;
	/* Idle sessions keep no receive buffer. */
	free(s->rx);
	s->rx = NULL;
}

/* One frame of a checked session. */
static void
session_frame(struct channel *ch, struct channel_session *s,
	      const struct ws_frame *f)
{
	unsigned code;

	s->last_rx_ms = clock_mono_ms();
	switch (f->opcode) {
	case WS_OP_TEXT:
	case WS_OP_BINARY:
	case WS_OP_CONTINUATION:
		if ((f->opcode == WS_OP_CONTINUATION) != (s->rx_op != 0)) {
			session_close(ch, s, WS_CLOSE_PROTOCOL_ERROR,
				      "bad fragmentation");
			return;
		}
		if (f->opcode != WS_OP_CONTINUATION)
			s->rx_op = f->opcode;
		if (session_append(s, f->payload, f->payload_len) != 0) {
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: message over %d bytes; closing",
				  CHANNEL_FRAME_MAX);
			session_close(ch, s, WS_CLOSE_TOO_BIG,
				      "message too big");
			return;
		}
		if (f->fin)
			session_message_done(ch, s);
		return;
	case WS_OP_PING:
		/* Only the latest ping is answered (RFC 6455 5.5.3). */
		memcpy(s->pong, f->payload, f->payload_len);
		s->pong_len = f->payload_len;
		s->pong_due = true;
		lws_callback_on_writable(s->wsi);
		return;
	case WS_OP_PONG:
		return;
	case WS_OP_CLOSE:
		code = f->payload_len >= 2
			       ? ((unsigned)f->payload[0] << 8) | f->payload[1]
			       : WS_CLOSE_NO_STATUS;
		if (f->payload_len == 1)
			code = WS_CLOSE_PROTOCOL_ERROR;
		else if (code == WS_CLOSE_NO_STATUS)
			code = WS_CLOSE_NORMAL;
		/* Answer with the peer's code, then hang up. */
		session_close(ch, s, (int)code, "");
		return;
	default:
		return;
	}
}

/* Parses and handles the frames received so far (only once checked). */
static void
session_feed(struct channel *ch, struct channel_session *s)
{
	size_t used = 0;

	while (s->opened && s->close_code == 0 && s->wsi != NULL) {
		struct ws_frame f;
		const char *why = NULL;
		int code = 0;
		enum ws_rc rc =
			ws_frame_parse(s->in + used, s->in_len - used,
				       CHANNEL_FRAME_MAX, &f, &code, &why);

		if (rc == WS_MORE)
			break;
		if (rc == WS_REFUSED) {
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: %s; closing with %d", why, code);
			session_close(ch, s, code, why);
			break;
		}
		used += f.frame_len;
		session_frame(ch, s, &f);
	}
	if (used > 0 && used < s->in_len)
		memmove(s->in, s->in + used, s->in_len - used);
	s->in_len -= used < s->in_len ? used : s->in_len;
	if (s->in_len == 0 || s->close_code != 0) {
		free(s->in);
		s->in = NULL;
		s->in_len = 0;
	}
}

/* ---- session life --------------------------------------------------- */

/* Reads the device id (CN), serial and key id of the verified peer
 * certificate: nothing reads the certificate after this, and
 * session_established lets the connection forget it (tls_trim.h). */
static int
session_identity(struct channel_session *s)
{
	SSL *ssl = lws_get_ssl(s->wsi);
	X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	struct pki_error err;
	char cn[64];

	if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return -1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
				      NID_commonName, cn, sizeof(cn)) <= 0 ||
	    !secret_is_uuid(cn))
		return -1;
	if (pki_cert_serial_hex(peer, s->serial, sizeof(s->serial), &err) !=
		    PKI_OK ||
	    pki_key_id(X509_get0_pubkey(peer), s->key_id, &err) != PKI_OK)
		return -1;
	memcpy(s->device_id, cn, sizeof(s->device_id));
	return 0;
}

/* The upgrade was answered 101: identify the device, hold its frames and
 * have JOB_OPEN check it. */
static void
session_established(struct channel *ch, struct channel_session *s)
{
	bool resumed;

	s->id = ++ch->next_session_id;
	s->last_rx_ms = clock_mono_ms();
	s->last_ping_ms = s->last_rx_ms;
	s->tokens = CHANNEL_RATE_BURST;
	s->tokens_ms = s->last_rx_ms;
	/* Nothing of the session is read before JOB_OPEN has checked the
	 * device and its certificate in PostgreSQL (channel_job_done). */
	lws_rx_flow_control(s->wsi, 0);
	if (session_identity(s) != 0) {
		log_warn("channel: peer %s: certificate without a device id",
			 s->peer);
		s->device_id[0] = '\0';
		session_close(ch, s, WS_CLOSE_POLICY,
			      "certificate names no device");
		return;
	}
	if (!hash_add(ch, s)) {
		log_warn("channel: out of memory; closing a new session");
		session_close(ch, s, CHANNEL_CLOSE_TRY_AGAIN, "out of memory");
		return;
	}
	resumed = SSL_session_reused(lws_get_ssl(s->wsi)) == 1;
	if (tls_trim_session(ch->trim, lws_get_ssl(s->wsi)) == -2) {
		session_close(ch, s, CHANNEL_CLOSE_TRY_AGAIN, "out of memory");
		return;
	}
	metrics_add(METRIC_TLS_HANDSHAKES, 1, "session",
		    resumed ? "resumed" : "full", NULL);
	log_write(LOG_LEVEL_INFO, s->device_id,
		  "channel: connected from %s (certificate %s%s)", s->peer,
		  s->serial, resumed ? ", session resumed" : "");
	channel_submit(ch, JOB_OPEN, s);
}

/* A new TCP connection on the device listener (TLS still under way). */
static void
session_adopted(struct channel *ch, struct channel_session *s, struct lws *wsi)
{
	memset(s, 0, sizeof(*s));
	s->ch = ch;
	s->wsi = wsi;
	s->adopted_ms = clock_mono_ms();
	s->last_rx_ms = s->adopted_ms;
	lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
	s->next = ch->sessions;
	if (ch->sessions != NULL)
		ch->sessions->prev = s;
	ch->sessions = s;
}

/* Bytes from the peer (decrypted). Returns -1 to drop the connection. */
static int
session_rx(struct channel *ch, struct channel_session *s, const void *in,
	   size_t len)
{
	unsigned char *grown;
	struct ws_upgrade up;
	enum ws_rc rc;
	char answer[1024];
	size_t alen;

	if (s->hangup || s->close_code != 0) {
		/* On the way out: ignored. A peer that keeps sending is not
		 * read any more (it blocks), and the grace timeout ends it. */
		s->discarded += len;
		if (s->discarded > CHANNEL_DISCARD_MAX)
			lws_rx_flow_control(s->wsi, 0);
		return 0;
	}
	if (len > CHANNEL_IN_MAX - s->in_len) {
		log_write(LOG_LEVEL_INFO, s->device_id[0] ? s->device_id : NULL,
			  "channel: peer %s sent too much unread data; "
			  "closing",
			  s->peer);
		if (!s->upgraded)
			return -1;
		session_close(ch, s, WS_CLOSE_POLICY, "too much data");
		return 0;
	}
	grown = realloc(s->in, s->in_len + len);
	if (grown == NULL)
		return -1;
	s->in = grown;
	memcpy(s->in + s->in_len, in, len);
	s->in_len += len;
	if (s->upgraded) {
		session_feed(ch, s);
		return 0;
	}
	rc = ws_upgrade_parse(s->in, s->in_len, "/agent/v1", "fleet.v1", &up);
	if (rc == WS_MORE)
		return 0;
	if (download_is_request(s->in, s->in_len)) {
		/* GET|HEAD /artifacts/<sha256>: download.c answers it. */
		s->dl = download_start(ch, s->wsi, s->peer, s->in, s->in_len,
				       ch->cfg->artifact_cache_dir);
		free(s->in);
		s->in = NULL;
		s->in_len = 0;
		return s->dl != NULL ? 0 : -1;
	}
	if (rc == WS_OK && atomic_load(&ch->stopping)) {
		rc = WS_REFUSED; /* the other workers take it */
		up.status = 503;
		up.why = "this worker is stopping";
	}
	alen = ws_upgrade_answer(&up, rc, "fleet.v1", answer, sizeof(answer));
	if (alen == 0 || session_queue(s, -1, answer, alen) != 0)
		return -1;
	s->answer_pending = true;
	if (rc == WS_REFUSED) {
		log_write(LOG_LEVEL_INFO, NULL,
			  "channel: peer %s: request refused (%d %s)", s->peer,
			  up.status, up.why);
		s->hangup = true;
		return 0;
	}
	/* Frames that came with the request wait in s->in. */
	memmove(s->in, s->in + up.consumed, s->in_len - up.consumed);
	s->in_len -= up.consumed;
	s->upgraded = true;
	/* lws armed a timeout after the TLS accept that only its HTTP role
	 * clears; from here on the channel's own heartbeat rules apply. */
	lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
	session_established(ch, s);
	return 0;
}

static void
session_closed(struct channel *ch, struct channel_session *s)
{
	if (s->wsi == NULL)
		return; /* never established */
	if (s->device_id[0] != '\0')
		log_write(LOG_LEVEL_INFO, s->device_id, "channel: closed");
	session_offline(ch, s);
	hash_remove(ch, s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ch->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	metrics_add(METRIC_DEVICES_CONNECTED, s->opened ? -1 : 0, NULL);
	session_out_free(s);
	free(s->rx);
	free(s->in);
	memset(s, 0, sizeof(*s));
}

/* Writes one control frame (a close, ping or pong). */
static int
session_write_control(struct channel_session *s, uint8_t opcode,
		      const unsigned char *payload, size_t len)
{
	unsigned char frame[LWS_PRE + 2 + 125];
	size_t hlen = ws_frame_header(opcode, len, frame + LWS_PRE);

	memcpy(frame + LWS_PRE + hlen, payload, len);
	return lws_write(s->wsi, frame + LWS_PRE, hlen + len, LWS_WRITE_RAW) <
			       (int)(hlen + len)
		       ? -1
		       : 0;
}

/* Writes the oldest queued message (a frame, or the HTTP answer) and
 * drops it from the queue. -1 when the write failed. */
static int
session_write_head(struct channel_session *s)
{
	struct channel_msg *m = s->out_head;

	if (lws_write(s->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_RAW) <
	    (int)m->len)
		return -1;
	s->out_head = m->next;
	if (s->out_head == NULL)
		s->out_tail = NULL;
	s->out_bytes -= m->len;
	s->out_msgs--;
	free(m);
	return 0;
}

static int
session_writeable(struct channel_session *s)
{
	struct channel_msg *m = s->out_head;

	if (s->wsi == NULL)
		return 0;
	/* After the close frame the peer closes the connection (or the
	 * grace timeout of session_close does): closing first, with its
	 * data unread, would reset the connection and lose the close frame. */
	if (s->close_sent)
		return 0;
	/* The refusal went out: hang up. */
	if (s->hangup && m == NULL)
		return -1;
	if (s->answer_pending && m != NULL) {
		/* The HTTP answer first, even if the session is closing (a
		 * refused check closes it at once): a close frame before the
		 * 101 would be no websocket at all. */
		s->answer_pending = false;
		if (session_write_head(s) != 0)
			return -1;
		lws_callback_on_writable(s->wsi);
		return 0;
	}
	if (s->close_code != 0) {
		unsigned char payload[125];
		size_t rlen = strlen(s->close_reason);

		if (!s->upgraded)
			return -1;
		if (rlen > sizeof(payload) - 2)
			rlen = sizeof(payload) - 2;
		payload[0] = (unsigned char)(s->close_code >> 8);
		payload[1] = (unsigned char)s->close_code;
		memcpy(payload + 2, s->close_reason, rlen);
		s->close_sent = true;
		return session_write_control(s, WS_OP_CLOSE, payload, rlen + 2);
	}
	if (s->pong_due) {
		s->pong_due = false;
		if (session_write_control(s, WS_OP_PONG, s->pong,
					  s->pong_len) != 0)
			return -1;
	} else if (s->ping_due) {
		s->ping_due = false;
		if (session_write_control(s, WS_OP_PING,
					  (const unsigned char *)"fleet.v1",
					  8) != 0)
			return -1;
	} else if (m != NULL) {
		if (session_write_head(s) != 0)
			return -1;
	}
	if (s->out_head != NULL || s->pong_due || s->ping_due || s->hangup)
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

/*
 * The trust anchors of the device listener: the device issuing CA(s) of
 * the bundle, i.e. its CA certificates that are not self-signed. The root
 * is left out, so a certificate the root signed directly is refused, and
 * PARTIAL_CHAIN lets a chain end at an issuing CA. NULL on failure.
 */
static X509_STORE *
channel_issuing_store(const char *bundle, STACK_OF(X509_NAME) * *names)
{
	X509_STORE *store = X509_STORE_new();
	BIO *bio = BIO_new_file(bundle, "r");
	STACK_OF(X509_NAME) *list = sk_X509_NAME_new_null();
	X509 *cert;
	int anchors = 0;

	if (store == NULL || bio == NULL || list == NULL)
		goto fail;
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		uint32_t flags = X509_get_extension_flags(cert);

		if ((flags & EXFLAG_CA) != 0 && (flags & EXFLAG_SS) == 0) {
			X509_NAME *name =
				X509_NAME_dup(X509_get_subject_name(cert));

			if (X509_STORE_add_cert(store, cert) != 1 ||
			    name == NULL ||
			    sk_X509_NAME_push(list, name) <= 0) {
				X509_NAME_free(name);
				X509_free(cert);
				goto fail;
			}
			anchors++;
		}
		X509_free(cert);
	}
	ERR_clear_error(); /* the end of the file */
	if (anchors == 0) {
		log_error("channel: %s holds no device issuing CA", bundle);
		goto fail;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
					    X509_V_FLAG_X509_STRICT);
	X509_STORE_set_purpose(store, X509_PURPOSE_SSL_CLIENT);
	BIO_free(bio);
	*names = list;
	return store;
fail:
	log_openssl(LOG_LEVEL_ERROR, "channel: device trust anchors");
	sk_X509_NAME_pop_free(list, X509_NAME_free);
	BIO_free(bio);
	X509_STORE_free(store);
	return NULL;
}

/*
 * The server's chain as lws loaded it (server-chain.pem), without the
 * self-signed certificates: a root is of no use to a device, which
 * verifies against its own copy (its trust anchor; RFC 8446 4.4.2 lets it
 * be left out), and every device would decode and keep the copy sent with
 * each connection. Intermediates stay. NO_AUTO_CHAIN: OpenSSL does not
 * build the chain again from the device trust store. Returns 0 or -1.
 */
static int
channel_chain_without_roots(SSL_CTX *ctx)
{
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509) *kept = NULL;
	int rc = -1;

	if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1)
		goto out;
	kept = sk_X509_new_null();
	if (kept == NULL)
		goto out;
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if ((X509_get_extension_flags(x) & EXFLAG_SS) == 0 &&
		    sk_X509_push(kept, x) <= 0)
			goto out;
	}
	if (SSL_CTX_set1_chain(ctx, kept) != 1)
		goto out;
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	rc = 0;
out:
	if (rc != 0)
		log_openssl(LOG_LEVEL_ERROR, "channel: server chain");
	sk_X509_free(kept);
	return rc;
}

static int
channel_ssl_setup(SSL_CTX *ctx, struct channel *ch)
{
	char bundle[4096];
	STACK_OF(X509_NAME) *names = NULL;
	X509_STORE *store;

	snprintf(bundle, sizeof(bundle), "%s/ca-bundle.pem", ch->cfg->pki_dir);
	store = channel_issuing_store(bundle, &names);
	if (store == NULL)
		return 1;
	SSL_CTX_set_cert_store(ctx, store);
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_tlsext_servername_callback(ctx, channel_servername);
	if (channel_ssl_index < 0)
		channel_ssl_index =
			SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	SSL_CTX_set_ex_data(ctx, channel_ssl_index, ch);
	/* Resumption: TLS 1.3 tickets under keys shared through
	 * PostgreSQL, a resumed session checked against the refused set
	 * like a full handshake (tls_tickets.c); off when
	 * tls_ticket_lifetime is 0 (every handshake verifies the chain). */
	if (tls_tickets_ssl_setup(ch->tickets, ctx) != 0)
		return 1;
	/* Idle connections should not hold TLS record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return channel_chain_without_roots(ctx) != 0;
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

bool
channel_owns(struct lws *wsi)
{
	return wsi != NULL && channel_of(wsi) != NULL;
}

/*
 * The device listener's protocol: its connections are adopted as raw TLS
 * sockets, and channel.c speaks HTTP/1.1 (the upgrade only) and RFC 6455
 * itself (ws.c), because lws 4.1 processes unmasked client frames and
 * would hand HTTP requests to the api vhost.
 */
int
channel_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		 void *in, size_t len)
{
	struct channel_session *s = user;
	struct channel *ch = NULL;

	if (reason == LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION)
		return channel_verify(user, in, (int)len);
	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
		return channel_ssl_setup(user, lws_vhost_user(in));
	if (wsi != NULL)
		ch = channel_of(wsi);
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		if (ch == NULL || atomic_load(&ch->stopping))
			return -1;
		session_adopted(ch, s, wsi);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (ch == NULL || s->wsi == NULL)
			return -1;
		if (s->dl != NULL)
			return download_rx(s->dl, in, len);
		return session_rx(ch, s, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (s->dl != NULL)
			return download_writeable(s->dl);
		return session_writeable(s);
	case LWS_CALLBACK_RAW_CLOSE:
		download_closed(s->dl);
		s->dl = NULL;
		if (ch != NULL)
			session_closed(ch, s);
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_HTTP:
		return -1; /* lws's own websocket and HTTP are not used */
	default:
		break;
	}
	return 0;
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
	if (ch != NULL)
		channel_cfg_on_wake(ch->cfg_delivery);
	if (ch != NULL)
		channel_upd_on_wake(ch->upd_delivery);
	if (ch != NULL && atomic_exchange(&ch->certs_wanted, false))
		cert_poll_rotations(ch);
	if (ch == NULL || !atomic_exchange(&ch->sweep_wanted, false))
		return;
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->dl != NULL) {
			download_check_revoked(s->dl, ch->revoked);
			continue;
		}
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

/* The tick job: a snapshot of the sessions whose row this worker owns. */
static struct channel_job *
channel_tick_job(struct channel *ch, uint64_t now)
{
	struct channel_job *job = channel_job_new(ch, JOB_TICK, NULL);
	size_t n = 0, i = 0;

	if (job == NULL)
		return NULL;
	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next)
		n++;
	job->live = calloc(n + 1, sizeof(*job->live));
	job->live_ids = calloc(n + 1, sizeof(*job->live_ids));
	job->live_serials = calloc(n + 1, sizeof(*job->live_serials));
	job->live_peers = calloc(n + 1, sizeof(*job->live_peers));
	if (job->live == NULL || job->live_ids == NULL ||
	    job->live_serials == NULL || job->live_peers == NULL) {
		channel_job_free(job);
		return NULL;
	}
	for (struct channel_session *s = ch->sessions; s != NULL && i < n;
	     s = s->next) {
		if (!s->opened || s->offline || s->close_code != 0)
			continue;
		memcpy(job->live_ids[i], s->device_id, sizeof(s->device_id));
		memcpy(job->live_serials[i], s->serial, sizeof(s->serial));
		memcpy(job->live_peers[i], s->peer, sizeof(s->peer));
		job->live[i].device_id = job->live_ids[i];
		job->live[i].serial = job->live_serials[i];
		job->live[i].peer = job->live_peers[i];
		job->live[i].idle_ms =
			now > s->last_rx_ms ? now - s->last_rx_ms : 0;
		i++;
	}
	job->nlive = i;
	/* Sweep other workers only after a run of good ticks as long as the
	 * timeout: right after a PostgreSQL outage every worker is "silent",
	 * and the first to tick must not delete the others. */
	job->sweep = ch->tick_ok_since_ms != 0 &&
		     now - ch->tick_ok_since_ms >=
			     (uint64_t)ch->cfg->heartbeat_timeout * 1000u;
	return job;
}

/*
 * Once per half heartbeat interval: ping every heartbeat_interval; a peer
 * silent for heartbeat_timeout is offline at once and its connection
 * killed (lws's own idle hang-up would wait seconds more for the peer to
 * close, and only then say CLOSED). The job refreshes exactly the rows of
 * the sessions this loop holds, on the presence thread (never behind
 * device work), so a row whose session is gone (a lost or reordered
 * close) stops counting as online within heartbeat_timeout.
 */
static void
channel_tick(lws_sorted_usec_list_t *sul)
{
	struct channel *ch = lws_container_of(sul, struct channel, tick);
	uint64_t now = clock_mono_ms();
	uint64_t interval = (uint64_t)ch->cfg->heartbeat_interval * 1000u;
	uint64_t timeout = (uint64_t)ch->cfg->heartbeat_timeout * 1000u;
	struct channel_job *job;

	for (struct channel_session *s = ch->sessions; s != NULL; s = s->next) {
		if (s->dl != NULL)
			continue; /* a download keeps its own time */
		if (!s->upgraded) {
			/* TLS and the upgrade request take at most this. */
			if (!s->hangup &&
			    now - s->adopted_ms >= CHANNEL_UPGRADE_TIMEOUT_MS) {
				s->hangup = true;
				lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
						LWS_TO_KILL_ASYNC);
			}
			continue;
		}
		if (s->offline || s->close_code != 0)
			continue;
		if (now - s->last_rx_ms >= timeout) {
			log_write(LOG_LEVEL_INFO, s->device_id,
				  "channel: silent for %llu ms; dropping",
				  (unsigned long long)(now - s->last_rx_ms));
			session_offline(ch, s);
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
		} else if (s->opened && now - s->last_ping_ms >= interval) {
			s->last_ping_ms = now;
			s->ping_due = true;
			lws_callback_on_writable(s->wsi);
		}
	}
	channel_cfg_tick(ch->cfg_delivery, now);
	channel_upd_tick(ch->upd_delivery, now);
	if (!ch->tick_in_flight && !atomic_load(&ch->stopping)) {
		job = channel_tick_job(ch, now);
		if (job == NULL) {
			log_warn("channel: out of memory; presence tick "
				 "skipped");
		} else {
			ch->tick_in_flight = true;
			if (!job_pool_submit(ch->presence_jobs, &job->job)) {
				log_warn("channel: presence queue full; tick "
					 "skipped");
				job->job.done(&job->job);
			}
		}
	}
	lws_sul_schedule(ch->context, 0, &ch->tick, channel_tick,
			 ch->cfg->heartbeat_interval * LWS_US_PER_SEC / 2);
}

static int
channel_reload(struct channel *ch, bool full)
{
	char **serials = NULL;
	size_t n = 0;
	uint64_t since = elapsed_ms(ch->reloaded_ms);
	int64_t generation = 0;

	/* Every installed renewal notifies (its old serial is refused from
	 * then on): during a fleet-wide rotation that is thousands a second.
	 * At most one load per CHANNEL_RELOAD_MIN_MS; the notifications of
	 * the pause are taken by it (a revocation after a quiet period is
	 * loaded at once). A load is a delta unless a full one is due: what
	 * was refused after the generation of the last load, each serial
	 * once (a rotation at R renewals/s reads R rows a second, not every
	 * serial refused in the last ten seconds ten times a second). */
	if (ch->reloaded_ms != 0 && since < CHANNEL_RELOAD_MIN_MS)
		clock_sleep_ms((uint32_t)(CHANNEL_RELOAD_MIN_MS - since));
	ch->reloaded_ms = clock_mono_ms();
	if (ch->refused_full_ms == 0 ||
	    elapsed_ms(ch->refused_full_ms) >= CHANNEL_REFUSED_FULL_MS)
		full = true;
	/* Superseded certificates are refused like revoked ones (cert.c). */
	if (store_refused_serials(ch->listener_store,
				  full ? 0 : ch->refused_generation, &serials,
				  &n, &generation) != STORE_OK)
		return -1;
	if (full) {
		revoked_set_replace(ch->revoked, serials, n);
		ch->refused_full_ms = ch->reloaded_ms;
	} else {
		revoked_set_add(ch->revoked, serials, n);
	}
	ch->refused_generation = generation;
	atomic_store(&ch->sweep_wanted, true);
	lws_cancel_service(ch->context);
	return 0;
}

/*
 * What a notification (or a (re)listen: STORE_TOPIC_ALL) makes the
 * listener thread do: each topic looks again at its own state. Nonzero
 * when storage failed (listen again).
 */
static int
channel_notified(struct channel *ch, unsigned fired, int64_t generation)
{
	/* (Re)listening: notifications may have been missed, load all. A
	 * change of the refused certificates that the set holds already
	 * (it carries its generation) is not loaded again: the notifications
	 * queued while a load was throttled are mostly such. */
	if ((fired & STORE_TOPIC_DEVICES) != 0 &&
	    (fired == STORE_TOPIC_ALL || generation < 0 ||
	     generation > ch->refused_generation ||
	     elapsed_ms(ch->refused_full_ms) >= CHANNEL_REFUSED_FULL_MS) &&
	    channel_reload(ch, fired == STORE_TOPIC_ALL) != 0)
		return -1;
	if ((fired & STORE_TOPIC_CONFIG) != 0 &&
	    channel_cfg_notified(ch->cfg_delivery))
		lws_cancel_service(ch->context);
	if ((fired & (STORE_TOPIC_UPDATE | STORE_TOPIC_KEYS)) != 0 &&
	    channel_upd_notified(ch->upd_delivery,
				 (fired & STORE_TOPIC_UPDATE) != 0,
				 (fired & STORE_TOPIC_KEYS) != 0))
		lws_cancel_service(ch->context);
	if ((fired & STORE_TOPIC_CERTS) != 0) {
		atomic_store(&ch->certs_wanted, true);
		lws_cancel_service(ch->context);
	}
	return 0;
}

/* The listener thread: its own store; one connection listens on every
 * topic, and each notification wakes what it concerns. */
static void *
channel_listener(void *arg)
{
	struct channel *ch = arg;
	uint32_t delay_ms = 100;

	while (!atomic_load(&ch->stopping)) {
		long token = 0;
		unsigned fired = 0;
		int64_t generation = -1;

		/* Listening again: anything may have been missed. */
		if (store_presence_listen(ch->listener_store, &token) !=
			    STORE_OK ||
		    channel_notified(ch, STORE_TOPIC_ALL, -1) != 0) {
			clock_sleep_ms(delay_ms);
			delay_ms = delay_ms < 5000 ? delay_ms * 2 : 5000;
			continue;
		}
		delay_ms = 100;
		while (!atomic_load(&ch->stopping)) {
			uint64_t now = clock_mono_ms();

			/* The ticket keys: new ones, rotation, removals. */
			if (tls_tickets_sync_due(ch->tickets, now))
				(void)tls_tickets_sync(ch->tickets,
						       ch->listener_store, now);
			if (store_presence_wait(ch->listener_store, token, 500,
						&fired,
						&generation) != STORE_OK)
				break;
			if (fired != 0 &&
			    channel_notified(ch, fired, generation) != 0)
				break;
		}
	}
	return NULL;
}

static int
channel_register(struct channel *ch)
{
	struct presence_worker w;

	snprintf(ch->host, sizeof(ch->host), "localhost");
	if (gethostname(ch->host, sizeof(ch->host) - 1) != 0)
		snprintf(ch->host, sizeof(ch->host), "localhost");
	ch->host[sizeof(ch->host) - 1] = '\0';
	ch->pid = (long)getpid();
	snprintf(ch->worker_id, sizeof(ch->worker_id), "%s:%d:%ld", ch->host,
		 ch->slot, ch->pid);
	w.id = ch->worker_id;
	w.host = ch->host;
	w.pid = ch->pid;
	w.slot = ch->slot;
	if (store_presence_register(ch->store, &w) != STORE_OK) {
		log_error("channel: cannot register worker %s in the database",
			  ch->worker_id);
		return -1;
	}
	return 0;
}

struct channel *
channel_new(struct lws_context *context, const struct channel_deps *deps,
	    const struct fleetd_config *cfg, int slot)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return NULL;
	ch->context = context;
	ch->jobs = deps->jobs;
	ch->presence_jobs = deps->presence_jobs;
	ch->store = deps->store;
	ch->listener_store = deps->listener_store;
	ch->signer = deps->signer;
	ch->cfg = cfg;
	ch->slot = slot;
	/* No lws validity timers (secs_since_valid_hangup 0): channel_tick
	 * pings and hangs up by the heartbeat settings itself, in one walk
	 * per half interval. lws 4.1 arms those timers only for its ws, h2
	 * and mqtt roles, never for our raw sockets, and each would be one
	 * more entry in the context's single sorted timer list, re-inserted
	 * (O(N)) on every ping and pong. */
	ch->idle_policy.secs_since_valid_ping = 0;
	ch->idle_policy.secs_since_valid_hangup = 0;
	ch->revoked = revoked_set_new();
	ch->tickets =
		ch->revoked != NULL ? tls_tickets_new(cfg, ch->revoked) : NULL;
	ch->trim = tls_trim_new();
	ch->cfg_delivery = channel_cfg_new(ch);
	ch->upd_delivery = channel_upd_new(ch, cfg->artifact_url_base);
	if (ch->upd_delivery == NULL)
		goto fail;
	if (ch->revoked == NULL || ch->tickets == NULL || ch->trim == NULL ||
	    ch->cfg_delivery == NULL || channel_register(ch) != 0)
		goto fail;
	/* The keys before the first handshake, so that the devices of a
	 * restarted fleetd resume at once; if PostgreSQL does not answer,
	 * the listener thread tries again (full handshakes meanwhile). */
	(void)tls_tickets_sync(ch->tickets, ch->store, clock_mono_ms());
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
	if (ch == NULL)
		return;
	channel_stop(ch);
	/* A clean stop takes this worker's sessions offline at once. */
	if (ch->worker_id[0] != '\0')
		(void)store_presence_unregister(ch->store, ch->worker_id);
	revoked_set_free(ch->revoked);
	tls_tickets_free(ch->tickets);
	tls_trim_free(ch->trim);
	channel_cfg_free(ch->cfg_delivery);
	channel_upd_free(ch->upd_delivery);
	cert_install_batch_free(ch->cert_installs);
	free(ch->by_id);
	free(ch->by_device);
	free(ch);
}
