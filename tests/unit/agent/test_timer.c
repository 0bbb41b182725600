/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agents' timer wheel (agent.c agent_timer) in a real lws context made
 * for many agents: timers fire in order of their due time and never
 * early, a cancelled one never fires, one re-armed from its own callback
 * fires again, delays under a tick (lws's own timers) and beyond a few
 * ticks both work, and re-arming replaces the earlier arming (the first
 * arming never fires).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent_timer.h"
#include "fleetagent.h"

#define MS ((lws_usec_t)LWS_US_PER_MS)
/* How late a timer may fire: one tick plus the machine's load. */
#define LATE_MAX (2000 * MS)

struct probe {
	lws_sorted_usec_list_t sul;
	lws_usec_t due;
	lws_usec_t fired_at;
	int fired;
	int order; /* position among all firings */
};

static int fired_total;
static struct lws_context *test_ctx;

static void
probe_cb(lws_sorted_usec_list_t *sul)
{
	struct probe *p = lws_container_of(sul, struct probe, sul);

	p->fired_at = lws_now_usecs();
	p->fired++;
	p->order = ++fired_total;
}

static void
rearm_cb(lws_sorted_usec_list_t *sul)
{
	struct probe *p = lws_container_of(sul, struct probe, sul);

	probe_cb(sul);
	if (p->fired == 1) {
		p->due = lws_now_usecs() + 250 * MS;
		agent_timer(test_ctx, &p->sul, rearm_cb, 250 * MS);
	}
}

static void
arm(struct probe *p, lws_usec_t us, sul_cb_t cb)
{
	p->due = lws_now_usecs() + us;
	agent_timer(test_ctx, &p->sul, cb, us);
}

/* Services the context until want timers fired or limit passed. */
static void
run_until(int want, lws_usec_t limit)
{
	lws_usec_t end = lws_now_usecs() + limit;

	while (fired_total < want && lws_now_usecs() < end)
		lws_service(test_ctx, 0);
}

static void
test_wheel(void **state)
{
	struct probe p[7];
	char err[FLEET_AGENT_ERR_MAX];
	int i;

	(void)state;
	memset(p, 0, sizeof(p));
	fired_total = 0;
	test_ctx = fleet_agent_context_new(100, err, sizeof(err));
	assert_non_null(test_ctx);
	arm(&p[0], 1200 * MS, probe_cb); /* 12 ticks */
	arm(&p[1], 20 * MS, probe_cb); /* under a tick: lws's */
	arm(&p[2], 150 * MS, probe_cb);
	arm(&p[3], 400 * MS, probe_cb); /* cancelled below */
	arm(&p[4], 300 * MS, rearm_cb); /* fires twice */
	arm(&p[5], 5000 * MS, probe_cb); /* re-armed earlier below */
	arm(&p[6], 700 * MS, probe_cb);
	lws_sul_cancel(&p[3].sul);
	arm(&p[5], 900 * MS, probe_cb);
	run_until(7, 10000 * MS); /* 6 timers, one of them twice */
	assert_int_equal(fired_total, 7);
	for (i = 0; i < 7; i++) {
		if (i == 3) {
			assert_int_equal(p[i].fired, 0);
			continue;
		}
		assert_int_equal(p[i].fired, i == 4 ? 2 : 1);
		/* Never early, not much late. */
		assert_true(p[i].fired_at >= p[i].due);
		assert_true(p[i].fired_at - p[i].due < LATE_MAX);
	}
	/* In order of due time: 20, 150, 700, 900, 1200 ms (p[4]'s second
	 * firing is 250 ms after its first, whenever that was). */
	assert_int_equal(p[1].order, 1);
	assert_true(p[1].order < p[2].order);
	assert_true(p[2].order < p[6].order);
	assert_true(p[6].order < p[5].order);
	assert_true(p[5].order < p[0].order);
	assert_int_equal(p[0].order, 7);
	/* Nothing fires any more: the cancelled one stays cancelled. */
	run_until(8, 1000 * MS);
	assert_int_equal(fired_total, 7);
	fleet_agent_context_free(test_ctx);
	test_ctx = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wheel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
