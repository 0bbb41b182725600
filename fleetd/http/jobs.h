/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Job threads of a net worker. The event loop never blocks: work that
 * waits on PostgreSQL or the CA signer is submitted here, runs on one of K
 * threads (each with its own state, e.g. its own database connection), and
 * comes back to the loop, which calls the job's done() there.
 */
#ifndef FLEETD_HTTP_JOBS_H
#define FLEETD_HTTP_JOBS_H

#include <stdbool.h>
#include <stddef.h>

struct job {
	/* On a job thread; state is what thread_init returned for it. */
	void (*run)(struct job *job, void *state);
	/* On the loop thread, after run. Owns the job from then on. */
	void (*done)(struct job *job);
	struct job *next;
};

struct job_pool_ops {
	void *(*thread_init)(void *arg); /* per-thread state, NULL = fail */
	void (*thread_fini)(void *state);
	void (*wake)(void *arg); /* make the loop call job_pool_drain() */
	void *arg;
};

struct job_pool;

/* Starts nthreads threads. NULL if none could start. */
struct job_pool *job_pool_new(size_t nthreads, size_t max_queued,
			      const struct job_pool_ops *ops);

/* Queues job; false when the queue is full (answer 503) or stopping. */
bool job_pool_submit(struct job_pool *pool, struct job *job);

/* On the loop thread: calls done() of every finished job. NULL ok. */
void job_pool_drain(struct job_pool *pool);

/* Number of jobs queued or running (0 for NULL). */
size_t job_pool_pending(struct job_pool *pool);

/* Finishes queued jobs, joins the threads, calls done() of the rest. */
void job_pool_free(struct job_pool *pool);

#endif
