/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selector parser and SQL translator: table-driven vectors. Good selectors
 * must give exactly the expected SQL and parameters; bad ones must fail
 * with a message that names the column where the problem is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/selector.h"

static const struct selector_columns cols = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = "ONLINE($1)",
	.labels = "d.labels",
};

struct good_case {
	const char *text;
	const char *where;
	const char *params[8]; /* NULL-terminated */
};

static const struct good_case good[] = {
	{"", "TRUE", {NULL}},
	{"   ", "TRUE", {NULL}},
	{"site=b7",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"site", "b7", NULL}},
	{"site==b7",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"site", "b7", NULL}},
	{" site = b7 ",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"site", "b7", NULL}},
	{"site!=b7",
	 "(NOT (d.labels @> jsonb_build_object($2::text, $3::text)))",
	 {"site", "b7", NULL}},
	{"site=",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"site", "", NULL}},
	{"retired", "(d.labels ? $2::text)", {"retired", NULL}},
	{"!retired", "(NOT (d.labels ? $2::text))", {"retired", NULL}},
	{"! retired", "(NOT (d.labels ? $2::text))", {"retired", NULL}},
	{"site in (a,b)",
	 "((d.labels ->> $2::text) IN ($3, $4))",
	 {"site", "a", "b", NULL}},
	{"site in(a , b)",
	 "((d.labels ->> $2::text) IN ($3, $4))",
	 {"site", "a", "b", NULL}},
	{"site notin (a)",
	 "(NOT coalesce((d.labels ->> $2::text) IN ($3), false))",
	 {"site", "a", NULL}},
	{"model=plc-x", "(d.model = $2)", {"plc-x", NULL}},
	{"model!=plc-x", "(d.model IS DISTINCT FROM $2)", {"plc-x", NULL}},
	{"fw_version in (1.0,1.1)",
	 "(d.fw_version IN ($2, $3))",
	 {"1.0", "1.1", NULL}},
	{"model notin (a,b)",
	 "(NOT coalesce(d.model IN ($2, $3), false))",
	 {"a", "b", NULL}},
	{"!model", "(d.model IS NULL)", {NULL}},
	{"model", "(d.model IS NOT NULL)", {NULL}},
	{"id=0b0e1c9a-8d7e-4c6b-9a8f-1e2d3c4b5a69",
	 "(d.id::text = $2)",
	 {"0b0e1c9a-8d7e-4c6b-9a8f-1e2d3c4b5a69", NULL}},
	{"online", "((ONLINE($1)))", {NULL}},
	{"online=true", "((ONLINE($1)))", {NULL}},
	{"online=false", "(NOT (ONLINE($1)))", {NULL}},
	{"online!=true", "(NOT (ONLINE($1)))", {NULL}},
	{"!online", "(NOT (ONLINE($1)))", {NULL}},
	{"online in (true,false)", "(TRUE)", {NULL}},
	{"online notin (true,false)", "(FALSE)", {NULL}},
	/* a label may be called "in"; values may hold UTF-8 and ':' */
	{"in", "(d.labels ? $2::text)", {"in", NULL}},
	{"k8s.io/zone=\xc3\xa9t\xc3\xa9:1",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"k8s.io/zone", "\xc3\xa9t\xc3\xa9:1", NULL}},
	{"site=b7,model in (a,b),!retired",
	 "(d.labels @> jsonb_build_object($2::text, $3::text)) AND "
	 "(d.model IN ($4, $5)) AND (NOT (d.labels ? $6::text))",
	 {"site", "b7", "a", "b", "retired", NULL}},
	/* SQL in a value stays a value */
	{"site=';DROP",
	 "(d.labels @> jsonb_build_object($2::text, $3::text))",
	 {"site", "';DROP", NULL}},
};

struct bad_case {
	const char *text;
	const char *message; /* substring of the error */
};

static const struct bad_case bad[] = {
	{",", "column 1: expected a key"},
	{"site=b7,", "column 9: expected a key"},
	{"site=b7,,x", "column 9: expected a key"},
	{"=b7", "column 1: expected a key"},
	{"site b7", "column 6: expected '=', '!=', 'in'"},
	{"site in a", "column 9: expected '('"},
	{"site in (a", "column 11: expected ',' or ')'"},
	{"site in ()", "column 10: expected a value"},
	{"site in (a,)", "column 12: expected a value"},
	{"site=b7 x", "column 9: expected ',' or the end"},
	{"site!b7", "column 6: expected '=' after '!'"},
	{"si te=1", "column 4: expected '='"},
	{"!", "column 2: expected a key"},
	{"a=(b)", "column 3: expected ',' or the end"},
	{"$x=1", "column 1: expected a key"},
	{"a=b=c", "column 4: expected ',' or the end"},
};

static void
test_good(void **state)
{
	struct selector *sel = NULL;
	struct selector_sql q;
	char err[256];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (selector_parse(good[i].text, &sel, err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", good[i].text, err);
		assert_int_equal(
			selector_to_sql(sel, &cols, 2, &q, err, sizeof(err)),
			0);
		if (strcmp(q.where, good[i].where) != 0)
			fail_msg("'%s' gave %s", good[i].text, q.where);
		for (j = 0; good[i].params[j] != NULL; j++) {
			assert_true(j < q.nparams);
			assert_string_equal(q.params[j], good[i].params[j]);
		}
		assert_int_equal(j, q.nparams);
		selector_sql_free(&q);
		selector_free(sel);
	}
}

static void
test_bad(void **state)
{
	struct selector *sel = NULL;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (selector_parse(bad[i].text, &sel, err, sizeof(err)) == 0)
			fail_msg("'%s' accepted", bad[i].text);
		if (strstr(err, bad[i].message) == NULL)
			fail_msg("'%s': got '%s', want '%s'", bad[i].text, err,
				 bad[i].message);
	}
}

static void
test_online_value(void **state)
{
	struct selector *sel = NULL;
	struct selector_sql q;
	char err[256] = "";

	(void)state;
	assert_int_equal(selector_parse("online=yes", &sel, err, sizeof(err)),
			 0);
	assert_int_equal(selector_to_sql(sel, &cols, 2, &q, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "true or false"));
	selector_free(sel);
}

static void
test_limits(void **state)
{
	struct selector *sel = NULL;
	char text[SELECTOR_MAX_LEN + 2];
	char err[256] = "";
	size_t i, n = 0;

	(void)state;
	/* 33 terms */
	for (i = 0; i <= SELECTOR_MAX_TERMS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sk%zu",
				      i ? "," : "", i);
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 32 terms"));
	/* a 64-byte key */
	memset(text, 'k', 64);
	text[64] = '\0';
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key longer"));
	text[63] = '\0';
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), 0);
	selector_free(sel);
	/* overlong text */
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), -1);
	/* 65 values */
	n = (size_t)snprintf(text, sizeof(text), "k in (");
	for (i = 0; i <= SELECTOR_MAX_VALUES; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sv%zu",
				      i ? "," : "", i);
	snprintf(text + n, sizeof(text) - n, ")");
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 64 values"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_online_value),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
