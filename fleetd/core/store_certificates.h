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

#endif
