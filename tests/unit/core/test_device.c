/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device rules without a database: the "online" rule at its boundary,
 * label merge patches and their limit, If-Match, decommissioned devices,
 * a concurrent change retried, and decommissioning (certificates
 * revoked, the CRL's revocation generation moved, one audit row), on the
 * in-memory fake store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/device.h"
#include "fake_store_devices.h"

#define ID1 "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b01"
#define ID2 "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b02"
#define ACTOR "token:5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4bff"

static void
test_online_rule(void **state)
{
	(void)state;
	assert_false(device_online(-1, 6));
	assert_true(device_online(0, 6));
	assert_true(device_online(5999999, 6));
	assert_false(device_online(6000000, 6));
	assert_false(device_online(6000001, 6));
	assert_false(device_online(0, 0));
	assert_true(device_online(INT64_C(86399999999), 86400));
}

static void
put(struct label_set *s, const char *k, const char *v)
{
	assert_int_equal(label_set_put(s, k, v), LABEL_OK);
}

static void
test_labels_apply(void **state)
{
	struct label_set cur = {0, NULL}, out = {0, NULL};
	struct label_patch p;
	char k[16];
	int i;

	(void)state;
	memset(&p, 0, sizeof(p));
	put(&cur, "site", "b7");
	put(&cur, "room", "12");
	put(&p.set, "floor", "2");
	put(&p.set, "site", "b8");
	assert_int_equal(label_patch_remove(&p, "room"), LABEL_OK);
	assert_int_equal(label_patch_remove(&p, "absent"), LABEL_OK);
	assert_int_equal(label_patch_remove(&p, "bad key"), LABEL_ERR_KEY);
	assert_int_equal(device_labels_apply(&cur, &p, &out), LABEL_OK);
	assert_int_equal(out.n, 2);
	assert_string_equal(label_set_get(&out, "site"), "b8");
	assert_string_equal(label_set_get(&out, "floor"), "2");
	assert_null(label_set_get(&out, "room"));
	label_set_clear(&out);
	label_patch_clear(&p);

	/* 64 labels is the limit a patch may reach, not pass */
	for (i = 2; i < LABELS_MAX; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		put(&cur, k, "v");
	}
	assert_int_equal(cur.n, LABELS_MAX);
	put(&p.set, "site", "b9");
	assert_int_equal(device_labels_apply(&cur, &p, &out), LABEL_OK);
	assert_int_equal(out.n, LABELS_MAX);
	label_set_clear(&out);
	put(&p.set, "one-more", "v");
	assert_int_equal(device_labels_apply(&cur, &p, &out),
			 LABEL_ERR_TOO_MANY);
	assert_int_equal(label_patch_remove(&p, "k2"), LABEL_OK);
	assert_int_equal(device_labels_apply(&cur, &p, &out), LABEL_OK);
	assert_int_equal(out.n, LABELS_MAX);
	label_set_clear(&out);
	label_patch_clear(&p);
	label_set_clear(&cur);
}

static void
test_patch(void **state)
{
	struct store st;
	struct label_patch p;
	struct device d;

	(void)state;
	fake_store_init(&st);
	memset(&p, 0, sizeof(p));
	memset(&d, 0, sizeof(d));
	put(&fake_store_add(&st, ID1, "0A01")->labels, "site", "b7");
	put(&p.set, "floor", "2");

	/* If-Match that is not the current revision: nothing written */
	assert_int_equal(device_patch_labels(&st, ID1, 7, &p, ACTOR, &d),
			 DEVICE_PRECONDITION);
	assert_int_equal(st.audits, 0);
	assert_int_equal(device_patch_labels(&st, ID2, -1, &p, ACTOR, &d),
			 DEVICE_NOTFOUND);

	assert_int_equal(device_patch_labels(&st, ID1, 1, &p, ACTOR, &d),
			 DEVICE_OK);
	assert_int_equal(d.revision, 2);
	assert_string_equal(label_set_get(&d.labels, "floor"), "2");
	assert_string_equal(label_set_get(&d.labels, "site"), "b7");
	assert_int_equal(st.audits, 1);
	assert_string_equal(st.last_action, "device.update");
	assert_string_equal(st.last_actor, ACTOR);
	device_clear(&d);

	/* A concurrent writer wins the race: without If-Match the patch is
	 * applied again on top of its change; with If-Match it is 412. */
	st.concurrent_writes = 1;
	assert_int_equal(device_patch_labels(&st, ID1, -1, &p, ACTOR, &d),
			 DEVICE_OK);
	assert_string_equal(label_set_get(&d.labels, "writer"), "other");
	assert_int_equal(d.revision, 4);
	device_clear(&d);
	st.concurrent_writes = 1;
	assert_int_equal(device_patch_labels(&st, ID1, 4, &p, ACTOR, &d),
			 DEVICE_PRECONDITION);
	st.concurrent_writes = 100;
	assert_int_equal(device_patch_labels(&st, ID1, -1, &p, ACTOR, &d),
			 DEVICE_PRECONDITION);
	st.concurrent_writes = 0;

	st.fail = true;
	assert_int_equal(device_patch_labels(&st, ID1, -1, &p, ACTOR, &d),
			 DEVICE_ERR_STORE);
	st.fail = false;

	label_patch_clear(&p);
	fake_store_clear(&st);
}

static void
test_decommission(void **state)
{
	struct store st;
	struct label_patch p;
	struct device d;
	int64_t gen;

	(void)state;
	fake_store_init(&st);
	memset(&p, 0, sizeof(p));
	memset(&d, 0, sizeof(d));
	fake_store_add(&st, ID1, "06AFAD95");
	fake_store_add(&st, ID2, "7B");
	gen = st.generation;

	assert_int_equal(device_decommission(&st, ID1, 5, ACTOR, &d),
			 DEVICE_PRECONDITION);
	assert_false(st.certs[0].revoked);
	assert_int_equal(device_decommission(&st, ID1, -1, ACTOR, &d),
			 DEVICE_OK);
	assert_false(d.active);
	assert_string_equal(d.cert.status, "revoked");
	assert_true(st.certs[0].revoked);
	assert_int_equal(st.certs[0].reason, DEVICE_DECOMMISSION_REASON);
	assert_false(st.certs[1].revoked);
	assert_int_equal(st.generation, gen + 1);
	assert_int_equal(st.audits, 1);
	assert_string_equal(st.last_action, "device.decommission");
	device_clear(&d);

	/* once decommissioned, nothing changes any more */
	assert_int_equal(device_decommission(&st, ID1, -1, ACTOR, &d),
			 DEVICE_CONFLICT);
	put(&p.set, "site", "b7");
	assert_int_equal(device_patch_labels(&st, ID1, -1, &p, ACTOR, &d),
			 DEVICE_CONFLICT);
	assert_int_equal(st.audits, 1);
	assert_int_equal(device_decommission(&st, "nope", -1, ACTOR, &d),
			 DEVICE_NOTFOUND);
	label_patch_clear(&p);
	fake_store_clear(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_online_rule),
		cmocka_unit_test(test_labels_apply),
		cmocka_unit_test(test_patch),
		cmocka_unit_test(test_decommission),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
