/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the net worker's modules: the worker's state and the
 * callback of the api listener, whose connections lws hands over as raw
 * TLS sockets (request.c parses them with h1.c; lws parses no HTTP).
 */
#ifndef FLEETD_HTTP_HTTP_H
#define FLEETD_HTTP_HTTP_H

#include "api/api.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

struct fleetd_config;
struct job_pool;

struct worker {
	int slot;
	const struct fleetd_config *cfg;
	struct lws_context *context;
	struct lws_vhost *api_vhost;
	struct lws_vhost *device_vhost;
	int api_fd; /* listen sockets from the supervisor */
	int device_fd;
	bool listeners_held; /* by the service manager: never shut down */
	pid_t parent; /* the supervisor, at start */
	struct lws *listeners[2]; /* their raw wsis on this loop */
	struct job_pool *jobs; /* API requests (thread state: api_ctx) */
	struct job_pool *channel_jobs; /* device work (state: store) */
	struct job_pool *presence_jobs; /* presence ticks (state: store) */
	struct store *store; /* the loop thread's own */
	struct store *listener_store; /* the channel listener's own */
	struct signer_client *signer;
	struct channel *channel;
	struct api_env env;
	char *ca_bundle_pem;
	uint64_t request_seq;
	bool stopping;
	/* api connections open now; a stopping worker lets them finish
	 * (their next answer says connection: close) until stop_deadline_ms
	 * (clock_mono_ms), so a restart (SIGHUP) drops no request. */
	size_t api_open;
	uint64_t stop_deadline_ms;
	lws_sorted_usec_list_t tick;
	/* Heap trimming after connection churn (worker_trim). */
	uint64_t trim_checked_ms;
	size_t trim_free; /* free heap bytes at the last trim */
};

/* The api listener's callback (protocol "http", raw TLS connections). */
int http_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		      void *user, void *in, size_t len);

/* What the api listener's handshake made of the client certificate of
 * ssl (worker.c); API_CLIENT_CERT_NONE when it sent none. */
enum api_client_cert worker_client_cert_state(SSL *ssl);

/* Size of the per-connection state http_api_callback uses. */
size_t http_session_size(void);

#endif
