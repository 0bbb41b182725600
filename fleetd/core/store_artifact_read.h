/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read side of artifacts for the device listener (GET /artifacts/<sha256>,
 * channel/download.c): may this device have this blob, and its bytes one
 * stored chunk at a time. Implemented on PostgreSQL by
 * fleetd/db/artifact_read.c. Read-only: nothing here writes, so there is no
 * audit row. Each function is one statement.
 */
#ifndef FLEETD_CORE_STORE_ARTIFACT_READ_H
#define FLEETD_CORE_STORE_ARTIFACT_READ_H

#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

/* What a device may do with a blob. */
enum artifact_access {
	/* The device is active, the certificate is its own and active (not
	 * revoked, not superseded), the device has a deployment_devices row
	 * whose deployment's artifact has this sha256, and the blob is
	 * complete. */
	ARTIFACT_ALLOWED = 0,
	/* The device or its certificate fails the session check (403). */
	ARTIFACT_DEVICE_REFUSED,
	/* No such blob, an incomplete one, or none offered to this device:
	 * one answer (404) so that nothing leaks. */
	ARTIFACT_NOT_OFFERED,
};

struct artifact_blob {
	int64_t size; /* bytes, > 0 */
	int64_t chunk_size; /* bytes per stored chunk (the last is shorter) */
};

/*
 * The access of device_id (uuid text), presenting the certificate serial
 * (pki_cert_serial_hex), to the blob sha256 (64 lower-case hex digits).
 * *blob is set when ARTIFACT_ALLOWED.
 */
enum store_rc store_artifact_access(struct store *st, const char *device_id,
				    const char *serial, const char *sha256,
				    enum artifact_access *access,
				    struct artifact_blob *blob);

/*
 * Copies chunk idx of the complete blob sha256 into buf (cap bytes) and
 * sets *len. STORE_NOTFOUND when the blob or the chunk is gone (deleted
 * meanwhile), STORE_CONFLICT when the chunk is larger than cap.
 */
enum store_rc store_artifact_chunk(struct store *st, const char *sha256,
				   int64_t idx, unsigned char *buf, size_t cap,
				   size_t *len);

#endif
