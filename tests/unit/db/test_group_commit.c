/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd/db/group_commit.c without a database: the batch callback here
 * counts what it is given instead of writing it. A lone record is written
 * at once on its caller's thread; under many threads every record is
 * written exactly once and answered with its own rc, no batch exceeds
 * the queue's limit, at most leaders_max batches run at once (two, then
 * one), and the queue ends empty with no leader counted; when both
 * leaders finish before the queue's head has woken, the lead is not
 * handed to it twice (the protocol of the copies it replaced lost a
 * leader that way).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/group_commit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 8
#define PER_THREAD 2000
#define RECORDS (THREADS * PER_THREAD)

struct record {
	int id;
	bool gated; /* run waits for the test's gate */
};

/* What the callback saw, under its own lock. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int running, max_running, gated_in;
	bool gate_open;
	size_t calls, max_n;
	pthread_t last_thread;
	unsigned char written[RECORDS];
} seen;

/* The answer a record gets: some conflicts, some not found, most ok. */
static enum store_rc
want_rc(int id)
{
	if (id % 7 == 0)
		return STORE_CONFLICT;
	if (id % 11 == 0)
		return STORE_NOTFOUND;
	return STORE_OK;
}

static void
pause_us(long us)
{
	struct timespec ts = {0, us * 1000};

	nanosleep(&ts, NULL);
}

static void
count_run(struct store *st, struct group_commit_slot **v, size_t n)
{
	const struct record *first = v[0]->record;

	(void)st;
	pthread_mutex_lock(&seen.mu);
	seen.running++;
	if (seen.running > seen.max_running)
		seen.max_running = seen.running;
	seen.calls++;
	if (n > seen.max_n)
		seen.max_n = n;
	seen.last_thread = pthread_self();
	if (first->gated) {
		seen.gated_in++;
		pthread_cond_broadcast(&seen.cond);
		while (!seen.gate_open)
			pthread_cond_wait(&seen.cond, &seen.mu);
	}
	pthread_mutex_unlock(&seen.mu);
	/* A write takes a while: the queue fills meanwhile. */
	if (!first->gated)
		pause_us(50);
	pthread_mutex_lock(&seen.mu);
	for (size_t i = 0; i < n; i++) {
		const struct record *r = v[i]->record;

		if (r->id >= 0 && r->id < RECORDS)
			seen.written[r->id]++;
		v[i]->rc = want_rc(r->id);
	}
	seen.running--;
	pthread_mutex_unlock(&seen.mu);
}

static struct group_commit queue2 = GROUP_COMMIT_INIT(2, 16, count_run);
static struct group_commit queue1 = GROUP_COMMIT_INIT(1, 64, count_run);

static void
seen_reset(void)
{
	pthread_mutex_lock(&seen.mu);
	seen.running = seen.max_running = seen.gated_in = 0;
	seen.gate_open = false;
	seen.calls = seen.max_n = 0;
	memset(seen.written, 0, sizeof(seen.written));
	pthread_mutex_unlock(&seen.mu);
}

static void
assert_queue_idle(struct group_commit *q)
{
	int leaders;
	bool empty;

	pthread_mutex_lock(&q->mu);
	leaders = q->leaders;
	empty = q->head == NULL && q->tail == NULL;
	pthread_mutex_unlock(&q->mu);
	assert_int_equal(leaders, 0);
	assert_true(empty);
}

static void
test_lone_record_at_once(void **state)
{
	struct record r = {5, false};

	(void)state;
	seen_reset();
	assert_int_equal(group_commit(&queue2, NULL, &r, NULL), STORE_OK);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.max_n, 1);
	assert_true(pthread_equal(seen.last_thread, pthread_self()));
	assert_int_equal(seen.written[5], 1);
	r.id = 14;
	assert_int_equal(group_commit(&queue2, NULL, &r, NULL), STORE_CONFLICT);
	assert_queue_idle(&queue2);
}

static int failures;

/* One caller thread: its queue and its number. */
struct caller_arg {
	struct group_commit *q;
	int t;
};

static void *
caller(void *arg)
{
	const struct caller_arg *a = arg;

	for (int k = 0; k < PER_THREAD; k++) {
		struct record r = {a->t * PER_THREAD + k, false};

		if (group_commit(a->q, NULL, &r, NULL) != want_rc(r.id)) {
			pthread_mutex_lock(&seen.mu);
			failures++;
			pthread_mutex_unlock(&seen.mu);
		}
	}
	return NULL;
}

static void
many_threads(struct group_commit *q)
{
	pthread_t th[THREADS];
	struct caller_arg args[THREADS];

	seen_reset();
	failures = 0;
	for (int t = 0; t < THREADS; t++) {
		args[t].q = q;
		args[t].t = t;
		assert_int_equal(pthread_create(&th[t], NULL, caller, &args[t]),
				 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(failures, 0);
	for (int i = 0; i < RECORDS; i++)
		assert_int_equal(seen.written[i], 1);
	assert_true(seen.max_running >= 1 &&
		    seen.max_running <= q->leaders_max);
	assert_true(seen.max_n > 1); /* records did share batches */
	assert_true(seen.max_n <= q->batch_max);
	assert_true(seen.calls < RECORDS);
	assert_queue_idle(q);
}

static void
test_many_threads_two_leaders(void **state)
{
	(void)state;
	many_threads(&queue2);
}

static void
test_many_threads_one_leader(void **state)
{
	(void)state;
	many_threads(&queue1);
}

static void *
gated_caller(void *arg)
{
	struct record *r = arg;

	if (group_commit(&queue2, NULL, r, NULL) != want_rc(r->id)) {
		pthread_mutex_lock(&seen.mu);
		failures++;
		pthread_mutex_unlock(&seen.mu);
	}
	return NULL;
}

/* A counter of seen, read under its lock. */
static int
seen_now(const int *counter)
{
	int n;

	pthread_mutex_lock(&seen.mu);
	n = *counter;
	pthread_mutex_unlock(&seen.mu);
	return n;
}

/* Whether the queue holds a slot of this record, waiting. */
static bool
queued(struct group_commit *q, const struct record *r)
{
	for (const struct group_commit_slot *s = q->head; s != NULL;
	     s = s->next)
		if (s->record == r && !s->lead)
			return true;
	return false;
}

/*
 * Two leaders in their batches, a third caller waiting; both leaders
 * finish while the test holds the queue's lock, so the waiting caller
 * cannot take the lead before the second leader looks at the queue.
 */
static void
test_both_leaders_finish(void **state)
{
	(void)state;
	for (int round = 0; round < 200; round++) {
		struct record a = {1, true}, b = {2, true}, c = {3, false};
		pthread_t ta, tb, tc;
		bool in_queue = false;

		seen_reset();
		failures = 0;
		assert_int_equal(pthread_create(&ta, NULL, gated_caller, &a),
				 0);
		assert_int_equal(pthread_create(&tb, NULL, gated_caller, &b),
				 0);
		for (int i = 0; i < 10000 && seen_now(&seen.gated_in) < 2; i++)
			pause_us(100);
		assert_int_equal(seen_now(&seen.gated_in), 2);
		assert_int_equal(pthread_create(&tc, NULL, gated_caller, &c),
				 0);
		for (int i = 0; i < 10000 && !in_queue; i++) {
			pthread_mutex_lock(&queue2.mu);
			in_queue = queued(&queue2, &c);
			pthread_mutex_unlock(&queue2.mu);
			if (!in_queue)
				pause_us(100);
		}
		assert_true(in_queue);
		pthread_mutex_lock(&queue2.mu);
		pthread_mutex_lock(&seen.mu);
		seen.gate_open = true;
		pthread_cond_broadcast(&seen.cond);
		pthread_mutex_unlock(&seen.mu);
		/* Both leaders now finish their writes and wait for this
		 * lock to answer and hand on. */
		for (int i = 0; i < 1000 && seen_now(&seen.running) > 0; i++)
			pause_us(100);
		pthread_mutex_unlock(&queue2.mu);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_join(tc, NULL);
		assert_int_equal(failures, 0);
		assert_int_equal(seen.written[1], 1);
		assert_int_equal(seen.written[2], 1);
		assert_int_equal(seen.written[3], 1);
		assert_queue_idle(&queue2);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lone_record_at_once),
		cmocka_unit_test(test_many_threads_two_leaders),
		cmocka_unit_test(test_many_threads_one_leader),
		cmocka_unit_test(test_both_leaders_finish),
	};

	if (pthread_mutex_init(&seen.mu, NULL) != 0 ||
	    pthread_cond_init(&seen.cond, NULL) != 0)
		return 1;

	return cmocka_run_group_tests(tests, NULL, NULL);
}
