/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment rules and flow (see core/enroll.h). Runs on API job threads;
 * blocks on the store and on the signer port, never while holding a lock
 * in storage.
 */
#include "core/enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/store_enroll.h"
#include "core/token.h"
#include "log.h"

#define ENROLL_ACTOR_MAX (sizeof("enroll:") + SECRET_SHA256_HEX)

enum enroll_rc
enroll_request_check(const struct enroll_request *req)
{
	if (req->csr == NULL || req->csr_len == 0 ||
	    req->csr_len > ENROLL_CSR_MAX ||
	    memchr(req->csr, '\0', req->csr_len) != NULL)
		return ENROLL_BAD_CSR_SIZE;
	if ((req->model != NULL &&
	     !label_text_valid(req->model, ENROLL_TEXT_MAX)) ||
	    (req->serial != NULL &&
	     !label_text_valid(req->serial, ENROLL_TEXT_MAX)))
		return ENROLL_BAD_TEXT;
	return ENROLL_OK;
}

/* What a token that cannot give a use answers (token_enroll_refusal). */
static enum enroll_rc
enroll_refused(const struct token *tok, int64_t now)
{
	switch (token_enroll_refusal(tok, now)) {
	case TOKEN_OK:
		return ENROLL_OK;
	case TOKEN_REVOKED:
		return ENROLL_TOKEN_REVOKED;
	case TOKEN_EXPIRED:
		return ENROLL_TOKEN_EXPIRED;
	default:
		return ENROLL_TOKEN_EXHAUSTED;
	}
}

/* The enrollment token with this hash, read into *tok. */
static enum enroll_rc
token_read(struct store *st, const char *sha256, struct token *tok)
{
	switch (store_enroll_token_find(st, sha256, tok)) {
	case STORE_OK:
		return ENROLL_OK;
	case STORE_NOTFOUND:
		return ENROLL_TOKEN_UNKNOWN;
	default:
		return ENROLL_ERR_STORE;
	}
}

/* Why the record could not take a use of the token with this hash. */
static enum enroll_rc
enroll_refusal(struct store *st, const char *sha256, int64_t now)
{
	struct token tok;
	enum enroll_rc why;

	memset(&tok, 0, sizeof(tok));
	why = token_read(st, sha256, &tok);
	if (why != ENROLL_OK)
		return why;
	why = enroll_refused(&tok, now);
	token_clear(&tok);
	/* Usable again (a concurrent record failed, or the last use went
	 * to an earlier record of the same batch): this record lost the
	 * race all the same. */
	return why == ENROLL_OK ? ENROLL_TOKEN_EXHAUSTED : why;
}

static enum enroll_rc
enroll_sign(struct signer_client *signer, const struct enroll_request *req,
	    long validity_s, struct enroll_result *res, char *err,
	    size_t errlen)
{
	char why[256] = "";
	enum signer_status st;

	st = signer_issue_device(signer, req->csr, req->csr_len, res->device_id,
				 validity_s, &res->issued, why, sizeof(why));
	if (st == SIGNER_OK)
		return ENROLL_OK;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return st == SIGNER_REJECTED ? ENROLL_CSR_REJECTED
				     : ENROLL_SIGNER_UNAVAILABLE;
}

/* What an enrollment writes: device, certificate, one audit row. */
static enum enroll_rc
enroll_record(struct store *st, const struct enroll_request *req,
	      const struct token *tok, const char *sha256, int64_t now,
	      struct enroll_result *res, struct idem_record *idem)
{
	struct label_set labels = {0, NULL};
	struct enrollment e;
	struct audit_entry a;
	char actor[AUDIT_ACTOR_MAX];
	enum store_rc rc;

	if (label_set_merge(&req->labels, &tok->labels, &labels) != LABEL_OK)
		return ENROLL_ERR_NOMEM;
	memset(&e, 0, sizeof(e));
	e.device_id = res->device_id;
	e.token_id = tok->id;
	e.labels = &labels;
	e.model = req->model;
	e.serial = req->serial;
	e.profile = tok->profile;
	e.cert_serial = res->issued.serial;
	e.issuer = res->issued.issuer;
	e.not_before = res->issued.not_before;
	e.not_after = res->issued.not_after;
	e.now = now;
	snprintf(actor, sizeof(actor), "device:%s", res->device_id);
	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = "device.enroll";
	a.target = res->device_id;
	audit_add_str(&a, "enrollment_token", tok->id);
	audit_add_str(&a, "certificate_serial", res->issued.serial);
	audit_add_str(&a, "peer", req->peer);
	rc = store_enroll_record(st, &e, &a, idem);
	label_set_clear(&labels);
	if (rc == STORE_CONFLICT)
		return ENROLL_IDEM_TAKEN;
	if (rc == STORE_NOTFOUND)
		return enroll_refusal(st, sha256, now);
	return rc == STORE_OK ? ENROLL_OK : ENROLL_ERR_STORE;
}

/* Fills rec for idem; ENROLL_OK to go on, else replay/mismatch/error. */
static enum enroll_rc
enroll_idem_lookup(struct store *st, struct enroll_idem *idem,
		   const char *actor, struct idem_record *rec)
{
	enum idem_rc rc;

	memset(rec, 0, sizeof(*rec));
	rec->actor = actor;
	rec->key = idem->key;
	rec->status = 201;
	idem_request_hash(idem->method, idem->path, idem->body, idem->body_len,
			  rec->request_sha256);
	rc = idem_lookup(st, rec, &idem->replay_status, &idem->replay_body);
	if (rc == IDEM_REPLAY)
		return ENROLL_REPLAY;
	if (rc == IDEM_MISMATCH)
		return ENROLL_IDEM_MISMATCH;
	return rc == IDEM_NEW ? ENROLL_OK : ENROLL_ERR_STORE;
}

enum enroll_rc
enroll_device(struct store *st, struct signer_client *signer,
	      const struct enroll_request *req, long validity_s, int64_t now,
	      struct enroll_idem *idem, struct enroll_result *out, char *err,
	      size_t errlen)
{
	char sha256[SECRET_SHA256_HEX], actor[ENROLL_ACTOR_MAX];
	struct idem_record rec;
	struct enroll_result res;
	struct token tok;
	enum enroll_rc rc;

	memset(&res, 0, sizeof(res));
	memset(&tok, 0, sizeof(tok));
	memset(&rec, 0, sizeof(rec));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = enroll_request_check(req);
	if (rc != ENROLL_OK)
		return rc;
	/* A false shape costs no storage round trip. */
	if (!token_text_valid(TOKEN_ENROLL, req->token))
		return ENROLL_TOKEN_UNKNOWN;
	secret_sha256_hex(req->token, strlen(req->token), sha256);
	if (idem != NULL) {
		snprintf(actor, sizeof(actor), "enroll:%s", sha256);
		rc = enroll_idem_lookup(st, idem, actor, &rec);
		if (rc != ENROLL_OK)
			return rc;
	}
	/* A read: a token that is already unusable is refused before the
	 * ca signs anything. The use itself is taken by the record, in the
	 * same unit of work as the device, so there is nothing to give
	 * back on any failure below. */
	rc = token_read(st, sha256, &tok);
	if (rc == ENROLL_OK)
		rc = enroll_refused(&tok, now);
	if (rc != ENROLL_OK)
		goto out;
	snprintf(res.token_id, sizeof(res.token_id), "%s", tok.id);
	if (secret_uuid_v4(res.device_id) != 0) {
		rc = ENROLL_ERR_NOMEM;
		goto out;
	}
	rc = enroll_sign(signer, req, validity_s, &res, err, errlen);
	if (rc != ENROLL_OK)
		goto out;
	if (idem != NULL) {
		rec.body = idem->render(&res, idem->arg);
		if (rec.body == NULL) {
			rc = ENROLL_ERR_NOMEM;
			goto out;
		}
	}
	rc = enroll_record(st, req, &tok, sha256, now, &res,
			   idem != NULL ? &rec : NULL);
	if (rc != ENROLL_OK)
		goto out;
	*out = res;
	memset(&res, 0, sizeof(res));
out:
	free(rec.body);
	token_clear(&tok);
	enroll_result_clear(&res);
	return rc;
}

void
enroll_request_clear(struct enroll_request *req)
{
	if (req == NULL)
		return;
	label_set_clear(&req->labels);
	memset(req, 0, sizeof(*req));
}

void
enroll_result_clear(struct enroll_result *res)
{
	if (res == NULL)
		return;
	signer_issued_free(&res->issued);
	memset(res, 0, sizeof(*res));
}
