/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire format between net workers and the ca process. One message per
 * SOCK_SEQPACKET record: a fixed header, then a JSON body. Requests carry a
 * random id that the answer repeats, so an answer meant for a worker that
 * died is recognised and dropped by its successor.
 *
 *   ISSUE  {"csr": PEM, "device_id": uuid, "validity": seconds}
 *      -> {"status": "ok", "cert": PEM, "serial": hex, "not_before": t,
 *          "not_after": t, "issuer": key id}
 *         | {"status": "rejected"|"error", "error": msg}
 *   CRL    {"count": n, "number": n, "next_update": seconds,
 *          "issuer": key id | ""}  + one file descriptor (SCM_RIGHTS):
 *          a sealed memfd of exactly n struct signer_crl_record
 *      -> {"status": "ok", "crl_len": bytes, "issuer": key id}
 *          + a sealed memfd holding the DER CRL | {"status": ..., "error"}
 *
 * Why a file descriptor: a record is at most SIGNER_MSG_MAX bytes, which
 * held a few thousand revoked serials; a CRL must cover at least 100,000
 * (issue 10). Both memfds are sealed against writes and resizing before
 * they are passed, so the reader sees fixed bytes; the reader still checks
 * the type, the seals and the size before it reads, and copies before it
 * parses. The ca keeps its isolation: it receives bytes, never a path, a
 * socket or a database.
 *
 * "issuer" names an issuing CA by key id (pki_key_id: hex SHA-256 of its
 * SubjectPublicKeyInfo); "" is the CA that issues new certificates now.
 */
#ifndef FLEETD_CA_SIGNER_PROTO_H
#define FLEETD_CA_SIGNER_PROTO_H

#include <stdint.h>

#define SIGNER_MAGIC 0x464c4341u /* "FLCA" */
#define SIGNER_MSG_MAX (192u * 1024u)
#define SIGNER_SOCKBUF (1024 * 1024)
/* Limits of the CRL exchange (memfds). */
#define SIGNER_CRL_MAX_ENTRIES (2u * 1000u * 1000u)
#define SIGNER_CRL_MAX_DER (256u * 1024u * 1024u)

enum signer_msg_type {
	SIGNER_MSG_ISSUE = 1,
	SIGNER_MSG_CRL = 2,
	SIGNER_MSG_PING = 3, /* readiness: the ca answers {"status":"ok"} */
	SIGNER_MSG_REPLY = 0x80, /* or'ed with the request type */
};

struct signer_header {
	uint32_t magic;
	uint32_t type;
	uint64_t id;
};

/* One revoked certificate in the CRL request's memfd. serial is
 * NUL-terminated uppercase hex (pki_cert_serial_hex); zero is 0. */
struct signer_crl_record {
	char serial[48];
	int64_t revoked_at; /* epoch seconds */
	int32_t reason; /* RFC 5280 CRLReason */
	uint32_t zero;
};

_Static_assert(sizeof(struct signer_crl_record) == 64,
	       "the CRL record has one layout on both sides");

#endif
