/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selector semantics: the table of devices and selectors in
 * selector_cases.h is matched in memory and each selector must select
 * exactly the devices a user expects (the same table runs against
 * PostgreSQL in the contract test). Bad selectors must fail with a
 * message that names the column; limits hold at their edges, including
 * a selector of exactly SELECTOR_MAX_LEN bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/device.h"
#include "core/label_set.h"
#include "core/selector.h"
#include "selector_cases.h"

/* The letters of the devices sel matches, in table order. */
static void
match_all(const struct selector *sel, char *out)
{
	struct selector_target t;
	struct label_set labels;
	size_t i, j, n = 0;

	for (i = 0; i < SC_NDEVICES; i++) {
		const struct sc_device *d = &sc_devices[i];

		memset(&labels, 0, sizeof(labels));
		for (j = 0; j < SC_LABELS && d->labels[j][0] != NULL; j++)
			assert_int_equal(label_set_put(&labels, d->labels[j][0],
						       d->labels[j][1]),
					 LABEL_OK);
		t.id = d->id;
		t.model = d->model;
		t.fw_version = d->fw_version;
		t.status = d->status != NULL ? d->status : "active";
		t.online = device_online(
			d->session_age_ms < 0 ? -1 : d->session_age_ms * 1000,
			SELECTOR_CASES_HEARTBEAT_S);
		t.labels = &labels;
		if (selector_match(sel, &t))
			out[n++] = d->letter;
		label_set_clear(&labels);
	}
	out[n] = '\0';
}

static void
test_semantics(void **state)
{
	struct selector *sel = NULL;
	char err[256], got[SC_NDEVICES + 1];
	size_t i;

	(void)state;
	for (i = 0; i < SC_NSELECTORS; i++) {
		err[0] = '\0';
		if (selector_parse(sc_selectors[i].text, &sel, err,
				   sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", sc_selectors[i].text, err);
		match_all(sel, got);
		if (strcmp(got, sc_selectors[i].want) != 0)
			fail_msg("'%s' matched '%s', want '%s'",
				 sc_selectors[i].text, got,
				 sc_selectors[i].want);
		selector_free(sel);
	}
}

/* The online filter beside a selector (?online=) is the same as the
 * term. */
static void
test_and_online(void **state)
{
	struct selector *sel = NULL;
	char got[SC_NDEVICES + 1];

	(void)state;
	assert_int_equal(selector_parse("site=b7", &sel, NULL, 0), 0);
	assert_int_equal(selector_and_online(sel, false), 0);
	match_all(sel, got);
	assert_string_equal(got, "CE");
	selector_free(sel);
}

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
	{"status=retired",
	 "selector key 'status' takes active or decommissioned, not 'retired'"},
	{"status in (active,gone)", "takes active or decommissioned"},
};

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

/* online takes true or false only, refused at parse time so that
 * matching and the SQL translation never meet another value. */
static void
test_online_value(void **state)
{
	static const char *const refused[] = {"online=yes",
					      "online in (true,1)",
					      "online!=", "x=1,online=on"};
	struct selector *sel = NULL;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		if (selector_parse(refused[i], &sel, err, sizeof(err)) == 0)
			fail_msg("'%s' accepted", refused[i]);
		assert_non_null(strstr(err, "true or false"));
	}
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

/* A selector of exactly SELECTOR_MAX_LEN bytes (the documented maximum
 * of GET /api/v1/devices?selector=) parses and means what it says; one
 * more byte is refused, never cut. */
static void
test_max_len(void **state)
{
	struct selector *sel = NULL;
	char text[SELECTOR_MAX_LEN + 2], got[SC_NDEVICES + 1];
	char err[256] = "";
	size_t n;

	(void)state;
	/* "site in (b7,xxxx...,xxxx...)" padded to exactly 4096 bytes:
	 * 64 values, the last one filling the rest. */
	n = (size_t)snprintf(text, sizeof(text), "site in (b7");
	for (int i = 1; i < SELECTOR_MAX_VALUES - 1; i++)
		n += (size_t)snprintf(
			text + n, sizeof(text) - n, ",v%02d-%.59s", i,
			"pppppppppppppppppppppppppppppppppppppppp"
			"pppppppppppppppppppppppppppppppppppppppp");
	text[n++] = ',';
	while (n < SELECTOR_MAX_LEN - 1)
		text[n++] = 'z';
	text[n++] = ')';
	text[n] = '\0';
	assert_int_equal(strlen(text), SELECTOR_MAX_LEN);
	if (selector_parse(text, &sel, err, sizeof(err)) != 0)
		fail_msg("4096 bytes refused: %s", err);
	assert_int_equal(sel->terms[0].nvalues, SELECTOR_MAX_VALUES);
	match_all(sel, got);
	assert_string_equal(got, "ACE");
	selector_free(sel);
	/* 4097 bytes: one more blank at the start */
	memmove(text + 1, text, n + 1);
	text[0] = ' ';
	assert_int_equal(selector_parse(text, &sel, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than 4096"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_and_online),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_online_value),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_max_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
