/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox: which queued reports are on the wire (see agent_int.h).
 * Reports stay in state_dir/queue until the server acknowledges their seq;
 * up to AGENT_INFLIGHT_MAX go out unacknowledged, oldest first; a reset
 * (new connection, or a retry after the server said "unavailable" or
 * stayed silent) sends everything still queued again. No lws here, so the
 * rules are unit-tested on their own. Runs on the agent's event loop.
 */
#include <stdio.h>
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
	o->nbatch = 0;
	o->ibatch = 0;
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
	size_t t_len = 0;
	uint64_t s;
	int n;

	if (skipped != NULL)
		*skipped = 0;
	if (o->ninflight >= AGENT_INFLIGHT_MAX)
		return 0;
	/* Each turn consumes one seq above sent_upto, so this ends. */
	for (;;) {
		if (o->ibatch >= o->nbatch) {
			n = agent_queue_list(o->dir, o->sent_upto, o->batch,
					     AGENT_OUTBOX_BATCH);
			if (n < 0) {
				snprintf(err, errlen,
					 "%s: cannot read the queue", o->dir);
				return -1;
			}
			o->nbatch = n;
			o->ibatch = 0;
			if (n == 0)
				return 0;
		}
		s = o->batch[o->ibatch++];
		if (s <= o->sent_upto)
			continue;
		o->sent_upto = s;
		n = agent_queue_read(o->dir, s, &t, &t_len, err, errlen);
		if (n == 0)
			continue; /* acknowledged meanwhile */
		if (n == 1 && report_ok(t, t_len, s))
			break;
		free(t);
		t = NULL;
		if (agent_queue_quarantine(o->dir, s, err, errlen) != 0)
			return -1;
		if (skipped != NULL)
			(*skipped)++;
	}
	o->inflight[o->ninflight++] = s;
	*seq = s;
	*text = t;
	*len = t_len;
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
