// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for pki/signer.c, the issuance path the `ca` process serves:
 * policy applied to every request, nothing copied from the CSR (a CSR
 * asking for CA:true, keyCertSign and extra SANs gets a plain device
 * certificate), chains accepted by `openssl verify -x509_strict -purpose
 * sslclient`, and a CRL that makes openssl reject a revoked certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki_test_util.h"

#define DEVICE_ID "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"
#define CRL_URL "https://fleet.example.com/crl/v1/devices.crl"

struct fixture {
	struct tu_ca ca;
	struct pki_signer *signer;
};

static int
setup(void **state)
{
	struct fixture *f = test_malloc(sizeof(*f));
	struct pki_policy pol;
	struct pki_error err;

	tu_ca_setup(&f->ca);
	pki_policy_default(&pol);
	pol.crl_url = CRL_URL;
	f->signer = NULL;
	if (pki_signer_open(f->ca.iss_pem, f->ca.iss_key_path, &pol, &f->signer,
			    &err) != PKI_OK)
		fail_msg("signer: %s", err.msg);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pki_signer_free(f->signer);
	tu_ca_teardown(&f->ca);
	test_free(f);
	return 0;
}

/* A CSR that asks for everything we must not grant; PEM, test_malloc. */
static char *
evil_csr(size_t *len)
{
	static const struct {
		int nid;
		const char *value;
	} asks[] = {
		{NID_basic_constraints, "critical,CA:TRUE"},
		{NID_key_usage,
		 "critical,keyCertSign,cRLSign,digitalSignature"},
		{NID_ext_key_usage, "serverAuth,codeSigning"},
		{NID_subject_alt_name,
		 "DNS:fleet.example.com,URI:urn:fleet:device:"
		 "00000000-0000-4000-8000-000000000000,IP:10.0.0.1"},
	};
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_NAME *name = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long n;
	size_t i;

	assert_non_null(key);
	for (i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_nconf_nid(
			NULL, NULL, asks[i].nid, asks[i].value);

		assert_non_null(e);
		assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
	}
	assert_int_equal(X509_NAME_add_entry_by_txt(
				 name, "CN", MBSTRING_UTF8,
				 (const unsigned char *)"Evil Root CA", -1, -1,
				 0),
			 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_int_equal(X509_REQ_add1_attr_by_txt(
				 req, "challengePassword", MBSTRING_UTF8,
				 (const unsigned char *)"letmein", -1),
			 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	out = test_malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	X509_NAME_free(name);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return out;
}

enum input {
	IN_P256,
	IN_P256_DER,
	IN_EVIL,
	IN_RSA1024,
	IN_HUGE,
	IN_GARBAGE,
	IN_BROKEN_SIG,
	IN_TRUNC_PEM
};

struct issue_case {
	const char *what;
	enum input in;
	const char *id;
	int64_t validity;
	enum pki_result want;
	int64_t want_validity;
};

static const struct issue_case issue_cases[] = {
	{"default validity", IN_P256, DEVICE_ID, 0, PKI_OK,
	 PKI_DEFAULT_VALIDITY},
	{"one hour, DER", IN_P256_DER, DEVICE_ID, 3600, PKI_OK, 3600},
	{"maximum validity", IN_P256, DEVICE_ID, PKI_DEFAULT_MAX_VALIDITY,
	 PKI_OK, PKI_DEFAULT_MAX_VALIDITY},
	{"evil CSR gets a plain certificate", IN_EVIL, DEVICE_ID, 0, PKI_OK,
	 PKI_DEFAULT_VALIDITY},
	{"validity above maximum", IN_P256, DEVICE_ID,
	 PKI_DEFAULT_MAX_VALIDITY + 1, PKI_ERR_POLICY, 0},
	{"negative validity", IN_P256, DEVICE_ID, -5, PKI_ERR_POLICY, 0},
	{"uppercase device id", IN_P256, "6F1C2D3E-4B5A-4C6D-8E7F-90A1B2C3D4E5",
	 0, PKI_ERR_ARG, 0},
	{"no device id", IN_P256, NULL, 0, PKI_ERR_ARG, 0},
	{"device id with NUL-free junk", IN_P256,
	 "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5x", 0, PKI_ERR_ARG, 0},
	{"rsa 1024", IN_RSA1024, DEVICE_ID, 0, PKI_ERR_POLICY, 0},
	{"1 MiB CSR", IN_HUGE, DEVICE_ID, 0, PKI_ERR_TOO_LARGE, 0},
	{"garbage", IN_GARBAGE, DEVICE_ID, 0, PKI_ERR_PARSE, 0},
	{"truncated PEM", IN_TRUNC_PEM, DEVICE_ID, 0, PKI_ERR_PARSE, 0},
	{"broken signature", IN_BROKEN_SIG, DEVICE_ID, 0, PKI_ERR_SIGNATURE, 0},
};

static unsigned char *
make_input(enum input in, size_t *len)
{
	unsigned char *buf = NULL, *p;
	char *pem = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	int n;

	switch (in) {
	case IN_P256:
		return (unsigned char *)tu_csr_pem("EC", "P-256", 0, len);
	case IN_TRUNC_PEM:
		buf = (unsigned char *)tu_csr_pem("EC", "P-256", 0, len);
		*len = *len - 40;
		return buf;
	case IN_EVIL:
		return (unsigned char *)evil_csr(len);
	case IN_RSA1024:
		return (unsigned char *)tu_csr_pem("RSA", NULL, 1024, len);
	case IN_HUGE:
		*len = 1024 * 1024;
		buf = test_malloc(*len);
		memset(buf, '\n', *len);
		return buf;
	case IN_GARBAGE:
		*len = 300;
		buf = test_malloc(*len);
		memset(buf, 0xa5, *len);
		return buf;
	case IN_P256_DER:
	case IN_BROKEN_SIG:
		pem = tu_csr_pem("EC", "P-256", 0, len);
		bio = BIO_new_mem_buf(pem, (int)*len);
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		assert_non_null(req);
		n = i2d_X509_REQ(req, NULL);
		buf = test_malloc((size_t)n);
		p = buf;
		assert_int_equal(i2d_X509_REQ(req, &p), n);
		*len = (size_t)n;
		if (in == IN_BROKEN_SIG)
			buf[n - 2] ^= 0x10;
		X509_REQ_free(req);
		BIO_free(bio);
		test_free(pem);
		return buf;
	}
	return NULL;
}

static void
test_issue(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	struct pki_issued res;
	X509 *x = NULL;
	unsigned char *in = NULL;
	char serial[PKI_SERIAL_HEX_MAX];
	char *out = NULL;
	size_t len = 0, i;

	for (i = 0; i < sizeof(issue_cases) / sizeof(issue_cases[0]); i++) {
		const struct issue_case *c = &issue_cases[i];

		in = make_input(c->in, &len);
		memset(&res, 0, sizeof(res));
		err.msg[0] = '\0';
		if (pki_signer_issue_device(f->signer, in, len, c->id,
					    c->validity, &res, &err) != c->want)
			fail_msg("case %s: %s", c->what, err.msg);
		test_free(in);
		if (c->want != PKI_OK) {
			assert_null(res.cert_pem);
			assert_true(strlen(err.msg) > 0);
			continue;
		}
		assert_int_equal(res.not_after - res.not_before,
				 c->want_validity + PKI_BACKDATE_SECONDS);
		assert_int_equal(pki_cert_parse(res.cert_der, res.cert_der_len,
						&x, &err),
				 PKI_OK);
		tu_check_device_cert(x, f->ca.iss, c->id, c->want_validity,
				     CRL_URL);
		assert_int_equal(
			pki_cert_serial_hex(x, serial, sizeof(serial), &err),
			PKI_OK);
		assert_string_equal(serial, res.serial_hex);
		X509_free(x);
		/* The PEM says the same as the DER. */
		assert_int_equal(pki_cert_parse(res.cert_pem, res.cert_pem_len,
						&x, &err),
				 PKI_OK);
		if (tu_openssl_verify(f->ca.dir, f->ca.root, f->ca.iss, x,
				      "sslclient", NULL, &out) != 0)
			fail_msg("case %s: %s", c->what, out);
		test_free(out);
		X509_free(x);
		pki_issued_clear(&res);
	}
	pki_issued_clear(NULL);
}

static void
test_crl_revokes(void **state)
{
	struct fixture *f = *state;
	struct pki_error err;
	struct pki_issued res;
	struct pki_revoked rev;
	unsigned char *csr = NULL, *der = NULL;
	char crl_path[4096], crl_pem[4096], leaf[4096], bundle[4096];
	X509 *x = NULL;
	X509 *chain[2];
	size_t len = 0;

	csr = make_input(IN_P256, &len);
	assert_int_equal(pki_signer_issue_device(f->signer, csr, len, DEVICE_ID,
						 3600, &res, &err),
			 PKI_OK);
	test_free(csr);
	memset(&rev, 0, sizeof(rev));
	snprintf(rev.serial_hex, sizeof(rev.serial_hex), "%s", res.serial_hex);
	rev.revoked_at = 1700000000;
	rev.reason = PKI_CRL_KEY_COMPROMISE;
	assert_int_equal(pki_signer_sign_crl(f->signer, &rev, 1, 5, 3600, &der,
					     &len, &err),
			 PKI_OK);
	tu_path(crl_path, sizeof(crl_path), f->ca.dir, "s.crl");
	tu_path(crl_pem, sizeof(crl_pem), f->ca.dir, "s-crl.pem");
	tu_path(leaf, sizeof(leaf), f->ca.dir, "leaf.pem");
	tu_path(bundle, sizeof(bundle), f->ca.dir, "bundle.pem");
	tu_write(crl_path, der, len);
	tu_write(leaf, res.cert_pem, res.cert_pem_len);
	chain[0] = f->ca.root;
	chain[1] = f->ca.iss;
	tu_write_certs(bundle, chain, 2);
	assert_int_equal(tu_sh("openssl crl -inform DER -in '%s' -out '%s' "
			       ">/dev/null 2>&1",
			       crl_path, crl_pem),
			 0);
	tu_sh_expect("certificate revoked",
		     "openssl verify -crl_check -CAfile '%s' -CRLfile "
		     "'%s' '%s'",
		     bundle, crl_pem, leaf);
	(void)x;
	free(der);
	pki_issued_clear(&res);
}

static void
test_open_failures(void **state)
{
	struct fixture *f = *state;
	struct pki_policy pol;
	struct pki_error err;
	struct pki_signer *s = NULL;
	EVP_PKEY *other = NULL;

	pki_policy_default(&pol);
	/* Key of the root with the issuing certificate. */
	assert_int_equal(
		pki_signer_new(f->ca.iss, f->ca.root_key, &pol, &s, &err),
		PKI_ERR_ARG);
	assert_null(s);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &other, &err), PKI_OK);
	assert_int_equal(pki_signer_new(f->ca.iss, other, &pol, &s, &err),
			 PKI_ERR_ARG);
	EVP_PKEY_free(other);
	assert_int_equal(pki_signer_open("/nonexistent.pem", f->ca.iss_key_path,
					 &pol, &s, &err),
			 PKI_ERR_IO);
	assert_int_equal(
		pki_signer_open(f->ca.iss_pem, f->ca.iss_pem, &pol, &s, &err),
		PKI_ERR_PARSE);
	pol.max_validity = 10;
	assert_int_equal(
		pki_signer_new(f->ca.iss, f->ca.iss_key, &pol, &s, &err),
		PKI_ERR_ARG);
	assert_null(s);
	assert_int_equal(
		pki_signer_issue_device(NULL, "x", 1, DEVICE_ID, 0, NULL, &err),
		PKI_ERR_ARG);
	pki_signer_free(NULL);
}

/*
 * The signer walks common CSRs itself instead of using OpenSSL's parser.
 * Whatever the input, it must reach the verdict pki_csr_parse_check
 * reaches, and on success certify exactly the key OpenSSL decodes from the
 * CSR, encoded as X509_set_pubkey would encode it. Returns the result.
 */
static enum pki_result
same_as_parser(struct pki_signer *s, const struct pki_policy *pol,
	       const unsigned char *in, size_t len, const char *what)
{
	struct pki_error err;
	struct pki_issued res;
	X509_REQ *req = NULL;
	X509 *x = NULL;
	unsigned char *want = NULL, *got = NULL;
	enum pki_result r_parse, r_issue;
	int n_want, n_got;

	memset(&res, 0, sizeof(res));
	r_parse = pki_csr_parse_check(in, len, pol, &req, &err);
	r_issue = pki_signer_issue_device(s, in, len, DEVICE_ID, 0, &res, &err);
	if (r_parse != r_issue)
		fail_msg("%s: parser says %s, signer %s (%s)", what,
			 pki_result_str(r_parse), pki_result_str(r_issue),
			 err.msg);
	if (r_issue == PKI_OK) {
		assert_int_equal(pki_cert_parse(res.cert_der, res.cert_der_len,
						&x, &err),
				 PKI_OK);
		n_want = i2d_PUBKEY(X509_REQ_get0_pubkey(req), &want);
		n_got = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
		assert_true(n_want > 0);
		assert_int_equal(n_got, n_want);
		assert_memory_equal(got, want, (size_t)n_want);
		OPENSSL_free(want);
		OPENSSL_free(got);
		X509_free(x);
	}
	X509_REQ_free(req);
	pki_issued_clear(&res);
	return r_issue;
}

struct walk_case {
	const char *what;
	const char *alg;
	const char *arg;
	size_t bits;
};

static const struct walk_case walk_cases[] = {
	{"p256", "EC", "P-256", 0},
	{"p384", "EC", "P-384", 0},
	{"ed25519", "ED25519", NULL, 0},
	{"rsa3072 (parser path)", "RSA", NULL, 3072},
	{"secp256k1 (parser path)", "EC", "secp256k1", 0},
};

/* Good CSRs (PEM and DER) of every key type, under policies that allow and
 * refuse them; the evil CSR; a BER length form; off-curve points. */
static void
test_walk_matches_parser(void **state)
{
	struct fixture *f = *state;
	struct pki_policy pol, narrow;
	struct pki_error err;
	struct pki_signer *rsa = NULL, *ed_only = NULL;
	unsigned char *der = NULL, *ber = NULL;
	char *pem = NULL;
	size_t len = 0, der_len = 0, i;

	pki_policy_default(&pol);
	pol.crl_url = CRL_URL;
	pol.allow_rsa = true;
	narrow = pol;
	narrow.allow_rsa = false;
	narrow.allowed_keys = PKI_KEY_ED25519;
	assert_int_equal(
		pki_signer_new(f->ca.iss, f->ca.iss_key, &pol, &rsa, &err),
		PKI_OK);
	assert_int_equal(pki_signer_new(f->ca.iss, f->ca.iss_key, &narrow,
					&ed_only, &err),
			 PKI_OK);
	for (i = 0; i < sizeof(walk_cases) / sizeof(walk_cases[0]); i++) {
		const struct walk_case *c = &walk_cases[i];
		enum pki_result want_narrow = strcmp(c->alg, "ED25519") == 0
						      ? PKI_OK
						      : PKI_ERR_POLICY;

		pem = tu_csr_pem(c->alg, c->arg, c->bits, &len);
		der = tu_csr_der(pem, len, &der_len);
		(void)same_as_parser(rsa, &pol, (unsigned char *)pem, len,
				     c->what);
		(void)same_as_parser(rsa, &pol, der, der_len, c->what);
		assert_int_equal(
			same_as_parser(ed_only, &narrow, der, der_len, c->what),
			want_narrow);
		test_free(der);
		test_free(pem);
	}
	pem = evil_csr(&len);
	assert_int_equal(same_as_parser(f->signer, &pol, (unsigned char *)pem,
					len, "evil"),
			 PKI_OK);
	test_free(pem);

	/* The outer length in a needless 3-octet form: not DER, the walk
	 * leaves it to OpenSSL, whatever OpenSSL decides stands. */
	pem = tu_csr_pem("EC", "P-256", 0, &len);
	der = tu_csr_der(pem, len, &der_len);
	assert_true(der[1] == 0x81 || der[1] == 0x82);
	ber = test_malloc(der_len + 2);
	ber[0] = 0x30;
	ber[1] = 0x83;
	ber[2] = 0;
	ber[3] = der[1] == 0x82 ? der[2] : 0;
	ber[4] = der[1] == 0x82 ? der[3] : der[2];
	memcpy(ber + 5, der + (der[1] == 0x82 ? 4 : 3),
	       der_len - (der[1] == 0x82 ? 4u : 3u));
	(void)same_as_parser(f->signer, &pol, ber,
			     der_len + (der[1] == 0x82 ? 1 : 2), "ber length");
	test_free(ber);

	/* The last octet of the point changed: no longer on the curve. */
	for (i = 0; i + 3 < der_len; i++)
		if (der[i] == 0x03 && der[i + 1] == 0x42 && der[i + 2] == 0 &&
		    der[i + 3] == 0x04)
			break;
	assert_true(i + 3 < der_len);
	der[i + 3 + 64] ^= 0x01;
	assert_int_equal(same_as_parser(f->signer, &pol, der, der_len,
					"point off the curve"),
			 PKI_ERR_PARSE);
	test_free(der);
	test_free(pem);
	pki_signer_free(ed_only);
	pki_signer_free(rsa);
}

/* Every truncation and every extension of a DER CSR is PKI_ERR_PARSE,
 * and every single-octet change gets the parser's verdict. */
static void
test_walk_mutations(void **state)
{
	static const unsigned char masks[] = {0x01, 0x80, 0xff};
	struct fixture *f = *state;
	struct pki_policy pol;
	unsigned char *der = NULL, *buf = NULL;
	char *pem = NULL, what[64];
	size_t len = 0, der_len = 0, i, m, k;
	size_t seen[PKI_ERR_CRYPTO + 1];
	enum pki_result r;

	pki_policy_default(&pol);
	for (k = 0; k < 3; k++) {
		memset(seen, 0, sizeof(seen));
		pem = k == 2 ? tu_csr_pem("ED25519", NULL, 0, &len)
			     : tu_csr_pem("EC", k == 0 ? "P-256" : "P-384", 0,
					  &len);
		der = tu_csr_der(pem, len, &der_len);
		buf = test_malloc(der_len + 8);
		for (i = 0; i < der_len; i++) {
			snprintf(what, sizeof(what), "key %zu, first %zu", k,
				 i);
			assert_int_equal(
				same_as_parser(f->signer, &pol, der, i, what),
				PKI_ERR_PARSE);
		}
		for (i = 1; i <= 8; i++) {
			memcpy(buf, der, der_len);
			memset(buf + der_len, (int)(i * 37), i);
			snprintf(what, sizeof(what), "key %zu, %zu more", k, i);
			assert_int_equal(same_as_parser(f->signer, &pol, buf,
							der_len + i, what),
					 PKI_ERR_PARSE);
		}
		for (i = 0; i < der_len; i++) {
			for (m = 0; m < sizeof(masks); m++) {
				memcpy(buf, der, der_len);
				buf[i] ^= masks[m];
				snprintf(what, sizeof(what),
					 "key %zu, octet %zu ^ %#x", k, i,
					 masks[m]);
				r = same_as_parser(f->signer, &pol, buf,
						   der_len, what);
				assert_true(r != PKI_OK);
				seen[r]++;
			}
		}
		/* The mutations reached the parse and the signature checks. */
		assert_true(seen[PKI_ERR_PARSE] > 0);
		assert_true(seen[PKI_ERR_SIGNATURE] > 0);
		test_free(buf);
		test_free(der);
		test_free(pem);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_crl_revokes),
		cmocka_unit_test(test_open_failures),
		cmocka_unit_test(test_walk_matches_parser),
		cmocka_unit_test(test_walk_mutations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
