/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hello message matches docs/protocol.md: every field with its type and
 * value, in the documented order; labels parse as documented.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_int.h"

static void
test_hello_fields(void **state)
{
	struct agent_hello h;
	json_t *addrs = json_pack("[s]", "10.0.0.5");
	json_t *inv = json_pack("{s:s}", "arch", "x86_64");
	json_t *msg;
	char *text;
	size_t len = 0;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.agent_version = "0.1.0";
	h.fw_version = "1.4.2";
	h.model = "plc-x";
	h.boot_id = "3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f";
	h.uptime = 1234;
	h.addresses = addrs;
	h.config_hash = "";
	h.inventory = inv;
	text = agent_hello_build(&h, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_string_equal(
		text,
		"{\"type\":\"hello\",\"agent_version\":\"0.1.0\","
		"\"fw_version\":\"1.4.2\",\"model\":\"plc-x\",\"boot_id\":"
		"\"3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f\",\"uptime\":1234,"
		"\"addresses\":[\"10.0.0.5\"],\"config_version\":0,"
		"\"config_hash\":\"\",\"inventory\":{\"arch\":"
		"\"x86_64\"}}");
	msg = json_loads(text, 0, NULL);
	assert_non_null(msg);
	/* hello is not a report: no seq (docs/protocol.md) */
	assert_null(json_object_get(msg, "seq"));
	json_decref(msg);
	free(text);
	/* the caller's references survive */
	assert_int_equal(addrs->refcount, 1);
	assert_int_equal(inv->refcount, 1);
	json_decref(addrs);
	json_decref(inv);
}

static void
test_hello_defaults(void **state)
{
	struct agent_hello h;
	json_t *msg;
	char *text;
	size_t len;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.uptime = -1; /* unknown */
	text = agent_hello_build(&h, &len);
	assert_non_null(text);
	msg = json_loads(text, 0, NULL);
	assert_non_null(msg);
	assert_int_equal(json_integer_value(json_object_get(msg, "uptime")), 0);
	assert_true(json_is_array(json_object_get(msg, "addresses")));
	assert_true(json_is_object(json_object_get(msg, "inventory")));
	assert_string_equal(
		json_string_value(json_object_get(msg, "config_hash")), "");
	json_decref(msg);
	free(text);
}

static void
test_labels(void **state)
{
	static const struct {
		const char *in;
		int rc;
		size_t n;
	} cases[] = {
		{"", 0, 0},
		{"site=b7", 0, 1},
		{"site=b7,rack=r1", 0, 2},
		{"a.b/c-d_e=", 0, 1},
		{"site", -1, 0},
		{"=v", -1, 0},
		{"bad key=v", -1, 0},
		{"k=v,", 0, 1},
		{"k=v,,x=y", -1, 0},
	};
	char err[256];
	json_t *obj;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		obj = NULL;
		assert_int_equal(
			agent_labels_parse(cases[i].in, &obj, err, sizeof(err)),
			cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(json_object_size(obj), cases[i].n);
			json_decref(obj);
		}
	}
}

static void
test_boot_id(void **state)
{
	char id[SECRET_UUID_LEN];

	(void)state;
	assert_int_equal(agent_read_boot_id("/nonexistent", id), -1);
	/* on Linux the kernel's boot id is a UUID */
	if (access("/proc/sys/kernel/random/boot_id", R_OK) == 0) {
		assert_int_equal(agent_read_boot_id(
					 "/proc/sys/kernel/random/boot_id", id),
				 0);
		assert_true(secret_is_uuid(id));
	}
	/* /proc files report size 0: uptime must still be read */
	if (access("/proc/uptime", R_OK) == 0)
		assert_true(agent_system_uptime() > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_fields),
		cmocka_unit_test(test_hello_defaults),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_boot_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
