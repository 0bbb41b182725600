/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate renewal on the device (docs/agent.md "Certificate renewal",
 * docs/pki.md "Renewal and rotation"): a new key generated here, a
 * cert.csr report, the certificate from cert.issued, a reconnect with it,
 * and only then the switch of identity.json and cert.installed. Every step
 * is journalled in state_dir/renew.json (atomic writes) before the next,
 * so kill -9 at any moment leaves the identity identity.json names intact
 * and the journal says how to go on (agent_int.h lists the states).
 *
 * Runs in fleet-agent on the loop thread (file writes are small). The
 * cert.issued message is untrusted: the certificate must carry the
 * pending key and name this device before anything is written.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "clock.h"

#define RENEW_JSON_MAX (16u * 1024u)

/*
 * Crash injection for the kill-at-each-step test (test_renewal.sh):
 * FLEET_AGENT_CRASH_AT=<step> makes the agent SIGKILL itself right after
 * that step is on disk, exactly as `kill -9` at that moment would. Steps:
 * keygen, key, csr, issued, switched, installed.
 */
static void
crash_point(const char *step)
{
	const char *at = getenv("FLEET_AGENT_CRASH_AT");

	if (at != NULL && strcmp(at, step) == 0)
		raise(SIGKILL);
}

static const char *const state_names[] = {
	[AGENT_RENEW_NONE] = "none",
	[AGENT_RENEW_KEYGEN] = "keygen",
	[AGENT_RENEW_CSR] = "csr",
	[AGENT_RENEW_ISSUED] = "issued",
	[AGENT_RENEW_INSTALLED] = "installed",
};

static int
journal_path(const char *dir, char *path, size_t cap)
{
	return agent_path(path, cap, dir, AGENT_RENEW_FILE);
}

static int
journal_write(const char *dir, const struct agent_renew *r, char *err,
	      size_t errlen)
{
	char path[AGENT_PATH_MAX], *text = NULL;
	json_t *doc;
	int rc;

	if (journal_path(dir, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	doc = json_pack("{s:s, s:i, s:i, s:I, s:I, s:s, s:s, s:s, s:s, s:I}",
			"state", state_names[r->state], "gen", r->gen,
			"prev_gen", r->prev_gen, "csr_seq",
			(json_int_t)r->csr_seq, "installed_seq",
			(json_int_t)r->installed_seq, "reason", r->reason,
			"rotation_id", r->rotation_id, "serial", r->serial,
			"previous_serial", r->previous_serial, "started",
			(json_int_t)r->started);
	text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = atomic_write_file(path, text, strlen(text), 0600, err, errlen);
	free(text);
	return rc;
}

static void
journal_remove(const char *dir)
{
	char path[AGENT_PATH_MAX];

	if (journal_path(dir, path, sizeof(path)) == 0)
		(void)unlink(path);
}

static void
copy_str(char *dst, size_t cap, const json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, cap, "%s", s != NULL ? s : "");
}

static int
journal_read(const char *dir, struct agent_renew *r, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX], *text = NULL;
	const char *state;
	json_t *doc;
	size_t len;

	memset(r, 0, sizeof(*r));
	if (journal_path(dir, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (read_file_bounded(path, RENEW_JSON_MAX, &text, &len, err, errlen) !=
	    0)
		return -1;
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(doc)) {
		/* Written atomically, so never half; unreadable means
		 * foreign: start over (the identity is untouched). */
		json_decref(doc);
		journal_remove(dir);
		return 0;
	}
	state = json_string_value(json_object_get(doc, "state"));
	for (int i = AGENT_RENEW_KEYGEN;
	     state != NULL && i <= AGENT_RENEW_INSTALLED; i++) {
		if (strcmp(state, state_names[i]) == 0)
			r->state = (enum agent_renew_state)i;
	}
	r->gen = (int)json_integer_value(json_object_get(doc, "gen"));
	r->prev_gen = (int)json_integer_value(json_object_get(doc, "prev_gen"));
	r->csr_seq =
		(uint64_t)json_integer_value(json_object_get(doc, "csr_seq"));
	r->installed_seq = (uint64_t)json_integer_value(
		json_object_get(doc, "installed_seq"));
	r->started = json_integer_value(json_object_get(doc, "started"));
	copy_str(r->reason, sizeof(r->reason), json_object_get(doc, "reason"));
	copy_str(r->rotation_id, sizeof(r->rotation_id),
		 json_object_get(doc, "rotation_id"));
	copy_str(r->serial, sizeof(r->serial), json_object_get(doc, "serial"));
	copy_str(r->previous_serial, sizeof(r->previous_serial),
		 json_object_get(doc, "previous_serial"));
	json_decref(doc);
	if (r->gen <= 0 || r->gen > 1000000)
		r->state = AGENT_RENEW_NONE;
	return 0;
}

/* The pending key of generation gen; NULL when it does not load. */
static EVP_PKEY *
gen_key(const char *dir, int gen)
{
	struct agent_identity_files f;
	char path[AGENT_PATH_MAX];
	struct pki_error perr;
	EVP_PKEY *key = NULL;

	if (agent_identity_files(gen, &f) != 0 ||
	    agent_path(path, sizeof(path), dir, f.key) != 0 ||
	    pki_key_load_private(path, &key, &perr) != PKI_OK)
		return NULL;
	return key;
}

/* Queues cert.csr for the pending key (a new CSR: ECDSA signatures are
 * randomised, the server keys its answer on the public key). */
static int
queue_csr(const char *dir, const struct agent_identity *id,
	  struct agent_renew *r, char *err, size_t errlen)
{
	struct pki_error perr;
	EVP_PKEY *key = gen_key(dir, r->gen);
	char *csr = NULL;
	size_t len;
	json_t *msg = NULL;
	int rc = -1;

	if (key == NULL) {
		snprintf(err, errlen, "the renewal key does not load");
		return -1;
	}
	if (pki_csr_create(key, id->device_id, &csr, &len, &perr) != PKI_OK) {
		snprintf(err, errlen, "csr: %s", perr.msg);
		goto out;
	}
	msg = json_pack("{s:s, s:s, s:s}", "type", "cert.csr", "csr", csr,
			"reason", r->reason);
	if (msg != NULL && r->rotation_id[0] != '\0')
		json_object_set_new(msg, "rotation_id",
				    json_string(r->rotation_id));
	if (msg == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = agent_report_enqueue(dir, msg, &r->csr_seq, err, errlen);
out:
	json_decref(msg);
	free(csr);
	EVP_PKEY_free(key);
	return rc;
}

static int
queue_installed(const char *dir, struct agent_renew *r,
		const struct agent_identity *id, char *err, size_t errlen)
{
	json_t *msg = json_pack("{s:s, s:s}", "type", "cert.installed",
				"serial", id->cert_serial);
	int rc;

	if (msg == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (r->previous_serial[0] != '\0')
		json_object_set_new(msg, "previous_serial",
				    json_string(r->previous_serial));
	if (r->rotation_id[0] != '\0')
		json_object_set_new(msg, "rotation_id",
				    json_string(r->rotation_id));
	rc = agent_report_enqueue(dir, msg, &r->installed_seq, err, errlen);
	json_decref(msg);
	return rc;
}

int
agent_renew_load(const char *dir, const struct agent_identity *id,
		 struct agent_renew *r, char *err, size_t errlen)
{
	struct agent_identity_files f;
	char path[AGENT_PATH_MAX], *text = NULL;
	size_t len;
	EVP_PKEY *key;
	int n;

	if (journal_read(dir, r, err, errlen) != 0)
		return -1;
	switch (r->state) {
	case AGENT_RENEW_NONE:
		journal_remove(dir);
		return 0;
	case AGENT_RENEW_KEYGEN:
		/* Killed while making the key: nothing was sent. */
		if (r->gen != id->generation)
			agent_identity_remove_generation(dir, r->gen);
		break;
	case AGENT_RENEW_CSR:
		key = gen_key(dir, r->gen);
		if (key != NULL) {
			EVP_PKEY_free(key);
			return 0;
		}
		break;
	case AGENT_RENEW_ISSUED:
		if (id->generation == r->gen) {
			/* Killed after the switch, before cert.installed
			 * was queued. */
			if (queue_installed(dir, r, id, err, errlen) != 0)
				return -1;
			r->state = AGENT_RENEW_INSTALLED;
			return journal_write(dir, r, err, errlen);
		}
		if (agent_identity_files(r->gen, &f) == 0 &&
		    agent_path(path, sizeof(path), dir, f.client) == 0 &&
		    access(path, R_OK) == 0)
			return 0;
		break;
	case AGENT_RENEW_INSTALLED:
		if (id->generation != r->gen)
			break;
		n = agent_queue_read(dir, r->installed_seq, &text, &len, err,
				     errlen);
		free(text);
		if (n == 1)
			return 0; /* still to be acknowledged */
		agent_renew_finish(dir, r);
		return 0;
	}
	/* Nothing usable left of it: the identity in use stays, and the
	 * next renewal starts over. */
	journal_remove(dir);
	memset(r, 0, sizeof(*r));
	return 0;
}

int
agent_renew_start(const char *dir, const struct agent_identity *id,
		  const char *reason, const char *rotation_id,
		  struct agent_renew *r, char *err, size_t errlen)
{
	struct agent_identity_files f;
	char path[AGENT_PATH_MAX];
	struct pki_error perr;
	EVP_PKEY *key = NULL;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->state = AGENT_RENEW_KEYGEN;
	r->gen = id->generation + 1;
	r->prev_gen = id->generation;
	r->started = clock_wall_s();
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	snprintf(r->rotation_id, sizeof(r->rotation_id), "%s",
		 rotation_id != NULL ? rotation_id : "");
	snprintf(r->previous_serial, sizeof(r->previous_serial), "%s",
		 id->cert_serial);
	if (agent_identity_files(r->gen, &f) != 0 ||
	    agent_path(path, sizeof(path), dir, f.key) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (journal_write(dir, r, err, errlen) != 0)
		return -1;
	crash_point("keygen");
	if (pki_key_generate(PKI_KEY_P256, &key, &perr) != PKI_OK ||
	    pki_key_save_private(key, path, true, &perr) != PKI_OK) {
		snprintf(err, errlen, "renewal key: %s", perr.msg);
		goto out;
	}
	crash_point("key");
	if (queue_csr(dir, id, r, err, errlen) != 0)
		goto out;
	r->state = AGENT_RENEW_CSR;
	rc = journal_write(dir, r, err, errlen);
	if (rc == 0)
		crash_point("csr");
out:
	EVP_PKEY_free(key);
	return rc;
}

int
agent_renew_resend(const char *dir, const struct agent_identity *id,
		   struct agent_renew *r, char *err, size_t errlen)
{
	if (queue_csr(dir, id, r, err, errlen) != 0)
		return -1;
	return journal_write(dir, r, err, errlen);
}

int
agent_renew_issued(const char *dir, const struct agent_identity *id,
		   struct agent_renew *r, const struct proto_msg *m, char *err,
		   size_t errlen)
{
	const char *pem = proto_str(m, "certificate");
	const char *chain = proto_str(m, "chain");
	struct pki_error perr;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char cn[64];
	int rc = -1;

	if (r->state != AGENT_RENEW_CSR)
		return 1;
	key = gen_key(dir, r->gen);
	if (key == NULL || pem == NULL ||
	    pki_cert_parse(pem, strlen(pem), &cert, &perr) != PKI_OK) {
		snprintf(err, errlen, "cert.issued: no usable certificate");
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		rc = 1; /* an answer to an earlier request: not ours now */
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
				      NID_commonName, cn, sizeof(cn)) <= 0 ||
	    strcmp(cn, id->device_id) != 0) {
		snprintf(err, errlen, "cert.issued names another device");
		goto out;
	}
	if (pki_cert_serial_hex(cert, r->serial, sizeof(r->serial), &perr) !=
		    PKI_OK ||
	    agent_identity_write_generation(dir, r->gen, pem, chain, err,
					    errlen) != 0)
		goto out;
	r->state = AGENT_RENEW_ISSUED;
	rc = journal_write(dir, r, err, errlen);
	if (rc == 0)
		crash_point("issued");
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

int
agent_renew_commit(const char *dir, struct agent_identity *id,
		   struct agent_renew *r, char *err, size_t errlen)
{
	struct agent_identity next;

	if (r->state != AGENT_RENEW_ISSUED)
		return 0;
	if (agent_identity_switch(dir, id, r->gen, &next, err, errlen) != 0)
		return -1;
	*id = next;
	crash_point("switched");
	if (queue_installed(dir, r, id, err, errlen) != 0)
		return -1;
	r->state = AGENT_RENEW_INSTALLED;
	if (journal_write(dir, r, err, errlen) != 0)
		return -1;
	crash_point("installed");
	return 0;
}

void
agent_renew_finish(const char *dir, struct agent_renew *r)
{
	if (r->prev_gen != r->gen)
		agent_identity_remove_generation(dir, r->prev_gen);
	journal_remove(dir);
	memset(r, 0, sizeof(*r));
}

int64_t
agent_renew_due(int64_t not_before, int64_t not_after, double fraction,
		unsigned jitter_permille)
{
	int64_t life = not_after - not_before;
	int64_t at, jitter = 0;
	uint32_t rnd = 0;

	if (fraction <= 0.0 || fraction >= 1.0)
		fraction = 2.0 / 3.0;
	if (life <= 0)
		return not_after;
	at = not_before + (int64_t)((double)life * fraction);
	if (jitter_permille > 0 &&
	    RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) == 1)
		jitter = (int64_t)((double)life * jitter_permille / 1000.0 *
				   ((double)rnd / 4294967296.0));
	return at - jitter;
}

int64_t
agent_cert_not_before(const char *path)
{
	struct pki_error perr;
	X509 *cert = NULL;
	struct tm tm;
	int64_t t = 0;

	if (pki_cert_load(path, &cert, &perr) != PKI_OK)
		return 0;
	if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) == 1)
		t = (int64_t)timegm(&tm);
	X509_free(cert);
	return t;
}
