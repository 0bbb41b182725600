/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict HTTP/1.1 request-head parser (RFC 9112) for the api listener:
 * request line and header fields in, the few fields the API uses out, or
 * the exact refusal (status, problem type, detail). Pure C on a byte
 * buffer: no lws, no allocation but the query string, so it can be
 * fuzzed and tested on its own. Everything it reads is untrusted.
 *
 * What it refuses (and why) is listed in docs/internals/threat-model.md:
 * ambiguous framing (Transfer-Encoding, repeated or non-numeric
 * Content-Length, whitespace before a colon, obs-fold, bare LF), a NUL
 * or control byte anywhere, %00 in the path or query, dot segments, any
 * field over its limit (414/431, never cut), methods we never serve (501),
 * other HTTP versions (505) and any Upgrade.
 */
#ifndef FLEETD_HTTP_H1_H
#define FLEETD_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>

/* Limits (threat-model.md has the table). Sizes include the NUL. */
#define H1_HEAD_MAX 32768 /* request line + header fields + CRLFs */
#define H1_TARGET_MAX 16384 /* request-target as sent (414 above) */
#define H1_PATH_MAX 1024 /* decoded path (414 above) */
#define H1_QUERY_PARAMS_MAX 64
#define H1_FIELD_LINE_MAX 8192 /* one header line (431 above) */
#define H1_FIELDS_MAX 100 /* header lines (431 above) */
#define H1_AUTHORIZATION_MAX 512
#define H1_CONTENT_TYPE_MAX 128
#define H1_IF_MATCH_MAX 128
#define H1_IDEMPOTENCY_KEY_MAX 256
#define H1_CONTENT_LENGTH_DIGITS 18

struct h1_request {
	char method[16];
	bool http10; /* HTTP/1.0 (else 1.1) */
	char path[H1_PATH_MAX]; /* percent-decoded */
	char *query; /* as sent, without '?'; malloc'd, "" when none */
	char authorization[H1_AUTHORIZATION_MAX]; /* "" when absent */
	char content_type[H1_CONTENT_TYPE_MAX];
	char if_match[H1_IF_MATCH_MAX];
	char idempotency_key[H1_IDEMPOTENCY_KEY_MAX];
	long long content_length; /* 0 when absent */
	bool has_content_length; /* a Content-Length field was sent */
	bool keep_alive; /* what the client asked for */
	bool expect_continue; /* Expect: 100-continue */
	size_t head_len; /* bytes of the head, final CRLF CRLF included */
};

struct h1_error {
	int status; /* 400, 414, 431, 417, 501, 505 */
	const char *slug; /* problem type: urn:fleet:problem:<slug> */
	char detail[160]; /* ours; never echoes the input */
};

enum h1_result {
	H1_INCOMPLETE = 0, /* no end of head yet, and within the limits */
	H1_OK, /* *req filled (free req->query with h1_request_clear) */
	H1_ERROR, /* *err filled; the connection must be closed after */
};

/*
 * Parses the head at the start of buf[0..len). On H1_OK req is filled and
 * req->head_len says where the body starts; on H1_ERROR err says why.
 * The caller keeps calling with more bytes while H1_INCOMPLETE.
 */
enum h1_result h1_parse(const char *buf, size_t len, struct h1_request *req,
			struct h1_error *err);

/* Frees req->query and wipes req (it holds the Authorization value). */
void h1_request_clear(struct h1_request *req);

/* Reason phrase of a status code ("Bad Request"), "Status" if unknown. */
const char *h1_reason(int status);

#endif
