/* SPDX-License-Identifier: Apache-2.0 */
/* core/est.c: which client certificates may re-enroll over EST, at the
 * edges of the grace window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/est.h"

#define NOW 1800000000
#define DAY 86400

static const struct {
	enum est_client_cert state;
	int64_t not_after;
	int64_t grace;
	bool newest;
	enum est_reenroll_verdict want;
} cases[] = {
	{EST_CERT_VERIFIED, NOW + DAY, 30 * DAY, false, EST_REENROLL_OK},
	{EST_CERT_VERIFIED, NOW + DAY, 0, true, EST_REENROLL_OK},
	{EST_CERT_NONE, 0, 30 * DAY, true, EST_REENROLL_NO_CERT},
	{EST_CERT_INVALID, NOW + DAY, 30 * DAY, true,
	 EST_REENROLL_CERT_INVALID},
	/* expired: inside the window, at its edge, one second past it */
	{EST_CERT_EXPIRED, NOW - 1, 30 * DAY, true, EST_REENROLL_OK},
	{EST_CERT_EXPIRED, NOW - 30 * DAY, 30 * DAY, true, EST_REENROLL_OK},
	{EST_CERT_EXPIRED, NOW - 30 * DAY - 1, 30 * DAY, true,
	 EST_REENROLL_PAST_GRACE},
	{EST_CERT_EXPIRED, NOW - 400 * DAY, 30 * DAY, true,
	 EST_REENROLL_PAST_GRACE},
	/* an older certificate of the device proves nothing */
	{EST_CERT_EXPIRED, NOW - 1, 30 * DAY, false, EST_REENROLL_NOT_NEWEST},
	/* 0 disables renewal after expiry */
	{EST_CERT_EXPIRED, NOW - 1, 0, true, EST_REENROLL_GRACE_DISABLED},
	/* the TLS check and our clock disagree by a second */
	{EST_CERT_EXPIRED, NOW + 1, 0, true, EST_REENROLL_OK},
	/* absurd notAfter values do not overflow into acceptance */
	{EST_CERT_EXPIRED, INT64_MIN, 30 * DAY, true, EST_REENROLL_PAST_GRACE},
};

static void
test_rule_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum est_reenroll_verdict got =
			est_reenroll_rule(cases[i].state, cases[i].not_after,
					  NOW, cases[i].grace, cases[i].newest);

		if (got != cases[i].want)
			fail_msg("case %zu: got %s, want %s", i,
				 est_reenroll_verdict_code(got),
				 est_reenroll_verdict_code(cases[i].want));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
