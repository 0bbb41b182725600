/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity store: a complete identity loads; every state a kill can leave
 * behind (key only, certificates without identity.json, a certificate for
 * another key) reads as "not enrolled", and the key is reused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_int.h"
#include "agent_test_util.h"
#include "atomicfile.h"

#define DEV_ID "0b7c8d2e-4f1a-4c3b-9d5e-6f7a8b9c0d1e"

static char *
ca_pem(struct atu_fixture *f)
{
	struct pki_error e;
	char *pem = NULL;
	size_t len;

	assert_int_equal(pki_cert_pem(&f->ca.cert, 1, &pem, &len, &e), PKI_OK);
	return pem;
}

static void
path_of(struct atu_fixture *f, const char *name, char *out, size_t cap)
{
	assert_int_equal(agent_path(out, cap, f->dir, name), 0);
}

static void
test_complete_identity_loads(void **state)
{
	struct atu_fixture *f = *state;
	struct agent_identity id, loaded;
	char err[256], path[AGENT_PATH_MAX], *cert, *chain;
	EVP_PKEY *key = NULL;
	struct stat st;

	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 0);
	assert_int_equal(agent_identity_key(f->dir, &key, err, sizeof(err)), 0);
	path_of(f, AGENT_KEY_FILE, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	cert = atu_ca_issue(&f->ca, key, DEV_ID);
	chain = ca_pem(f);
	assert_int_equal(agent_identity_store(f->dir, key, DEV_ID,
					      "wss://localhost:1/agent/v1",
					      cert, chain, &id, err,
					      sizeof(err)),
			 0);
	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 1);
	assert_string_equal(loaded.device_id, DEV_ID);
	assert_string_equal(loaded.device_server, "wss://localhost:1/agent/v1");
	assert_string_equal(loaded.cert_serial, id.cert_serial);
	assert_true(loaded.not_after > 0);
	/* client.pem is the certificate followed by the chain */
	{
		char *text = NULL;
		size_t len;

		path_of(f, AGENT_CLIENT_FILE, path, sizeof(path));
		assert_int_equal(read_file_bounded(path, 65536, &text, &len,
						   err, sizeof(err)),
				 0);
		assert_memory_equal(text, cert, strlen(cert));
		assert_non_null(strstr(text + strlen(cert), chain));
		free(text);
	}
	free(cert);
	free(chain);
	EVP_PKEY_free(key);
}

/* Killed after the key was written: not enrolled, same key reused. */
static void
test_key_only_is_not_enrolled_and_key_reused(void **state)
{
	struct atu_fixture *f = *state;
	char err[256], id1[PKI_KEY_ID_LEN], id2[PKI_KEY_ID_LEN];
	struct agent_identity loaded;
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct pki_error e;

	assert_int_equal(agent_identity_key(f->dir, &k1, err, sizeof(err)), 0);
	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 0);
	assert_int_equal(agent_identity_key(f->dir, &k2, err, sizeof(err)), 0);
	assert_int_equal(pki_key_id(k1, id1, &e), PKI_OK);
	assert_int_equal(pki_key_id(k2, id2, &e), PKI_OK);
	assert_string_equal(id1, id2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

/* Killed after the certificates, before identity.json: not enrolled. */
static void
test_certs_without_identity_json_is_not_enrolled(void **state)
{
	struct atu_fixture *f = *state;
	char err[256], path[AGENT_PATH_MAX], *cert;
	struct agent_identity loaded;
	EVP_PKEY *key = NULL;

	assert_int_equal(agent_identity_key(f->dir, &key, err, sizeof(err)), 0);
	cert = atu_ca_issue(&f->ca, key, DEV_ID);
	path_of(f, AGENT_CERT_FILE, path, sizeof(path));
	assert_int_equal(atomic_write_file(path, cert, strlen(cert), 0644, err,
					   sizeof(err)),
			 0);
	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 0);
	free(cert);
	EVP_PKEY_free(key);
}

/* identity.json naming files that do not belong together: enroll again. */
static void
test_mismatched_files_are_not_an_identity(void **state)
{
	struct atu_fixture *f = *state;
	char err[256], path[AGENT_PATH_MAX], *cert, *other_cert;
	struct agent_identity id, loaded;
	EVP_PKEY *key = NULL, *other = NULL;
	struct pki_error e;

	assert_int_equal(agent_identity_key(f->dir, &key, err, sizeof(err)), 0);
	cert = atu_ca_issue(&f->ca, key, DEV_ID);
	assert_int_equal(agent_identity_store(f->dir, key, DEV_ID, NULL, cert,
					      "", &id, err, sizeof(err)),
			 0);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &other, &e), PKI_OK);
	other_cert = atu_ca_issue(&f->ca, other, DEV_ID);
	path_of(f, AGENT_CERT_FILE, path, sizeof(path));
	assert_int_equal(atomic_write_file(path, other_cert, strlen(other_cert),
					   0644, err, sizeof(err)),
			 0);
	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 0);
	assert_non_null(strstr(err, "not for the key"));
	/* a truncated identity.json is not an identity either */
	path_of(f, AGENT_IDENTITY_FILE, path, sizeof(path));
	assert_int_equal(atomic_write_file(path, "{\"device_id\":", 13, 0644,
					   err, sizeof(err)),
			 0);
	assert_int_equal(agent_identity_load(f->dir, &loaded, err, sizeof(err)),
			 0);
	free(cert);
	free(other_cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

/* A certificate for another key is refused and nothing is committed. */
static void
test_store_refuses_foreign_certificate(void **state)
{
	struct atu_fixture *f = *state;
	char err[256], path[AGENT_PATH_MAX], *cert;
	struct agent_identity id;
	EVP_PKEY *key = NULL, *other = NULL;
	struct pki_error e;

	assert_int_equal(agent_identity_key(f->dir, &key, err, sizeof(err)), 0);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &other, &e), PKI_OK);
	cert = atu_ca_issue(&f->ca, other, DEV_ID);
	assert_int_equal(agent_identity_store(f->dir, key, DEV_ID, NULL, cert,
					      "", &id, err, sizeof(err)),
			 -1);
	path_of(f, AGENT_IDENTITY_FILE, path, sizeof(path));
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(agent_identity_store(f->dir, key, "not-a-uuid", NULL,
					      cert, "", &id, err, sizeof(err)),
			 -1);
	free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_complete_identity_loads,
						atu_fixture_setup,
						atu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_key_only_is_not_enrolled_and_key_reused,
			atu_fixture_setup, atu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_certs_without_identity_json_is_not_enrolled,
			atu_fixture_setup, atu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_mismatched_files_are_not_an_identity,
			atu_fixture_setup, atu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_store_refuses_foreign_certificate,
			atu_fixture_setup, atu_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
