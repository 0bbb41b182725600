/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRL rule (see crl.h). Runs on API job threads; trusts the store and
 * the signer, nothing from the network reaches here.
 *
 * Why a generation rather than a "stale" flag: the flag was set by a
 * revoking transaction and cleared by the CRL store, so a revocation that
 * committed after the revoked set was read but before the new CRL was
 * stored was cleared with it, and the CRL missing it was served as fresh
 * for days (issue 8, defect 3). A generation read in the same snapshot as
 * the revoked set cannot be overtaken: a later revocation makes the
 * current generation larger than the CRL's, whatever the order of commits.
 */
#include "core/crl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/signer_port.h"

void
crl_cached_clear(struct crl_cached *c)
{
	if (c == NULL)
		return;
	free(c->der);
	memset(c, 0, sizeof(*c));
}

bool
crl_is_fresh(const struct crl_cached *c, int64_t generation, int64_t now)
{
	return c->der != NULL && c->generation == generation &&
	       c->next_update - now > CRL_REFRESH_S;
}

/* The cached CRL if fresh: 1 and *der taken from it, 0 if not fresh. */
static int
take_fresh(struct store *st, unsigned char **der, size_t *len, enum crl_rc *rc)
{
	struct crl_cached c;
	int64_t gen = 0, now = 0;

	memset(&c, 0, sizeof(c));
	if (store_crl_cached(st, &c, &gen, &now) != STORE_OK) {
		*rc = CRL_ERR_STORE;
		return -1;
	}
	if (!crl_is_fresh(&c, gen, now)) {
		crl_cached_clear(&c);
		return 0;
	}
	*der = c.der;
	*len = c.len;
	return 1;
}

static enum crl_rc
sign_new(struct store *st, struct signer_client *sc, unsigned char **der,
	 size_t *len, char *err, size_t errlen)
{
	struct crl_entry *entries = NULL;
	struct signer_revoked *list = NULL;
	unsigned char *out = NULL;
	size_t i, n = 0, out_len = 0;
	int64_t gen = 0;
	uint64_t number = 0;
	enum store_rc src;
	enum crl_rc rc = CRL_ERR_STORE;

	if (store_crl_snapshot(st, &entries, &n, &gen, &number) != STORE_OK)
		return CRL_ERR_STORE;
	list = calloc(n > 0 ? n : 1, sizeof(*list));
	if (list == NULL) {
		rc = CRL_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		list[i].serial = entries[i].serial;
		list[i].revoked_at = entries[i].revoked_at;
		list[i].reason = entries[i].reason;
	}
	if (signer_sign_crl(sc, list, n, number, CRL_VALIDITY_S, &out, &out_len,
			    err, errlen) != SIGNER_OK) {
		rc = CRL_ERR_SIGNER;
		goto out;
	}
	/* nextUpdate as the signer wrote it is "now + validity" on the ca's
	 * clock; the store records it on its own clock, which is what the
	 * freshness rule compares with. */
	src = store_crl_save(st, number, gen, out, out_len, CRL_VALIDITY_S);
	if (src != STORE_OK && src != STORE_CONFLICT) {
		free(out);
		goto out;
	}
	/* Even when a newer CRL was stored meanwhile, this one lists every
	 * revocation committed before its snapshot: serve it. */
	*der = out;
	*len = out_len;
	rc = CRL_OK;
out:
	free(list);
	free(entries);
	return rc;
}

enum crl_rc
crl_current(struct store *st, struct signer_client *sc, unsigned char **der,
	    size_t *len, char *err, size_t errlen)
{
	enum crl_rc rc = CRL_OK;
	int got;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	got = take_fresh(st, der, len, &rc);
	if (got != 0)
		return got > 0 ? CRL_OK : rc;
	if (store_crl_lock(st) != STORE_OK)
		return CRL_ERR_STORE;
	/* Another instance may have signed while we waited for the lock. */
	got = take_fresh(st, der, len, &rc);
	if (got == 0)
		rc = sign_new(st, sc, der, len, err, errlen);
	store_crl_unlock(st);
	return got > 0 ? CRL_OK : rc;
}
