/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small blocking HTTPS/1.1 client over OpenSSL 3: one request per
 * connection (`Connection: close`), server certificate verified against a
 * CA bundle with a host name or IP address check, optional client
 * certificate (mTLS). Used by fleetctl for the JSON API and by the agent
 * for enrollment and artifact downloads.
 *
 * Trust: the response is untrusted input. Every read is bounded (headers by
 * HTTPS_MAX_HEADER_BYTES, the body by the client's max_body), every length
 * is checked before use, and the whole exchange has one deadline.
 *
 * No global state: each struct https_client owns its SSL_CTX, so any number
 * of clients (one per agent) can live in one process. One client may be used
 * by one thread at a time. The library never changes signal dispositions:
 * a process that may write to a closed connection should ignore SIGPIPE.
 *
 * Return values: functions that can fail return 0 on success, or -1 with a
 * one-line message in err (NUL-terminated, truncated to errlen) such as
 * "connect 127.0.0.1:8443: Connection refused" or
 * "TLS: certificate verify failed: unable to get local issuer certificate".
 * Out-parameters are written only on success.
 */
#ifndef FLEET_COMMON_HTTPS_H
#define FLEET_COMMON_HTTPS_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPS_DEFAULT_MAX_BODY (8u * 1024u * 1024u) /* 8 MiB */
#define HTTPS_DEFAULT_TIMEOUT_MS 30000
#define HTTPS_MAX_HEADER_BYTES (64u * 1024u) /* status line + headers */
#define HTTPS_MAX_HEADERS 100
#define HTTPS_ERR_MAX 512 /* a good size for err buffers */

/* ---- URLs ------------------------------------------------------------- */

struct https_url {
	char host[256]; /* name or address, IPv6 without brackets */
	char port[6]; /* decimal, "443" when the URL has none */
	char prefix[512]; /* "" or "/prefix" without a trailing slash */
	bool host_is_ip; /* IPv4 or IPv6 literal: check the IP SAN */
	bool host_is_ipv6;
};

/*
 * Parses a base URL "https://host[:port][/prefix]" where host is a DNS
 * name, an IPv4 address or a bracketed IPv6 address. No user info, query
 * or fragment. Returns 0, or -1 with a message.
 */
int https_url_parse(const char *url, struct https_url *out, char *err,
		    size_t errlen);

/* ---- clients ---------------------------------------------------------- */

struct https_options {
	const char *ca_file; /* PEM bundle to trust; NULL: system store */
	const char *cert_file; /* client certificate chain PEM, or NULL */
	const char *key_file; /* its private key PEM (with cert_file) */
	int timeout_ms; /* whole exchange; 0: default */
	size_t max_body; /* response body limit; 0: default */
};

struct https_client;

/*
 * Makes a client: TLS 1.2 or newer, peer verification on, the CA bundle
 * and the client certificate loaded now (so a bad path is reported here).
 * opts is copied. The caller owns the result (https_client_free).
 */
struct https_client *https_client_new(const struct https_options *opts,
				      char *err, size_t errlen);

/* Frees the client; accepts NULL. */
void https_client_free(struct https_client *c);

/* ---- requests and responses ------------------------------------------- */

struct https_header {
	const char *name;
	const char *value;
};

struct https_request {
	const char *method; /* "GET", "POST", ... */
	const char *path; /* "/api/v1/devices?limit=10", after the prefix */
	const struct https_header *headers; /* extra headers, may be NULL */
	size_t n_headers;
	const void *body; /* may be NULL */
	size_t body_len;
};

struct https_response {
	int status; /* e.g. 200 */
	char reason[64]; /* reason phrase, may be "" */
	size_t n_headers; /* entries in headers */
	struct https_header headers[HTTPS_MAX_HEADERS]; /* point into hdrbuf */
	const char *content_type; /* borrowed from headers, or NULL */
	const char *etag; /* borrowed from headers, or NULL */
	const char *location; /* borrowed from headers, or NULL */
	char *hdrbuf; /* owned: header names and values */
	char *body; /* owned, NUL-terminated after body_len */
	size_t body_len;
};

/*
 * Connects to url (host, port), sends req with Host, Content-Length (when
 * there is a body or the method is POST, PUT or PATCH) and
 * `Connection: close`, and reads the whole response. Header names and
 * values must not contain CR or LF. Any HTTP status is a success here: the
 * caller reads resp->status. On success the caller owns *resp and releases
 * it with https_response_free.
 */
int https_request(struct https_client *c, const struct https_url *url,
		  const struct https_request *req, struct https_response *resp,
		  char *err, size_t errlen);

/* Looks a header up by name (case-insensitive); borrowed, or NULL. */
const char *https_response_header(const struct https_response *r,
				  const char *name);

/* Releases what a response owns and zeroes it; accepts NULL. */
void https_response_free(struct https_response *r);

/*
 * The response parser, exported for tests and other transports. data holds
 * len bytes received so far; eof says the peer has closed. head is true for
 * a response to HEAD (no body). Returns 1 when the response is complete
 * (*out filled, caller frees it), 0 when more bytes are needed (only when
 * !eof), -1 on a malformed, truncated or too large response (a message in
 * err). Interim 1xx responses are skipped.
 */
int https_response_parse(const char *data, size_t len, bool eof, bool head,
			 size_t max_body, struct https_response *out, char *err,
			 size_t errlen);

/* ---- streamed exchanges ----------------------------------------------- */

/*
 * One exchange whose request body is read from a callback and whose
 * response body is handed to a callback in pieces, for files larger than
 * memory: fleetctl's artifact upload and the agent's artifact download.
 * Memory stays bounded (a 64 KiB buffer each way plus the header block)
 * whatever the sizes.
 */

/* Fills buf with up to cap bytes of the request body: returns the count
 * (> 0), 0 at the end of the data, -1 on an error (the exchange stops with
 * HTTPS_STREAM_ABORTED; put the reason in your own state). */
typedef long (*https_read_fn)(void *arg, void *buf, size_t cap);

/* The status line and headers arrived (final response, 1xx skipped),
 * before any body byte: head->body is NULL. Return 0 to go on, non-zero to
 * stop (HTTPS_STREAM_ABORTED), e.g. on a status you do not want the body
 * of. head is valid only during the call. */
typedef int (*https_head_fn)(void *arg, const struct https_response *head);

/* len (> 0) bytes of the decoded body, in order. Return 0 to go on,
 * non-zero to stop (HTTPS_STREAM_ABORTED). data lives during the call. */
typedef int (*https_sink_fn)(void *arg, const void *data, size_t len);

/* Request body bytes written so far of total; called after each write
 * and once more when the whole body is written. */
typedef void (*https_progress_fn)(void *arg, unsigned long long sent,
				  unsigned long long total);

struct https_stream {
	/* Request body: body_len bytes from read (or req->body when read is
	 * NULL). Content-Length is always sent for POST, PUT, PATCH or a
	 * body; fewer bytes from read than body_len is an error. */
	https_read_fn read;
	unsigned long long body_len;
	https_progress_fn progress; /* may be NULL */
	/* Response: on_head may be NULL. With on_body NULL the body is
	 * collected into resp->body (like https_request), up to max_body. */
	https_head_fn on_head;
	https_sink_fn on_body;
	void *arg; /* passed to every callback */
	/* At most max_body body bytes are delivered (0: the client's
	 * max_body). A Content-Length above it stops before the body; a
	 * chunked or close-delimited body that goes past it stops right at
	 * max_body (what came before was delivered). Both are
	 * HTTPS_STREAM_TOO_LARGE: the rest is never read. */
	unsigned long long max_body;
	int total_ms; /* deadline of the whole exchange; 0: none */
	int idle_ms; /* longest wait for any byte to move; 0: the client's
		      * timeout_ms */
};

/* Outcome of https_stream. */
enum https_stream_result {
	HTTPS_STREAM_OK = 0, /* the whole response arrived (any status) */
	HTTPS_STREAM_ERROR, /* connect, TLS, I/O or a malformed response */
	HTTPS_STREAM_TIMEOUT, /* total_ms passed */
	HTTPS_STREAM_IDLE, /* nothing moved for idle_ms */
	HTTPS_STREAM_TOO_LARGE, /* the body is longer than max_body */
	HTTPS_STREAM_TRUNCATED, /* the peer closed inside the body */
	HTTPS_STREAM_ABORTED, /* a callback said stop, or read failed */
};

/* "ok", "error", "timeout", "idle", "too-large", "truncated", "aborted". */
const char *https_stream_result_name(enum https_stream_result r);

/*
 * Connects, sends req (its body from s->read, or req->body), and reads the
 * response, handing the body to s->on_body as it arrives. When the server
 * answers before the request body is all sent (an early 413 or 401), the
 * upload stops and that response is read. *resp is always set: zeroed,
 * then the status and headers once they arrived (also on a failure after
 * that point, e.g. TRUNCATED: resp->status != 0), and the collected body
 * when on_body is NULL. The caller always releases it with
 * https_response_free. *body_bytes (may be NULL) gets the body bytes
 * delivered, also on failure, so a download can resume with Range.
 * Returns HTTPS_STREAM_OK, or another result with a message in err.
 */
enum https_stream_result
https_stream(struct https_client *c, const struct https_url *url,
	     const struct https_request *req, const struct https_stream *s,
	     struct https_response *resp, unsigned long long *body_bytes,
	     char *err, size_t errlen);

/*
 * The decoder of https_stream without a connection, exported for tests
 * and fuzzing: the response arrives as n pieces (pieces[i], lens[i]),
 * then the peer closes. Callbacks, limits, results, *resp and
 * *body_bytes as for https_stream (no deadlines: there is no waiting).
 */
enum https_stream_result
https_stream_decode(const struct https_stream *s, const char *const *pieces,
		    const size_t *lens, size_t n, bool head,
		    struct https_response *resp, unsigned long long *body_bytes,
		    char *err, size_t errlen);

/*
 * Splits an absolute URL "https://host[:port]/path[?query]" (such as an
 * artifact mirror's) into a base (prefix "") and the request path
 * ("/path?query", "/" when there is none) for https_request/https_stream.
 * Returns 0, or -1 with a message.
 */
int https_url_split(const char *url, struct https_url *base, char *path,
		    size_t pathlen, char *err, size_t errlen);

#endif
