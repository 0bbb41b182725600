/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/tls_tickets.c: the ticket key schedule (made, encrypting, accepted,
 * removed) and the resumption rule, table-driven over times in seconds.
 * A policy of a 1 h rotation and a 4 h ticket lifetime unless said.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/tls_tickets.h"

#define H 3600

static const struct tls_ticket_policy policy = {4 * H, 1 * H};

static struct tls_ticket_key
key_made(unsigned char tag, int64_t created)
{
	struct tls_ticket_key k;

	memset(&k, 0, sizeof(k));
	memset(k.name, tag, sizeof(k.name));
	memset(k.secret, tag, sizeof(k.secret));
	k.created = created;
	k.expires = tls_ticket_key_expires(&policy, created);
	return k;
}

static void
test_policy_bounds(void **state)
{
	static const struct {
		long lifetime, rotation;
		int rc;
	} cases[] = {
		{0, 60, 0}, /* off: the rotation does not matter */
		{0, 0, 0},	{60, 60, 0},  {86400, 3600, 0},
		{4 * H, H, 0},	{59, 59, -1}, /* shorter than a minute */
		{86401, H, -1}, /* longer than a day */
		{H, 2 * H, -1}, /* rotation longer than the lifetime */
		{H, 59, -1},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_ticket_policy p = {cases[i].lifetime,
					      cases[i].rotation};

		err[0] = '\0';
		assert_int_equal(tls_ticket_policy_check(&p, err, sizeof(err)),
				 cases[i].rc);
		if (cases[i].rc != 0)
			assert_true(strstr(err, "tls_ticket_") != NULL);
	}
}

static void
test_key_made_when_due(void **state)
{
	struct tls_ticket_key keys[2] = {0};
	struct tls_ticket_policy off = {0, H};
	int64_t t0 = 1000000;

	(void)state;
	/* None: one is made (unless resumption is off). */
	assert_true(tls_ticket_keys_need_new(keys, 0, &policy, t0));
	assert_false(tls_ticket_keys_need_new(keys, 0, &off, t0));
	keys[0] = key_made(1, t0);
	/* Within its rotation: no other. */
	assert_false(tls_ticket_keys_need_new(keys, 1, &policy, t0));
	assert_false(tls_ticket_keys_need_new(keys, 1, &policy, t0 + H - 1));
	/* One rotation later: the next. */
	assert_true(tls_ticket_keys_need_new(keys, 1, &policy, t0 + H));
	keys[1] = key_made(2, t0 + H);
	assert_false(tls_ticket_keys_need_new(keys, 2, &policy, t0 + H));
	assert_true(tls_ticket_keys_need_new(keys, 2, &policy, t0 + 2 * H));
}

static void
test_newest_encrypts_old_ones_decrypt(void **state)
{
	struct tls_ticket_key keys[3];
	int64_t t0 = 1000000;

	(void)state;
	keys[0] = key_made(1, t0);
	keys[1] = key_made(2, t0 + H);
	keys[2] = key_made(3, t0 + 2 * H);
	/* Listed in any order, the newest made encrypts. */
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 3, t0 + 2 * H),
			 &keys[2]);
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 2, t0 + 2 * H),
			 &keys[1]);
	/* A key another host made a little in the future still counts;
	 * much further, it does not. */
	keys[2].created = t0 + 2 * H + TLS_TICKET_CLOCK_SKEW_S;
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 3, t0 + 2 * H),
			 &keys[2]);
	keys[2].created = t0 + 2 * H + TLS_TICKET_CLOCK_SKEW_S + 1;
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 3, t0 + 2 * H),
			 &keys[1]);
	keys[2] = key_made(3, t0 + 2 * H);
	/* The first key's tickets (made until t0 + H, living 4 h) are
	 * accepted until t0 + 5 h, not a second longer. */
	assert_int_equal(keys[0].expires, t0 + 5 * H);
	assert_ptr_equal(tls_ticket_keys_decrypting(keys, 3, keys[0].name,
						    t0 + 5 * H - 1),
			 &keys[0]);
	assert_null(
		tls_ticket_keys_decrypting(keys, 3, keys[0].name, t0 + 5 * H));
	assert_false(tls_ticket_key_removable(&keys[0], t0 + 5 * H - 1));
	assert_true(tls_ticket_key_removable(&keys[0], t0 + 5 * H));
	/* An unknown name: no key (a full handshake). */
	{
		unsigned char other[TLS_TICKET_NAME_LEN];

		memset(other, 9, sizeof(other));
		assert_null(tls_ticket_keys_decrypting(keys, 3, other, t0));
	}
	/* All expired: nothing encrypts. */
	assert_null(tls_ticket_keys_encrypting(keys, 3, t0 + 7 * H));
	assert_null(tls_ticket_keys_encrypting(keys, 0, t0));
}

static void
test_equal_times_pick_one_key(void **state)
{
	struct tls_ticket_key keys[2];
	int64_t t0 = 1000000;

	(void)state;
	keys[0] = key_made(1, t0);
	keys[1] = key_made(2, t0);
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 2, t0), &keys[1]);
	keys[0] = key_made(2, t0);
	keys[1] = key_made(1, t0);
	assert_ptr_equal(tls_ticket_keys_encrypting(keys, 2, t0), &keys[0]);
}

static void
test_ticket_lifetime_bounded(void **state)
{
	int64_t now = 2000000;

	(void)state;
	/* The policy's, */
	assert_int_equal(tls_ticket_lifetime(&policy, now, now + 5 * H,
					     now + 90 * 86400),
			 4 * H);
	/* shortened to the key's end, */
	assert_int_equal(
		tls_ticket_lifetime(&policy, now, now + H, now + 90 * 86400),
		H);
	/* and to the certificate's notAfter; */
	assert_int_equal(
		tls_ticket_lifetime(&policy, now, now + 5 * H, now + 600), 600);
	/* none past either. */
	assert_int_equal(tls_ticket_lifetime(&policy, now, now + 5 * H, now),
			 0);
	assert_int_equal(tls_ticket_lifetime(&policy, now, now - 1, now + H),
			 0);
}

static void
test_resume_rule(void **state)
{
	static const struct {
		long lifetime;
		int64_t issued_ago; /* seconds before now */
		long timeout;
		int64_t not_after_in; /* seconds after now */
		bool loaded, refused;
		enum tls_resume want;
	} cases[] = {
		{4 * H, 60, 4 * H, 86400, true, false, TLS_RESUME_OK},
		/* the refused set not loaded: no resumption */
		{4 * H, 60, 4 * H, 86400, false, false, TLS_RESUME_NOT_LOADED},
		/* revoked, superseded, decommissioned: refused */
		{4 * H, 60, 4 * H, 86400, true, true, TLS_RESUME_REFUSED},
		/* the certificate expired after the ticket was issued */
		{4 * H, 60, 4 * H, 0, true, false, TLS_RESUME_CERT_EXPIRED},
		{4 * H, 60, 4 * H, -1, true, false, TLS_RESUME_CERT_EXPIRED},
		/* the ticket's own lifetime is over */
		{4 * H, 4 * H, 4 * H, 86400, true, false,
		 TLS_RESUME_TICKET_EXPIRED},
		{4 * H, 601, 600, 86400, true, false,
		 TLS_RESUME_TICKET_EXPIRED},
		{4 * H, 599, 600, 86400, true, false, TLS_RESUME_OK},
		/* a ticket claiming more than the policy allows is cut */
		{H, H + 1, 7 * 86400, 86400, true, false,
		 TLS_RESUME_TICKET_EXPIRED},
		/* issued in the future: within the skew, fine; past it, no */
		{4 * H, -TLS_TICKET_CLOCK_SKEW_S, 4 * H, 86400, true, false,
		 TLS_RESUME_OK},
		{4 * H, -TLS_TICKET_CLOCK_SKEW_S - 1, 4 * H, 86400, true, false,
		 TLS_RESUME_TICKET_EXPIRED},
		/* resumption turned off since the ticket was made */
		{0, 60, 4 * H, 86400, true, false, TLS_RESUME_DISABLED},
	};
	int64_t now = 3000000;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_ticket_policy p = {cases[i].lifetime, H};
		enum tls_resume r = tls_resume_check(
			&p, now, now - cases[i].issued_ago, cases[i].timeout,
			now + cases[i].not_after_in, cases[i].loaded,
			cases[i].refused);

		if (r != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, tls_resume_name(r),
				 tls_resume_name(cases[i].want));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_bounds),
		cmocka_unit_test(test_key_made_when_due),
		cmocka_unit_test(test_newest_encrypts_old_ones_decrypt),
		cmocka_unit_test(test_equal_times_pick_one_key),
		cmocka_unit_test(test_ticket_lifetime_bounded),
		cmocka_unit_test(test_resume_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
