/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Net-worker side of the CA signer protocol: sends sign requests to the ca
 * process over a socketpair and waits for the answer. Calls block, so they
 * run on job threads only; a mutex serialises the threads of one worker.
 */
#ifndef FLEETD_CA_SIGNER_CLIENT_H
#define FLEETD_CA_SIGNER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

enum signer_status {
	SIGNER_OK = 0,
	SIGNER_REJECTED, /* policy refused the request: a 4xx */
	SIGNER_UNAVAILABLE, /* the ca process is down or timed out: a 503 */
};

struct signer_issued {
	char *cert_pem; /* malloc'd; free with signer_issued_free() */
	char serial[64]; /* lowercase hex */
	int64_t not_before; /* epoch seconds */
	int64_t not_after;
};

struct signer_revoked {
	const char *serial; /* hex */
	int64_t revoked_at;
	int reason; /* RFC 5280 CRLReason */
};

struct signer_client;

/* fd is this worker's end of the socketpair; the client owns it. */
struct signer_client *signer_client_new(int fd);
void signer_client_free(struct signer_client *sc);

/* Replaces the socket after the supervisor restarted the ca process. */
void signer_client_set_fd(struct signer_client *sc, int fd);

enum signer_status signer_issue_device(struct signer_client *sc,
				       const char *csr_pem, size_t csr_len,
				       const char *device_id, long validity_s,
				       struct signer_issued *out, char *err,
				       size_t errlen);

/* out_der is malloc'd, owned by the caller. */
enum signer_status signer_sign_crl(struct signer_client *sc,
				   const struct signer_revoked *revoked,
				   size_t n, uint64_t crl_number,
				   long next_update_s, unsigned char **out_der,
				   size_t *out_len, char *err, size_t errlen);

void signer_issued_free(struct signer_issued *issued);

#endif
