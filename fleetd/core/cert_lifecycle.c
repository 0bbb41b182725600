/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate lifecycle rules and flows (see core/cert_lifecycle.h). Runs
 * on net workers' job threads; blocks on the store and the signer port,
 * never with a transaction open across the signer call.
 */
#include "core/cert_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "log.h"
#include "secret.h"

enum cert_status
cert_status_shown(enum cert_status stored, int64_t not_after, int64_t now)
{
	if (stored == CERT_REVOKED)
		return CERT_REVOKED;
	if (not_after <= now)
		return CERT_EXPIRED;
	return stored;
}

bool
cert_status_refused(enum cert_status stored)
{
	return stored == CERT_SUPERSEDED || stored == CERT_REVOKED;
}

/* RFC 5280 section 5.3.1; index = code. */
static const char *const reason_names[] = {
	"unspecified",	   "keyCompromise",
	"cACompromise",	   "affiliationChanged",
	"superseded",	   "cessationOfOperation",
	"certificateHold", NULL,
	"removeFromCRL",   "privilegeWithdrawn",
	"aACompromise",
};
#define REASONS (sizeof(reason_names) / sizeof(reason_names[0]))

static bool
reason_allowed(int code)
{
	/* No holds (a hold is a revocation that can be undone; the
	 * handshake set and the CRL here only grow), removeFromCRL belongs
	 * to delta CRLs, 7 is unused. */
	return code >= 0 && code < (int)REASONS && code != 6 && code != 7 &&
	       code != 8;
}

int
cert_reason_parse(const char *name)
{
	char *end = NULL;
	long code;

	if (name == NULL || name[0] == '\0')
		return -1;
	for (size_t i = 0; i < REASONS; i++) {
		if (reason_names[i] != NULL &&
		    strcmp(name, reason_names[i]) == 0)
			return reason_allowed((int)i) ? (int)i : -1;
	}
	if (name[0] < '0' || name[0] > '9' || strlen(name) > 2)
		return -1;
	code = strtol(name, &end, 10);
	if (end == NULL || *end != '\0')
		return -1;
	return reason_allowed((int)code) ? (int)code : -1;
}

const char *
cert_reason_name(int code)
{
	if (code < 0 || code >= (int)REASONS || reason_names[code] == NULL)
		return "unspecified";
	return reason_names[code];
}

/* ---- renewal ------------------------------------------------------------ */

void
cert_renew_result_clear(struct cert_renew_result *r)
{
	if (r == NULL)
		return;
	free(r->cert_pem);
	memset(r, 0, sizeof(*r));
}

enum cert_renew_verdict
cert_renew_rule(const struct cert_renew_request *req,
		const struct cert_renew_facts *f)
{
	if (!f->device_active)
		return CERT_RENEW_REFUSE_DEVICE;
	if (!f->session_known || f->session_status != CERT_ACTIVE)
		return CERT_RENEW_REFUSE_SESSION;
	/* The subject is the server's to choose; a CN that names another
	 * device is a confused or hostile client. */
	if (req->csr_cn != NULL && req->csr_cn[0] != '\0' &&
	    strcmp(req->csr_cn, req->device_id) != 0)
		return CERT_RENEW_REFUSE_NAME;
	if (f->key_known) {
		/* Certified for this device by an earlier answer to this
		 * renewal: the same answer again, while it is not installed
		 * or it is the very certificate of this session (a copy of
		 * the report that arrives over the new session). */
		if (f->key_same_device && f->key_status == CERT_ACTIVE &&
		    f->key_pem != NULL &&
		    (!f->key_installed ||
		     strcmp(f->key_serial, req->session_serial) == 0))
			return CERT_RENEW_REPEAT;
		return CERT_RENEW_REFUSE_KEY;
	}
	/* The key of the session's certificate (one from enrollment, whose
	 * key is not on record) is never certified again. */
	if (req->session_key_sha256 != NULL &&
	    strcmp(req->csr_key_sha256, req->session_key_sha256) == 0)
		return CERT_RENEW_REFUSE_KEY;
	return CERT_RENEW_SIGN;
}

const char *
cert_renew_verdict_code(enum cert_renew_verdict v)
{
	switch (v) {
	case CERT_RENEW_SIGN:
		return "sign";
	case CERT_RENEW_REPEAT:
		return "repeat";
	case CERT_RENEW_REFUSE_DEVICE:
		return "device-not-active";
	case CERT_RENEW_REFUSE_SESSION:
		return "certificate-not-active";
	case CERT_RENEW_REFUSE_NAME:
		return "csr-names-another-device";
	case CERT_RENEW_REFUSE_KEY:
		return "key-reused";
	}
	return "refused";
}

static enum cert_renew_rc
repeat_answer(const struct cert_renew_facts *f, struct cert_renew_result *out)
{
	out->verdict = CERT_RENEW_REPEAT;
	snprintf(out->serial, sizeof(out->serial), "%s", f->key_serial);
	out->cert_pem = strdup(f->key_pem);
	out->not_before = f->key_not_before;
	out->not_after = f->key_not_after;
	return out->cert_pem != NULL ? CERT_RENEW_REPEATED
				     : CERT_RENEW_UNAVAILABLE;
}

static enum cert_renew_rc
renew_record(struct store *st, const struct cert_renew_request *req,
	     const struct signer_issued *issued)
{
	struct cert_record rec;
	struct audit_entry a;
	char actor[AUDIT_ACTOR_MAX];
	enum store_rc rc;

	memset(&rec, 0, sizeof(rec));
	rec.device_id = req->device_id;
	rec.serial = issued->serial;
	rec.key_sha256 = req->csr_key_sha256;
	rec.pem = issued->cert_pem;
	rec.not_before = issued->not_before;
	rec.not_after = issued->not_after;
	rec.csr_seq = req->seq;
	rec.rotation_id = req->rotation_id;
	snprintf(actor, sizeof(actor), "device:%s", req->device_id);
	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = "certificate.renew";
	a.target = req->device_id;
	audit_add_str(&a, "certificate_serial", issued->serial);
	audit_add_str(&a, "previous_serial", req->session_serial);
	audit_add_str(&a, "public_key_sha256", req->csr_key_sha256);
	if (req->rotation_id != NULL)
		audit_add_str(&a, "rotation_id", req->rotation_id);
	rc = store_cert_record_renewal(st, &rec, &a);
	if (rc == STORE_OK)
		return CERT_RENEW_ISSUED;
	if (rc == STORE_CONFLICT)
		return CERT_RENEW_REPEATED; /* re-read by the caller */
	if (rc == STORE_NOTFOUND)
		return CERT_RENEW_REFUSED;
	return CERT_RENEW_UNAVAILABLE;
}

enum cert_renew_rc
cert_renew(struct store *st, struct signer_client *signer,
	   const struct cert_renew_request *req, struct cert_renew_result *out,
	   char *err, size_t errlen)
{
	struct cert_renew_facts f;
	struct signer_issued issued;
	enum signer_status sst;
	enum cert_renew_rc rc;
	char why[256] = "";

	memset(&f, 0, sizeof(f));
	memset(&issued, 0, sizeof(issued));
	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (store_cert_renew_facts(st, req->device_id, req->session_serial,
				   req->csr_key_sha256, &f) != STORE_OK)
		return CERT_RENEW_UNAVAILABLE;
	out->verdict = cert_renew_rule(req, &f);
	if (out->verdict == CERT_RENEW_REPEAT) {
		rc = repeat_answer(&f, out);
		goto out;
	}
	if (out->verdict != CERT_RENEW_SIGN) {
		rc = CERT_RENEW_REFUSED;
		goto out;
	}
	if (signer == NULL) {
		rc = CERT_RENEW_UNAVAILABLE;
		snprintf(why, sizeof(why), "no signer in this process");
		goto out;
	}
	sst = signer_issue_device(signer, req->csr_pem, req->csr_len,
				  req->device_id, req->validity_s, &issued, why,
				  sizeof(why));
	if (sst != SIGNER_OK) {
		rc = sst == SIGNER_REJECTED ? CERT_RENEW_CSR_REJECTED
					    : CERT_RENEW_UNAVAILABLE;
		goto out;
	}
	rc = renew_record(st, req, &issued);
	if (rc == CERT_RENEW_ISSUED) {
		/* A serial the ca made fits (20 octets, RFC 5280). */
		memcpy(out->serial, issued.serial,
		       strnlen(issued.serial, sizeof(out->serial) - 1));
		out->cert_pem = issued.cert_pem;
		issued.cert_pem = NULL;
		out->not_before = issued.not_before;
		out->not_after = issued.not_after;
	} else if (rc == CERT_RENEW_REPEATED) {
		/* A concurrent copy of this report recorded its certificate
		 * first; ours is never handed out (and, unrecorded, never
		 * accepted at a handshake). */
		cert_renew_facts_clear(&f);
		if (store_cert_renew_facts(
			    st, req->device_id, req->session_serial,
			    req->csr_key_sha256, &f) != STORE_OK) {
			rc = CERT_RENEW_UNAVAILABLE;
		} else {
			out->verdict = cert_renew_rule(req, &f);
			rc = out->verdict == CERT_RENEW_REPEAT
				     ? repeat_answer(&f, out)
				     : CERT_RENEW_REFUSED;
		}
	} else if (rc == CERT_RENEW_REFUSED) {
		out->verdict = CERT_RENEW_REFUSE_DEVICE;
	}
out:
	if (err != NULL && errlen > 0 && why[0] != '\0')
		snprintf(err, errlen, "%s", why);
	signer_issued_free(&issued);
	cert_renew_facts_clear(&f);
	return rc;
}

/* ---- second phase ------------------------------------------------------- */

enum cert_installed_rc
cert_installed(struct store *st, const char *device_id,
	       const char *session_serial, const char *serial)
{
	struct audit_entry a;
	char actor[AUDIT_ACTOR_MAX];
	bool again = false;
	enum store_rc rc;

	/* The session that reports it must have presented it: that is the
	 * proof the device holds and uses the new key. Hex case is the
	 * one of pki_cert_serial_hex on our side; the device may print
	 * lowercase. */
	if (session_serial == NULL || serial == NULL ||
	    strcasecmp(session_serial, serial) != 0)
		return CERT_INSTALLED_NOT_SESSION;
	snprintf(actor, sizeof(actor), "device:%s", device_id);
	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = "certificate.install";
	a.target = device_id;
	audit_add_str(&a, "certificate_serial", session_serial);
	rc = store_cert_installed(st, device_id, session_serial, &again, &a);
	if (rc == STORE_NOTFOUND)
		return CERT_INSTALLED_UNKNOWN;
	if (rc != STORE_OK)
		return CERT_INSTALLED_ERR;
	return again ? CERT_INSTALLED_AGAIN : CERT_INSTALLED_OK;
}

/* ---- operators ---------------------------------------------------------- */

static enum cert_op_rc
op_rc(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:
		return CERT_OP_OK;
	case STORE_NOTFOUND:
		return CERT_OP_NOTFOUND;
	case STORE_CONFLICT:
		return CERT_OP_CONFLICT;
	default:
		return CERT_OP_ERR_STORE;
	}
}

enum cert_op_rc
cert_rotation_request(struct store *st, const char *device_id,
		      const char *reason, const char *actor, char *id,
		      bool *created)
{
	struct audit_entry a;
	enum store_rc rc;

	if (reason == NULL || (strcmp(reason, "operator") != 0 &&
			       strcmp(reason, "expiring") != 0 &&
			       strcmp(reason, "campaign") != 0))
		return CERT_OP_BAD_INPUT;
	if (secret_uuid_v4(id) != 0)
		return CERT_OP_ERR_STORE;
	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = "device.rotate";
	a.target = device_id;
	audit_add_str(&a, "rotation_id", id);
	audit_add_str(&a, "reason", reason);
	rc = store_cert_rotation_request(st, device_id, reason, id, created,
					 &a);
	return op_rc(rc);
}

bool
cert_serial_normalize(const char *serial, char *out)
{
	size_t n = serial != NULL ? strlen(serial) : 0, j = 0;

	if (n == 0 || n > CERT_SERIAL_MAX - 1)
		return false;
	if (n % 2 == 1) {
		if (n + 1 > CERT_SERIAL_MAX - 1)
			return false;
		out[j++] = '0';
	}
	for (size_t i = 0; i < n; i++) {
		char ch = serial[i];

		if (ch >= 'a' && ch <= 'f')
			ch = (char)(ch - 'a' + 'A');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
			return false;
		out[j++] = ch;
	}
	out[j] = '\0';
	return true;
}

enum cert_op_rc
cert_revoke(struct store *st, const char *serial, int reason, const char *actor,
	    char *device_id)
{
	char norm[CERT_SERIAL_MAX];

	if (!cert_serial_normalize(serial, norm) || reason < 0 ||
	    cert_reason_parse(cert_reason_name(reason)) != reason)
		return CERT_OP_BAD_INPUT;
	return op_rc(store_cert_revoke(st, norm, reason, actor, device_id));
}
