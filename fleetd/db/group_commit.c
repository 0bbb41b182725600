/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Group commit (group_commit.h): the job threads of one net worker that
 * write records of one kind at the same time share one durable write.
 * Runs on API and device job threads; the records are the callers' and
 * are only passed through.
 *
 * A caller queues its slot. While fewer than leaders_max batches are
 * being written, it becomes a leader: it takes everything queued (up to
 * batch_max, itself first) and has the queue's run callback write it in
 * ONE durable statement or transaction on its own connection, one WAL
 * flush for all. The others wait and are answered after that write, each
 * with its own rc. A lone record therefore goes at once; under load the
 * queue grows while a batch commits, and the next batch takes all of it.
 * There is no timer: waiting for company would add latency to every
 * lone record and buys nothing, since the flush of the batch ahead is
 * the wait. With leaders_max above one, that many batches are written at
 * once, each on its leader's connection: shorter waits, smaller batches.
 * docs/internals/group-commit.md.
 */
#include "db/group_commit.h"

#include <string.h>

/*
 * Takes up to max queued slots, self first. A slot woken to lead that has
 * not taken its batch yet stays queued: it leads its own batch (if it
 * were written here, it would write itself a second time, and this
 * leader would answer it after it returned). Called with the queue
 * locked.
 */
static size_t
group_commit_take(struct group_commit *q, struct group_commit_slot *self,
		  struct group_commit_slot **v, size_t max)
{
	struct group_commit_slot **pp = &q->head, *prev = NULL;
	size_t n = 0;

	v[n++] = self;
	while (*pp != NULL) {
		struct group_commit_slot *s = *pp;

		if (s != self && (s->lead || n >= max)) {
			/* Left for the next batch, in order. */
			prev = s;
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		if (s != self)
			v[n++] = s;
	}
	q->tail = prev;
	return n;
}

/* The oldest queued slot not woken to lead already, or NULL. Called with
 * the queue locked. */
static struct group_commit_slot *
group_commit_next(struct group_commit *q)
{
	struct group_commit_slot *s = q->head;

	while (s != NULL && s->lead)
		s = s->next;
	return s;
}

void
group_commit_fail(struct group_commit_slot **v, size_t n, int why)
{
	for (size_t i = 0; i < n; i++) {
		v[i]->rc = STORE_ERR;
		v[i]->why = why;
	}
}

static enum store_rc
group_commit_answer(const struct group_commit_slot *self, int *why)
{
	if (why != NULL)
		*why = self->why;
	return self->rc;
}

enum store_rc
group_commit(struct group_commit *q, struct store *st, const void *record,
	     int *why)
{
	struct group_commit_slot self, *batch[GROUP_COMMIT_BATCH_MAX], *next;
	size_t max = q->batch_max, n;

	if (max < 1 || max > GROUP_COMMIT_BATCH_MAX)
		max = GROUP_COMMIT_BATCH_MAX;
	memset(&self, 0, sizeof(self));
	self.record = record;
	self.rc = STORE_ERR;
	if (pthread_cond_init(&self.cond, NULL) != 0) {
		/* Cannot wait: written alone, outside the queue. */
		struct group_commit_slot *one = &self;

		q->run(st, &one, 1);
		return group_commit_answer(&self, why);
	}
	pthread_mutex_lock(&q->mu);
	if (q->tail != NULL)
		q->tail->next = &self;
	else
		q->head = &self;
	q->tail = &self;
	if (q->leaders < q->leaders_max) {
		q->leaders++;
		self.lead = true;
	}
	while (!self.done && !self.lead)
		pthread_cond_wait(&self.cond, &q->mu);
	if (self.done) {
		/* Written by another caller's batch. */
		pthread_mutex_unlock(&q->mu);
		pthread_cond_destroy(&self.cond);
		return group_commit_answer(&self, why);
	}
	n = group_commit_take(q, &self, batch, max);
	pthread_mutex_unlock(&q->mu);

	q->run(st, batch, n);

	pthread_mutex_lock(&q->mu);
	for (size_t i = 1; i < n; i++) {
		batch[i]->done = true;
		pthread_cond_signal(&batch[i]->cond);
	}
	/*
	 * What queued meanwhile goes next, led by its oldest caller: the
	 * lead is handed on rather than given up, so the count of leaders
	 * stays and no new caller jumps ahead of those waiting. Not to a
	 * slot woken to lead already: when both leaders finish before the
	 * queue's head has woken, the second would hand it its lead again
	 * and one count of leaders would never come back (the queue then
	 * ran one batch at a time for the rest of the process's life).
	 */
	next = group_commit_next(q);
	if (next != NULL) {
		next->lead = true;
		pthread_cond_signal(&next->cond);
	} else {
		q->leaders--;
	}
	pthread_mutex_unlock(&q->mu);
	pthread_cond_destroy(&self.cond);
	return group_commit_answer(&self, why);
}
