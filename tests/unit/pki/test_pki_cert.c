// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/cert.c: root, issuing and server certificates and the
 * device profile. External oracle: `openssl verify -x509_strict` with the
 * sslclient and sslserver purposes, hostname and IP checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "pki_test_util.h"

#define DEVICE_ID "0b6f2c1e-4a59-4f7e-9d1c-3e2a7b8c9d01"
#define CRL_URL "http://fleet.example.com/crl/v1/issuing.crl"

static void
test_ca_profiles(void **state)
{
	struct tu_ca *ca = *state;
	BASIC_CONSTRAINTS *bc = NULL;
	char *out = NULL;

	bc = X509_get_ext_d2i(ca->iss, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(ca->root), 1);
	assert_int_equal(X509_check_issued(ca->root, ca->iss), X509_V_OK);
	/* The issuing CA itself passes a strict check against the root. */
	if (tu_openssl_verify(ca->dir, ca->root, NULL, ca->iss, "any", NULL,
			      &out) != 0)
		fail_msg("%s", out);
	test_free(out);
}

struct dev_case {
	const char *what;
	enum pki_key_type key;
	const char *id;
	int64_t validity;
	const char *crl_url;
	enum pki_result want;
};

static const struct dev_case dev_cases[] = {
	{"p256", PKI_KEY_P256, DEVICE_ID, 90 * 86400, CRL_URL, PKI_OK},
	{"p384 no crl", PKI_KEY_P384, DEVICE_ID, 3600, NULL, PKI_OK},
	{"ed25519", PKI_KEY_ED25519, DEVICE_ID, 86400, CRL_URL, PKI_OK},
	{"uppercase id", PKI_KEY_P256, "0B6F2C1E-4A59-4F7E-9D1C-3E2A7B8C9D01",
	 86400, NULL, PKI_ERR_ARG},
	{"braced id", PKI_KEY_P256, "{0b6f2c1e-4a59-4f7e-9d1c-3e2a7b8c9d01}",
	 86400, NULL, PKI_ERR_ARG},
	{"short id", PKI_KEY_P256, "0b6f2c1e", 86400, NULL, PKI_ERR_ARG},
	{"no dashes", PKI_KEY_P256, "0b6f2c1e4a594f7e9d1c3e2a7b8c9d01abcd",
	 86400, NULL, PKI_ERR_ARG},
	{"injection", PKI_KEY_P256, "0b6f2c1e-4a59-4f7e-9d1c-3e2a7b8c9d0,",
	 86400, NULL, PKI_ERR_ARG},
	{"zero validity", PKI_KEY_P256, DEVICE_ID, 0, NULL, PKI_ERR_ARG},
	{"empty crl url", PKI_KEY_P256, DEVICE_ID, 60, "", PKI_ERR_ARG},
};

static void
test_device_certs(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char *out = NULL;
	size_t i;

	for (i = 0; i < sizeof(dev_cases) / sizeof(dev_cases[0]); i++) {
		const struct dev_case *c = &dev_cases[i];

		assert_int_equal(pki_key_generate(c->key, &key, &err), PKI_OK);
		x = NULL;
		if (pki_cert_issue_device(ca->iss, ca->iss_key, key, c->id,
					  c->validity, c->crl_url, &x,
					  &err) != c->want)
			fail_msg("case %s: %s", c->what, err.msg);
		if (c->want != PKI_OK) {
			assert_null(x);
			EVP_PKEY_free(key);
			continue;
		}
		tu_check_device_cert(x, ca->iss, c->id, c->validity,
				     c->crl_url);
		if (tu_openssl_verify(ca->dir, ca->root, ca->iss, x,
				      "sslclient", NULL, &out) != 0)
			fail_msg("case %s: %s", c->what, out);
		test_free(out);
		/* A device certificate is not good for a TLS server. */
		assert_int_not_equal(tu_openssl_verify(ca->dir, ca->root,
						       ca->iss, x, "sslserver",
						       NULL, NULL),
				     0);
		X509_free(x);
		EVP_PKEY_free(key);
	}
}

static void
test_device_serials_differ(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	EVP_PKEY *key = NULL;
	X509 *a = NULL, *b = NULL;
	char sa[PKI_SERIAL_HEX_MAX], sb[PKI_SERIAL_HEX_MAX];

	assert_int_equal(pki_key_generate(PKI_KEY_P256, &key, &err), PKI_OK);
	assert_int_equal(pki_cert_issue_device(ca->iss, ca->iss_key, key,
					       DEVICE_ID, 60, NULL, &a, &err),
			 PKI_OK);
	assert_int_equal(pki_cert_issue_device(ca->iss, ca->iss_key, key,
					       DEVICE_ID, 60, NULL, &b, &err),
			 PKI_OK);
	assert_int_equal(pki_cert_serial_hex(a, sa, sizeof(sa), &err), PKI_OK);
	assert_int_equal(pki_cert_serial_hex(b, sb, sizeof(sb), &err), PKI_OK);
	assert_string_not_equal(sa, sb);
	assert_true(strlen(sa) <= 32 && strlen(sa) > 16);
	assert_int_equal(pki_cert_serial_hex(a, sa, 4, &err), PKI_ERR_ARG);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(key);
}

/* What `openssl x509 -serial -noout` prints for x, without "serial=". */
static void
openssl_serial(const char *dir, X509 *x, char *out, size_t cap)
{
	char path[4096], *text = NULL;
	size_t n;

	tu_path(path, sizeof(path), dir, "serial.pem");
	tu_write_certs(path, &x, 1);
	text = tu_sh_out("openssl x509 -in '%s' -noout -serial", path);
	assert_non_null(text);
	if (strncmp(text, "serial=", 7) != 0)
		fail_msg("openssl: %s", text);
	n = strcspn(text + 7, "\r\n");
	assert_true(n < cap);
	memcpy(out, text + 7, n);
	out[n] = '\0';
	test_free(text);
}

/*
 * Defect 6: serials are printed as openssl prints them, a leading zero
 * digit kept. Crafted serials cover the edges (a leading 0x0X octet, a
 * high bit that needs a sign octet in DER, one octet, 20 octets); issued
 * certificates are compared too, on both issuing paths (X509 and the
 * cached profile of the signer), whose hex must equal the certificate's.
 */
static void
test_serial_format(void **state)
{
	static const char *const crafted[] = {
		"06AFAD95C1E2D3F40718293A4B5C6D7E",
		"80FF0000000000000000000000000001",
		"0F",
		"01",
		"00FF",
		"0102030405060708090A0B0C0D0E0F1011121314",
	};
	static const char *const want[] = {
		"06AFAD95C1E2D3F40718293A4B5C6D7E",
		"80FF0000000000000000000000000001",
		"0F",
		"01",
		"FF",
		"0102030405060708090A0B0C0D0E0F1011121314",
	};
	struct tu_ca *ca = *state;
	struct pki_error err;
	struct pki_policy pol;
	struct pki_signer *sg = NULL;
	struct pki_issued res;
	EVP_PKEY *key = NULL;
	X509 *x = NULL, *y = NULL;
	BIGNUM *bn = NULL;
	char ours[PKI_SERIAL_HEX_MAX], theirs[PKI_SERIAL_HEX_MAX];
	char *csr = NULL;
	size_t i, csr_len = 0, zero_lead = 0;

	assert_int_equal(pki_key_generate(PKI_KEY_P256, &key, &err), PKI_OK);
	assert_int_equal(pki_cert_issue_device(ca->iss, ca->iss_key, key,
					       DEVICE_ID, 60, NULL, &x, &err),
			 PKI_OK);
	for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		y = X509_dup(x);
		assert_non_null(y);
		assert_true(BN_hex2bn(&bn, crafted[i]) > 0);
		assert_non_null(
			BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(y)));
		BN_free(bn);
		bn = NULL;
		/* Re-signing drops the cached encoding of the old serial. */
		assert_true(X509_sign(y, ca->iss_key, EVP_sha256()) > 0);
		assert_int_equal(
			pki_cert_serial_hex(y, ours, sizeof(ours), &err),
			PKI_OK);
		openssl_serial(ca->dir, y, theirs, sizeof(theirs));
		assert_string_equal(ours, want[i]);
		assert_string_equal(ours, theirs);
		X509_free(y);
	}
	X509_free(x);
	x = NULL;

	/* Issued serials: about one in sixteen starts with a zero digit. */
	pki_policy_default(&pol);
	assert_int_equal(pki_signer_new(ca->iss, ca->iss_key, &pol, &sg, &err),
			 PKI_OK);
	assert_int_equal(pki_csr_create(key, DEVICE_ID, &csr, &csr_len, &err),
			 PKI_OK);
	for (i = 0; i < 96; i++) {
		memset(&res, 0, sizeof(res));
		assert_int_equal(pki_signer_issue_device(sg, csr, csr_len,
							 DEVICE_ID, 0, &res,
							 &err),
				 PKI_OK);
		assert_int_equal(pki_cert_parse(res.cert_der, res.cert_der_len,
						&x, &err),
				 PKI_OK);
		assert_int_equal(
			pki_cert_serial_hex(x, ours, sizeof(ours), &err),
			PKI_OK);
		assert_string_equal(ours, res.serial_hex);
		assert_true(strlen(ours) % 2 == 0);
		assert_true(strspn(ours, "0123456789ABCDEF") == strlen(ours));
		if (ours[0] == '0')
			zero_lead++;
		if (i < 24 || ours[0] == '0') {
			openssl_serial(ca->dir, x, theirs, sizeof(theirs));
			assert_string_equal(ours, theirs);
		}
		X509_free(x);
		x = NULL;
		pki_issued_clear(&res);
	}
	(void)zero_lead;
	free(csr);
	pki_signer_free(sg);
	EVP_PKEY_free(key);
}

static void
test_server_cert(void **state)
{
	static const char *const names[] = {"fleet.example.com", "127.0.0.1",
					    "::1", "fleetd"};
	struct tu_ca *ca = *state;
	struct pki_error err;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char *out = NULL;

	assert_int_equal(pki_key_generate(PKI_KEY_P256, &key, &err), PKI_OK);
	assert_int_equal(pki_cert_create_server(ca->root, ca->root_key, key,
						names, 4, 86400, &x, &err),
			 PKI_OK);
	if (tu_openssl_verify(ca->dir, ca->root, NULL, x, "sslserver",
			      "-verify_hostname fleet.example.com", &out) != 0)
		fail_msg("%s", out);
	test_free(out);
	assert_int_equal(tu_openssl_verify(ca->dir, ca->root, NULL, x,
					   "sslserver", "-verify_ip 127.0.0.1",
					   NULL),
			 0);
	assert_int_equal(tu_openssl_verify(ca->dir, ca->root, NULL, x,
					   "sslserver", "-verify_ip ::1", NULL),
			 0);
	/* Oracle must be able to fail: a name not in the certificate. */
	assert_int_not_equal(
		tu_openssl_verify(ca->dir, ca->root, NULL, x, "sslserver",
				  "-verify_hostname evil.example", NULL),
		0);
	assert_int_not_equal(tu_openssl_verify(ca->dir, ca->root, NULL, x,
					       "sslclient", NULL, NULL),
			     0);
	X509_free(x);
	EVP_PKEY_free(key);
}

struct name_case {
	const char *name;
	enum pki_result want;
};

static const struct name_case name_cases[] = {
	{"fleet.example.com", PKI_OK}, {"10.0.0.1", PKI_OK},
	{"fe80::1", PKI_OK},	       {"", PKI_ERR_ARG},
	{"bad name", PKI_ERR_ARG},     {"a/b", PKI_ERR_ARG},
	{"-leading", PKI_ERR_ARG},     {"*.example.com", PKI_ERR_ARG},
};

static void
test_server_names(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	size_t i;

	assert_int_equal(pki_key_generate(PKI_KEY_P256, &key, &err), PKI_OK);
	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		x = NULL;
		if (pki_cert_create_server(ca->root, ca->root_key, key,
					   &name_cases[i].name, 1, 60, &x,
					   &err) != name_cases[i].want)
			fail_msg("name \"%s\": %s", name_cases[i].name,
				 err.msg);
		X509_free(x);
	}
	assert_int_equal(pki_cert_create_server(ca->root, ca->root_key, key,
						NULL, 0, 60, &x, &err),
			 PKI_ERR_ARG);
	EVP_PKEY_free(key);
}

static void
test_parse(void **state)
{
	struct tu_ca *ca = *state;
	struct pki_error err;
	X509 *x = NULL;
	char *pem = NULL;
	size_t len = 0;

	assert_int_equal(pki_cert_pem(&ca->iss, 1, &pem, &len, &err), PKI_OK);
	assert_int_equal(pki_cert_parse(pem, len, &x, &err), PKI_OK);
	assert_int_equal(X509_cmp(x, ca->iss), 0);
	X509_free(x);
	x = NULL;
	assert_int_equal(pki_cert_parse(pem, len / 2, &x, &err), PKI_ERR_PARSE);
	assert_int_equal(pki_cert_parse("\x30\x03\x02\x01", 4, &x, &err),
			 PKI_ERR_PARSE);
	assert_null(x);
	free(pem);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca_profiles,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_device_certs,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_device_serials_differ,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_serial_format,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_server_cert,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_server_names,
						tu_ca_state_setup,
						tu_ca_state_teardown),
		cmocka_unit_test_setup_teardown(test_parse, tu_ca_state_setup,
						tu_ca_state_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
