/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device identity in the agent's state directory: private key, device
 * certificate, CA chain and identity.json. Runs in fleet-agent and
 * fleet-sim (one directory per virtual device).
 *
 * Crash safety: every file is written with a temp file, fsync and rename,
 * and identity.json is written last. A directory without identity.json is
 * "not enrolled", whatever else it holds, so a kill at any moment leaves
 * either a complete identity or one that is redone at the next start (the
 * key is reused when it loads). enroll.json, the pending enrollment request
 * (enroll.c), is removed only after identity.json is written. The files
 * trusted here are our own; they
 * are still checked to belong together (key matches certificate).
 *
 * Renewal (renew.c) makes generations: generation 0 is the enrollment's
 * device.key, cert.pem and client.pem; generation n > 0 is device.<n>.key,
 * cert.<n>.pem and client.<n>.pem. identity.json names the generation in
 * use ("generation", absent = 0), so switching to a renewed identity is
 * one atomic rename of identity.json, and the files of the previous
 * generation stay until the switch is confirmed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "clock.h"

#define IDENTITY_JSON_MAX (16u * 1024u)

int
agent_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
cert_facts(X509 *cert, char serial[PKI_SERIAL_HEX_MAX], int64_t *not_after,
	   char *err, size_t errlen)
{
	struct pki_error perr;
	struct tm tm;

	if (pki_cert_serial_hex(cert, serial, PKI_SERIAL_HEX_MAX, &perr) !=
	    PKI_OK) {
		snprintf(err, errlen, "certificate serial: %s", perr.msg);
		return -1;
	}
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
		snprintf(err, errlen, "certificate has no readable notAfter");
		return -1;
	}
	*not_after = (int64_t)timegm(&tm);
	return 0;
}

int
agent_identity_files(int generation, struct agent_identity_files *f)
{
	int a, b, c;

	if (generation < 0)
		return -1;
	if (generation == 0) {
		a = snprintf(f->key, sizeof(f->key), "%s", AGENT_KEY_FILE);
		b = snprintf(f->cert, sizeof(f->cert), "%s", AGENT_CERT_FILE);
		c = snprintf(f->client, sizeof(f->client), "%s",
			     AGENT_CLIENT_FILE);
	} else {
		a = snprintf(f->key, sizeof(f->key), "device.%d.key",
			     generation);
		b = snprintf(f->cert, sizeof(f->cert), "cert.%d.pem",
			     generation);
		c = snprintf(f->client, sizeof(f->client), "client.%d.pem",
			     generation);
	}
	return a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(f->key) ||
			       (size_t)b >= sizeof(f->cert) ||
			       (size_t)c >= sizeof(f->client)
		       ? -1
		       : 0;
}

int
agent_identity_load(const char *dir, struct agent_identity *out, char *err,
		    size_t errlen)
{
	struct agent_identity_files files;
	json_int_t gen;
	char path[AGENT_PATH_MAX], *text = NULL;
	struct agent_identity id;
	struct pki_error perr;
	json_error_t jerr;
	json_t *doc = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const char *s;
	size_t len;
	int rc = -1;

	memset(&id, 0, sizeof(id));
	if (agent_path(path, sizeof(path), dir, AGENT_IDENTITY_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		snprintf(err, errlen, "not enrolled yet");
		return 0;
	}
	if (read_file_bounded(path, IDENTITY_JSON_MAX, &text, &len, err,
			      errlen) != 0)
		return -1;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(err, errlen, "%s: %s", path, jerr.text);
		rc = 0;
		goto out;
	}
	s = json_string_value(json_object_get(doc, "device_id"));
	if (s == NULL || !secret_is_uuid(s)) {
		snprintf(err, errlen, "%s: no valid device_id", path);
		rc = 0;
		goto out;
	}
	memcpy(id.device_id, s, SECRET_UUID_LEN);
	gen = json_integer_value(json_object_get(doc, "generation"));
	if (gen < 0 || gen > 1000000 ||
	    agent_identity_files((int)gen, &files) != 0) {
		snprintf(err, errlen, "%s: bad generation", path);
		rc = 0;
		goto out;
	}
	id.generation = (int)gen;
	s = json_string_value(json_object_get(doc, "device_server"));
	if (s != NULL &&
	    (size_t)snprintf(id.device_server, sizeof(id.device_server), "%s",
			     s) >= sizeof(id.device_server)) {
		snprintf(err, errlen, "%s: device_server too long", path);
		rc = 0;
		goto out;
	}
	/* The key and the certificate must exist and belong together. */
	if (agent_path(path, sizeof(path), dir, files.key) != 0 ||
	    pki_key_load_private(path, &key, &perr) != PKI_OK) {
		snprintf(err, errlen, "device key: %s", perr.msg);
		rc = 0;
		goto out;
	}
	if (agent_path(path, sizeof(path), dir, files.cert) != 0 ||
	    pki_cert_load(path, &cert, &perr) != PKI_OK) {
		snprintf(err, errlen, "device certificate: %s", perr.msg);
		rc = 0;
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen, "device certificate is not for the key");
		rc = 0;
		goto out;
	}
	if (cert_facts(cert, id.cert_serial, &id.not_after, err, errlen) != 0) {
		rc = 0;
		goto out;
	}
	*out = id;
	rc = 1;
out:
	json_decref(doc);
	free(text);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

int
agent_identity_key(const char *dir, EVP_PKEY **out, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];
	struct pki_error perr;
	EVP_PKEY *key = NULL;

	if (agent_path(path, sizeof(path), dir, AGENT_KEY_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	/* A key from an earlier, unfinished enrollment is reused. */
	if (pki_key_load_private(path, &key, &perr) == PKI_OK) {
		*out = key;
		return 0;
	}
	if (pki_key_generate(PKI_KEY_P256, &key, &perr) != PKI_OK) {
		snprintf(err, errlen, "key generation: %s", perr.msg);
		return -1;
	}
	if (pki_key_save_private(key, path, true, &perr) != PKI_OK) {
		snprintf(err, errlen, "%s", perr.msg);
		EVP_PKEY_free(key);
		return -1;
	}
	*out = key;
	return 0;
}

static int
write_text(const char *dir, const char *name, const char *text, mode_t mode,
	   char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];

	if (agent_path(path, sizeof(path), dir, name) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	return atomic_write_file(path, text, strlen(text), mode, err, errlen);
}

int
agent_identity_store(const char *dir, EVP_PKEY *key, const char *device_id,
		     const char *device_server, const char *cert_pem,
		     const char *chain_pem, struct agent_identity *out,
		     char *err, size_t errlen)
{
	struct agent_identity id;
	struct pki_error perr;
	char *client = NULL, *doc_text = NULL, now[32], rm_err[64];
	json_t *doc = NULL;
	X509 *cert = NULL;
	size_t n;
	int rc = -1;

	memset(&id, 0, sizeof(id));
	if (device_id == NULL || !secret_is_uuid(device_id)) {
		snprintf(err, errlen, "the server sent no valid device id");
		return -1;
	}
	if (cert_pem == NULL || pki_cert_parse(cert_pem, strlen(cert_pem),
					       &cert, &perr) != PKI_OK) {
		snprintf(err, errlen, "the server sent no usable certificate");
		return -1;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen,
			 "the server's certificate is not for our key");
		goto out;
	}
	if (cert_facts(cert, id.cert_serial, &id.not_after, err, errlen) != 0)
		goto out;
	if (chain_pem == NULL)
		chain_pem = "";
	n = strlen(cert_pem) + strlen(chain_pem) + 2;
	client = malloc(n);
	if (client == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(client, n, "%s%s%s", cert_pem,
		 cert_pem[0] != '\0' && cert_pem[strlen(cert_pem) - 1] != '\n'
			 ? "\n"
			 : "",
		 chain_pem);
	if (write_text(dir, AGENT_CERT_FILE, cert_pem, 0644, err, errlen) !=
		    0 ||
	    write_text(dir, AGENT_CHAIN_FILE, chain_pem, 0644, err, errlen) !=
		    0 ||
	    write_text(dir, AGENT_CLIENT_FILE, client, 0644, err, errlen) != 0)
		goto out;
	memcpy(id.device_id, device_id, SECRET_UUID_LEN);
	if (device_server != NULL)
		snprintf(id.device_server, sizeof(id.device_server), "%s",
			 device_server);
	clock_format_rfc3339((time_t)clock_wall_s(), now, sizeof(now));
	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i}", "version", 1,
			"device_id", id.device_id, "device_server",
			id.device_server, "cert_serial", id.cert_serial,
			"enrolled_at", now, "generation", 0);
	doc_text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	if (doc_text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* The commit point: everything it refers to is on disk already. */
	if (write_text(dir, AGENT_IDENTITY_FILE, doc_text, 0644, err, errlen) !=
	    0)
		goto out;
	/* Only now may the pending request (and its Idempotency-Key) go: a
	 * kill before this line retries with it. A failure here leaves a
	 * stale enroll.json that fleet_agent_new removes; the identity is
	 * complete either way. */
	(void)agent_enroll_pending_remove(dir, rm_err, sizeof(rm_err));
	*out = id;
	rc = 0;
out:
	X509_free(cert);
	free(client);
	free(doc_text);
	json_decref(doc);
	return rc;
}

int
agent_identity_write_generation(const char *dir, int generation,
				const char *cert_pem, const char *chain_pem,
				char *err, size_t errlen)
{
	struct agent_identity_files f;
	char *client = NULL;
	size_t n;
	int rc = -1;

	if (agent_identity_files(generation, &f) != 0) {
		snprintf(err, errlen, "bad generation");
		return -1;
	}
	if (chain_pem == NULL)
		chain_pem = "";
	n = strlen(cert_pem) + strlen(chain_pem) + 2;
	client = malloc(n);
	if (client == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(client, n, "%s%s%s", cert_pem,
		 cert_pem[0] != '\0' && cert_pem[strlen(cert_pem) - 1] != '\n'
			 ? "\n"
			 : "",
		 chain_pem);
	if (write_text(dir, f.cert, cert_pem, 0644, err, errlen) == 0 &&
	    write_text(dir, f.client, client, 0644, err, errlen) == 0)
		rc = 0;
	free(client);
	return rc;
}

int
agent_identity_switch(const char *dir, const struct agent_identity *cur,
		      int generation, struct agent_identity *out, char *err,
		      size_t errlen)
{
	char now[32], *text = NULL;
	json_t *doc;
	int found;

	clock_format_rfc3339((time_t)clock_wall_s(), now, sizeof(now));
	doc = json_pack("{s:i, s:s, s:s, s:s, s:i}", "version", 1, "device_id",
			cur->device_id, "device_server", cur->device_server,
			"renewed_at", now, "generation", generation);
	text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The commit point of a renewal: one rename. */
	if (write_text(dir, AGENT_IDENTITY_FILE, text, 0644, err, errlen) !=
	    0) {
		free(text);
		return -1;
	}
	free(text);
	/* Read back: the files it names must load and belong together. */
	found = agent_identity_load(dir, out, err, errlen);
	return found == 1 ? 0 : -1;
}

void
agent_identity_remove_generation(const char *dir, int generation)
{
	struct agent_identity_files f;
	char path[AGENT_PATH_MAX];

	if (agent_identity_files(generation, &f) != 0)
		return;
	if (agent_path(path, sizeof(path), dir, f.key) == 0)
		(void)unlink(path);
	if (agent_path(path, sizeof(path), dir, f.cert) == 0)
		(void)unlink(path);
	if (agent_path(path, sizeof(path), dir, f.client) == 0)
		(void)unlink(path);
}
