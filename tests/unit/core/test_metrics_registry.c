/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry (fleetd/core/metrics.c) on its own: what a scrape
 * shows after recordings, in the Prometheus text format (the integration
 * test test_metrics.sh also runs promtool on a live scrape). One process,
 * shared mapping as the supervisor makes it; slots stand for workers.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "core/metrics.h"

static char *
scrape(void)
{
	struct buf b;

	buf_init(&b, 16u << 20);
	assert_int_equal(metrics_render(&b), 0);
	return buf_detach(&b, NULL);
}

/* The value of the sample line that starts with prefix (-1 if none). */
static double
sample(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while ((p = strstr(p, prefix)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static void
test_counters_gauges_and_escaping(void **state)
{
	char *text;

	(void)state;
	metrics_worker_start(1);
	metrics_add(METRIC_CHANNEL_MESSAGES, 1, "type", "hello", NULL);
	metrics_add(METRIC_CHANNEL_MESSAGES, 2, "type", "hello", NULL);
	metrics_add(METRIC_CHANNEL_MESSAGES, 1, "type", "a\"b\\c\nd", NULL);
	metrics_add(METRIC_DEVICES_CONNECTED, 3, NULL);
	metrics_add(METRIC_DEVICES_CONNECTED, -1, NULL);
	metrics_set(METRIC_JOB_QUEUE_DEPTH, 7, "pool", "api", NULL);
	text = scrape();
	assert_non_null(strstr(text, "# TYPE fleetd_channel_messages_total "
				     "counter\n"));
	assert_true(sample(text, "fleetd_channel_messages_total{worker=\"1\","
				 "type=\"hello\"}") == 3);
	/* Escaped as the text format says: \" \\ \n. */
	assert_true(sample(text, "fleetd_channel_messages_total{worker=\"1\","
				 "type=\"a\\\"b\\\\c\\nd\"}") == 1);
	assert_true(sample(text, "fleetd_devices_connected{worker=\"1\"}") ==
		    2);
	assert_true(sample(text, "fleetd_job_queue_depth{worker=\"1\","
				 "pool=\"api\"}") == 7);
	free(text);
}

static void
test_histogram_buckets_are_cumulative(void **state)
{
	char *text;

	(void)state;
	metrics_worker_start(2);
	metrics_observe_us(METRIC_SIGNER_SECONDS, 500, "op", "issue", NULL);
	metrics_observe_us(METRIC_SIGNER_SECONDS, 1000, "op", "issue", NULL);
	metrics_observe_us(METRIC_SIGNER_SECONDS, 30000, "op", "issue", NULL);
	metrics_observe_us(METRIC_SIGNER_SECONDS, 60000000, "op", "issue",
			   NULL);
	text = scrape();
#define H "fleetd_signer_request_duration_seconds"
	assert_true(sample(text, H "_bucket{worker=\"2\",op=\"issue\","
				   "le=\"0.001\"}") == 2);
	assert_true(sample(text, H "_bucket{worker=\"2\",op=\"issue\","
				   "le=\"0.05\"}") == 3);
	assert_true(sample(text, H "_bucket{worker=\"2\",op=\"issue\","
				   "le=\"10\"}") == 3);
	assert_true(sample(text, H "_bucket{worker=\"2\",op=\"issue\","
				   "le=\"+Inf\"}") == 4);
	assert_true(sample(text, H "_count{worker=\"2\",op=\"issue\"}") == 4);
	assert_true(sample(text, H "_sum{worker=\"2\",op=\"issue\"}") >
		    60.0314);
	assert_true(sample(text, H "_sum{worker=\"2\",op=\"issue\"}") <
		    60.0316);
#undef H
	free(text);
}

static void
test_restart_keeps_counters_resets_gauges(void **state)
{
	char *text;

	(void)state;
	metrics_worker_start(3);
	metrics_add(METRIC_API_REQUESTS, 5, "route", "/x", "method", "GET",
		    "status", "200", NULL);
	metrics_add(METRIC_DEVICES_CONNECTED, 4, NULL);
	metrics_worker_start(3); /* the worker of slot 3 restarted */
	text = scrape();
	assert_true(sample(text, "fleetd_api_requests_total{worker=\"3\","
				 "route=\"/x\",method=\"GET\","
				 "status=\"200\"}") == 5);
	assert_true(sample(text, "fleetd_devices_connected{worker=\"3\"}") ==
		    0);
	free(text);
}

static void
test_full_table_drops_and_counts(void **state)
{
	char label[32], *text;

	(void)state;
	metrics_worker_start(4);
	for (int i = 0; i < 1100; i++) {
		snprintf(label, sizeof(label), "t%d", i);
		metrics_add(METRIC_CHANNEL_MESSAGES, 1, "type", label, NULL);
	}
	/* Too many pairs or a label text too long: dropped, counted. */
	metrics_add(METRIC_CHANNEL_MESSAGES, 1, "a", "1", "b", "2", "c", "3",
		    "d", "4", "e", "5", NULL);
	text = scrape();
	assert_true(sample(text, "fleetd_metrics_series_dropped_total{worker="
				 "\"4\"}") >= 1100 - 1024 + 1);
	assert_true(sample(text, "fleetd_channel_messages_total{worker=\"4\","
				 "type=\"t0\"}") == 1);
	free(text);
}

static void *
adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++)
		metrics_add(METRIC_ENROLLMENTS, 1, "result", "enrolled", NULL);
	return NULL;
}

static void
test_threads_lose_no_increment(void **state)
{
	pthread_t t[4];
	char *text;

	(void)state;
	metrics_worker_start(5);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	text = scrape();
	assert_true(sample(text, "fleetd_enrollments_total{worker=\"5\","
				 "result=\"enrolled\"}") == 400000);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_gauges_and_escaping),
		cmocka_unit_test(test_histogram_buckets_are_cumulative),
		cmocka_unit_test(test_restart_keeps_counters_resets_gauges),
		cmocka_unit_test(test_full_table_drops_and_counts),
		cmocka_unit_test(test_threads_lose_no_increment),
	};

	assert_int_equal(metrics_shared_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
