/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit test of fleetctl's wiping heap (fleetd/ctl/secmem.c): after
 * ctl_secmem_init, jansson and OpenSSL free through ctl_free_wiped, and
 * both still work (realloc keeps contents, JSON round-trips, keys are made
 * and freed without leaks under LeakSanitizer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ctl.h"

static void
test_jansson_frees_through_the_wipe(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	json_t *doc;
	char *text;

	(void)state;
	json_get_alloc_funcs(&m, &f);
	assert_true(f == ctl_free_wiped);
	doc = json_pack("{s:s}", "token", "fle_secret");
	assert_non_null(doc);
	text = json_dumps(doc, JSON_COMPACT);
	assert_string_equal(text, "{\"token\":\"fle_secret\"}");
	ctl_free_wiped(text);
	json_decref(doc);
}

static void
test_openssl_frees_through_the_wipe(void **state)
{
	CRYPTO_malloc_fn m = NULL;
	CRYPTO_realloc_fn r = NULL;
	CRYPTO_free_fn f = NULL;
	unsigned char *p;

	(void)state;
	CRYPTO_get_mem_functions(&m, &r, &f);
	assert_true(f != CRYPTO_free);
	assert_true(r != CRYPTO_realloc);
	p = OPENSSL_malloc(16);
	assert_non_null(p);
	memcpy(p, "0123456789abcdef", 16);
	p = OPENSSL_realloc(p, 4096); /* copies, wipes the old block */
	assert_non_null(p);
	assert_memory_equal(p, "0123456789abcdef", 16);
	p = OPENSSL_realloc(p, 8);
	assert_non_null(p);
	assert_memory_equal(p, "01234567", 8);
	OPENSSL_free(p);
	assert_null(OPENSSL_realloc(OPENSSL_malloc(4), 0));
}

static void
test_keys_still_work(void **state)
{
	EVP_PKEY *key;

	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(key);
	EVP_PKEY_free(key);
	ctl_free_wiped(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jansson_frees_through_the_wipe),
		cmocka_unit_test(test_openssl_frees_through_the_wipe),
		cmocka_unit_test(test_keys_still_work),
	};

	/* As fleetctl's main does: before anything allocates. */
	ctl_secmem_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
