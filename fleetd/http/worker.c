/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The net worker process: builds the lws context with the api listener
 * (server TLS) and the device listener (mutual TLS; only the fleet.v1
 * websocket); both allow TLS 1.3 and TLS 1.2 with ECDHE and AEAD ciphers
 * only. Starts three job pools, each thread with its own store (its own
 * PostgreSQL connection): API requests, device work, and presence ticks,
 * so that devices cannot starve the API nor stop the worker's heartbeat.
 * Serves until SIGTERM, then drains in-flight jobs and exits.
 * The listen sockets come from the supervisor and are shared by all
 * workers: each worker polls them and accepts what it can, then hands the
 * connection to lws (lws_adopt_socket_vhost), which does the TLS.
 * lws runs on a libev loop (epoll) that the worker creates and turns
 * itself: lws 4.1's own loop poll()s every descriptor on every turn, O(N)
 * per event with N connections (docs/internals/event-loop.md).
 */
#define _GNU_SOURCE /* accept4 */
#include "http/worker.h"

#include "atomicfile.h"
#include "clock.h"
#include "ca/signer_client.h"
#include "http/campaign_driver.h"
#include "channel/channel.h"
#include "config.h"
#include "core/metrics.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "db/store.h"
#include "http/http.h"
#include "http/jobs.h"
#include "log.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKER_MAX_QUEUED 4096
#define WORKER_CHANNEL_QUEUED 4096
#define WORKER_PRESENCE_QUEUED 4
/* TLS 1.2: forward secrecy and AEAD only (no CBC, no SHA-1 MAC, no RSA
 * key exchange); TLS 1.3 suites are all AEAD. */
#define WORKER_TLS12_CIPHERS                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define WORKER_TLS_OPTIONS                                       \
	(SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | \
	 SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION)
#define WORKER_TICK_US (200 * LWS_US_PER_MS)
#define PEM_BUNDLE_MAX (256 * 1024)
#define ACCEPT_BATCH 64
/* How long a stopping worker lets its open api connections finish. */
#define WORKER_STOP_GRACE_MS 5000
/* How often the heap's free space is looked at, and by how much it must
 * have grown for a trim (worker_trim). */
#define WORKER_TRIM_CHECK_MS 1000
#define WORKER_TRIM_GROWTH ((size_t)1 << 20)
/* Descriptors kept free under the open-files limit for what the worker
 * opens besides connections: a store reconnecting to PostgreSQL, the
 * signer, files, lws's own. */
#define WORKER_FD_RESERVE 128

static volatile sig_atomic_t worker_stop_requested;

/*
 * Accepting near the open-files limit (worker_accept_pause). One worker
 * per process, so this is process state beside worker_stop_requested.
 * fd_ceiling: the lowest descriptor number the worker does not accept
 * at; paused: which listen sockets it stopped reading for that reason.
 */
static int worker_fd_ceiling = INT32_MAX;
static bool worker_accept_paused[2];
static uint64_t worker_accept_warned_ms; /* at most one warning a minute */

/*
 * Device TLS handshakes in flight on this worker: accepted, not yet past
 * their first record of application data (or closed). At
 * WORKER_HANDSHAKES_MAX the worker stops reading the device listen
 * socket until one finishes; the rest waits in the kernel's backlog
 * (and lws's handshake timeout starts only at the accept). In a
 * reconnect storm this keeps the handshakes the worker has started
 * short, instead of thousands of them sharing the CPU until lws cuts them
 * at timeout_secs and the devices start over; and it bounds what the
 * handshakes hold at once (record and handshake buffers of tens of KiB
 * each; docs/internals/hundredk.md). A wsi counted here
 * carries &worker_in_handshake as its opaque user data (unused
 * otherwise), so it is uncounted exactly once.
 */
#define WORKER_HANDSHAKES_MAX 128
static unsigned worker_handshakes;
static bool worker_handshakes_paused;
static bool worker_listener_off[2]; /* flow-controlled off now */
static char worker_in_handshake;

static void worker_accept_resume(struct worker *w);

static void
worker_on_signal(int sig)
{
	(void)sig;
	worker_stop_requested = 1;
}

static void *
worker_thread_init(void *arg)
{
	struct worker *w = arg;
	struct api_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->store = store_new(w->cfg->database);
	if (ctx->store == NULL) {
		free(ctx);
		return NULL;
	}
	ctx->signer = w->signer;
	ctx->env = &w->env;
	return ctx;
}

static void
worker_thread_fini(void *state)
{
	struct api_ctx *ctx = state;

	store_free(ctx->store);
	free(ctx);
}

/* Thread state of the channel's pools: a store of its own. */
static void *
worker_store_init(void *arg)
{
	struct worker *w = arg;

	return store_new(w->cfg->database);
}

static void
worker_store_fini(void *state)
{
	store_free(state);
}

static size_t
worker_pending(struct worker *w)
{
	return job_pool_pending(w->jobs) + job_pool_pending(w->channel_jobs) +
	       job_pool_pending(w->presence_jobs);
}

/* Stopping, and nothing left to finish: no job in flight, and no api
 * connection open (or the grace for them is over). */
static bool
worker_drained(struct worker *w)
{
	return w->stopping && worker_pending(w) == 0 &&
	       (w->api_open == 0 || clock_mono_ms() >= w->stop_deadline_ms);
}

static void
worker_wake(void *arg)
{
	struct worker *w = arg;

	lws_cancel_service(w->context);
}

/*
 * Gives the heap's free pages back after connection churn. Each TLS
 * handshake allocates and frees tens of KiB (handshake and record
 * buffers, 16 KiB each) between the long-lived per-connection objects, so
 * after a connection storm the main arena is full of holes that glibc
 * keeps: 1,000 devices connecting at once left 13 MiB free inside a 47 MiB
 * heap (malloc_stats), 11 MiB of it resident. malloc_trim(0) returns the
 * whole free pages inside the heap too (MADV_DONTNEED), not only its top.
 * Every WORKER_TRIM_CHECK_MS the loop looks at the free space in the
 * arenas (mallinfo2: a walk of the free lists), and trims when it grew
 * by WORKER_TRIM_GROWTH since the last look that trimmed: a storm is
 * trimmed while and after it happens, an idle worker never.
 */
static void
worker_trim(struct worker *w)
{
	uint64_t now = clock_mono_ms();
	struct mallinfo2 mi;

	if (now - w->trim_checked_ms < WORKER_TRIM_CHECK_MS)
		return;
	w->trim_checked_ms = now;
	mi = mallinfo2();
	if (mi.fordblks < w->trim_free) {
		/* Holes were reused: count growth from here. */
		w->trim_free = mi.fordblks;
		return;
	}
	if (mi.fordblks - w->trim_free < WORKER_TRIM_GROWTH)
		return;
	w->trim_free = mi.fordblks;
	malloc_trim(0);
}

/* Periodic check of the stop flag (signal handlers only set it). */
static void
worker_tick(lws_sorted_usec_list_t *sul)
{
	struct worker *w = lws_container_of(sul, struct worker, tick);

	if (worker_stop_requested && !w->stopping) {
		log_info("worker %d: stopping", w->slot);
		w->stopping = true;
		w->stop_deadline_ms = clock_mono_ms() + WORKER_STOP_GRACE_MS;
		/* Leave new connections to the other workers. */
		for (int i = 0; i < 2; i++) {
			/*
			 * The supervisor is gone (parent-death signal): the
			 * whole instance stops. shutdown() the shared listening
			 * socket (still open: its wsi is alive) so the kernel
			 * refuses new connections at once for every process
			 * holding it, instead of completing handshakes no one
			 * will accept (a load balancer redispatches a refused
			 * connection, not a reset one). Not a socket the
			 * service manager holds: it queues them for the next
			 * instance.
			 */
			if (w->listeners[i] != NULL && !w->listeners_held &&
			    getppid() != w->parent)
				shutdown(lws_get_socket_fd(w->listeners[i]),
					 SHUT_RDWR);
			if (w->listeners[i] != NULL)
				lws_set_timeout(w->listeners[i],
						PENDING_TIMEOUT_USER_OK,
						LWS_TO_KILL_ASYNC);
			w->listeners[i] = NULL;
		}
	}
	log_flush_suppressed();
	if (!w->stopping)
		worker_accept_resume(w);
	worker_trim(w);
	metrics_set(METRIC_JOB_QUEUE_DEPTH, (int64_t)job_pool_pending(w->jobs),
		    "pool", "api", NULL);
	metrics_set(METRIC_JOB_QUEUE_DEPTH,
		    (int64_t)job_pool_pending(w->channel_jobs), "pool",
		    "device", NULL);
	metrics_set(METRIC_JOB_QUEUE_DEPTH,
		    (int64_t)job_pool_pending(w->presence_jobs), "pool",
		    "presence", NULL);
	if (worker_drained(w)) {
		/* Nothing in flight: leave the loop (see worker_main). */
		lws_cancel_service(w->context);
		return;
	}
	lws_sul_schedule(w->context, 0, &w->tick, worker_tick, WORKER_TICK_US);
}

/*
 * HTTP on a connection of the device listener (defence in depth: they are
 * adopted raw, and channel.c answers anything but the fleet.v1 upgrade with
 * 404/405 itself): 404 (GET) or 405, then close; never the API.
 */
static int
worker_device_http(struct lws *wsi, enum lws_callback_reasons reason,
		   void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return -1;
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
	case LWS_CALLBACK_HTTP:
		lws_return_http_status(
			wsi,
			lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0
				? HTTP_STATUS_NOT_FOUND
				: HTTP_STATUS_METHOD_NOT_ALLOWED,
			NULL);
		return -1;
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_RECEIVE:
		return -1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- the api listener's optional client certificate (EST) ---------- */

/* SSL ex-data of api connections: bits of what verification saw. */
static int worker_api_ssl_index = -1;
#define WORKER_CERT_SEEN 1u
#define WORKER_CERT_EXPIRED 2u /* the leaf's notAfter has passed */
#define WORKER_CERT_BAD 4u /* any other error, at any depth */

enum api_client_cert
worker_client_cert_state(SSL *ssl)
{
	uintptr_t bits;

	if (ssl == NULL || worker_api_ssl_index < 0 ||
	    SSL_get0_peer_certificate(ssl) == NULL)
		return API_CLIENT_CERT_NONE;
	bits = (uintptr_t)SSL_get_ex_data(ssl, worker_api_ssl_index);
	if ((bits & WORKER_CERT_SEEN) == 0 || (bits & WORKER_CERT_BAD) != 0)
		return API_CLIENT_CERT_INVALID;
	if ((bits & WORKER_CERT_EXPIRED) != 0)
		return API_CLIENT_CERT_EXPIRED;
	return API_CLIENT_CERT_VERIFIED;
}

/*
 * Verification of a client certificate on the api listener. It is
 * optional there (operators and enrolling devices send none), so nothing
 * fails the handshake: each error is recorded in the SSL's ex-data and
 * verification goes on, and the API decides (EST re-enroll needs
 * VERIFIED, or EXPIRED within the grace window; docs/pki.md). Returning
 * "OK" after an error makes OpenSSL keep checking, so SSL's own verify
 * result would hold only the last error: the bits hold all of them, and
 * an expired certificate from an unknown CA is BAD, never EXPIRED.
 * lws convention: 0 = accept.
 */
static int
worker_api_verify(X509_STORE_CTX *xs, SSL *ssl, int preverify_ok)
{
	uintptr_t bits;

	if (ssl == NULL || worker_api_ssl_index < 0)
		return 0;
	bits = (uintptr_t)SSL_get_ex_data(ssl, worker_api_ssl_index);
	bits |= WORKER_CERT_SEEN;
	if (!preverify_ok) {
		if (X509_STORE_CTX_get_error(xs) ==
			    X509_V_ERR_CERT_HAS_EXPIRED &&
		    X509_STORE_CTX_get_error_depth(xs) == 0)
			bits |= WORKER_CERT_EXPIRED;
		else
			bits |= WORKER_CERT_BAD;
	}
	SSL_set_ex_data(ssl, worker_api_ssl_index, (void *)bits);
	return 0;
}

/*
 * The api listener's trust anchors for client certificates: the device
 * issuing CA(s) of the bundle (not the root: a certificate the root
 * signed directly is no device's), all of them during an issuing-CA
 * rollover (docs/pki.md). Returns 0, or 1 to fail the vhost.
 */
static int
worker_api_ssl_setup(SSL_CTX *ctx, struct worker *w)
{
	char bundle[4096];
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	BIO *bio = NULL;
	X509 *cert;
	int anchors = 0;

	snprintf(bundle, sizeof(bundle), "%s/ca-bundle.pem", w->cfg->pki_dir);
	bio = BIO_new_file(bundle, "r");
	if (store == NULL || names == NULL || bio == NULL)
		goto fail;
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		uint32_t flags = X509_get_extension_flags(cert);

		if ((flags & EXFLAG_CA) != 0 && (flags & EXFLAG_SS) == 0) {
			X509_NAME *name =
				X509_NAME_dup(X509_get_subject_name(cert));

			if (X509_STORE_add_cert(store, cert) != 1 ||
			    name == NULL ||
			    sk_X509_NAME_push(names, name) <= 0) {
				X509_NAME_free(name);
				X509_free(cert);
				goto fail;
			}
			anchors++;
		}
		X509_free(cert);
	}
	ERR_clear_error();
	BIO_free(bio);
	bio = NULL;
	if (anchors == 0) {
		log_error("worker %d: %s holds no device issuing CA", w->slot,
			  bundle);
		goto fail;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
					    X509_V_FLAG_X509_STRICT);
	X509_STORE_set_purpose(store, X509_PURPOSE_SSL_CLIENT);
	SSL_CTX_set_cert_store(ctx, store);
	SSL_CTX_set_client_CA_list(ctx, names);
	if (worker_api_ssl_index < 0)
		worker_api_ssl_index =
			SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return worker_api_ssl_index < 0;
fail:
	log_openssl(LOG_LEVEL_ERROR, "worker: api client trust anchors");
	BIO_free(bio);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	X509_STORE_free(store);
	return 1;
}

static int
worker_protocol_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct worker *w;

	/* TLS set-up and verification of the api listener: lws calls them
	 * on protocols[0] with a NULL or stand-in wsi. */
	if (reason == LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION)
		return worker_api_verify(user, in, (int)len);
	w = lws_context_user(lws_get_context(wsi));
	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
		return worker_api_ssl_setup(user, w);

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		job_pool_drain(w->presence_jobs);
		job_pool_drain(w->jobs);
		job_pool_drain(w->channel_jobs);
		channel_on_wake(w->channel);
		return 0;
	}
	/* Device connections are raw TLS (channel.c) and never reach HTTP;
	 * should one (a TLS context of the device listener) get here, it is
	 * refused, never served the API. */
	if (channel_owns(wsi))
		return worker_device_http(wsi, reason, user, in, len);
	return http_api_callback(wsi, reason, user, in, len);
}

/* Reads listen socket i or not, from the two reasons to stop. */
static void
worker_listener_update(struct worker *w, int i)
{
	bool want = !worker_accept_paused[i] &&
		    !(i == 1 && worker_handshakes_paused);

	if (w->listeners[i] == NULL || worker_listener_off[i] == !want)
		return;
	worker_listener_off[i] = !want;
	lws_rx_flow_control(w->listeners[i], want ? 1 : 0);
}

/*
 * The worker is near its open-files limit: stop reading the listen
 * socket of wsi (the other workers, which share it, accept what comes,
 * or it waits in the kernel's backlog) instead of failing accept4() with
 * EMFILE on every loop turn while the socket stays readable. The tick
 * resumes it when descriptors have been freed (worker_accept_resume).
 */
static void
worker_accept_pause(struct worker *w, struct lws *wsi)
{
	for (int i = 0; i < 2; i++) {
		if (w->listeners[i] != wsi || worker_accept_paused[i])
			continue;
		worker_accept_paused[i] = true;
		worker_listener_update(w, i);
		if (worker_accept_warned_ms != 0 &&
		    clock_mono_ms() - worker_accept_warned_ms < 60000)
			continue;
		worker_accept_warned_ms = clock_mono_ms();
		log_warn("worker %d: %d descriptors open, near the open-files "
			 "limit: not accepting on the %s listener until "
			 "connections close (more workers hold more; "
			 "docs/ops/sizing.md)",
			 w->slot, worker_fd_ceiling, i == 0 ? "api" : "device");
	}
}

/* From the tick: accept again once the lowest free descriptor number is
 * below the ceiling (one dup() to find it). */
static void
worker_accept_resume(struct worker *w)
{
	int probe;

	if (!worker_accept_paused[0] && !worker_accept_paused[1])
		return;
	probe = fcntl(w->api_fd >= 0 ? w->api_fd : w->device_fd,
		      F_DUPFD_CLOEXEC, 0);
	if (probe >= 0)
		close(probe);
	if (probe < 0 || probe >= worker_fd_ceiling)
		return;
	for (int i = 0; i < 2; i++) {
		if (!worker_accept_paused[i])
			continue;
		worker_accept_paused[i] = false;
		worker_listener_update(w, i);
	}
	log_debug("worker %d: descriptors freed: accepting again", w->slot);
}

/* A device connection's handshake ended (done, failed or closed). */
static void
worker_handshake_done(struct worker *w, struct lws *wsi)
{
	lws_set_opaque_user_data(wsi, NULL);
	if (worker_handshakes > 0)
		worker_handshakes--;
	if (worker_handshakes_paused &&
	    worker_handshakes < WORKER_HANDSHAKES_MAX) {
		worker_handshakes_paused = false;
		worker_listener_update(w, 1);
	}
}

/*
 * The device listener's callback: counts the handshakes in flight
 * (above), then hands everything to the channel. The first data read
 * (the upgrade request, after the TLS handshake), a writeable callback
 * or the wsi's end, whichever comes first, ends the count; lws sends
 * WSI_DESTROY for every wsi it frees, also for a handshake that failed.
 */
static int
worker_device_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	if (wsi != NULL &&
	    (reason == LWS_CALLBACK_RAW_RX ||
	     reason == LWS_CALLBACK_RAW_WRITEABLE ||
	     reason == LWS_CALLBACK_RAW_CLOSE ||
	     reason == LWS_CALLBACK_WSI_DESTROY) &&
	    lws_get_opaque_user_data(wsi) == &worker_in_handshake)
		worker_handshake_done(lws_context_user(lws_get_context(wsi)),
				      wsi);
	return channel_callback(wsi, reason, user, in, len);
}

/* The ceiling from the open-files limit the supervisor raised. */
static void
worker_fd_limits(struct worker *w)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	if (rl.rlim_cur > (rlim_t)INT32_MAX)
		rl.rlim_cur = INT32_MAX;
	worker_fd_ceiling = (int)rl.rlim_cur > 2 * WORKER_FD_RESERVE
				    ? (int)rl.rlim_cur - WORKER_FD_RESERVE
				    : (int)rl.rlim_cur / 2;
	log_info("worker %d: open-files limit %ld: at most about %d "
		 "connections",
		 w->slot, (long)rl.rlim_cur, worker_fd_ceiling);
}

/* A shared listen socket is readable: accept a batch, hand each to lws. */
static int
worker_listener_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct worker *w = lws_context_user(lws_get_context(wsi));
	int lfd = lws_get_socket_fd(wsi);
	struct lws_vhost *vh;

	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
		/* lws closes a listener itself when its socket is shut down
		 * (stop_children, or a sibling worker): forget the wsi. */
		for (int i = 0; i < 2; i++) {
			if (w->listeners[i] == wsi)
				w->listeners[i] = NULL;
		}
		return 0;
	}
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	vh = lfd == w->api_fd ? w->api_vhost : w->device_vhost;
	for (int i = 0; i < ACCEPT_BATCH && vh != NULL; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		lws_sock_file_fd_type desc;
		struct lws *conn;

		if (fd < 0 && errno == EINVAL) {
			/* The socket was shut down (the instance stops:
			 * worker_tick, or a sibling): no longer listening.
			 * libev reports the hang-up as readable, and would
			 * call this again on every loop turn: close the wsi
			 * (RAW_CLOSE_FILE forgets it). */
			log_info("worker %d: listen socket shut down", w->slot);
			return -1;
		}
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			worker_accept_pause(w, wsi);
			break;
		}
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("worker %d: accept: %s", w->slot,
					 strerror(errno));
			break;
		}
		/* Both listeners' connections are raw TLS: lws does the TLS
		 * and nothing else. The channel speaks the upgrade and RFC
		 * 6455 itself (channel.c, ws.c); the api listener parses
		 * HTTP/1.1 with h1.c (request.c), because lws 4.1's own
		 * parser drops or answers in HTML what must get problem+json
		 * (docs/internals/threat-model.md). On failure lws closes fd
		 * itself. */
		desc.sockfd = fd;
		conn = lws_adopt_descriptor_vhost(
			vh, LWS_ADOPT_SOCKET | LWS_ADOPT_ALLOW_SSL, desc,
			vh == w->device_vhost ? "fleet.v1" : "http", NULL);
		if (conn == NULL)
			log_warn("worker %d: cannot adopt a connection",
				 w->slot);
		if (conn != NULL && vh == w->device_vhost) {
			lws_set_opaque_user_data(conn, &worker_in_handshake);
			worker_handshakes++;
		}
		/* Descriptors are numbered lowest free first: fd at the
		 * ceiling means every number below it is taken. */
		if (fd >= worker_fd_ceiling) {
			worker_accept_pause(w, wsi);
			break;
		}
		if (vh == w->device_vhost &&
		    worker_handshakes >= WORKER_HANDSHAKES_MAX) {
			worker_handshakes_paused = true;
			worker_listener_update(w, 1);
			break;
		}
	}
	return 0;
}

/* The api listener never upgrades to a websocket: no protocol here but
 * HTTP (and the raw listen sockets). */
static struct lws_protocols api_protocols[] = {
	{"http", worker_protocol_callback, 0, 0, 0, NULL, 0},
	{"fleet-listener", worker_listener_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static int
worker_listen(struct worker *w)
{
	int fds[2] = {w->api_fd, w->device_fd};

	for (int i = 0; i < 2; i++) {
		lws_sock_file_fd_type desc;

		if (fds[i] < 0)
			continue;
		desc.filefd = fds[i];
		w->listeners[i] = lws_adopt_descriptor_vhost(
			w->api_vhost, LWS_ADOPT_RAW_FILE_DESC, desc,
			"fleet-listener", NULL);
		if (w->listeners[i] == NULL) {
			log_error("worker %d: cannot poll listen socket",
				  w->slot);
			return -1;
		}
	}
	return 0;
}

static int
worker_api_vhost(struct worker *w, char *cert, char *key)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "api";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = api_protocols;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	info.alpn = "http/1.1";
	info.ssl_options_set = WORKER_TLS_OPTIONS;
	info.ssl_cipher_list = WORKER_TLS12_CIPHERS;
	/* An optional client certificate, for EST re-enroll (api/est.c):
	 * requested, never required; worker_api_verify records what
	 * verification found and fails nothing. */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
		       LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
	info.keepalive_timeout = 30;
	info.retry_and_idle_policy = channel_idle_policy(w->channel);
	api_protocols[0].per_session_data_size = http_session_size();
	w->api_vhost = lws_create_vhost(w->context, &info);
	if (w->api_vhost == NULL) {
		log_error("worker %d: cannot set up the api listener (TLS "
			  "certificate %s)",
			  w->slot, cert);
		return -1;
	}
	return 0;
}

static struct lws_protocols device_protocols[] = {
	{"fleet.v1", worker_device_callback, 0, 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The device listener: mutual TLS; the channel narrows the trust anchors
 * to the device issuing CA(s) of the bundle and turns resumption off. */
static int
worker_device_vhost(struct worker *w, char *cert, char *key)
{
	struct lws_context_creation_info info;
	char ca[4096];

	snprintf(ca, sizeof(ca), "%s/ca-bundle.pem", w->cfg->pki_dir);
	memset(&info, 0, sizeof(info));
	info.vhost_name = "device";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = device_protocols;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	info.ssl_ca_filepath = ca;
	info.alpn = "http/1.1";
	info.ssl_options_set = WORKER_TLS_OPTIONS;
	info.ssl_cipher_list = WORKER_TLS12_CIPHERS;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
	info.retry_and_idle_policy = channel_idle_policy(w->channel);
	info.user = w->channel;
	device_protocols[0].per_session_data_size = channel_session_size();
	w->device_vhost = lws_create_vhost(w->context, &info);
	if (w->device_vhost == NULL) {
		log_error("worker %d: cannot set up the device listener",
			  w->slot);
		return -1;
	}
	return 0;
}

static int
worker_load_pki(struct worker *w, char *cert, size_t certlen, char *key,
		size_t keylen)
{
	char path[4096];
	char err[512];

	snprintf(cert, certlen, "%s/server/server-chain.pem", w->cfg->pki_dir);
	snprintf(key, keylen, "%s/server/server.key", w->cfg->pki_dir);
	snprintf(path, sizeof(path), "%s/ca-bundle.pem", w->cfg->pki_dir);
	if (read_file_bounded(path, PEM_BUNDLE_MAX, &w->ca_bundle_pem, NULL,
			      err, sizeof(err)) != 0) {
		log_error("worker %d: %s (run `fleetd pki init`?)", w->slot,
			  err);
		return -1;
	}
	w->env.ca_bundle_pem = w->ca_bundle_pem;
	w->env.chain_pem = w->ca_bundle_pem;
	w->env.device_server_url = w->cfg->device_url;
	w->env.cert_validity_s = w->cfg->cert_validity;
	w->env.heartbeat_timeout_s = w->cfg->heartbeat_timeout;
	w->env.cert_grace_s = w->cfg->cert_grace;
	return 0;
}

/*
 * The lws context on a foreign libev loop (epoll only: with flags 0 libev
 * could fall back to poll() or select()). lws registers every descriptor
 * (adopted sockets, the raw listen sockets, the wake pipe of
 * lws_cancel_service) as an ev_io watcher and runs its timers (suls) from
 * one ev_timer; with a foreign loop it installs no signal watcher, so
 * SIGTERM keeps the worker's own handler. lws dlopens its libev plugin
 * (Debian: libwebsockets-evlib-ev), which links the same libev.
 */
static int
worker_context(struct worker *w, struct ev_loop *loop)
{
	struct lws_context_creation_info info;
	void *loops[1] = {loop};

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = loops;
	info.user = w;
	/* How long a TLS handshake may take (lws reads it from the context
	 * only; its default is 5 s). In a reconnect storm on a busy machine
	 * handshakes queue for CPU, and every one cut at 5 s is redone from
	 * the start by a device that backs off; a slow or silent peer is
	 * still cut after 10 s. */
	info.timeout_secs = 10;
	w->context = lws_create_context(&info);
	if (w->context == NULL) {
		log_error("worker %d: cannot create lws context on libev (is "
			  "libwebsockets-evlib-ev installed?)",
			  w->slot);
		return -1;
	}
	return 0;
}

static void
worker_lws_log(int level, const char *line)
{
	size_t len = strlen(line);

	while (len > 0 && line[len - 1] == '\n')
		len--;
	log_write(level == LLL_ERR ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "lws",
		  "%.*s", (int)len, line);
}

int
worker_main(int slot, int signer_fd, int api_fd, int device_fd, bool held,
	    const struct fleetd_config *cfg)
{
	struct job_pool_ops ops = {worker_thread_init, worker_thread_fini,
				   worker_wake, NULL};
	struct job_pool_ops store_ops = {worker_store_init, worker_store_fini,
					 worker_wake, NULL};
	struct channel_deps deps;
	struct campaign_driver *driver = NULL;
	size_t channel_threads;
	struct sigaction sa;
	struct ev_loop *loop = NULL;
	struct worker w;
	char cert[4096], key[4096];
	int rc = 1;

	memset(&w, 0, sizeof(w));
	w.slot = slot;
	w.cfg = cfg;
	w.api_fd = api_fd;
	w.parent = getppid();
	w.device_fd = device_fd;
	w.listeners_held = held;
	snprintf(cert, sizeof(cert), "fleetd-net%d", slot);
	prctl(PR_SET_NAME, cert, 0, 0, 0);
	metrics_worker_start(slot);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	lws_set_log_level(log_current_level() >= LOG_LEVEL_DEBUG
				  ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
				  : LLL_ERR | LLL_WARN,
			  worker_lws_log);
	worker_fd_limits(&w);
	if (worker_load_pki(&w, cert, sizeof(cert), key, sizeof(key)) != 0)
		goto out;
	w.signer = signer_client_new(signer_fd);
	if (w.signer == NULL)
		goto out;
	loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (loop == NULL) {
		log_error("worker %d: cannot create an epoll event loop: %s",
			  slot, strerror(errno));
		goto out;
	}
	if (worker_context(&w, loop) != 0)
		goto out;
	ops.arg = &w;
	store_ops.arg = &w;
	/* Before any job thread looks an Idempotency-Key up. */
	db_idem_retention_set(cfg->idempotency_retention);
	db_commit_timeout_set(cfg->database_commit_timeout);
	/* Separate capacity: API requests, device work, presence ticks. */
	channel_threads =
		cfg->job_threads > 2 ? (size_t)cfg->job_threads / 2 : 1;
	w.jobs =
		job_pool_new((size_t)cfg->job_threads, WORKER_MAX_QUEUED, &ops);
	w.channel_jobs = job_pool_new(channel_threads, WORKER_CHANNEL_QUEUED,
				      &store_ops);
	w.presence_jobs = job_pool_new(1, WORKER_PRESENCE_QUEUED, &store_ops);
	w.store = store_new(cfg->database);
	w.listener_store = store_new(cfg->database);
	if (w.jobs == NULL || w.channel_jobs == NULL ||
	    w.presence_jobs == NULL || w.store == NULL ||
	    w.listener_store == NULL)
		goto out;
	deps.jobs = w.channel_jobs;
	deps.presence_jobs = w.presence_jobs;
	deps.store = w.store;
	deps.listener_store = w.listener_store;
	deps.signer = w.signer;
	w.channel = channel_new(w.context, &deps, cfg, slot);
	if (w.channel == NULL)
		goto out;
	/* Every worker tries the campaign driver lock; one drives. */
	driver = campaign_driver_start(cfg, slot, &worker_stop_requested);
	if (driver == NULL)
		goto out;
	if (worker_api_vhost(&w, cert, key) != 0 ||
	    worker_device_vhost(&w, cert, key) != 0 || worker_listen(&w) != 0)
		goto out;
	lws_sul_schedule(w.context, 0, &w.tick, worker_tick, WORKER_TICK_US);
	log_info("worker %d: serving api on %s:%ld, devices on %s:%ld", slot,
		 cfg->api_bind, cfg->api_port, cfg->device_bind,
		 cfg->device_port);
	/* lws arms its libev timer only after an event it serviced (or from
	 * that timer): the wake makes one, so the ticks scheduled above run
	 * on a worker that gets no connection. */
	lws_cancel_service(w.context);
	/* One libev iteration at a time (EVRUN_ONCE: wait for at least one
	 * event or the next timer, handle what is pending), so the drain
	 * check runs between them as it ran between lws_service calls.
	 * SIGTERM interrupts the wait; the tick (at most WORKER_TICK_US
	 * later) turns it into stopping. */
	while (!worker_drained(&w))
		ev_run(loop, EVRUN_ONCE);
	rc = 0;
out:
	/* Listener thread and jobs first: they may still wake the loop or
	 * touch connections. */
	campaign_driver_stop(driver);
	channel_stop(w.channel);
	job_pool_free(w.presence_jobs);
	job_pool_free(w.channel_jobs);
	job_pool_free(w.jobs);
	/* Outside ev_run: with a foreign libev loop lws closes every
	 * connection and stops its watchers within this call (libev has no
	 * asynchronous close), so the loop can go right after it. */
	if (w.context != NULL)
		lws_context_destroy(w.context);
	if (loop != NULL)
		ev_loop_destroy(loop);
	channel_free(w.channel);
	store_free(w.listener_store);
	store_free(w.store);
	signer_client_free(w.signer);
	free(w.ca_bundle_pem);
	return rc;
}
