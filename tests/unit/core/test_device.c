/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device rules without a database: the "online" rule at its boundary,
 * label merge patches and their limit, If-Match, decommissioned devices,
 * a concurrent change retried, and decommissioning (certificates
 * revoked, the CRL's revocation generation moved, one audit row), on the
 * in-memory fake store; naming a device by an id prefix (bounds,
 * unique, ambiguous, unknown, malformed), list sort keys, and bulk
 * actions on a selector (dry run, active devices only, the label limit
 * refusing the whole patch, one audit row).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/device.h"
#include "core/selector.h"
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

static void
test_ref_parse(void **state)
{
	char lo[DEVICE_ID_LEN], hi[DEVICE_ID_LEN];
	bool full = true;

	(void)state;
	assert_int_equal(device_ref_parse("5a0e2b4c", lo, hi, &full), 0);
	assert_false(full);
	assert_string_equal(lo, "5a0e2b4c-0000-0000-0000-000000000000");
	assert_string_equal(hi, "5a0e2b4c-ffff-ffff-ffff-ffffffffffff");
	/* upper case is read as lower case; a dash where a UUID has one */
	assert_int_equal(device_ref_parse("5A0E2B4C-1D", lo, hi, &full), 0);
	assert_string_equal(lo, "5a0e2b4c-1d00-0000-0000-000000000000");
	assert_string_equal(hi, "5a0e2b4c-1dff-ffff-ffff-ffffffffffff");
	assert_int_equal(device_ref_parse(ID1, lo, hi, &full), 0);
	assert_true(full);
	assert_string_equal(lo, ID1);
	assert_string_equal(hi, ID1);
	/* too short, too long, not hex, a dash out of place, none where one
	 * belongs, empty */
	assert_int_equal(device_ref_parse("5a0e2b4", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse(ID1 "0", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse("5a0e2b4g", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse("5a0e-2b4c", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse("5a0e2b4c1", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse("", lo, hi, &full), -1);
	assert_int_equal(device_ref_parse("bulk-label", lo, hi, &full), -1);
}

static void
test_resolve(void **state)
{
	struct device_candidates c;
	struct store st;
	char id[DEVICE_ID_LEN];

	(void)state;
	fake_store_init(&st);
	fake_store_add(&st, ID1, NULL);
	fake_store_add(&st, ID2, NULL);
	fake_store_add(&st, "7c000000-0000-4000-8000-000000000001", NULL);
	assert_int_equal(device_resolve(&st, "7c000000", id, &c), DEVICE_OK);
	assert_string_equal(id, "7c000000-0000-4000-8000-000000000001");
	assert_int_equal(device_resolve(&st, "5a0e2b4c", id, &c),
			 DEVICE_AMBIGUOUS);
	assert_int_equal(c.n, 2);
	assert_false(c.more);
	assert_string_equal(c.ids[0], ID1);
	assert_string_equal(c.ids[1], ID2);
	assert_int_equal(device_resolve(&st, ID2, id, &c), DEVICE_OK);
	assert_string_equal(id, ID2);
	assert_int_equal(device_resolve(&st, "12345678", id, &c),
			 DEVICE_NOTFOUND);
	assert_int_equal(device_resolve(&st, "1234567", id, &c),
			 DEVICE_BAD_REF);
	/* a full id is not looked up: the caller's read says 404 */
	assert_int_equal(device_resolve(&st,
					"00000000-0000-4000-8000-000000000000",
					id, &c),
			 DEVICE_OK);
	st.fail = true;
	assert_int_equal(device_resolve(&st, "7c000000", id, &c),
			 DEVICE_ERR_STORE);
	fake_store_clear(&st);
}

static void
test_sort_parse(void **state)
{
	struct device_sort s;

	(void)state;
	assert_int_equal(device_sort_parse("created", &s), 0);
	assert_int_equal(s.key, DEVICE_SORT_CREATED);
	assert_false(s.desc);
	assert_int_equal(device_sort_parse("-last_seen", &s), 0);
	assert_int_equal(s.key, DEVICE_SORT_LAST_SEEN);
	assert_true(s.desc);
	assert_int_equal(device_sort_parse("cert_expiry", &s), 0);
	assert_int_equal(s.key, DEVICE_SORT_CERT_EXPIRY);
	assert_int_equal(device_sort_parse("name", &s), -1);
	assert_int_equal(device_sort_parse("--created", &s), -1);
	assert_int_equal(device_sort_parse("", &s), -1);
	assert_int_equal(device_sort_parse("-", &s), -1);
}

static struct selector *
parse(const char *text)
{
	struct selector *sel = NULL;

	assert_int_equal(selector_parse(text, &sel, NULL, 0), 0);
	return sel;
}

static void
test_bulk(void **state)
{
	struct device_bulk_result r;
	struct label_patch p;
	struct selector *sel;
	struct store st;
	char k[16];
	int i;

	(void)state;
	fake_store_init(&st);
	memset(&p, 0, sizeof(p));
	put(&fake_store_add(&st, ID1, "0A01")->labels, "site", "b7");
	put(&fake_store_add(&st, ID2, "0A02")->labels, "site", "b7");
	put(&fake_store_add(&st, "7c000000-0000-4000-8000-000000000001", "0A03")
		     ->labels,
	    "site", "b8");
	put(&p.set, "tier", "gold");

	/* dry run: counts and samples, writes nothing */
	sel = parse("site=b7");
	assert_int_equal(
		device_bulk_label(&st, "site=b7", sel, 6, &p, true, ACTOR, &r),
		DEVICE_OK);
	selector_free(sel);
	assert_int_equal(r.matched, 2);
	assert_int_equal(r.nsample, 2);
	assert_string_equal(r.sample[0], ID1);
	assert_null(label_set_get(&st.devices[0].labels, "tier"));
	assert_int_equal(st.audits, 0);

	/* for real: both labelled, one audit row */
	sel = parse("site=b7");
	assert_int_equal(
		device_bulk_label(&st, "site=b7", sel, 6, &p, false, ACTOR, &r),
		DEVICE_OK);
	selector_free(sel);
	assert_int_equal(r.matched, 2);
	assert_string_equal(label_set_get(&st.devices[1].labels, "tier"),
			    "gold");
	assert_null(label_set_get(&st.devices[2].labels, "tier"));
	assert_int_equal(st.audits, 1);
	assert_string_equal(st.last_action, "device.bulk_label");

	/* one device at the limit refuses the whole patch */
	for (i = 0; i < LABELS_MAX - 2; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		put(&st.devices[1].labels, k, "v");
	}
	label_patch_clear(&p);
	memset(&p, 0, sizeof(p));
	put(&p.set, "extra", "1");
	sel = parse("site=b7");
	assert_int_equal(
		device_bulk_label(&st, "site=b7", sel, 6, &p, false, ACTOR, &r),
		DEVICE_TOO_MANY_LABELS);
	selector_free(sel);
	assert_string_equal(r.blocked, ID2);
	assert_null(label_set_get(&st.devices[0].labels, "extra"));
	assert_int_equal(st.audits, 1);

	/* decommission: active devices only, even when the selector asks
	 * for decommissioned ones */
	sel = parse("site=b7");
	assert_int_equal(device_bulk_decommission(&st, "site=b7", sel, 6, false,
						  ACTOR, &r),
			 DEVICE_OK);
	selector_free(sel);
	assert_int_equal(r.matched, 2);
	assert_int_equal(r.revoked, 2);
	assert_false(st.devices[0].active);
	assert_true(st.devices[2].active);
	assert_int_equal(st.audits, 2);
	sel = parse("status=decommissioned");
	assert_int_equal(device_bulk_decommission(&st, "status=decommissioned",
						  sel, 6, true, ACTOR, &r),
			 DEVICE_OK);
	selector_free(sel);
	assert_int_equal(r.matched, 0);
	sel = parse("site=b7");
	assert_int_equal(
		device_bulk_label(&st, "site=b7", sel, 6, &p, false, ACTOR, &r),
		DEVICE_OK);
	selector_free(sel);
	assert_int_equal(r.matched, 0);
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
		cmocka_unit_test(test_ref_parse),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_sort_parse),
		cmocka_unit_test(test_bulk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
