/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ca process (DESIGN.md §2): loads the issuing-CA key, drops its
 * privileges (when started as root), then serves ISSUE and CRL requests
 * from the net workers over SOCK_SEQPACKET sockets.
 * It opens no network socket and no database. Requests are untrusted as
 * far as content goes: every CSR is re-checked against the policy by
 * pki_signer_issue_device() before anything is signed.
 */
#include "ca/ca_process.h"

#include "ca/signer_proto.h"
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
#include <unistd.h>

#define CA_MAX_REVOKED 4096

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
ca_issue(struct pki_signer *signer, json_t *req)
{
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
	reply = json_pack("{s:s, s:s, s:s, s:I, s:I}", "status", "ok", "cert",
			  issued.cert_pem, "serial", issued.serial_hex,
			  "not_before", (json_int_t)issued.not_before,
			  "not_after", (json_int_t)issued.not_after);
	log_info("ca: issued certificate %s for device %s", issued.serial_hex,
		 device_id);
	pki_issued_clear(&issued);
	return reply;
}

static json_t *
ca_crl(struct pki_signer *signer, json_t *req)
{
	json_t *list = json_object_get(req, "revoked");
	json_int_t number = json_integer_value(json_object_get(req, "number"));
	json_int_t next =
		json_integer_value(json_object_get(req, "next_update"));
	struct pki_revoked *revoked = NULL;
	struct pki_error err;
	unsigned char *der = NULL;
	size_t der_len = 0, n;
	char *b64 = NULL;
	json_t *reply = NULL;

	if (!json_is_array(list) || json_array_size(list) > CA_MAX_REVOKED ||
	    number <= 0 || next <= 0)
		return ca_error("rejected", "malformed CRL request");
	n = json_array_size(list);
	revoked = calloc(n + 1, sizeof(*revoked));
	if (revoked == NULL)
		return ca_error("error", "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(list, i);
		const char *serial = json_string_value(json_array_get(e, 0));

		if (serial == NULL ||
		    strlen(serial) >= sizeof(revoked[i].serial_hex)) {
			reply = ca_error("rejected", "malformed revoked entry");
			goto out;
		}
		snprintf(revoked[i].serial_hex, sizeof(revoked[i].serial_hex),
			 "%s", serial);
		revoked[i].revoked_at =
			(int64_t)json_integer_value(json_array_get(e, 1));
		revoked[i].reason =
			(int)json_integer_value(json_array_get(e, 2));
	}
	if (pki_signer_sign_crl(signer, revoked, n, (uint64_t)number,
				(int64_t)next, &der, &der_len,
				&err) != PKI_OK) {
		reply = ca_error("rejected", err.msg);
		goto out;
	}
	b64 = malloc(4 * ((der_len + 2) / 3) + 1);
	if (b64 == NULL) {
		reply = ca_error("error", "out of memory");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, der, (int)der_len);
	reply = json_pack("{s:s, s:s}", "status", "ok", "crl", b64);
out:
	free(b64);
	free(der);
	free(revoked);
	return reply;
}

/* Answers one request read from fd; a broken message is dropped. */
static void
ca_serve_one(struct pki_signer *signer, int fd, unsigned char *buf)
{
	struct signer_header hdr;
	json_t *req = NULL, *reply = NULL;
	char *text = NULL;
	ssize_t n;
	size_t len;

	n = recv(fd, buf, SIGNER_MSG_MAX + 1, MSG_DONTWAIT);
	if (n <= 0 || (size_t)n < sizeof(hdr) || (size_t)n > SIGNER_MSG_MAX)
		return;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.magic != SIGNER_MAGIC)
		return;
	req = json_loadb((const char *)buf + sizeof(hdr),
			 (size_t)n - sizeof(hdr), 0, NULL);
	if (!json_is_object(req))
		reply = ca_error("rejected", "malformed sign request");
	else if (hdr.type == SIGNER_MSG_ISSUE)
		reply = ca_issue(signer, req);
	else if (hdr.type == SIGNER_MSG_CRL)
		reply = ca_crl(signer, req);
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
	if (send(fd, buf, sizeof(hdr) + len, MSG_NOSIGNAL) < 0)
		log_warn("ca: cannot answer a worker: %s", strerror(errno));
out:
	free(text);
	json_decref(reply);
	json_decref(req);
}

static struct pki_signer *
ca_open_signer(const struct fleetd_config *cfg)
{
	struct pki_policy policy;
	struct pki_signer *signer = NULL;
	struct pki_error err;
	char cert[4096], key[4096];

	pki_policy_default(&policy);
	policy.default_validity = cfg->cert_validity;
	if (policy.max_validity < cfg->cert_validity)
		policy.max_validity = cfg->cert_validity;
	policy.crl_url = cfg->crl_url;
	snprintf(cert, sizeof(cert), "%s/issuing/issuing.pem", cfg->pki_dir);
	snprintf(key, sizeof(key), "%s/issuing/issuing.key", cfg->pki_dir);
	if (pki_signer_open(cert, key, &policy, &signer, &err) != PKI_OK) {
		log_error("ca: cannot load the issuing CA: %s", err.msg);
		return NULL;
	}
	return signer;
}

int
ca_process_main(const int *fds, size_t nfds, const struct fleetd_config *cfg,
		int (*drop)(void *arg), void *drop_arg)
{
	struct pollfd pfds[64];
	struct pki_signer *signer = NULL;
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
	signer = ca_open_signer(cfg);
	if (signer == NULL || (drop != NULL && drop(drop_arg) != 0))
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
		if (poll(pfds, nfds, 1000) < 0) {
			if (errno == EINTR)
				continue;
			log_error("ca: poll: %s", strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < nfds; i++) {
			if (pfds[i].revents & POLLIN)
				ca_serve_one(signer, fds[i], buf);
		}
	}
	rc = 0;
out:
	free(buf);
	pki_signer_free(signer);
	return rc;
}
