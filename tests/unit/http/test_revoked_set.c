/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd/channel/revoked.c: nothing is refused before the first load; a
 * full load replaces the set (a serial no longer listed, e.g. expired, is
 * accepted again); a delta adds to it, keeps the set sorted and holds a
 * serial listed twice once; an empty delta changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "channel/revoked.h"

#include <stdlib.h>
#include <string.h>

/* A malloc'd list of malloc'd copies, as store_refused_serials makes. */
static char **
list_of(size_t n, const char *const *s)
{
	char **l = calloc(n + 1, sizeof(*l));

	assert_non_null(l);
	for (size_t i = 0; i < n; i++) {
		l[i] = strdup(s[i]);
		assert_non_null(l[i]);
	}
	return l;
}

static void
test_full_and_deltas(void **state)
{
	struct revoked_set *set = revoked_set_new();
	const char *full[] = {"0b", "1a", "3c"};
	const char *delta[] = {"0a", "1a", "2f", "4d"};
	const char *again[] = {"00", "99"};
	const char *later[] = {"2f"};

	(void)state;
	assert_non_null(set);
	assert_false(revoked_set_loaded(set));
	assert_false(revoked_set_contains(set, "1a"));
	revoked_set_replace(set, list_of(3, full), 3);
	assert_true(revoked_set_loaded(set));
	assert_true(revoked_set_contains(set, "0b"));
	assert_false(revoked_set_contains(set, "2f"));
	/* 1a is in both: kept once, and every other serial found. */
	revoked_set_add(set, list_of(4, delta), 4);
	for (size_t i = 0; i < 3; i++)
		assert_true(revoked_set_contains(set, full[i]));
	for (size_t i = 0; i < 4; i++)
		assert_true(revoked_set_contains(set, delta[i]));
	assert_false(revoked_set_contains(set, "1b"));
	/* At both ends of the sorted set. */
	revoked_set_add(set, list_of(2, again), 2);
	assert_true(revoked_set_contains(set, "00"));
	assert_true(revoked_set_contains(set, "99"));
	assert_true(revoked_set_contains(set, "3c"));
	/* An empty delta. */
	revoked_set_add(set, calloc(1, sizeof(char *)), 0);
	assert_true(revoked_set_contains(set, "4d"));
	/* A full load is the set: what it leaves out is accepted again. */
	revoked_set_replace(set, list_of(1, later), 1);
	assert_true(revoked_set_contains(set, "2f"));
	assert_false(revoked_set_contains(set, "0b"));
	assert_false(revoked_set_contains(set, "00"));
	revoked_set_free(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_and_deltas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
