// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/release.c: every refusal reason of the release and key
 * set verification (table-driven envelope mutations), the ordering rule
 * (signatures are checked before a byte of the payload is parsed), the
 * strict manifest and key set parsers, the device-side checks and key
 * rotation chains (v1 -> v2 -> v3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pki_test_util.h"
#include "release.h"

enum { KEY_A, KEY_B, KEY_C, KEY_U, KEY_V, N_KEYS };
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

struct fixture {
	EVP_PKEY *keys[N_KEYS]; /* A, B, C pinned (k=2); U, V not */
	char *dir;
	char pub[N_KEYS][4096];
	struct pki_keyset pinned;
};

static int
setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct pki_error err;
	const char *paths[3];
	int i;

	f->dir = tu_tmpdir();
	for (i = 0; i < N_KEYS; i++) {
		char name[32];

		assert_int_equal(pki_key_generate(i == KEY_C ? PKI_KEY_ED25519
							     : PKI_KEY_P256,
						  &f->keys[i], &err),
				 PKI_OK);
		snprintf(name, sizeof(name), "k%d.pub", i);
		tu_path(f->pub[i], sizeof(f->pub[i]), f->dir, name);
		assert_int_equal(
			pki_key_save_public(f->keys[i], f->pub[i], false, &err),
			PKI_OK);
	}
	for (i = 0; i < 3; i++)
		paths[i] = f->pub[i];
	assert_int_equal(pki_keyset_from_files(paths, 3, 2, &f->pinned, &err),
			 PKI_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	pki_keyset_clear(&f->pinned);
	for (i = 0; i < N_KEYS; i++)
		EVP_PKEY_free(f->keys[i]);
	tu_rmtree(f->dir);
	test_free(f);
	return 0;
}

static json_t *
base_manifest(void)
{
	json_t *m =
		json_pack("{s:s, s:s, s:i, s:[s, s], s:s, s:i, s:s, s:s, s:s}",
			  "name", "fw", "version", "1.2.0", "version_int", 120,
			  "hw", "rpi4", "rpi5", "installer", "dir-ab", "size",
			  4, "sha256", SHA, "expires", "2099-01-01T00:00:00Z",
			  "created", "2026-01-01T00:00:00Z");

	assert_non_null(m);
	return m;
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(s);
	json_decref(j);
	return s;
}

/* A DSSE envelope over body by keys[idx...], of payload type type. */
static char *
sign_with(struct fixture *f, const char *type, const char *body, const int *idx,
	  size_t n)
{
	struct pki_error err;
	EVP_PKEY *keys[8];
	char *json = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		keys[i] = f->keys[idx[i]];
	if (pki_dsse_sign(body, strlen(body), type, keys, n, &json, NULL,
			  &err) != PKI_OK)
		fail_msg("sign: %s", err.msg);
	return json;
}

/* ---- mutations of an envelope ---------------------------------------- */

enum mut {
	M_NONE,
	M_TAMPER, /* payload replaced by another manifest, sigs kept */
	M_SWAP_SIG, /* first signature's sig replaced by the second's */
	M_TYPE, /* payloadType of key sets */
	M_EXTRA_FIELD, /* unknown envelope field */
	M_NO_KEYID, /* first signature without keyid */
	M_UPPER_KEYID, /* keyid in uppercase */
	M_NO_SIGS, /* empty signatures array */
	M_SIG_NUMBER, /* sig is a number */
	M_PAYLOAD_NOT_B64,
	M_DUP_FIELD, /* "payloadType" twice in the text */
	M_NOT_JSON,
	M_ARRAY,
	M_SIG_NOT_B64, /* pinned signer's sig is not base64 */
};

static char *
mutate(const char *env_text, enum mut m)
{
	json_t *env = json_loads(env_text, 0, NULL);
	json_t *sigs, *s0, *s1;
	char *out = NULL;

	assert_non_null(env);
	sigs = json_object_get(env, "signatures");
	s0 = json_array_get(sigs, 0);
	s1 = json_array_get(sigs, 1);
	switch (m) {
	case M_NONE:
		break;
	case M_TAMPER: {
		json_t *other = base_manifest();
		char *body, *b64 = NULL;

		json_object_set_new(other, "version_int", json_integer(999));
		body = dump(other);
		b64 = malloc(4 * ((strlen(body) + 2) / 3) + 1);
		assert_non_null(b64);
		assert_true(EVP_EncodeBlock((unsigned char *)b64,
					    (const unsigned char *)body,
					    (int)strlen(body)) > 0);
		json_object_set_new(env, "payload", json_string(b64));
		free(b64);
		free(body);
		break;
	}
	case M_SWAP_SIG:
		json_object_set(s0, "sig", json_object_get(s1, "sig"));
		break;
	case M_TYPE:
		json_object_set_new(env, "payloadType",
				    json_string(PKI_RELEASE_KEYSET_TYPE));
		break;
	case M_EXTRA_FIELD:
		json_object_set_new(env, "note", json_string("hi"));
		break;
	case M_NO_KEYID:
		json_object_del(s0, "keyid");
		break;
	case M_UPPER_KEYID: {
		char up[65];
		size_t i;

		snprintf(up, sizeof(up), "%s",
			 json_string_value(json_object_get(s0, "keyid")));
		for (i = 0; up[i] != '\0'; i++)
			if (up[i] >= 'a' && up[i] <= 'f')
				up[i] = (char)(up[i] - 'a' + 'A');
		json_object_set_new(s0, "keyid", json_string(up));
		break;
	}
	case M_NO_SIGS:
		json_array_clear(sigs);
		break;
	case M_SIG_NUMBER:
		json_object_set_new(s0, "sig", json_integer(1));
		break;
	case M_PAYLOAD_NOT_B64:
		json_object_set_new(env, "payload", json_string("***"));
		break;
	case M_SIG_NOT_B64:
		json_object_set_new(s0, "sig", json_string("!!!!"));
		break;
	case M_DUP_FIELD: {
		char *t = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
		size_t n = strlen(t);

		out = malloc(n + 64);
		assert_non_null(out);
		/* {"payload":...  ->  {"payloadType":"x","payload":... */
		snprintf(out, n + 64, "{\"payloadType\":\"x\",%s", t + 1);
		free(t);
		json_decref(env);
		return out;
	}
	case M_NOT_JSON:
		json_decref(env);
		out = malloc(16);
		snprintf(out, 16, "{not json");
		return out;
	case M_ARRAY:
		json_decref(env);
		out = malloc(16);
		snprintf(out, 16, "[1,2]");
		return out;
	}
	out = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(env);
	return out;
}

struct verify_case {
	const char *what;
	int signers[4];
	size_t n;
	enum mut mut;
	enum pki_release_reason want;
};

static const struct verify_case verify_cases[] = {
	{"2 of 3 pinned", {KEY_A, KEY_B}, 2, M_NONE, PKI_RELEASE_OK},
	{"3 of 3 pinned", {KEY_C, KEY_B, KEY_A}, 3, M_NONE, PKI_RELEASE_OK},
	{"2 pinned + 1 unknown",
	 {KEY_U, KEY_A, KEY_C},
	 3,
	 M_NONE,
	 PKI_RELEASE_OK},
	{"1 of k=2", {KEY_A}, 1, M_NONE, PKI_RELEASE_THRESHOLD},
	{"unknown only", {KEY_U}, 1, M_NONE, PKI_RELEASE_UNKNOWN_KEY},
	{"unknown x2", {KEY_U, KEY_V}, 2, M_NONE, PKI_RELEASE_UNKNOWN_KEY},
	{"1 pinned + unknown",
	 {KEY_B, KEY_U},
	 2,
	 M_NONE,
	 PKI_RELEASE_UNKNOWN_KEY},
	{"tampered payload",
	 {KEY_A, KEY_B},
	 2,
	 M_TAMPER,
	 PKI_RELEASE_BAD_SIGNATURE},
	{"sig of another key",
	 {KEY_A, KEY_B},
	 2,
	 M_SWAP_SIG,
	 PKI_RELEASE_BAD_SIGNATURE},
	{"pinned sig not base64",
	 {KEY_A, KEY_B},
	 2,
	 M_SIG_NOT_B64,
	 PKI_RELEASE_BAD_SIGNATURE},
	{"tampered, unknown signers only",
	 {KEY_U},
	 1,
	 M_TAMPER,
	 PKI_RELEASE_UNKNOWN_KEY},
	{"same key twice", {KEY_A, KEY_A}, 2, M_NONE, PKI_RELEASE_BAD_ENVELOPE},
	{"same key twice + another",
	 {KEY_A, KEY_B, KEY_A},
	 3,
	 M_NONE,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"wrong payloadType",
	 {KEY_A, KEY_B},
	 2,
	 M_TYPE,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"unknown envelope field",
	 {KEY_A, KEY_B},
	 2,
	 M_EXTRA_FIELD,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"signature without keyid",
	 {KEY_A, KEY_B},
	 2,
	 M_NO_KEYID,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"uppercase keyid",
	 {KEY_A, KEY_B},
	 2,
	 M_UPPER_KEYID,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"no signatures",
	 {KEY_A, KEY_B},
	 2,
	 M_NO_SIGS,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"sig is a number",
	 {KEY_A, KEY_B},
	 2,
	 M_SIG_NUMBER,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"payload not base64",
	 {KEY_A, KEY_B},
	 2,
	 M_PAYLOAD_NOT_B64,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"duplicate envelope field",
	 {KEY_A, KEY_B},
	 2,
	 M_DUP_FIELD,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"not JSON", {KEY_A, KEY_B}, 2, M_NOT_JSON, PKI_RELEASE_BAD_ENVELOPE},
	{"JSON array", {KEY_A, KEY_B}, 2, M_ARRAY, PKI_RELEASE_BAD_ENVELOPE},
};

static void
test_verify_table(void **state)
{
	struct fixture *f = *state;
	struct pki_manifest m;
	char why[256];
	char *body = dump(base_manifest());
	size_t i;

	for (i = 0; i < sizeof(verify_cases) / sizeof(verify_cases[0]); i++) {
		const struct verify_case *c = &verify_cases[i];
		char *env = sign_with(f, PKI_RELEASE_MANIFEST_TYPE, body,
				      c->signers, c->n);
		char *text = mutate(env, c->mut);
		enum pki_release_reason got;

		memset(&m, 0, sizeof(m));
		why[0] = '\0';
		got = pki_release_verify(text, strlen(text), &f->pinned, &m,
					 why, sizeof(why));
		if (got != c->want)
			fail_msg("%s: got %s (%s), want %s", c->what,
				 pki_release_reason_code(got), why,
				 pki_release_reason_code(c->want));
		assert_true(why[0] != '\0');
		if (c->want == PKI_RELEASE_OK) {
			assert_string_equal(m.name, "fw");
			assert_int_equal(m.version_int, 120);
			assert_int_equal(m.n_hw, 2);
			assert_string_equal(m.sha256, SHA);
		}
		free(text);
		free(env);
	}
	free(body);
}

/* Verify before parse: an unparsable or hostile payload gets the reason of
 * its signatures, and bad-envelope only once the threshold holds. */
struct order_case {
	const char *what;
	const char *payload;
	int signers[3];
	size_t n;
	enum pki_release_reason want;
};

static const struct order_case order_cases[] = {
	{"garbage by unknown",
	 "not json at all",
	 {KEY_U},
	 1,
	 PKI_RELEASE_UNKNOWN_KEY},
	{"garbage by 1 of 2",
	 "not json at all",
	 {KEY_A},
	 1,
	 PKI_RELEASE_THRESHOLD},
	{"garbage by 2 of 2",
	 "not json at all",
	 {KEY_A, KEY_B},
	 2,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"unknown field by 1 of 2",
	 "{\"name\":\"x\",\"evil\":1}",
	 {KEY_C},
	 1,
	 PKI_RELEASE_THRESHOLD},
	{"unknown field by 2 of 2",
	 "{\"name\":\"x\",\"evil\":1}",
	 {KEY_C, KEY_A},
	 2,
	 PKI_RELEASE_BAD_ENVELOPE},
};

static void
test_verify_before_parse(void **state)
{
	struct fixture *f = *state;
	struct pki_manifest m;
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++) {
		const struct order_case *c = &order_cases[i];
		char *env = sign_with(f, PKI_RELEASE_MANIFEST_TYPE, c->payload,
				      c->signers, c->n);
		enum pki_release_reason got = pki_release_verify(
			env, strlen(env), &f->pinned, &m, why, sizeof(why));

		if (got != c->want)
			fail_msg("%s: got %s (%s)", c->what,
				 pki_release_reason_code(got), why);
		free(env);
	}
}

/* ---- strict manifest parser ------------------------------------------- */

struct parse_case {
	const char *what;
	const char *field; /* set (or delete when value is NULL) */
	const char *value; /* JSON text */
	bool ok;
};

static const struct parse_case parse_cases[] = {
	{"base", NULL, NULL, true},
	{"no name", "name", NULL, false},
	{"no version", "version", NULL, false},
	{"no version_int", "version_int", NULL, false},
	{"no hw", "hw", NULL, false},
	{"no installer", "installer", NULL, false},
	{"no size", "size", NULL, false},
	{"no sha256", "sha256", NULL, false},
	{"no expires", "expires", NULL, false},
	{"no created", "created", NULL, false},
	{"unknown field", "signed_by", "\"me\"", false},
	{"empty name", "name", "\"\"", false},
	{"name with newline", "name", "\"a\\nb\"", false},
	{"name not a string", "name", "7", false},
	{"version_int 0", "version_int", "0", false},
	{"version_int -1", "version_int", "-1", false},
	{"version_int real", "version_int", "1.0", false},
	{"version_int string", "version_int", "\"5\"", false},
	{"size 0", "size", "0", false},
	{"size real", "size", "4.5", false},
	{"big size", "size", "9007199254740993", true},
	{"hw empty", "hw", "[]", false},
	{"hw not array", "hw", "\"rpi4\"", false},
	{"hw twice", "hw", "[\"a\",\"a\"]", false},
	{"hw number", "hw", "[1]", false},
	{"hw 16", "hw",
	 "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
	 "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\"]",
	 true},
	{"hw 17", "hw",
	 "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
	 "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]",
	 false},
	{"installer uppercase", "installer", "\"Dir-ab\"", false},
	{"installer slash", "installer", "\"../x\"", false},
	{"installer ok chars", "installer", "\"a.b_c-1\"", true},
	{"installer 64", "installer",
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
	 true},
	{"installer 65", "installer",
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "\"",
	 false},
	{"sha256 uppercase", "sha256",
	 "\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"",
	 false},
	{"sha256 63", "sha256",
	 "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\"",
	 false},
	{"sha256 not hex", "sha256",
	 "\"zf86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"",
	 false},
	{"expires offset", "expires", "\"2099-01-01T00:00:00+01:00\"", false},
	{"expires fraction", "expires", "\"2099-01-01T00:00:00.5Z\"", false},
	{"expires lowercase", "expires", "\"2099-01-01t00:00:00z\"", false},
	{"expires Feb 30", "expires", "\"2099-02-30T00:00:00Z\"", false},
	{"expires Feb 29 2100", "expires", "\"2100-02-29T00:00:00Z\"", false},
	{"expires Feb 29 2096", "expires", "\"2096-02-29T00:00:00Z\"", true},
	{"expires hour 24", "expires", "\"2099-01-01T24:00:00Z\"", false},
	{"expires number", "expires", "4070908800", false},
	{"expires before created", "expires", "\"2025-01-01T00:00:00Z\"",
	 false},
	{"created bad", "created", "\"yesterday\"", false},
};

static void
test_manifest_parse_table(void **state)
{
	struct pki_manifest m;
	struct pki_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		json_t *j = base_manifest();
		char *text;
		enum pki_result r;

		if (c->field != NULL && c->value == NULL)
			json_object_del(j, c->field);
		else if (c->field != NULL)
			json_object_set_new(
				j, c->field,
				json_loads(c->value, JSON_DECODE_ANY, NULL));
		text = dump(j);
		memset(&err, 0, sizeof(err));
		r = pki_manifest_parse(text, strlen(text), &m, &err);
		if ((r == PKI_OK) != c->ok)
			fail_msg("%s: got %s (%s)", c->what, pki_result_str(r),
				 err.msg);
		if (!c->ok) {
			assert_int_equal(r, PKI_ERR_PARSE);
			assert_true(err.msg[0] != '\0');
		}
		free(text);
	}
}

static void
test_manifest_parse_raw(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"\"x\"",
		"{\"name\":\"a\",\"name\":\"b\"}",
		"{} trailing",
	};
	struct pki_manifest m;
	struct pki_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
			pki_manifest_parse(bad[i], strlen(bad[i]), &m, &err),
			PKI_ERR_PARSE);
}

static void
test_manifest_json_roundtrip(void **state)
{
	struct pki_manifest m, back;
	struct pki_error err;
	char *json = NULL, *want;
	size_t len = 0;

	(void)state;
	want = dump(base_manifest());
	assert_int_equal(pki_manifest_parse(want, strlen(want), &m, &err),
			 PKI_OK);
	assert_int_equal(pki_manifest_json(&m, &json, &len, &err), PKI_OK);
	/* Canonical: sorted keys, no whitespace; identical to jansson's. */
	assert_string_equal(json, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(pki_manifest_parse(json, len, &back, &err), PKI_OK);
	assert_memory_equal(&m, &back, sizeof(m));
	free(json);
	/* Never produces what the parser refuses. */
	m.installer[0] = 'X';
	assert_int_not_equal(pki_manifest_json(&m, &json, &len, &err), PKI_OK);
	m.installer[0] = 'd';
	m.n_hw = 0;
	assert_int_not_equal(pki_manifest_json(&m, &json, &len, &err), PKI_OK);
	free(want);
}

/* ---- device-side checks ------------------------------------------------ */

static void
test_manifest_check(void **state)
{
	struct pki_manifest m;
	struct pki_error err;
	char *text = dump(base_manifest());
	char why[200];

	(void)state;
	assert_int_equal(pki_manifest_parse(text, strlen(text), &m, &err),
			 PKI_OK);
	free(text);
	assert_int_equal(pki_manifest_check(&m, time(NULL), 119, "rpi5", why,
					    sizeof(why)),
			 PKI_RELEASE_OK);
	assert_int_equal(pki_manifest_check(&m, m.expires, 119, "rpi5", why,
					    sizeof(why)),
			 PKI_RELEASE_EXPIRED);
	assert_non_null(strstr(why, "2099-01-01T00:00:00Z"));
	assert_int_equal(pki_manifest_check(&m, m.expires - 1, 119, "rpi4", why,
					    sizeof(why)),
			 PKI_RELEASE_OK);
	assert_int_equal(pki_manifest_check(&m, time(NULL), 120, "rpi5", why,
					    sizeof(why)),
			 PKI_RELEASE_NOT_NEWER);
	assert_int_equal(pki_manifest_check(&m, time(NULL), 500, "rpi5", why,
					    sizeof(why)),
			 PKI_RELEASE_NOT_NEWER);
	assert_int_equal(
		pki_manifest_check(&m, time(NULL), 0, "rpi3", why, sizeof(why)),
		PKI_RELEASE_HARDWARE);
	assert_int_equal(
		pki_manifest_check(&m, time(NULL), 0, NULL, why, sizeof(why)),
		PKI_RELEASE_HARDWARE);
	/* Order: expiry before version before hardware. */
	assert_int_equal(pki_manifest_check(&m, m.expires + 1, 500, "x", why,
					    sizeof(why)),
			 PKI_RELEASE_EXPIRED);
	assert_int_equal(pki_manifest_check(&m, 0, 500, "x", why, sizeof(why)),
			 PKI_RELEASE_NOT_NEWER);

	assert_int_equal(pki_manifest_match(&m, 4, SHA, why, sizeof(why)),
			 PKI_RELEASE_OK);
	assert_int_equal(pki_manifest_match(&m, 5, SHA, why, sizeof(why)),
			 PKI_RELEASE_SIZE_MISMATCH);
	assert_int_equal(pki_manifest_match(&m, 5, "00", why, sizeof(why)),
			 PKI_RELEASE_SIZE_MISMATCH);
	assert_int_equal(pki_manifest_match(&m, 4, "00", why, sizeof(why)),
			 PKI_RELEASE_HASH_MISMATCH);
	assert_int_equal(pki_manifest_match(&m, 4, NULL, why, sizeof(why)),
			 PKI_RELEASE_HASH_MISMATCH);
	assert_int_equal(
		pki_manifest_match(&m, 4,
				   "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0"
				   "B822CD15D6C15B0F00A08",
				   why, sizeof(why)),
		PKI_RELEASE_HASH_MISMATCH);
}

static void
test_reason_codes(void **state)
{
	static const char *const want[] = {
		"ok",
		"bad-envelope",
		"bad-signature",
		"unknown-key",
		"threshold",
		"expired",
		"not-newer",
		"hardware",
		"size-mismatch",
		"hash-mismatch",
	};
	size_t i;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]),
			 PKI_RELEASE_REASON_COUNT);
	for (i = 0; i < PKI_RELEASE_REASON_COUNT; i++)
		assert_string_equal(
			pki_release_reason_code((enum pki_release_reason)i),
			want[i]);
	assert_string_equal(
		pki_release_reason_code((enum pki_release_reason)99),
		"bad-envelope");
}

/* ---- key sets ----------------------------------------------------------- */

static void
test_keyset_from_files(void **state)
{
	struct fixture *f = *state;
	struct pki_keyset ks;
	struct pki_error err;
	const char *two[2] = {f->pub[KEY_A], f->pub[KEY_A]};
	const char *one[1] = {f->pub[KEY_B]};
	char missing[4096];

	assert_int_equal(f->pinned.version, 1);
	assert_int_equal(f->pinned.threshold, 2);
	assert_int_equal(f->pinned.n, 3);
	assert_int_not_equal(pki_keyset_from_files(two, 2, 1, &ks, &err),
			     PKI_OK);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_not_equal(pki_keyset_from_files(one, 1, 0, &ks, &err),
			     PKI_OK);
	assert_int_not_equal(pki_keyset_from_files(one, 1, 2, &ks, &err),
			     PKI_OK);
	tu_path(missing, sizeof(missing), f->dir, "none.pub");
	one[0] = missing;
	assert_int_equal(pki_keyset_from_files(one, 1, 1, &ks, &err),
			 PKI_ERR_IO);
	pki_keyset_clear(NULL);
}

/* Payload of a key set of version v with keys idx, threshold k. */
static char *
keyset_payload(struct fixture *f, int64_t v, const int *idx, size_t n, size_t k)
{
	struct pki_keyset ks;
	struct pki_error err;
	char *json = NULL;
	size_t i;

	memset(&ks, 0, sizeof(ks));
	for (i = 0; i < n; i++) {
		EVP_PKEY_up_ref(f->keys[idx[i]]);
		ks.keys[i] = f->keys[idx[i]];
		assert_int_equal(pki_key_id(ks.keys[i], ks.ids[i], &err),
				 PKI_OK);
	}
	ks.n = n;
	ks.version = v;
	ks.threshold = k;
	assert_int_equal(pki_keyset_json(&ks, &json, NULL, &err), PKI_OK);
	pki_keyset_clear(&ks);
	return json;
}

static void
test_keyset_json_parse(void **state)
{
	struct fixture *f = *state;
	struct pki_keyset ks;
	struct pki_error err;
	char *json = NULL;
	json_t *j;
	size_t len = 0, i;

	assert_int_equal(pki_keyset_json(&f->pinned, &json, &len, &err),
			 PKI_OK);
	assert_int_equal(pki_keyset_parse(json, len, &ks, &err), PKI_OK);
	assert_int_equal(ks.version, 1);
	assert_int_equal(ks.threshold, 2);
	assert_int_equal(ks.n, 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(ks.ids[i], f->pinned.ids[i]);
	pki_keyset_clear(&ks);

	/* Refusals: unknown field, keyid of another key, threshold > n,
	 * threshold 0, the same key twice, not a PEM, version 0. */
	for (i = 0; i < 7; i++) {
		char *text;
		json_t *keys, *k0;

		j = json_loads(json, 0, NULL);
		keys = json_object_get(j, "keys");
		k0 = json_array_get(keys, 0);
		switch (i) {
		case 0:
			json_object_set_new(j, "extra", json_true());
			break;
		case 1:
			json_object_set(k0, "keyid",
					json_object_get(json_array_get(keys, 1),
							"keyid"));
			break;
		case 2:
			json_object_set_new(j, "threshold", json_integer(4));
			break;
		case 3:
			json_object_set_new(j, "threshold", json_integer(0));
			break;
		case 4:
			json_array_append(keys, k0);
			break;
		case 5:
			json_object_set_new(k0, "public_key",
					    json_string("-----BEGIN x"));
			break;
		case 6:
			json_object_set_new(j, "version", json_integer(0));
			break;
		}
		text = dump(j);
		if (pki_keyset_parse(text, strlen(text), &ks, &err) !=
		    PKI_ERR_PARSE)
			fail_msg("key set refusal %zu accepted", i);
		free(text);
	}
	free(json);
}

struct rot_case {
	const char *what;
	int64_t version;
	int signers[3];
	size_t n;
	const char *type;
	enum pki_release_reason want;
};

static const struct rot_case rot_cases[] = {
	{"good chain",
	 2,
	 {KEY_A, KEY_C},
	 2,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_OK},
	{"skips a version",
	 3,
	 {KEY_A, KEY_C},
	 2,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_NOT_NEWER},
	{"same version",
	 1,
	 {KEY_A, KEY_C},
	 2,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_NOT_NEWER},
	{"fewer than k",
	 2,
	 {KEY_B},
	 1,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_THRESHOLD},
	{"new keys only",
	 2,
	 {KEY_U, KEY_V},
	 2,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_UNKNOWN_KEY},
	{"duplicate signature",
	 2,
	 {KEY_A, KEY_A},
	 2,
	 PKI_RELEASE_KEYSET_TYPE,
	 PKI_RELEASE_BAD_ENVELOPE},
	{"a release, not a key set",
	 2,
	 {KEY_A, KEY_B},
	 2,
	 PKI_RELEASE_MANIFEST_TYPE,
	 PKI_RELEASE_BAD_ENVELOPE},
};

static void
test_keyset_verify_table(void **state)
{
	struct fixture *f = *state;
	static const int next_keys[] = {KEY_A, KEY_U, KEY_V};
	struct pki_keyset next;
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(rot_cases) / sizeof(rot_cases[0]); i++) {
		const struct rot_case *c = &rot_cases[i];
		char *payload = keyset_payload(f, c->version, next_keys, 3, 2);
		char *env = sign_with(f, c->type, payload, c->signers, c->n);
		enum pki_release_reason got;

		memset(&next, 0, sizeof(next));
		got = pki_keyset_verify(env, strlen(env), &f->pinned, &next,
					why, sizeof(why));
		if (got != c->want)
			fail_msg("%s: got %s (%s)", c->what,
				 pki_release_reason_code(got), why);
		if (got == PKI_RELEASE_OK) {
			assert_int_equal(next.version, 2);
			assert_int_equal(next.n, 3);
			pki_keyset_clear(&next);
		}
		free(env);
		free(payload);
	}
}

/* v1 (A,B,C k=2) -> v2 (A,U,V k=2) -> v3 (U,V k=2): each step signed by
 * the previous set; after the rotation the retired keys sign nothing. */
static void
test_rotation_chain(void **state)
{
	struct fixture *f = *state;
	static const int v2_keys[] = {KEY_A, KEY_U, KEY_V};
	static const int v3_keys[] = {KEY_U, KEY_V};
	static const int by_bc[] = {KEY_B, KEY_C};
	static const int by_uv[] = {KEY_U, KEY_V};
	static const int by_ab[] = {KEY_A, KEY_B};
	struct pki_keyset v2, v3;
	struct pki_manifest m;
	char why[256];
	char *p2 = keyset_payload(f, 2, v2_keys, 3, 2);
	char *p3 = keyset_payload(f, 3, v3_keys, 2, 2);
	char *e2 = sign_with(f, PKI_RELEASE_KEYSET_TYPE, p2, by_bc, 2);
	char *e3_old = sign_with(f, PKI_RELEASE_KEYSET_TYPE, p3, by_bc, 2);
	char *e3 = sign_with(f, PKI_RELEASE_KEYSET_TYPE, p3, by_uv, 2);
	char *body = dump(base_manifest());
	char *rel_old = sign_with(f, PKI_RELEASE_MANIFEST_TYPE, body, by_ab, 2);
	char *rel_new = sign_with(f, PKI_RELEASE_MANIFEST_TYPE, body, by_uv, 2);

	assert_int_equal(pki_keyset_verify(e2, strlen(e2), &f->pinned, &v2, why,
					   sizeof(why)),
			 PKI_RELEASE_OK);
	/* v3 signed by v1's keys is not signed by v2's threshold. */
	assert_int_equal(pki_keyset_verify(e3_old, strlen(e3_old), &v2, &v3,
					   why, sizeof(why)),
			 PKI_RELEASE_UNKNOWN_KEY);
	assert_int_equal(
		pki_keyset_verify(e3, strlen(e3), &v2, &v3, why, sizeof(why)),
		PKI_RELEASE_OK);
	assert_int_equal(v3.version, 3);
	/* A release by the retired keys A, B: unknown to v3. */
	assert_int_equal(pki_release_verify(rel_old, strlen(rel_old), &v3, &m,
					    why, sizeof(why)),
			 PKI_RELEASE_UNKNOWN_KEY);
	assert_int_equal(pki_release_verify(rel_new, strlen(rel_new), &v3, &m,
					    why, sizeof(why)),
			 PKI_RELEASE_OK);
	/* With v2 (A,U,V) the old release has one pinned signer of two. */
	assert_int_equal(pki_release_verify(rel_old, strlen(rel_old), &v2, &m,
					    why, sizeof(why)),
			 PKI_RELEASE_UNKNOWN_KEY);
	pki_keyset_clear(&v2);
	pki_keyset_clear(&v3);
	free(p2);
	free(p3);
	free(e2);
	free(e3_old);
	free(e3);
	free(body);
	free(rel_old);
	free(rel_new);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_table),
		cmocka_unit_test(test_verify_before_parse),
		cmocka_unit_test(test_manifest_parse_table),
		cmocka_unit_test(test_manifest_parse_raw),
		cmocka_unit_test(test_manifest_json_roundtrip),
		cmocka_unit_test(test_manifest_check),
		cmocka_unit_test(test_reason_codes),
		cmocka_unit_test(test_keyset_from_files),
		cmocka_unit_test(test_keyset_json_parse),
		cmocka_unit_test(test_keyset_verify_table),
		cmocka_unit_test(test_rotation_chain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
