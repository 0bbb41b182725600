/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry (core/metrics.h): one shared anonymous mapping,
 * made by the supervisor before it forks, holds a slot per net worker;
 * each slot is an open-addressing table of series (family + label text)
 * whose values are C11 atomics, so the worker's threads record without a
 * lock and any worker can read every slot to answer a scrape. Runs in
 * every fleetd process; the label values come from our own tables (route
 * templates, message type names, problem slugs) and are escaped anyway.
 *
 * Global state, unlike the rest of core: a process has one registry, and
 * passing it down to every recording point (the db adapter, the signer
 * client, the channel) would thread a pointer through interfaces that
 * have no other use for it. The state is two words, set once per process.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "buf.h"
#include "log.h"

#define SERIES_MAX 1024 /* per slot */
#define LABELS_MAX 224
#define LABEL_VALUE_MAX 96
#define LABEL_PAIRS_MAX 4
#define BUCKETS 13
#define CLAIM_SPINS 1000000

enum { SERIES_FREE = 0, SERIES_CLAIMING, SERIES_READY };

struct metrics_series {
	_Atomic uint32_t state;
	uint32_t family;
	char labels[LABELS_MAX]; /* k="v",k2="v2" (escaped), or "" */
	_Atomic int64_t value; /* counter, gauge; histogram: count */
	_Atomic int64_t sum_us; /* histogram */
	_Atomic int64_t bucket[BUCKETS]; /* histogram, not cumulative */
};

struct metrics_slot {
	_Atomic uint32_t active; /* something was recorded here */
	_Atomic int64_t dropped;
	struct metrics_series series[SERIES_MAX];
};

struct metrics_shm {
	struct metrics_slot slot[METRICS_SLOTS];
};

static const struct {
	const char *name;
	const char *type;
	const char *help;
} families[METRIC_FAMILY_COUNT] = {
	[METRIC_DEVICES_CONNECTED] = {"fleetd_devices_connected", "gauge",
				      "Device sessions open on the worker "
				      "(identity and revocation checked)."},
	[METRIC_ENROLLMENTS] = {"fleetd_enrollments_total", "counter",
				"Enrollment requests by result: enrolled, or "
				"the problem type that refused them."},
	[METRIC_API_REQUESTS] = {"fleetd_api_requests_total", "counter",
				 "Answers on the api listener by route "
				 "template, method and status."},
	[METRIC_API_REQUEST_SECONDS] =
		{"fleetd_api_request_duration_seconds", "histogram",
		 "Time from a request's head to its answer, by route "
		 "template and method."},
	[METRIC_JOB_QUEUE_DEPTH] = {"fleetd_job_queue_depth", "gauge",
				    "Jobs queued or running, by pool (api, "
				    "device, presence)."},
	[METRIC_JOB_WAIT_SECONDS] = {"fleetd_job_wait_seconds", "histogram",
				     "Time a job waited in its queue for a "
				     "thread, by pool."},
	[METRIC_DB_CONNECTIONS] = {"fleetd_db_connections", "gauge",
				   "PostgreSQL connections held (one per job "
				   "thread, listener and loop)."},
	[METRIC_DB_ERRORS] = {"fleetd_db_errors_total", "counter",
			      "PostgreSQL failures by kind (connection, "
			      "statement, commit_timeout)."},
	[METRIC_SIGNER_SECONDS] = {"fleetd_signer_request_duration_seconds",
				   "histogram",
				   "Round trip of a request to the ca process, "
				   "by operation and result."},
	[METRIC_CHANNEL_MESSAGES] = {"fleetd_channel_messages_total", "counter",
				     "fleet.v1 messages received from "
				     "devices, by type (invalid: refused by "
				     "the decoder)."},
	[METRIC_SERIES_DROPPED] = {"fleetd_metrics_series_dropped_total",
				   "counter",
				   "Recordings dropped because the worker's "
				   "series table was full."},
	[METRIC_ARTIFACT_BYTES] = {"fleetd_artifact_bytes_sent_total",
				   "counter",
				   "Artifact body bytes written to devices on "
				   "the device listener, by source (cache "
				   "file or database)."},
	[METRIC_ARTIFACT_REQUESTS] = {"fleetd_artifact_requests_total",
				      "counter",
				      "Artifact requests (GET|HEAD "
				      "/artifacts/<sha256>) by answer status."},
	[METRIC_TLS_RESUMPTIONS] = {"fleetd_tls_resumptions_total", "counter",
				    "TLS session tickets presented on the "
				    "device listener, by result: resumed, or "
				    "why a full handshake was made instead."},
	[METRIC_TLS_HANDSHAKES] = {"fleetd_tls_handshakes_total", "counter",
				   "Device channel sessions opened, by TLS "
				   "handshake: full or resumed."},
};

/* Upper bounds of the duration buckets, in microseconds and as text. */
static const uint64_t bucket_us[BUCKETS] = {
	1000,	2500,	5000,	 10000,	  25000,   50000,   100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bucket_le[BUCKETS] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
	"0.25",	 "0.5",	   "1",	    "2.5",  "5",     "10"};

static struct metrics_shm *metrics_mem;
static int metrics_slot_no;
static pthread_once_t metrics_private_once = PTHREAD_ONCE_INIT;

static struct metrics_shm *
metrics_map(int flags)
{
	void *p = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int
metrics_shared_init(void)
{
	if (metrics_mem != NULL)
		return 0;
	metrics_mem = metrics_map(MAP_SHARED);
	if (metrics_mem == NULL) {
		log_warn("metrics: cannot map shared memory; each worker "
			 "will show its own figures only");
		return -1;
	}
	return 0;
}

static void
metrics_private_init(void)
{
	if (metrics_mem == NULL)
		metrics_mem = metrics_map(MAP_PRIVATE);
}

static struct metrics_slot *
metrics_slot(void)
{
	if (metrics_mem == NULL)
		pthread_once(&metrics_private_once, metrics_private_init);
	if (metrics_mem == NULL)
		return NULL;
	return &metrics_mem->slot[metrics_slot_no];
}

void
metrics_worker_start(int slot)
{
	struct metrics_slot *sl;

	if (slot < 1 || slot >= METRICS_SLOTS)
		slot = 0;
	metrics_slot_no = slot;
	sl = metrics_slot();
	if (sl == NULL)
		return;
	for (size_t i = 0; i < SERIES_MAX; i++) {
		struct metrics_series *s = &sl->series[i];

		if (atomic_load(&s->state) == SERIES_READY &&
		    strcmp(families[s->family].type, "gauge") == 0)
			atomic_store(&s->value, 0);
	}
	atomic_store(&sl->active, 1);
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
metrics_escape(const char *value, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	for (const char *p = value ? value : ""; *p != '\0'; p++) {
		const char *rep = NULL;
		char one[2] = {*p, '\0'};
		size_t n;

		if (*p == '\\')
			rep = "\\\\";
		else if (*p == '"')
			rep = "\\\"";
		else if (*p == '\n')
			rep = "\\n";
		else
			rep = one;
		n = strlen(rep);
		if (o + n >= outlen)
			break;
		memcpy(out + o, rep, n);
		o += n;
	}
	out[o] = '\0';
}

/* Appends n bytes at *o; false when they do not fit (with the NUL). */
static bool
metrics_put(char *out, size_t *o, const char *p, size_t n)
{
	if (*o + n >= LABELS_MAX)
		return false;
	memcpy(out + *o, p, n);
	*o += n;
	return true;
}

/* k="v",... from the variadic pairs (values escaped and cut at
 * LABEL_VALUE_MAX bytes); false if they do not fit. No snprintf: this
 * runs on every recording. */
static bool
metrics_labels(char out[LABELS_MAX], va_list ap)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < LABEL_PAIRS_MAX; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v;
		size_t vn = 0;

		if (k == NULL)
			break;
		v = va_arg(ap, const char *);
		if ((o > 0 && !metrics_put(out, &o, ",", 1)) ||
		    !metrics_put(out, &o, k, strlen(k)) ||
		    !metrics_put(out, &o, "=\"", 2))
			return false;
		v = v ? v : "";
		for (; *v != '\0' && vn < LABEL_VALUE_MAX; v++, vn++) {
			bool ok;

			if (*v == '\\')
				ok = metrics_put(out, &o, "\\\\", 2);
			else if (*v == '"')
				ok = metrics_put(out, &o, "\\\"", 2);
			else if (*v == '\n')
				ok = metrics_put(out, &o, "\\n", 2);
			else
				ok = metrics_put(out, &o, v, 1);
			if (!ok)
				return false;
		}
		/* Cut: never in the middle of a UTF-8 sequence. */
		if (*v != '\0') {
			while (o > 0 &&
			       ((unsigned char)out[o - 1] & 0xC0) == 0x80)
				o--;
			if (o > 0 && (unsigned char)out[o - 1] >= 0xC0)
				o--;
		}
		if (!metrics_put(out, &o, "\"", 1))
			return false;
		out[o] = '\0';
		if (i == LABEL_PAIRS_MAX - 1 &&
		    va_arg(ap, const char *) != NULL)
			return false;
	}
	out[o] = '\0';
	return true;
}

static uint32_t
metrics_hash(enum metric_family f, const char *labels)
{
	uint32_t h = 2166136261u ^ (uint32_t)f;

	for (const char *p = labels; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* The series of (f, labels) in this process's slot, made if new; NULL
 * when the table is full (counted). */
static struct metrics_series *
metrics_series(enum metric_family f, const char *labels)
{
	struct metrics_slot *sl = metrics_slot();
	uint32_t h;

	if (sl == NULL || (unsigned)f >= METRIC_FAMILY_COUNT)
		return NULL;
	h = metrics_hash(f, labels);
	for (uint32_t i = 0; i < SERIES_MAX; i++) {
		struct metrics_series *s = &sl->series[(h + i) % SERIES_MAX];
		uint32_t st =
			atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == SERIES_FREE) {
			uint32_t expected = SERIES_FREE;

			if (atomic_compare_exchange_strong(&s->state, &expected,
							   SERIES_CLAIMING)) {
				s->family = (uint32_t)f;
				snprintf(s->labels, sizeof(s->labels), "%s",
					 labels);
				atomic_store_explicit(&s->state, SERIES_READY,
						      memory_order_release);
				atomic_store(&sl->active, 1);
				return s;
			}
			st = expected;
		}
		/* Another thread is writing this entry's key: a few
		 * instructions, unless its process died in between. */
		for (int spin = 0; st == SERIES_CLAIMING && spin < CLAIM_SPINS;
		     spin++)
			st = atomic_load_explicit(&s->state,
						  memory_order_acquire);
		if (st == SERIES_READY && s->family == (uint32_t)f &&
		    strcmp(s->labels, labels) == 0)
			return s;
	}
	atomic_fetch_add(&sl->dropped, 1);
	return NULL;
}

static struct metrics_series *
metrics_series_va(enum metric_family f, va_list ap)
{
	char labels[LABELS_MAX];

	if (!metrics_labels(labels, ap)) {
		struct metrics_slot *sl = metrics_slot();

		if (sl != NULL)
			atomic_fetch_add(&sl->dropped, 1);
		return NULL;
	}
	return metrics_series(f, labels);
}

void
metrics_add(enum metric_family f, int64_t delta, ...)
{
	struct metrics_series *s;
	va_list ap;

	va_start(ap, delta);
	s = metrics_series_va(f, ap);
	va_end(ap);
	if (s != NULL)
		atomic_fetch_add_explicit(&s->value, delta,
					  memory_order_relaxed);
}

void
metrics_set(enum metric_family f, int64_t value, ...)
{
	struct metrics_series *s;
	va_list ap;

	va_start(ap, value);
	s = metrics_series_va(f, ap);
	va_end(ap);
	if (s != NULL)
		atomic_store_explicit(&s->value, value, memory_order_relaxed);
}

void
metrics_observe_us(enum metric_family f, uint64_t us, ...)
{
	struct metrics_series *s;
	va_list ap;
	int b;

	va_start(ap, us);
	s = metrics_series_va(f, ap);
	va_end(ap);
	if (s == NULL)
		return;
	for (b = 0; b < BUCKETS && us > bucket_us[b]; b++)
		;
	if (b < BUCKETS)
		atomic_fetch_add_explicit(&s->bucket[b], 1,
					  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_us, (int64_t)us,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

int
metrics_write_family(struct buf *out, const char *name, const char *type,
		     const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			  type);
}

int
metrics_write_sample(struct buf *out, const char *name, const char *labels,
		     double value)
{
	if (labels != NULL && labels[0] != '\0')
		return buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
	return buf_printf(out, "%s %.17g\n", name, value);
}

/* One series of a histogram: buckets (cumulative), sum, count. */
static int
metrics_render_histogram(struct buf *out, const char *name, int slot,
			 const struct metrics_series *s)
{
	const char *sep = s->labels[0] != '\0' ? "," : "";
	int64_t cum = 0, count = atomic_load(&s->value);
	int rc = 0;

	for (int b = 0; b < BUCKETS; b++) {
		cum += atomic_load(&s->bucket[b]);
		rc |= buf_printf(out,
				 "%s_bucket{worker=\"%d\"%s%s,le=\"%s\"} "
				 "%lld\n",
				 name, slot, sep, s->labels, bucket_le[b],
				 (long long)cum);
	}
	/* Read apart from the buckets: +Inf is never below the last one. */
	if (count < cum)
		count = cum;
	rc |= buf_printf(out,
			 "%s_bucket{worker=\"%d\"%s%s,le=\"+Inf\"} %lld\n"
			 "%s_sum{worker=\"%d\"%s%s} %.6f\n"
			 "%s_count{worker=\"%d\"%s%s} %lld\n",
			 name, slot, sep, s->labels, (long long)count, name,
			 slot, sep, s->labels,
			 (double)atomic_load(&s->sum_us) / 1e6, name, slot, sep,
			 s->labels, (long long)count);
	return rc;
}

int
metrics_render(struct buf *out)
{
	int rc = 0;

	if (metrics_slot() == NULL)
		return 0;
	for (int f = 0; f < METRIC_FAMILY_COUNT; f++) {
		const char *name = families[f].name;
		bool histogram = strcmp(families[f].type, "histogram") == 0;

		rc |= metrics_write_family(out, name, families[f].type,
					   families[f].help);
		for (int slot = 0; slot < METRICS_SLOTS; slot++) {
			const struct metrics_slot *sl =
				&metrics_mem->slot[slot];

			if (!atomic_load(&sl->active))
				continue;
			if (f == METRIC_SERIES_DROPPED) {
				rc |= buf_printf(
					out, "%s{worker=\"%d\"} %lld\n", name,
					slot,
					(long long)atomic_load(&sl->dropped));
				continue;
			}
			for (size_t i = 0; i < SERIES_MAX; i++) {
				const struct metrics_series *s = &sl->series[i];

				if (atomic_load_explicit(
					    &s->state, memory_order_acquire) !=
					    SERIES_READY ||
				    s->family != (uint32_t)f)
					continue;
				if (histogram) {
					rc |= metrics_render_histogram(
						out, name, slot, s);
					continue;
				}
				rc |= buf_printf(
					out, "%s{worker=\"%d\"%s%s} %lld\n",
					name, slot, s->labels[0] ? "," : "",
					s->labels,
					(long long)atomic_load(&s->value));
			}
		}
	}
	return rc != 0 ? -1 : 0;
}
