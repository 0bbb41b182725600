/* SPDX-License-Identifier: Apache-2.0 */
/* Idempotency-Key rules (core/idempotency.h). API job threads. */
#include "core/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/store_idempotency.h"

bool
idem_key_valid(const char *key)
{
	size_t i;

	if (key == NULL)
		return false;
	for (i = 0; key[i] != '\0'; i++)
		if ((unsigned char)key[i] < 0x21 ||
		    (unsigned char)key[i] > 0x7e || i >= IDEM_KEY_MAX)
			return false;
	return i > 0;
}

void
idem_request_hash(const char *method, const char *path, const void *body,
		  size_t body_len, char out[SECRET_SHA256_HEX])
{
	size_t mlen = strlen(method), plen = strlen(path);
	size_t n = mlen + plen + 2 + body_len;
	char *tmp = malloc(n > 0 ? n : 1);

	if (tmp == NULL) {
		/* No hash can match a stored one: the key acts as unused,
		 * and recording it then conflicts at worst. */
		memset(out, '0', SECRET_SHA256_HEX - 1);
		out[SECRET_SHA256_HEX - 1] = '\0';
		return;
	}
	memcpy(tmp, method, mlen);
	tmp[mlen] = ' ';
	memcpy(tmp + mlen + 1, path, plen);
	tmp[mlen + 1 + plen] = '\n';
	if (body_len > 0)
		memcpy(tmp + mlen + plen + 2, body, body_len);
	secret_sha256_hex(tmp, n, out);
	/* The body may hold an enrollment token. */
	OPENSSL_cleanse(tmp, n);
	free(tmp);
}

enum idem_rc
idem_lookup(struct store *st, const struct idem_record *rec, int *status,
	    char **body)
{
	char stored[SECRET_SHA256_HEX];
	char *text = NULL;
	int code = 0;
	enum store_rc rc;

	rc = store_idempotency_get(st, rec->actor, rec->key, stored, &code,
				   &text);
	if (rc == STORE_NOTFOUND)
		return IDEM_NEW;
	if (rc != STORE_OK)
		return IDEM_ERR;
	if (!secret_equal(stored, rec->request_sha256)) {
		free(text);
		return IDEM_MISMATCH;
	}
	*status = code;
	*body = text;
	return IDEM_REPLAY;
}
