/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/cert_lifecycle.c: who may renew and with which key, the answer to a
 * repeated cert.csr, the second phase, what a handshake refuses, what an
 * operator sees, and the RFC 5280 reasons an operator may give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/cert_lifecycle.h"
#include "fake_signer.h"
#include "fake_store_certs.h"

#define DEV "6f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f"
#define OTHER "7a2b3c4d-1111-4222-8333-944455556666"
#define KEY_OLD \
	"1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_NEW \
	"2222222222222222222222222222222222222222222222222222222222222222"
#define KEY_X "3333333333333333333333333333333333333333333333333333333333333333"

struct fx {
	struct store *st;
	struct signer_client sc;
	struct cert_renew_request req;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct fake_cert c;

	assert_non_null(f);
	f->st = fake_certs_new();
	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "01AA");
	snprintf(c.device_id, sizeof(c.device_id), DEV);
	snprintf(c.key, sizeof(c.key), KEY_OLD);
	c.status = CERT_ACTIVE;
	c.installed = true;
	fake_certs_add(f->st, &c);
	f->sc.answer = SIGNER_OK;
	f->req.device_id = DEV;
	f->req.session_serial = "01AA";
	f->req.session_key_sha256 = KEY_OLD;
	f->req.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
	f->req.csr_len = strlen(f->req.csr_pem);
	f->req.csr_key_sha256 = KEY_NEW;
	f->req.csr_cn = DEV;
	f->req.seq = 7;
	f->req.validity_s = 3600;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fake_certs_free(f->st);
	free(f);
	return 0;
}

static enum cert_renew_rc
renew(struct fx *f, struct cert_renew_result *r)
{
	memset(r, 0, sizeof(*r));
	return cert_renew(f->st, &f->sc, &f->req, r, NULL, 0);
}

/* A new key from an active device over an active certificate: signed. */
static void
test_renew_new_key(void **state)
{
	struct fx *f = *state;
	struct cert_renew_result r;

	assert_int_equal(renew(f, &r), CERT_RENEW_ISSUED);
	assert_int_equal(f->sc.calls, 1);
	assert_string_equal(f->sc.last_device_id, DEV);
	assert_non_null(r.cert_pem);
	assert_int_equal(fake_certs_records(f->st), 1);
	cert_renew_result_clear(&r);
}

/* The same CSR key again (a lost cert.issued): the same certificate,
 * nothing signed or recorded again. */
static void
test_renew_repeat(void **state)
{
	struct fx *f = *state;
	struct cert_renew_result a, b;

	assert_int_equal(renew(f, &a), CERT_RENEW_ISSUED);
	assert_int_equal(renew(f, &b), CERT_RENEW_REPEATED);
	assert_string_equal(a.serial, b.serial);
	assert_string_equal(a.cert_pem, b.cert_pem);
	assert_int_equal(f->sc.calls, 1);
	assert_int_equal(fake_certs_records(f->st), 1);
	cert_renew_result_clear(&a);
	cert_renew_result_clear(&b);
}

static void
test_renew_refusals(void **state)
{
	struct fx *f = *state;
	struct cert_renew_result r;
	struct fake_cert c;

	/* the session's own key */
	f->req.csr_key_sha256 = KEY_OLD;
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_KEY);
	/* a key another device has */
	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "02BB");
	snprintf(c.device_id, sizeof(c.device_id), OTHER);
	snprintf(c.key, sizeof(c.key), KEY_X);
	c.status = CERT_ACTIVE;
	fake_certs_add(f->st, &c);
	f->req.csr_key_sha256 = KEY_X;
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_KEY);
	/* a CSR that names another device */
	f->req.csr_key_sha256 = KEY_NEW;
	f->req.csr_cn = OTHER;
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_NAME);
	/* no CN at all is fine: the server names the subject */
	f->req.csr_cn = "";
	assert_int_equal(
		cert_renew_rule(&f->req,
				&(struct cert_renew_facts){
					.device_active = true,
					.session_known = true,
					.session_status = CERT_ACTIVE}),
		CERT_RENEW_SIGN);
	/* a superseded session certificate */
	fake_certs_get(f->st, "01AA")->status = CERT_SUPERSEDED;
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_SESSION);
	/* a decommissioned device */
	fake_certs_get(f->st, "01AA")->status = CERT_ACTIVE;
	fake_certs_set_active(f->st, false);
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_DEVICE);
	assert_int_equal(f->sc.calls, 0);
	/* the ca refuses the CSR */
	fake_certs_set_active(f->st, true);
	f->sc.answer = SIGNER_REJECTED;
	assert_int_equal(renew(f, &r), CERT_RENEW_CSR_REJECTED);
	f->sc.answer = SIGNER_UNAVAILABLE;
	assert_int_equal(renew(f, &r), CERT_RENEW_UNAVAILABLE);
	assert_int_equal(fake_certs_records(f->st), 0);
}

/* Second phase: only over the session that presents the new
 * certificate; then the old one is superseded (and refused). */
static void
test_installed(void **state)
{
	struct fx *f = *state;
	struct cert_renew_result r;

	assert_int_equal(renew(f, &r), CERT_RENEW_ISSUED);
	assert_int_equal(cert_installed(f->st, DEV, "01AA", r.serial),
			 CERT_INSTALLED_NOT_SESSION);
	assert_int_equal(fake_certs_get(f->st, "01AA")->status, CERT_ACTIVE);
	assert_int_equal(cert_installed(f->st, DEV, r.serial, r.serial),
			 CERT_INSTALLED_OK);
	assert_int_equal(fake_certs_get(f->st, "01AA")->status,
			 CERT_SUPERSEDED);
	assert_true(cert_status_refused(CERT_SUPERSEDED));
	assert_int_equal(cert_installed(f->st, DEV, r.serial, r.serial),
			 CERT_INSTALLED_AGAIN);
	/* lowercase hex from the device is the same serial */
	assert_int_equal(cert_installed(f->st, DEV, "ffff", "FFFF"),
			 CERT_INSTALLED_UNKNOWN);
	/* a copy of the cert.csr that arrives over the new session: the
	 * same certificate again, nothing signed */
	f->req.session_serial = r.serial;
	{
		struct cert_renew_result again;

		assert_int_equal(renew(f, &again), CERT_RENEW_REPEATED);
		assert_string_equal(again.serial, r.serial);
		cert_renew_result_clear(&again);
	}
	assert_int_equal(f->sc.calls, 1);
	/* over the old, superseded certificate's session: refused */
	f->req.session_serial = "01AA";
	cert_renew_result_clear(&r);
	assert_int_equal(renew(f, &r), CERT_RENEW_REFUSED);
	assert_int_equal(r.verdict, CERT_RENEW_REFUSE_SESSION);
	cert_renew_result_clear(&r);
}

static void
test_status_and_reasons(void **state)
{
	char out[CERT_SERIAL_MAX];

	(void)state;
	assert_false(cert_status_refused(CERT_ACTIVE));
	assert_true(cert_status_refused(CERT_REVOKED));
	assert_int_equal(cert_status_shown(CERT_ACTIVE, 100, 100),
			 CERT_EXPIRED);
	assert_int_equal(cert_status_shown(CERT_ACTIVE, 101, 100), CERT_ACTIVE);
	assert_int_equal(cert_status_shown(CERT_REVOKED, 1, 100), CERT_REVOKED);
	assert_int_equal(cert_status_shown(CERT_SUPERSEDED, 1, 100),
			 CERT_EXPIRED);
	assert_int_equal(cert_status_parse("superseded"), CERT_SUPERSEDED);
	assert_int_equal(cert_status_parse("expired"), -1);
	assert_int_equal(cert_reason_parse("keyCompromise"), 1);
	assert_int_equal(cert_reason_parse("cessationOfOperation"), 5);
	assert_int_equal(cert_reason_parse("4"), 4);
	assert_int_equal(cert_reason_parse("certificateHold"), -1);
	assert_int_equal(cert_reason_parse("removeFromCRL"), -1);
	assert_int_equal(cert_reason_parse("7"), -1);
	assert_int_equal(cert_reason_parse("11"), -1);
	assert_int_equal(cert_reason_parse("keycompromise"), -1);
	assert_int_equal(cert_reason_parse(""), -1);
	assert_string_equal(cert_reason_name(10), "aACompromise");
	assert_true(cert_serial_normalize("abc", out));
	assert_string_equal(out, "0ABC");
	assert_true(cert_serial_normalize("06AFAD95", out));
	assert_string_equal(out, "06AFAD95");
	assert_false(cert_serial_normalize("xyz", out));
	assert_false(cert_serial_normalize("", out));
	assert_false(cert_serial_normalize(
		"0123456789012345678901234567890123456789A", out));
}

static void
test_operator_calls(void **state)
{
	struct fx *f = *state;
	char id[37], dev[37];
	bool created = false;

	assert_int_equal(cert_rotation_request(f->st, DEV, "operator",
					       "token:x", id, &created),
			 CERT_OP_OK);
	assert_true(created);
	assert_int_equal(cert_rotation_request(f->st, DEV, "whim", "token:x",
					       id, &created),
			 CERT_OP_BAD_INPUT);
	assert_int_equal(cert_revoke(f->st, "01aa", 1, "token:x", dev),
			 CERT_OP_OK);
	assert_string_equal(dev, DEV);
	assert_int_equal(cert_revoke(f->st, "01AA", 1, "token:x", dev),
			 CERT_OP_CONFLICT);
	assert_int_equal(cert_revoke(f->st, "09", 1, "token:x", dev),
			 CERT_OP_NOTFOUND);
	assert_int_equal(cert_revoke(f->st, "01AA", 6, "token:x", dev),
			 CERT_OP_BAD_INPUT);
	fake_certs_set_active(f->st, false);
	assert_int_equal(cert_rotation_request(f->st, DEV, "operator",
					       "token:x", id, &created),
			 CERT_OP_CONFLICT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_renew_new_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_renew_repeat, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_renew_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_installed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status_and_reasons, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_operator_calls, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
