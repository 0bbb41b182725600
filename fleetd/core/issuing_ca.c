// SPDX-License-Identifier: Apache-2.0
/*
 * CRLs per issuing CA (see issuing_ca.h). The rule is crl.c's, per CA;
 * runs on API job threads and trusts the store and the signer.
 */
#include "core/issuing_ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crl.h"
#include "core/signer_port.h"
#include "core/store_issuing_ca.h"

bool
issuing_ca_id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return i == ISSUING_CA_ID_LEN - 1;
}

/* -1 error, 0 not fresh (state kept), 1 served from the cache. */
static int
take_cached(struct store *st, const char *key_id, unsigned char **der,
	    size_t *len, struct issuing_ca_crl_state *s,
	    enum issuing_ca_crl_rc *rc)
{
	memset(s, 0, sizeof(*s));
	if (store_issuing_ca_crl_state(st, key_id, s) != STORE_OK) {
		*rc = ISSUING_CA_CRL_ERR_STORE;
		return -1;
	}
	if (s->registry_empty || !s->found) {
		*rc = s->registry_empty ? ISSUING_CA_CRL_NO_ROLLOVER
					: ISSUING_CA_CRL_NOT_FOUND;
		crl_cached_clear(&s->cached);
		return -1;
	}
	if (s->retired && s->cached.der == NULL) {
		*rc = ISSUING_CA_CRL_NOT_FOUND;
		return -1;
	}
	if (s->retired || crl_is_fresh(&s->cached, s->generation, s->now)) {
		*der = s->cached.der;
		*len = s->cached.len;
		s->cached.der = NULL;
		return 1;
	}
	crl_cached_clear(&s->cached);
	return 0;
}

static enum issuing_ca_crl_rc
sign_new(struct store *st, struct signer_client *sc, const char *key_id,
	 unsigned char **der, size_t *len, char *err, size_t errlen)
{
	struct crl_entry *entries = NULL;
	struct signer_revoked *list = NULL;
	unsigned char *out = NULL;
	size_t i, n = 0, out_len = 0;
	int64_t gen = 0;
	uint64_t number = 0;
	enum store_rc src;
	enum issuing_ca_crl_rc rc = ISSUING_CA_CRL_ERR_STORE;

	if (store_issuing_ca_crl_snapshot(st, key_id, &entries, &n, &gen,
					  &number) != STORE_OK)
		return ISSUING_CA_CRL_ERR_STORE;
	list = calloc(n > 0 ? n : 1, sizeof(*list));
	if (list == NULL) {
		rc = ISSUING_CA_CRL_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		list[i].serial = entries[i].serial;
		list[i].revoked_at = entries[i].revoked_at;
		list[i].reason = entries[i].reason;
	}
	if (signer_sign_crl_for(sc, key_id, list, n, number, CRL_VALIDITY_S,
				&out, &out_len, err, errlen) != SIGNER_OK) {
		rc = ISSUING_CA_CRL_ERR_SIGNER;
		goto out;
	}
	src = store_issuing_ca_crl_save(st, key_id, number, gen, out, out_len,
					CRL_VALIDITY_S);
	if (src != STORE_OK && src != STORE_CONFLICT) {
		free(out);
		goto out;
	}
	*der = out;
	*len = out_len;
	rc = ISSUING_CA_CRL_OK;
out:
	free(list);
	free(entries);
	return rc;
}

enum issuing_ca_crl_rc
issuing_ca_crl(struct store *st, struct signer_client *sc, const char *key_id,
	       unsigned char **der, size_t *len, char *err, size_t errlen)
{
	struct issuing_ca_crl_state s;
	enum issuing_ca_crl_rc rc = ISSUING_CA_CRL_OK;
	char id[ISSUING_CA_ID_LEN];
	int got;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	got = take_cached(st, key_id, der, len, &s, &rc);
	if (got != 0)
		return got > 0 ? ISSUING_CA_CRL_OK : rc;
	/* The resolved id: "" (the first CA) names it from here on. */
	memcpy(id, s.key_id, sizeof(id));
	if (store_crl_lock(st) != STORE_OK)
		return ISSUING_CA_CRL_ERR_STORE;
	got = take_cached(st, id, der, len, &s, &rc);
	if (got == 0)
		rc = sign_new(st, sc, id, der, len, err, errlen);
	store_crl_unlock(st);
	return got > 0 ? ISSUING_CA_CRL_OK : rc;
}
