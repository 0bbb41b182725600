// SPDX-License-Identifier: Apache-2.0
/*
 * Helpers for the libfleetpki unit tests (see pki_test_util.h). Test code:
 * runs the openssl command-line tool in scratch directories it removes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki_test_util.h"

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = test_malloc(4096);

	snprintf(dir, 4096, "%s/fleetpki-XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	assert_non_null(mkdtemp(dir));
	return dir;
}

void
tu_rmtree(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(tu_sh("rm -rf '%s'", dir), 0);
	test_free(dir);
}

void
tu_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

void
tu_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

char *
tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = test_malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

int
tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static char *sh_out_v(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

static char *
sh_out_v(const char *fmt, va_list ap)
{
	char body[8000];
	char cmd[8192];
	char *out = NULL;
	size_t cap = 1 << 16, n = 0, got;
	FILE *p;

	vsnprintf(body, sizeof(body), fmt, ap);
	snprintf(cmd, sizeof(cmd), "{ %s ; } 2>&1", body);
	p = popen(cmd, "r");
	assert_non_null(p);
	out = test_malloc(cap);
	/* Drain everything so the child never blocks on a full pipe. */
	do {
		char chunk[4096];

		got = fread(chunk, 1, sizeof(chunk), p);
		if (got > cap - 1 - n)
			got = cap - 1 - n;
		memcpy(out + n, chunk, got);
		n += got;
	} while (!feof(p) && !ferror(p));
	out[n] = '\0';
	pclose(p);
	return out;
}

char *
tu_sh_out(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = sh_out_v(fmt, ap);
	va_end(ap);
	return out;
}

void
tu_sh_expect(const char *want, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = sh_out_v(fmt, ap);
	va_end(ap);
	if (strstr(out, want) == NULL)
		fail_msg("no \"%s\" in: %s", want, out);
	test_free(out);
}

void
tu_write_certs(const char *path, X509 *const *certs, size_t n)
{
	char *pem = NULL;
	size_t len = 0;
	struct pki_error err;

	assert_int_equal(pki_cert_pem(certs, n, &pem, &len, &err), PKI_OK);
	tu_write(path, pem, len);
	free(pem);
}

void
tu_ca_setup(struct tu_ca *ca)
{
	struct pki_error err;

	memset(ca, 0, sizeof(*ca));
	ca->dir = tu_tmpdir();
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &ca->root_key, &err),
			 PKI_OK);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &ca->iss_key, &err),
			 PKI_OK);
	assert_int_equal(pki_ca_create_root(ca->root_key, "test root",
					    86400 * 365, &ca->root, &err),
			 PKI_OK);
	assert_int_equal(pki_ca_create_issuing(ca->root, ca->root_key,
					       ca->iss_key, "test issuing",
					       86400 * 365, &ca->iss, &err),
			 PKI_OK);
	tu_path(ca->root_pem, sizeof(ca->root_pem), ca->dir, "root.pem");
	tu_path(ca->iss_pem, sizeof(ca->iss_pem), ca->dir, "issuing.pem");
	tu_path(ca->iss_key_path, sizeof(ca->iss_key_path), ca->dir,
		"issuing.key");
	tu_write_certs(ca->root_pem, &ca->root, 1);
	tu_write_certs(ca->iss_pem, &ca->iss, 1);
	assert_int_equal(pki_key_save_private(ca->iss_key, ca->iss_key_path,
					      false, &err),
			 PKI_OK);
}

void
tu_ca_teardown(struct tu_ca *ca)
{
	X509_free(ca->iss);
	X509_free(ca->root);
	EVP_PKEY_free(ca->iss_key);
	EVP_PKEY_free(ca->root_key);
	tu_rmtree(ca->dir);
	memset(ca, 0, sizeof(*ca));
}

void
tu_check_device_cert(X509 *x, X509 *issuer, const char *id, int64_t validity,
		     const char *crl_url)
{
	char want_uri[128];
	char cn[128];
	BIGNUM *bn = NULL;
	BASIC_CONSTRAINTS *bc = NULL;
	ASN1_BIT_STRING *ku = NULL;
	EXTENDED_KEY_USAGE *eku = NULL;
	GENERAL_NAMES *san = NULL;
	CRL_DIST_POINTS *dps = NULL;
	const ASN1_OCTET_STRING *akid = NULL, *skid = NULL, *iss_skid = NULL;
	const GENERAL_NAME *gn = NULL;
	const ASN1_STRING *uri = NULL;
	time_t now = time(NULL);
	time_t nb, na;
	int crit = -1, i;

	/* Serial: positive, at most 128 bits, not tiny. */
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) <= 128 && BN_num_bits(bn) > 64);
	BN_free(bn);

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, id);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
				       X509_get_subject_name(issuer)),
			 0);

	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);

	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 0));
	for (i = 1; i < 9; i++)
		assert_false(ASN1_BIT_STRING_get_bit(ku, i));
	ASN1_BIT_STRING_free(ku);

	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	assert_non_null(eku);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)),
			 NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

	snprintf(want_uri, sizeof(want_uri), "urn:fleet:device:%s", id);
	san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	gn = sk_GENERAL_NAME_value(san, 0);
	assert_int_equal(gn->type, GEN_URI);
	uri = gn->d.uniformResourceIdentifier;
	assert_int_equal(ASN1_STRING_length(uri), strlen(want_uri));
	assert_memory_equal(ASN1_STRING_get0_data(uri), want_uri,
			    strlen(want_uri));
	GENERAL_NAMES_free(san);

	akid = X509_get0_authority_key_id(x);
	skid = X509_get0_subject_key_id(x);
	iss_skid = X509_get0_subject_key_id(issuer);
	assert_non_null(akid);
	assert_non_null(skid);
	assert_non_null(iss_skid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid, iss_skid), 0);

	dps = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
	if (crl_url == NULL) {
		assert_null(dps);
	} else {
		DIST_POINT *dp = NULL;

		assert_non_null(dps);
		assert_int_equal(sk_DIST_POINT_num(dps), 1);
		dp = sk_DIST_POINT_value(dps, 0);
		gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
		assert_int_equal(gn->type, GEN_URI);
		uri = gn->d.uniformResourceIdentifier;
		assert_int_equal(ASN1_STRING_length(uri), strlen(crl_url));
		assert_memory_equal(ASN1_STRING_get0_data(uri), crl_url,
				    strlen(crl_url));
		sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	}

	/* Only the extensions of the profile, nothing else. */
	assert_int_equal(X509_get_ext_count(x), crl_url != NULL ? 7 : 6);

	nb = now;
	na = now;
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &nb), -1);
	nb = now - PKI_BACKDATE_SECONDS - 60;
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &nb), 1);
	nb = now - PKI_BACKDATE_SECONDS + 60;
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &nb), -1);
	na = now + (time_t)validity - 60;
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &na), 1);
	na = now + (time_t)validity + 60;
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &na), -1);
}

int
tu_openssl_verify(const char *dir, X509 *root, X509 *issuing, X509 *leaf,
		  const char *purpose, const char *extra, char **out)
{
	char rp[4096], ip[4096], lp[4096];
	char *text = NULL;
	int st;

	tu_path(rp, sizeof(rp), dir, "verify-root.pem");
	tu_path(ip, sizeof(ip), dir, "verify-issuing.pem");
	tu_path(lp, sizeof(lp), dir, "verify-leaf.pem");
	tu_write_certs(rp, &root, 1);
	tu_write_certs(lp, &leaf, 1);
	if (issuing != NULL)
		tu_write_certs(ip, &issuing, 1);
	text = tu_sh_out("openssl verify -x509_strict -purpose %s %s "
			 "-CAfile '%s' %s%s%s '%s'; echo \"exit=$?\"",
			 purpose, extra != NULL ? extra : "", rp,
			 issuing != NULL ? "-untrusted '" : "",
			 issuing != NULL ? ip : "", issuing != NULL ? "'" : "",
			 lp);
	st = strstr(text, "exit=0") != NULL ? 0 : 1;
	if (out != NULL)
		*out = text;
	else
		test_free(text);
	return st;
}

int
tu_ca_state_setup(void **state)
{
	struct tu_ca *ca = test_malloc(sizeof(*ca));

	tu_ca_setup(ca);
	*state = ca;
	return 0;
}

int
tu_ca_state_teardown(void **state)
{
	struct tu_ca *ca = *state;

	tu_ca_teardown(ca);
	test_free(ca);
	return 0;
}

char *
tu_csr_pem(const char *alg, const char *arg, size_t bits, size_t *len)
{
	struct pki_error err;
	EVP_PKEY *key = NULL;
	char *pem = NULL, *out = NULL;

	if (bits > 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg, bits);
	else if (arg != NULL)
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg, arg);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	assert_non_null(key);
	assert_int_equal(pki_csr_create(key, "device", &pem, len, &err),
			 PKI_OK);
	out = test_malloc(*len + 1);
	memcpy(out, pem, *len + 1);
	free(pem);
	EVP_PKEY_free(key);
	return out;
}

unsigned char *
tu_csr_der(const char *pem, size_t pem_len, size_t *der_len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	X509_REQ *req = NULL;
	unsigned char *der = NULL, *p;
	int n;

	assert_non_null(bio);
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	assert_non_null(req);
	n = i2d_X509_REQ(req, NULL);
	assert_true(n > 0);
	der = test_malloc((size_t)n + 16);
	p = der;
	assert_int_equal(i2d_X509_REQ(req, &p), n);
	X509_REQ_free(req);
	BIO_free(bio);
	*der_len = (size_t)n;
	return der;
}
