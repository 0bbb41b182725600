/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire format between net workers and the ca process. One message per
 * SOCK_SEQPACKET record: a fixed header, then a JSON body. Requests carry a
 * random id that the answer repeats, so an answer meant for a worker that
 * died is recognised and dropped by its successor.
 *
 *   ISSUE  {"csr": PEM, "device_id": uuid, "validity": seconds}
 *      -> {"status": "ok", "cert": PEM, "serial": hex, "not_before": t,
 *          "not_after": t} | {"status": "rejected"|"error", "error": msg}
 *   CRL    {"revoked": [[serial, revoked_at, reason], ...], "number": n,
 *          "next_update": seconds}
 *      -> {"status": "ok", "crl": base64 DER} | {"status": ..., "error": msg}
 */
#ifndef FLEETD_CA_SIGNER_PROTO_H
#define FLEETD_CA_SIGNER_PROTO_H

#include <stdint.h>

#define SIGNER_MAGIC 0x464c4341u /* "FLCA" */
#define SIGNER_MSG_MAX (192u * 1024u)
#define SIGNER_SOCKBUF (1024 * 1024)

enum signer_msg_type {
	SIGNER_MSG_ISSUE = 1,
	SIGNER_MSG_CRL = 2,
	SIGNER_MSG_REPLY = 0x80, /* or'ed with the request type */
};

struct signer_header {
	uint32_t magic;
	uint32_t type;
	uint64_t id;
};

#endif
