/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A worker's queue of reports applied in batches (docs/internals/perf.md):
 * config.status (config_status.c) and cert.installed (cert.c). Each
 * report is queued on the loop; while fewer than max_in_flight batches
 * run, everything queued (up to max_items) goes to a job thread as one
 * batch, sorted by device id then arrival, so a lone report goes at once
 * and under load the queue grows into the next batch (group commit
 * without a timer). When the batch is back, every report is answered
 * through its device's session on this worker: the session whose report
 * flushed the queue (the trigger) directly, the others by one walk over
 * the worker's sessions with a binary search into the batch. A device
 * whose session ended gets no answer; its agent sends the report again.
 * Lws-free: unit tests link it.
 */
#ifndef FLEETD_CHANNEL_REPORT_BATCH_H
#define FLEETD_CHANNEL_REPORT_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "secret.h"

struct channel;
struct channel_session;
struct store;

/* The first member of each kind's queued report. */
struct report_batch_item {
	struct report_batch_item *next;
	size_t index; /* arrival order within its batch */
	char device_id[SECRET_UUID_LEN];
};

struct report_batch_ops {
	size_t max_items; /* reports per batch */
	size_t max_in_flight; /* batches on job threads at once */
	size_t max_queued; /* reports waiting; past it report_batch_add fails */
	/* Job thread: apply items[0..n), sorted by device id, then arrival. */
	void (*run)(struct store *st, struct report_batch_item **items,
		    size_t n);
	/* Loop: the batch could not be submitted (the job queue is full):
	 * mark every item to be answered "unavailable". */
	void (*refuse)(struct report_batch_item **items, size_t n);
	/* Loop: answer one report through its device's session. */
	void (*answer)(struct channel_session *s,
		       const struct report_batch_item *it);
	void (*free_item)(struct report_batch_item *it);
};

struct report_batch {
	struct channel *ch;
	const struct report_batch_ops *ops;
	struct report_batch_item *head, *tail;
	size_t queued;
	size_t in_flight;
};

void report_batch_init(struct report_batch *b, struct channel *ch,
		       const struct report_batch_ops *ops);

/* Frees what is still queued (batches in flight are the jobs'). */
void report_batch_clear(struct report_batch *b);

/* Queues it (then owned by b) for device s and hands what is queued to
 * job threads. False when the queue is full: it stays the caller's, who
 * answers "unavailable". */
bool report_batch_add(struct report_batch *b, struct channel_session *s,
		      struct report_batch_item *it);

#endif
