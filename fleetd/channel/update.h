/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Update offers and release key set delivery inside a net worker (issue
 * 11; see update.c and docs/internals/updates.md): the hooks channel.c
 * and dispatch.c call. All on the worker's event loop except
 * channel_upd_notified (listener thread).
 */
#ifndef FLEETD_CHANNEL_UPDATE_H
#define FLEETD_CHANNEL_UPDATE_H

#include <stdbool.h>
#include <stdint.h>

struct channel;
struct channel_session;
struct channel_upd;
struct proto_msg;

/* artifact_url_base: fleetd's config key (an https mirror; copied), or
 * NULL/"" for offers of /artifacts/<sha256> on the device listener.
 * NULL when out of memory. */
struct channel_upd *channel_upd_new(struct channel *ch,
				    const char *artifact_url_base);
void channel_upd_free(struct channel_upd *u); /* accepts NULL */

/* The worker's update delivery (channel.c). */
struct channel_upd *channel_upd_of(struct channel *ch);

/* Listener thread: fleet_update (offers) or fleet_keys (key sets) fired,
 * or the listener (re)started (both). True when the loop must be woken
 * (lws_cancel_service) to look. */
bool channel_upd_notified(struct channel_upd *u, bool offers, bool keys);

/* Loop, after a wake: what the notifications asked for, for every
 * session of the worker (one query for all of them). */
void channel_upd_on_wake(struct channel_upd *u);

/* Loop, every presence tick: the periodic re-check of offers. */
void channel_upd_tick(struct channel_upd *u, uint64_t now_ms);

/* Loop, after a hello (dispatch.c): the device's open deployment is
 * offered (again), and the key sets above keyset_version (-1: the hello
 * did not say; taken as 1) are sent in order. */
void channel_upd_hello(struct channel *ch, struct channel_session *s,
		       int64_t keyset_version);

/* The update.status and keys.status handlers of the message table. */
void channel_update_status(struct channel *ch, struct channel_session *s,
			   struct proto_msg *m);
void channel_keys_status(struct channel *ch, struct channel_session *s,
			 struct proto_msg *m);

#endif
