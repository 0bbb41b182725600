/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token store contract: one scenario of token and enrollment calls
 * through core, printed as a transcript. It is built twice: against the
 * in-memory fake of the unit tests (token_contract_fake) and against
 * fleetd/db on a real PostgreSQL (token_contract_pg CONNINFO, a migrated
 * database); tests/integration/test_api.sh runs both and requires the
 * same transcript, so the fake the unit tests trust behaves like the
 * adapter (guards, refusal order, give-backs, revocation, authentication,
 * pages, Idempotency-Key). Ids and secrets differ between runs and are
 * never printed. Prints the transcript on stdout; exits 1 on a setup
 * failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/enroll.h"
#include "core/idempotency.h"
#include "core/token.h"
#include "fake_signer.h"

#ifdef CONTRACT_FAKE
#include "fake_store_tokens.h"
#else
#include "db/store.h"
#endif

static struct store *
contract_open(int argc, char **argv)
{
#ifdef CONTRACT_FAKE
	(void)argc;
	(void)argv;
	return fake_store_new();
#else
	return argc == 2 ? store_new(argv[1]) : NULL;
#endif
}

static void
contract_close(struct store *st)
{
#ifdef CONTRACT_FAKE
	fake_store_free(st);
#else
	store_free(st);
#endif
}

struct made {
	char id[SECRET_UUID_LEN];
	char text[TOKEN_TEXT_MAX];
};

static int
make(struct store *st, enum token_kind kind, long uses, long expires_in,
     int64_t now, struct made *m)
{
	char sha[SECRET_SHA256_HEX];
	struct token_spec spec;
	struct token t;
	int rc;

	token_spec_init(&spec, kind);
	spec.uses = uses;
	spec.expires_in = expires_in;
	spec.role = TOKEN_ROLE_OPERATOR;
	spec.name = "contract";
	(void)label_set_put(&spec.labels, "contract", "token");
	rc = token_make(&spec, now, &t, m->text, sha) == TOKEN_OK &&
			     token_store(st, &t, sha, "token:contract", NULL) ==
				     TOKEN_OK
		     ? 0
		     : -1;
	snprintf(m->id, sizeof(m->id), "%s", t.id);
	token_clear(&t);
	token_spec_clear(&spec);
	return rc;
}

static long
left(struct store *st, const char *id)
{
	struct token t;
	long n = -1;

	if (token_get(st, TOKEN_ENROLL, id, &t) == TOKEN_OK)
		n = t.uses_left;
	token_clear(&t);
	return n;
}

static void
enroll(struct store *st, struct signer_client *sg, const char *what,
       const char *token, int64_t now, struct enroll_idem *idem, const char *id)
{
	struct enroll_request req;
	struct enroll_result res;
	char err[128];
	enum enroll_rc rc;

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	req.token = token;
	req.csr = "-----BEGIN CERTIFICATE REQUEST-----\n";
	req.csr_len = strlen(req.csr);
	(void)label_set_put(&req.labels, "contract-room", "12");
	rc = enroll_device(st, sg, &req, 3600, now, idem, &res, err,
			   sizeof(err));
	printf("%s: enroll_rc %d, uses_left %ld\n", what, (int)rc,
	       id ? left(st, id) : -1L);
	enroll_result_clear(&res);
	enroll_request_clear(&req);
}

static char *
render(const struct enroll_result *res, void *arg)
{
	(void)arg;
	return strdup(res->token_id);
}

int
main(int argc, char **argv)
{
	struct signer_client sg = {SIGNER_OK, 0, ""};
	struct store *st = contract_open(argc, argv);
	int64_t now = (int64_t)time(NULL);
	struct made a, b, c, d, adm, old;
	char next[PAGE_CURSOR_MAX], after[PAGE_CURSOR_MAX];
	struct enroll_idem idem;
	struct page page = {2, NULL};
	struct token *items = NULL, t;
	size_t n = 0, seen = 0;
	int pages = 0;

	if (st == NULL || make(st, TOKEN_ENROLL, 2, 3600, now, &a) != 0 ||
	    make(st, TOKEN_ENROLL, 1, 1, now - 10, &b) != 0 ||
	    make(st, TOKEN_ENROLL, 3, 3600, now, &c) != 0 ||
	    make(st, TOKEN_ENROLL, 1, 3600, now, &d) != 0 ||
	    make(st, TOKEN_ADMIN, 1, 1, now, &adm) != 0 ||
	    make(st, TOKEN_ADMIN, 1, 1, now - 10, &old) != 0) {
		fprintf(stderr, "token_contract: setup failed\n");
		contract_close(st);
		return 1;
	}
	/* uses, give-backs, refusal order */
	enroll(st, &sg, "fresh token", a.text, now, NULL, a.id);
	sg.answer = SIGNER_REJECTED;
	enroll(st, &sg, "csr refused", a.text, now, NULL, a.id);
	sg.answer = SIGNER_UNAVAILABLE;
	enroll(st, &sg, "ca down", a.text, now, NULL, a.id);
	sg.answer = SIGNER_OK;
	enroll(st, &sg, "last use", a.text, now, NULL, a.id);
	enroll(st, &sg, "exhausted", a.text, now, NULL, a.id);
	enroll(st, &sg, "expired", b.text, now, NULL, b.id);
	printf("revoke c: %d\n",
	       (int)token_revoke(st, TOKEN_ENROLL, c.id, "token:x", now, &t));
	token_clear(&t);
	printf("revoke c again: %d\n",
	       (int)token_revoke(st, TOKEN_ENROLL, c.id, "token:x", now, &t));
	printf("revoke c as admin token: %d\n",
	       (int)token_revoke(st, TOKEN_ADMIN, c.id, "token:x", now, &t));
	enroll(st, &sg, "revoked", c.text, now, NULL, c.id);
	enroll(st, &sg, "unknown",
	       "fle_00000000000000000000000000000000"
	       "00000000000000000000000000000000",
	       now, NULL, NULL);
	/* Idempotency-Key */
	memset(&idem, 0, sizeof(idem));
	idem.key = "k1";
	idem.method = "POST";
	idem.path = "/enroll/v1";
	idem.body = "{}";
	idem.body_len = 2;
	idem.render = render;
	enroll(st, &sg, "with a key", d.text, now, &idem, d.id);
	enroll(st, &sg, "replay", d.text, now, &idem, d.id);
	printf("replay status %d, body is the token id: %d\n",
	       idem.replay_status,
	       idem.replay_body && strcmp(idem.replay_body, d.id) == 0);
	free(idem.replay_body);
	idem.replay_body = NULL;
	idem.body = "{ }";
	idem.body_len = 3;
	enroll(st, &sg, "same key, other body", d.text, now, &idem, d.id);
	/* admin tokens */
	printf("authenticate: %d\n",
	       (int)token_authenticate(st, adm.text, now, &t));
	printf("authenticated role %d, id matches %d\n", (int)t.role,
	       strcmp(t.id, adm.id) == 0);
	token_clear(&t);
	printf("authenticate an enrollment token: %d\n",
	       (int)token_authenticate(st, a.text, now, &t));
	printf("revoke admin: %d\n",
	       (int)token_revoke(st, TOKEN_ADMIN, adm.id, "token:x", now, &t));
	token_clear(&t);
	printf("authenticate revoked: %d\n",
	       (int)token_authenticate(st, adm.text, now, &t));
	/* an admin token whose expires_at passed (issue 13) */
	printf("authenticate expired: %d\n",
	       (int)token_authenticate(st, old.text, now, &t));
	/* pages of 2 over the 4 enrollment tokens */
	do {
		if (token_list(st, TOKEN_ENROLL, &page, &items, &n, next) !=
		    TOKEN_OK)
			break;
		seen += n;
		tokens_free(items, n);
		snprintf(after, sizeof(after), "%s", next);
		page.after = after;
		pages++;
	} while (next[0] != '\0' && pages < 10);
	printf("list: %zu tokens in %d pages\n", seen, pages);
	contract_close(st);
	return 0;
}
