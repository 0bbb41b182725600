/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates over the device channel (see cert.h). The frames are
 * untrusted: the CSR is parsed and checked on a job thread (and again by
 * the ca process), the device id is the session certificate's, and the
 * second phase is accepted only from a session that presented the
 * certificate it reports. Rules live in core/cert_lifecycle.c.
 */
#include "channel/cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "atomicfile.h"
#include "channel/channel_int.h"
#include "channel/report_batch.h"
#include "core/cert_installed_batch.h"
#include "core/cert_lifecycle.h"
#include "core/store_certificates.h"
#include "log.h"
#include "pki.h"
#include "proto/proto.h"
#include "secret.h"

#define CHAIN_MAX (64u * 1024u)

/* A report refused for good: the agent drops it. */
static void
send_rejected(struct channel_session *s, uint64_t seq, const char *type,
	      const char *message)
{
	char code[48];

	snprintf(code, sizeof(code), "bad-%s", type);
	channel_send_report_error(s, code, message, seq, type);
	channel_send_ack(s, seq, "rejected");
}

/*
 * cert.csr and cert.installed are idempotent by their content (the CSR's
 * public key: the same certificate again; the serial: installed once), so
 * their effect is exactly once without the report window, and the ack says
 * which it was. Two commits fewer per renewal than going through
 * report_submit as well (docs/internals/cert-renew.md).
 */
static const char *
ack_word(bool first)
{
	return first ? "applied" : "duplicate";
}

/* ---- cert.csr ----------------------------------------------------------- */

struct csr_job {
	char device_id[SECRET_UUID_LEN];
	char session_serial[PKI_SERIAL_HEX_MAX];
	char session_key[PKI_KEY_ID_LEN];
	char rotation_id[SECRET_UUID_LEN];
	uint64_t seq;
	char *csr;
	long validity_s;
	char pki_dir[1024];
	struct signer_client *signer;
	/* results */
	enum cert_renew_rc rc;
	bool bad_csr; /* not parsable or against policy (before signing) */
	struct cert_renew_result res;
	char *chain;
	char err[256];
};

static void
csr_job_free(struct csr_job *job)
{
	free(job->csr);
	free(job->chain);
	cert_renew_result_clear(&job->res);
	free(job);
}

/* Parses and checks the CSR: its key id and subject CN. */
static int
csr_facts(struct csr_job *job, char key[PKI_KEY_ID_LEN], char cn[80])
{
	struct pki_policy policy;
	struct pki_error err;
	X509_REQ *req = NULL;
	int rc = -1;

	pki_policy_default(&policy);
	cn[0] = '\0';
	if (pki_csr_parse_check(job->csr, strlen(job->csr), &policy, &req,
				&err) != PKI_OK) {
		snprintf(job->err, sizeof(job->err), "csr refused: %.200s",
			 err.msg);
		return -1;
	}
	if (pki_key_id(X509_REQ_get0_pubkey(req), key, &err) != PKI_OK) {
		snprintf(job->err, sizeof(job->err), "csr key: %.200s",
			 err.msg);
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
				      NID_commonName, cn, 80) < 0)
		cn[0] = '\0';
	rc = 0;
out:
	X509_REQ_free(req);
	return rc;
}

static void
csr_run(struct store *st, const char *device_id, void *arg)
{
	struct csr_job *job = arg;
	struct cert_renew_request req;
	char key[PKI_KEY_ID_LEN], cn[80], path[1100];
	size_t len;

	(void)device_id;
	if (csr_facts(job, key, cn) != 0) {
		job->bad_csr = true;
		return;
	}
	memset(&req, 0, sizeof(req));
	req.device_id = job->device_id;
	req.session_serial = job->session_serial;
	req.session_key_sha256 = job->session_key;
	req.csr_pem = job->csr;
	req.csr_len = strlen(job->csr);
	req.csr_key_sha256 = key;
	req.csr_cn = cn;
	req.seq = job->seq;
	req.rotation_id = job->rotation_id[0] != '\0' ? job->rotation_id : NULL;
	req.validity_s = job->validity_s;
	job->rc = cert_renew(st, job->signer, &req, &job->res, job->err,
			     sizeof(job->err));
	if (job->rc != CERT_RENEW_ISSUED && job->rc != CERT_RENEW_REPEATED)
		return;
	snprintf(path, sizeof(path), "%s/ca-bundle.pem", job->pki_dir);
	if (read_file_bounded(path, CHAIN_MAX, &job->chain, &len, job->err,
			      sizeof(job->err)) != 0) {
		log_write(LOG_LEVEL_ERROR, job->device_id,
			  "channel: cannot read the chain for cert.issued: "
			  "%s",
			  job->err);
		job->rc = CERT_RENEW_UNAVAILABLE;
		return;
	}
	log_write(LOG_LEVEL_INFO, job->device_id,
		  "channel: certificate %s %s for renewal (csr seq %llu)",
		  job->res.serial,
		  job->rc == CERT_RENEW_ISSUED ? "issued" : "sent again",
		  (unsigned long long)job->seq);
}

static void
csr_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct csr_job *job = arg;
	json_t *fields;

	(void)ch;
	if (s == NULL)
		goto out;
	if (job->bad_csr) {
		send_rejected(s, job->seq, "cert.csr", job->err);
		goto out;
	}
	switch (job->rc) {
	case CERT_RENEW_ISSUED:
	case CERT_RENEW_REPEATED:
		fields = json_pack("{s:I, s:s, s:s, s:s}", "csr_seq",
				   (json_int_t)job->seq, "certificate",
				   job->res.cert_pem, "chain", job->chain,
				   "serial", job->res.serial);
		if (fields != NULL && job->rotation_id[0] != '\0')
			json_object_set_new(fields, "rotation_id",
					    json_string(job->rotation_id));
		channel_send_msg(s, PROTO_CERT_ISSUED, fields);
		channel_send_ack(s, job->seq,
				 ack_word(job->rc == CERT_RENEW_ISSUED));
		break;
	case CERT_RENEW_REFUSED:
		log_write(LOG_LEVEL_INFO, job->device_id,
			  "channel: renewal refused: %s",
			  cert_renew_verdict_code(job->res.verdict));
		if (job->res.verdict == CERT_RENEW_REFUSE_DEVICE ||
		    job->res.verdict == CERT_RENEW_REFUSE_SESSION)
			channel_send_report_error(
				s, "refused",
				"renewal refused: "
				"the device or its certificate is not active",
				job->seq, "cert.csr");
		else
			send_rejected(
				s, job->seq, "cert.csr",
				cert_renew_verdict_code(job->res.verdict));
		break;
	case CERT_RENEW_CSR_REJECTED:
		send_rejected(s, job->seq, "cert.csr",
			      job->err[0] != '\0' ? job->err
						  : "csr refused by policy");
		break;
	default:
		channel_send_report_error(
			s, "unavailable",
			"renewal not possible now; send it again "
			"later",
			job->seq, "cert.csr");
		break;
	}
out:
	csr_job_free(job);
}

void
cert_handle_csr(struct channel *ch, struct channel_session *s,
		struct proto_msg *m)
{
	struct csr_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {csr_run, csr_done, job};
	const char *rid = proto_str(m, "rotation_id");

	if (job == NULL)
		goto busy;
	snprintf(job->device_id, sizeof(job->device_id), "%s",
		 channel_session_device_id(s));
	snprintf(job->session_serial, sizeof(job->session_serial), "%s",
		 channel_session_serial(s));
	snprintf(job->session_key, sizeof(job->session_key), "%s",
		 channel_session_key_id(s));
	if (rid != NULL)
		snprintf(job->rotation_id, sizeof(job->rotation_id), "%s", rid);
	snprintf(job->pki_dir, sizeof(job->pki_dir), "%s", channel_pki_dir(ch));
	job->seq = m->seq;
	job->validity_s = channel_cert_validity(ch);
	job->signer = channel_signer(ch);
	job->csr = strdup(proto_str(m, "csr"));
	if (job->csr == NULL)
		goto busy;
	if (channel_submit_work(ch, s, &work))
		return;
busy:
	if (job != NULL)
		csr_job_free(job);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "cert.csr");
}

/* ---- cert.installed ----------------------------------------------------- */

/*
 * Installs are applied in batches (docs/internals/perf.md): each install
 * bumps the CRL generation, a single row locked until the commit's WAL
 * flush, so one transaction per install serialised every install of the
 * fleet behind one fsync each. The loop queues each report; while fewer
 * than INSTALL_IN_FLIGHT batches run, everything queued goes to a job
 * thread as one batch (cert_installed_batch: the rule per report, one
 * transaction). A lone report goes at once; under load the queue grows
 * into the next batch. Answers are sent after the commit: the trigger's
 * (the session the batch was submitted for) through it, the others
 * through their device's session on this worker, if it still has one.
 */
#define INSTALL_IN_FLIGHT 2
#define INSTALL_BATCH_MAX 512
#define INSTALL_QUEUED_MAX 16384

struct installed_item {
	struct report_batch_item base; /* first: the batch queue's part */
	char session_serial[PKI_SERIAL_HEX_MAX];
	char serial[72];
	uint64_t seq;
	enum cert_installed_rc rc;
};

struct cert_install_batch {
	struct report_batch q;
};

static struct installed_item *
installed_item(struct report_batch_item *it)
{
	return (struct installed_item *)it;
}

static void
installed_item_free(struct report_batch_item *it)
{
	free(it);
}

void
cert_install_batch_free(struct cert_install_batch *b)
{
	if (b == NULL)
		return;
	report_batch_clear(&b->q);
	free(b);
}

/* Job thread. */
static void
installed_run(struct store *st, struct report_batch_item **items, size_t n)
{
	struct cert_installed_item *ci = calloc(n, sizeof(*ci));

	if (ci == NULL) {
		for (size_t i = 0; i < n; i++)
			installed_item(items[i])->rc = CERT_INSTALLED_ERR;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ci[i].device_id = items[i]->device_id;
		ci[i].session_serial = installed_item(items[i])->session_serial;
		ci[i].serial = installed_item(items[i])->serial;
	}
	cert_installed_batch(st, ci, n);
	for (size_t i = 0; i < n; i++) {
		installed_item(items[i])->rc = ci[i].rc;
		if (ci[i].rc == CERT_INSTALLED_OK)
			log_write(LOG_LEVEL_INFO, items[i]->device_id,
				  "channel: certificate %s installed; older "
				  "ones superseded",
				  installed_item(items[i])->session_serial);
	}
	free(ci);
}

static void
installed_refuse(struct report_batch_item **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		installed_item(items[i])->rc = CERT_INSTALLED_ERR;
}

static void
installed_answer(struct channel_session *s,
		 const struct report_batch_item *base)
{
	const struct installed_item *it = (const struct installed_item *)base;

	switch (it->rc) {
	case CERT_INSTALLED_OK:
	case CERT_INSTALLED_AGAIN:
		channel_send_ack(s, it->seq,
				 ack_word(it->rc == CERT_INSTALLED_OK));
		break;
	case CERT_INSTALLED_NOT_SESSION:
		send_rejected(s, it->seq, "cert.installed",
			      "serial is not the certificate of this session; "
			      "report it over a session that presents it");
		break;
	case CERT_INSTALLED_UNKNOWN:
		send_rejected(s, it->seq, "cert.installed",
			      "no active certificate of this device with "
			      "that serial");
		break;
	default:
		channel_send_report_error(s, "unavailable",
					  "send the report again later",
					  it->seq, "cert.installed");
		break;
	}
}

static const struct report_batch_ops installed_ops = {
	.max_items = INSTALL_BATCH_MAX,
	.max_in_flight = INSTALL_IN_FLIGHT,
	.max_queued = INSTALL_QUEUED_MAX,
	.run = installed_run,
	.refuse = installed_refuse,
	.answer = installed_answer,
	.free_item = installed_item_free,
};

void
cert_handle_installed(struct channel *ch, struct channel_session *s,
		      struct proto_msg *m)
{
	struct cert_install_batch **slot = channel_cert_install_slot(ch);
	struct cert_install_batch *b = slot != NULL ? *slot : NULL;
	struct installed_item *it = NULL;

	if (slot == NULL)
		goto busy;
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			goto busy;
		report_batch_init(&b->q, ch, &installed_ops);
		*slot = b;
	}
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		goto busy;
	snprintf(it->session_serial, sizeof(it->session_serial), "%s",
		 channel_session_serial(s));
	snprintf(it->serial, sizeof(it->serial), "%s", proto_str(m, "serial"));
	it->seq = m->seq;
	if (report_batch_add(&b->q, s, &it->base))
		return;
busy:
	free(it);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "cert.installed");
}

/* ---- cert.rotate -------------------------------------------------------- */

struct rotate_job {
	char worker_id[128];
	char device_id[SECRET_UUID_LEN]; /* "" for every device */
	char serial[PKI_SERIAL_HEX_MAX];
	char status[16];
	bool check_status;
	struct cert_rotation_due *due;
	size_t ndue;
	bool ok;
};

static void
rotate_run(struct store *st, const char *device_id, void *arg)
{
	struct rotate_job *job = arg;

	(void)device_id;
	if (job->check_status &&
	    store_cert_status(st, job->device_id, job->serial, job->status) !=
		    STORE_OK)
		job->status[0] = '\0';
	job->ok = store_cert_rotations_due(
			  st, job->worker_id,
			  job->device_id[0] != '\0' ? job->device_id : NULL,
			  &job->due, &job->ndue) == STORE_OK;
}

static void
send_rotate(struct channel_session *s, const struct cert_rotation_due *d)
{
	char *sent = channel_session_rotation_sent(s);

	if (strcmp(sent, d->rotation_id) == 0)
		return;
	snprintf(sent, SECRET_UUID_LEN, "%s", d->rotation_id);
	log_write(LOG_LEVEL_INFO, d->device_id,
		  "channel: asking for a rotation (%s, %s)", d->rotation_id,
		  d->reason);
	channel_send_msg(s, PROTO_CERT_ROTATE,
			 json_pack("{s:s, s:s}", "rotation_id", d->rotation_id,
				   "reason", d->reason));
}

static void
rotate_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct rotate_job *job = arg;
	int status = cert_status_parse(job->status);

	if (job->check_status && s != NULL && status >= 0 &&
	    cert_status_refused((enum cert_status)status)) {
		/* The handshake refuses it once this worker's set is
		 * reloaded; the database is the authority meanwhile. */
		log_write(LOG_LEVEL_INFO, job->device_id,
			  "channel: certificate %s is %s; closing", job->serial,
			  job->status);
		channel_close_session(ch, s, 1008,
				      status == CERT_SUPERSEDED
					      ? "certificate superseded"
					      : "certificate revoked");
		goto out;
	}
	for (size_t i = 0; job->ok && i < job->ndue; i++) {
		struct channel_session *t =
			job->check_status ? s
					  : channel_find_device(
						    ch, job->due[i].device_id);

		if (t != NULL)
			send_rotate(t, &job->due[i]);
	}
out:
	free(job->due);
	free(job);
}

static void
rotate_submit(struct channel *ch, struct channel_session *s)
{
	struct rotate_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {rotate_run, rotate_done, job};

	if (job == NULL)
		return;
	snprintf(job->worker_id, sizeof(job->worker_id), "%s",
		 channel_worker_id(ch));
	if (s != NULL) {
		job->check_status = true;
		snprintf(job->device_id, sizeof(job->device_id), "%s",
			 channel_session_device_id(s));
		snprintf(job->serial, sizeof(job->serial), "%s",
			 channel_session_serial(s));
	}
	/* A full queue: the next notification or reconnect looks again. */
	if (!channel_submit_work(ch, s, &work)) {
		log_warn("channel: job queue full; rotations not checked now");
		free(job);
	}
}

void
cert_session_opened(struct channel *ch, struct channel_session *s)
{
	rotate_submit(ch, s);
}

void
cert_poll_rotations(struct channel *ch)
{
	rotate_submit(ch, NULL);
}
