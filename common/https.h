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

#endif
