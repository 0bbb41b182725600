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
#include "channel/report_batch.h"
#include "core/config_delivery.h"
#include "core/store_config_batch.h"
#include "log.h"
#include "proto/proto.h"

#define STATUS_IN_FLIGHT 2 /* batches running at once per worker */
#define STATUS_BATCH_MAX 1024 /* reports per batch */
#define STATUS_QUEUED_MAX 32768 /* reports waiting; past it: "busy" */

/* One queued report. */
struct status_item {
	struct report_batch_item base; /* first: the batch queue's part */
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
	struct report_batch q;
};

static struct status_item *
status_item(struct report_batch_item *it)
{
	return (struct status_item *)it;
}

static void
status_item_free(struct report_batch_item *base)
{
	struct status_item *it = status_item(base);

	if (it == NULL)
		return;
	free(it->body);
	free(it->reason);
	free(it);
}

void
cfg_status_batch_free(struct cfg_status_batch *b)
{
	if (b == NULL)
		return;
	report_batch_clear(&b->q);
	free(b);
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
status_run(struct store *st, struct report_batch_item **items, size_t n)
{
	struct config_report_item *ri = calloc(n, sizeof(*ri));
	struct status_item **round = calloc(n, sizeof(*round));
	size_t done = 0, *occurrence = calloc(n, sizeof(*occurrence));

	if (ri == NULL || round == NULL || occurrence == NULL) {
		for (size_t i = 0; i < n; i++)
			status_item(items[i])->answer = REPORT_RETRY;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		occurrence[i] = i > 0 && strcmp(items[i - 1]->device_id,
						items[i]->device_id) == 0
					? occurrence[i - 1] + 1
					: 0;
	for (size_t k = 0; done < n; k++) {
		size_t m = 0;
		enum store_rc rc;

		for (size_t i = 0; i < n; i++) {
			struct status_item *it = status_item(items[i]);

			if (occurrence[i] != k)
				continue;
			round[m] = it;
			ri[m] = (struct config_report_item){
				.device_id = it->base.device_id,
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
				log_write(LOG_LEVEL_INFO,
					  round[i]->base.device_id,
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
status_refuse(struct report_batch_item **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		status_item(items[i])->answer = REPORT_RETRY;
}

static void
status_answer_send(struct channel_session *s,
		   const struct report_batch_item *base)
{
	const struct status_item *it = (const struct status_item *)base;
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

static const struct report_batch_ops status_ops = {
	.max_items = STATUS_BATCH_MAX,
	.max_in_flight = STATUS_IN_FLIGHT,
	.max_queued = STATUS_QUEUED_MAX,
	.run = status_run,
	.refuse = status_refuse,
	.answer = status_answer_send,
	.free_item = status_item_free,
};

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
		report_batch_init(&b->q, ch, &status_ops);
		*slot = b;
	}
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		goto busy;
	/* proto_decode validated every field: sizes are bounded. */
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
	if (report_batch_add(&b->q, s, &it->base))
		return;
busy:
	status_item_free(it != NULL ? &it->base : NULL);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "config.status");
}
