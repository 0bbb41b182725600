/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config.status handler of the channel's message table (dispatch.c):
 * a report like the others (acknowledged, applied once per seq; the
 * answers of docs/internals/reports.md), whose effect is the device's
 * reported configuration state, decided by core (config_delivery_report).
 * A report about a generation or hash that was never sent is acknowledged
 * (the agent must drop it) but ignored and counted. Runs on the worker's
 * loop; the storage work on a job thread. Uses only the channel seam
 * (channel_int.h), no lws.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"
#include "core/config_delivery.h"
#include "log.h"
#include "proto/proto.h"

struct status_job {
	uint64_t seq;
	char *body; /* compact JSON of the validated report */
	int64_t generation;
	char sha256[65];
	char state[16];
	char *reason;
	enum report_answer answer;
	enum config_report_verdict verdict;
};

static void
status_job_free(struct status_job *job)
{
	free(job->body);
	free(job->reason);
	free(job);
}

static void
status_run(struct store *st, const char *device_id, void *arg)
{
	struct status_job *job = arg;
	struct report r = {job->seq, "config.status", job->body};
	struct config_status cs = {job->generation, job->sha256, job->state,
				   job->reason};

	job->answer =
		config_delivery_report(st, device_id, &r, &cs, &job->verdict);
	if (job->answer == REPORT_RETRY)
		log_write(LOG_LEVEL_WARN, device_id,
			  "channel: config.status seq %llu not applied "
			  "(storage)",
			  (unsigned long long)job->seq);
	else if (job->answer == REPORT_ACK_APPLIED &&
		 job->verdict != CONFIG_REPORT_ACCEPT)
		log_write(LOG_LEVEL_INFO, device_id,
			  "channel: config.status seq %llu ignored (%s: "
			  "generation %lld)",
			  (unsigned long long)job->seq,
			  config_report_verdict_name(job->verdict),
			  (long long)job->generation);
}

static void
status_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct status_job *job = arg;
	const char *status = report_answer_status(job->answer);

	(void)ch;
	if (s == NULL) /* no ack: the agent sends it again */
		goto out;
	if (status != NULL)
		channel_send_ack(s, job->seq, status);
	else if (job->answer == REPORT_REFUSED)
		channel_send_report_error(
			s, "refused",
			"the device is not active; report not applied",
			job->seq, "config.status");
	else
		channel_send_report_error(
			s, "unavailable",
			"report not applied now; send it again later", job->seq,
			"config.status");
out:
	status_job_free(job);
}

void
channel_cfg_status(struct channel *ch, struct channel_session *s,
		   struct proto_msg *m)
{
	struct status_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {status_run, status_done, job};
	const char *reason = proto_str(m, "error");

	if (job == NULL)
		goto busy;
	/* proto_decode validated every field: sizes are bounded. */
	job->seq = m->seq;
	job->generation = proto_int(m, "config_version", 0);
	snprintf(job->sha256, sizeof(job->sha256), "%s",
		 proto_str(m, "config_hash"));
	snprintf(job->state, sizeof(job->state), "%s", proto_str(m, "state"));
	job->body = json_dumps(m->body, JSON_COMPACT);
	if (job->body == NULL)
		goto busy;
	if (reason != NULL) {
		job->reason = strdup(reason);
		if (job->reason == NULL)
			goto busy;
	}
	if (channel_submit_work(ch, s, &work))
		return;
busy:
	if (job != NULL)
		status_job_free(job);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "config.status");
}
