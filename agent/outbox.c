/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox: which queued reports are on the wire (see agent_int.h).
 * Reports stay in state_dir/queue until the server acknowledges their seq;
 * up to AGENT_INFLIGHT_MAX go out unacknowledged, oldest first; a reset
 * (new connection, or a retry after the server said "unavailable" or
 * stayed silent) sends everything still queued again. No lws here, so the
 * rules are unit-tested on their own. Runs on the agent's event loop.
 */
#include <stdlib.h>
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

/* True when text is a fleet.v1 report carrying seq. */
static bool
report_ok(const char *text, size_t len, uint64_t seq)
{
	struct proto_error err;
	struct proto_msg m;
	bool ok;

	memset(&m, 0, sizeof(m));
	if (proto_decode(text, len, PROTO_TO_SERVER, &m, &err) != PROTO_OK)
		return false;
	ok = m.def->report && m.seq == seq;
	proto_msg_clear(&m);
	return ok;
}

int
agent_outbox_next(struct agent_outbox *o, uint64_t *seq, char **text,
		  size_t *len, int *skipped, char *err, size_t errlen)
{
	char *t = NULL;
	uint64_t s, after = o->sent_upto;
	size_t n_len = 0;
	int n, tries;

	if (skipped != NULL)
		*skipped = 0;
	if (o->ninflight >= AGENT_INFLIGHT_MAX)
		return 0;
	for (tries = 0; tries < AGENT_QUEUE_MAX; tries++) {
		n = agent_queue_next(o->dir, after, &s, &t, &n_len, err,
				     errlen);
		if (n == 0)
			return 0;
		if (n == 1 && report_ok(t, n_len, s))
			break;
		free(t);
		t = NULL;
		if (n == -1)
			return -1;
		if (agent_queue_quarantine(o->dir, s, err, errlen) != 0)
			return -1;
		if (skipped != NULL)
			(*skipped)++;
		after = s;
	}
	if (t == NULL)
		return 0;
	o->sent_upto = s;
	o->inflight[o->ninflight++] = s;
	*seq = s;
	*text = t;
	*len = n_len;
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
