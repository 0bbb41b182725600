// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/key.c: key generation per type, key ids checked against
 * `openssl pkey | sha256sum`, private key files created 0600 even under a
 * permissive umask and never replaced unless asked, loading garbage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki_test_util.h"

struct gen_case {
	enum pki_key_type type;
	enum pki_result want;
	const char *evp_name;
};

static const struct gen_case gen_cases[] = {
	{PKI_KEY_P256, PKI_OK, "EC"},
	{PKI_KEY_P384, PKI_OK, "EC"},
	{PKI_KEY_ED25519, PKI_OK, "ED25519"},
	{PKI_KEY_RSA, PKI_ERR_ARG, NULL},
	{(enum pki_key_type)99, PKI_ERR_ARG, NULL},
};

static void
test_generate(void **state)
{
	struct pki_error err;
	EVP_PKEY *key = NULL;
	enum pki_key_type type;
	int bits;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(gen_cases) / sizeof(gen_cases[0]); i++) {
		key = NULL;
		assert_int_equal(
			pki_key_generate(gen_cases[i].type, &key, &err),
			gen_cases[i].want);
		if (gen_cases[i].want != PKI_OK) {
			assert_null(key);
			assert_true(strlen(err.msg) > 0);
			continue;
		}
		assert_true(EVP_PKEY_is_a(key, gen_cases[i].evp_name));
		assert_int_equal(pki_key_type_of(key, &type, &bits, &err),
				 PKI_OK);
		assert_int_equal(type, gen_cases[i].type);
		EVP_PKEY_free(key);
	}
}

static void
test_key_id_matches_openssl(void **state)
{
	static const enum pki_key_type types[] = {PKI_KEY_P256,
						  PKI_KEY_ED25519};
	struct pki_error err;
	EVP_PKEY *key = NULL;
	char id[PKI_KEY_ID_LEN];
	char path[4096];
	char *dir = tu_tmpdir();
	char *out = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_int_equal(pki_key_generate(types[i], &key, &err),
				 PKI_OK);
		assert_int_equal(pki_key_id(key, id, &err), PKI_OK);
		assert_int_equal(strlen(id), 64);
		tu_path(path, sizeof(path), dir, i == 0 ? "a.pub" : "b.pub");
		assert_int_equal(pki_key_save_public(key, path, false, &err),
				 PKI_OK);
		out = tu_sh_out("openssl pkey -pubin -in '%s' -outform DER | "
				"sha256sum",
				path);
		assert_memory_equal(out, id, 64);
		test_free(out);
		EVP_PKEY_free(key);
	}
	assert_int_equal(pki_key_id(NULL, id, &err), PKI_ERR_ARG);
	tu_rmtree(dir);
}

static void
test_private_file_mode_and_roundtrip(void **state)
{
	struct pki_error err;
	EVP_PKEY *key = NULL, *back = NULL, *pub = NULL;
	char id1[PKI_KEY_ID_LEN], id2[PKI_KEY_ID_LEN], id3[PKI_KEY_ID_LEN];
	char path[4096], pubpath[4096];
	char *dir = tu_tmpdir();
	char *ls = NULL;
	struct stat st;
	mode_t old;

	(void)state;
	tu_path(path, sizeof(path), dir, "k.key");
	tu_path(pubpath, sizeof(pubpath), dir, "k.pub");
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &key, &err), PKI_OK);
	old = umask(0);
	assert_int_equal(pki_key_save_private(key, path, false, &err), PKI_OK);
	assert_int_equal(pki_key_save_public(key, pubpath, false, &err),
			 PKI_OK);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(pubpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* No temporary files left behind. */
	ls = tu_sh_out("ls -A '%s' | wc -l", dir);
	assert_int_equal(strtol(ls, NULL, 10), 2);
	test_free(ls);

	/* Never replaced unless asked. */
	assert_int_equal(pki_key_save_private(key, path, false, &err),
			 PKI_ERR_EXISTS);
	assert_non_null(strstr(err.msg, "exists"));
	assert_int_equal(pki_key_save_private(key, path, true, &err), PKI_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(pki_key_load_private(path, &back, &err), PKI_OK);
	assert_int_equal(pki_key_load_public(pubpath, &pub, &err), PKI_OK);
	assert_int_equal(pki_key_id(key, id1, &err), PKI_OK);
	assert_int_equal(pki_key_id(back, id2, &err), PKI_OK);
	assert_int_equal(pki_key_id(pub, id3, &err), PKI_OK);
	assert_string_equal(id1, id2);
	assert_string_equal(id1, id3);
	/* openssl agrees it is a valid EC private key. */
	assert_int_equal(tu_sh("openssl pkey -in '%s' -check -noout "
			       ">/dev/null 2>&1",
			       path),
			 0);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);
	tu_rmtree(dir);
}

struct load_case {
	const char *name;
	const char *content; /* NULL: file absent */
	enum pki_result want;
};

static const struct load_case load_cases[] = {
	{"missing", NULL, PKI_ERR_IO},
	{"garbage", "this is not a key\n", PKI_ERR_PARSE},
	{"empty", "", PKI_ERR_PARSE},
	{"truncated",
	 "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0w"
	 "\n",
	 PKI_ERR_PARSE},
	{"pubkey-only",
	 "-----BEGIN PUBLIC KEY-----\n"
	 "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
	 "-----END PUBLIC KEY-----\n",
	 PKI_ERR_PARSE},
};

static void
test_load_failures(void **state)
{
	struct pki_error err;
	EVP_PKEY *key = NULL;
	char path[4096];
	char *dir = tu_tmpdir();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
		tu_path(path, sizeof(path), dir, load_cases[i].name);
		if (load_cases[i].content != NULL)
			tu_write(path, load_cases[i].content,
				 strlen(load_cases[i].content));
		err.msg[0] = '\0';
		assert_int_equal(pki_key_load_private(path, &key, &err),
				 load_cases[i].want);
		assert_null(key);
		assert_non_null(strstr(err.msg, load_cases[i].name));
	}
	tu_path(path, sizeof(path), dir, "garbage");
	assert_int_equal(pki_key_load_public(path, &key, &err), PKI_ERR_PARSE);
	assert_null(key);
	assert_int_equal(pki_key_load_private(dir, &key, &err), PKI_ERR_IO);
	tu_rmtree(dir);
}

static void
test_file_write_refuses_bad_dir(void **state)
{
	struct pki_error err;

	(void)state;
	assert_int_equal(
		pki_file_write("/nonexistent-dir/x", "a", 1, 0600, false, &err),
		PKI_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/x"));
	assert_int_equal(pki_file_write(NULL, "a", 1, 0600, false, &err),
			 PKI_ERR_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_key_id_matches_openssl),
		cmocka_unit_test(test_private_file_mode_and_roundtrip),
		cmocka_unit_test(test_load_failures),
		cmocka_unit_test(test_file_write_refuses_bad_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
