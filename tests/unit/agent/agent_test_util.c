/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the libfleetagent unit tests (agent_test_util.h): the state
 * directory every test works in and the CA the identity tests issue from,
 * made one way so that the tests differ only in what they check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_test_util.h"
#include "pki.h"

void
atu_state_dir(char *dir, size_t cap)
{
	assert_true(snprintf(dir, cap, "/tmp/agent-test.XXXXXX") < (int)cap);
	assert_non_null(mkdtemp(dir));
}

void
atu_rmtree(const char *dir)
{
	char cmd[128];

	assert_true(snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) <
		    (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
}

int
atu_dir_setup(void **state)
{
	char *dir = malloc(64);

	assert_non_null(dir);
	atu_state_dir(dir, 64);
	*state = dir;
	return 0;
}

int
atu_dir_teardown(void **state)
{
	atu_rmtree(*state);
	free(*state);
	return 0;
}

void
atu_ca_make(struct atu_ca *ca)
{
	struct pki_error e;

	memset(ca, 0, sizeof(*ca));
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &ca->key, &e), PKI_OK);
	assert_int_equal(
		pki_ca_create_root(ca->key, "test CA", 86400, &ca->cert, &e),
		PKI_OK);
}

void
atu_ca_free(struct atu_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	memset(ca, 0, sizeof(*ca));
}

char *
atu_ca_issue(const struct atu_ca *ca, EVP_PKEY *key, const char *id)
{
	struct pki_error e;
	X509 *cert = NULL;
	char *pem = NULL;
	size_t len;

	assert_int_equal(pki_cert_issue_device(ca->cert, ca->key, key, id, 3600,
					       NULL, &cert, &e),
			 PKI_OK);
	assert_int_equal(pki_cert_pem(&cert, 1, &pem, &len, &e), PKI_OK);
	X509_free(cert);
	return pem;
}

void
atu_fixture_init(struct atu_fixture *f)
{
	atu_state_dir(f->dir, sizeof(f->dir));
	atu_ca_make(&f->ca);
}

void
atu_fixture_fini(struct atu_fixture *f)
{
	atu_rmtree(f->dir);
	atu_ca_free(&f->ca);
}

int
atu_fixture_setup(void **state)
{
	struct atu_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	atu_fixture_init(f);
	*state = f;
	return 0;
}

int
atu_fixture_teardown(void **state)
{
	atu_fixture_fini(*state);
	free(*state);
	return 0;
}
