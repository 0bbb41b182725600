/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An in-memory fake of the certificate-lifecycle part of the store port
 * (core/store_certificates.h) for test_cert_lifecycle: a handful of
 * certificates of one or two devices, enough to drive the renewal rule,
 * the idempotent answer and the second phase.
 */
#include "fake_store_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cert_lifecycle.h"
#include "core/store_audit.h"

struct store {
	struct fake_cert certs[FAKE_CERTS_MAX];
	size_t n;
	bool device_active;
	int records, installs, rotations;
	bool fail;
};

struct store *
fake_certs_new(void)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st != NULL)
		st->device_active = true;
	return st;
}

void
fake_certs_free(struct store *st)
{
	free(st);
}

void
fake_certs_add(struct store *st, const struct fake_cert *c)
{
	if (st->n < FAKE_CERTS_MAX)
		st->certs[st->n++] = *c;
}

struct fake_cert *
fake_certs_get(struct store *st, const char *serial)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->certs[i].serial, serial) == 0)
			return &st->certs[i];
	return NULL;
}

void
fake_certs_set_active(struct store *st, bool active)
{
	st->device_active = active;
}

int
fake_certs_records(const struct store *st)
{
	return st->records;
}

bool
store_unavailable(struct store *st)
{
	(void)st;
	return false;
}

enum store_rc
store_cert_renew_facts(struct store *st, const char *device_id,
		       const char *session_serial, const char *key_sha256,
		       struct cert_renew_facts *f)
{
	memset(f, 0, sizeof(*f));
	if (st->fail)
		return STORE_ERR;
	f->device_active = st->device_active;
	for (size_t i = 0; i < st->n; i++) {
		struct fake_cert *c = &st->certs[i];

		if (strcmp(c->serial, session_serial) == 0 &&
		    strcmp(c->device_id, device_id) == 0) {
			f->session_known = true;
			f->session_status = c->status;
		}
		if (strcmp(c->key, key_sha256) == 0) {
			f->key_known = true;
			f->key_same_device =
				strcmp(c->device_id, device_id) == 0;
			f->key_status = c->status;
			f->key_installed = c->installed;
			snprintf(f->key_serial, sizeof(f->key_serial), "%s",
				 c->serial);
			f->key_pem = c->pem[0] != '\0' ? strdup(c->pem) : NULL;
		}
	}
	return STORE_OK;
}

enum store_rc
store_cert_record_renewal(struct store *st, const struct cert_record *rec,
			  const struct audit_entry *audit)
{
	struct fake_cert c;

	(void)audit;
	if (!st->device_active)
		return STORE_NOTFOUND;
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->certs[i].key, rec->key_sha256) == 0 &&
		    strcmp(st->certs[i].device_id, rec->device_id) == 0)
			return STORE_CONFLICT;
	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "%s", rec->serial);
	snprintf(c.device_id, sizeof(c.device_id), "%s", rec->device_id);
	snprintf(c.key, sizeof(c.key), "%s", rec->key_sha256);
	snprintf(c.pem, sizeof(c.pem), "%s", rec->pem);
	c.status = CERT_ACTIVE;
	c.order = (int)st->n;
	fake_certs_add(st, &c);
	st->records++;
	return STORE_OK;
}

enum store_rc
store_cert_installed(struct store *st, const char *device_id,
		     const char *serial, bool *again,
		     const struct audit_entry *audit)
{
	struct fake_cert *n = fake_certs_get(st, serial);

	(void)audit;
	if (n == NULL || n->status != CERT_ACTIVE ||
	    strcmp(n->device_id, device_id) != 0)
		return STORE_NOTFOUND;
	*again = n->installed;
	if (n->installed)
		return STORE_OK;
	n->installed = true;
	for (size_t i = 0; i < st->n; i++) {
		struct fake_cert *c = &st->certs[i];

		if (c != n && strcmp(c->device_id, device_id) == 0 &&
		    c->status == CERT_ACTIVE && c->order <= n->order)
			c->status = CERT_SUPERSEDED;
	}
	st->installs++;
	return STORE_OK;
}

enum store_rc
store_cert_rotation_request(struct store *st, const char *device_id,
			    const char *reason, char *id, bool *created,
			    const struct audit_entry *audit)
{
	(void)device_id;
	(void)reason;
	(void)id;
	(void)audit;
	if (!st->device_active)
		return STORE_CONFLICT;
	*created = st->rotations == 0;
	st->rotations++;
	return STORE_OK;
}

enum store_rc
store_cert_revoke(struct store *st, const char *serial, int reason,
		  const char *actor, char *device_id)
{
	struct fake_cert *c = fake_certs_get(st, serial);

	(void)reason;
	(void)actor;
	if (c == NULL)
		return STORE_NOTFOUND;
	if (c->status == CERT_REVOKED)
		return STORE_CONFLICT;
	c->status = CERT_REVOKED;
	snprintf(device_id, 37, "%s", c->device_id);
	return STORE_OK;
}

/* core/audit.c comes with audit_add_str; its list is not used here. */
enum store_rc
store_audit_list(struct store *st, const struct audit_filter *f,
		 const struct page *page, struct audit_row **rows, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	(void)st;
	(void)f;
	(void)page;
	(void)next;
	*rows = NULL;
	*n = 0;
	return STORE_ERR;
}
