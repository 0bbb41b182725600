/* SPDX-License-Identifier: Apache-2.0 */
/* A worker's queue of reports applied in batches: see report_batch.h. */
#include "channel/report_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"

/* A batch on its way to a job thread and back. It is submitted as the
 * work of the session whose report (or answer) flushed the queue. */
struct batch_job {
	struct report_batch *b;
	struct report_batch_item **items; /* by device id, then arrival */
	size_t n;
	char trigger[SECRET_UUID_LEN]; /* "" when none */
	size_t others; /* items of devices other than the trigger */
};

void
report_batch_init(struct report_batch *b, struct channel *ch,
		  const struct report_batch_ops *ops)
{
	memset(b, 0, sizeof(*b));
	b->ch = ch;
	b->ops = ops;
}

void
report_batch_clear(struct report_batch *b)
{
	while (b->head != NULL) {
		struct report_batch_item *it = b->head;

		b->head = it->next;
		b->ops->free_item(it);
	}
	b->tail = NULL;
	b->queued = 0;
}

static void
job_free(struct batch_job *job)
{
	for (size_t i = 0; i < job->n; i++)
		job->b->ops->free_item(job->items[i]);
	free(job->items);
	free(job);
}

static int
item_order(const void *a, const void *b)
{
	const struct report_batch_item *const *x = a, *const *y = b;
	int c = strcmp((*x)->device_id, (*y)->device_id);

	if (c != 0)
		return c;
	return (*x)->index < (*y)->index ? -1 : (*x)->index > (*y)->index;
}

static int
item_find(const void *key, const void *elem)
{
	return strcmp(key,
		      (*(struct report_batch_item *const *)elem)->device_id);
}

/* Job thread. */
static void
job_run(struct store *st, const char *device_id, void *arg)
{
	struct batch_job *job = arg;

	(void)device_id;
	job->b->ops->run(st, job->items, job->n);
}

/* Every answer of the batch for device id, through s. */
static void
answer_device(struct batch_job *job, struct channel_session *s, const char *id)
{
	struct report_batch_item **hit;
	size_t i;

	hit = bsearch(id, job->items, job->n, sizeof(*job->items), item_find);
	if (hit == NULL)
		return;
	i = (size_t)(hit - job->items);
	while (i > 0 && strcmp(job->items[i - 1]->device_id, id) == 0)
		i--;
	for (; i < job->n && strcmp(job->items[i]->device_id, id) == 0; i++)
		job->b->ops->answer(s, job->items[i]);
}

/* The answers of a finished (or refused) batch; s is the trigger's
 * session, NULL when it ended. */
static void
answer_all(struct channel_session *s, struct batch_job *job)
{
	size_t i = 0, end;

	if (s != NULL && job->trigger[0] != '\0')
		answer_device(job, s, job->trigger);
	/* The others through their session on this worker, if any: one
	 * lookup per device of the batch (items are sorted by device). */
	for (; job->others > 0 && i < job->n; i = end) {
		const char *id = job->items[i]->device_id;
		struct channel_session *o;

		end = i + 1;
		while (end < job->n &&
		       strcmp(job->items[end]->device_id, id) == 0)
			end++;
		if (strcmp(id, job->trigger) == 0)
			continue;
		o = channel_find_device(job->b->ch, id);
		for (size_t k = i; o != NULL && k < end; k++)
			job->b->ops->answer(o, job->items[k]);
	}
}

/* Takes up to max_items queued reports, sorted for the store. */
static struct batch_job *
take(struct report_batch *b, struct channel_session *s)
{
	struct batch_job *job = calloc(1, sizeof(*job));
	size_t n =
		b->queued < b->ops->max_items ? b->queued : b->ops->max_items;

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
		struct report_batch_item *it = b->head;

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

static void flush(struct report_batch *b, struct channel_session *s);

static void
job_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct batch_job *job = arg;
	struct report_batch *b = job->b;

	(void)ch;
	answer_all(s, job);
	job_free(job);
	b->in_flight--;
	flush(b, s);
}

/* Hands what is queued to job threads, up to max_in_flight batches; a
 * full job queue answers "unavailable" (the agents send again). */
static void
flush(struct report_batch *b, struct channel_session *s)
{
	while (b->queued > 0 && b->in_flight < b->ops->max_in_flight) {
		struct batch_job *job = take(b, s);
		struct channel_work work = {job_run, job_done, job};

		if (job == NULL)
			return; /* the next report or answer tries again */
		/* Counted first: a job may be done before submit returns. */
		b->in_flight++;
		if (!channel_submit_work(b->ch, s, &work)) {
			b->in_flight--;
			b->ops->refuse(job->items, job->n);
			answer_all(s, job);
			job_free(job);
		}
	}
}

bool
report_batch_add(struct report_batch *b, struct channel_session *s,
		 struct report_batch_item *it)
{
	if (b->queued >= b->ops->max_queued)
		return false;
	snprintf(it->device_id, sizeof(it->device_id), "%s",
		 channel_session_device_id(s));
	it->next = NULL;
	if (b->tail != NULL)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	b->queued++;
	flush(b, s);
	return true;
}
