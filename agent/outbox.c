/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox: which queued reports are on the wire (see agent_int.h).
 * Reports stay in state_dir/queue until the server acknowledges their seq;
 * up to AGENT_INFLIGHT_MAX go out unacknowledged, oldest first; a reset
 * (new connection, or a retry after the server said "unavailable" or
 * stayed silent) sends everything still queued again. No lws here, so the
 * rules are unit-tested on their own. Runs on the agent's event loop.
 */
#include <string.h>

#include "agent_int.h"

void
agent_outbox_init(struct agent_outbox *o, const char *dir)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
}

void
agent_outbox_reset(struct agent_outbox *o)
{
	o->sent_upto = 0;
	o->ninflight = 0;
	o->retry_due = false;
}

static bool
drop_inflight(struct agent_outbox *o, uint64_t seq)
{
	int i;

	for (i = 0; i < o->ninflight; i++) {
		if (o->inflight[i] == seq) {
			o->inflight[i] = o->inflight[o->ninflight - 1];
			o->ninflight--;
			return true;
		}
	}
	return false;
}

int
agent_outbox_next(struct agent_outbox *o, uint64_t *seq, char **text,
		  size_t *len, char *err, size_t errlen)
{
	uint64_t s;
	int n;

	if (o->ninflight >= AGENT_INFLIGHT_MAX)
		return 0;
	n = agent_queue_next(o->dir, o->sent_upto, &s, text, len, err, errlen);
	if (n != 1)
		return n;
	o->sent_upto = s;
	o->inflight[o->ninflight++] = s;
	*seq = s;
	return 1;
}

int
agent_outbox_ack(struct agent_outbox *o, uint64_t seq, char *err, size_t errlen)
{
	/* Also an ack for a seq sent on an earlier connection: the server
	 * has it either way. */
	(void)drop_inflight(o, seq);
	return agent_queue_remove(o->dir, seq, err, errlen);
}

void
agent_outbox_nack(struct agent_outbox *o, uint64_t seq)
{
	if (drop_inflight(o, seq))
		o->retry_due = true;
}
