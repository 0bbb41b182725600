// SPDX-License-Identifier: Apache-2.0
/*
 * pki_bench: how many device certificates the signer issues per second on
 * one core (CSR parse and check, build, sign, DER and PEM encode), printed
 * beside the raw ECDSA P-256 sign+verify rate measured in the same run, and
 * their ratio. A benchmark: it prints figures and asserts nothing.
 * Usage: pki_bench [seconds per measurement, default 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki.h"

#define DEVICE_ID "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
die(const char *what, const struct pki_error *err)
{
	fprintf(stderr, "pki_bench: %s: %s\n", what, err->msg);
	return 1;
}

/* Raw rate: one ECDSA P-256 signature over SHA-256 and its verification,
 * the two public-key operations every issue performs. */
static double
raw_rate(EVP_PKEY *key, double secs)
{
	static const unsigned char msg[256] = {1};
	struct pki_error err;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	double t0 = now_sec(), t;
	long n = 0;

	do {
		if (pki_sign_bytes(key, msg, sizeof(msg), &sig, &sig_len,
				   &err) != PKI_OK ||
		    pki_verify_bytes(key, msg, sizeof(msg), sig, sig_len,
				     &err) != PKI_OK) {
			fprintf(stderr, "pki_bench: raw: %s\n", err.msg);
			exit(1);
		}
		free(sig);
		n++;
		t = now_sec();
	} while (t - t0 < secs);
	return (double)n / (t - t0);
}

static double
issue_rate(struct pki_signer *s, const char *csr, size_t len, double secs)
{
	struct pki_error err;
	struct pki_issued res;
	double t0 = now_sec(), t;
	long n = 0;

	do {
		if (pki_signer_issue_device(s, csr, len, DEVICE_ID, 0, &res,
					    &err) != PKI_OK) {
			fprintf(stderr, "pki_bench: issue: %s\n", err.msg);
			exit(1);
		}
		pki_issued_clear(&res);
		n++;
		t = now_sec();
	} while (t - t0 < secs);
	return (double)n / (t - t0);
}

int
main(int argc, char **argv)
{
	struct pki_error err;
	struct pki_policy pol;
	struct pki_signer *signer = NULL;
	EVP_PKEY *root_key = NULL, *iss_key = NULL, *dev_key = NULL;
	X509 *root = NULL, *iss = NULL;
	char *csr = NULL;
	size_t csr_len = 0;
	double secs = 2.0, raw, issue;
	int rc = 1;

	if (argc > 1) {
		secs = strtod(argv[1], NULL);
		if (secs <= 0 || secs > 600) {
			fprintf(stderr, "usage: pki_bench [seconds]\n");
			return 2;
		}
	}
	pki_policy_default(&pol);
	pol.crl_url = "https://fleet.example.com/crl/v1/devices.crl";
	if (pki_key_generate(PKI_KEY_P256, &root_key, &err) != PKI_OK ||
	    pki_key_generate(PKI_KEY_P256, &iss_key, &err) != PKI_OK ||
	    pki_key_generate(PKI_KEY_P256, &dev_key, &err) != PKI_OK) {
		rc = die("keys", &err);
		goto out;
	}
	if (pki_ca_create_root(root_key, "bench root", 86400, &root, &err) !=
		    PKI_OK ||
	    pki_ca_create_issuing(root, root_key, iss_key, "bench issuing",
				  86400, &iss, &err) != PKI_OK ||
	    pki_signer_new(iss, iss_key, &pol, &signer, &err) != PKI_OK ||
	    pki_csr_create(dev_key, "device", &csr, &csr_len, &err) != PKI_OK) {
		rc = die("setup", &err);
		goto out;
	}
	/* Warm up both paths (provider and method caches). */
	(void)raw_rate(iss_key, secs / 10);
	(void)issue_rate(signer, csr, csr_len, secs / 10);
	raw = raw_rate(iss_key, secs);
	issue = issue_rate(signer, csr, csr_len, secs);
	printf("raw ECDSA P-256 sign+verify: %10.1f /s\n", raw);
	printf("device certificates issued:  %10.1f /s "
	       "(CSR check + sign + DER/PEM encode)\n",
	       issue);
	printf("ratio issue/raw:             %10.2f (target >= 0.60)\n",
	       issue / raw);
	rc = 0;
out:
	free(csr);
	pki_signer_free(signer);
	X509_free(iss);
	X509_free(root);
	EVP_PKEY_free(dev_key);
	EVP_PKEY_free(iss_key);
	EVP_PKEY_free(root_key);
	return rc;
}
