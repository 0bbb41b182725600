/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cert.installed in batches (see the header): the rule of cert_installed
 * (core/cert_lifecycle.c) per report, one unit of work for the batch.
 * Runs on a job thread of a net worker; the inputs come from the channel
 * (the device id and session serial from the verified certificate, the
 * serial from the agent's message).
 */
#include "core/cert_installed_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

struct install_audit {
	struct audit_entry entry;
	char actor[AUDIT_ACTOR_MAX];
};

void
cert_installed_batch(struct store *st, struct cert_installed_item *items,
		     size_t n)
{
	struct cert_install_row *rows = calloc(n, sizeof(*rows));
	struct install_audit *audits = calloc(n, sizeof(*audits));
	size_t *which = calloc(n, sizeof(*which));
	size_t m = 0;

	if (rows == NULL || audits == NULL || which == NULL) {
		for (size_t i = 0; i < n; i++)
			items[i].rc = CERT_INSTALLED_ERR;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct cert_installed_item *it = &items[i];
		struct install_audit *a = &audits[m];

		/* As cert_installed: the session that reports it must have
		 * presented it (hex case may differ). */
		if (it->session_serial == NULL || it->serial == NULL ||
		    strcasecmp(it->session_serial, it->serial) != 0) {
			it->rc = CERT_INSTALLED_NOT_SESSION;
			continue;
		}
		snprintf(a->actor, sizeof(a->actor), "device:%s",
			 it->device_id);
		a->entry.actor = a->actor;
		a->entry.action = "certificate.install";
		a->entry.target = it->device_id;
		audit_add_str(&a->entry, "certificate_serial",
			      it->session_serial);
		rows[m].device_id = it->device_id;
		rows[m].serial = it->session_serial;
		rows[m].audit = &a->entry;
		which[m++] = i;
	}
	if (m == 0)
		goto out;
	if (store_cert_installed_batch(st, rows, m) != STORE_OK) {
		for (size_t j = 0; j < m; j++)
			items[which[j]].rc = CERT_INSTALLED_ERR;
		goto out;
	}
	for (size_t j = 0; j < m; j++)
		items[which[j]].rc = rows[j].rc == STORE_NOTFOUND
					     ? CERT_INSTALLED_UNKNOWN
				     : rows[j].again ? CERT_INSTALLED_AGAIN
						     : CERT_INSTALLED_OK;
out:
	free(which);
	free(audits);
	free(rows);
}
