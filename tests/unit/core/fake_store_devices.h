/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An in-memory store for the device, certificate and CRL parts of the
 * store port (core/store_devices.h, core/store_certificates.h), and a fake
 * signer that "signs" a CRL as readable text. Test code: the core unit
 * tests link these instead of fleetd/db and the ca process.
 */
#ifndef FLEET_TEST_FAKE_STORE_DEVICES_H
#define FLEET_TEST_FAKE_STORE_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/device.h"
#include "core/store_certificates.h"
#include "core/store_devices.h"

#define FAKE_MAX_DEVICES 16
#define FAKE_MAX_CERTS 32

struct fake_cert {
	char serial[CERT_SERIAL_MAX];
	char device_id[DEVICE_ID_LEN];
	bool revoked;
	int64_t revoked_at;
	int reason;
};

struct store {
	struct device devices[FAKE_MAX_DEVICES];
	size_t ndevices;
	struct fake_cert certs[FAKE_MAX_CERTS];
	size_t ncerts;
	int64_t now; /* the store's clock, epoch seconds */
	int64_t generation; /* revocation generation */
	uint64_t last_number; /* CRL numbers handed out */
	struct crl_cached crl;
	bool fail; /* every call answers STORE_ERR */
	bool unavailable; /* what store_unavailable says */
	bool locked; /* the CRL lock */
	int audits; /* audit rows written */
	char last_action[32];
	char last_actor[80];
	/* Called once by the next store_crl_snapshot, after it read: a
	 * revocation that commits while the CRL is being signed. */
	void (*after_snapshot)(struct store *st);
	/* Labels a concurrent writer sets (with a revision bump) right
	 * before the next n store_device_set_labels calls. */
	int concurrent_writes;
};

struct signer_client {
	bool down;
	int crl_calls;
};

void fake_store_init(struct store *st);
void fake_store_clear(struct store *st);
/* Adds an active device with a certificate of serial (may be NULL). */
struct device *fake_store_add(struct store *st, const char *id,
			      const char *serial);
/* Revokes the certificates of a device as another instance would. */
void fake_store_revoke(struct store *st, const char *device_id);

#endif
