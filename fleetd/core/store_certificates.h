/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate and CRL part of the store port (core/store.h).
 * Implemented on PostgreSQL by fleetd/db/certificates.c; the core unit
 * tests link an in-memory fake. Each function is one atomic unit of work.
 *
 * Serials are in the one format of pki_cert_serial_hex (uppercase hex, two
 * digits per octet, as `openssl x509 -serial` prints them).
 *
 * The revocation generation: a counter that every revocation increments
 * in its own unit of work. A CRL remembers the generation it was built
 * from, read in the same snapshot as the revoked set it lists, so "this
 * CRL lists every revocation" is exactly "its generation is the current
 * one" (core/crl.c decides freshness from that).
 */
#ifndef FLEETD_CORE_STORE_CERTIFICATES_H
#define FLEETD_CORE_STORE_CERTIFICATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

/* 20 octets (RFC 5280) in hex plus NUL; equals PKI_SERIAL_HEX_MAX. */
#define CERT_SERIAL_MAX 41

/* The certificate a device document shows. */
struct cert_info {
	char serial[CERT_SERIAL_MAX]; /* "" when the device has none */
	int64_t not_before; /* epoch seconds */
	int64_t not_after;
	char status[16]; /* "active", "superseded", "revoked" */
};

/* One entry of a CRL. */
struct crl_entry {
	char serial[CERT_SERIAL_MAX];
	int64_t revoked_at; /* epoch seconds */
	int reason; /* RFC 5280 CRLReason */
};

/* The cached CRL as stored. */
struct crl_cached {
	unsigned char *der; /* malloc'd; NULL when there is none */
	size_t len;
	uint64_t number;
	int64_t generation; /* the revocation generation it was built from */
	int64_t next_update; /* epoch seconds */
};

void crl_cached_clear(struct crl_cached *c);

/*
 * The cached CRL (out->der NULL when none is stored yet), the current
 * revocation generation and the store's clock (epoch seconds), read
 * together. out is written on STORE_OK only.
 */
enum store_rc store_crl_cached(struct store *st, struct crl_cached *out,
			       int64_t *generation, int64_t *now);

/*
 * What a new CRL must list: the revoked, unexpired certificates and the
 * revocation generation they make up (one snapshot), and a new CRL number
 * greater than every number handed out before. *entries is malloc'd
 * (free()); NULL when n is 0.
 */
enum store_rc store_crl_snapshot(struct store *st, struct crl_entry **entries,
				 size_t *n, int64_t *generation,
				 uint64_t *number);

/*
 * Stores a signed CRL, valid validity_s from now on the store's clock,
 * unless one with a higher number is stored already (then STORE_CONFLICT,
 * and the stored one stays).
 */
enum store_rc store_crl_save(struct store *st, uint64_t number,
			     int64_t generation, const unsigned char *der,
			     size_t len, long validity_s);

/*
 * Serialise CRL signing across every fleetd instance (one signs, the
 * others then find its result fresh). Held across the signer call, so it
 * is not a transaction: store_crl_unlock must follow every STORE_OK of
 * store_crl_lock. A lost connection releases it.
 */
enum store_rc store_crl_lock(struct store *st);
void store_crl_unlock(struct store *st);

/* ---- certificate lifecycle (core/cert_lifecycle.h) ---------------------- */

struct audit_entry;
struct cert_renew_facts;

/*
 * The facts of a renewal, in one snapshot: whether the device is active,
 * the status of the session's certificate, and any certificate (of any
 * device) for the CSR's public key. f->key_pem is malloc'd when set.
 */
enum store_rc store_cert_renew_facts(struct store *st, const char *device_id,
				     const char *session_serial,
				     const char *key_sha256,
				     struct cert_renew_facts *f);

/* A certificate issued by renewal, as recorded. */
struct cert_record {
	const char *device_id;
	const char *serial;
	const char *key_sha256;
	const char *pem;
	int64_t not_before, not_after;
	uint64_t csr_seq;
	const char *rotation_id; /* or NULL */
};

/*
 * Records a renewed certificate (status active) with its audit row, in one
 * unit. STORE_CONFLICT when the device already has a certificate for that
 * key (a concurrent duplicate won: read the facts again), STORE_NOTFOUND
 * when the device is not active.
 */
enum store_rc store_cert_record_renewal(struct store *st,
					const struct cert_record *rec,
					const struct audit_entry *audit);

/*
 * The second phase: serial (an active certificate of device_id) is
 * installed. In one unit: it is marked installed, every active
 * certificate of the device created before it is superseded, the pending
 * rotation completes when serial was issued after it was requested, the
 * revocation generation moves and fleet_devices is notified (workers
 * reload the refused serials). *again when it was installed before
 * (nothing written). STORE_NOTFOUND when no such active certificate.
 */
enum store_rc store_cert_installed(struct store *st, const char *device_id,
				   const char *serial, bool *again,
				   const struct audit_entry *audit);

/*
 * Asks for a rotation of an active device: a pending rotation is created
 * (or the pending one kept: *created false) and fleet_certs notified, with
 * the audit row, in one unit. id[SECRET_UUID_LEN] gets the rotation's id.
 * STORE_NOTFOUND (no such device), STORE_CONFLICT (not active).
 */
enum store_rc store_cert_rotation_request(struct store *st,
					  const char *device_id,
					  const char *reason, char *id,
					  bool *created,
					  const struct audit_entry *audit);

/* A rotation a session must be asked for (cert.rotate). */
struct cert_rotation_due {
	char device_id[37];
	char rotation_id[37];
	char reason[16];
};

/*
 * Pending rotations of devices whose session belongs to worker_id (only
 * device_id's when not NULL) and whose session certificate was issued
 * before the rotation was requested. *out malloc'd (NULL when none).
 */
enum store_rc store_cert_rotations_due(struct store *st, const char *worker_id,
				       const char *device_id,
				       struct cert_rotation_due **out,
				       size_t *n);

/* The stored status word of a certificate of device_id ("active", ...),
 * into status[16]. STORE_NOTFOUND when there is none. */
enum store_rc store_cert_status(struct store *st, const char *device_id,
				const char *serial, char *status);

/* One certificate of a device, as the API lists it. */
struct cert_row {
	char serial[CERT_SERIAL_MAX];
	char status[16]; /* stored: active, superseded, revoked */
	int64_t not_before, not_after;
	int64_t created_at, installed_at, superseded_at, revoked_at; /* 0 */
	int revoke_reason; /* -1 when not revoked */
	char key_sha256[65]; /* "" when not recorded */
	char *pem; /* malloc'd; NULL when not stored (enrollment) */
};

/* The device's certificates, newest first. STORE_NOTFOUND when no such
 * device. *rows malloc'd (NULL when none): cert_rows_free(). */
void cert_rows_free(struct cert_row *rows, size_t n);
enum store_rc store_cert_list(struct store *st, const char *device_id,
			      struct cert_row **rows, size_t *n);

/*
 * Revokes one certificate with an RFC 5280 reason, in one unit with its
 * audit row: the revocation generation moves (the CRL is signed again on
 * its next request) and fleet_devices is notified (live sessions of the
 * certificate close, handshakes refuse it). device_id[37] gets its device.
 * STORE_NOTFOUND (no such serial), STORE_CONFLICT (revoked already).
 */
enum store_rc store_cert_revoke(struct store *st, const char *serial,
				int reason, const char *actor, char *device_id);

#endif
