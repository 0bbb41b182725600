/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate lifecycle rules (issue 10, DESIGN.md §4): renewal over the
 * device channel with a new key, the two phases of a rotation, which
 * certificate statuses a handshake refuses, and the RFC 5280 revocation
 * reasons an operator may give. Plain structs and the store and signer
 * ports; no transport, no database. Runs on net workers' job threads.
 *
 * Renewal (cert.csr): the device asks over its live session, i.e. it is
 * authenticated by the certificate the session presented. fleetd signs
 * when the device is active, the session's certificate is still active,
 * the CSR names no other device, and its key is new: not the session
 * certificate's, not one of any other certificate of this device or of
 * another device. The ca re-checks the CSR against the enrollment policy
 * (key type, proof of possession, digest). A CSR for a key that was
 * already certified for this device by renewal and not installed yet gets
 * that certificate again (a lost cert.issued; reports arrive at least
 * once) without signing.
 *
 * Two phases: the new certificate is active beside the old one until the
 * device reconnects with it and reports cert.installed over that session;
 * then every older active certificate of the device becomes superseded
 * and pending rotations complete.
 */
#ifndef FLEETD_CORE_CERT_LIFECYCLE_H
#define FLEETD_CORE_CERT_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/signer_port.h"
#include "core/store_certificates.h"

struct store;

#define CERT_KEY_SHA256_HEX 65 /* 64 hex digits + NUL */
#define CERT_PEM_MAX 16384

/* What a handshake or an API shows for a certificate. */
enum cert_status {
	CERT_ACTIVE = 0,
	CERT_SUPERSEDED,
	CERT_REVOKED,
	CERT_EXPIRED, /* shown only: stored as active or superseded */
};

/* "active", "superseded", "revoked", "expired". */
const char *cert_status_name(enum cert_status s);

/* The stored status word ("active", ...) -> the enum; -1 if unknown. */
int cert_status_parse(const char *stored);

/* What an operator sees: revoked wins, then expired (not_after <= now),
 * then the stored status. */
enum cert_status cert_status_shown(enum cert_status stored, int64_t not_after,
				   int64_t now);

/* Whether a TLS handshake with a certificate of this stored status is
 * refused (superseded and revoked are; an expired one fails the chain
 * check anyway). */
bool cert_status_refused(enum cert_status stored);

/* RFC 5280 CRLReason by its ASN.1 name ("keyCompromise") or number text;
 * -1 for an unknown name or one an operator may not give (certificateHold:
 * no holds here, removeFromCRL: delta CRLs only, 7: unused). */
int cert_reason_parse(const char *name);

/* The ASN.1 name of a reason code, or "unspecified". */
const char *cert_reason_name(int code);

/* ---- renewal ------------------------------------------------------------ */

struct cert_renew_request {
	const char *device_id; /* the session's, from its certificate */
	const char *session_serial; /* the certificate the session used */
	const char *session_key_sha256; /* its public key */
	const char *csr_pem; /* as received (checked again by the ca) */
	size_t csr_len;
	const char *csr_key_sha256; /* the CSR's public key */
	const char *csr_cn; /* the CSR's subject CN, or NULL/"" for none */
	uint64_t seq; /* the cert.csr report's seq */
	const char *rotation_id; /* or NULL */
	long validity_s;
};

/* What the store knows, read in one snapshot (store_cert_renew_facts). */
struct cert_renew_facts {
	bool device_active;
	enum cert_status session_status; /* -1: no such certificate */
	bool session_known;
	/* A certificate of any device for the CSR's key. */
	bool key_known;
	bool key_same_device;
	enum cert_status key_status;
	bool key_installed;
	char key_serial[CERT_SERIAL_MAX];
	char *key_pem; /* malloc'd; NULL when not stored */
	int64_t key_not_before, key_not_after;
};

void cert_renew_facts_clear(struct cert_renew_facts *f);

enum cert_renew_verdict {
	CERT_RENEW_SIGN = 0, /* new key: have it signed */
	CERT_RENEW_REPEAT, /* answered before: send that certificate again */
	CERT_RENEW_REFUSE_DEVICE, /* device not active */
	CERT_RENEW_REFUSE_SESSION, /* the session's certificate is no longer
				      active (superseded or revoked) */
	CERT_RENEW_REFUSE_NAME, /* the CSR names another device */
	CERT_RENEW_REFUSE_KEY, /* the key is not new */
};

/* The rule, on facts alone. */
enum cert_renew_verdict cert_renew_rule(const struct cert_renew_request *req,
					const struct cert_renew_facts *f);

/* A machine word for a refusal ("device-not-active", "key-reused", ...). */
const char *cert_renew_verdict_code(enum cert_renew_verdict v);

enum cert_renew_rc {
	CERT_RENEW_ISSUED = 0, /* signed and recorded now */
	CERT_RENEW_REPEATED, /* the certificate issued before */
	CERT_RENEW_REFUSED, /* a rule refused it: *verdict says which */
	CERT_RENEW_CSR_REJECTED, /* the ca refused the CSR (policy) */
	CERT_RENEW_UNAVAILABLE, /* the ca is down, or storage failed */
};

struct cert_renew_result {
	enum cert_renew_verdict verdict;
	char serial[CERT_SERIAL_MAX];
	char *cert_pem; /* malloc'd */
	int64_t not_before, not_after;
};

void cert_renew_result_clear(struct cert_renew_result *r);

/*
 * Renews: facts, rule, signer, record (certificate + audit row in one
 * unit). err (may be NULL) says why the ca refused a CSR.
 */
enum cert_renew_rc cert_renew(struct store *st, struct signer_client *signer,
			      const struct cert_renew_request *req,
			      struct cert_renew_result *out, char *err,
			      size_t errlen);

/* ---- second phase ------------------------------------------------------- */

enum cert_installed_rc {
	CERT_INSTALLED_OK = 0, /* older certificates superseded now */
	CERT_INSTALLED_AGAIN, /* it was installed before: nothing to do */
	CERT_INSTALLED_NOT_SESSION, /* serial is not the session's
				       certificate: refused */
	CERT_INSTALLED_UNKNOWN, /* no active certificate of the device */
	CERT_INSTALLED_ERR, /* storage */
};

/*
 * The device reports it runs serial. Accepted only from a session that
 * presented that very certificate (the proof that the new identity
 * works); then, in one unit, older active certificates of the device are
 * superseded, pending rotations complete, and the CRL generation moves.
 */
enum cert_installed_rc cert_installed(struct store *st, const char *device_id,
				      const char *session_serial,
				      const char *serial);

/* ---- operators ---------------------------------------------------------- */

enum cert_op_rc {
	CERT_OP_OK = 0,
	CERT_OP_NOTFOUND, /* no such device or certificate */
	CERT_OP_CONFLICT, /* device not active / certificate revoked */
	CERT_OP_BAD_INPUT, /* serial or reason not acceptable */
	CERT_OP_ERR_STORE, /* see store_unavailable() */
};

/*
 * Asks device_id for a new key and certificate now: a pending rotation
 * (kept if one is pending: *created false) that the worker holding the
 * device answers with cert.rotate, or the device's next session does.
 * id[SECRET_UUID_LEN] gets its id.
 */
enum cert_op_rc cert_rotation_request(struct store *st, const char *device_id,
				      const char *reason, const char *actor,
				      char *id, bool *created);

/* The serial in its one stored form (uppercase, an even number of
 * digits, as openssl prints it) into out[CERT_SERIAL_MAX]; false when
 * serial is not 1 to 40 hex digits. */
bool cert_serial_normalize(const char *serial, char *out);

/* Revokes one certificate (reason: cert_reason_parse). device_id[37]
 * gets its device. */
enum cert_op_rc cert_revoke(struct store *st, const char *serial, int reason,
			    const char *actor, char *device_id);

#endif
