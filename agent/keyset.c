// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's pinned release key set (keyset.h): loaded from
 * state_dir/keyset.json or the configuration, replaced only by a key set
 * envelope that the current set's threshold signed. Runs in fleet-agent:
 * the loop thread adopts (update.keys), the update worker loads. Trusts
 * the configuration and its own state directory; the envelope comes from
 * fleetd and is trusted for nothing until pki_keyset_verify says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "keyset.h"

static int
keyset_path(char *out, size_t cap, const char *state_dir)
{
	int n = snprintf(out, cap, "%s/%s", state_dir, AGENT_KEYSET_FILE);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Splits "a.pem, b.pem" into paths[] (copied into store). The count, or
 * -1 when there are too many or one is too long. */
static int
split_keys(const char *csv, char store[][AGENT_PATH_MAX], int max)
{
	const char *p = csv, *end;
	size_t len;
	int n = 0;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (n >= max || len >= AGENT_PATH_MAX)
			return -1;
		memcpy(store[n], p, len);
		store[n][len] = '\0';
		n++;
		p = end;
	}
	return n;
}

int
agent_keyset_load(const char *state_dir, const char *update_keys_csv,
		  long threshold, struct pki_keyset *ks, char *err,
		  size_t errlen)
{
	char path[AGENT_PATH_MAX];
	char(*store)[AGENT_PATH_MAX] = NULL;
	const char *paths[PKI_RELEASE_MAX_KEYS];
	struct pki_error perr;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int n, i, rc = -1;

	if (state_dir == NULL || ks == NULL ||
	    keyset_path(path, sizeof(path), state_dir) != 0) {
		snprintf(err, errlen, "key set: bad state directory");
		return -1;
	}
	memset(ks, 0, sizeof(*ks));
	if (stat(path, &st) == 0) {
		if (read_file_bounded(path, AGENT_KEYSET_FILE_MAX, &text, &len,
				      err, errlen) != 0)
			return -1;
		if (pki_keyset_parse(text, len, ks, &perr) != PKI_OK) {
			snprintf(err, errlen, "%s: %s", path, perr.msg);
			free(text);
			return -1;
		}
		free(text);
		return 1;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (update_keys_csv == NULL)
		return 0;
	store = calloc(PKI_RELEASE_MAX_KEYS, sizeof(*store));
	if (store == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = split_keys(update_keys_csv, store, PKI_RELEASE_MAX_KEYS);
	if (n < 0) {
		snprintf(err, errlen,
			 "update_keys: more than %d keys or a path too long",
			 PKI_RELEASE_MAX_KEYS);
		goto out;
	}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	for (i = 0; i < n; i++)
		paths[i] = store[i];
	if (pki_keyset_from_files(paths, (size_t)n,
				  threshold <= 0 ? 1 : (size_t)threshold, ks,
				  &perr) != PKI_OK) {
		snprintf(err, errlen, "update_keys: %s", perr.msg);
		goto out;
	}
	rc = 1;
out:
	free(store);
	return rc;
}

int
agent_keyset_adopt(const char *state_dir, struct pki_keyset *current,
		   const void *envelope, size_t len,
		   enum pki_release_reason *reason, char *why, size_t whylen)
{
	struct pki_keyset next;
	struct pki_error perr;
	char path[AGENT_PATH_MAX];
	char *json = NULL;
	size_t json_len = 0;
	enum pki_release_reason rr;

	if (state_dir == NULL || current == NULL || reason == NULL ||
	    keyset_path(path, sizeof(path), state_dir) != 0) {
		snprintf(why, whylen, "key set: bad arguments");
		return -1;
	}
	rr = pki_keyset_verify(envelope, len, current, &next, why, whylen);
	if (rr != PKI_RELEASE_OK) {
		*reason = rr;
		return 1;
	}
	/* What is stored is the verified set in its canonical form (the
	 * same keys, threshold and version), read back by
	 * agent_keyset_load. */
	if (pki_keyset_json(&next, &json, &json_len, &perr) != PKI_OK) {
		snprintf(why, whylen, "key set: %s", perr.msg);
		pki_keyset_clear(&next);
		return -1;
	}
	if (atomic_write_file(path, json, json_len, 0644, why, whylen) != 0) {
		free(json);
		pki_keyset_clear(&next);
		return -1;
	}
	free(json);
	pki_keyset_clear(current);
	*current = next;
	*reason = PKI_RELEASE_OK;
	snprintf(why, whylen, "adopted release key set version %lld",
		 (long long)current->version);
	return 0;
}

int64_t
agent_keyset_version(const struct pki_keyset *ks)
{
	return ks != NULL && ks->n > 0 ? ks->version : 0;
}

int64_t
agent_keyset_pinned_version(const char *state_dir, const char *update_keys_csv)
{
	struct pki_keyset ks;
	char err[256];
	int64_t v = 0;
	const char *p = update_keys_csv;

	/* Loading with threshold 1 reads keyset.json fully (its own
	 * threshold) or only checks that the configured keys load. */
	if (agent_keyset_load(state_dir, p, 1, &ks, err, sizeof(err)) == 1)
		v = agent_keyset_version(&ks);
	pki_keyset_clear(&ks);
	return v;
}

static json_t *
keys_status(int64_t version, const char *state, const char *reason,
	    const char *error)
{
	json_t *r = json_pack("{s:s, s:I, s:s}", "type", "keys.status",
			      "version", (json_int_t)version, "state", state);

	if (r == NULL)
		return NULL;
	if (reason != NULL &&
	    json_object_set_new(r, "reason", json_string(reason)) != 0)
		goto fail;
	/* error is for people: bounded by the protocol's 1024 bytes. */
	if (error != NULL && error[0] != '\0' &&
	    json_object_set_new(r, "error",
				json_stringn(error, strnlen(error, 1000))) != 0)
		goto fail;
	return r;
fail:
	json_decref(r);
	return NULL;
}

int
agent_keyset_on_update_keys(const char *state_dir, const char *update_keys_csv,
			    long threshold, const struct proto_msg *m,
			    json_t **report)
{
	struct pki_keyset cur;
	enum pki_release_reason rr = PKI_RELEASE_OK;
	const json_t *env;
	char why[512];
	char *text = NULL;
	int64_t version;
	int rc;

	*report = NULL;
	version = proto_int(m, "version", 0);
	env = proto_get(m, "envelope");
	why[0] = '\0';
	rc = agent_keyset_load(state_dir, update_keys_csv, threshold, &cur, why,
			       sizeof(why));
	if (rc < 0) {
		*report = keys_status(version, "refused", "internal", why);
		goto out;
	}
	if (rc == 0) {
		*report = keys_status(version, "refused", "threshold",
				      "no release keys configured "
				      "(update_keys)");
		goto out;
	}
	if (version == cur.version) {
		/* Already pinned: an answer lost with a connection. */
		*report = keys_status(version, "adopted", NULL, NULL);
		goto out;
	}
	text = env != NULL ? json_dumps(env, JSON_COMPACT) : NULL;
	if (text == NULL) {
		*report = keys_status(version, "refused", "bad-envelope",
				      "no envelope");
		goto out;
	}
	rc = agent_keyset_adopt(state_dir, &cur, text, strlen(text), &rr, why,
				sizeof(why));
	if (rc == 0 && cur.version != version) {
		/* Adopted what the envelope says; the message's version
		 * field is only a label, the signed payload wins. */
		version = cur.version;
	}
	if (rc == 0)
		*report = keys_status(version, "adopted", NULL, NULL);
	else if (rc == 1)
		*report = keys_status(version, "refused",
				      pki_release_reason_code(rr), why);
	else
		*report = keys_status(version, "refused", "internal", why);
out:
	free(text);
	pki_keyset_clear(&cur);
	return *report != NULL ? 0 : -1;
}
