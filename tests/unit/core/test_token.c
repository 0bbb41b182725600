/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/token.c: token shapes, roles, durations, create-request ranges, the
 * refusal order of a presented enrollment token, and create / get / list
 * / revoke / authenticate / Idempotency-Key over an in-memory store.
 * Table-driven; no network, no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/idempotency.h"
#include "core/token.h"
#include "fake_store_tokens.h"

#define NOW 1800000000

static const char hex64[] =
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void
test_text_shapes(void **state)
{
	char buf[100];
	static const struct {
		enum token_kind kind;
		const char *prefix, *body;
		bool ok;
	} v[] = {
		{TOKEN_ENROLL, "fle_", hex64, true},
		{TOKEN_ADMIN, "fla_", hex64, true},
		{TOKEN_ENROLL, "fla_", hex64, false}, /* the other kind */
		{TOKEN_ADMIN, "fle_", hex64, false},
		{TOKEN_ENROLL, "fle_", hex64 + 1, false}, /* 63 digits */
		{TOKEN_ENROLL, "FLE_", hex64, false},
		{TOKEN_ENROLL, "fle_",
		 "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abc"
		 "def",
		 false}, /* uppercase */
		{TOKEN_ENROLL, "fle_",
		 "0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abc"
		 "def",
		 false},
		{TOKEN_ENROLL, "", "", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", v[i].prefix, v[i].body);
		assert_int_equal(token_text_valid(v[i].kind, buf), v[i].ok);
	}
	snprintf(buf, sizeof(buf), "fle_%s0", hex64); /* 65 digits */
	assert_false(token_text_valid(TOKEN_ENROLL, buf));
	assert_false(token_text_valid(TOKEN_ENROLL, NULL));
}

static void
test_roles(void **state)
{
	(void)state;
	assert_int_equal(token_role_parse("viewer"), TOKEN_ROLE_VIEWER);
	assert_int_equal(token_role_parse("operator"), TOKEN_ROLE_OPERATOR);
	assert_int_equal(token_role_parse("admin"), TOKEN_ROLE_ADMIN);
	assert_int_equal(token_role_parse("Admin"), TOKEN_ROLE_NONE);
	assert_int_equal(token_role_parse("root"), TOKEN_ROLE_NONE);
	assert_int_equal(token_role_parse(""), TOKEN_ROLE_NONE);
	assert_int_equal(token_role_parse(NULL), TOKEN_ROLE_NONE);
	assert_true(TOKEN_ROLE_VIEWER < TOKEN_ROLE_OPERATOR &&
		    TOKEN_ROLE_OPERATOR < TOKEN_ROLE_ADMIN);
	assert_string_equal(token_role_name(TOKEN_ROLE_OPERATOR), "operator");
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		long want;
	} v[] = {
		{"86400", 86400}, {"90s", 90},
		{"30m", 1800},	  {"24h", 86400},
		{"7d", 604800},	  {"366d", 366L * 86400},
		{"367d", -1},	  {"31622401", -1},
		{"0", -1},	  {"0s", -1},
		{"", -1},	  {"-5", -1},
		{"+5", -1},	  {" 5", -1},
		{"5 ", -1},	  {"5w", -1},
		{"5hh", -1},	  {"99999999999999999999999", -1},
		{"h", -1},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(token_duration_parse(v[i].text), v[i].want);
	assert_int_equal(token_duration_parse(NULL), -1);
}

static void
test_spec_check(void **state)
{
	struct token_spec s;
	char longname[300];

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	token_spec_init(&s, TOKEN_ENROLL);
	assert_int_equal(s.uses, 1);
	assert_int_equal(s.expires_in, TOKEN_EXPIRES_DEFAULT);
	assert_int_equal(token_spec_check(&s), TOKEN_OK);
	s.uses = 0;
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_USES);
	s.uses = TOKEN_USES_MAX + 1;
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_USES);
	s.uses = TOKEN_USES_MAX;
	s.expires_in = TOKEN_EXPIRES_MAX + 1;
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_EXPIRES);
	s.expires_in = 1;
	s.profile = longname;
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_TEXT);
	s.profile = "line\nbreak";
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_TEXT);
	token_spec_init(&s, TOKEN_ADMIN);
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_ROLE);
	s.role = TOKEN_ROLE_VIEWER;
	assert_int_equal(token_spec_check(&s), TOKEN_OK);
	s.name = longname;
	assert_int_equal(token_spec_check(&s), TOKEN_ERR_TEXT);
}

static void
test_refusal_order(void **state)
{
	/* revoked before expired before exhausted */
	static const struct {
		int64_t revoked_at, expires_at;
		long uses_left;
		enum token_rc want;
	} v[] = {
		{0, NOW + 1, 1, TOKEN_OK},
		{0, NOW + 1, 0, TOKEN_EXHAUSTED},
		{0, NOW, 1, TOKEN_EXPIRED}, /* expires_at is exclusive */
		{0, NOW - 1, 0, TOKEN_EXPIRED},
		{NOW - 5, NOW + 1, 1, TOKEN_REVOKED},
		{NOW - 5, NOW - 1, 0, TOKEN_REVOKED},
	};
	struct token t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.revoked_at = v[i].revoked_at;
		t.expires_at = v[i].expires_at;
		t.uses_left = v[i].uses_left;
		assert_int_equal(token_enroll_refusal(&t, NOW), v[i].want);
	}
}

/* Makes and stores a token; returns its id in id, its text in text. */
static void
make_token(struct store *st, struct token_spec *spec, char *id,
	   char text[TOKEN_TEXT_MAX])
{
	char sha[SECRET_SHA256_HEX];
	struct token t;

	assert_int_equal(token_make(spec, NOW, &t, text, sha), TOKEN_OK);
	assert_true(token_text_valid(spec->kind, text));
	assert_int_equal(token_store(st, &t, sha, "token:op", NULL), TOKEN_OK);
	snprintf(id, SECRET_UUID_LEN, "%s", t.id);
	token_clear(&t);
}

static void
test_create_stores_hash_and_audit(void **state)
{
	struct store *st = fake_store_new();
	struct token_spec spec;
	char id[SECRET_UUID_LEN], text[TOKEN_TEXT_MAX], sha[SECRET_SHA256_HEX];
	struct fake_token *ft;

	(void)state;
	token_spec_init(&spec, TOKEN_ENROLL);
	spec.uses = 3;
	spec.expires_in = 3600;
	assert_int_equal(label_set_put(&spec.labels, "site", "b7"), LABEL_OK);
	spec.profile = "plc";
	make_token(st, &spec, id, text);
	ft = fake_store_token(st, id);
	assert_non_null(ft);
	/* only the hash is stored */
	secret_sha256_hex(text, strlen(text), sha);
	assert_string_equal(ft->sha256, sha);
	assert_int_equal(ft->tok.uses_total, 3);
	assert_int_equal(ft->tok.uses_left, 3);
	assert_int_equal(ft->tok.expires_at, NOW + 3600);
	assert_string_equal(label_set_get(&ft->tok.labels, "site"), "b7");
	assert_string_equal(ft->tok.profile, "plc");
	/* the audit row names what was granted, never the secret */
	assert_int_equal(fake_store_audit_count(st, "token.create"), 1);
	assert_string_equal(st->audit[0].actor, "token:op");
	assert_string_equal(st->audit[0].target, id);
	for (size_t i = 0; i < st->audit[0].nfields; i++)
		assert_null(strstr(st->audit[0].strs[i], text + 4));
	token_spec_clear(&spec);

	token_spec_init(&spec, TOKEN_ADMIN);
	spec.role = TOKEN_ROLE_OPERATOR;
	spec.name = "ci";
	make_token(st, &spec, id, text);
	assert_int_equal(fake_store_audit_count(st, "admin_token.create"), 1);
	assert_int_equal(fake_store_token(st, id)->tok.role,
			 TOKEN_ROLE_OPERATOR);
	/* a failing store stores nothing */
	st->fail_next = 1;
	{
		struct token t;

		assert_int_equal(token_make(&spec, NOW, &t, text, sha),
				 TOKEN_OK);
		assert_int_equal(token_store(st, &t, sha, "x", NULL),
				 TOKEN_ERR_STORE);
		token_clear(&t);
	}
	assert_int_equal(st->ntokens, 2);
	fake_store_free(st);
}

static void
test_revoke_get_authenticate(void **state)
{
	struct store *st = fake_store_new();
	struct token_spec spec;
	char id[SECRET_UUID_LEN], text[TOKEN_TEXT_MAX];
	char other[TOKEN_TEXT_MAX];
	struct token t;

	(void)state;
	token_spec_init(&spec, TOKEN_ADMIN);
	spec.role = TOKEN_ROLE_VIEWER;
	make_token(st, &spec, id, text);
	assert_int_equal(token_authenticate(st, text, NOW, &t), TOKEN_OK);
	assert_int_equal(t.role, TOKEN_ROLE_VIEWER);
	assert_string_equal(t.id, id);
	token_clear(&t);
	/* wrong shape: no store call at all */
	st->fail_next = 1;
	assert_int_equal(token_authenticate(st, "fla_short", NOW, &t),
			 TOKEN_UNKNOWN);
	assert_int_equal(token_authenticate(st, text, NOW, &t),
			 TOKEN_ERR_STORE);
	snprintf(other, sizeof(other), "fla_%s", hex64);
	assert_int_equal(token_authenticate(st, other, NOW, &t), TOKEN_UNKNOWN);
	/* an enrollment token is not a bearer token */
	assert_int_equal(token_get(st, TOKEN_ENROLL, id, &t), TOKEN_NOTFOUND);
	assert_int_equal(token_get(st, TOKEN_ADMIN, id, &t), TOKEN_OK);
	assert_int_equal(t.revoked_at, 0);
	token_clear(&t);
	assert_int_equal(
		token_revoke(st, TOKEN_ENROLL, id, "token:a", NOW + 1, &t),
		TOKEN_NOTFOUND);
	assert_int_equal(
		token_revoke(st, TOKEN_ADMIN, id, "token:a", NOW + 1, &t),
		TOKEN_OK);
	assert_int_equal(t.revoked_at, NOW + 1);
	token_clear(&t);
	assert_int_equal(
		token_revoke(st, TOKEN_ADMIN, id, "token:a", NOW + 2, &t),
		TOKEN_ALREADY_REVOKED);
	assert_int_equal(fake_store_audit_count(st, "admin_token.revoke"), 1);
	/* a revoked token is refused and says so (the 401 can name it) */
	assert_int_equal(token_authenticate(st, text, NOW + 3, &t),
			 TOKEN_REVOKED);
	fake_store_free(st);
}

/* An admin token with expires_in stops authenticating at expires_at;
 * without one it never expires; expires_in past the maximum is refused. */
static void
test_admin_expiry(void **state)
{
	struct store *st = fake_store_new();
	char text[TOKEN_TEXT_MAX], sha[SECRET_SHA256_HEX];
	struct token_spec spec;
	struct token tok, t;

	(void)state;
	token_spec_init(&spec, TOKEN_ADMIN);
	assert_int_equal(spec.expires_in, 0);
	spec.role = TOKEN_ROLE_VIEWER;
	spec.expires_in = TOKEN_EXPIRES_MAX + 1;
	assert_int_equal(token_spec_check(&spec), TOKEN_ERR_EXPIRES);
	spec.expires_in = 60;
	assert_int_equal(token_spec_check(&spec), TOKEN_OK);
	assert_int_equal(token_make(&spec, NOW, &tok, text, sha), TOKEN_OK);
	assert_int_equal(tok.expires_at, NOW + 60);
	assert_int_equal(token_store(st, &tok, sha, "token:a", NULL), TOKEN_OK);
	assert_int_equal(token_authenticate(st, text, NOW + 59, &t), TOKEN_OK);
	token_clear(&t);
	assert_int_equal(token_authenticate(st, text, NOW + 60, &t),
			 TOKEN_EXPIRED);
	token_clear(&tok);
	fake_store_free(st);
}

static void
test_list_pages(void **state)
{
	struct store *st = fake_store_new();
	struct token_spec spec;
	char id[SECRET_UUID_LEN], text[TOKEN_TEXT_MAX];
	char next[PAGE_CURSOR_MAX], after[PAGE_CURSOR_MAX];
	struct page page = {2, NULL};
	struct token *items = NULL;
	size_t n = 0, seen = 0;
	int i, pages = 0;

	(void)state;
	token_spec_init(&spec, TOKEN_ENROLL);
	for (i = 0; i < 5; i++)
		make_token(st, &spec, id, text);
	do {
		assert_int_equal(
			token_list(st, TOKEN_ENROLL, &page, &items, &n, next),
			TOKEN_OK);
		seen += n;
		tokens_free(items, n);
		snprintf(after, sizeof(after), "%s", next);
		page.after = after;
		pages++;
	} while (next[0] != '\0' && pages < 10);
	assert_int_equal(seen, 5);
	assert_int_equal(pages, 3);
	/* a cursor the store did not make never reaches it */
	page.after = "9999999999999999999";
	assert_int_equal(token_list(st, TOKEN_ENROLL, &page, &items, &n, next),
			 TOKEN_NOTFOUND);
	fake_store_free(st);
}

static void
test_idempotency_rules(void **state)
{
	struct store *st = fake_store_new();
	char h1[SECRET_SHA256_HEX], h2[SECRET_SHA256_HEX], key[300];
	struct idem_record rec;
	struct token_spec spec;
	struct token t;
	char text[TOKEN_TEXT_MAX], sha[SECRET_SHA256_HEX], *body = NULL;
	int status = 0;

	(void)state;
	assert_true(idem_key_valid("k-1"));
	assert_false(idem_key_valid(""));
	assert_false(idem_key_valid("a b"));
	assert_false(idem_key_valid("caf\xc3\xa9"));
	memset(key, 'k', 255);
	key[255] = '\0';
	assert_true(idem_key_valid(key));
	key[255] = 'k';
	key[256] = '\0';
	assert_false(idem_key_valid(key));
	/* the fingerprint covers method, path and body */
	idem_request_hash("POST", "/a", "{}", 2, h1);
	idem_request_hash("POST", "/a", "{} ", 3, h2);
	assert_string_not_equal(h1, h2);
	idem_request_hash("POST", "/b", "{}", 2, h2);
	assert_string_not_equal(h1, h2);
	idem_request_hash("POST", "/a", "{}", 2, h2);
	assert_string_equal(h1, h2);

	memset(&rec, 0, sizeof(rec));
	rec.actor = "token:a";
	rec.key = "k-1";
	rec.status = 201;
	snprintf(rec.request_sha256, sizeof(rec.request_sha256), "%s", h1);
	assert_int_equal(idem_lookup(st, &rec, &status, &body), IDEM_NEW);
	rec.body = "{\"id\":1}";
	token_spec_init(&spec, TOKEN_ENROLL);
	assert_int_equal(token_make(&spec, NOW, &t, text, sha), TOKEN_OK);
	assert_int_equal(token_store(st, &t, sha, "token:a", &rec), TOKEN_OK);
	token_clear(&t);
	assert_int_equal(idem_lookup(st, &rec, &status, &body), IDEM_REPLAY);
	assert_int_equal(status, 201);
	assert_string_equal(body, "{\"id\":1}");
	free(body);
	/* the same key for another request */
	idem_request_hash("POST", "/a", "{\"uses\":2}", 10, rec.request_sha256);
	assert_int_equal(idem_lookup(st, &rec, &status, &body), IDEM_MISMATCH);
	/* a concurrent request recorded the key first: nothing stored */
	assert_int_equal(token_make(&spec, NOW, &t, text, sha), TOKEN_OK);
	assert_int_equal(token_store(st, &t, sha, "token:a", &rec),
			 TOKEN_IDEM_TAKEN);
	token_clear(&t);
	assert_int_equal(st->ntokens, 1);
	/* keys are per actor */
	rec.actor = "token:b";
	assert_int_equal(idem_lookup(st, &rec, &status, &body), IDEM_NEW);
	st->fail_next = 1;
	assert_int_equal(idem_lookup(st, &rec, &status, &body), IDEM_ERR);
	fake_store_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_shapes),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_refusal_order),
		cmocka_unit_test(test_create_stores_hash_and_audit),
		cmocka_unit_test(test_revoke_get_authenticate),
		cmocka_unit_test(test_admin_expiry),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_idempotency_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
