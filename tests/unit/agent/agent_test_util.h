/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the libfleetagent unit tests: a scratch state directory and
 * a throwaway CA that issues device certificates. Test code only; every
 * failure is a cmocka assertion.
 */
#ifndef FLEET_AGENT_TEST_UTIL_H
#define FLEET_AGENT_TEST_UTIL_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A root CA: P-256 key and a self-signed certificate for one day. */
struct atu_ca {
	X509 *cert;
	EVP_PKEY *key;
};

/* mkdtemp("/tmp/agent-test.XXXXXX") into dir (cap >= 22 bytes). */
void atu_state_dir(char *dir, size_t cap);
/* rm -rf dir. */
void atu_rmtree(const char *dir);

/* cmocka setup/teardown whose *state is a malloc()ed state directory. */
int atu_dir_setup(void **state);
int atu_dir_teardown(void **state);

void atu_ca_make(struct atu_ca *ca);
/* Frees both parts; accepts a zeroed ca. */
void atu_ca_free(struct atu_ca *ca);
/* PEM of a one-hour device certificate for key and id issued by ca;
 * malloc()ed, the caller free()s it. */
char *atu_ca_issue(const struct atu_ca *ca, EVP_PKEY *key, const char *id);

/* A state directory and a CA: what the identity and enrollment tests
 * start from. */
struct atu_fixture {
	char dir[64];
	struct atu_ca ca;
};

void atu_fixture_init(struct atu_fixture *f);
void atu_fixture_fini(struct atu_fixture *f);
/* cmocka setup/teardown whose *state is a calloc()ed struct atu_fixture. */
int atu_fixture_setup(void **state);
int atu_fixture_teardown(void **state);

#endif
