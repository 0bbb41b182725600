// SPDX-License-Identifier: Apache-2.0
/*
 * Issuing-CA rollover in a PKI directory (docs/pki.md, "Issuing-CA
 * rollover"), run by `fleetd pki rotate-issuing` / `retire-issuing` on the
 * server host, as the user who owns the PKI (root in production). Trusts
 * the directory it is given and the root key the operator brings from its
 * offline place; checks that this root signed the issuing CA in use.
 *
 * Layout during an overlap:
 *   issuing/issuing.{key,pem}           the CA that issues (new)
 *   issuing/rotated                     marks a CA made here (its
 *                                       certificates name crl_url/<key id>)
 *   issuing/previous/issuing.{key,pem}  the CA it replaced: trusted and
 *                                       signing its CRLs until retired
 *   ca-bundle.pem                       root, issuing, previous
 * prepare writes issuing/next/ only; commit moves the files (renames in
 * one directory tree) and rewrites the bundle; retire removes previous/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

#define ROLLOVER_VALIDITY (5LL * 365 * 86400)

static enum pki_result
path_of(char *out, size_t cap, const char *dir, const char *rel,
	struct pki_error *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, rel);

	if (n < 0 || (size_t)n >= cap)
		return pki_err(err, PKI_ERR_ARG, "path too long: %s/%s", dir,
			       rel);
	return PKI_OK;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

void
pki_rollover_clear(struct pki_rollover *r)
{
	if (r == NULL)
		return;
	free(r->old_pem);
	free(r->new_pem);
	memset(r, 0, sizeof(*r));
}

static enum pki_result
cert_facts(X509 *x, char id[PKI_KEY_ID_LEN], char **pem, struct pki_error *err)
{
	size_t len = 0;
	enum pki_result r;

	r = pki_key_id(X509_get0_pubkey(x), id, err);
	if (r == PKI_OK)
		r = pki_cert_pem(&x, 1, pem, &len, err);
	return r;
}

enum pki_result
pki_rollover_prepare(const char *dir, const char *root_dir,
		     struct pki_rollover *out, struct pki_error *err)
{
	char path[4096], key_path[4096], next[4096], cn[96];
	EVP_PKEY *root_key = NULL, *new_key = NULL;
	X509 *root = NULL, *cur = NULL, *fresh = NULL;
	struct pki_rollover res;
	enum pki_result r;
	time_t now = time(NULL);
	struct tm tm;

	memset(&res, 0, sizeof(res));
	if (dir == NULL || root_dir == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "rollover: need directories");
	r = path_of(path, sizeof(path), dir, "issuing/previous", err);
	if (r != PKI_OK)
		return r;
	if (exists(path))
		return pki_err(err, PKI_ERR_EXISTS,
			       "an issuing-CA rollover is in progress (%s "
			       "exists): retire the previous CA first",
			       path);
	r = path_of(next, sizeof(next), dir, "issuing/next", err);
	if (r != PKI_OK)
		return r;
	if (exists(next))
		return pki_err(err, PKI_ERR_EXISTS,
			       "%s exists: a rotation was interrupted; move "
			       "it away",
			       next);
	r = path_of(path, sizeof(path), root_dir, "root.pem", err);
	if (r == PKI_OK)
		r = pki_cert_load(path, &root, err);
	if (r == PKI_OK)
		r = path_of(key_path, sizeof(key_path), root_dir, "root.key",
			    err);
	if (r == PKI_OK)
		r = pki_key_load_private(key_path, &root_key, err);
	if (r == PKI_OK && X509_check_private_key(root, root_key) != 1)
		r = pki_err_ssl(err, PKI_ERR_ARG, "%s does not match %s",
				key_path, path);
	if (r == PKI_OK)
		r = path_of(path, sizeof(path), dir, "issuing/issuing.pem",
			    err);
	if (r == PKI_OK)
		r = pki_cert_load(path, &cur, err);
	if (r != PKI_OK)
		goto out;
	if (X509_check_issued(root, cur) != X509_V_OK ||
	    X509_verify(cur, X509_get0_pubkey(root)) != 1) {
		r = pki_err(err, PKI_ERR_ARG,
			    "%s was not signed by the root of %s: wrong "
			    "root directory?",
			    path, root_dir);
		goto out;
	}
	/* A name of its own: two CAs of one name would leave chain building
	 * to the key identifiers alone. */
	gmtime_r(&now, &tm);
	strftime(cn, sizeof(cn), "fleet device issuing CA %Y-%m-%dT%H:%M:%SZ",
		 &tm);
	r = pki_key_generate(PKI_KEY_P256, &new_key, err);
	if (r == PKI_OK)
		r = pki_ca_create_issuing(root, root_key, new_key, cn,
					  ROLLOVER_VALIDITY, &fresh, err);
	if (r == PKI_OK)
		r = cert_facts(cur, res.old_id, &res.old_pem, err);
	if (r == PKI_OK)
		r = cert_facts(fresh, res.new_id, &res.new_pem, err);
	if (r != PKI_OK)
		goto out;
	if (mkdir(next, 0700) != 0) {
		r = pki_err(err, PKI_ERR_IO, "creating %s: %s", next,
			    strerror(errno));
		goto out;
	}
	r = path_of(path, sizeof(path), next, "issuing.key", err);
	if (r == PKI_OK)
		r = pki_key_save_private(new_key, path, false, err);
	if (r == PKI_OK)
		r = path_of(path, sizeof(path), next, "issuing.pem", err);
	if (r == PKI_OK)
		r = pki_file_write(path, res.new_pem, strlen(res.new_pem), 0644,
				   false, err);
	if (r != PKI_OK) {
		pki_rollover_abort(dir);
		goto out;
	}
	*out = res;
	memset(&res, 0, sizeof(res));
out:
	pki_rollover_clear(&res);
	X509_free(fresh);
	X509_free(cur);
	X509_free(root);
	EVP_PKEY_free(new_key);
	EVP_PKEY_free(root_key);
	return r;
}

void
pki_rollover_abort(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/issuing/next/issuing.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/issuing/next/issuing.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/issuing/next", dir);
	rmdir(path);
}

/* ca-bundle.pem: the root, then the issuing CAs in dir (current first). */
static enum pki_result
write_bundle(const char *dir, struct pki_error *err)
{
	static const char *const rel[] = {"root/root.pem",
					  "issuing/issuing.pem",
					  "issuing/previous/issuing.pem"};
	X509 *certs[3] = {NULL, NULL, NULL};
	char path[4096];
	char *pem = NULL;
	size_t n = 0, len = 0;
	enum pki_result r = PKI_OK;

	for (size_t i = 0; i < 3 && r == PKI_OK; i++) {
		r = path_of(path, sizeof(path), dir, rel[i], err);
		if (r != PKI_OK)
			break;
		if (i == 2 && !exists(path))
			break;
		r = pki_cert_load(path, &certs[n], err);
		if (r == PKI_OK)
			n++;
	}
	if (r == PKI_OK)
		r = pki_cert_pem(certs, n, &pem, &len, err);
	if (r == PKI_OK)
		r = path_of(path, sizeof(path), dir, "ca-bundle.pem", err);
	if (r == PKI_OK)
		r = pki_file_write(path, pem, len, 0644, true, err);
	free(pem);
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	return r;
}

static enum pki_result
move(const char *dir, const char *from, const char *to, struct pki_error *err)
{
	char a[4096], b[4096];
	enum pki_result r;

	r = path_of(a, sizeof(a), dir, from, err);
	if (r == PKI_OK)
		r = path_of(b, sizeof(b), dir, to, err);
	if (r == PKI_OK && rename(a, b) != 0)
		r = pki_err(err, PKI_ERR_IO, "moving %s to %s: %s", a, b,
			    strerror(errno));
	return r;
}

enum pki_result
pki_rollover_commit(const char *dir, struct pki_error *err)
{
	char path[4096];
	enum pki_result r;

	r = path_of(path, sizeof(path), dir, "issuing/previous", err);
	if (r != PKI_OK)
		return r;
	if (mkdir(path, 0700) != 0)
		return pki_err(err, PKI_ERR_IO, "creating %s: %s", path,
			       strerror(errno));
	r = move(dir, "issuing/issuing.pem", "issuing/previous/issuing.pem",
		 err);
	if (r == PKI_OK)
		r = move(dir, "issuing/issuing.key",
			 "issuing/previous/issuing.key", err);
	if (r == PKI_OK) {
		/* The marker goes with its CA. */
		(void)path_of(path, sizeof(path), dir, "issuing/rotated", err);
		if (exists(path))
			r = move(dir, "issuing/rotated",
				 "issuing/previous/rotated", err);
	}
	if (r == PKI_OK)
		r = move(dir, "issuing/next/issuing.key", "issuing/issuing.key",
			 err);
	if (r == PKI_OK)
		r = move(dir, "issuing/next/issuing.pem", "issuing/issuing.pem",
			 err);
	if (r == PKI_OK)
		r = path_of(path, sizeof(path), dir, "issuing/rotated", err);
	if (r == PKI_OK)
		r = pki_file_write(path, "", 0, 0644, true, err);
	if (r == PKI_OK) {
		(void)path_of(path, sizeof(path), dir, "issuing/next", err);
		rmdir(path);
		r = write_bundle(dir, err);
	}
	return r;
}

enum pki_result
pki_rollover_previous_id(const char *dir, char id[PKI_KEY_ID_LEN],
			 struct pki_error *err)
{
	char path[4096];
	X509 *x = NULL;
	enum pki_result r;

	r = path_of(path, sizeof(path), dir, "issuing/previous/issuing.pem",
		    err);
	if (r == PKI_OK && !exists(path))
		return pki_err(err, PKI_ERR_ARG, "no previous issuing CA in %s",
			       dir);
	if (r == PKI_OK)
		r = pki_cert_load(path, &x, err);
	if (r == PKI_OK)
		r = pki_key_id(X509_get0_pubkey(x), id, err);
	X509_free(x);
	return r;
}

enum pki_result
pki_rollover_retire(const char *dir, struct pki_error *err)
{
	static const char *const files[] = {"issuing/previous/issuing.key",
					    "issuing/previous/issuing.pem",
					    "issuing/previous/rotated"};
	char path[4096];
	enum pki_result r = PKI_OK;

	for (size_t i = 0; i < 3 && r == PKI_OK; i++) {
		r = path_of(path, sizeof(path), dir, files[i], err);
		if (r == PKI_OK && unlink(path) != 0 && errno != ENOENT)
			r = pki_err(err, PKI_ERR_IO, "removing %s: %s", path,
				    strerror(errno));
	}
	if (r == PKI_OK)
		r = path_of(path, sizeof(path), dir, "issuing/previous", err);
	if (r == PKI_OK && rmdir(path) != 0)
		r = pki_err(err, PKI_ERR_IO, "removing %s: %s", path,
			    strerror(errno));
	if (r == PKI_OK)
		r = write_bundle(dir, err);
	return r;
}
