// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/dsse.c: k-of-n verification with 0, 1, k-1 and k
 * valid signatures, a payload changed by one byte, untrusted keys, the same
 * key twice, mislabelled key ids, malformed envelopes. External oracle:
 * openssl dgst / pkeyutl verify our signatures over a PAE this test builds
 * itself, and we verify signatures made by openssl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pki_test_util.h"

#define TYPE PKI_DSSE_MANIFEST_TYPE
#define BODY "{\"name\":\"fw\",\"version\":7,\"size\":1024}"

enum { KEY_A, KEY_B, KEY_C, KEY_U, N_KEYS };

struct fixture {
	EVP_PKEY *keys[N_KEYS]; /* A, B: P-256; C: Ed25519; U: untrusted */
};

static int
setup(void **state)
{
	struct fixture *f = test_malloc(sizeof(*f));
	struct pki_error err;

	assert_int_equal(pki_key_generate(PKI_KEY_P256, &f->keys[KEY_A], &err),
			 PKI_OK);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &f->keys[KEY_B], &err),
			 PKI_OK);
	assert_int_equal(
		pki_key_generate(PKI_KEY_ED25519, &f->keys[KEY_C], &err),
		PKI_OK);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &f->keys[KEY_U], &err),
			 PKI_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	for (i = 0; i < N_KEYS; i++)
		EVP_PKEY_free(f->keys[i]);
	test_free(f);
	return 0;
}

/* The PAE as the DSSE spec describes it, built independently. */
static unsigned char *
my_pae(const char *type, const unsigned char *body, size_t len, size_t *out)
{
	char head[256];
	unsigned char *buf = NULL;
	int n;

	n = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type),
		     type, len);
	assert_true(n > 0 && (size_t)n < sizeof(head));
	buf = test_malloc((size_t)n + len);
	memcpy(buf, head, (size_t)n);
	memcpy(buf + n, body, len);
	*out = (size_t)n + len;
	return buf;
}

static char *
b64(const unsigned char *in, size_t len)
{
	char *out = test_malloc(4 * ((len + 2) / 3) + 1);

	assert_true(EVP_EncodeBlock((unsigned char *)out, in, (int)len) >= 0);
	return out;
}

static unsigned char *
unb64(const char *in, size_t *len)
{
	size_t n = strlen(in);
	unsigned char *out = test_malloc(n / 4 * 3 + 1);
	int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);

	assert_true(got >= 0);
	while (n > 0 && in[n - 1] == '=') {
		n--;
		got--;
	}
	*len = (size_t)got;
	return out;
}

/* Envelope signed by the listed keys (indices), test_malloc()ed text. */
static char *
envelope(struct fixture *f, const int *idx, size_t n, const char *body)
{
	struct pki_error err;
	EVP_PKEY *keys[8];
	char *json = NULL, *copy = NULL;
	size_t len = 0, i;

	for (i = 0; i < n; i++)
		keys[i] = f->keys[idx[i]];
	if (pki_dsse_sign(body, strlen(body), TYPE, keys, n, &json, &len,
			  &err) != PKI_OK)
		fail_msg("sign: %s", err.msg);
	copy = test_malloc(len + 1);
	memcpy(copy, json, len + 1);
	free(json);
	return copy;
}

/* Rewrite a field of an envelope; returns a test_malloc()ed text. */
static char *
rewrite(const char *json, const char *key, json_t *value)
{
	json_t *env = json_loads(json, 0, NULL);
	char *text = NULL, *copy = NULL;

	assert_non_null(env);
	assert_int_equal(json_object_set_new(env, key, value), 0);
	text = json_dumps(env, JSON_COMPACT);
	copy = test_malloc(strlen(text) + 1);
	memcpy(copy, text, strlen(text) + 1);
	free(text);
	json_decref(env);
	return copy;
}

struct thr_case {
	const char *what;
	int signers[4];
	size_t n_signers; /* 0 and SIZE_MAX are special, see below */
	size_t k;
	enum pki_result want;
	size_t want_valid;
	bool want_verified[3];
};

static const struct thr_case thr_cases[] = {
	{"0 signatures", {0}, 0, 2, PKI_ERR_THRESHOLD, 0, {0, 0, 0}},
	{"1 (k-1) of k=2", {KEY_A}, 1, 2, PKI_ERR_THRESHOLD, 1, {1, 0, 0}},
	{"k=2 of 2", {KEY_A, KEY_C}, 2, 2, PKI_OK, 2, {1, 0, 1}},
	{"3 of k=2", {KEY_C, KEY_B, KEY_A}, 3, 2, PKI_OK, 3, {1, 1, 1}},
	{"k-1 of k=3", {KEY_A, KEY_B}, 2, 3, PKI_ERR_THRESHOLD, 2, {1, 1, 0}},
	{"k of k=3", {KEY_A, KEY_B, KEY_C}, 3, 3, PKI_OK, 3, {1, 1, 1}},
	{"1 of k=1", {KEY_B}, 1, 1, PKI_OK, 1, {0, 1, 0}},
	{"same key twice",
	 {KEY_A, KEY_A},
	 2,
	 2,
	 PKI_ERR_THRESHOLD,
	 1,
	 {1, 0, 0}},
	{"same key 4 times",
	 {KEY_C, KEY_C, KEY_C, KEY_C},
	 4,
	 2,
	 PKI_ERR_THRESHOLD,
	 1,
	 {0, 0, 1}},
	{"untrusted key only", {KEY_U}, 1, 1, PKI_ERR_THRESHOLD, 0, {0, 0, 0}},
	{"untrusted + 1 of k=2",
	 {KEY_U, KEY_B},
	 2,
	 2,
	 PKI_ERR_THRESHOLD,
	 1,
	 {0, 1, 0}},
	{"untrusted + 2 of k=2",
	 {KEY_U, KEY_B, KEY_C},
	 3,
	 2,
	 PKI_OK,
	 2,
	 {0, 1, 1}},
};

static void
test_thresholds(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	bool verified[3];
	size_t n_valid = 99, plen = 0, i;
	unsigned char *payload = NULL;
	char *json = NULL;
	char *b = NULL;

	for (i = 0; i < sizeof(thr_cases) / sizeof(thr_cases[0]); i++) {
		const struct thr_case *c = &thr_cases[i];

		if (c->n_signers == 0) {
			b = b64((const unsigned char *)BODY, strlen(BODY));
			json = test_malloc(strlen(b) + 256);
			snprintf(json, strlen(b) + 256,
				 "{\"payload\":\"%s\",\"payloadType\":\"%s\","
				 "\"signatures\":[]}",
				 b, TYPE);
			test_free(b);
		} else {
			json = envelope(f, c->signers, c->n_signers, BODY);
		}
		payload = NULL;
		memset(verified, 0, sizeof(verified));
		if (pki_dsse_verify(json, strlen(json), TYPE, f->keys, 3, c->k,
				    verified, &n_valid, &payload, &plen,
				    &err) != c->want)
			fail_msg("case %s: %s", c->what, err.msg);
		assert_int_equal(n_valid, c->want_valid);
		assert_int_equal(verified[0], c->want_verified[0]);
		assert_int_equal(verified[1], c->want_verified[1]);
		assert_int_equal(verified[2], c->want_verified[2]);
		if (c->want == PKI_OK) {
			assert_int_equal(plen, strlen(BODY));
			assert_memory_equal(payload, BODY, plen);
			free(payload);
		} else {
			assert_null(payload);
			assert_non_null(strstr(err.msg, "required"));
		}
		test_free(json);
	}
}

static void
test_tampering(void **state)
{
	struct fixture *f = *state;
	static const int ab[] = {KEY_A, KEY_B};
	struct pki_error err;
	size_t n_valid = 99, plen = 0, blen = 0;
	unsigned char *payload = NULL, *body = NULL;
	json_t *env = NULL;
	char *json = envelope(f, ab, 2, BODY);
	char *changed = NULL, *b = NULL;
	size_t pos;

	/* Every single-byte change of the payload breaks all signatures. */
	env = json_loads(json, 0, NULL);
	assert_non_null(env);
	body = unb64(json_string_value(json_object_get(env, "payload")), &blen);
	json_decref(env);
	assert_int_equal(blen, strlen(BODY));
	for (pos = 0; pos < blen; pos += 7) {
		body[pos] ^= 0x01;
		b = b64(body, blen);
		changed = rewrite(json, "payload", json_string(b));
		assert_int_equal(pki_dsse_verify(changed, strlen(changed), TYPE,
						 f->keys, 3, 1, NULL, &n_valid,
						 &payload, &plen, &err),
				 PKI_ERR_THRESHOLD);
		assert_int_equal(n_valid, 0);
		assert_null(payload);
		body[pos] ^= 0x01;
		test_free(b);
		test_free(changed);
	}
	test_free(body);

	/* Another payload type: refused before anything is counted. */
	changed = rewrite(json, "payloadType", json_string("text/plain"));
	assert_int_equal(pki_dsse_verify(changed, strlen(changed), TYPE,
					 f->keys, 3, 1, NULL, NULL, &payload,
					 &plen, &err),
			 PKI_ERR_POLICY);
	test_free(changed);
	/* ... and the signature covers the type: verifying as that type
	 * fails too. */
	changed = rewrite(json, "payloadType", json_string("text/plain"));
	assert_int_equal(pki_dsse_verify(changed, strlen(changed), "text/plain",
					 f->keys, 3, 1, NULL, NULL, &payload,
					 &plen, &err),
			 PKI_ERR_THRESHOLD);
	test_free(changed);
	test_free(json);
}

static void
test_keyids(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	char id_b[PKI_KEY_ID_LEN];
	unsigned char *payload = NULL;
	size_t plen = 0, n_valid = 0;
	json_t *env = NULL, *sig = NULL;
	char *json = NULL, *text = NULL;
	static const int a[] = {KEY_A};

	assert_int_equal(pki_key_id(f->keys[KEY_B], id_b, &err), PKI_OK);
	/* A's signature labelled as B's: checked against B only. */
	json = envelope(f, a, 1, BODY);
	env = json_loads(json, 0, NULL);
	sig = json_array_get(json_object_get(env, "signatures"), 0);
	json_object_set_new(sig, "keyid", json_string(id_b));
	text = json_dumps(env, JSON_COMPACT);
	assert_int_equal(pki_dsse_verify(text, strlen(text), TYPE, f->keys, 3,
					 1, NULL, &n_valid, &payload, &plen,
					 &err),
			 PKI_ERR_THRESHOLD);
	free(text);
	/* With an empty keyid every trusted key is tried. */
	json_object_set_new(sig, "keyid", json_string(""));
	text = json_dumps(env, JSON_COMPACT);
	assert_int_equal(pki_dsse_verify(text, strlen(text), TYPE, f->keys, 3,
					 1, NULL, &n_valid, &payload, &plen,
					 &err),
			 PKI_OK);
	free(payload);
	free(text);
	json_decref(env);
	test_free(json);
}

struct bad_case {
	const char *what;
	const char *json;
	enum pki_result want;
};

static const struct bad_case bad_cases[] = {
	{"not json", "garbage{", PKI_ERR_PARSE},
	{"truncated", "{\"payload\":\"e30=\",\"payloadT", PKI_ERR_PARSE},
	{"array", "[]", PKI_ERR_PARSE},
	{"no signatures", "{\"payload\":\"e30=\",\"payloadType\":\"" TYPE "\"}",
	 PKI_ERR_PARSE},
	{"payload not string",
	 "{\"payload\":1,\"payloadType\":\"" TYPE "\",\"signatures\":[]}",
	 PKI_ERR_PARSE},
	{"bad base64",
	 "{\"payload\":\"e30*\",\"payloadType\":\"" TYPE
	 "\",\"signatures\":[]}",
	 PKI_ERR_PARSE},
	{"duplicate key",
	 "{\"payload\":\"e30=\",\"payload\":\"e30=\",\"payloadType\":\"" TYPE
	 "\",\"signatures\":[]}",
	 PKI_ERR_PARSE},
	{"bad signature entries",
	 "{\"payload\":\"e30=\",\"payloadType\":\"" TYPE "\",\"signatures\":"
	 "[1,{\"sig\":5},{\"keyid\":3,\"sig\":\"AA==\"},{\"sig\":\"!!\"}]}",
	 PKI_ERR_THRESHOLD},
};

static void
test_malformed(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	unsigned char *payload = NULL;
	char *big = NULL;
	size_t plen = 0, i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		if (pki_dsse_verify(bad_cases[i].json,
				    strlen(bad_cases[i].json), TYPE, f->keys, 3,
				    1, NULL, NULL, &payload, &plen,
				    &err) != bad_cases[i].want)
			fail_msg("case %s: %s", bad_cases[i].what, err.msg);
		assert_null(payload);
	}
	big = test_malloc(PKI_DSSE_MAX_ENVELOPE + 1);
	memset(big, ' ', PKI_DSSE_MAX_ENVELOPE + 1);
	assert_int_equal(pki_dsse_verify(big, PKI_DSSE_MAX_ENVELOPE + 1, TYPE,
					 f->keys, 3, 1, NULL, NULL, &payload,
					 &plen, &err),
			 PKI_ERR_TOO_LARGE);
	test_free(big);
	/* Threshold outside 1..n. */
	assert_int_equal(pki_dsse_verify("{}", 2, TYPE, f->keys, 3, 0, NULL,
					 NULL, &payload, &plen, &err),
			 PKI_ERR_ARG);
	assert_int_equal(pki_dsse_verify("{}", 2, TYPE, f->keys, 3, 4, NULL,
					 NULL, &payload, &plen, &err),
			 PKI_ERR_ARG);
	assert_int_equal(
		pki_dsse_sign("x", 1, TYPE, f->keys, 0, &big, NULL, &err),
		PKI_ERR_ARG);
}

/* Write key idx's public key and its envelope signature to dir. */
static void
export_sig(struct fixture *f, const char *dir, const char *json, int idx,
	   const char *pub_path, const char *sig_path)
{
	struct pki_error err;
	json_t *env = json_loads(json, 0, NULL);
	unsigned char *sig = NULL;
	size_t sig_len = 0;

	(void)dir;
	assert_non_null(env);
	sig = unb64(
		json_string_value(json_object_get(
			json_array_get(json_object_get(env, "signatures"), 0),
			"sig")),
		&sig_len);
	tu_write(sig_path, sig, sig_len);
	assert_int_equal(
		pki_key_save_public(f->keys[idx], pub_path, true, &err),
		PKI_OK);
	test_free(sig);
	json_decref(env);
}

static void
test_openssl_oracle(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	char *dir = tu_tmpdir();
	char pae_path[4096], pub[4096], sig[4096], key[4096];
	unsigned char *pae = NULL, *lib_pae = NULL, *s = NULL;
	unsigned char *payload = NULL;
	size_t pae_len = 0, lib_len = 0, s_len = 0, plen = 0;
	char *json = NULL, *out = NULL, *sb = NULL, *bb = NULL;
	static const int a[] = {KEY_A}, c[] = {KEY_C};
	size_t jl;

	pae = my_pae(TYPE, (const unsigned char *)BODY, strlen(BODY), &pae_len);
	assert_int_equal(pki_dsse_pae(TYPE, BODY, strlen(BODY), &lib_pae,
				      &lib_len, &err),
			 PKI_OK);
	assert_int_equal(lib_len, pae_len);
	assert_memory_equal(lib_pae, pae, pae_len);
	free(lib_pae);
	tu_path(pae_path, sizeof(pae_path), dir, "pae.bin");
	tu_path(pub, sizeof(pub), dir, "pub.pem");
	tu_path(sig, sizeof(sig), dir, "sig.bin");
	tu_path(key, sizeof(key), dir, "key.pem");
	tu_write(pae_path, pae, pae_len);

	/* ECDSA P-256 over SHA-256 of the PAE. */
	json = envelope(f, a, 1, BODY);
	export_sig(f, dir, json, KEY_A, pub, sig);
	tu_sh_expect("Verified OK",
		     "openssl dgst -sha256 -verify '%s' -signature '%s' "
		     "'%s'",
		     pub, sig, pae_path);
	test_free(json);

	/* Ed25519 over the PAE itself. */
	json = envelope(f, c, 1, BODY);
	export_sig(f, dir, json, KEY_C, pub, sig);
	tu_sh_expect("Signature Verified Successfully",
		     "openssl pkeyutl -verify -pubin -inkey '%s' -rawin "
		     "-in '%s' -sigfile '%s'",
		     pub, pae_path, sig);
	test_free(json);
	/* The oracle can fail: the same signature over other bytes. */
	tu_write(pae_path, pae, pae_len - 1);
	out = tu_sh_out("openssl pkeyutl -verify -pubin -inkey '%s' -rawin "
			"-in '%s' -sigfile '%s'",
			pub, pae_path, sig);
	assert_null(strstr(out, "Signature Verified Successfully"));
	test_free(out);
	tu_write(pae_path, pae, pae_len);

	/* The other way round: openssl signs, we verify. */
	assert_int_equal(pki_key_save_private(f->keys[KEY_B], key, true, &err),
			 PKI_OK);
	assert_int_equal(tu_sh("openssl dgst -sha256 -sign '%s' -out '%s' "
			       "'%s'",
			       key, sig, pae_path),
			 0);
	s = (unsigned char *)tu_read(sig, &s_len);
	sb = b64(s, s_len);
	bb = b64((const unsigned char *)BODY, strlen(BODY));
	jl = strlen(sb) + strlen(bb) + 256;
	json = test_malloc(jl);
	snprintf(json, jl,
		 "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":"
		 "[{\"keyid\":\"\",\"sig\":\"%s\"}]}",
		 bb, TYPE, sb);
	assert_int_equal(pki_dsse_verify(json, strlen(json), TYPE, f->keys, 3,
					 1, NULL, NULL, &payload, &plen, &err),
			 PKI_OK);
	assert_memory_equal(payload, BODY, plen);
	free(payload);
	test_free(json);
	test_free(bb);
	test_free(sb);
	test_free(s);
	test_free(pae);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_keyids),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_openssl_oracle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
