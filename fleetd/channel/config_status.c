/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config.status handler of the channel's message table (dispatch.c):
 * a report like the others (acknowledged, applied once per seq; the
 * answers of docs/internals/reports.md), whose effect is the device's
 * reported configuration state, decided by core (config_report_check).
 * A report about a generation or hash that was never sent is acknowledged
 * (the agent must drop it) but ignored and counted.
 *
 * Reports are applied in batches (docs/internals/perf.md): a clone makes
 * one report per device, thousands a second, and one transaction each
 * bounded delivery by PostgreSQL. The loop queues each report; while
 * fewer than STATUS_IN_FLIGHT batches run, everything queued goes to a
 * job thread as one batch (store_config_report_apply_batch: one
 * transaction, the window rule per report as before). When the load is
 * low a batch is one report and nothing waits; under load the queue
 * grows while the batches in flight commit, and the next batch takes it
 * all (group commit). Acks and errors are sent after the commit, to the
 * device's session on this worker.
 *
 * Runs on the worker's loop; the storage work on a job thread. Uses only
 * the channel seam (channel_int.h), no lws.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"
#include "core/config_delivery.h"
#include "core/store_config_batch.h"
#include "log.h"
#include "proto/proto.h"

#define STATUS_IN_FLIGHT 2 /* batches running at once per worker */
#define STATUS_BATCH_MAX 1024 /* reports per batch */
#define STATUS_QUEUED_MAX 32768 /* reports waiting; past it: "busy" */

/* One queued report. */
struct status_item {
	struct status_item *next;
	size_t index; /* arrival order within its batch */
	char device_id[37];
	uint64_t seq;
	char *body; /* compact JSON of the validated report */
	int64_t generation;
	char sha256[65];
	char state[16];
	char *reason;
	enum report_answer answer;
	enum config_report_verdict verdict;
};

struct cfg_status_batch {
	struct channel *ch;
	struct status_item *head, *tail;
	size_t queued;
	size_t in_flight;
};

/* A batch on its way to a job thread and back. It is submitted as the
 * work of the session whose report (or answer) flushed the queue, the
 * trigger: done() answers that device through the session it is given
 * and every other device of the batch through its session on this
 * worker, if it still has one. */
struct status_job {
	struct cfg_status_batch *b;
	struct status_item **items; /* by device id, then arrival */
	size_t n;
	char trigger[37]; /* "" when none */
	size_t others; /* items of devices other than the trigger */
};

static void
status_item_free(struct status_item *it)
{
	if (it == NULL)
		return;
	free(it->body);
	free(it->reason);
	free(it);
}

static void
status_job_free(struct status_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->n; i++)
		status_item_free(job->items[i]);
	free(job->items);
	free(job);
}

void
cfg_status_batch_free(struct cfg_status_batch *b)
{
	if (b == NULL)
		return;
	while (b->head != NULL) {
		struct status_item *it = b->head;

		b->head = it->next;
		status_item_free(it);
	}
	free(b);
}

static int
item_order(const void *a, const void *b)
{
	const struct status_item *const *x = a, *const *y = b;
	int c = strcmp((*x)->device_id, (*y)->device_id);

	if (c != 0)
		return c;
	return (*x)->index < (*y)->index ? -1 : (*x)->index > (*y)->index;
}

static enum report_answer
status_answer(const struct config_report_item *ri, enum store_rc rc)
{
	if (rc != STORE_OK)
		return REPORT_RETRY;
	if (ri->rc == STORE_NOTFOUND)
		return REPORT_REFUSED;
	switch (ri->verdict) {
	case REPORT_NEW:
		return REPORT_ACK_APPLIED;
	case REPORT_DUPLICATE:
		return REPORT_ACK_DUPLICATE;
	default:
		return REPORT_ACK_STALE;
	}
}

/*
 * Job thread. The store call takes distinct devices: a device that sent
 * several reports in one batch (a re-send, a drift after an apply) has
 * them applied in rounds, its k-th report in the k-th transaction, in
 * the order they arrived.
 */
static void
status_run(struct store *st, const char *device_id, void *arg)
{
	struct status_job *job = arg;
	struct config_report_item *ri = calloc(job->n, sizeof(*ri));
	struct status_item **round = calloc(job->n, sizeof(*round));
	size_t done = 0, *occurrence = calloc(job->n, sizeof(*occurrence));

	(void)device_id;
	if (ri == NULL || round == NULL || occurrence == NULL) {
		for (size_t i = 0; i < job->n; i++)
			job->items[i]->answer = REPORT_RETRY;
		goto out;
	}
	for (size_t i = 0; i < job->n; i++)
		occurrence[i] = i > 0 && strcmp(job->items[i - 1]->device_id,
						job->items[i]->device_id) == 0
					? occurrence[i - 1] + 1
					: 0;
	for (size_t k = 0; done < job->n; k++) {
		size_t m = 0;
		enum store_rc rc;

		for (size_t i = 0; i < job->n; i++) {
			struct status_item *it = job->items[i];

			if (occurrence[i] != k)
				continue;
			round[m] = it;
			ri[m] = (struct config_report_item){
				.device_id = it->device_id,
				.r = {it->seq, "config.status", it->body},
				.status = {it->generation, it->sha256,
					   it->state, it->reason},
			};
			m++;
		}
		rc = store_config_report_apply_batch(st, ri, m);
		if (rc != STORE_OK)
			log_warn("channel: %zu config.status reports not "
				 "applied (storage)",
				 m);
		for (size_t i = 0; i < m; i++) {
			round[i]->answer = status_answer(&ri[i], rc);
			round[i]->verdict = ri[i].cv;
			if (round[i]->answer == REPORT_ACK_APPLIED &&
			    ri[i].cv != CONFIG_REPORT_ACCEPT)
				log_write(LOG_LEVEL_INFO, round[i]->device_id,
					  "channel: config.status seq %llu "
					  "ignored (%s: generation %lld)",
					  (unsigned long long)round[i]->seq,
					  config_report_verdict_name(ri[i].cv),
					  (long long)round[i]->generation);
		}
		done += m;
	}
out:
	free(occurrence);
	free(round);
	free(ri);
}

static void
status_answer_send(struct channel_session *s, const struct status_item *it)
{
	const char *status = report_answer_status(it->answer);

	if (status != NULL)
		channel_send_ack(s, it->seq, status);
	else if (it->answer == REPORT_REFUSED)
		channel_send_report_error(
			s, "refused",
			"the device is not active; report not applied", it->seq,
			"config.status");
	else
		channel_send_report_error(
			s, "unavailable",
			"report not applied now; send it again later", it->seq,
			"config.status");
}

static int
item_find(const void *key, const void *elem)
{
	return strcmp(key, (*(struct status_item *const *)elem)->device_id);
}

/* Every answer of the batch for device id, through s. */
static void
status_answer_device(struct status_job *job, struct channel_session *s,
		     const char *id)
{
	struct status_item **hit;
	size_t i;

	hit = bsearch(id, job->items, job->n, sizeof(*job->items), item_find);
	if (hit == NULL)
		return;
	i = (size_t)(hit - job->items);
	while (i > 0 && strcmp(job->items[i - 1]->device_id, id) == 0)
		i--;
	for (; i < job->n && strcmp(job->items[i]->device_id, id) == 0; i++)
		status_answer_send(s, job->items[i]);
}

static void
status_answer_other(struct channel *ch, struct channel_session *s, void *arg)
{
	struct status_job *job = arg;
	const char *id = channel_session_device_id(s);

	(void)ch;
	if (strcmp(id, job->trigger) != 0)
		status_answer_device(job, s, id);
}

/* The answers of a finished (or refused) batch. s is the trigger's
 * session, NULL when it ended; a device whose session ended gets no
 * answer, and its agent sends the report again. */
static void
status_answer_all(struct channel *ch, struct channel_session *s,
		  struct status_job *job)
{
	if (s != NULL && job->trigger[0] != '\0')
		status_answer_device(job, s, job->trigger);
	if (job->others > 0)
		channel_foreach_session(ch, status_answer_other, job);
}

static void status_flush(struct cfg_status_batch *b, struct channel_session *s);

static void
status_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct status_job *job = arg;
	struct cfg_status_batch *b = job->b;

	status_answer_all(ch, s, job);
	status_job_free(job);
	b->in_flight--;
	status_flush(b, s);
}

/* Takes up to STATUS_BATCH_MAX queued reports, sorted for the store. */
static struct status_job *
status_take(struct cfg_status_batch *b, struct channel_session *s)
{
	struct status_job *job = calloc(1, sizeof(*job));
	size_t n = b->queued < STATUS_BATCH_MAX ? b->queued : STATUS_BATCH_MAX;

	if (job == NULL)
		return NULL;
	job->b = b;
	job->items = calloc(n, sizeof(*job->items));
	if (job->items == NULL) {
		free(job);
		return NULL;
	}
	if (s != NULL)
		snprintf(job->trigger, sizeof(job->trigger), "%s",
			 channel_session_device_id(s));
	for (size_t i = 0; i < n; i++) {
		struct status_item *it = b->head;

		b->head = it->next;
		it->next = NULL;
		it->index = i;
		job->items[job->n++] = it;
		if (strcmp(it->device_id, job->trigger) != 0)
			job->others++;
	}
	if (b->head == NULL)
		b->tail = NULL;
	b->queued -= n;
	qsort(job->items, job->n, sizeof(*job->items), item_order);
	return job;
}

/* Hands what is queued to job threads, up to STATUS_IN_FLIGHT batches;
 * a full job queue answers "unavailable" (the agents send again). */
static void
status_flush(struct cfg_status_batch *b, struct channel_session *s)
{
	while (b->queued > 0 && b->in_flight < STATUS_IN_FLIGHT) {
		struct status_job *job = status_take(b, s);
		struct channel_work work = {status_run, status_done, job};

		if (job == NULL)
			return; /* the next report or answer tries again */
		/* Counted first: a job may be done before submit returns. */
		b->in_flight++;
		if (!channel_submit_work(b->ch, s, &work)) {
			b->in_flight--;
			for (size_t i = 0; i < job->n; i++)
				job->items[i]->answer = REPORT_RETRY;
			status_answer_all(b->ch, s, job);
			status_job_free(job);
		}
	}
}

void
channel_cfg_status(struct channel *ch, struct channel_session *s,
		   struct proto_msg *m)
{
	struct cfg_status_batch **slot = channel_cfg_status_slot(ch);
	struct cfg_status_batch *b = slot != NULL ? *slot : NULL;
	struct status_item *it = NULL;
	const char *reason = proto_str(m, "error");

	if (slot == NULL)
		goto busy;
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			goto busy;
		b->ch = ch;
		*slot = b;
	}
	if (b->queued >= STATUS_QUEUED_MAX)
		goto busy;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		goto busy;
	/* proto_decode validated every field: sizes are bounded. */
	snprintf(it->device_id, sizeof(it->device_id), "%s",
		 channel_session_device_id(s));
	it->seq = m->seq;
	it->generation = proto_int(m, "config_version", 0);
	snprintf(it->sha256, sizeof(it->sha256), "%s",
		 proto_str(m, "config_hash"));
	snprintf(it->state, sizeof(it->state), "%s", proto_str(m, "state"));
	it->body = json_dumps(m->body, JSON_COMPACT);
	if (it->body == NULL)
		goto busy;
	if (reason != NULL) {
		it->reason = strdup(reason);
		if (it->reason == NULL)
			goto busy;
	}
	if (b->tail != NULL)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	b->queued++;
	status_flush(b, s);
	return;
busy:
	status_item_free(it);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "config.status");
}
