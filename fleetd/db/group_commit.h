/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Group commit: the job threads of one net worker that write records of
 * the same kind at the same time share one durable statement or
 * transaction, and so one WAL flush. Without a timer: a lone record is
 * written at once. db/enroll.c (enrollment records) and db/certificates.c
 * (renewal records) use it; docs/internals/group-commit.md.
 */
#ifndef FLEETD_DB_GROUP_COMMIT_H
#define FLEETD_DB_GROUP_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/store.h"

/* The most records one batch may take, whatever a queue asks for. */
#define GROUP_COMMIT_BATCH_MAX 128

/* One caller's record, on the caller's stack, queued until written. */
struct group_commit_slot {
	const void *record; /* the caller's, borrowed; read by run */
	enum store_rc rc; /* STORE_ERR until run sets it */
	int why; /* with STORE_ERR: why, as run saw it on the leader's
		  * connection (enum db_failure; 0: not known) */
	bool done; /* rc is final */
	bool lead; /* woken to write the queue */
	pthread_cond_t cond;
	struct group_commit_slot *next;
};

/*
 * Writes the records of v[0..n) (n >= 1) on the leader's store and sets
 * every slot's rc. It must not fail as a whole: a failed batch is the
 * callback's to answer, each slot with its own rc. Runs without the
 * queue's lock, on the leader's thread.
 */
typedef void group_commit_run(struct store *st, struct group_commit_slot **v,
			      size_t n);

/* A queue: one per kind of record and process, static. */
struct group_commit {
	pthread_mutex_t mu;
	struct group_commit_slot *head, *tail;
	int leaders; /* batches being written now */
	int leaders_max; /* at most this many at once */
	size_t batch_max; /* records per batch, <= GROUP_COMMIT_BATCH_MAX */
	group_commit_run *run;
};

#define GROUP_COMMIT_INIT(leaders_max, batch_max, run)                   \
	{                                                                \
		PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, (leaders_max), \
			(batch_max), (run)                               \
	}

/*
 * Queues record and returns its rc once a batch has written it: the
 * caller's own batch when it leads one, another caller's otherwise.
 * record is borrowed until the call returns; st is used only if this
 * caller leads. *why (if why is not NULL) gets the slot's why.
 */
enum store_rc group_commit(struct group_commit *q, struct store *st,
			   const void *record, int *why);

/* For run: every slot of v[0..n) failed (STORE_ERR), for the reason why. */
void group_commit_fail(struct group_commit_slot **v, size_t n, int why);

#endif
