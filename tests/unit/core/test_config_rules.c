/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration rules of core/config.c and core/config_compute.c, table-
 * driven: RFC 7386 merge patch (the RFC's appendix A, every case), its
 * inverse (merge(from, diff(from, to)) == to), document and patch checks,
 * names, version numbering (If-Match), effective documents and their
 * hashes, the drift and change-progress rules, and the clone/publish
 * computation on plain target rows (counts, shared documents, copy mode).
 * The store calls the same functions inside its transactions; the SQL
 * mirrors of the two rules are exercised by test_config_api.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "core/config.h"
#include "core/store_config.h"

static json_t *
parse(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	if (v == NULL)
		fail_msg("test input does not parse: %s", text);
	return v;
}

/* Canonical text of a value (for comparisons); caller frees. */
static char *
canon(const json_t *v)
{
	char *t = canon_json(v, NULL);

	assert_non_null(t);
	return t;
}

static void
assert_json_eq(const json_t *got, const char *want, const char *what)
{
	json_t *w = parse(want);
	char *a = canon(got), *b = canon(w);

	if (strcmp(a, b) != 0)
		fail_msg("%s: got %s, want %s", what, a, b);
	free(a);
	free(b);
	json_decref(w);
}

/* RFC 7386 appendix A, all fifteen cases. */
static const struct {
	const char *target, *patch, *result;
} rfc7386[] = {
	{"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
	{"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
	{"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
	{"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	 "{\"a\":{\"b\":\"d\"}}"},
	{"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
	{"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
	{"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
	{"{\"a\":\"foo\"}", "null", "null"},
	{"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
	{"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
	{"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
	{"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
};

static void
test_merge_patch_rfc7386(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc7386) / sizeof(rfc7386[0]); i++) {
		json_t *t = parse(rfc7386[i].target);
		json_t *p = parse(rfc7386[i].patch);
		char *before = canon(t);
		json_t *r = config_merge_patch(t, p);
		char *after = canon(t), what[64];

		snprintf(what, sizeof(what), "RFC 7386 A case %zu", i + 1);
		assert_non_null(r);
		assert_json_eq(r, rfc7386[i].result, what);
		/* The inputs are not changed. */
		assert_string_equal(before, after);
		free(before);
		free(after);
		json_decref(r);
		json_decref(t);
		json_decref(p);
	}
	/* An undefined target (no profile) behaves as {} for objects. */
	{
		json_t *p = parse("{\"a\":{\"b\":null,\"c\":1}}");
		json_t *r = config_merge_patch(NULL, p);

		assert_json_eq(r, "{\"a\":{\"c\":1}}", "merge over nothing");
		json_decref(r);
		json_decref(p);
	}
}

/* diff(from, to) is a patch that turns from into to. */
static const struct {
	const char *from, *to, *diff;
} diffs[] = {
	{"{}", "{}", "{}"},
	{"{\"a\":1}", "{\"a\":1}", "{}"},
	{"{\"a\":1}", "{\"a\":2}", "{\"a\":2}"},
	{"{\"a\":1,\"b\":2}", "{\"b\":2}", "{\"a\":null}"},
	{"{\"a\":{\"x\":1,\"y\":2}}", "{\"a\":{\"x\":1,\"y\":3}}",
	 "{\"a\":{\"y\":3}}"},
	{"{\"a\":{\"x\":1}}", "{\"a\":[1,null]}", "{\"a\":[1,null]}"},
	{"{\"a\":[1]}", "{\"a\":{\"k\":\"v\"}}", "{\"a\":{\"k\":\"v\"}}"},
	{"{\"a\":{\"x\":{\"y\":1}}}", "{}", "{\"a\":null}"},
	{NULL, "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}"},
	{"{\"keep\":\"\\u00e9\",\"n\":1}", "{\"keep\":\"\\u00e9\",\"n\":1.5}",
	 "{\"n\":1.5}"},
};

static void
test_merge_diff(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(diffs) / sizeof(diffs[0]); i++) {
		json_t *f = diffs[i].from ? parse(diffs[i].from) : NULL;
		json_t *t = parse(diffs[i].to);
		json_t *d = config_merge_diff(f, t), *back;
		char what[64];

		snprintf(what, sizeof(what), "diff case %zu", i + 1);
		assert_non_null(d);
		assert_json_eq(d, diffs[i].diff, what);
		back = config_merge_patch(f, d);
		snprintf(what, sizeof(what), "merge(from, diff) case %zu",
			 i + 1);
		{
			char *want = canon(t);

			assert_json_eq(back, want, what);
			free(want);
		}
		json_decref(back);
		json_decref(d);
		json_decref(f);
		json_decref(t);
	}
}

static void
test_names(void **state)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{"plc-base", true},
		{"a", true},
		{"0", true},
		{"v1.2_x-y", true},
		{"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
		 "jk",
		 true}, /* 63 */
		{"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
		 "jkl",
		 false}, /* 64 */
		{"", false},
		{"-a", false},
		{".a", false},
		{"Plc", false},
		{"a b", false},
		{"a/b", false},
		{"a%2f", false},
		{"\xc3\xa9", false},
	};
	size_t i;

	(void)state;
	assert_false(config_name_valid(NULL));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (config_name_valid(cases[i].name) != cases[i].ok)
			fail_msg("name '%s': expected %s", cases[i].name,
				 cases[i].ok ? "valid" : "invalid");
}

static void
test_document_and_patch_checks(void **state)
{
	static const struct {
		const char *doc;
		enum config_rc rc;
		const char *pointer; /* in err when refused */
	} docs[] = {
		{"{}", CONFIG_OK, NULL},
		{"{\"a\":[null,{\"b\":null}]}", CONFIG_OK, NULL},
		{"{\"a\":{\"b\":{\"c\":1}}}", CONFIG_OK, NULL},
		{"{\"a\":null}", CONFIG_INVALID_DOC, "/a"},
		{"{\"a\":{\"b/c\":{\"d~\":null}}}", CONFIG_INVALID_DOC,
		 "/a/b~1c/d~0"},
		{"[]", CONFIG_INVALID_DOC, "object"},
		{"\"x\"", CONFIG_INVALID_DOC, "object"},
		{"null", CONFIG_INVALID_DOC, "object"},
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_t *d = parse(docs[i].doc);

		err[0] = '\0';
		assert_int_equal(config_document_check(d, err, sizeof(err)),
				 docs[i].rc);
		if (docs[i].pointer != NULL &&
		    strstr(err, docs[i].pointer) == NULL)
			fail_msg("%s: '%s' does not name %s", docs[i].doc, err,
				 docs[i].pointer);
		json_decref(d);
	}
	{
		json_t *ok = parse("{\"a\":null}"), *bad = parse("[1]");

		assert_int_equal(config_patch_check(ok, err, sizeof(err)),
				 CONFIG_OK);
		assert_int_equal(config_patch_check(bad, err, sizeof(err)),
				 CONFIG_INVALID_PATCH);
		json_decref(ok);
		json_decref(bad);
	}
}

static void
test_next_version(void **state)
{
	static const struct {
		int latest;
		int64_t if_match;
		int next;
	} cases[] = {
		{0, -1, 1}, {0, 0, 1},	{3, 3, 4},
		{3, 2, 0}, /* a racing publish: 412 */
		{3, 4, 0},  {3, -1, 4}, {2147483647, -1, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
			config_next_version(cases[i].latest, cases[i].if_match),
			cases[i].next);
}

static void
test_canon_and_limit(void **state)
{
	struct config_doc d;
	json_t *doc;
	char hex[65], *big;

	(void)state;
	memset(&d, 0, sizeof(d));
	doc = parse("{ \"b\": 1, \"a\": [true] }");
	assert_int_equal(config_canon(doc, &d), CONFIG_OK);
	assert_string_equal(d.text, "{\"a\":[true],\"b\":1}");
	assert_int_equal(canon_sha256_hex_bytes(d.text, d.len, hex), 0);
	assert_string_equal(d.sha256, hex);
	config_doc_clear(&d);
	json_decref(doc);
	/* 262144 bytes of canonical text pass, one more does not. */
	big = malloc(CONFIG_DOC_MAX);
	assert_non_null(big);
	memset(big, 'x', CONFIG_DOC_MAX);
	doc = json_pack("{s:s#}", "k", big,
			(int)(CONFIG_DOC_MAX - 8)); /* {"k":"..."} */
	assert_int_equal(config_canon(doc, &d), CONFIG_OK);
	assert_int_equal(d.len, CONFIG_DOC_MAX);
	config_doc_clear(&d);
	json_decref(doc);
	doc = json_pack("{s:s#}", "k", big, (int)(CONFIG_DOC_MAX - 7));
	assert_int_equal(config_canon(doc, &d), CONFIG_TOO_LARGE);
	assert_null(d.text);
	json_decref(doc);
	free(big);
}

static void
test_effective(void **state)
{
	static const struct {
		const char *base, *overrides, *want;
	} cases[] = {
		{"{\"a\":1,\"log\":{\"level\":\"info\"}}", NULL,
		 "{\"a\":1,\"log\":{\"level\":\"info\"}}"},
		{"{\"a\":1,\"log\":{\"level\":\"info\"}}",
		 "{\"log\":{\"level\":\"debug\"},\"x\":[1]}",
		 "{\"a\":1,\"log\":{\"level\":\"debug\"},\"x\":[1]}"},
		{"{\"a\":1,\"b\":2}", "{\"a\":null}", "{\"b\":2}"},
		{NULL, "{\"a\":{\"b\":null,\"c\":2}}", "{\"a\":{\"c\":2}}"},
		{NULL, NULL, "{}"},
	};
	struct config_doc d;
	size_t i;
	char hex[65];

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(
			config_effective(cases[i].base, cases[i].overrides, &d),
			CONFIG_OK);
		assert_string_equal(d.text, cases[i].want);
		assert_int_equal(canon_sha256_hex_bytes(cases[i].want,
							strlen(cases[i].want),
							hex),
				 0);
		assert_string_equal(d.sha256, hex);
		config_doc_clear(&d);
	}
	memset(&d, 0, sizeof(d));
	assert_int_equal(config_effective("{not json", "{}", &d),
			 CONFIG_INVALID_DOC);
}

/* The drift rule, every branch. */
static void
test_classify(void **state)
{
#define A "aaaa"
#define B "bbbb"
	static const struct {
		const char *desired;
		int64_t dgen;
		enum config_reported_status st;
		const char *rsha;
		int64_t rgen;
		bool online;
		enum config_state want;
	} cases[] = {
		{NULL, 0, CONFIG_REPORTED_NONE, NULL, 0, true,
		 CONFIG_STATE_NONE},
		{NULL, 3, CONFIG_REPORTED_APPLIED, A, 3, true,
		 CONFIG_STATE_NONE},
		{A, 1, CONFIG_REPORTED_NONE, NULL, 0, true,
		 CONFIG_STATE_PENDING},
		{A, 1, CONFIG_REPORTED_NONE, NULL, 0, false,
		 CONFIG_STATE_OFFLINE},
		{A, 2, CONFIG_REPORTED_APPLIED, A, 2, false,
		 CONFIG_STATE_IN_SYNC},
		/* same document under an older generation: in sync */
		{A, 3, CONFIG_REPORTED_APPLIED, A, 2, true,
		 CONFIG_STATE_IN_SYNC},
		{A, 2, CONFIG_REPORTED_APPLIED, B, 1, true,
		 CONFIG_STATE_PENDING},
		{A, 2, CONFIG_REPORTED_APPLIED, B, 1, false,
		 CONFIG_STATE_OFFLINE},
		{A, 2, CONFIG_REPORTED_FAILED, B, 2, true, CONFIG_STATE_FAILED},
		{A, 2, CONFIG_REPORTED_FAILED, A, 2, false,
		 CONFIG_STATE_FAILED},
		/* an older generation failed: the new one is on its way */
		{A, 3, CONFIG_REPORTED_FAILED, B, 2, true,
		 CONFIG_STATE_PENDING},
		{A, 2, CONFIG_REPORTED_DRIFTED, B, 2, true,
		 CONFIG_STATE_DRIFTED},
		/* drifted back to the desired file */
		{A, 2, CONFIG_REPORTED_DRIFTED, A, 2, true,
		 CONFIG_STATE_IN_SYNC},
		/* drifted on an older generation: the new one will overwrite */
		{A, 3, CONFIG_REPORTED_DRIFTED, B, 2, false,
		 CONFIG_STATE_OFFLINE},
		/* applied the desired generation with another hash */
		{A, 2, CONFIG_REPORTED_APPLIED, B, 2, true,
		 CONFIG_STATE_DRIFTED},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_desired d = {cases[i].desired, cases[i].dgen};
		struct config_reported r = {cases[i].st, cases[i].rsha,
					    cases[i].rgen};
		enum config_state got =
			config_classify(&d, &r, cases[i].online);

		if (got != cases[i].want)
			fail_msg("classify case %zu: got %s, want %s", i + 1,
				 config_state_name(got),
				 config_state_name(cases[i].want));
	}
}
#undef A
#undef B

static void
test_member_classify(void **state)
{
	static const struct {
		int64_t g, dgen;
		enum config_reported_status st;
		int64_t rgen;
		bool online;
		enum config_member_state want;
	} cases[] = {
		{4, 4, CONFIG_REPORTED_NONE, 0, true, CONFIG_MEMBER_PENDING},
		{4, 4, CONFIG_REPORTED_NONE, 0, false, CONFIG_MEMBER_OFFLINE},
		{4, 4, CONFIG_REPORTED_APPLIED, 3, true, CONFIG_MEMBER_PENDING},
		{4, 4, CONFIG_REPORTED_APPLIED, 4, false,
		 CONFIG_MEMBER_APPLIED},
		{4, 4, CONFIG_REPORTED_DRIFTED, 4, true, CONFIG_MEMBER_APPLIED},
		{4, 4, CONFIG_REPORTED_FAILED, 4, true, CONFIG_MEMBER_FAILED},
		{4, 5, CONFIG_REPORTED_FAILED, 5, true, CONFIG_MEMBER_APPLIED},
		{4, 5, CONFIG_REPORTED_APPLIED, 3, true,
		 CONFIG_MEMBER_SUPERSEDED},
		{4, 5, CONFIG_REPORTED_NONE, 0, false,
		 CONFIG_MEMBER_SUPERSEDED},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_reported r = {cases[i].st, "x", cases[i].rgen};
		enum config_member_state got = config_member_classify(
			cases[i].g, cases[i].dgen, &r, cases[i].online);

		if (got != cases[i].want)
			fail_msg("member case %zu: got %s, want %s", i + 1,
				 config_member_state_name(got),
				 config_member_state_name(cases[i].want));
	}
}

/* ASSIGN: six targets, three distinct overrides -> three documents. */
static void
test_compute_assign(void **state)
{
	const char *base = "{\"a\":1,\"log\":{\"level\":\"info\"}}";
	const char *ov1 = "{\"log\":{\"level\":\"debug\"}}";
	struct config_doc plain, with1;
	struct config_target t[6];
	struct config_compute cc;
	struct config_source src = {CONFIG_CLONE_ASSIGN, base, NULL};
	size_t i;

	(void)state;
	memset(&plain, 0, sizeof(plain));
	memset(&with1, 0, sizeof(with1));
	assert_int_equal(config_effective(base, NULL, &plain), CONFIG_OK);
	assert_int_equal(config_effective(base, ov1, &with1), CONFIG_OK);
	memset(t, 0, sizeof(t));
	t[0] = (struct config_target){.device_id = "d0", .online = true};
	t[1] = (struct config_target){.device_id = "d1",
				      .desired_sha256 = plain.sha256};
	t[2] = (struct config_target){
		.device_id = "d2", .overrides = ov1, .online = true};
	t[3] = (struct config_target){.device_id = "d3",
				      .overrides = ov1,
				      .desired_sha256 = with1.sha256};
	t[4] = (struct config_target){.device_id = "d4",
				      .overrides = "{\"z\":true}",
				      .desired_sha256 = "00"};
	t[5] = (struct config_target){
		.device_id = "d5", .online = true, .desired_sha256 = "00"};
	config_compute_init(&cc);
	assert_int_equal(config_compute_targets(&cc, &src, t, 6), CONFIG_OK);
	assert_int_equal(cc.matched, 6);
	assert_int_equal(cc.changed, 4);
	assert_int_equal(cc.unchanged, 2);
	assert_int_equal(cc.offline, 3);
	assert_int_equal(cc.n, 3); /* one merge per distinct overrides */
	assert_ptr_equal(t[0].effective, t[1].effective);
	assert_ptr_equal(t[0].effective, t[5].effective);
	assert_ptr_equal(t[2].effective, t[3].effective);
	assert_string_equal(t[0].effective->sha256, plain.sha256);
	assert_string_equal(t[2].effective->sha256, with1.sha256);
	assert_string_equal(
		t[4].effective->text,
		"{\"a\":1,\"log\":{\"level\":\"info\"},\"z\":true}");
	for (i = 0; i < 6; i++)
		assert_null(t[i].new_overrides);
	assert_true(t[0].changed);
	assert_false(t[1].changed);
	assert_false(t[3].changed);
	config_compute_clear(&cc);
	config_doc_clear(&plain);
	config_doc_clear(&with1);
}

/* COPY: every target ends with the source's document; overrides are the
 * difference to its own base, computed once per base. */
static void
test_compute_copy(void **state)
{
	const char *b1 = "{\"a\":1,\"b\":{\"x\":1,\"y\":2}}";
	const char *b2 = "{\"a\":1,\"b\":{\"x\":9},\"gone\":true}";
	struct config_doc eff;
	struct config_target t[4];
	struct config_compute cc;
	struct config_source src;
	json_t *want = parse("{\"a\":1,\"b\":{\"x\":1,\"y\":3},\"c\":[1]}");
	size_t i;

	(void)state;
	memset(&eff, 0, sizeof(eff));
	assert_int_equal(config_canon(want, &eff), CONFIG_OK);
	memset(&src, 0, sizeof(src));
	src.mode = CONFIG_CLONE_COPY;
	src.effective = &eff;
	memset(t, 0, sizeof(t));
	t[0] = (struct config_target){
		.device_id = "d0", .base = b1, .base_key = "p:1"};
	t[1] = (struct config_target){.device_id = "d1",
				      .base = b1,
				      .base_key = "p:1",
				      .desired_sha256 = eff.sha256};
	t[2] = (struct config_target){.device_id = "d2",
				      .base = b2,
				      .base_key = "q:4",
				      .overrides = "{}"};
	t[3] = (struct config_target){.device_id = "d3"}; /* no profile */
	config_compute_init(&cc);
	assert_int_equal(config_compute_targets(&cc, &src, t, 4), CONFIG_OK);
	assert_int_equal(cc.n, 3);
	assert_int_equal(cc.changed, 3);
	assert_int_equal(cc.unchanged, 1);
	assert_string_equal(t[0].new_overrides->text,
			    "{\"b\":{\"y\":3},\"c\":[1]}");
	assert_ptr_equal(t[0].new_overrides, t[1].new_overrides);
	assert_string_equal(
		t[2].new_overrides->text,
		"{\"b\":{\"x\":1,\"y\":3},\"c\":[1],\"gone\":null}");
	assert_string_equal(t[3].new_overrides->text, eff.text);
	/* The oracle: each target's base merged with its new overrides is
	 * the source's document. */
	for (i = 0; i < 4; i++) {
		struct config_doc e;

		memset(&e, 0, sizeof(e));
		assert_ptr_equal(t[i].effective, &eff);
		assert_int_equal(config_effective(t[i].base,
						  t[i].new_overrides->text, &e),
				 CONFIG_OK);
		assert_string_equal(e.sha256, eff.sha256);
		config_doc_clear(&e);
	}
	config_compute_clear(&cc);
	/* A base equal to the source needs no overrides. */
	t[0].base = eff.text;
	t[0].base_key = "r:1";
	config_compute_init(&cc);
	assert_int_equal(config_compute_targets(&cc, &src, t, 1), CONFIG_OK);
	assert_null(t[0].new_overrides);
	config_compute_clear(&cc);
	config_doc_clear(&eff);
	json_decref(want);
}

static void
test_compute_too_large(void **state)
{
	char *big = malloc(CONFIG_DOC_MAX), *ov;
	struct config_target t[2];
	struct config_compute cc;
	struct config_source src = {CONFIG_CLONE_ASSIGN, NULL, NULL};
	json_t *o;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', CONFIG_DOC_MAX);
	o = json_pack("{s:s#}", "k", big, (int)CONFIG_DOC_MAX);
	ov = json_dumps(o, JSON_COMPACT);
	memset(t, 0, sizeof(t));
	t[0].device_id = "small";
	t[1].device_id = "huge";
	t[1].overrides = ov;
	config_compute_init(&cc);
	assert_int_equal(config_compute_targets(&cc, &src, t, 2),
			 CONFIG_TOO_LARGE);
	assert_string_equal(cc.failed_device, "huge");
	config_compute_clear(&cc);
	free(ov);
	json_decref(o);
	free(big);
}

static void
test_clone_answer(void **state)
{
	struct config_clone_result r;
	json_t *doc;
	char *text;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.dry_run = true;
	snprintf(r.source_sha256, sizeof(r.source_sha256), "%s", "ab");
	snprintf(r.profile, sizeof(r.profile), "%s", "plc");
	r.version = 3;
	r.matched = 10;
	r.changed = 7;
	r.unchanged = 3;
	r.offline = 2;
	r.nsamples = 1;
	snprintf(r.samples[0].device_id, CONFIG_ID_LEN, "%s", "d1");
	r.samples[0].current = strdup("{\"a\":1,\"b\":2}");
	r.samples[0].next = strdup("{\"a\":2,\"b\":2}");
	text = config_clone_answer(&r);
	assert_non_null(text);
	doc = parse(text);
	assert_json_eq(
		doc,
		"{\"dry_run\":true,\"change_id\":null,\"sha256\":\"ab\","
		"\"counts\":{\"matched\":10,\"would_change\":7,"
		"\"unchanged\":3,\"offline\":2},\"assign\":{\"profile\":"
		"\"plc\",\"version\":\"latest\",\"resolved_version\":3},"
		"\"samples\":[{\"device_id\":\"d1\",\"diff\":{\"a\":2}}]}",
		"clone answer");
	json_decref(doc);
	free(text);
	config_clone_result_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_patch_rfc7386),
		cmocka_unit_test(test_merge_diff),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_document_and_patch_checks),
		cmocka_unit_test(test_next_version),
		cmocka_unit_test(test_canon_and_limit),
		cmocka_unit_test(test_effective),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_member_classify),
		cmocka_unit_test(test_compute_assign),
		cmocka_unit_test(test_compute_copy),
		cmocka_unit_test(test_compute_too_large),
		cmocka_unit_test(test_clone_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
