// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/crl.c: CRLs verified by `openssl crl -CAfile` and
 * listed by `openssl crl -text` with their serials, reasons and crlNumber;
 * malformed entries are refused.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki_test_util.h"

static const struct pki_revoked good[] = {
	{"5a1f00d3c2b1a09f8e7d6c5b4a392817", 1700000000,
	 PKI_CRL_KEY_COMPROMISE},
	{"0123456789abcdef", 1700000100, PKI_CRL_SUPERSEDED},
	{"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 1700000200,
	 PKI_CRL_CESSATION_OF_OPERATION},
	{"42", 1700000300, PKI_CRL_UNSPECIFIED},
};

/* openssl prints serials in uppercase hex with an even number of digits. */
static void
openssl_serial(const char *hex, char *out, size_t cap)
{
	size_t n = strlen(hex), i, o = 0;

	if (n % 2 == 1)
		out[o++] = '0';
	for (i = 0; i < n && o + 1 < cap; i++)
		out[o++] = (char)toupper((unsigned char)hex[i]);
	out[o] = '\0';
}

static void
test_crl_oracle(void **state)
{
	static const char *const reasons[] = {"Key Compromise", "Superseded",
					      "Cessation Of Operation"};
	struct tu_ca *ca = *state;
	struct pki_error err;
	unsigned char *der = NULL;
	size_t len = 0, i;
	char path[4096], bundle[4096], want[64];
	char *text = NULL;
	X509 *chain[2];

	assert_int_equal(pki_crl_sign(ca->iss, ca->iss_key, good, 4, 17, 3600,
				      &der, &len, &err),
			 PKI_OK);
	tu_path(path, sizeof(path), ca->dir, "crl.der");
	tu_path(bundle, sizeof(bundle), ca->dir, "bundle.pem");
	tu_write(path, der, len);
	chain[0] = ca->root;
	chain[1] = ca->iss;
	tu_write_certs(bundle, chain, 2);

	text = tu_sh_out("openssl crl -inform DER -in '%s' -CAfile '%s' "
			 "-noout; echo \"exit=$?\"",
			 path, bundle);
	if (strstr(text, "verify OK") == NULL || strstr(text, "exit=0") == NULL)
		fail_msg("openssl crl: %s", text);
	test_free(text);
	/* The oracle fails with the wrong CA. */
	text = tu_sh_out("openssl crl -inform DER -in '%s' -CAfile '%s' "
			 "-noout",
			 path, ca->root_pem);
	assert_null(strstr(text, "verify OK"));
	test_free(text);

	text = tu_sh_out("openssl crl -inform DER -in '%s' -noout -text", path);
	for (i = 0; i < 4; i++) {
		openssl_serial(good[i].serial_hex, want, sizeof(want));
		if (strstr(text, want) == NULL)
			fail_msg("serial %s missing: %s", want, text);
	}
	for (i = 0; i < 3; i++)
		if (strstr(text, reasons[i]) == NULL)
			fail_msg("reason %s missing: %s", reasons[i], text);
	assert_null(strstr(text, "Unspecified"));
	assert_non_null(
		strstr(text, "X509v3 CRL Number: \n                17"));
	assert_non_null(strstr(text, "Next Update"));
	assert_non_null(strstr(text, "X509v3 Authority Key Identifier"));
	test_free(text);
	free(der);
}

static void
test_empty_crl(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	char path[4096];

	assert_int_equal(pki_crl_sign(ca->iss, ca->iss_key, NULL, 0, 1, 60,
				      &der, &len, &err),
			 PKI_OK);
	tu_path(path, sizeof(path), ca->dir, "empty.der");
	tu_write(path, der, len);
	tu_sh_expect("No Revoked Certificates",
		     "openssl crl -inform DER -in '%s' -CAfile '%s' "
		     "-noout -text",
		     path, ca->iss_pem);
	free(der);
}

struct bad_case {
	const char *what;
	struct pki_revoked entry;
	int64_t next;
	enum pki_result want;
};

static const struct bad_case bad_cases[] = {
	{"non-hex serial", {"12xz", 1700000000, 1}, 3600, PKI_ERR_ARG},
	{"empty serial", {"", 1700000000, 1}, 3600, PKI_ERR_ARG},
	{"serial too long (41 digits, no NUL)",
	 {"12345678901234567890123456789012345678901", 1700000000, 1},
	 3600,
	 PKI_ERR_ARG},
	{"reason 7", {"01", 1700000000, 7}, 3600, PKI_ERR_ARG},
	{"reason 11", {"01", 1700000000, 11}, 3600, PKI_ERR_ARG},
	{"negative reason", {"01", 1700000000, -1}, 3600, PKI_ERR_ARG},
	{"no time", {"01", 0, 1}, 3600, PKI_ERR_ARG},
	{"no next update", {"01", 1700000000, 1}, 0, PKI_ERR_ARG},
};

static void
test_bad_entries(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	unsigned char *der = NULL;
	size_t len = 0, i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		if (pki_crl_sign(ca->iss, ca->iss_key, &bad_cases[i].entry, 1,
				 2, bad_cases[i].next, &der, &len,
				 &err) != bad_cases[i].want)
			fail_msg("case %s: %s", bad_cases[i].what, err.msg);
		assert_null(der);
	}
	assert_int_equal(pki_crl_sign(NULL, ca->iss_key, NULL, 0, 1, 60, &der,
				      &len, &err),
			 PKI_ERR_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crl_oracle,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_empty_crl,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_bad_entries,
						tu_ca_state_setup,
						tu_ca_state_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
