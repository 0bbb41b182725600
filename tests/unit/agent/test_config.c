/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's configuration apply (agent/config.c) on a scratch directory
 * with real hook commands (/bin/sh): a document is written atomically and
 * reported applied; a document that does not match its hash is refused
 * before anything is written; a refusing validate hook and a failing
 * reload hook leave the previous file, report failed with the hook's exit
 * status and first line; the same generation again is applied without a
 * second write; a local edit is drifted once, restored when configured;
 * hello tells the applied generation and the file's hash; the memory mode
 * fails the configured share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "agent_int.h"
#include "agent_test_util.h"
#include "atomicfile.h"
#include "canon.h"

static void
make_apply(struct proto_msg *m, int64_t gen, const char *doc_text,
	   const char *hash_override)
{
	struct proto_error err;
	json_t *doc = json_loads(doc_text, 0, NULL);
	char hash[65], *text;
	size_t len;

	assert_non_null(doc);
	assert_int_equal(canon_sha256_hex(doc, hash), 0);
	text = proto_encode(
		PROTO_CONFIG_APPLY,
		json_pack("{s:I, s:s, s:o}", "config_version", (json_int_t)gen,
			  "config_hash",
			  hash_override != NULL ? hash_override : hash,
			  "document", doc),
		&len, &err);
	assert_non_null(text);
	assert_int_equal(proto_decode(text, len, PROTO_TO_AGENT, m, &err),
			 PROTO_OK);
	free(text);
}

static const char *
rstate(const json_t *r)
{
	return json_string_value(json_object_get(r, "state"));
}

static json_t *
apply(struct agent_config *c, int64_t gen, const char *doc, const char *hash)
{
	struct proto_msg m;
	json_t *r = NULL;

	memset(&m, 0, sizeof(m));
	make_apply(&m, gen, doc, hash);
	assert_int_equal(agent_config_apply(c, &m, &r), 0);
	proto_msg_clear(&m);
	return r;
}

/* The file's document as compact sorted JSON ("" when missing). */
static void
file_doc(const char *path, char *out, size_t cap)
{
	json_t *doc = json_load_file(path, 0, NULL);
	char *text = doc != NULL
			     ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS)
			     : NULL;

	snprintf(out, cap, "%s", text != NULL ? text : "");
	free(text);
	json_decref(doc);
}

static struct agent_config *
new_config(const char *dir, const char *validate, const char *reload,
	   bool restore, char *path, size_t cap)
{
	struct agent_config_opts o;
	char err[256];
	struct agent_config *c;

	snprintf(path, cap, "%s/app.json", dir);
	memset(&o, 0, sizeof(o));
	o.path = path;
	o.validate = validate;
	o.reload = reload;
	o.restore_on_drift = restore;
	o.drift_interval_s = 1;
	c = agent_config_new(dir, "test", &o, err, sizeof(err));
	assert_non_null(c);
	return c;
}

static void
test_apply_and_refusals(void **state)
{
	const char *dir = *state;
	char path[256], doc[512], hash[65], validate[512];
	struct agent_config *c;
	int64_t gen;
	json_t *r;

	/* the file is appended as the last word: here stdin's source */
	snprintf(validate, sizeof(validate),
		 "if grep -q '\"reject\": true'; then echo 'no rejects, "
		 "please'; echo second line; exit 3; fi <");
	c = new_config(dir, validate, NULL, false, path, sizeof(path));
	r = apply(c, 1, "{\"b\": 1, \"a\": [1, 2]}", NULL);
	assert_string_equal(rstate(r), "applied");
	json_decref(r);
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"a\":[1,2],\"b\":1}");
	agent_config_hello(c, &gen, hash);
	assert_int_equal(gen, 1);
	assert_int_equal(strlen(hash), 64);

	/* the validate hook refuses: the file stays, the reason is its */
	r = apply(c, 2, "{\"reject\": true}", NULL);
	assert_string_equal(rstate(r), "failed");
	assert_string_equal(
		json_string_value(json_object_get(r, "error")),
		"validate hook failed (exit 3): no rejects, please");
	json_decref(r);
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"a\":[1,2],\"b\":1}");

	/* a hash that is not the document's: refused, nothing written */
	r = apply(c, 3, "{\"c\": 3}",
		  "0000000000000000000000000000000000000000000000000000000000"
		  "000000");
	assert_string_equal(rstate(r), "failed");
	json_decref(r);
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"a\":[1,2],\"b\":1}");

	/* the same generation again: applied, answered without a write */
	r = apply(c, 1, "{\"a\": [1, 2], \"b\": 1}", NULL);
	assert_string_equal(rstate(r), "applied");
	json_decref(r);
	/* an older generation: ignored */
	r = apply(c, 0, "{\"old\": 1}", NULL);
	assert_null(r);
	agent_config_free(c);
}

static void
test_reload_failure_restores(void **state)
{
	const char *dir = *state;
	char path[256], doc[512], reload[600], marker[300];
	struct agent_config *c;
	json_t *r;

	snprintf(marker, sizeof(marker), "%s/reloads", dir);
	/* reload fails for documents with "bad" in them */
	snprintf(reload, sizeof(reload),
		 "echo x >>'%s'; "
		 "if grep -q bad; then echo reload refused; exit 4; fi <",
		 marker);
	c = new_config(dir, NULL, reload, false, path, sizeof(path));
	r = apply(c, 1, "{\"good\": 1}", NULL);
	assert_string_equal(rstate(r), "applied");
	json_decref(r);
	r = apply(c, 2, "{\"bad\": 1}", NULL);
	assert_string_equal(rstate(r), "failed");
	assert_string_equal(json_string_value(json_object_get(r, "error")),
			    "reload hook failed (exit 4): reload refused");
	json_decref(r);
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"good\":1}");
	agent_config_free(c);
}

static void
test_drift(void **state)
{
	const char *dir = *state;
	char path[256], doc[512], err[256];
	struct agent_config *c;
	json_t *reports = json_array(), *r;

	/* without restore: drifted once per edit, the edit stays */
	c = new_config(dir, NULL, NULL, false, path, sizeof(path));
	r = apply(c, 5, "{\"v\": 5}", NULL);
	json_decref(r);
	assert_int_equal(agent_config_check(c, reports), 0);
	assert_int_equal(json_array_size(reports), 0);
	/* reformatting is not drift */
	assert_int_equal(atomic_write_file(path, "{ \"v\" : 5 }\n", 12, 0644,
					   err, sizeof(err)),
			 0);
	assert_int_equal(agent_config_check(c, reports), 0);
	assert_int_equal(json_array_size(reports), 0);
	assert_int_equal(atomic_write_file(path, "{\"v\": 6}", 8, 0644, err,
					   sizeof(err)),
			 0);
	assert_int_equal(agent_config_check(c, reports), 0);
	assert_int_equal(agent_config_check(c, reports), 0); /* once */
	assert_int_equal(json_array_size(reports), 1);
	assert_string_equal(rstate(json_array_get(reports, 0)), "drifted");
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(reports, 0), "config_version")),
			 5);
	/* the same generation again keeps the edit */
	r = apply(c, 5, "{\"v\": 5}", NULL);
	assert_string_equal(rstate(r), "drifted");
	json_decref(r);
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"v\":6}");
	agent_config_free(c);
	json_array_clear(reports);

	/* with restore (state kept across a restart): put back */
	c = new_config(dir, NULL, NULL, true, path, sizeof(path));
	assert_int_equal(
		atomic_write_file(path, "not json", 8, 0644, err, sizeof(err)),
		0);
	assert_int_equal(agent_config_check(c, reports), 0);
	assert_int_equal(json_array_size(reports), 2);
	assert_string_equal(rstate(json_array_get(reports, 0)), "drifted");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(reports, 0), "error")),
			    "the file is not JSON");
	assert_string_equal(rstate(json_array_get(reports, 1)), "applied");
	file_doc(path, doc, sizeof(doc));
	assert_string_equal(doc, "{\"v\":5}");
	agent_config_free(c);
	json_decref(reports);
}

static void
test_memory_failures(void **state)
{
	const char *dir = *state;
	struct agent_config_opts o;
	char err[256];
	struct agent_config *c;
	int failed = 0;

	memset(&o, 0, sizeof(o));
	o.memory = true;
	o.fail_permille = 1000;
	c = agent_config_new(dir, "sim", &o, err, sizeof(err));
	assert_non_null(c);
	for (int i = 1; i <= 5; i++) {
		json_t *r = apply(c, i, "{\"x\": 1}", NULL);

		failed += strcmp(rstate(r), "failed") == 0;
		json_decref(r);
	}
	assert_int_equal(failed, 5);
	agent_config_free(c);
	o.fail_permille = 0;
	c = agent_config_new(dir, "sim", &o, err, sizeof(err));
	{
		json_t *r = apply(c, 1, "{\"x\": 1}", NULL);

		assert_string_equal(rstate(r), "applied");
		json_decref(r);
	}
	agent_config_free(c);
	/* a relative target path is refused */
	memset(&o, 0, sizeof(o));
	o.path = "relative.json";
	assert_null(agent_config_new(dir, "x", &o, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_and_refusals,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_reload_failure_restores,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_drift, atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_memory_failures, atu_dir_setup, atu_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
