// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/csr.c: CSRs made by pki_csr_create pass the server
 * check and openssl's own `req -verify`; broken signatures, disallowed or
 * small keys, oversized, garbage, truncated and trailing-byte inputs are
 * refused with the right code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki_test_util.h"
#include "pki_int.h"

struct key_case {
	const char *what;
	const char *alg;
	const char *arg;
	size_t bits;
	bool allow_rsa;
	unsigned allowed;
	enum pki_result want;
};

static const struct key_case key_cases[] = {
	{"p256", "EC", "P-256", 0, false, 0, PKI_OK},
	{"p384", "EC", "P-384", 0, false, 0, PKI_OK},
	{"ed25519", "ED25519", NULL, 0, false, 0, PKI_OK},
	{"secp256k1", "EC", "secp256k1", 0, false, 0, PKI_ERR_POLICY},
	{"p521", "EC", "P-521", 0, false, 0, PKI_ERR_POLICY},
	{"rsa1024", "RSA", NULL, 1024, false, 0, PKI_ERR_POLICY},
	{"rsa1024 allowed", "RSA", NULL, 1024, true, 0, PKI_ERR_POLICY},
	{"rsa2048 allowed", "RSA", NULL, 2048, true, 0, PKI_ERR_POLICY},
	{"rsa3072 not allowed", "RSA", NULL, 3072, false, 0, PKI_ERR_POLICY},
	{"rsa3072 allowed", "RSA", NULL, 3072, true, 0, PKI_OK},
	{"ed25519 not in mask", "ED25519", NULL, 0, false, PKI_KEY_P256,
	 PKI_ERR_POLICY},
};

static void
test_key_policy(void **state)
{
	struct pki_policy pol;
	struct pki_error err;
	X509_REQ *req = NULL;
	char *pem = NULL;
	size_t len = 0, i;

	(void)state;
	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		const struct key_case *c = &key_cases[i];

		pki_policy_default(&pol);
		pol.allow_rsa = c->allow_rsa;
		if (c->allowed != 0)
			pol.allowed_keys = c->allowed;
		pem = tu_csr_pem(c->alg, c->arg, c->bits, &len);
		req = NULL;
		err.msg[0] = '\0';
		if (pki_csr_parse_check(pem, len, &pol, &req, &err) != c->want)
			fail_msg("case %s: %s", c->what, err.msg);
		if (c->want == PKI_OK) {
			assert_non_null(req);
			X509_REQ_free(req);
		} else {
			assert_null(req);
			assert_true(strlen(err.msg) > 0);
		}
		test_free(pem);
	}
}

static void
test_openssl_accepts_our_csr(void **state)
{
	char *dir = tu_tmpdir();
	char path[4096];
	char *pem = NULL;
	size_t len = 0;

	(void)state;
	pem = tu_csr_pem("EC", "P-256", 0, &len);
	tu_path(path, sizeof(path), dir, "req.pem");
	tu_write(path, pem, len);
	assert_int_equal(tu_sh("openssl req -in '%s' -verify -noout "
			       ">/dev/null 2>&1",
			       path),
			 0);
	test_free(pem);
	tu_rmtree(dir);
}

enum mangle {
	M_NONE,
	M_DER,
	M_FLIP_SIG,
	M_FLIP_SUBJECT,
	M_TRUNC_DER,
	M_TRUNC_PEM,
	M_TRAILING,
	M_GARBAGE,
	M_EMPTY,
	M_HUGE,
	M_PEM_BODY_GARBAGE,
};

struct input_case {
	const char *what;
	enum mangle how;
	enum pki_result want;
};

static const struct input_case input_cases[] = {
	{"pem", M_NONE, PKI_OK},
	{"der", M_DER, PKI_OK},
	{"broken signature", M_FLIP_SIG, PKI_ERR_SIGNATURE},
	{"changed subject", M_FLIP_SUBJECT, PKI_ERR_SIGNATURE},
	{"truncated der", M_TRUNC_DER, PKI_ERR_PARSE},
	{"truncated pem", M_TRUNC_PEM, PKI_ERR_PARSE},
	{"trailing bytes", M_TRAILING, PKI_ERR_PARSE},
	{"garbage", M_GARBAGE, PKI_ERR_PARSE},
	{"empty", M_EMPTY, PKI_ERR_PARSE},
	{"1 MiB", M_HUGE, PKI_ERR_TOO_LARGE},
	{"pem with garbage body", M_PEM_BODY_GARBAGE, PKI_ERR_PARSE},
};

/* Build the input of case c from a good CSR; test_malloc()ed. */
static unsigned char *
mangle(const char *pem, size_t pem_len, enum mangle how, size_t *out_len)
{
	static const char garbage_pem[] =
		"-----BEGIN CERTIFICATE REQUEST-----\n"
		"bm90IGEgY3NyIGF0IGFsbA==\n"
		"-----END CERTIFICATE REQUEST-----\n";
	unsigned char *der = NULL, *buf = NULL;
	size_t der_len = 0, i;
	const unsigned char *cn = NULL;

	der = tu_csr_der(pem, pem_len, &der_len);
	switch (how) {
	case M_NONE:
	case M_TRUNC_PEM:
		buf = test_malloc(pem_len);
		memcpy(buf, pem, pem_len);
		*out_len = how == M_NONE ? pem_len : pem_len / 2;
		break;
	case M_DER:
	case M_FLIP_SIG:
	case M_FLIP_SUBJECT:
	case M_TRUNC_DER:
	case M_TRAILING:
		buf = test_malloc(der_len + 4);
		memcpy(buf, der, der_len);
		*out_len = der_len;
		if (how == M_FLIP_SIG)
			buf[der_len - 1] ^= 0x01;
		if (how == M_TRUNC_DER)
			*out_len = der_len - 10;
		if (how == M_TRAILING) {
			memset(buf + der_len, 0, 4);
			*out_len = der_len + 4;
		}
		if (how == M_FLIP_SUBJECT) {
			for (i = 0; i + 6 <= der_len; i++) {
				if (memcmp(buf + i, "device", 6) == 0) {
					cn = buf + i;
					break;
				}
			}
			assert_non_null(cn);
			buf[i] = 'D';
		}
		break;
	case M_GARBAGE:
		buf = test_malloc(512);
		for (i = 0; i < 512; i++)
			buf[i] = (unsigned char)(i * 131 + 7);
		buf[0] = 0x30; /* looks like a SEQUENCE */
		*out_len = 512;
		break;
	case M_EMPTY:
		buf = test_malloc(1);
		*out_len = 0;
		break;
	case M_HUGE:
		*out_len = 1024 * 1024;
		buf = test_malloc(*out_len);
		memset(buf, 'A', *out_len);
		memcpy(buf, pem, pem_len);
		break;
	case M_PEM_BODY_GARBAGE:
		*out_len = sizeof(garbage_pem) - 1;
		buf = test_malloc(*out_len);
		memcpy(buf, garbage_pem, *out_len);
		break;
	}
	test_free(der);
	return buf;
}

static void
test_inputs(void **state)
{
	struct pki_policy pol;
	struct pki_error err;
	X509_REQ *req = NULL;
	unsigned char *in = NULL;
	char *pem = NULL;
	size_t len = 0, in_len = 0, i;

	(void)state;
	pki_policy_default(&pol);
	pem = tu_csr_pem("EC", "P-256", 0, &len);
	for (i = 0; i < sizeof(input_cases) / sizeof(input_cases[0]); i++) {
		in = mangle(pem, len, input_cases[i].how, &in_len);
		req = NULL;
		err.msg[0] = '\0';
		if (pki_csr_parse_check(in, in_len, &pol, &req, &err) !=
		    input_cases[i].want)
			fail_msg("case %s: %s", input_cases[i].what, err.msg);
		if (input_cases[i].want != PKI_OK) {
			assert_null(req);
			assert_true(strlen(err.msg) > 0);
		}
		X509_REQ_free(req);
		test_free(in);
	}
	test_free(pem);
}

static void
test_arguments(void **state)
{
	struct pki_policy pol;
	struct pki_error err;
	X509_REQ *req = NULL;
	char *pem = NULL;
	size_t len = 0;

	(void)state;
	pki_policy_default(&pol);
	assert_int_equal(pki_csr_parse_check(NULL, 10, &pol, &req, &err),
			 PKI_ERR_ARG);
	assert_int_equal(pki_csr_parse_check("x", 1, NULL, &req, &err),
			 PKI_ERR_ARG);
	assert_int_equal(pki_csr_create(NULL, "x", &pem, &len, &err),
			 PKI_ERR_ARG);
	/* A tighter size limit applies to otherwise valid CSRs. */
	pem = tu_csr_pem("EC", "P-256", 0, &len);
	pol.max_csr_bytes = len - 1;
	assert_int_equal(pki_csr_parse_check(pem, len, &pol, &req, &err),
			 PKI_ERR_TOO_LARGE);
	assert_null(req);
	test_free(pem);
}

struct weak_case {
	const char *what;
	const char *make; /* shell: writes csr.pem (and key.pem) in cwd */
	enum pki_result want;
};

/*
 * Issue 14: CSRs that openssl itself happily makes but that we refuse on
 * every path (pki_csr_parse_check, the signer's pki_csr_check_spki and so
 * pki_signer_issue_device in the ca process), next to controls that pass
 * and whose certificate passes `openssl verify -x509_strict`.
 */
static const struct weak_case weak_cases[] = {
	{"explicit P-256 parameters",
	 "openssl ecparam -name prime256v1 -param_enc explicit -genkey "
	 "-noout -out key.pem && openssl req -new -key key.pem -sha256 "
	 "-subj /CN=x -out csr.pem",
	 PKI_ERR_POLICY},
	{"explicit P-384 parameters",
	 "openssl ecparam -name secp384r1 -param_enc explicit -genkey "
	 "-noout -out key.pem && openssl req -new -key key.pem -sha384 "
	 "-subj /CN=x -out csr.pem",
	 PKI_ERR_POLICY},
	{"SHA-1 signature (P-256)",
	 "openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
	 "openssl req -new -key key.pem -sha1 -subj /CN=x -out csr.pem",
	 PKI_ERR_POLICY},
	{"SHA-224 signature (P-256)",
	 "openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
	 "openssl req -new -key key.pem -sha224 -subj /CN=x -out csr.pem",
	 PKI_ERR_POLICY},
	{"control: named P-256, SHA-256",
	 "openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
	 "openssl req -new -key key.pem -sha256 -subj /CN=x -out csr.pem",
	 PKI_OK},
	{"control: named P-256, SHA-512",
	 "openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
	 "openssl req -new -key key.pem -sha512 -subj /CN=x -out csr.pem",
	 PKI_OK},
	{"control: Ed25519",
	 "openssl genpkey -algorithm ed25519 -out key.pem && openssl req -new "
	 "-key key.pem -subj /CN=x -out csr.pem",
	 PKI_OK},
};

#define WEAK_DEVICE "5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b5c"

static void
test_weak_csrs(void **state)
{
	struct tu_ca ca;
	struct pki_policy pol;
	struct pki_error err;
	struct pki_signer *sg = NULL;
	struct pki_issued res;
	X509_REQ *req = NULL;
	X509 *leaf = NULL;
	unsigned char *spki = NULL;
	char path[4096], *pem = NULL, *out = NULL;
	size_t i, len = 0, spki_len = 0;

	(void)state;
	tu_ca_setup(&ca);
	pki_policy_default(&pol);
	assert_int_equal(pki_signer_new(ca.iss, ca.iss_key, &pol, &sg, &err),
			 PKI_OK);
	tu_path(path, sizeof(path), ca.dir, "csr.pem");
	for (i = 0; i < sizeof(weak_cases) / sizeof(weak_cases[0]); i++) {
		const struct weak_case *c = &weak_cases[i];

		if (tu_sh("cd '%s' && rm -f key.pem csr.pem && (%s) "
			  ">/dev/null 2>&1",
			  ca.dir, c->make) != 0)
			fail_msg("%s: openssl could not make it", c->what);
		pem = tu_read(path, &len);
		err.msg[0] = '\0';
		req = NULL;
		if (pki_csr_parse_check(pem, len, &pol, &req, &err) != c->want)
			fail_msg("%s: parse_check: %s", c->what, err.msg);
		X509_REQ_free(req);
		err.msg[0] = '\0';
		spki = NULL;
		if (pki_csr_check_spki(pem, len, &pol, NULL, &spki, &spki_len,
				       &err) != c->want)
			fail_msg("%s: check_spki: %s", c->what, err.msg);
		free(spki);
		memset(&res, 0, sizeof(res));
		err.msg[0] = '\0';
		if (pki_signer_issue_device(sg, pem, len, WEAK_DEVICE, 0, &res,
					    &err) != c->want)
			fail_msg("%s: signer: %s", c->what, err.msg);
		if (c->want != PKI_OK) {
			assert_null(res.cert_pem);
			assert_true(strlen(err.msg) > 0);
		} else {
			assert_int_equal(pki_cert_parse(res.cert_der,
							res.cert_der_len, &leaf,
							&err),
					 PKI_OK);
			out = NULL;
			if (tu_openssl_verify(ca.dir, ca.root, ca.iss, leaf,
					      "sslclient", NULL, &out) != 0)
				fail_msg("%s: verify -x509_strict: %s", c->what,
					 out);
			test_free(out);
			X509_free(leaf);
			leaf = NULL;
		}
		pki_issued_clear(&res);
		test_free(pem);
	}
	pki_signer_free(sg);
	tu_ca_teardown(&ca);
}

struct der_case {
	const char *what;
	unsigned char in[8];
	size_t len;
	bool ok;
	size_t content_len; /* when ok */
};

/* The strict DER reader the signer's CSR walk uses: short and long
 * lengths in shortest form only, never past the end of the input. */
static const struct der_case der_cases[] = {
	{"empty", {0}, 0, false, 0},
	{"tag only", {0x30}, 1, false, 0},
	{"wrong tag", {0x31, 0x00}, 2, false, 0},
	{"empty sequence", {0x30, 0x00}, 2, true, 0},
	{"short form", {0x30, 0x02, 0x05, 0x00}, 4, true, 2},
	{"content missing", {0x30, 0x03, 0x05, 0x00}, 4, false, 0},
	{"indefinite", {0x30, 0x80, 0x00, 0x00}, 4, false, 0},
	{"long form for 2", {0x30, 0x81, 0x02, 0x05, 0x00}, 5, false, 0},
	{"long form length cut", {0x30, 0x82, 0x01}, 3, false, 0},
	{"leading zero length", {0x30, 0x82, 0x00, 0x80}, 4, false, 0},
	{"5 length octets", {0x30, 0x85, 1, 0, 0, 0, 0}, 7, false, 0},
	{"long length, short input", {0x30, 0x81, 0x80, 0x00}, 4, false, 0},
};

static void
test_der_reader(void **state)
{
	struct pki_der in, val, tlv;
	unsigned char big[3 + 200];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(der_cases) / sizeof(der_cases[0]); i++) {
		const struct der_case *c = &der_cases[i];

		in.p = c->in;
		in.len = c->len;
		if (pki_der_get(&in, 0x30, &val, &tlv) != c->ok)
			fail_msg("case %s", c->what);
		if (!c->ok) {
			assert_ptr_equal(in.p, c->in); /* untouched */
			assert_int_equal(in.len, c->len);
			continue;
		}
		assert_int_equal(val.len, c->content_len);
		assert_int_equal(tlv.len, c->len);
		assert_int_equal(in.len, 0);
	}
	/* 200 octets in the long form, then every truncation of it. */
	memset(big, 0, sizeof(big));
	big[0] = 0x04;
	big[1] = 0x81;
	big[2] = 200;
	for (n = 0; n <= sizeof(big); n++) {
		in.p = big;
		in.len = n;
		assert_int_equal(pki_der_get(&in, 0x04, &val, NULL),
				 n == sizeof(big));
	}
	assert_int_equal(val.len, 200);
	assert_ptr_equal(val.p, big + 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_policy),
		cmocka_unit_test(test_openssl_accepts_our_csr),
		cmocka_unit_test(test_inputs),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_der_reader),
		cmocka_unit_test(test_weak_csrs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
