/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/enroll.c: the enrollment rules and flow over an in-memory store and
 * a fake signer: what an enrollment writes (device, merged labels, audit
 * row), the refusal order, "k uses give k devices", that the use is
 * taken by the record alone (a refused CSR, an unavailable ca or a failed
 * record spend none, and there is nothing to give back), and a record
 * refused because a concurrent request took the last use or revoked the
 * token meanwhile. No network, no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/enroll.h"
#include "core/token.h"
#include "fake_signer.h"
#include "fake_store_tokens.h"

#define NOW 1800000000

static const char csr[] = "-----BEGIN CERTIFICATE REQUEST-----\nMII\n";

struct fixture {
	struct store *st;
	struct signer_client signer;
	char token[TOKEN_TEXT_MAX];
	char token_id[SECRET_UUID_LEN];
};

/* A token with uses, expiring at NOW + expires_in, labels site=b7. */
static void
fixture_token(struct fixture *f, long uses, long expires_in)
{
	char sha[SECRET_SHA256_HEX];
	struct token_spec spec;
	struct token t;

	token_spec_init(&spec, TOKEN_ENROLL);
	spec.uses = uses;
	spec.expires_in = expires_in;
	spec.profile = "plc";
	assert_int_equal(label_set_put(&spec.labels, "site", "b7"), LABEL_OK);
	assert_int_equal(token_make(&spec, NOW, &t, f->token, sha), TOKEN_OK);
	assert_int_equal(token_store(f->st, &t, sha, "token:op", NULL),
			 TOKEN_OK);
	snprintf(f->token_id, sizeof(f->token_id), "%s", t.id);
	token_clear(&t);
	token_spec_clear(&spec);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->st = fake_store_new();
	f->signer.answer = SIGNER_OK;
	fixture_token(f, 3, 3600);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	fake_store_free(f->st);
	free(f);
	return 0;
}

static void
request_init(struct enroll_request *req, const char *token)
{
	memset(req, 0, sizeof(*req));
	req->token = token;
	req->csr = csr;
	req->csr_len = strlen(csr);
	req->peer = "127.0.0.1";
}

static enum enroll_rc
enroll(struct fixture *f, const struct enroll_request *req,
       struct enroll_idem *idem, struct enroll_result *res)
{
	char err[128];

	memset(res, 0, sizeof(*res));
	return enroll_device(f->st, &f->signer, req, 7776000, NOW, idem, res,
			     err, sizeof(err));
}

static long
uses_left(struct fixture *f)
{
	return fake_store_token(f->st, f->token_id)->tok.uses_left;
}

static void
test_enroll_writes_device_labels_audit(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;
	struct fake_device *d;

	request_init(&req, f->token);
	assert_int_equal(label_set_put(&req.labels, "site", "evil"), LABEL_OK);
	assert_int_equal(label_set_put(&req.labels, "room", "12"), LABEL_OK);
	req.model = "plc-x";
	req.serial = "SN1";
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_OK);
	assert_int_equal(f->st->ndevices, 1);
	d = &f->st->devices[0];
	assert_string_equal(d->id, res.device_id);
	assert_string_equal(f->signer.last_device_id, res.device_id);
	assert_string_equal(d->token_id, f->token_id);
	assert_string_equal(res.token_id, f->token_id);
	/* the token's labels win over the request's; the request's others
	 * stay */
	assert_int_equal(d->labels.n, 2);
	assert_string_equal(label_set_get(&d->labels, "site"), "b7");
	assert_string_equal(label_set_get(&d->labels, "room"), "12");
	assert_string_equal(d->model, "plc-x");
	assert_string_equal(d->serial, "SN1");
	assert_string_equal(d->profile, "plc");
	assert_string_equal(d->cert_serial, res.issued.serial);
	assert_int_equal(uses_left(f), 2);
	/* one audit row: the device enrolled itself with the token */
	assert_int_equal(fake_store_audit_count(f->st, "device.enroll"), 1);
	{
		const struct fake_audit *a = &f->st->audit[f->st->naudit - 1];
		char actor[64];

		snprintf(actor, sizeof(actor), "device:%s", res.device_id);
		assert_string_equal(a->actor, actor);
		assert_string_equal(a->target, res.device_id);
		assert_string_equal(a->keys[0], "enrollment_token");
		assert_string_equal(a->strs[0], f->token_id);
		assert_string_equal(a->strs[1], res.issued.serial);
		assert_string_equal(a->strs[2], "127.0.0.1");
	}
	enroll_result_clear(&res);
	enroll_request_clear(&req);
}

static void
test_k_uses_give_k_devices(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;
	int i, ok = 0, exhausted = 0;

	request_init(&req, f->token);
	for (i = 0; i < 5; i++) {
		enum enroll_rc rc = enroll(f, &req, NULL, &res);

		ok += rc == ENROLL_OK;
		exhausted += rc == ENROLL_TOKEN_EXHAUSTED;
		enroll_result_clear(&res);
	}
	assert_int_equal(ok, 3);
	assert_int_equal(exhausted, 2);
	assert_int_equal(f->st->ndevices, 3);
	assert_int_equal(uses_left(f), 0);
	/* refusals do not reach the signer */
	assert_int_equal(f->signer.calls, 3);
}

/* Refusals in order, each writing nothing and costing no use. */
static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;
	struct fake_token *t = fake_store_token(f->st, f->token_id);
	char unknown[TOKEN_TEXT_MAX];
	static const struct {
		int64_t revoked_at, expires_at;
		long uses_left;
		enum enroll_rc want;
	} v[] = {
		{NOW - 1, NOW - 1, 0, ENROLL_TOKEN_REVOKED},
		{0, NOW - 1, 0, ENROLL_TOKEN_EXPIRED},
		{0, NOW, 3, ENROLL_TOKEN_EXPIRED},
		{0, NOW + 1, 0, ENROLL_TOKEN_EXHAUSTED},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		t->tok.revoked_at = v[i].revoked_at;
		t->tok.expires_at = v[i].expires_at;
		t->tok.uses_left = v[i].uses_left;
		request_init(&req, f->token);
		assert_int_equal(enroll(f, &req, NULL, &res), v[i].want);
		assert_int_equal(t->tok.uses_left, v[i].uses_left);
	}
	snprintf(unknown, sizeof(unknown), "fle_%064d", 0);
	request_init(&req, unknown);
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_TOKEN_UNKNOWN);
	/* a malformed token costs no store call */
	f->st->finds = 0;
	request_init(&req, "fle_nothex");
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_TOKEN_UNKNOWN);
	request_init(&req, "");
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_TOKEN_UNKNOWN);
	assert_int_equal(f->st->finds, 0);
	assert_int_equal(f->st->records, 0);
	assert_int_equal(f->st->ndevices, 0);
	assert_int_equal(f->signer.calls, 0);
	assert_int_equal(fake_store_audit_count(f->st, "device.enroll"), 0);
}

static void
test_request_checks(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;
	char *big = malloc(ENROLL_CSR_MAX + 2);

	assert_non_null(big);
	memset(big, 'A', ENROLL_CSR_MAX + 1);
	big[ENROLL_CSR_MAX + 1] = '\0';
	request_init(&req, f->token);
	req.csr = big;
	req.csr_len = ENROLL_CSR_MAX + 1;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_BAD_CSR_SIZE);
	req.csr_len = ENROLL_CSR_MAX;
	req.model = "a\tb";
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_BAD_TEXT);
	request_init(&req, f->token);
	req.csr = "x\0y";
	req.csr_len = 3;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_BAD_CSR_SIZE);
	req.csr_len = 0;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_BAD_CSR_SIZE);
	assert_int_equal(uses_left(f), 3);
	assert_int_equal(f->st->finds, 0);
	free(big);
}

/* The use is taken by the record only: a failure before it spends none. */
static void
test_failures_spend_no_use(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;

	request_init(&req, f->token);
	f->signer.answer = SIGNER_REJECTED;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_CSR_REJECTED);
	assert_int_equal(uses_left(f), 3);
	f->signer.answer = SIGNER_UNAVAILABLE;
	assert_int_equal(enroll(f, &req, NULL, &res),
			 ENROLL_SIGNER_UNAVAILABLE);
	assert_int_equal(uses_left(f), 3);
	assert_int_equal(f->st->records, 0);
	/* the record fails after signing: it took nothing either */
	f->signer.answer = SIGNER_OK;
	f->st->fail_record = true;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_ERR_STORE);
	assert_int_equal(uses_left(f), 3);
	assert_int_equal(f->st->records, 1);
	assert_int_equal(f->signer.calls, 3);
	assert_int_equal(f->st->ndevices, 0);
	assert_int_equal(fake_store_audit_count(f->st, "device.enroll"), 0);
}

/* What a concurrent request does between core's read and the record. */
static void
take_last_use(struct store *st)
{
	st->tokens[0].tok.uses_left = 0;
	st->on_record = NULL;
}

static void
revoke_token(struct store *st)
{
	st->tokens[0].tok.revoked_at = NOW - 1;
	st->on_record = NULL;
}

/* The read found a use, the record did not: the request is refused as
 * the read would refuse it now, and nothing is written. */
static void
test_record_refused_past_zero(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;

	assert_string_equal(f->st->tokens[0].tok.id, f->token_id);
	request_init(&req, f->token);
	f->st->on_record = take_last_use;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_TOKEN_EXHAUSTED);
	assert_int_equal(uses_left(f), 0);
	assert_int_equal(f->signer.calls, 1); /* signed, never answered */
	assert_int_equal(f->st->ndevices, 0);
	assert_int_equal(fake_store_audit_count(f->st, "device.enroll"), 0);
	/* with uses again, but revoked meanwhile */
	fake_store_token(f->st, f->token_id)->tok.uses_left = 3;
	f->st->on_record = revoke_token;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_TOKEN_REVOKED);
	assert_int_equal(uses_left(f), 3);
	assert_int_equal(f->st->ndevices, 0);
}

/* The certificate's issuer goes to the record with it. */
static void
test_record_carries_issuer(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;

	request_init(&req, f->token);
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_OK);
	assert_int_equal(f->st->ndevices, 1);
	assert_int_equal(strlen(res.issued.issuer), 64);
	assert_string_equal(f->st->devices[0].issuer, res.issued.issuer);
	enroll_result_clear(&res);
}

/* A store failure while reading the token: no signer call, no use. */
static void
test_store_failures(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;

	request_init(&req, f->token);
	f->st->fail_next = 1;
	assert_int_equal(enroll(f, &req, NULL, &res), ENROLL_ERR_STORE);
	assert_int_equal(f->signer.calls, 0);
	assert_int_equal(f->st->records, 0);
	assert_int_equal(uses_left(f), 3);
}

static char *
render(const struct enroll_result *res, void *arg)
{
	char *s = malloc(100);

	(void)arg;
	if (s != NULL)
		snprintf(s, 100, "{\"device_id\":\"%s\"}", res->device_id);
	return s;
}

static void
idem_init(struct enroll_idem *idem, const char *key, const char *body)
{
	memset(idem, 0, sizeof(*idem));
	idem->key = key;
	idem->method = "POST";
	idem->path = "/enroll/v1";
	idem->body = body;
	idem->body_len = strlen(body);
	idem->render = render;
}

/* A retry after a lost answer replays it and costs no second use. */
static void
test_idempotent_retry(void **state)
{
	struct fixture *f = *state;
	struct enroll_request req;
	struct enroll_result res;
	struct enroll_idem idem;
	char first[100];

	request_init(&req, f->token);
	idem_init(&idem, "boot-1", "{\"a\":1}");
	assert_int_equal(enroll(f, &req, &idem, &res), ENROLL_OK);
	snprintf(first, sizeof(first), "{\"device_id\":\"%s\"}", res.device_id);
	enroll_result_clear(&res);
	idem_init(&idem, "boot-1", "{\"a\":1}");
	assert_int_equal(enroll(f, &req, &idem, &res), ENROLL_REPLAY);
	assert_int_equal(idem.replay_status, 201);
	assert_string_equal(idem.replay_body, first);
	free(idem.replay_body);
	assert_int_equal(uses_left(f), 2);
	assert_int_equal(f->st->ndevices, 1);
	assert_int_equal(f->signer.calls, 1);
	/* the same key with another body */
	idem_init(&idem, "boot-1", "{\"a\":2}");
	assert_int_equal(enroll(f, &req, &idem, &res), ENROLL_IDEM_MISMATCH);
	assert_int_equal(uses_left(f), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_enroll_writes_device_labels_audit, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_k_uses_give_k_devices,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failures_spend_no_use,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_refused_past_zero,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_carries_issuer,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failures, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_retry, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
