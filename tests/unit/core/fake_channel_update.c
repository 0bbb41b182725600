/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stand-ins for fleetd/channel/update.c in test_report_dispatch: the
 * message table's update.status and keys.status lines must reach a
 * handler, which here applies the report through the report path
 * (acknowledged once), so that test stays about the table; a hello has
 * nothing to offer here.
 */
#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"
#include "channel/update.h"
#include "core/report.h"
#include "proto/proto.h"

struct fake_update_job {
	uint64_t seq;
	const char *type;
	char *body;
	enum report_answer answer;
};

static void
fake_update_run(struct store *st, const char *device_id, void *arg)
{
	struct fake_update_job *job = arg;
	struct report r = {job->seq, job->type, job->body};

	job->answer = report_submit(st, device_id, &r);
}

static void
fake_update_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct fake_update_job *job = arg;
	const char *status = report_answer_status(job->answer);

	(void)ch;
	if (s != NULL && status != NULL)
		channel_send(s,
			     json_pack("{s:s, s:I, s:s}", "type", "ack", "seq",
				       (json_int_t)job->seq, "status", status));
	free(job->body);
	free(job);
}

static void
fake_update_report(struct channel *ch, struct channel_session *s,
		   struct proto_msg *m)
{
	struct fake_update_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {fake_update_run, fake_update_done, job};

	if (job == NULL)
		return;
	job->seq = m->seq;
	job->type = m->def->name;
	job->body = json_dumps(m->body, JSON_COMPACT);
	if (job->body == NULL || !channel_submit_work(ch, s, &work)) {
		free(job->body);
		free(job);
	}
}

void
channel_update_status(struct channel *ch, struct channel_session *s,
		      struct proto_msg *m)
{
	fake_update_report(ch, s, m);
}

void
channel_keys_status(struct channel *ch, struct channel_session *s,
		    struct proto_msg *m)
{
	fake_update_report(ch, s, m);
}

void
channel_upd_hello(struct channel *ch, struct channel_session *s,
		  int64_t keyset_version)
{
	(void)ch;
	(void)s;
	(void)keyset_version;
}
