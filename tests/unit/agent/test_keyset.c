// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for agent/keyset.c: the pinned release key set loaded from
 * the configuration or state_dir/keyset.json, adoption of a rotated set
 * (good chain, wrong version, fewer than k, the new keys only, a duplicate
 * signature) and the keys.status answers to update.keys. Real keys, real
 * files, no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_test_util.h"
#include "atomicfile.h"
#include "keyset.h"

enum { K_A, K_B, K_C, K_N1, K_N2, N_KEYS };

struct fx {
	char dir[64];
	EVP_PKEY *keys[N_KEYS];
	char pub[N_KEYS][256];
	char csv[1024]; /* A, B, C */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct pki_error err;
	int i;

	assert_non_null(f);
	atu_state_dir(f->dir, sizeof(f->dir));
	for (i = 0; i < N_KEYS; i++) {
		assert_int_equal(
			pki_key_generate(PKI_KEY_P256, &f->keys[i], &err),
			PKI_OK);
		snprintf(f->pub[i], sizeof(f->pub[i]), "%s/k%d.pem", f->dir, i);
		assert_int_equal(
			pki_key_save_public(f->keys[i], f->pub[i], false, &err),
			PKI_OK);
	}
	snprintf(f->csv, sizeof(f->csv), "%s, %s ,%s", f->pub[K_A], f->pub[K_B],
		 f->pub[K_C]);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < N_KEYS; i++)
		EVP_PKEY_free(f->keys[i]);
	atu_rmtree(f->dir);
	free(f);
	return 0;
}

static bool
keyset_file_exists(const struct fx *f)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->dir, AGENT_KEYSET_FILE);
	return stat(path, &st) == 0;
}

static void
remove_keyset_file(const struct fx *f)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->dir, AGENT_KEYSET_FILE);
	(void)unlink(path);
}

/* An envelope of key set version v (keys idx, threshold k) signed by
 * signers; malloc()ed. */
static char *
rotation(struct fx *f, int64_t v, const int *idx, size_t n, size_t k,
	 const int *signers, size_t ns)
{
	struct pki_keyset ks;
	struct pki_error err;
	EVP_PKEY *by[8];
	char *payload = NULL, *env = NULL;
	size_t i;

	memset(&ks, 0, sizeof(ks));
	for (i = 0; i < n; i++) {
		EVP_PKEY_up_ref(f->keys[idx[i]]);
		ks.keys[i] = f->keys[idx[i]];
		assert_int_equal(pki_key_id(ks.keys[i], ks.ids[i], &err),
				 PKI_OK);
	}
	ks.n = n;
	ks.threshold = k;
	ks.version = v;
	assert_int_equal(pki_keyset_json(&ks, &payload, NULL, &err), PKI_OK);
	pki_keyset_clear(&ks);
	for (i = 0; i < ns; i++)
		by[i] = f->keys[signers[i]];
	assert_int_equal(pki_dsse_sign(payload, strlen(payload),
				       PKI_RELEASE_KEYSET_TYPE, by, ns, &env,
				       NULL, &err),
			 PKI_OK);
	free(payload);
	return env;
}

static void
test_load(void **state)
{
	struct fx *f = *state;
	struct pki_keyset ks;
	char err[512], bad[600], path[256];

	remove_keyset_file(f);
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 2, &ks, err, sizeof(err)), 1);
	assert_int_equal(ks.version, 1);
	assert_int_equal(ks.n, 3);
	assert_int_equal(ks.threshold, 2);
	assert_int_equal(agent_keyset_version(&ks), 1);
	pki_keyset_clear(&ks);
	/* threshold unset: 1 */
	assert_int_equal(agent_keyset_load(f->dir, f->pub[K_A], 0, &ks, err,
					   sizeof(err)),
			 1);
	assert_int_equal(ks.threshold, 1);
	pki_keyset_clear(&ks);
	/* nothing configured */
	assert_int_equal(
		agent_keyset_load(f->dir, NULL, 2, &ks, err, sizeof(err)), 0);
	assert_int_equal(agent_keyset_version(&ks), 0);
	assert_int_equal(
		agent_keyset_load(f->dir, " , ", 2, &ks, err, sizeof(err)), 0);
	assert_int_equal(agent_keyset_pinned_version(f->dir, NULL), 0);
	assert_int_equal(agent_keyset_pinned_version(f->dir, f->csv), 1);
	/* threshold above n, a missing file, the same key twice */
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 4, &ks, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "threshold"));
	snprintf(bad, sizeof(bad), "%s/none.pem", f->dir);
	assert_int_equal(
		agent_keyset_load(f->dir, bad, 1, &ks, err, sizeof(err)), -1);
	snprintf(bad, sizeof(bad), "%s,%s", f->pub[K_A], f->pub[K_A]);
	assert_int_equal(
		agent_keyset_load(f->dir, bad, 1, &ks, err, sizeof(err)), -1);
	/* A keyset.json that does not parse is an error, not version 1. */
	snprintf(path, sizeof(path), "%s/%s", f->dir, AGENT_KEYSET_FILE);
	assert_int_equal(atomic_write_file(path, "{\"version\":", 11, 0644, err,
					   sizeof(err)),
			 0);
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 2, &ks, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, AGENT_KEYSET_FILE));
	assert_int_equal(agent_keyset_pinned_version(f->dir, f->csv), 0);
	remove_keyset_file(f);
}

struct adopt_case {
	const char *what;
	int64_t version;
	int signers[3];
	size_t ns;
	int ret;
	enum pki_release_reason reason;
};

static const struct adopt_case adopt_cases[] = {
	{"wrong version (3)", 3, {K_A, K_B}, 2, 1, PKI_RELEASE_NOT_NEWER},
	{"version 1 again", 1, {K_A, K_B}, 2, 1, PKI_RELEASE_NOT_NEWER},
	{"fewer than k", 2, {K_C}, 1, 1, PKI_RELEASE_THRESHOLD},
	{"new keys only", 2, {K_N1, K_N2}, 2, 1, PKI_RELEASE_UNKNOWN_KEY},
	{"duplicate signature", 2, {K_A, K_A}, 2, 1, PKI_RELEASE_BAD_ENVELOPE},
	{"good chain", 2, {K_B, K_C}, 2, 0, PKI_RELEASE_OK},
};

static void
test_adopt_table(void **state)
{
	struct fx *f = *state;
	static const int next_keys[] = {K_C, K_N1, K_N2};
	struct pki_keyset cur, again;
	enum pki_release_reason rr;
	char why[512];
	size_t i;

	remove_keyset_file(f);
	for (i = 0; i < sizeof(adopt_cases) / sizeof(adopt_cases[0]); i++) {
		const struct adopt_case *c = &adopt_cases[i];
		char *env = rotation(f, c->version, next_keys, 3, 2, c->signers,
				     c->ns);
		int ret;

		assert_int_equal(agent_keyset_load(f->dir, f->csv, 2, &cur, why,
						   sizeof(why)),
				 1);
		rr = PKI_RELEASE_REASON_COUNT;
		ret = agent_keyset_adopt(f->dir, &cur, env, strlen(env), &rr,
					 why, sizeof(why));
		if (ret != c->ret || rr != c->reason)
			fail_msg("%s: ret %d reason %s (%s)", c->what, ret,
				 pki_release_reason_code(rr), why);
		if (ret != 0) {
			/* Refused: nothing written, the set unchanged. */
			assert_false(keyset_file_exists(f));
			assert_int_equal(cur.version, 1);
		} else {
			assert_int_equal(cur.version, 2);
			assert_int_equal(cur.n, 3);
		}
		pki_keyset_clear(&cur);
		free(env);
	}
	/* The adopted set survives a restart and wins over the config. */
	assert_true(keyset_file_exists(f));
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 2, &again, why, sizeof(why)),
		1);
	assert_int_equal(again.version, 2);
	assert_int_equal(again.threshold, 2);
	assert_int_equal(agent_keyset_pinned_version(f->dir, f->csv), 2);
	pki_keyset_clear(&again);
	remove_keyset_file(f);
}

/* v1 -> v2 -> v3: each signed by the set before it; v3 signed by v1's
 * keys is refused once v2 is pinned. */
static void
test_chain(void **state)
{
	struct fx *f = *state;
	static const int v2_keys[] = {K_C, K_N1, K_N2};
	static const int v3_keys[] = {K_N1, K_N2};
	static const int by_ab[] = {K_A, K_B};
	static const int by_n[] = {K_N1, K_N2};
	struct pki_keyset cur;
	enum pki_release_reason rr;
	char why[512];
	char *e2 = rotation(f, 2, v2_keys, 3, 2, by_ab, 2);
	char *e3_old = rotation(f, 3, v3_keys, 2, 1, by_ab, 2);
	char *e3 = rotation(f, 3, v3_keys, 2, 1, by_n, 2);

	remove_keyset_file(f);
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 2, &cur, why, sizeof(why)),
		1);
	assert_int_equal(agent_keyset_adopt(f->dir, &cur, e2, strlen(e2), &rr,
					    why, sizeof(why)),
			 0);
	assert_int_equal(agent_keyset_adopt(f->dir, &cur, e3_old,
					    strlen(e3_old), &rr, why,
					    sizeof(why)),
			 1);
	assert_int_equal(rr, PKI_RELEASE_UNKNOWN_KEY);
	assert_int_equal(agent_keyset_adopt(f->dir, &cur, e3, strlen(e3), &rr,
					    why, sizeof(why)),
			 0);
	assert_int_equal(cur.version, 3);
	assert_int_equal(cur.threshold, 1);
	pki_keyset_clear(&cur);
	assert_int_equal(
		agent_keyset_load(f->dir, f->csv, 2, &cur, why, sizeof(why)),
		1);
	assert_int_equal(cur.version, 3);
	pki_keyset_clear(&cur);
	free(e2);
	free(e3_old);
	free(e3);
	remove_keyset_file(f);
}

/* update.keys as the loop hands it over: the keys.status it answers. */
static json_t *
answer(struct fx *f, const char *csv, const char *env, int64_t version)
{
	struct proto_msg m;
	struct proto_error perr;
	json_t *body = json_pack("{s:s, s:o, s:I}", "type", "update.keys",
				 "envelope", json_loads(env, 0, NULL),
				 "version", (json_int_t)version);
	json_t *report = NULL;
	char *text = json_dumps(body, JSON_COMPACT);

	assert_non_null(text);
	assert_int_equal(
		proto_decode(text, strlen(text), PROTO_TO_AGENT, &m, &perr),
		PROTO_OK);
	assert_int_equal(
		agent_keyset_on_update_keys(f->dir, csv, 2, &m, &report), 0);
	assert_non_null(report);
	/* It is a valid keys.status once it has a seq. */
	json_object_set_new(report, "seq", json_integer(1));
	assert_int_equal(
		proto_validate(proto_def(PROTO_KEYS_STATUS), report, &perr),
		PROTO_OK);
	proto_msg_clear(&m);
	free(text);
	json_decref(body);
	return report;
}

static void
test_on_update_keys(void **state)
{
	struct fx *f = *state;
	static const int v2_keys[] = {K_C, K_N1, K_N2};
	static const int by_a[] = {K_A};
	static const int by_ab[] = {K_A, K_B};
	char *weak = rotation(f, 2, v2_keys, 3, 2, by_a, 1);
	char *good = rotation(f, 2, v2_keys, 3, 2, by_ab, 2);
	json_t *r;

	remove_keyset_file(f);
	r = answer(f, f->csv, weak, 2);
	assert_string_equal(json_string_value(json_object_get(r, "state")),
			    "refused");
	assert_string_equal(json_string_value(json_object_get(r, "reason")),
			    "threshold");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
	json_decref(r);
	assert_false(keyset_file_exists(f));

	r = answer(f, NULL, good, 2);
	assert_string_equal(json_string_value(json_object_get(r, "state")),
			    "refused");
	json_decref(r);

	r = answer(f, f->csv, good, 2);
	assert_string_equal(json_string_value(json_object_get(r, "state")),
			    "adopted");
	assert_null(json_object_get(r, "reason"));
	json_decref(r);
	assert_int_equal(agent_keyset_pinned_version(f->dir, f->csv), 2);

	/* Sent again (the answer was lost): adopted again, nothing redone. */
	r = answer(f, f->csv, good, 2);
	assert_string_equal(json_string_value(json_object_get(r, "state")),
			    "adopted");
	json_decref(r);
	free(weak);
	free(good);
	remove_keyset_file(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_adopt_table),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_on_update_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
