/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agents' timers (agent.c), exported for the unit test: in a context
 * made by fleet_agent_context_new for more than one agent they sit on the
 * context's timing wheel (O(1) to arm and cancel, fired at most one 100 ms
 * tick late, never early); otherwise, and for delays under a tick, they
 * are lws timers. lws_sul_cancel cancels either kind. Loop thread only.
 */
#ifndef FLEET_AGENT_TIMER_H
#define FLEET_AGENT_TIMER_H

#include <libwebsockets.h>

/* Arms sul to call cb in us microseconds, replacing its previous arming. */
void agent_timer(struct lws_context *ctx, lws_sorted_usec_list_t *sul,
		 sul_cb_t cb, lws_usec_t us);

#endif
