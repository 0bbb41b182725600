/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics of a fleetd host, kept in one shared-memory segment
 * that the supervisor maps before it forks (metrics_shared_init), so that
 * whichever net worker answers GET /metrics shows the figures of every
 * worker (each series labelled worker="N"). Every worker writes only its
 * own slot, with atomic operations; counters survive a worker's restart
 * (its slot is kept), gauges start again at zero. Recording never blocks,
 * never allocates and never fails visibly: a series that does not fit is
 * counted in fleetd_metrics_series_dropped_total. docs/internals/metrics.md
 * has the families, the choices, and how to add a metric.
 *
 * Thread-safe. Label values are escaped here; label names are ours.
 */
#ifndef FLEETD_CORE_METRICS_H
#define FLEETD_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* The families (metrics.c has their names, help and kinds). */
enum metric_family {
	METRIC_DEVICES_CONNECTED, /* gauge */
	METRIC_ENROLLMENTS, /* counter {result} */
	METRIC_API_REQUESTS, /* counter {route, method, status} */
	METRIC_API_REQUEST_SECONDS, /* histogram {route, method} */
	METRIC_JOB_QUEUE_DEPTH, /* gauge {pool} */
	METRIC_JOB_WAIT_SECONDS, /* histogram {pool} */
	METRIC_DB_CONNECTIONS, /* gauge */
	METRIC_DB_ERRORS, /* counter {kind} */
	METRIC_SIGNER_SECONDS, /* histogram {op, result} */
	METRIC_CHANNEL_MESSAGES, /* counter {type} */
	METRIC_SERIES_DROPPED, /* counter (the registry's own) */
	METRIC_ARTIFACT_BYTES, /* counter {source}: artifact body bytes sent */
	METRIC_ARTIFACT_REQUESTS, /* counter {status}: GET|HEAD /artifacts */
	METRIC_TLS_RESUMPTIONS, /* counter {result}: device tickets presented */
	METRIC_TLS_HANDSHAKES, /* counter {session}: device sessions, full|resumed */
	METRIC_FAMILY_COUNT
};

#define METRICS_SLOTS 65 /* 0: processes without a slot; 1..64 workers */

/* In the supervisor, before the first fork: maps the shared segment.
 * 0, or -1 (logged; workers then keep private figures). */
int metrics_shared_init(void);

/* In a net worker, first thing: record into slot (1..64) from now on; its
 * gauges start at zero again (a restarted worker holds nothing). */
void metrics_worker_start(int slot);

/*
 * Recording. The variadic arguments are label pairs, "name", "value", ...,
 * ending with NULL (at most 4 pairs; values longer than 96 bytes are cut).
 * A process that never called metrics_shared_init or metrics_worker_start
 * records into private memory.
 */
/* Counters (delta >= 0) and gauges (any delta). */
void metrics_add(enum metric_family f, int64_t delta, ...)
	__attribute__((sentinel));
/* Gauges. */
void metrics_set(enum metric_family f, int64_t value, ...)
	__attribute__((sentinel));
/* Histograms of durations, in microseconds. */
void metrics_observe_us(enum metric_family f, uint64_t us, ...)
	__attribute__((sentinel));

/* A monotonic clock in microseconds, for durations. */
uint64_t metrics_now_us(void);

/*
 * Appends every family in the Prometheus text format (0.0.4) to out,
 * every series of every worker slot in use. 0, or -1 when out is full.
 */
int metrics_render(struct buf *out);

/*
 * For gauges computed on scrape (api/metrics.c): appends the HELP and TYPE
 * lines of a family named name, then metrics_write_sample for each value.
 * labels is a ready label text ("state=\"paused\"") or NULL. 0 or -1.
 */
int metrics_write_family(struct buf *out, const char *name, const char *type,
			 const char *help);
int metrics_write_sample(struct buf *out, const char *name, const char *labels,
			 double value);
/* Escapes a label value into out (\\, \", \n), cut to fit. */
void metrics_escape(const char *value, char *out, size_t outlen);

#endif
