/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery inside a net worker (issue 9; see config.c and
 * docs/internals/config-delivery.md): the hooks channel.c calls. All on
 * the worker's event loop except channel_cfg_notified (listener thread).
 */
#ifndef FLEETD_CHANNEL_CONFIG_DELIVERY_H
#define FLEETD_CHANNEL_CONFIG_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

struct channel;
struct channel_session;
struct channel_cfg;

/* NULL when out of memory. */
struct channel_cfg *channel_cfg_new(struct channel *ch);
void channel_cfg_free(struct channel_cfg *c); /* accepts NULL */

/* Listener thread: fleet_config fired, or the listener (re)started. True
 * when the loop must be woken (lws_cancel_service) to look. */
bool channel_cfg_notified(struct channel_cfg *c);

/* Loop, after a wake: compares desired with reported for every session
 * of the worker when a notification came (one query for all of them). */
void channel_cfg_on_wake(struct channel_cfg *c);

/* Loop, every presence tick: the periodic re-check (a safety net for a
 * notification that never came). */
void channel_cfg_tick(struct channel_cfg *c, uint64_t now_ms);

/* Loop: s passed its checks; it gets what differs for its device. */
void channel_cfg_session_opened(struct channel_cfg *c,
				struct channel_session *s);

#endif
