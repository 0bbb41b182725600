/* SPDX-License-Identifier: Apache-2.0 */
/* The generic stand-in handler of test_report_dispatch: fake_channel_report.h. */
#include "fake_channel_report.h"

#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"
#include "core/report.h"
#include "proto/proto.h"

struct fake_report_job {
	uint64_t seq;
	const char *type;
	char *body;
	enum report_answer answer;
};

static void
fake_report_run(struct store *st, const char *device_id, void *arg)
{
	struct fake_report_job *job = arg;
	struct report r = {job->seq, job->type, job->body};

	job->answer = report_submit(st, device_id, &r);
}

static void
fake_report_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct fake_report_job *job = arg;
	const char *status = report_answer_status(job->answer);

	(void)ch;
	if (s != NULL && status != NULL)
		channel_send(s,
			     json_pack("{s:s, s:I, s:s}", "type", "ack", "seq",
				       (json_int_t)job->seq, "status", status));
	free(job->body);
	free(job);
}

void
fake_channel_report(struct channel *ch, struct channel_session *s,
		    struct proto_msg *m)
{
	struct fake_report_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {fake_report_run, fake_report_done, job};

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
