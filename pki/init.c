// SPDX-License-Identifier: Apache-2.0
/*
 * Creation of a new fleet PKI directory (`fleetd pki init`): root CA, device
 * issuing CA, TLS server certificate and the CA bundle that devices and
 * clients trust. Runs once, by the operator, in the fleetd binary. Trusts
 * its arguments only as far as checking them; never overwrites anything: an
 * existing PKI is refused and a half-written one is removed again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki_int.h"

#define ROOT_VALIDITY (20LL * 365 * 86400)
#define ISSUING_VALIDITY (5LL * 365 * 86400)
#define SERVER_VALIDITY (825LL * 86400)
#define MAX_CREATED 16

struct created {
	char paths[MAX_CREATED][4096];
	bool is_dir[MAX_CREATED];
	size_t n;
};

static enum pki_result
join(char *out, size_t cap, const char *dir, const char *name,
     struct pki_error *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return pki_err(err, PKI_ERR_ARG, "path too long: %s/%s", dir,
			       name);
	return PKI_OK;
}

static void
remember(struct created *c, const char *path, bool is_dir)
{
	if (c->n >= MAX_CREATED)
		return;
	snprintf(c->paths[c->n], sizeof(c->paths[c->n]), "%s", path);
	c->is_dir[c->n] = is_dir;
	c->n++;
}

static void
undo(struct created *c)
{
	while (c->n > 0) {
		c->n--;
		if (c->is_dir[c->n])
			(void)rmdir(c->paths[c->n]);
		else
			(void)unlink(c->paths[c->n]);
	}
}

static enum pki_result
make_dir(struct created *c, const char *dir, const char *name,
	 struct pki_error *err)
{
	char path[4096];
	enum pki_result r;

	r = join(path, sizeof(path), dir, name, err);
	if (r != PKI_OK)
		return r;
	if (mkdir(path, 0700) != 0)
		return pki_err(err,
			       errno == EEXIST ? PKI_ERR_EXISTS : PKI_ERR_IO,
			       "creating %s: %s", path, strerror(errno));
	remember(c, path, true);
	return PKI_OK;
}

static enum pki_result
write_key(struct created *c, const char *dir, const char *name,
	  const EVP_PKEY *key, struct pki_error *err)
{
	char path[4096];
	enum pki_result r;

	r = join(path, sizeof(path), dir, name, err);
	if (r == PKI_OK)
		r = pki_key_save_private(key, path, false, err);
	if (r == PKI_OK)
		remember(c, path, false);
	return r;
}

static enum pki_result
write_certs(struct created *c, const char *dir, const char *name,
	    X509 *const *certs, size_t n, struct pki_error *err)
{
	char path[4096];
	char *pem = NULL;
	size_t len = 0;
	enum pki_result r;

	r = join(path, sizeof(path), dir, name, err);
	if (r == PKI_OK)
		r = pki_cert_pem(certs, n, &pem, &len, err);
	if (r == PKI_OK)
		r = pki_file_write(path, pem, len, 0644, false, err);
	if (r == PKI_OK)
		remember(c, path, false);
	free(pem);
	return r;
}

static enum pki_result
write_text(struct created *c, const char *dir, const char *name,
	   const char *text, struct pki_error *err)
{
	char path[4096];
	enum pki_result r;

	r = join(path, sizeof(path), dir, name, err);
	if (r == PKI_OK)
		r = pki_file_write(path, text, strlen(text), 0644, false, err);
	if (r == PKI_OK)
		remember(c, path, false);
	return r;
}

/* Refuse before creating anything if any part of a PKI is there. */
static enum pki_result
check_absent(const char *dir, struct pki_error *err)
{
	static const char *const parts[] = {"root", "issuing", "server",
					    "ca-bundle.pem"};
	char path[4096];
	enum pki_result r;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		r = join(path, sizeof(path), dir, parts[i], err);
		if (r != PKI_OK)
			return r;
		if (access(path, F_OK) == 0)
			return pki_err(err, PKI_ERR_EXISTS,
				       "%s exists: refusing to overwrite an "
				       "existing PKI",
				       path);
	}
	return PKI_OK;
}

enum pki_result
pki_init_dir(const char *dir, const char *const *server_names, size_t n_names,
	     const char *crl_url, struct pki_error *err)
{
	enum pki_result r;
	struct created *c = NULL;
	EVP_PKEY *root_key = NULL, *iss_key = NULL, *srv_key = NULL;
	X509 *root = NULL, *iss = NULL, *srv = NULL;
	char sub[4096];
	char *line = NULL;
	size_t line_len;
	X509 *chain[2];

	if (dir == NULL || dir[0] == '\0' || server_names == NULL ||
	    n_names == 0 || n_names > PKI_INIT_MAX_NAMES)
		return pki_err(err, PKI_ERR_ARG,
			       "pki init: need a directory and 1 to %d server "
			       "names",
			       PKI_INIT_MAX_NAMES);
	if (crl_url != NULL && (strncmp(crl_url, "http://", 7) != 0 &&
				strncmp(crl_url, "https://", 8) != 0))
		return pki_err(err, PKI_ERR_ARG,
			       "pki init: CRL URL must be http:// or https://");
	r = check_absent(dir, err);
	if (r != PKI_OK)
		return r;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	if (mkdir(dir, 0755) == 0) {
		remember(c, dir, true);
	} else if (errno != EEXIST) {
		r = pki_err(err, PKI_ERR_IO, "creating %s: %s", dir,
			    strerror(errno));
		goto fail;
	}
	/* Keys and certificates first: nothing is written if they fail. */
	r = pki_key_generate(PKI_KEY_P256, &root_key, err);
	if (r == PKI_OK)
		r = pki_key_generate(PKI_KEY_P256, &iss_key, err);
	if (r == PKI_OK)
		r = pki_key_generate(PKI_KEY_P256, &srv_key, err);
	if (r == PKI_OK)
		r = pki_ca_create_root(root_key, "fleet root CA", ROOT_VALIDITY,
				       &root, err);
	if (r == PKI_OK)
		r = pki_ca_create_issuing(root, root_key, iss_key,
					  "fleet device issuing CA",
					  ISSUING_VALIDITY, &iss, err);
	if (r == PKI_OK)
		r = pki_cert_create_server(root, root_key, srv_key,
					   server_names, n_names,
					   SERVER_VALIDITY, &srv, err);
	if (r != PKI_OK)
		goto fail;

	r = make_dir(c, dir, "root", err);
	if (r == PKI_OK)
		r = make_dir(c, dir, "issuing", err);
	if (r == PKI_OK)
		r = make_dir(c, dir, "server", err);
	if (r != PKI_OK)
		goto fail;

	r = join(sub, sizeof(sub), dir, "root", err);
	if (r == PKI_OK)
		r = write_key(c, sub, "root.key", root_key, err);
	if (r == PKI_OK)
		r = write_certs(c, sub, "root.pem", &root, 1, err);
	if (r == PKI_OK)
		r = join(sub, sizeof(sub), dir, "issuing", err);
	if (r == PKI_OK)
		r = write_key(c, sub, "issuing.key", iss_key, err);
	if (r == PKI_OK)
		r = write_certs(c, sub, "issuing.pem", &iss, 1, err);
	if (r == PKI_OK && crl_url != NULL) {
		line_len = strlen(crl_url) + 2;
		line = malloc(line_len);
		if (line == NULL) {
			r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
			goto fail;
		}
		snprintf(line, line_len, "%s\n", crl_url);
		r = write_text(c, sub, "crl-url", line, err);
	}
	if (r == PKI_OK)
		r = join(sub, sizeof(sub), dir, "server", err);
	if (r == PKI_OK)
		r = write_key(c, sub, "server.key", srv_key, err);
	if (r == PKI_OK)
		r = write_certs(c, sub, "server.pem", &srv, 1, err);
	if (r == PKI_OK) {
		chain[0] = srv;
		chain[1] = root;
		r = write_certs(c, sub, "server-chain.pem", chain, 2, err);
	}
	if (r == PKI_OK) {
		chain[0] = root;
		chain[1] = iss;
		r = write_certs(c, dir, "ca-bundle.pem", chain, 2, err);
	}
	if (r != PKI_OK)
		goto fail;
	goto out;
fail:
	if (c != NULL)
		undo(c);
out:
	free(line);
	free(c);
	X509_free(srv);
	X509_free(iss);
	X509_free(root);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(iss_key);
	EVP_PKEY_free(root_key);
	return r;
}
