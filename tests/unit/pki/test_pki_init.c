// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/init.c (`fleetd pki init`): the file layout and modes,
 * the server certificate verified by `openssl verify -purpose sslserver`,
 * the issuing CA by the root, and refusal to overwrite an existing PKI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pki_test_util.h"

static const char *const names[] = {"fleet.example.com", "127.0.0.1"};

struct file_case {
	const char *path;
	unsigned mode;
};

static const struct file_case files[] = {
	{"root/root.key", 0600},       {"root/root.pem", 0644},
	{"issuing/issuing.key", 0600}, {"issuing/issuing.pem", 0644},
	{"issuing/crl-url", 0644},     {"server/server.key", 0600},
	{"server/server.pem", 0644},   {"server/server-chain.pem", 0644},
	{"ca-bundle.pem", 0644},
};

static void
test_layout_and_oracle(void **state)
{
	struct pki_error err;
	char *dir = tu_tmpdir();
	char pki[4096], p[4096], q[4096], r[4096];
	char *out = NULL, *before = NULL, *after = NULL;
	struct stat st;
	size_t i;

	(void)state;
	tu_path(pki, sizeof(pki), dir, "pki");
	if (pki_init_dir(pki, names, 2, "http://fleet.example.com/crl", &err) !=
	    PKI_OK)
		fail_msg("init: %s", err.msg);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		tu_path(p, sizeof(p), pki, files[i].path);
		if (stat(p, &st) != 0)
			fail_msg("%s missing", files[i].path);
		assert_int_equal(st.st_mode & 0777, files[i].mode);
	}
	tu_path(p, sizeof(p), pki, "root/root.pem");
	tu_path(q, sizeof(q), pki, "server/server.pem");
	tu_sh_expect(": OK",
		     "openssl verify -x509_strict -purpose sslserver "
		     "-verify_ip 127.0.0.1 -CAfile '%s' '%s'",
		     p, q);
	tu_path(q, sizeof(q), pki, "server/server-chain.pem");
	tu_sh_expect(": OK",
		     "openssl verify -x509_strict -purpose sslserver "
		     "-verify_hostname fleet.example.com -CAfile '%s' '%s'",
		     p, q);
	tu_path(q, sizeof(q), pki, "issuing/issuing.pem");
	tu_sh_expect(": OK", "openssl verify -x509_strict -CAfile '%s' '%s'", p,
		     q);
	/* The bundle holds root and issuing CA. */
	tu_path(q, sizeof(q), pki, "ca-bundle.pem");
	out = tu_sh_out("grep -c 'BEGIN CERTIFICATE' '%s'", q);
	assert_int_equal(strtol(out, NULL, 10), 2);
	test_free(out);
	/* The key in issuing/ opens as a signer. */
	{
		struct pki_policy pol;
		struct pki_signer *s = NULL;

		pki_policy_default(&pol);
		tu_path(q, sizeof(q), pki, "issuing/issuing.pem");
		tu_path(r, sizeof(r), pki, "issuing/issuing.key");
		assert_int_equal(pki_signer_open(q, r, &pol, &s, &err), PKI_OK);
		pki_signer_free(s);
	}

	/* A second init is refused and changes nothing. */
	before = tu_sh_out("cd '%s' && find . -type f | sort | xargs sha256sum",
			   pki);
	assert_int_equal(pki_init_dir(pki, names, 2, NULL, &err),
			 PKI_ERR_EXISTS);
	assert_non_null(strstr(err.msg, "refusing"));
	after = tu_sh_out("cd '%s' && find . -type f | sort | xargs sha256sum",
			  pki);
	assert_string_equal(before, after);
	test_free(before);
	test_free(after);
	tu_rmtree(dir);
}

struct bad_case {
	const char *what;
	const char *name;
	size_t n;
	const char *crl;
	enum pki_result want;
};

static const struct bad_case bad_cases[] = {
	{"bad server name", "not a name", 1, NULL, PKI_ERR_ARG},
	{"no names", "x", 0, NULL, PKI_ERR_ARG},
	{"bad crl url", "fleet", 1, "ftp://x", PKI_ERR_ARG},
};

static void
test_bad_arguments_leave_nothing(void **state)
{
	struct pki_error err;
	char *dir = tu_tmpdir();
	char pki[4096];
	char *ls = NULL;
	size_t i;

	(void)state;
	tu_path(pki, sizeof(pki), dir, "pki");
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		if (pki_init_dir(pki, &bad_cases[i].name, bad_cases[i].n,
				 bad_cases[i].crl, &err) != bad_cases[i].want)
			fail_msg("case %s: %s", bad_cases[i].what, err.msg);
		ls = tu_sh_out("ls -A '%s' | wc -l", dir);
		assert_int_equal(strtol(ls, NULL, 10), 0);
		test_free(ls);
	}
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_oracle),
		cmocka_unit_test(test_bad_arguments_leave_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
