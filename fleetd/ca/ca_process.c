/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ca process (DESIGN.md §2): loads the issuing-CA key(s), drops its
 * privileges (when started as root), then serves ISSUE and CRL requests
 * from the net workers over SOCK_SEQPACKET sockets.
 * It opens no network socket and no database. Requests are untrusted as
 * far as content goes: every CSR is re-checked against the policy by
 * pki_signer_issue_device() before anything is signed, and a CRL's input
 * (a sealed memfd, signer_proto.h) is size-, seal- and entry-checked.
 *
 * Issuing-CA rollover (docs/pki.md): issuing/issuing.{pem,key} is the CA
 * that issues new certificates; issuing/previous/issuing.{pem,key}, while
 * present, is the one it replaced, kept to sign that CA's CRLs until it is
 * retired. The key is opened before the privilege drop and never again,
 * so a new key is picked up by a new ca process: SIGHUP to the supervisor
 * replaces the ca (SIGTERM: it answers the request in hand and exits;
 * requests sent meanwhile wait in the socketpairs for its successor).
 */
#include "ca/ca_process.h"

#include "ca/signer_fd.h"
#include "ca/signer_proto.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "pki.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The CAs this process signs with: [0] issues, [1] is the previous one
 * (CRLs only), when present. */
#define CA_MAX_SIGNERS 2

struct ca_signers {
	struct pki_signer *s[CA_MAX_SIGNERS];
	char key_id[CA_MAX_SIGNERS][PKI_KEY_ID_LEN];
	size_t n;
};

static volatile sig_atomic_t ca_stop;

static void
ca_on_signal(int sig)
{
	(void)sig;
	ca_stop = 1;
}

static json_t *
ca_error(const char *status, const char *msg)
{
	return json_pack("{s:s, s:s}", "status", status, "error", msg);
}

static json_t *
ca_issue(struct ca_signers *cas, json_t *req)
{
	struct pki_signer *signer = cas->s[0];
	struct pki_issued issued;
	struct pki_error err;
	const char *csr = json_string_value(json_object_get(req, "csr"));
	const char *device_id =
		json_string_value(json_object_get(req, "device_id"));
	json_int_t validity =
		json_integer_value(json_object_get(req, "validity"));
	enum pki_result r;
	json_t *reply;

	if (csr == NULL || device_id == NULL || validity < 0)
		return ca_error("rejected", "malformed sign request");
	memset(&issued, 0, sizeof(issued));
	r = pki_signer_issue_device(signer, csr, strlen(csr), device_id,
				    (int64_t)validity, &issued, &err);
	if (r != PKI_OK) {
		log_info("ca: refused to sign for %s: %s", device_id, err.msg);
		return ca_error(r == PKI_ERR_NOMEM || r == PKI_ERR_CRYPTO
					? "error"
					: "rejected",
				err.msg);
	}
	reply = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "status", "ok",
			  "cert", issued.cert_pem, "serial", issued.serial_hex,
			  "not_before", (json_int_t)issued.not_before,
			  "not_after", (json_int_t)issued.not_after, "issuer",
			  cas->key_id[0]);
	log_info("ca: issued certificate %s for device %s", issued.serial_hex,
		 device_id);
	pki_issued_clear(&issued);
	return reply;
}

/* Reads and checks the n records of a CRL request's memfd. */
static json_t *
ca_crl_input(int fd, size_t n, struct pki_revoked **out)
{
	struct signer_crl_record *rec = NULL;
	struct pki_revoked *revoked = NULL;
	unsigned char *bytes = NULL;

	if (fd < 0 || signer_fd_read(fd, n * sizeof(*rec), &bytes) != 0)
		return ca_error("rejected", "CRL input is not a sealed memfd "
					    "of the announced size");
	revoked = calloc(n + 1, sizeof(*revoked));
	if (revoked == NULL) {
		free(bytes);
		return ca_error("error", "out of memory");
	}
	rec = (struct signer_crl_record *)(void *)bytes;
	for (size_t i = 0; i < n; i++) {
		struct signer_crl_record r;

		memcpy(&r, &rec[i], sizeof(r));
		if (memchr(r.serial, '\0', sizeof(r.serial)) == NULL ||
		    strlen(r.serial) >= sizeof(revoked[i].serial_hex) ||
		    r.zero != 0) {
			free(bytes);
			free(revoked);
			return ca_error("rejected", "malformed revoked entry");
		}
		memcpy(revoked[i].serial_hex, r.serial, strlen(r.serial) + 1);
		revoked[i].revoked_at = r.revoked_at;
		revoked[i].reason = r.reason;
	}
	free(bytes);
	*out = revoked;
	return NULL;
}

/* A CRL request: the answer, and in *out_fd the memfd of the DER. */
static json_t *
ca_crl(struct ca_signers *cas, json_t *req, int in_fd, int *out_fd)
{
	json_int_t count = json_integer_value(json_object_get(req, "count"));
	json_int_t number = json_integer_value(json_object_get(req, "number"));
	json_int_t next =
		json_integer_value(json_object_get(req, "next_update"));
	const char *issuer = json_string_value(json_object_get(req, "issuer"));
	struct pki_revoked *revoked = NULL;
	struct pki_signer *signer = NULL;
	struct pki_error err;
	unsigned char *der = NULL;
	size_t der_len = 0, which = 0;
	json_t *reply = NULL;
	uint64_t started;

	if (!json_is_integer(json_object_get(req, "count")) || count < 0 ||
	    (size_t)count > SIGNER_CRL_MAX_ENTRIES || number <= 0 || next <= 0)
		return ca_error("rejected", "malformed CRL request");
	if (issuer == NULL || issuer[0] == '\0') {
		signer = cas->s[0];
	} else {
		for (which = 0; which < cas->n; which++)
			if (strcmp(cas->key_id[which], issuer) == 0)
				break;
		if (which == cas->n)
			return ca_error("rejected",
					"this ca holds no issuing CA with that "
					"key id");
		signer = cas->s[which];
	}
	reply = ca_crl_input(in_fd, (size_t)count, &revoked);
	if (reply != NULL)
		return reply;
	started = clock_mono_ms();
	if (pki_signer_sign_crl(signer, revoked, (size_t)count,
				(uint64_t)number, (int64_t)next, &der, &der_len,
				&err) != PKI_OK) {
		reply = ca_error("rejected", err.msg);
		goto out;
	}
	if (der_len > SIGNER_CRL_MAX_DER) {
		reply = ca_error("error", "CRL too large");
		goto out;
	}
	*out_fd = signer_fd_make("fleet-crl", der, der_len);
	if (*out_fd < 0) {
		reply = ca_error("error", "cannot pass the CRL (memfd)");
		goto out;
	}
	reply = json_pack("{s:s, s:I, s:s}", "status", "ok", "crl_len",
			  (json_int_t)der_len, "issuer", cas->key_id[which]);
	log_info("ca: signed CRL %lld of %s with %lld entries in %llu ms",
		 (long long)number, cas->key_id[which], (long long)count,
		 (unsigned long long)(clock_mono_ms() - started));
out:
	free(der);
	free(revoked);
	return reply;
}

/*
 * A large CRL takes the ca seconds to sign (100,000 entries: about 0.9 s
 * optimised), and the ca is one thread: issuing would wait behind it. So
 * a CRL is signed in a child of the ca (same image, same key in memory,
 * same unprivileged user, not dumpable; no more access than the ca has),
 * which answers the worker itself and exits; at most CA_CRL_CHILDREN at a
 * time, else (or when fork fails) the ca signs it in line. Returns 1 in
 * the parent (the child answers), 0 to sign here (in the child, or in
 * line); *in_child tells which.
 */
#define CA_CRL_CHILDREN 2
#define CA_CRL_CHILD_SECONDS 300

static int ca_crl_children;

static int
ca_crl_fork(bool *in_child)
{
	pid_t pid;

	*in_child = false;
	if (ca_crl_children >= CA_CRL_CHILDREN)
		return 0;
	pid = fork();
	if (pid < 0) {
		log_warn("ca: fork for a CRL: %s; signing in line",
			 strerror(errno));
		return 0;
	}
	if (pid > 0) {
		ca_crl_children++;
		return 1;
	}
	prctl(PR_SET_NAME, "fleetd-ca-crl", 0, 0, 0);
	alarm(CA_CRL_CHILD_SECONDS); /* never outlive a stuck signing */
	*in_child = true;
	return 0;
}

/* Collects CRL children that are done. */
static void
ca_crl_reap(void)
{
	while (ca_crl_children > 0 && waitpid(-1, NULL, WNOHANG) > 0)
		ca_crl_children--;
}

/* Answers one request read from fd; a broken message is dropped. */
static void
ca_serve_one(struct ca_signers *cas, int fd, unsigned char *buf)
{
	struct signer_header hdr;
	json_t *req = NULL, *reply = NULL;
	char *text = NULL;
	int in_fd = -1, out_fd = -1;
	bool in_child = false;
	ssize_t n;
	size_t len;

	n = signer_fd_recv(fd, buf, SIGNER_MSG_MAX + 1, &in_fd, MSG_DONTWAIT);
	if (n <= 0 || (size_t)n < sizeof(hdr) || (size_t)n > SIGNER_MSG_MAX)
		goto out;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.magic != SIGNER_MAGIC)
		goto out;
	req = json_loadb((const char *)buf + sizeof(hdr),
			 (size_t)n - sizeof(hdr), 0, NULL);
	if (!json_is_object(req))
		reply = ca_error("rejected", "malformed sign request");
	else if (hdr.type == SIGNER_MSG_ISSUE)
		reply = ca_issue(cas, req);
	else if (hdr.type == SIGNER_MSG_CRL) {
		if (ca_crl_fork(&in_child) == 1)
			goto out; /* the child answers */
		reply = ca_crl(cas, req, in_fd, &out_fd);
	} else if (hdr.type == SIGNER_MSG_PING)
		reply = json_pack("{s:s}", "status", "ok");
	else
		reply = ca_error("rejected", "unknown request type");
	if (reply == NULL)
		reply = ca_error("error", "out of memory");
	text = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;
	if (text == NULL)
		goto out;
	len = strlen(text);
	if (len + sizeof(hdr) > SIGNER_MSG_MAX) {
		log_error("ca: answer too large (%zu bytes)", len);
		goto out;
	}
	hdr.type |= SIGNER_MSG_REPLY;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), text, len);
	if (signer_fd_send(fd, buf, sizeof(hdr) + len, out_fd, 0) < 0)
		log_warn("ca: cannot answer a worker: %s", strerror(errno));
out:
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	free(text);
	json_decref(reply);
	json_decref(req);
	if (in_child)
		_exit(0);
}

static void
ca_signers_free(struct ca_signers *cas)
{
	for (size_t i = 0; i < cas->n; i++)
		pki_signer_free(cas->s[i]);
	memset(cas, 0, sizeof(*cas));
}

/*
 * Opens dir/issuing.{pem,key} as cas->s[cas->n]. 1 when the files are
 * absent (optional), 0 when opened, -1 on error. A CA made by `fleetd pki
 * rotate-issuing` (marked by dir/rotated) names its own CRL in the
 * certificates it issues: crl_url/<key id> (docs/pki.md, "CRLs").
 */
static int
ca_open_one(struct ca_signers *cas, const struct pki_policy *policy,
	    const char *dir, bool optional)
{
	struct pki_policy own = *policy;
	struct pki_error err;
	char cert[4096], key[4096], url[4096];
	char *id = cas->key_id[cas->n];
	struct pki_signer *s = NULL;
	X509 *x = NULL;

	snprintf(cert, sizeof(cert), "%s/issuing.pem", dir);
	snprintf(key, sizeof(key), "%s/issuing.key", dir);
	if (optional && access(cert, F_OK) != 0 && access(key, F_OK) != 0)
		return 1;
	if (pki_cert_load(cert, &x, &err) != PKI_OK ||
	    pki_key_id(X509_get0_pubkey(x), id, &err) != PKI_OK)
		goto fail;
	snprintf(url, sizeof(url), "%s/rotated", dir);
	if (policy->crl_url != NULL && access(url, F_OK) == 0) {
		snprintf(url, sizeof(url), "%s/%s", policy->crl_url, id);
		own.crl_url = url;
	}
	if (pki_signer_open(cert, key, &own, &s, &err) != PKI_OK)
		goto fail;
	X509_free(x);
	cas->s[cas->n++] = s;
	return 0;
fail:
	X509_free(x);
	log_error("ca: cannot load the issuing CA of %s: %s", dir, err.msg);
	return -1;
}

static int
ca_open_signers(const struct fleetd_config *cfg, struct ca_signers *cas)
{
	struct pki_policy policy;
	char dir[4096];

	pki_policy_default(&policy);
	policy.default_validity = cfg->cert_validity;
	if (policy.max_validity < cfg->cert_validity)
		policy.max_validity = cfg->cert_validity;
	policy.crl_url = cfg->crl_url;
	snprintf(dir, sizeof(dir), "%s/issuing", cfg->pki_dir);
	if (ca_open_one(cas, &policy, dir, false) != 0)
		return -1;
	/* Certificates of a CA made by rotate-issuing name that CA's own
	 * CRL (/pki/v1/crl/<key id>); the first CA's name /pki/v1/crl. */
	snprintf(dir, sizeof(dir), "%s/issuing/previous", cfg->pki_dir);
	if (ca_open_one(cas, &policy, dir, true) < 0)
		return -1;
	log_info("ca: issuing with %s%s%s", cas->key_id[0],
		 cas->n > 1 ? "; CRLs also for " : "",
		 cas->n > 1 ? cas->key_id[1] : "");
	return 0;
}

int
ca_process_main(const int *fds, size_t nfds, const struct fleetd_config *cfg,
		int (*drop)(void *arg), void *drop_arg)
{
	struct pollfd pfds[64];
	struct ca_signers cas = {0};
	unsigned char *buf = NULL;
	struct sigaction sa;
	int rc = 1;

	prctl(PR_SET_NAME, "fleetd-ca", 0, 0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ca_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);

	if (nfds > sizeof(pfds) / sizeof(pfds[0]))
		nfds = sizeof(pfds) / sizeof(pfds[0]);
	/* The key is opened with the privileges we started with, and then
	 * never again: after the drop nothing here can open it. */
	if (ca_open_signers(cfg, &cas) != 0 ||
	    (drop != NULL && drop(drop_arg) != 0))
		goto out;
	buf = malloc(SIGNER_MSG_MAX + 1);
	if (buf == NULL)
		goto out;
	log_info("ca: ready, serving %zu workers", nfds);
	while (!ca_stop) {
		for (size_t i = 0; i < nfds; i++) {
			pfds[i].fd = fds[i];
			pfds[i].events = POLLIN;
			pfds[i].revents = 0;
		}
		ca_crl_reap();
		if (poll(pfds, nfds, 1000) < 0) {
			if (errno == EINTR)
				continue;
			log_error("ca: poll: %s", strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < nfds; i++) {
			if (pfds[i].revents & POLLIN)
				ca_serve_one(&cas, fds[i], buf);
		}
	}
	rc = 0;
out:
	free(buf);
	ca_signers_free(&cas);
	return rc;
}
