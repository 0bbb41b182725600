// SPDX-License-Identifier: Apache-2.0
/*
 * The net worker's signer client (ca/signer_client.c) against the real ca
 * process (ca/ca_process.c, forked, with a PKI made by pki_init_dir in a
 * temporary directory): many job threads issuing at once each get the
 * certificate made for THEIR device id (the pipelined answers are handed
 * out by request id), pings in between are answered, and once the ca has
 * exited a call fails at once ("closed the channel" or "unreachable"),
 * not after the 5 s timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca_process.h"
#include "ca/signer_client.h"
#include "config.h"
#include "pki.h"

#define THREADS 8
#define PER_THREAD 12

struct fixture {
	char dir[64];
	char pki[128];
	pid_t ca;
	struct signer_client *sc;
};

struct issuer_arg {
	struct signer_client *sc;
	int n;
	atomic_int *ok, *wrong, *failed;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A P-256 CSR as PEM (caller frees). */
static char *
csr_pem(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *pem;
	long len;

	assert_non_null(key);
	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(
				 X509_REQ_get_subject_name(req), "CN",
				 MBSTRING_ASC, (const unsigned char *)"t", -1,
				 -1, 0),
			 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	pem = strndup(data, (size_t)len);
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return pem;
}

/* The subject CN of a PEM certificate, into cn. */
static int
cert_cn(const char *pem, char *cn, size_t cap)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	int n = -1;

	if (x != NULL)
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, cn, (int)cap);
	X509_free(x);
	BIO_free(bio);
	return n > 0 ? 0 : -1;
}

static void *
issuer_main(void *p)
{
	struct issuer_arg *a = p;
	char *csr = csr_pem();

	for (int i = 0; i < PER_THREAD; i++) {
		struct signer_issued out;
		char id[40], cn[64], err[256];
		enum signer_status st;

		memset(&out, 0, sizeof(out));
		snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012x",
			 (unsigned)a->n, (unsigned)i);
		st = signer_issue_device(a->sc, csr, strlen(csr), id, 3600,
					 &out, err, sizeof(err));
		if (st != SIGNER_OK) {
			fprintf(stderr, "issue %s: %s\n", id, err);
			atomic_fetch_add(a->failed, 1);
		} else if (cert_cn(out.cert_pem, cn, sizeof(cn)) != 0 ||
			   strcmp(cn, id) != 0) {
			atomic_fetch_add(a->wrong, 1);
		} else {
			atomic_fetch_add(a->ok, 1);
		}
		signer_issued_free(&out);
	}
	free(csr);
	return NULL;
}

static int
setup(void **state)
{
	static struct fixture f;
	const char *names[] = {"localhost"};
	struct pki_error err;
	int sv[2];

	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/tmp/test_signer_client.XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.pki, sizeof(f.pki), "%s/pki", f.dir);
	if (pki_init_dir(f.pki, names, 1, NULL, &err) != PKI_OK) {
		fprintf(stderr, "pki_init_dir: %s\n", err.msg);
		return -1;
	}
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	f.ca = fork();
	assert_true(f.ca >= 0);
	if (f.ca == 0) {
		struct fleetd_config cfg;

		close(sv[0]);
		memset(&cfg, 0, sizeof(cfg));
		cfg.pki_dir = f.pki;
		cfg.cert_validity = 86400;
		_exit(ca_process_main(&sv[1], 1, &cfg, NULL, NULL));
	}
	close(sv[1]);
	f.sc = signer_client_new(sv[0]);
	assert_non_null(f.sc);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	if (f->ca > 0) {
		kill(f->ca, SIGTERM);
		waitpid(f->ca, NULL, 0);
	}
	signer_client_free(f->sc);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	return 0;
}

static void
test_concurrent_issues_get_their_own_answer(void **state)
{
	struct fixture *f = *state;
	pthread_t tids[THREADS];
	struct issuer_arg args[THREADS];
	atomic_int ok = 0, wrong = 0, failed = 0;
	char err[256];

	/* Ready: the ca answers a ping (it loads its key first). */
	for (int i = 0;
	     i < 50 && signer_ping(f->sc, err, sizeof(err)) != SIGNER_OK; i++)
		usleep(100000);
	assert_int_equal(signer_ping(f->sc, err, sizeof(err)), SIGNER_OK);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct issuer_arg){f->sc, i, &ok, &wrong, &failed};
		assert_int_equal(
			pthread_create(&tids[i], NULL, issuer_main, &args[i]),
			0);
	}
	/* Pings between the issues, from this thread. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(signer_ping(f->sc, err, sizeof(err)),
				 SIGNER_OK);
	for (int i = 0; i < THREADS; i++)
		pthread_join(tids[i], NULL);
	assert_int_equal(atomic_load(&failed), 0);
	assert_int_equal(atomic_load(&wrong), 0);
	assert_int_equal(atomic_load(&ok), THREADS * PER_THREAD);
}

static void
test_refused_csr_is_rejected(void **state)
{
	struct fixture *f = *state;
	struct signer_issued out;
	const char bad[] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
			   "-----END CERTIFICATE REQUEST-----\n";
	char err[256] = "";

	memset(&out, 0, sizeof(out));
	assert_int_equal(signer_issue_device(f->sc, bad, strlen(bad),
					     "00000000-0000-4000-8000-"
					     "000000000001",
					     3600, &out, err, sizeof(err)),
			 SIGNER_REJECTED);
	assert_true(err[0] != '\0');
}

static void
test_stopped_ca_fails_at_once(void **state)
{
	struct fixture *f = *state;
	struct signer_issued out;
	char err[256] = "", *csr = csr_pem();
	double t0;

	kill(f->ca, SIGTERM);
	waitpid(f->ca, NULL, 0);
	f->ca = 0;
	memset(&out, 0, sizeof(out));
	t0 = now_s();
	assert_int_equal(signer_issue_device(f->sc, csr, strlen(csr),
					     "00000000-0000-4000-8000-"
					     "000000000002",
					     3600, &out, err, sizeof(err)),
			 SIGNER_UNAVAILABLE);
	assert_true(now_s() - t0 < 2.0);
	assert_true(strstr(err, "closed") != NULL ||
		    strstr(err, "unreachable") != NULL);
	free(csr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_issues_get_their_own_answer),
		cmocka_unit_test(test_refused_csr_is_rejected),
		cmocka_unit_test(test_stopped_ca_fails_at_once),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
