/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRL rule without a database or a ca process: a fresh CRL is served
 * without signing; a revocation (a new generation) or a nearing
 * nextUpdate makes it re-signed; a revocation that commits while a CRL is
 * being signed (issue 8, defect 3) leaves that CRL stale, so the next
 * request lists it; failures answer an error and release the lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crl.h"
#include "fake_store_devices.h"

#define ID1 "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b01"
#define ID2 "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b02"
#define ID3 "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b03"

/* crl_current as text ("CRL n:serial,..."); the lock is released. */
static char *
current(struct store *st, struct signer_client *sc, enum crl_rc want)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char err[128];

	assert_int_equal(crl_current(st, sc, &der, &len, err, sizeof(err)),
			 want);
	assert_false(st->locked);
	if (want != CRL_OK)
		return NULL;
	assert_non_null(der);
	assert_int_equal(der[len - 1], '\0');
	return (char *)der;
}

static void
test_fresh_rule(void **state)
{
	struct crl_cached c = {(unsigned char *)"x", 1, 3, 5, 0};

	(void)state;
	c.next_update = 1000 + CRL_REFRESH_S + 1;
	assert_true(crl_is_fresh(&c, 5, 1000));
	assert_false(crl_is_fresh(&c, 6, 1000));
	c.next_update = 1000 + CRL_REFRESH_S;
	assert_false(crl_is_fresh(&c, 5, 1000));
	c.der = NULL;
	c.next_update = 1000 + CRL_VALIDITY_S;
	assert_false(crl_is_fresh(&c, 5, 1000));
}

static void
test_cache_and_resign(void **state)
{
	struct store st;
	struct signer_client sc = {false, 0};
	char *t;

	(void)state;
	fake_store_init(&st);
	fake_store_add(&st, ID1, "06AFAD95");
	fake_store_add(&st, ID2, "7B00");
	fake_store_revoke(&st, ID1);

	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 1:06AFAD95,");
	free(t);
	assert_int_equal(sc.crl_calls, 1);
	/* fresh: served from the store, not signed again */
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 1:06AFAD95,");
	free(t);
	assert_int_equal(sc.crl_calls, 1);
	/* a revocation moves the generation on: re-signed */
	fake_store_revoke(&st, ID2);
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 2:06AFAD95,7B00,");
	free(t);
	assert_int_equal(sc.crl_calls, 2);
	/* less than CRL_REFRESH_S before nextUpdate: re-signed */
	st.now += CRL_VALIDITY_S - CRL_REFRESH_S;
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 3:06AFAD95,7B00,");
	free(t);
	assert_int_equal(sc.crl_calls, 3);
	fake_store_clear(&st);
}

static void
revoke_id3(struct store *st)
{
	fake_store_revoke(st, ID3);
}

static void
test_revocation_during_signing(void **state)
{
	struct store st;
	struct signer_client sc = {false, 0};
	char *t;

	(void)state;
	fake_store_init(&st);
	fake_store_add(&st, ID1, "0A");
	fake_store_add(&st, ID3, "0C");
	fake_store_revoke(&st, ID1);
	/* ID3 is revoked after the snapshot was read, before the CRL is
	 * stored: this CRL cannot list it... */
	st.after_snapshot = revoke_id3;
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 1:0A,");
	free(t);
	/* ...but it was stored as built from the older generation, so it is
	 * not served as fresh: the next request lists the revocation. */
	assert_true(st.crl.generation < st.generation);
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 2:0A,0C,");
	free(t);
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 2:0A,0C,");
	free(t);
	assert_int_equal(sc.crl_calls, 2);
	fake_store_clear(&st);
}

static void
test_failures(void **state)
{
	struct store st;
	struct signer_client sc = {true, 0};
	char *t;

	(void)state;
	fake_store_init(&st);
	fake_store_add(&st, ID1, "0A");
	fake_store_revoke(&st, ID1);
	assert_null(current(&st, &sc, CRL_ERR_SIGNER));
	assert_null(st.crl.der);
	sc.down = false;
	st.fail = true;
	assert_null(current(&st, &sc, CRL_ERR_STORE));
	st.fail = false;
	/* number 1 went to the CRL that was never signed */
	t = current(&st, &sc, CRL_OK);
	assert_string_equal(t, "CRL 2:0A,");
	free(t);
	fake_store_clear(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_rule),
		cmocka_unit_test(test_cache_and_resign),
		cmocka_unit_test(test_revocation_during_signing),
		cmocka_unit_test(test_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
