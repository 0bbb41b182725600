/* SPDX-License-Identifier: Apache-2.0 */
/* Full-jitter backoff: bounds, growth, cap, reset and spread of draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backoff.h"

#include <stdint.h>

static void
test_ceiling_doubles_to_cap(void **state)
{
	struct backoff b;
	static const uint32_t expect[] = {1000,	  2000,	  4000,	 8000,
					  16000,  32000,  64000, 128000,
					  256000, 300000, 300000};

	(void)state;
	backoff_init(&b, 1000, 300000, 42);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(backoff_ceiling(&b), expect[i]);
		(void)backoff_next(&b);
	}
	/* Many more attempts never overflow past the cap. */
	for (int i = 0; i < 1000; i++)
		assert_true(backoff_next(&b) <= 300000);
	backoff_reset(&b);
	assert_int_equal(backoff_ceiling(&b), 1000);
}

static void
test_draws_within_bounds(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 100, 5000, 7);
	for (int round = 0; round < 200; round++) {
		uint32_t ceiling = backoff_ceiling(&b);
		uint32_t d = backoff_next(&b);

		assert_true(d <= ceiling);
		if (round % 10 == 9)
			backoff_reset(&b);
	}
}

/* Full jitter: draws spread over [0, ceiling], not clustered at the top. */
static void
test_spread(void **state)
{
	enum { DRAWS = 100000, BUCKETS = 10 };
	unsigned counts[BUCKETS] = {0};
	struct backoff b;
	double mean = 0;

	(void)state;
	backoff_init(&b, 60000, 60000, 12345);
	for (int i = 0; i < DRAWS; i++) {
		uint32_t d = backoff_next(&b);

		counts[d * (uint64_t)BUCKETS / 60001]++;
		mean += d;
	}
	mean /= DRAWS;
	/* Uniform: mean near 30000, every tenth holds about 10%. */
	assert_true(mean > 29000 && mean < 31000);
	for (int i = 0; i < BUCKETS; i++)
		assert_true(counts[i] > DRAWS / BUCKETS * 9 / 10 &&
			    counts[i] < DRAWS / BUCKETS * 11 / 10);
}

static void
test_seeds_differ(void **state)
{
	struct backoff a, b;
	int same = 0;

	(void)state;
	backoff_init(&a, 1000, 300000, 0);
	backoff_init(&b, 1000, 300000, 0);
	for (int i = 0; i < 32; i++) {
		a.attempt = b.attempt = 8;
		same += backoff_next(&a) == backoff_next(&b);
	}
	/* Two agents started together do not reconnect in lockstep. */
	assert_true(same < 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling_doubles_to_cap),
		cmocka_unit_test(test_draws_within_bounds),
		cmocka_unit_test(test_spread),
		cmocka_unit_test(test_seeds_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
