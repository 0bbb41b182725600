// SPDX-License-Identifier: Apache-2.0
/*
 * Helpers for the libfleetpki unit tests (see pki_test_util.h). Test code:
 * runs the openssl command-line tool in scratch directories it removes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pki_test_util.h"

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = test_malloc(4096);

	snprintf(dir, 4096, "%s/fleetpki-XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	assert_non_null(mkdtemp(dir));
	return dir;
}

void
tu_rmtree(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(tu_sh("rm -rf '%s'", dir), 0);
	test_free(dir);
}

void
tu_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

void
tu_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

char *
tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = test_malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

int
tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

char *
tu_sh_out(const char *fmt, ...)
{
	char cmd[8192];
	char *out = NULL;
	size_t cap = 1 << 16, n = 0, got;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	p = popen(cmd, "r");
	assert_non_null(p);
	out = test_malloc(cap);
	/* Drain everything so the child never blocks on a full pipe. */
	do {
		char chunk[4096];

		got = fread(chunk, 1, sizeof(chunk), p);
		if (got > cap - 1 - n)
			got = cap - 1 - n;
		memcpy(out + n, chunk, got);
		n += got;
	} while (!feof(p) && !ferror(p));
	out[n] = '\0';
	pclose(p);
	return out;
}

void
tu_write_certs(const char *path, X509 *const *certs, size_t n)
{
	char *pem = NULL;
	size_t len = 0;
	struct pki_error err;

	assert_int_equal(pki_cert_pem(certs, n, &pem, &len, &err), PKI_OK);
	tu_write(path, pem, len);
	free(pem);
}

void
tu_ca_setup(struct tu_ca *ca)
{
	struct pki_error err;

	memset(ca, 0, sizeof(*ca));
	ca->dir = tu_tmpdir();
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &ca->root_key, &err),
			 PKI_OK);
	assert_int_equal(pki_key_generate(PKI_KEY_P256, &ca->iss_key, &err),
			 PKI_OK);
	assert_int_equal(pki_ca_create_root(ca->root_key, "test root",
					    86400 * 365, &ca->root, &err),
			 PKI_OK);
	assert_int_equal(pki_ca_create_issuing(ca->root, ca->root_key,
					       ca->iss_key, "test issuing",
					       86400 * 365, &ca->iss, &err),
			 PKI_OK);
	tu_path(ca->root_pem, sizeof(ca->root_pem), ca->dir, "root.pem");
	tu_path(ca->iss_pem, sizeof(ca->iss_pem), ca->dir, "issuing.pem");
	tu_path(ca->iss_key_path, sizeof(ca->iss_key_path), ca->dir,
		"issuing.key");
	tu_write_certs(ca->root_pem, &ca->root, 1);
	tu_write_certs(ca->iss_pem, &ca->iss, 1);
	assert_int_equal(pki_key_save_private(ca->iss_key, ca->iss_key_path,
					      false, &err),
			 PKI_OK);
}

void
tu_ca_teardown(struct tu_ca *ca)
{
	X509_free(ca->iss);
	X509_free(ca->root);
	EVP_PKEY_free(ca->iss_key);
	EVP_PKEY_free(ca->root_key);
	tu_rmtree(ca->dir);
	memset(ca, 0, sizeof(*ca));
}
