/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pki/rollover.c on a directory made by pki_init_dir: prepare writes only
 * issuing/next/ and refuses a wrong root; commit moves the CAs and
 * rewrites the bundle (openssl verify: the new CA is under the same root);
 * a second rotation is refused during the overlap; retire removes the
 * previous CA and its key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pki_test_util.h"

static void
path(char *out, size_t cap, const char *dir, const char *rel)
{
	tu_path(out, cap, dir, rel);
}

static int
bundle_certs(const char *dir)
{
	char p[4096];
	char *text;
	size_t len = 0;
	int n = 0;

	path(p, sizeof(p), dir, "ca-bundle.pem");
	text = tu_read(p, &len);
	for (char *s = text; (s = strstr(s, "BEGIN CERTIFICATE")) != NULL; s++)
		n++;
	test_free(text);
	return n;
}

static void
test_rollover_cycle(void **state)
{
	char *tmp = tu_tmpdir();
	char dir[4096], p[4096], q[4096], id[PKI_KEY_ID_LEN];
	const char *names[1] = {"localhost"};
	struct pki_rollover ro, again;
	struct pki_error err;

	(void)state;
	memset(&ro, 0, sizeof(ro));
	memset(&again, 0, sizeof(again));
	path(dir, sizeof(dir), tmp, "pki");
	assert_int_equal(pki_init_dir(dir, names, 1, NULL, &err), PKI_OK);
	path(p, sizeof(p), dir, "root");

	/* A root that did not sign the issuing CA is refused. */
	path(q, sizeof(q), tmp, "other");
	assert_int_equal(pki_init_dir(q, names, 1, NULL, &err), PKI_OK);
	path(q, sizeof(q), tmp, "other/root");
	assert_int_equal(pki_rollover_prepare(dir, q, &ro, &err), PKI_ERR_ARG);
	path(q, sizeof(q), dir, "issuing/next");
	assert_int_not_equal(access(q, F_OK), 0);

	assert_int_equal(pki_rollover_prepare(dir, p, &ro, &err), PKI_OK);
	assert_string_not_equal(ro.old_id, ro.new_id);
	path(q, sizeof(q), dir, "issuing/next/issuing.key");
	assert_int_equal(access(q, F_OK), 0);
	assert_int_equal(bundle_certs(dir), 2); /* nothing in use changed */
	assert_int_equal(pki_rollover_commit(dir, &err), PKI_OK);
	assert_int_equal(bundle_certs(dir), 3);
	tu_sh_expect("OK",
		     "openssl verify -CAfile '%s/root/root.pem' "
		     "'%s/issuing/issuing.pem'",
		     dir, dir);
	tu_sh_expect("OK",
		     "openssl verify -CAfile '%s/root/root.pem' "
		     "'%s/issuing/previous/issuing.pem'",
		     dir, dir);
	path(q, sizeof(q), dir, "issuing/rotated");
	assert_int_equal(access(q, F_OK), 0);
	assert_int_equal(pki_rollover_previous_id(dir, id, &err), PKI_OK);
	assert_string_equal(id, ro.old_id);

	/* One overlap at a time. */
	assert_int_equal(pki_rollover_prepare(dir, p, &again, &err),
			 PKI_ERR_EXISTS);

	assert_int_equal(pki_rollover_retire(dir, &err), PKI_OK);
	assert_int_equal(bundle_certs(dir), 2);
	path(q, sizeof(q), dir, "issuing/previous");
	assert_int_not_equal(access(q, F_OK), 0);
	/* ... after which the next rotation may start. */
	assert_int_equal(pki_rollover_prepare(dir, p, &again, &err), PKI_OK);
	pki_rollover_abort(dir);
	path(q, sizeof(q), dir, "issuing/next");
	assert_int_not_equal(access(q, F_OK), 0);
	pki_rollover_clear(&again);
	pki_rollover_clear(&ro);
	tu_rmtree(tmp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollover_cycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
