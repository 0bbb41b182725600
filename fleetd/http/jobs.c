/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job queue of one net worker: a mutex-protected FIFO in, a done list
 * out, and a wake callback (lws_cancel_service) so the loop picks results
 * up. Runs inside every net worker process.
 */
#include "http/jobs.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>

struct job_pool {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct job *queue_head, *queue_tail;
	struct job *done_head, *done_tail;
	size_t queued, running, max_queued;
	bool stopping;
	struct job_pool_ops ops;
	pthread_t *threads;
	size_t nthreads;
};

static void
list_push(struct job **head, struct job **tail, struct job *job)
{
	job->next = NULL;
	if (*tail != NULL)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static void *
job_thread_main(void *arg)
{
	struct job_pool *pool = arg;
	void *state = pool->ops.thread_init(pool->ops.arg);

	if (state == NULL) {
		log_error("job thread: cannot initialise; thread not started");
		return NULL;
	}
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct job *job;

		while (pool->queue_head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->more, &pool->lock);
		if (pool->queue_head == NULL)
			break;
		job = pool->queue_head;
		pool->queue_head = job->next;
		if (pool->queue_head == NULL)
			pool->queue_tail = NULL;
		pool->queued--;
		pool->running++;
		pthread_mutex_unlock(&pool->lock);

		job->run(job, state);

		pthread_mutex_lock(&pool->lock);
		pool->running--;
		list_push(&pool->done_head, &pool->done_tail, job);
		pthread_mutex_unlock(&pool->lock);
		pool->ops.wake(pool->ops.arg);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	pool->ops.thread_fini(state);
	return NULL;
}

struct job_pool *
job_pool_new(size_t nthreads, size_t max_queued, const struct job_pool_ops *ops)
{
	struct job_pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL)
		return NULL;
	pool->threads = calloc(nthreads, sizeof(*pool->threads));
	if (pool->threads == NULL) {
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->more, NULL);
	pool->ops = *ops;
	pool->max_queued = max_queued;
	for (size_t i = 0; i < nthreads; i++) {
		if (pthread_create(&pool->threads[pool->nthreads], NULL,
				   job_thread_main, pool) != 0) {
			log_error("job pool: cannot start thread %zu", i);
			continue;
		}
		pool->nthreads++;
	}
	if (pool->nthreads == 0) {
		job_pool_free(pool);
		return NULL;
	}
	return pool;
}

bool
job_pool_submit(struct job_pool *pool, struct job *job)
{
	bool ok = false;

	pthread_mutex_lock(&pool->lock);
	if (!pool->stopping && pool->queued < pool->max_queued) {
		list_push(&pool->queue_head, &pool->queue_tail, job);
		pool->queued++;
		pthread_cond_signal(&pool->more);
		ok = true;
	}
	pthread_mutex_unlock(&pool->lock);
	return ok;
}

void
job_pool_drain(struct job_pool *pool)
{
	struct job *job;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	job = pool->done_head;
	pool->done_head = NULL;
	pool->done_tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (job != NULL) {
		struct job *next = job->next;

		job->done(job);
		job = next;
	}
}

size_t
job_pool_pending(struct job_pool *pool)
{
	size_t n;

	if (pool == NULL)
		return 0;
	pthread_mutex_lock(&pool->lock);
	n = pool->queued + pool->running;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

void
job_pool_free(struct job_pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->more);
	pthread_mutex_unlock(&pool->lock);
	for (size_t i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	/* Jobs nobody ran (all threads failed to start) are finished too. */
	while (pool->queue_head != NULL) {
		struct job *job = pool->queue_head;

		pool->queue_head = job->next;
		list_push(&pool->done_head, &pool->done_tail, job);
	}
	job_pool_drain(pool);
	pthread_cond_destroy(&pool->more);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
}
