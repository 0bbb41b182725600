/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plain parts of core/cert_lifecycle.h that the store adapter uses too
 * (status words, clearing what it fills), apart from the flows, so that a
 * program linking the store does not need the signer port.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cert_lifecycle.h"

static const char *const status_names[] = {
	[CERT_ACTIVE] = "active",
	[CERT_SUPERSEDED] = "superseded",
	[CERT_REVOKED] = "revoked",
	[CERT_EXPIRED] = "expired",
};

const char *
cert_status_name(enum cert_status s)
{
	if ((unsigned)s > CERT_EXPIRED)
		return "unknown";
	return status_names[s];
}

int
cert_status_parse(const char *stored)
{
	if (stored == NULL)
		return -1;
	for (int i = CERT_ACTIVE; i <= CERT_REVOKED; i++) {
		if (strcmp(stored, status_names[i]) == 0)
			return i;
	}
	return -1;
}

void
cert_renew_facts_clear(struct cert_renew_facts *f)
{
	if (f == NULL)
		return;
	free(f->key_pem);
	memset(f, 0, sizeof(*f));
}

void
cert_rows_free(struct cert_row *rows, size_t n)
{
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(rows[i].pem);
	free(rows);
}
