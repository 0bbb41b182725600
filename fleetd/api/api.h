/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON API as plain functions: a parsed HTTP request in, a response out.
 * The http layer (fleetd/http) parses requests on the event loop and calls
 * api_handle() on a job thread, which may block on PostgreSQL and on the CA
 * signer. Nothing here knows libwebsockets. Input is untrusted: everything
 * in struct api_request comes from the network, already bounded in size.
 */
#ifndef FLEETD_API_H
#define FLEETD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct signer_client;
struct store;

/* Read-only facts the handlers need; owned by the worker, outlive jobs. */
struct api_env {
	const char *device_server_url; /* "wss://host:8444/agent/v1" */
	const char *ca_bundle_pem; /* issuing CA + root */
	const char *chain_pem; /* issuing CA then root */
	long cert_validity_s; /* device certificate lifetime */
	long heartbeat_timeout_s; /* presence: online if seen since */
	long cert_grace_s; /* EST re-enroll after expiry: window, 0 = off */
};

/* One job thread's resources. */
struct api_ctx {
	struct store *store; /* this thread's own store (core/store.h) */
	struct signer_client *signer; /* shared by the worker's threads */
	const struct api_env *env;
};

/* What the TLS layer of the api listener made of the (optional) client
 * certificate; the chain is checked against the device issuing CA(s)
 * only (http/worker.c). */
enum api_client_cert {
	API_CLIENT_CERT_NONE = 0, /* none sent, or a resumed session */
	API_CLIENT_CERT_VERIFIED, /* chain, purpose and validity verified */
	API_CLIENT_CERT_EXPIRED, /* verified, except that the leaf has
				    expired: only EST re-enroll within the
				    grace window accepts it (docs/pki.md) */
	API_CLIENT_CERT_INVALID, /* any other verification error */
};

/* The body of a request that streams (PUT /api/v1/artifacts/{id}/file,
 * api_artifacts_streamed): the handler reads it as the event loop hands
 * it over instead of finding it in memory. */
struct api_body_stream {
	/* Up to cap bytes of the body: the count, or <= 0 when the client
	 * went away (blocks while nothing has arrived yet). */
	long (*read)(void *arg, void *buf, size_t cap);
	void *arg;
	uint64_t length; /* Content-Length */
	uint64_t max_size; /* artifact_max_size */
	bool *consumed; /* set when the handler read the whole body */
};

struct api_request {
	const char *method; /* "GET", "POST", "PATCH", "DELETE", ... */
	const char *path; /* decoded path without the query */
	const char *query; /* raw query string without '?', or "" */
	const char *authorization; /* header values or NULL */
	const char *content_type;
	const char *if_match;
	const char *idempotency_key;
	const char *request_id; /* for logs and problem+json "instance" */
	const char *peer; /* remote address, for the audit details */
	const char *body; /* not NUL-terminated; body_len bytes */
	size_t body_len;
	const struct api_body_stream *body_stream; /* or NULL: see above */
	/* The client certificate of the TLS connection (DER; NULL when
	 * none) and what its verification said. */
	const unsigned char *client_cert_der;
	size_t client_cert_der_len;
	enum api_client_cert client_cert;
};

struct api_response {
	int status;
	const char *content_type; /* static string */
	char *body; /* malloc'd, owned by the response */
	size_t body_len;
	char etag[64]; /* "" when none; sent quoted */
	char location[256]; /* "" when none */
	char allow[64]; /* for 405, "" when none */
	int secret; /* the body holds a secret: wiped when freed */
	/* Further header lines, each ending in CRLF (a static string; NULL
	 * when none): e.g. EST's Content-Transfer-Encoding. */
	const char *extra_headers;
};

/* Fills resp (which the caller zeroed); always sets a status. */
void api_handle(struct api_ctx *ctx, const struct api_request *req,
		struct api_response *resp);

/* Frees the body (wiped first: it may carry a new token). */
void api_response_free(struct api_response *resp);

#endif
