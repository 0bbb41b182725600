/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pki/pkcs7.c: the certs-only PKCS#7 of EST answers. What we make is read
 * by `openssl pkcs7 -print_certs` (the oracle an EST client would use),
 * what openssl makes (`crl2pkcs7 -nocrl`) we parse, and malformed input
 * (trailing bytes, truncation, bad base64, too many certificates) is
 * refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki_test_util.h"

static void
test_pkcs7_roundtrip_openssl(void **state)
{
	struct tu_ca *ca = *state;
	X509 *certs[2] = {ca->iss, ca->root};
	struct pki_error err;
	unsigned char *der = NULL, *bin = NULL;
	char *b64 = NULL;
	size_t der_len = 0, b64_len = 0, bin_len = 0, n = 0;
	char path[4096], path2[4096];
	X509 **back = NULL;

	assert_int_equal(pki_pkcs7_certs_der(certs, 2, &der, &der_len, &err),
			 PKI_OK);
	tu_path(path, sizeof(path), ca->dir, "p7.der");
	tu_write(path, der, der_len);
	tu_sh_expect("subject=CN",
		     "openssl pkcs7 -inform DER -in '%s' "
		     "-print_certs -noout",
		     path);
	/* Two certificates, in order. */
	assert_int_equal(tu_sh("test $(openssl pkcs7 -inform DER -in '%s' "
			       "-print_certs | grep -c BEGIN) = 2",
			       path),
			 0);
	assert_int_equal(
		pki_pkcs7_certs_parse(der, der_len, 4, &back, &n, &err),
		PKI_OK);
	assert_int_equal(n, 2);
	assert_int_equal(X509_cmp(back[0], ca->iss), 0);
	assert_int_equal(X509_cmp(back[1], ca->root), 0);
	pki_certs_free(back, n);

	/* Base64 with CRLF lines decodes (openssl base64 reads it too). */
	assert_int_equal(pki_pkcs7_certs_base64(certs, 1, &b64, &b64_len, &err),
			 PKI_OK);
	assert_non_null(strstr(b64, "\r\n"));
	assert_int_equal(pki_base64_decode(b64, b64_len, PKI_PKCS7_MAX_BYTES,
					   &bin, &bin_len, &err),
			 PKI_OK);
	tu_path(path2, sizeof(path2), ca->dir, "p7.b64");
	tu_write(path2, b64, b64_len);
	tu_sh_expect("subject=",
		     "tr -d '\\r' < '%s' | openssl base64 -d | "
		     "openssl pkcs7 -inform DER -print_certs "
		     "-noout",
		     path2);
	assert_int_equal(
		pki_pkcs7_certs_parse(bin, bin_len, 4, &back, &n, &err),
		PKI_OK);
	assert_int_equal(n, 1);
	pki_certs_free(back, n);
	free(bin);
	free(b64);
	free(der);
}

static void
test_pkcs7_parse_openssl_made(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	char pem[4096], p7[4096];
	unsigned char *der;
	size_t len = 0, n = 0;
	X509 **back = NULL;

	tu_path(pem, sizeof(pem), ca->dir, "chain.pem");
	tu_path(p7, sizeof(p7), ca->dir, "chain.p7");
	assert_int_equal(tu_sh("cat '%s' '%s' > '%s' && openssl crl2pkcs7 "
			       "-nocrl -certfile '%s' -outform DER -out '%s'",
			       ca->iss_pem, ca->root_pem, pem, pem, p7),
			 0);
	der = (unsigned char *)tu_read(p7, &len);
	assert_int_equal(pki_pkcs7_certs_parse(der, len, 4, &back, &n, &err),
			 PKI_OK);
	assert_int_equal(n, 2);
	pki_certs_free(back, n);
	/* At most one certificate wanted: too many. */
	assert_int_equal(pki_pkcs7_certs_parse(der, len, 1, &back, &n, &err),
			 PKI_ERR_TOO_LARGE);
	test_free(der);
}

static void
test_pkcs7_malformed(void **state)
{
	struct tu_ca *ca = *state;
	X509 *certs[1] = {ca->iss};
	struct pki_error err;
	unsigned char *der = NULL, *longer, *bin = NULL;
	size_t der_len = 0, n = 0, bin_len = 0;
	X509 **back = NULL;

	assert_int_equal(pki_pkcs7_certs_der(certs, 1, &der, &der_len, &err),
			 PKI_OK);
	longer = malloc(der_len + 1);
	assert_non_null(longer);
	memcpy(longer, der, der_len);
	longer[der_len] = 0;
	assert_int_equal(
		pki_pkcs7_certs_parse(longer, der_len + 1, 4, &back, &n, &err),
		PKI_ERR_PARSE);
	assert_int_equal(
		pki_pkcs7_certs_parse(der, der_len - 1, 4, &back, &n, &err),
		PKI_ERR_PARSE);
	assert_int_equal(pki_pkcs7_certs_parse("junk", 4, 4, &back, &n, &err),
			 PKI_ERR_PARSE);
	assert_int_equal(pki_pkcs7_certs_der(certs, 0, &bin, &bin_len, &err),
			 PKI_ERR_ARG);
	free(longer);
	free(der);

	assert_int_equal(pki_base64_decode("QUJD", 4, 16, &bin, &bin_len, &err),
			 PKI_OK);
	assert_int_equal(bin_len, 3);
	assert_memory_equal(bin, "ABC", 3);
	free(bin);
	assert_int_equal(
		pki_base64_decode("QU\r\nI=", 6, 16, &bin, &bin_len, &err),
		PKI_OK);
	assert_int_equal(bin_len, 2);
	free(bin);
	assert_int_equal(pki_base64_decode("QU*D", 4, 16, &bin, &bin_len, &err),
			 PKI_ERR_PARSE);
	assert_int_equal(
		pki_base64_decode("QUI=QUJD", 8, 16, &bin, &bin_len, &err),
		PKI_ERR_PARSE);
	assert_int_equal(pki_base64_decode("QUJ", 3, 16, &bin, &bin_len, &err),
			 PKI_ERR_PARSE);
	assert_int_equal(pki_base64_decode("", 0, 16, &bin, &bin_len, &err),
			 PKI_ERR_PARSE);
	assert_int_equal(
		pki_base64_decode("QUJDQUJD", 8, 3, &bin, &bin_len, &err),
		PKI_ERR_TOO_LARGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pkcs7_roundtrip_openssl,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_pkcs7_parse_openssl_made,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_pkcs7_malformed,
						tu_ca_state_setup,
						tu_ca_state_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
