/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The life of the enrollment Idempotency-Key (agent/enroll.c): made and
 * written (0600) before the first attempt, the same key and the same body
 * bytes after a simulated restart (everything in memory dropped, read back
 * from the state directory), kept while identity.json is missing, removed
 * by agent_identity_store after the commit point, and made again when
 * device.key changed or the file is unreadable. The token never reaches
 * the state directory.
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
#include "fleetagent.h"

#define DEV_ID "0b7c8d2e-4f1a-4c3b-9d5e-6f7a8b9c0d1e"
#define TOKEN "fle_secret-enrollment-token-0123456789"

struct fixture {
	struct atu_fixture st;
	char path[AGENT_PATH_MAX]; /* st.dir/enroll.json */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	atu_fixture_init(&f->st);
	assert_int_equal(agent_path(f->path, sizeof(f->path), f->st.dir,
				    AGENT_ENROLL_FILE),
			 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	atu_fixture_fini(&f->st);
	free(f);
	return 0;
}

static char *
read_all(const char *path)
{
	char err[256], *text = NULL;
	size_t len;

	assert_int_equal(
		read_file_bounded(path, 65536, &text, &len, err, sizeof(err)),
		0);
	return text;
}

/* One "run" of the agent up to the request: key and pending request
 * loaded from (or made in) the state directory. Returns open's result. */
static int
run_open(struct fixture *f, const char *model, const char *labels_text,
	 EVP_PKEY **key, struct agent_enroll_pending *p, char **body)
{
	json_t *labels = NULL;
	char err[256];
	int rc;

	assert_int_equal(agent_identity_key(f->st.dir, key, err, sizeof(err)),
			 0);
	assert_int_equal(
		agent_labels_parse(labels_text, &labels, err, sizeof(err)), 0);
	memset(err, 'x', sizeof(err));
	rc = agent_enroll_pending_open(f->st.dir, *key, model, labels, p, err,
				       sizeof(err));
	json_decref(labels);
	assert_true(rc == 0 || rc == 1);
	*body = agent_enroll_body(p, TOKEN);
	assert_non_null(*body);
	return rc;
}

static void
drop(EVP_PKEY **key, struct agent_enroll_pending *p, char **body)
{
	EVP_PKEY_free(*key);
	*key = NULL;
	agent_enroll_pending_clear(p);
	OPENSSL_cleanse(*body, strlen(*body));
	free(*body);
	*body = NULL;
}

static void
test_key_made_once_and_reused_after_restart(void **state)
{
	struct fixture *f = *state;
	struct agent_enroll_pending p1, p2;
	EVP_PKEY *key = NULL;
	char *body1 = NULL, *body2 = NULL, *file, idem[SECRET_UUID_LEN];
	json_t *doc;
	struct stat st;

	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(run_open(f, "plc-x", "site=b7", &key, &p1, &body1), 0);
	assert_true(secret_is_uuid(p1.idem_key));
	/* Durable, private, and without the token. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	file = read_all(f->path);
	assert_null(strstr(file, TOKEN));
	assert_non_null(strstr(file, p1.idem_key));
	free(file);
	/* The body is the request with the token. */
	doc = json_loads(body1, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "token")),
			    TOKEN);
	assert_string_equal(json_string_value(json_object_get(doc, "model")),
			    "plc-x");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(doc, "labels"), "site")),
			    "b7");
	assert_non_null(strstr(json_string_value(json_object_get(doc, "csr")),
			       "BEGIN CERTIFICATE REQUEST"));
	json_decref(doc);
	memcpy(idem, p1.idem_key, sizeof(idem));

	/* A retry in the same run: same key, same bytes. */
	agent_enroll_pending_clear(&p1);
	OPENSSL_cleanse(body1, strlen(body1));
	free(body1);
	EVP_PKEY_free(key);
	key = NULL;
	assert_int_equal(run_open(f, "plc-x", "site=b7", &key, &p1, &body1), 1);
	assert_string_equal(p1.idem_key, idem);
	EVP_PKEY_free(key);
	key = NULL;

	/* Simulated restart (SIGKILL after the attempt): nothing survives
	 * but the state directory, and the configuration has changed in
	 * the meantime; the request is still the first one, byte for byte
	 * (the CSR's ECDSA signature is not made again). */
	assert_int_equal(run_open(f, "other", "site=zz", &key, &p2, &body2), 1);
	assert_string_equal(p2.idem_key, idem);
	assert_string_equal(body2, body1);
	drop(&key, &p1, &body1);
	drop(&key, &p2, &body2);
	assert_int_equal(access(f->path, F_OK), 0);
}

static void
test_removed_only_after_identity_commit(void **state)
{
	struct fixture *f = *state;
	struct agent_enroll_pending p;
	struct agent_identity id;
	struct pki_error e;
	EVP_PKEY *key = NULL;
	char *body = NULL, *pem = NULL, err[256];

	assert_int_equal(run_open(f, NULL, "", &key, &p, &body), 0);
	/* Not enrolled yet: the key stays. */
	assert_int_equal(agent_identity_load(f->st.dir, &id, err, sizeof(err)),
			 0);
	assert_int_equal(access(f->path, F_OK), 0);
	/* A store that fails (a certificate for another key) keeps it. */
	{
		EVP_PKEY *other = NULL;

		assert_int_equal(pki_key_generate(PKI_KEY_P256, &other, &e),
				 PKI_OK);
		pem = atu_ca_issue(&f->st.ca, other, DEV_ID);
		assert_int_equal(agent_identity_store(f->st.dir, key, DEV_ID,
						      NULL, pem, NULL, &id, err,
						      sizeof(err)),
				 -1);
		assert_int_equal(access(f->path, F_OK), 0);
		free(pem);
		EVP_PKEY_free(other);
	}
	/* The answer stored: identity.json written, then the key removed. */
	pem = atu_ca_issue(&f->st.ca, key, DEV_ID);
	assert_int_equal(agent_identity_store(f->st.dir, key, DEV_ID, NULL, pem,
					      NULL, &id, err, sizeof(err)),
			 0);
	assert_int_equal(agent_identity_load(f->st.dir, &id, err, sizeof(err)),
			 1);
	assert_int_equal(access(f->path, F_OK), -1);
	/* Removing what is gone is not an error. */
	assert_int_equal(
		agent_enroll_pending_remove(f->st.dir, err, sizeof(err)), 0);
	free(pem);
	drop(&key, &p, &body);
}

/* Killed between identity.json and removing enroll.json: the next start,
 * which finds the identity complete, removes the stale request. Not
 * enrolled: the next start keeps it for the retry. */
static void
test_next_start_removes_a_stale_request(void **state)
{
	struct fixture *f = *state;
	struct fleet_agent_config cfg;
	struct agent_enroll_pending p;
	struct fleet_agent *a;
	struct agent_identity id;
	EVP_PKEY *key = NULL;
	char *body = NULL, *pem = NULL, *saved, err[FLEET_AGENT_ERR_MAX];

	memset(&cfg, 0, sizeof(cfg));
	cfg.api_url = "https://127.0.0.1:1";
	cfg.ca_file = "/nonexistent/ca.pem";
	cfg.state_dir = f->st.dir;
	cfg.token = TOKEN;
	assert_int_equal(run_open(f, NULL, "", &key, &p, &body), 0);
	saved = read_all(f->path);
	a = fleet_agent_new(&cfg, err, sizeof(err));
	assert_non_null(a);
	assert_false(fleet_agent_enrolled(a));
	fleet_agent_free(a);
	assert_int_equal(access(f->path, F_OK), 0);

	pem = atu_ca_issue(&f->st.ca, key, DEV_ID);
	assert_int_equal(agent_identity_store(f->st.dir, key, DEV_ID, NULL, pem,
					      NULL, &id, err, sizeof(err)),
			 0);
	/* as if the kill came before the removal */
	assert_int_equal(atomic_write_file(f->path, saved, strlen(saved), 0600,
					   err, sizeof(err)),
			 0);
	a = fleet_agent_new(&cfg, err, sizeof(err));
	assert_non_null(a);
	assert_true(fleet_agent_enrolled(a));
	fleet_agent_free(a);
	assert_int_equal(access(f->path, F_OK), -1);
	free(pem);
	free(saved);
	drop(&key, &p, &body);
}

static void
test_new_device_key_or_bad_file_makes_a_new_request(void **state)
{
	struct fixture *f = *state;
	struct agent_enroll_pending p;
	EVP_PKEY *key = NULL;
	char *body = NULL, idem[SECRET_UUID_LEN], kpath[AGENT_PATH_MAX];
	char err[256];

	assert_int_equal(run_open(f, NULL, "", &key, &p, &body), 0);
	memcpy(idem, p.idem_key, sizeof(idem));
	drop(&key, &p, &body);
	/* device.key lost: the old CSR is for a key we no longer have. */
	assert_int_equal(
		agent_path(kpath, sizeof(kpath), f->st.dir, AGENT_KEY_FILE), 0);
	assert_int_equal(unlink(kpath), 0);
	assert_int_equal(agent_identity_key(f->st.dir, &key, err, sizeof(err)),
			 0);
	assert_int_equal(agent_enroll_pending_open(f->st.dir, key, NULL, NULL,
						   &p, err, sizeof(err)),
			 0);
	assert_non_null(strstr(err, "not for device.key"));
	assert_string_not_equal(p.idem_key, idem);
	memcpy(idem, p.idem_key, sizeof(idem));
	agent_enroll_pending_clear(&p);
	/* Garbage in the file: a new request, not a failure. */
	assert_int_equal(atomic_write_file(f->path, "{\"version\": 1", 13, 0600,
					   err, sizeof(err)),
			 0);
	assert_int_equal(agent_enroll_pending_open(f->st.dir, key, NULL, NULL,
						   &p, err, sizeof(err)),
			 0);
	assert_true(err[0] != '\0');
	assert_string_not_equal(p.idem_key, idem);
	agent_enroll_pending_clear(&p);
	EVP_PKEY_free(key);
}

static void
test_body_carries_any_printable_token(void **state)
{
	static const char *const tokens[] = {"fle_abc", "a\"b\\c", "x/y=+",
					     "\xc3\xa9t\xc3\xa9"};
	struct fixture *f = *state;
	struct agent_enroll_pending p;
	EVP_PKEY *key = NULL;
	char *body = NULL;
	json_error_t jerr;
	size_t i;

	assert_int_equal(run_open(f, NULL, "", &key, &p, &body), 0);
	free(body);
	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		json_t *doc;

		body = agent_enroll_body(&p, tokens[i]);
		assert_non_null(body);
		doc = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
		assert_non_null(doc);
		assert_string_equal(
			json_string_value(json_object_get(doc, "token")),
			tokens[i]);
		assert_string_equal(
			json_string_value(json_object_get(doc, "model")),
			"generic");
		assert_int_equal(json_object_size(doc), 4);
		json_decref(doc);
		free(body);
	}
	/* A control byte (a token file with a stray CR) is refused. */
	assert_null(agent_enroll_body(&p, "fle_abc\r"));
	agent_enroll_pending_clear(&p);
	EVP_PKEY_free(key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_key_made_once_and_reused_after_restart, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_removed_only_after_identity_commit, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_new_device_key_or_bad_file_makes_a_new_request,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_body_carries_any_printable_token, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_next_start_removes_a_stale_request, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
