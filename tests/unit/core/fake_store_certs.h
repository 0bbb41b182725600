/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory certificates for test_cert_lifecycle (fake_store_certs.c). */
#ifndef FAKE_STORE_CERTS_H
#define FAKE_STORE_CERTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cert_lifecycle.h"
#include "core/store_certificates.h"

#define FAKE_CERTS_MAX 16

struct fake_cert {
	char serial[CERT_SERIAL_MAX];
	char device_id[37];
	char key[65];
	char pem[64];
	enum cert_status status;
	bool installed;
	int order; /* creation order */
};

struct store *fake_certs_new(void);
void fake_certs_free(struct store *st);
void fake_certs_add(struct store *st, const struct fake_cert *c);
struct fake_cert *fake_certs_get(struct store *st, const char *serial);
void fake_certs_set_active(struct store *st, bool active);
int fake_certs_records(const struct store *st);

#endif
