/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment: a device trades an enrollment token and a CSR for its
 * identity. The rules (token shape, refusal order, the label merge, the
 * use count, what an enrollment writes) live here, on plain structs.
 * The flow holds no lock while the ca signs (defect 4 of issue 8):
 *
 *   read the token (refuse one that is unknown, revoked, expired or used
 *   up) -> sign through the signer port -> record device + certificate
 *   + audit row AND take the token's use, in one committed unit of work
 *   (k uses give exactly k devices under any concurrency; a record the
 *   token has no use for any more is refused like the read would have).
 *
 * Nothing is reserved before signing, so nothing is ever given back: a
 * failover can lose a record and its use together, never one of them.
 *
 * Runs on API job threads; the request is untrusted.
 */
#ifndef FLEETD_CORE_ENROLL_H
#define FLEETD_CORE_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "core/idempotency.h"
#include "core/label_set.h"
#include "core/signer_port.h"
#include "secret.h"

struct store;

#define ENROLL_CSR_MAX 16384
#define ENROLL_TEXT_MAX 255 /* model, serial */

struct enroll_request {
	const char *token; /* the presented secret; borrowed */
	const char *csr; /* PEM, csr_len bytes; borrowed */
	size_t csr_len;
	struct label_set labels; /* the device's own wish; owned */
	const char *model; /* NULL when not given */
	const char *serial;
	const char *peer; /* remote address, for the audit row */
};

struct enroll_result {
	char device_id[SECRET_UUID_LEN];
	char token_id[SECRET_UUID_LEN];
	struct signer_issued issued; /* the certificate */
};

enum enroll_rc {
	ENROLL_OK = 0,
	ENROLL_REPLAY, /* Idempotency-Key: *replay_* hold the first answer */
	ENROLL_BAD_CSR_SIZE, /* request: CSR empty or over ENROLL_CSR_MAX */
	ENROLL_BAD_TEXT, /* request: model or serial not short text */
	ENROLL_TOKEN_UNKNOWN,
	ENROLL_TOKEN_REVOKED,
	ENROLL_TOKEN_EXPIRED,
	ENROLL_TOKEN_EXHAUSTED,
	ENROLL_CSR_REJECTED, /* the ca refused the CSR; err says why */
	ENROLL_SIGNER_UNAVAILABLE, /* the ca is down or timed out */
	ENROLL_IDEM_MISMATCH, /* the key was used for another request */
	ENROLL_IDEM_TAKEN, /* a concurrent request recorded the key */
	ENROLL_ERR_STORE, /* see store_unavailable() */
	ENROLL_ERR_NOMEM,
};

/*
 * How to answer a retry: when not NULL, core looks the key up first
 * (actor "enroll:<token sha256>", so the key space is per token) and
 * records render()'s answer with the device. render returns a malloc'd
 * body (no secrets) or NULL when out of memory.
 */
struct enroll_idem {
	const char *key;
	const char *method, *path; /* with the body, the request hash */
	const void *body;
	size_t body_len;
	char *(*render)(const struct enroll_result *res, void *arg);
	void *arg;
	int replay_status; /* out, on ENROLL_REPLAY */
	char *replay_body; /* out, malloc'd, on ENROLL_REPLAY */
};

/* Checks what can be checked without storage (sizes, texts). */
enum enroll_rc enroll_request_check(const struct enroll_request *req);

/*
 * Enrolls one device: see the flow above. On ENROLL_OK res is filled
 * (enroll_result_clear it). err (may be NULL) says why a CSR was refused.
 * now is the time of the request (epoch seconds).
 */
enum enroll_rc enroll_device(struct store *st, struct signer_client *signer,
			     const struct enroll_request *req, long validity_s,
			     int64_t now, struct enroll_idem *idem,
			     struct enroll_result *res, char *err,
			     size_t errlen);

void enroll_request_clear(struct enroll_request *req);
void enroll_result_clear(struct enroll_result *res);

#endif
