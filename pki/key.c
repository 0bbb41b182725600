// SPDX-License-Identifier: Apache-2.0
/*
 * Key generation, classification, key ids and PEM files. Runs in fleetd
 * (`pki init`, the `ca` process loading its key), fleetctl (update signing
 * keys) and the agent (device keys). Trusts the files it is pointed at only
 * to be PEM; private keys are written so that no other user can read them
 * at any moment (temporary name, O_EXCL, mode 0600, fsync, then rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "pki_int.h"

/* PEM files we read are small; refuse anything bigger than this. */
#define PKI_MAX_PEM_FILE (1024 * 1024)

enum pki_result
pki_key_generate(enum pki_key_type type, EVP_PKEY **out, struct pki_error *err)
{
	EVP_PKEY *key = NULL;

	switch (type) {
	case PKI_KEY_P256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case PKI_KEY_P384:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case PKI_KEY_ED25519:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case PKI_KEY_RSA:
	default:
		return pki_err(err, PKI_ERR_ARG,
			       "key generation: unsupported key type %d",
			       (int)type);
	}
	if (key == NULL)
		return pki_err_ssl(err, PKI_ERR_CRYPTO,
				   "key generation failed");
	*out = key;
	return PKI_OK;
}

enum pki_result
pki_key_type_of(const EVP_PKEY *key, enum pki_key_type *type, int *bits,
		struct pki_error *err)
{
	char group[64];
	size_t glen = 0;

	if (key == NULL)
		return pki_err(err, PKI_ERR_ARG, "no key");
	if (EVP_PKEY_is_a(key, "ED25519")) {
		*type = PKI_KEY_ED25519;
		*bits = 256;
		return PKI_OK;
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		*type = PKI_KEY_RSA;
		*bits = EVP_PKEY_get_bits(key);
		return PKI_OK;
	}
	if (!EVP_PKEY_is_a(key, "EC"))
		return pki_err(err, PKI_ERR_POLICY,
			       "key type %s is not supported",
			       EVP_PKEY_get0_type_name(key) != NULL
				       ? EVP_PKEY_get0_type_name(key)
				       : "unknown");
	/* Only named curves: explicit parameters could describe anything. */
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
					   group, sizeof(group), &glen) != 1) {
		ERR_clear_error();
		return pki_err(err, PKI_ERR_POLICY,
			       "EC key without a named curve");
	}
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
		*type = PKI_KEY_P256;
		*bits = 256;
		return PKI_OK;
	}
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
		*type = PKI_KEY_P384;
		*bits = 384;
		return PKI_OK;
	}
	return pki_err(err, PKI_ERR_POLICY, "EC curve %s is not supported",
		       group);
}

enum pki_result
pki_key_id(const EVP_PKEY *key, char id[PKI_KEY_ID_LEN], struct pki_error *err)
{
	unsigned char *der = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	int n;

	if (key == NULL)
		return pki_err(err, PKI_ERR_ARG, "no key");
	n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return pki_err_ssl(err, PKI_ERR_CRYPTO,
				   "encoding the public key");
	if (EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
		OPENSSL_free(der);
		return pki_err_ssl(err, PKI_ERR_CRYPTO,
				   "hashing the public key");
	}
	OPENSSL_free(der);
	pki_hex(md, sizeof(md), id);
	return PKI_OK;
}

/* fsync the directory holding path so the rename or link is durable. */
static void
sync_parent(const char *path)
{
	char *copy = NULL;
	int fd;

	copy = strdup(path);
	if (copy == NULL)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

enum pki_result
pki_file_write(const char *path, const void *data, size_t len, unsigned mode,
	       bool replace, struct pki_error *err)
{
	enum pki_result r = PKI_ERR_IO;
	unsigned char rnd[8];
	char tmp[4096];
	char hex[17];
	const unsigned char *p = data;
	size_t off = 0;
	ssize_t w;
	int fd = -1;
	int n;

	if (path == NULL || (data == NULL && len > 0))
		return pki_err(err, PKI_ERR_ARG, "no path or data");
	if (!replace && access(path, F_OK) == 0)
		return pki_err(err, PKI_ERR_EXISTS, "%s already exists", path);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return pki_err_ssl(err, PKI_ERR_CRYPTO, "random name");
	pki_hex(rnd, sizeof(rnd), hex);
	n = snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, hex);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return pki_err(err, PKI_ERR_ARG, "path too long: %s", path);
	/* The mode is set at creation, so the file is never wider open. */
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
		  (mode_t)mode);
	if (fd < 0) {
		r = pki_err(err, PKI_ERR_IO, "creating %s: %s", tmp,
			    strerror(errno));
		goto out;
	}
	/* The umask may have narrowed it; set exactly what was asked. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		r = pki_err(err, PKI_ERR_IO, "chmod %s: %s", tmp,
			    strerror(errno));
		goto fail;
	}
	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = pki_err(err, PKI_ERR_IO, "writing %s: %s", tmp,
				    strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		r = pki_err(err, PKI_ERR_IO, "fsync %s: %s", tmp,
			    strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = pki_err(err, PKI_ERR_IO, "closing %s: %s", tmp,
			    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (replace) {
		if (rename(tmp, path) != 0) {
			r = pki_err(err, PKI_ERR_IO, "renaming %s to %s: %s",
				    tmp, path, strerror(errno));
			goto fail;
		}
	} else {
		/* link() never replaces: a race with another writer loses. */
		if (link(tmp, path) != 0) {
			r = pki_err(err,
				    errno == EEXIST ? PKI_ERR_EXISTS
						    : PKI_ERR_IO,
				    "creating %s: %s", path, strerror(errno));
			goto fail;
		}
		(void)unlink(tmp);
	}
	sync_parent(path);
	r = PKI_OK;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
out:
	return r;
}

enum pki_result
pki_key_save_private(const EVP_PKEY *key, const char *path, bool replace,
		     struct pki_error *err)
{
	enum pki_result r;
	BIO *bio = NULL;
	char *data = NULL;
	long n;

	if (key == NULL || path == NULL)
		return pki_err(err, PKI_ERR_ARG, "no key or path");
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_new");
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) !=
	    1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO,
				"encoding the private key");
		goto out;
	}
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO,
				"encoding the private key");
		goto out;
	}
	r = pki_file_write(path, data, (size_t)n, 0600, replace, err);
out:
	/* A memory BIO clears its buffer when freed (BUF_MEM_free). */
	BIO_free(bio);
	return r;
}

enum pki_result
pki_key_public_pem(const EVP_PKEY *key, char **out, size_t *len,
		   struct pki_error *err)
{
	enum pki_result r;
	BIO *bio = NULL;

	if (key == NULL || out == NULL)
		return pki_err(err, PKI_ERR_ARG, "no key");
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_new");
	if (PEM_write_bio_PUBKEY(bio, key) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "encoding the public key");
		goto out;
	}
	r = pki_bio_take(bio, out, len, err);
out:
	BIO_free(bio);
	return r;
}

enum pki_result
pki_key_save_public(const EVP_PKEY *key, const char *path, bool replace,
		    struct pki_error *err)
{
	enum pki_result r;
	char *pem = NULL;
	size_t len = 0;

	r = pki_key_public_pem(key, &pem, &len, err);
	if (r != PKI_OK)
		return r;
	r = pki_file_write(path, pem, len, 0644, replace, err);
	free(pem);
	return r;
}

/* Open path for reading as a BIO, refusing files too large to be PEM. */
static enum pki_result
open_pem_file(const char *path, BIO **out, struct pki_error *err)
{
	struct stat st;
	BIO *bio = NULL;

	if (path == NULL)
		return pki_err(err, PKI_ERR_ARG, "no path");
	if (stat(path, &st) != 0)
		return pki_err(err, PKI_ERR_IO, "%s: %s", path,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return pki_err(err, PKI_ERR_IO, "%s: not a regular file", path);
	if (st.st_size > PKI_MAX_PEM_FILE)
		return pki_err(err, PKI_ERR_TOO_LARGE, "%s: too large", path);
	bio = BIO_new_file(path, "r");
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_IO, "opening %s", path);
	*out = bio;
	return PKI_OK;
}

enum pki_result
pki_key_load_private(const char *path, EVP_PKEY **out, struct pki_error *err)
{
	enum pki_result r;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;

	r = open_pem_file(path, &bio, err);
	if (r != PKI_OK)
		return r;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE,
				   "%s: not an unencrypted private key PEM",
				   path);
	*out = key;
	return PKI_OK;
}

enum pki_result
pki_key_public_from_pem(const void *pem, size_t len, EVP_PKEY **out,
			struct pki_error *err)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;

	if (pem == NULL || len == 0 || len > PKI_MAX_PEM_FILE)
		return pki_err(err, PKI_ERR_ARG, "no or oversized PEM");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_new_mem_buf");
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (key == NULL) {
		ERR_clear_error();
		(void)BIO_reset(bio);
		cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (cert != NULL)
			key = X509_get_pubkey(cert);
		X509_free(cert);
	}
	BIO_free(bio);
	if (key == NULL)
		return pki_err_ssl(err, PKI_ERR_PARSE,
				   "not a public key or certificate PEM");
	*out = key;
	return PKI_OK;
}

enum pki_result
pki_key_load_public(const char *path, EVP_PKEY **out, struct pki_error *err)
{
	enum pki_result r;
	BIO *bio = NULL;
	BUF_MEM *mem = NULL;
	BIO *file = NULL;
	char buf[4096];
	int n;

	r = open_pem_file(path, &file, err);
	if (r != PKI_OK)
		return r;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		r = pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_new");
		goto out;
	}
	n = BIO_read(file, buf, sizeof(buf));
	while (n > 0) {
		if (BIO_write(bio, buf, n) != n) {
			r = pki_err_ssl(err, PKI_ERR_NOMEM, "BIO_write");
			goto out;
		}
		n = BIO_read(file, buf, sizeof(buf));
	}
	BIO_get_mem_ptr(bio, &mem);
	if (mem == NULL || mem->length == 0) {
		r = pki_err(err, PKI_ERR_PARSE, "%s: empty", path);
		goto out;
	}
	r = pki_key_public_from_pem(mem->data, mem->length, out, err);
	if (r != PKI_OK)
		r = pki_err(err, r, "%s: not a public key or certificate PEM",
			    path);
out:
	BIO_free(file);
	BIO_free(bio);
	return r;
}
