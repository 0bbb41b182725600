/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device channel of one net worker (DESIGN.md §2, §8): websocket
 * sessions of devices on the device listener (mutual TLS, subprotocol
 * fleet.v1), presence in PostgreSQL, and a LISTEN thread that makes every
 * worker look again at revocations when PostgreSQL notifies a change.
 */
#ifndef FLEETD_CHANNEL_H
#define FLEETD_CHANNEL_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct fleetd_config;
struct job_pool;
struct store;
struct channel;
struct signer_client;

/* What the worker gives its channel; all outlive it. */
struct channel_deps {
	/* Sessions' storage work (open, close, message handlers); each
	 * thread's state is its own struct store (core/store.h). Separate
	 * from the API's pool, so devices cannot starve the API. */
	struct job_pool *jobs;
	/* Presence ticks only (one thread, state struct store): the worker's
	 * heartbeat never waits behind device work. */
	struct job_pool *presence_jobs;
	struct store *store; /* the loop thread's: register, unregister */
	struct store *listener_store; /* the listener thread's */
	/* The worker's client of the ca process: renewals (cert.csr) are
	 * signed through it on job threads. */
	struct signer_client *signer;
};

/* Registers the worker (blocking: call before serving) and starts the
 * listener thread. NULL on failure (logged). */
struct channel *channel_new(struct lws_context *context,
			    const struct channel_deps *deps,
			    const struct fleetd_config *cfg, int slot);

/* Whether wsi came in on the device listener (its TLS context is the
 * device vhost's). Such a connection may only become a fleet.v1 session:
 * the worker answers any other request on it with 404/405. */
bool channel_owns(struct lws *wsi);

/* Stops the listener thread and new work; call before the job pool and
 * the lws context go. Accepts NULL. */
void channel_stop(struct channel *ch);

/* Takes the worker's sessions offline in PostgreSQL and frees. NULL ok. */
void channel_free(struct channel *ch);

/* On the loop, after lws_cancel_service: close revoked sessions. */
void channel_on_wake(struct channel *ch);

/* Protocol "fleet.v1" on the device vhost; its vhost user is the channel. */
int channel_callback(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len);
size_t channel_session_size(void);

/* Ping and hang-up policy for the device vhost (heartbeat settings). */
const lws_retry_bo_t *channel_idle_policy(struct channel *ch);

#endif
