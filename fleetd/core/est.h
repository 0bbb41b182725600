/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EST re-enrollment (RFC 7030 §4.2.2) and renewal after expiry within a
 * grace window (issue 10; docs/pki.md, "Renewal after expiry" and the
 * threat model). Plain structs; runs on API job threads.
 *
 * /simplereenroll is authenticated by the TLS client certificate of the
 * connection, verified in the handshake against the device issuing CA(s)
 * only. Besides the renewal rules of core/cert_lifecycle.h (device
 * active, that certificate still active: not revoked, not superseded, a
 * NEW key, the CSR naming no other device), a certificate that has
 * expired is accepted only here and only when:
 *   - the grace window is not 0 (0 disables renewal after expiry),
 *   - it expired at most grace_s ago (on the server's clock),
 *   - it is the newest certificate of its device (an older one, e.g. the
 *     predecessor of a renewal, proves nothing about the device now).
 * Possession of its key is proven by the TLS handshake itself (the
 * client signs the transcript, which holds fresh server randomness), so
 * there is no separate challenge to replay.
 */
#ifndef FLEETD_CORE_EST_H
#define FLEETD_CORE_EST_H

#include <stdbool.h>
#include <stdint.h>

#define EST_GRACE_DEFAULT_S (30L * 86400)

/* What the TLS layer made of the client certificate. */
enum est_client_cert {
	EST_CERT_NONE = 0,
	EST_CERT_VERIFIED,
	EST_CERT_EXPIRED, /* verified but for the leaf's notAfter */
	EST_CERT_INVALID,
};

enum est_reenroll_verdict {
	EST_REENROLL_OK = 0,
	EST_REENROLL_NO_CERT, /* no client certificate: 401 */
	EST_REENROLL_CERT_INVALID, /* not from a device issuing CA, or
				      otherwise unverifiable: 403 */
	EST_REENROLL_GRACE_DISABLED, /* expired, and the window is 0 */
	EST_REENROLL_PAST_GRACE, /* expired longer ago than the window */
	EST_REENROLL_NOT_NEWEST, /* expired, and not the device's newest */
};

/*
 * The rule on facts: state of the client certificate, its notAfter and
 * now (epoch seconds), the window (seconds, 0 = off), and whether it is
 * the newest certificate of its device (only asked for expired ones).
 */
enum est_reenroll_verdict est_reenroll_rule(enum est_client_cert state,
					    int64_t not_after, int64_t now,
					    int64_t grace_s, bool newest);

/* A stable machine word for a refusal ("past-grace", ...). */
const char *est_reenroll_verdict_code(enum est_reenroll_verdict v);

#endif
