/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blocking HTTPS/1.1 client; see https.h. Runs in fleetctl and in the agent
 * (enrollment, artifact downloads). The socket is non-blocking underneath so
 * that connect, the TLS handshake, the write and every read share one
 * deadline; the caller sees a blocking call.
 *
 * Everything the server sends is untrusted: the header block is limited to
 * HTTPS_MAX_HEADER_BYTES, the body to max_body (checked against
 * Content-Length and chunk sizes before they are used), and a response that
 * ends early is an error, never a short body.
 */
#include "https.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "clock.h"

struct https_client {
	SSL_CTX *ctx;
	int timeout_ms;
	size_t max_body;
};

/* ---- URLs ------------------------------------------------------------- */

static bool
is_ipv4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static bool
is_ipv6(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, s, &a) == 1;
}

static bool
host_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
			return false;
	}
	return true;
}

int
https_url_parse(const char *url, struct https_url *out, char *err,
		size_t errlen)
{
	struct https_url u;
	const char *p, *host, *hend, *port = NULL, *pend, *path;
	size_t hlen, plen;

	memset(&u, 0, sizeof(u));
	if (url == NULL || strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "URL '%s': must start with https://",
			 url != NULL ? url : "");
		return -1;
	}
	p = url + 8;
	path = p + strcspn(p, "/?#");
	if (strpbrk(p, "?#") != NULL) {
		snprintf(err, errlen,
			 "URL '%s': a query or fragment is not allowed", url);
		return -1;
	}
	if (memchr(p, '@', (size_t)(path - p)) != NULL) {
		snprintf(err, errlen, "URL '%s': user info is not allowed",
			 url);
		return -1;
	}
	if (*p == '[') {
		host = p + 1;
		hend = memchr(host, ']', (size_t)(path - host));
		if (hend == NULL) {
			snprintf(err, errlen, "URL '%s': missing ']'", url);
			return -1;
		}
		pend = hend + 1;
		if (pend < path && *pend != ':') {
			snprintf(err, errlen,
				 "URL '%s': unexpected text after ']'", url);
			return -1;
		}
		u.host_is_ipv6 = true;
	} else {
		host = p;
		hend = memchr(host, ':', (size_t)(path - host));
		if (hend == NULL)
			hend = path;
		pend = hend;
	}
	if (pend < path && *pend == ':')
		port = pend + 1;
	hlen = (size_t)(hend - host);
	if (hlen == 0 || hlen >= sizeof(u.host)) {
		snprintf(err, errlen, "URL '%s': missing or too long host",
			 url);
		return -1;
	}
	memcpy(u.host, host, hlen);
	u.host[hlen] = '\0';
	if (u.host_is_ipv6) {
		if (!is_ipv6(u.host)) {
			snprintf(err, errlen,
				 "URL '%s': '%s' is not an IPv6 address", url,
				 u.host);
			return -1;
		}
		u.host_is_ip = true;
	} else if (is_ipv4(u.host)) {
		u.host_is_ip = true;
	} else if (!host_name_valid(u.host, hlen)) {
		snprintf(err, errlen, "URL '%s': invalid host name '%s'", url,
			 u.host);
		return -1;
	}
	if (port != NULL) {
		unsigned long v = 0;

		plen = (size_t)(path - port);
		if (plen == 0 || plen > 5) {
			snprintf(err, errlen, "URL '%s': invalid port", url);
			return -1;
		}
		for (size_t i = 0; i < plen; i++) {
			if (!isdigit((unsigned char)port[i])) {
				snprintf(err, errlen, "URL '%s': invalid port",
					 url);
				return -1;
			}
			v = v * 10 + (unsigned long)(port[i] - '0');
		}
		if (v == 0 || v > 65535) {
			snprintf(err, errlen,
				 "URL '%s': port out of range 1..65535", url);
			return -1;
		}
		snprintf(u.port, sizeof(u.port), "%lu", v);
	} else {
		snprintf(u.port, sizeof(u.port), "443");
	}
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	if (plen >= sizeof(u.prefix)) {
		snprintf(err, errlen, "URL '%s': path too long", url);
		return -1;
	}
	for (size_t i = 0; i < plen; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch <= ' ' || ch >= 0x7f) {
			snprintf(err, errlen,
				 "URL '%s': invalid character in path", url);
			return -1;
		}
	}
	memcpy(u.prefix, path, plen);
	u.prefix[plen] = '\0';
	*out = u;
	return 0;
}

/* "host:port" with brackets around IPv6 addresses, for messages. */
static void
url_authority(const struct https_url *u, char *out, size_t outlen)
{
	if (u->host_is_ipv6)
		snprintf(out, outlen, "[%s]:%s", u->host, u->port);
	else
		snprintf(out, outlen, "%s:%s", u->host, u->port);
}

/* ---- OpenSSL errors --------------------------------------------------- */

/* The first queued OpenSSL error as text, or "unknown error"; clears. */
static void
ossl_reason(char *out, size_t outlen)
{
	unsigned long code = ERR_get_error();
	const char *reason;

	if (code == 0) {
		snprintf(out, outlen, "unknown error");
		return;
	}
	reason = ERR_reason_error_string(code);
	if (reason != NULL)
		snprintf(out, outlen, "%s", reason);
	else
		ERR_error_string_n(code, out, outlen);
	ERR_clear_error();
}

/* ---- clients ---------------------------------------------------------- */

struct https_client *
https_client_new(const struct https_options *opts, char *err, size_t errlen)
{
	struct https_client *c = NULL;
	char why[256];

	ERR_clear_error();
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms
					     : HTTPS_DEFAULT_TIMEOUT_MS;
	c->max_body =
		opts->max_body > 0 ? opts->max_body : HTTPS_DEFAULT_MAX_BODY;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL) {
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "TLS: cannot create context: %s", why);
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "TLS: cannot require TLS 1.2: %s", why);
		goto fail;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	/* Framing (Content-Length, chunked) detects truncation; a missing
	 * close_notify is common and not an error by itself. */
	SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (opts->ca_file != NULL) {
		if (access(opts->ca_file, R_OK) != 0) {
			snprintf(err, errlen, "CA bundle %s: %s", opts->ca_file,
				 strerror(errno));
			goto fail;
		}
		if (SSL_CTX_load_verify_file(c->ctx, opts->ca_file) != 1) {
			ossl_reason(why, sizeof(why));
			snprintf(err, errlen,
				 "CA bundle %s: no usable certificates: %s",
				 opts->ca_file, why);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen,
			 "TLS: cannot load the system CA store: %s", why);
		goto fail;
	}
	if ((opts->cert_file == NULL) != (opts->key_file == NULL)) {
		snprintf(err, errlen,
			 "a client certificate needs both a certificate and "
			 "a key file");
		goto fail;
	}
	if (opts->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(c->ctx,
						       opts->cert_file) != 1) {
			ossl_reason(why, sizeof(why));
			snprintf(err, errlen, "client certificate %s: %s",
				 opts->cert_file, why);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(c->ctx, opts->key_file,
						SSL_FILETYPE_PEM) != 1) {
			ossl_reason(why, sizeof(why));
			snprintf(err, errlen, "client key %s: %s",
				 opts->key_file, why);
			goto fail;
		}
		if (SSL_CTX_check_private_key(c->ctx) != 1) {
			ossl_reason(why, sizeof(why));
			snprintf(err, errlen,
				 "client key %s does not match certificate "
				 "%s: %s",
				 opts->key_file, opts->cert_file, why);
			goto fail;
		}
	}
	return c;
fail:
	https_client_free(c);
	return NULL;
}

void
https_client_free(struct https_client *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

/* ---- response parsing ------------------------------------------------- */

void
https_response_free(struct https_response *r)
{
	if (r == NULL)
		return;
	/* A body may carry a new admin or enrollment token: wipe it. */
	if (r->body != NULL)
		OPENSSL_cleanse(r->body, r->body_len);
	free(r->hdrbuf);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

const char *
https_response_header(const struct https_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

/*
 * Finds the end of the header block starting at data: the offset just past
 * the empty line, or 0 when there is none yet. Lines end in LF or CRLF.
 */
static size_t
find_header_end(const char *data, size_t len)
{
	size_t line = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (i == line || (i == line + 1 && data[line] == '\r'))
			return i + 1;
		line = i + 1;
	}
	return 0;
}

static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static bool
is_token_char(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Parses the status line and headers of block[0..len) into r. */
static int
parse_head(const char *block, size_t len, struct https_response *r, char *err,
	   size_t errlen)
{
	char *p, *line, *next;
	long status;

	/* A NUL would end the C strings below early (found by fuzzing). */
	if (memchr(block, '\0', len) != NULL) {
		snprintf(err, errlen,
			 "malformed response: NUL byte in headers");
		return -1;
	}
	r->hdrbuf = malloc(len + 1);
	if (r->hdrbuf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(r->hdrbuf, block, len);
	r->hdrbuf[len] = '\0';
	p = r->hdrbuf;
	next = strchr(p, '\n');
	*next = '\0';
	line = trim(p);
	p = next + 1;
	if (strncmp(line, "HTTP/1.", 7) != 0 ||
	    (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) ||
	    !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) ||
	    (line[12] != ' ' && line[12] != '\0')) {
		snprintf(err, errlen, "malformed HTTP status line");
		return -1;
	}
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
		 (line[11] - '0');
	if (status < 100) {
		snprintf(err, errlen, "malformed HTTP status code");
		return -1;
	}
	r->status = (int)status;
	snprintf(r->reason, sizeof(r->reason), "%s",
		 line[12] == ' ' ? trim(line + 13) : "");
	r->n_headers = 0;
	while (*p != '\0') {
		char *colon, *name;

		next = strchr(p, '\n');
		*next = '\0';
		line = p;
		p = next + 1;
		if (line[0] == '\0' || strcmp(line, "\r") == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			snprintf(err, errlen,
				 "malformed HTTP header (line folding)");
			return -1;
		}
		colon = strchr(line, ':');
		if (colon == NULL || colon == line) {
			snprintf(err, errlen, "malformed HTTP header line");
			return -1;
		}
		*colon = '\0';
		name = line;
		for (char *q = name; *q != '\0'; q++) {
			if (!is_token_char((unsigned char)*q)) {
				snprintf(err, errlen,
					 "malformed HTTP header name");
				return -1;
			}
		}
		if (r->n_headers == HTTPS_MAX_HEADERS) {
			snprintf(err, errlen,
				 "too many HTTP headers (limit %d)",
				 HTTPS_MAX_HEADERS);
			return -1;
		}
		r->headers[r->n_headers].name = name;
		r->headers[r->n_headers].value = trim(colon + 1);
		r->n_headers++;
	}
	r->content_type = https_response_header(r, "Content-Type");
	r->etag = https_response_header(r, "ETag");
	r->location = https_response_header(r, "Location");
	return 0;
}

/* Strict decimal without sign or spaces; -1 if not. */
static int
parse_size(const char *s, size_t *out)
{
	size_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Body framing chosen from the headers (RFC 9112 §6.3). */
enum framing { FRAME_NONE, FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE };

static int
choose_framing(const struct https_response *r, bool head, enum framing *f,
	       size_t *length, char *err, size_t errlen)
{
	const char *te = https_response_header(r, "Transfer-Encoding");
	bool have_length = false;

	if (head || r->status == 204 || r->status == 304) {
		*f = FRAME_NONE;
		return 0;
	}
	if (te != NULL) {
		size_t n = strlen(te);

		/* chunked must be the last coding; anything else runs
		 * until the connection closes. */
		*f = n >= 7 && strcasecmp(te + n - 7, "chunked") == 0
			     ? FRAME_CHUNKED
			     : FRAME_CLOSE;
		return 0;
	}
	for (size_t i = 0; i < r->n_headers; i++) {
		size_t v;

		if (strcasecmp(r->headers[i].name, "Content-Length") != 0)
			continue;
		if (parse_size(r->headers[i].value, &v) != 0 ||
		    (have_length && v != *length)) {
			snprintf(err, errlen, "invalid Content-Length");
			return -1;
		}
		*length = v;
		have_length = true;
	}
	*f = have_length ? FRAME_LENGTH : FRAME_CLOSE;
	return 0;
}

/* Finds the next LF in p[0..n): its offset, or -1. */
static long
find_lf(const char *p, size_t n)
{
	const char *lf = memchr(p, '\n', n);

	return lf != NULL ? (long)(lf - p) : -1;
}

/*
 * Walks a chunked body in p[0..n). With out == NULL only checks it and
 * counts the decoded size; otherwise copies the data to out. Returns 1
 * when complete (*total set), 0 when more bytes are needed, -1 on error.
 */
static int
chunked_walk(const char *p, size_t n, size_t max_body, char *out, size_t *total,
	     char *err, size_t errlen)
{
	size_t pos = 0, sum = 0;

	for (;;) {
		long lf = find_lf(p + pos, n - pos);
		size_t size = 0, digits = 0;
		const char *q;

		if (lf < 0) {
			if (n - pos > 1024) {
				snprintf(err, errlen,
					 "chunk size line too long");
				return -1;
			}
			return 0;
		}
		for (q = p + pos; isxdigit((unsigned char)*q); q++) {
			int d = isdigit((unsigned char)*q)
					? *q - '0'
					: tolower((unsigned char)*q) - 'a' + 10;

			if (size > (SIZE_MAX >> 4)) {
				snprintf(err, errlen, "chunk size too large");
				return -1;
			}
			size = (size << 4) | (size_t)d;
			digits++;
		}
		if (digits == 0 || (*q != ';' && *q != '\r' && *q != '\n' &&
				    *q != ' ' && *q != '\t')) {
			snprintf(err, errlen, "malformed chunk size");
			return -1;
		}
		pos += (size_t)lf + 1;
		if (size == 0) {
			/* Trailer section: header lines up to an empty one. */
			for (;;) {
				lf = find_lf(p + pos, n - pos);
				if (lf < 0) {
					if (n - pos > HTTPS_MAX_HEADER_BYTES) {
						snprintf(err, errlen,
							 "chunked trailer too "
							 "large");
						return -1;
					}
					return 0;
				}
				if (lf == 0 || (lf == 1 && p[pos] == '\r')) {
					*total = sum;
					return 1;
				}
				pos += (size_t)lf + 1;
			}
		}
		if (size > max_body - sum) {
			snprintf(err, errlen,
				 "response body too large (limit %zu bytes)",
				 max_body);
			return -1;
		}
		if (n - pos < size)
			return 0;
		if (out != NULL)
			memcpy(out + sum, p + pos, size);
		sum += size;
		pos += size;
		if (n - pos < 1 || (p[pos] == '\r' && n - pos < 2))
			return 0;
		if (p[pos] == '\n') {
			pos += 1;
		} else if (p[pos] == '\r' && p[pos + 1] == '\n') {
			pos += 2;
		} else {
			snprintf(err, errlen,
				 "malformed chunk: no CRLF after "
				 "chunk data");
			return -1;
		}
	}
}

static int
set_body(struct https_response *r, const char *data, size_t len, char *err,
	 size_t errlen)
{
	r->body = malloc(len + 1);
	if (r->body == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (len > 0)
		memcpy(r->body, data, len);
	r->body[len] = '\0';
	r->body_len = len;
	return 0;
}

int
https_response_parse(const char *data, size_t len, bool eof, bool head,
		     size_t max_body, struct https_response *out, char *err,
		     size_t errlen)
{
	struct https_response r;
	size_t pos = 0, hend, have, length = 0, total = 0;
	enum framing f;
	int rc;

	memset(&r, 0, sizeof(r));
	for (;;) {
		size_t window = len - pos;

		if (window > HTTPS_MAX_HEADER_BYTES)
			window = HTTPS_MAX_HEADER_BYTES;
		hend = find_header_end(data + pos, window);
		if (hend == 0) {
			if (len - pos >= HTTPS_MAX_HEADER_BYTES) {
				snprintf(err, errlen,
					 "response headers too large (limit "
					 "%u bytes)",
					 HTTPS_MAX_HEADER_BYTES);
				return -1;
			}
			if (!eof)
				return 0;
			if (len == 0)
				snprintf(err, errlen,
					 "server closed the connection "
					 "without a response");
			else
				snprintf(err, errlen,
					 "truncated response: connection "
					 "closed inside the headers");
			return -1;
		}
		if (parse_head(data + pos, hend, &r, err, errlen) != 0)
			goto fail;
		pos += hend;
		/* Skip interim responses (100 Continue, 103 Early Hints). */
		if (r.status >= 200 || r.status == 101)
			break;
		https_response_free(&r);
	}
	if (choose_framing(&r, head, &f, &length, err, errlen) != 0)
		goto fail;
	have = len - pos;
	switch (f) {
	case FRAME_NONE:
		if (set_body(&r, "", 0, err, errlen) != 0)
			goto fail;
		break;
	case FRAME_LENGTH:
		if (length > max_body) {
			snprintf(err, errlen,
				 "response body too large (%zu bytes, limit "
				 "%zu)",
				 length, max_body);
			goto fail;
		}
		if (have < length) {
			if (!eof)
				goto more;
			snprintf(err, errlen,
				 "truncated response: got %zu of %zu body "
				 "bytes",
				 have, length);
			goto fail;
		}
		if (set_body(&r, data + pos, length, err, errlen) != 0)
			goto fail;
		break;
	case FRAME_CHUNKED:
		rc = chunked_walk(data + pos, have, max_body, NULL, &total, err,
				  errlen);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			if (!eof)
				goto more;
			snprintf(err, errlen,
				 "truncated response: connection closed "
				 "inside the chunked body");
			goto fail;
		}
		r.body = malloc(total + 1);
		if (r.body == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		(void)chunked_walk(data + pos, have, max_body, r.body, &total,
				   err, errlen);
		r.body[total] = '\0';
		r.body_len = total;
		break;
	case FRAME_CLOSE:
		if (have > max_body) {
			snprintf(err, errlen,
				 "response body too large (limit %zu bytes)",
				 max_body);
			goto fail;
		}
		if (!eof)
			goto more;
		if (set_body(&r, data + pos, have, err, errlen) != 0)
			goto fail;
		break;
	}
	*out = r;
	return 1;
more:
	https_response_free(&r);
	return 0;
fail:
	https_response_free(&r);
	return -1;
}

/* ---- the exchange ----------------------------------------------------- */

/* Milliseconds left until deadline, at least 0. */
static int
remaining_ms(uint64_t deadline)
{
	uint64_t now = clock_mono_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Waits until fd is ready for events or the deadline: 0, or -1 (timeout
 * with errno ETIMEDOUT, or a poll error). */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int ms = remaining_ms(deadline);
		int n;

		if (ms == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, ms);
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int
tcp_connect(const struct https_url *u, uint64_t deadline, char *err,
	    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char auth[300];
	int fd = -1, rc, saved = 0;

	url_authority(u, auth, sizeof(auth));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (u->host_is_ip ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "resolve %s: %s", u->host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t sl = sizeof(saved);

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		if (wait_fd(fd, POLLOUT, deadline) != 0) {
			saved = errno;
			goto next;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &sl) != 0)
			saved = errno;
		if (saved == 0)
			break;
	next:
		close(fd);
		fd = -1;
		if (saved == ETIMEDOUT)
			break; /* the deadline is spent */
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (saved == ETIMEDOUT)
			snprintf(err, errlen, "connect %s: timed out", auth);
		else
			snprintf(err, errlen, "connect %s: %s", auth,
				 strerror(saved != 0 ? saved : ECONNREFUSED));
	}
	return fd;
}

/*
 * After an SSL call returned ret: waits when OpenSSL wants to read or
 * write (returns 0: call again), else describes the failure (returns -1).
 */
static int
ssl_retry(SSL *ssl, int fd, int ret, uint64_t deadline, const char *what,
	  const char *auth, char *err, size_t errlen)
{
	int e = SSL_get_error(ssl, ret);
	char why[256];

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		if (wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    deadline) == 0)
			return 0;
		if (errno == ETIMEDOUT)
			snprintf(err, errlen, "%s %s: timed out", what, auth);
		else
			snprintf(err, errlen, "%s %s: %s", what, auth,
				 strerror(errno));
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(err, errlen, "%s %s: connection closed by the server",
			 what, auth);
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(err, errlen, "%s %s: %s", what, auth,
				 errno != 0
					 ? strerror(errno)
					 : "connection closed by the server");
			return -1;
		}
		/* fall through */
	default:
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "%s %s: TLS: %s", what, auth, why);
		return -1;
	}
}

static int
tls_handshake(SSL *ssl, int fd, uint64_t deadline, const char *auth, char *err,
	      size_t errlen)
{
	for (;;) {
		int ret;

		errno = 0;
		ret = SSL_connect(ssl);
		if (ret == 1)
			return 0;
		if (SSL_get_verify_result(ssl) != X509_V_OK) {
			long v = SSL_get_verify_result(ssl);

			ERR_clear_error();
			snprintf(err, errlen,
				 "TLS: certificate verify failed: %s (server "
				 "%s)",
				 X509_verify_cert_error_string(v), auth);
			return -1;
		}
		if (ssl_retry(ssl, fd, ret, deadline, "TLS handshake with",
			      auth, err, errlen) != 0)
			return -1;
	}
}

/*
 * Connects to url and completes the TLS handshake (server name or address
 * checked) before deadline: 0 with *fdp and *sslp set (the caller frees
 * both), or -1 with a message.
 */
static int
tls_open(struct https_client *c, const struct https_url *url, uint64_t deadline,
	 int *fdp, SSL **sslp, char *err, size_t errlen)
{
	char auth[300];
	SSL *ssl = NULL;
	int fd;

	url_authority(url, auth, sizeof(auth));
	fd = tcp_connect(url, deadline, err, errlen);
	if (fd < 0)
		return -1;
	ssl = SSL_new(c->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		char why[256];

		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "TLS: %s", why);
		goto out;
	}
	if (url->host_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						  url->host) != 1) {
			snprintf(err, errlen, "TLS: cannot check address %s",
				 url->host);
			goto out;
		}
	} else {
		/* The SNI macro casts its argument to void *. */
		char sni[sizeof(url->host)];

		memcpy(sni, url->host, sizeof(sni));
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, url->host) != 1 ||
		    SSL_set_tlsext_host_name(ssl, sni) != 1) {
			snprintf(err, errlen, "TLS: cannot check host %s",
				 url->host);
			goto out;
		}
	}
	if (tls_handshake(ssl, fd, deadline, auth, err, errlen) != 0)
		goto out;
	*fdp = fd;
	*sslp = ssl;
	return 0;
out:
	SSL_free(ssl);
	close(fd);
	return -1;
}

static bool
has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/* The request head, and req->body when there is one, ready to write;
 * Content-Length says body_len. */
static int
build_request(const struct https_url *u, const struct https_request *req,
	      unsigned long long body_len, struct buf *out, char *err,
	      size_t errlen)
{
	bool want_length = req->body != NULL || body_len > 0 ||
			   strcmp(req->method, "POST") == 0 ||
			   strcmp(req->method, "PUT") == 0 ||
			   strcmp(req->method, "PATCH") == 0;
	int rc = 0;

	if (req->method[0] == '\0' || strpbrk(req->method, " \r\n") != NULL ||
	    req->path[0] != '/' || strpbrk(req->path, " \r\n\t") != NULL) {
		snprintf(err, errlen, "invalid request method or path");
		return -1;
	}
	rc |= buf_printf(out, "%s %s%s HTTP/1.1\r\n", req->method, u->prefix,
			 req->path);
	if (u->host_is_ipv6)
		rc |= buf_printf(out, "Host: [%s]", u->host);
	else
		rc |= buf_printf(out, "Host: %s", u->host);
	if (strcmp(u->port, "443") != 0)
		rc |= buf_printf(out, ":%s", u->port);
	rc |= buf_printf(out, "\r\n");
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct https_header *h = &req->headers[i];

		if (h->name == NULL || h->value == NULL || h->name[0] == '\0' ||
		    strpbrk(h->name, ": \t") != NULL || has_crlf(h->name) ||
		    has_crlf(h->value)) {
			snprintf(err, errlen, "invalid request header");
			return -1;
		}
		rc |= buf_printf(out, "%s: %s\r\n", h->name, h->value);
	}
	if (want_length)
		rc |= buf_printf(out, "Content-Length: %llu\r\n", body_len);
	rc |= buf_printf(out, "Connection: close\r\n\r\n");
	if (req->body != NULL && req->body_len > 0)
		rc |= buf_append(out, req->body, req->body_len);
	if (rc != 0) {
		snprintf(err, errlen, "request too large");
		return -1;
	}
	return 0;
}

int
https_request(struct https_client *c, const struct https_url *url,
	      const struct https_request *req, struct https_response *resp,
	      char *err, size_t errlen)
{
	uint64_t deadline = clock_mono_ms() + (uint64_t)c->timeout_ms;
	bool head = strcmp(req->method, "HEAD") == 0;
	struct buf out, in;
	char auth[300], werr[HTTPS_ERR_MAX] = "";
	size_t off = 0;
	SSL *ssl = NULL;
	int fd = -1, rc = -1, p;

	buf_init(&out, HTTPS_MAX_HEADER_BYTES + req->body_len);
	/* Room for the headers, the body and generous chunk framing. */
	buf_init(&in,
		 HTTPS_MAX_HEADER_BYTES + c->max_body + c->max_body / 2 + 4096);
	url_authority(url, auth, sizeof(auth));
	ERR_clear_error();
	if (build_request(url, req, req->body_len, &out, err, errlen) != 0)
		goto out;
	if (tls_open(c, url, deadline, &fd, &ssl, err, errlen) != 0)
		goto out;
	while (off < out.len) {
		int n;

		errno = 0;
		n = SSL_write(ssl, out.data + off,
			      out.len - off > INT_MAX ? INT_MAX
						      : (int)(out.len - off));
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (ssl_retry(ssl, fd, n, deadline, "write to", auth, werr,
			      sizeof(werr)) != 0)
			break; /* the server may have answered (413): read */
	}
	for (;;) {
		char chunk[16384];
		int n;

		errno = 0;
		n = SSL_read(ssl, chunk, sizeof(chunk));
		if (n > 0) {
			if (buf_append(&in, chunk, (size_t)n) != 0) {
				snprintf(err, errlen,
					 "response too large (limit %zu "
					 "bytes)",
					 c->max_body);
				goto out;
			}
			p = https_response_parse(in.data, in.len, false, head,
						 c->max_body, resp, err,
						 errlen);
			if (p < 0)
				goto out;
			if (p > 0)
				break;
			continue;
		}
		if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN) {
			p = https_response_parse(
				in.data != NULL ? in.data : "", in.len, true,
				head, c->max_body, resp, err, errlen);
			if (p < 0 && werr[0] != '\0')
				snprintf(err, errlen, "%s", werr);
			if (p < 0)
				goto out;
			break;
		}
		if (ssl_retry(ssl, fd, n, deadline, "read from", auth, err,
			      errlen) != 0) {
			if (werr[0] != '\0')
				snprintf(err, errlen, "%s", werr);
			goto out;
		}
	}
	rc = 0;
out:
	/* No close_notify: the exchange is over, and writing to a socket
	 * the server has closed would raise SIGPIPE in the caller. */
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	/* The request may carry a bearer or enrollment token. */
	if (out.data != NULL)
		OPENSSL_cleanse(out.data, out.len);
	buf_free(&out);
	buf_free(&in);
	return rc;
}

/* ---- streamed exchanges ----------------------------------------------- */

const char *
https_stream_result_name(enum https_stream_result r)
{
	switch (r) {
	case HTTPS_STREAM_OK:
		return "ok";
	case HTTPS_STREAM_ERROR:
		return "error";
	case HTTPS_STREAM_TIMEOUT:
		return "timeout";
	case HTTPS_STREAM_IDLE:
		return "idle";
	case HTTPS_STREAM_TOO_LARGE:
		return "too-large";
	case HTTPS_STREAM_TRUNCATED:
		return "truncated";
	case HTTPS_STREAM_ABORTED:
		return "aborted";
	}
	return "error";
}

#define STREAM_IO (64u * 1024u)
#define CHUNK_LINE_MAX 1024u

/* Incremental chunked decoder states (RFC 9112 §7.1). */
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct stream_run {
	struct https_client *c;
	const struct https_stream *s;
	struct https_response *resp;
	char *err;
	size_t errlen;
	char auth[300];
	int fd;
	SSL *ssl;
	uint64_t total_deadline; /* 0: none */
	uint64_t idle_ms;
	uint64_t last_move;
	unsigned long long max_body;
	/* response */
	bool head_method;
	bool have_head;
	struct buf hdr; /* bytes before the end of the header block */
	enum framing framing;
	unsigned long long length; /* FRAME_LENGTH: the body's size */
	unsigned long long delivered;
	struct buf collect; /* the body when on_body is NULL */
	enum chunk_state ch;
	unsigned long long ch_left; /* CH_DATA: bytes left in the chunk */
	char line[CHUNK_LINE_MAX + 1]; /* chunk size or trailer line */
	size_t line_len;
	bool done;
};

/* Waits for events on the socket within both deadlines: HTTPS_STREAM_OK
 * with the returned events in *revents, or TIMEOUT / IDLE / ERROR. */
static enum https_stream_result
stream_wait(struct stream_run *r, short events, short *revents)
{
	for (;;) {
		uint64_t now = clock_mono_ms();
		uint64_t until = r->last_move + r->idle_ms;
		struct pollfd pfd = {.fd = r->fd, .events = events};
		int n;

		if (r->total_deadline != 0 && r->total_deadline < until)
			until = r->total_deadline;
		if (now >= until) {
			if (r->total_deadline != 0 &&
			    now >= r->total_deadline) {
				snprintf(r->err, r->errlen,
					 "%s: deadline of %d ms passed",
					 r->auth, r->s->total_ms);
				return HTTPS_STREAM_TIMEOUT;
			}
			snprintf(r->err, r->errlen,
				 "%s: nothing received or sent for %llu ms",
				 r->auth, (unsigned long long)r->idle_ms);
			return HTTPS_STREAM_IDLE;
		}
		n = poll(&pfd, 1,
			 until - now > INT_MAX ? INT_MAX : (int)(until - now));
		if (n > 0) {
			*revents = pfd.revents;
			return HTTPS_STREAM_OK;
		}
		if (n < 0 && errno != EINTR) {
			snprintf(r->err, r->errlen, "%s: poll: %s", r->auth,
				 strerror(errno));
			return HTTPS_STREAM_ERROR;
		}
	}
}

/* Hands body bytes to the sink (or the collecting buffer), at most up to
 * max_body: TOO_LARGE past it. */
static enum https_stream_result
stream_deliver(struct stream_run *r, const char *p, size_t n)
{
	size_t take = n;
	bool over = false;

	if (n == 0)
		return HTTPS_STREAM_OK;
	if (r->max_body - r->delivered < n) {
		take = (size_t)(r->max_body - r->delivered);
		over = true;
	}
	if (take > 0) {
		if (r->s->on_body != NULL) {
			if (r->s->on_body(r->s->arg, p, take) != 0) {
				snprintf(r->err, r->errlen,
					 "%s: stopped by the receiver",
					 r->auth);
				return HTTPS_STREAM_ABORTED;
			}
		} else if (buf_append(&r->collect, p, take) != 0) {
			snprintf(r->err, r->errlen, "out of memory");
			return HTTPS_STREAM_ERROR;
		}
		r->delivered += take;
	}
	if (over) {
		snprintf(r->err, r->errlen,
			 "%s: response body longer than the limit of %llu "
			 "bytes",
			 r->auth, r->max_body);
		return HTTPS_STREAM_TOO_LARGE;
	}
	return HTTPS_STREAM_OK;
}

/* One line of a chunked body (size or trailer) is complete in r->line. */
static enum https_stream_result
chunk_line(struct stream_run *r)
{
	unsigned long long size = 0;
	size_t digits = 0;
	const char *q;

	while (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
		r->line_len--;
	r->line[r->line_len] = '\0';
	if (r->ch == CH_TRAILER) {
		if (r->line_len == 0)
			r->ch = CH_DONE;
		return HTTPS_STREAM_OK;
	}
	for (q = r->line; isxdigit((unsigned char)*q); q++) {
		int d = isdigit((unsigned char)*q)
				? *q - '0'
				: tolower((unsigned char)*q) - 'a' + 10;

		if (size > (ULLONG_MAX >> 4)) {
			snprintf(r->err, r->errlen, "chunk size too large");
			return HTTPS_STREAM_ERROR;
		}
		size = (size << 4) | (unsigned long long)d;
		digits++;
	}
	if (digits == 0 ||
	    (*q != ';' && *q != '\0' && *q != ' ' && *q != '\t')) {
		snprintf(r->err, r->errlen, "malformed chunk size");
		return HTTPS_STREAM_ERROR;
	}
	if (size == 0) {
		r->ch = CH_TRAILER;
		return HTTPS_STREAM_OK;
	}
	/* A chunk past the limit is delivered up to it, then stopped. */
	r->ch_left = size;
	r->ch = CH_DATA;
	return HTTPS_STREAM_OK;
}

/* Decodes n bytes of a chunked body. */
static enum https_stream_result
stream_chunked(struct stream_run *r, const char *p, size_t n)
{
	size_t pos = 0;
	enum https_stream_result rc;

	while (pos < n && r->ch != CH_DONE) {
		if (r->ch == CH_DATA) {
			size_t take = n - pos;

			if (take > r->ch_left)
				take = (size_t)r->ch_left;
			rc = stream_deliver(r, p + pos, take);
			if (rc != HTTPS_STREAM_OK)
				return rc;
			pos += take;
			r->ch_left -= take;
			if (r->ch_left == 0) {
				r->ch = CH_DATA_END;
				r->line_len = 0;
			}
			continue;
		}
		if (p[pos] != '\n') {
			if (r->line_len == CHUNK_LINE_MAX) {
				snprintf(r->err, r->errlen,
					 "chunk line too long");
				return HTTPS_STREAM_ERROR;
			}
			r->line[r->line_len++] = p[pos++];
			continue;
		}
		pos++;
		if (r->ch == CH_DATA_END) {
			if (r->line_len != 0 &&
			    !(r->line_len == 1 && r->line[0] == '\r')) {
				snprintf(r->err, r->errlen,
					 "malformed chunk: no CRLF after "
					 "chunk data");
				return HTTPS_STREAM_ERROR;
			}
			r->ch = CH_SIZE;
			r->line_len = 0;
			continue;
		}
		rc = chunk_line(r);
		r->line_len = 0;
		if (rc != HTTPS_STREAM_OK)
			return rc;
	}
	if (r->ch == CH_DONE)
		r->done = true;
	return HTTPS_STREAM_OK;
}

/* Body bytes as they arrive, per the framing. */
static enum https_stream_result
stream_body(struct stream_run *r, const char *p, size_t n)
{
	enum https_stream_result rc;

	switch (r->framing) {
	case FRAME_NONE:
		r->done = true;
		return HTTPS_STREAM_OK;
	case FRAME_LENGTH:
		if (n > r->length - r->delivered)
			n = (size_t)(r->length - r->delivered);
		rc = stream_deliver(r, p, n);
		if (rc == HTTPS_STREAM_OK && r->delivered == r->length)
			r->done = true;
		return rc;
	case FRAME_CLOSE:
		return stream_deliver(r, p, n);
	case FRAME_CHUNKED:
		return stream_chunked(r, p, n);
	}
	return HTTPS_STREAM_ERROR;
}

/* Bytes received: the header block first, then the body. */
static enum https_stream_result
stream_input(struct stream_run *r, const char *p, size_t n)
{
	size_t hend, framing_len = 0;

	if (r->have_head)
		return stream_body(r, p, n);
	if (buf_append(&r->hdr, p, n) != 0) {
		snprintf(r->err, r->errlen, "out of memory");
		return HTTPS_STREAM_ERROR;
	}
	for (;;) {
		size_t window = r->hdr.len;

		if (window > HTTPS_MAX_HEADER_BYTES)
			window = HTTPS_MAX_HEADER_BYTES;
		hend = find_header_end(r->hdr.data, window);
		if (hend == 0) {
			if (r->hdr.len >= HTTPS_MAX_HEADER_BYTES) {
				snprintf(r->err, r->errlen,
					 "response headers too large (limit "
					 "%u bytes)",
					 HTTPS_MAX_HEADER_BYTES);
				return HTTPS_STREAM_ERROR;
			}
			return HTTPS_STREAM_OK;
		}
		https_response_free(r->resp);
		if (parse_head(r->hdr.data, hend, r->resp, r->err, r->errlen) !=
		    0)
			return HTTPS_STREAM_ERROR;
		if (r->resp->status >= 200 || r->resp->status == 101)
			break;
		/* An interim response: drop it and look again. */
		https_response_free(r->resp);
		memmove(r->hdr.data, r->hdr.data + hend, r->hdr.len - hend);
		r->hdr.len -= hend;
	}
	r->have_head = true;
	if (choose_framing(r->resp, r->head_method, &r->framing, &framing_len,
			   r->err, r->errlen) != 0)
		return HTTPS_STREAM_ERROR;
	r->length = framing_len;
	if (r->s->on_head != NULL && r->s->on_head(r->s->arg, r->resp) != 0) {
		snprintf(r->err, r->errlen, "%s: stopped after the headers",
			 r->auth);
		return HTTPS_STREAM_ABORTED;
	}
	if (r->framing == FRAME_NONE ||
	    (r->framing == FRAME_LENGTH && r->length == 0)) {
		r->done = true;
		return HTTPS_STREAM_OK;
	}
	if (r->framing == FRAME_LENGTH && r->length > r->max_body) {
		snprintf(r->err, r->errlen,
			 "%s: response body of %llu bytes is longer than the "
			 "limit of %llu",
			 r->auth, r->length, r->max_body);
		return HTTPS_STREAM_TOO_LARGE;
	}
	return stream_body(r, r->hdr.data + hend, r->hdr.len - hend);
}

/* Reads what the socket has now (WANT_READ is fine): OK, or an error. Sets
 * *eof when the peer closed. */
static enum https_stream_result
stream_read_some(struct stream_run *r, bool *eof, bool *got)
{
	char chunk[STREAM_IO];
	enum https_stream_result rc;
	int n, e;

	for (;;) {
		errno = 0;
		n = SSL_read(r->ssl, chunk, sizeof(chunk));
		if (n > 0) {
			r->last_move = clock_mono_ms();
			*got = true;
			rc = stream_input(r, chunk, (size_t)n);
			if (rc != HTTPS_STREAM_OK || r->done)
				return rc;
			continue;
		}
		e = SSL_get_error(r->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return HTTPS_STREAM_OK;
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
		     errno == 0)) {
			*eof = true;
			return HTTPS_STREAM_OK;
		}
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			snprintf(r->err, r->errlen, "read from %s: %s", r->auth,
				 strerror(errno));
		} else {
			char why[256];

			ossl_reason(why, sizeof(why));
			snprintf(r->err, r->errlen, "read from %s: TLS: %s",
				 r->auth, why);
		}
		return HTTPS_STREAM_ERROR;
	}
}

/* Sends the request head and body. Stops early (OK) when the server has
 * started answering; *write_failed when the peer stopped taking bytes. */
static enum https_stream_result
stream_send(struct stream_run *r, const struct https_request *req,
	    const struct buf *head, bool *write_failed, bool *eof)
{
	const struct https_stream *s = r->s;
	unsigned long long sent = 0, total = s->body_len;
	char *pend = NULL;
	size_t plen = 0, poff = 0, hoff = 0;
	bool got = false;
	unsigned writes = 0;
	enum https_stream_result rc = HTTPS_STREAM_OK;

	if (s->read == NULL)
		total = req->body != NULL ? req->body_len : 0;
	pend = malloc(STREAM_IO);
	if (pend == NULL) {
		snprintf(r->err, r->errlen, "out of memory");
		return HTTPS_STREAM_ERROR;
	}
	for (;;) {
		int n, e;
		short ev = 0;

		if (poff == plen) {
			/* Refill: the rest of the head, then the body. */
			poff = plen = 0;
			if (hoff < head->len) {
				plen = head->len - hoff;
				if (plen > STREAM_IO)
					plen = STREAM_IO;
				memcpy(pend, head->data + hoff, plen);
				hoff += plen;
			} else if (sent < total) {
				size_t want = total - sent > STREAM_IO
						      ? STREAM_IO
						      : (size_t)(total - sent);

				if (s->read == NULL) {
					memcpy(pend,
					       (const char *)req->body + sent,
					       want);
					plen = want;
				} else {
					long got_n =
						s->read(s->arg, pend, want);

					if (got_n < 0) {
						snprintf(r->err, r->errlen,
							 "reading the request "
							 "body failed");
						rc = HTTPS_STREAM_ABORTED;
						goto out;
					}
					if (got_n == 0) {
						snprintf(r->err, r->errlen,
							 "request body ended "
							 "after %llu of %llu "
							 "bytes",
							 sent, total);
						rc = HTTPS_STREAM_ABORTED;
						goto out;
					}
					plen = (size_t)got_n > want
						       ? want
						       : (size_t)got_n;
				}
				sent += plen;
			} else {
				break;
			}
		}
		/* Now and then, look whether the server answered early. */
		if ((++writes & 15u) == 0) {
			struct pollfd pfd = {.fd = r->fd, .events = POLLIN};

			if (poll(&pfd, 1, 0) > 0) {
				rc = stream_read_some(r, eof, &got);
				if (rc != HTTPS_STREAM_OK || got || *eof)
					goto out;
			}
		}
		errno = 0;
		n = SSL_write(r->ssl, pend + poff,
			      plen - poff > INT_MAX ? INT_MAX
						    : (int)(plen - poff));
		if (n > 0) {
			poff += (size_t)n;
			r->last_move = clock_mono_ms();
			if (poff == plen && hoff == head->len &&
			    s->progress != NULL)
				s->progress(s->arg, sent, total);
			continue;
		}
		e = SSL_get_error(r->ssl, n);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
			/* The server may have answered (413) and closed. */
			ERR_clear_error();
			*write_failed = true;
			goto out;
		}
		rc = stream_wait(r,
				 e == SSL_ERROR_WANT_WRITE ? POLLOUT | POLLIN
							   : POLLIN,
				 &ev);
		if (rc != HTTPS_STREAM_OK)
			goto out;
		if (e == SSL_ERROR_WANT_WRITE && (ev & POLLIN) != 0) {
			rc = stream_read_some(r, eof, &got);
			if (rc != HTTPS_STREAM_OK || got || *eof)
				goto out;
		}
	}
out:
	free(pend);
	return rc;
}

/* After the input ended (EOF, or the response was complete): the result,
 * and the collected body moved into the response. */
static enum https_stream_result
stream_finish(struct stream_run *r, bool write_failed)
{
	if (!r->done) {
		if (!r->have_head) {
			if (write_failed)
				snprintf(r->err, r->errlen,
					 "write to %s: connection closed by "
					 "the server",
					 r->auth);
			else
				snprintf(r->err, r->errlen,
					 "%s closed the connection without a "
					 "response",
					 r->auth);
			return HTTPS_STREAM_ERROR;
		}
		if (r->framing != FRAME_CLOSE) {
			snprintf(r->err, r->errlen,
				 "truncated response from %s: connection "
				 "closed after %llu body bytes",
				 r->auth, r->delivered);
			return HTTPS_STREAM_TRUNCATED;
		}
	}
	if (r->s->on_body == NULL) {
		size_t n = 0;
		char *body = buf_detach(&r->collect, &n);

		if (body == NULL)
			body = calloc(1, 1);
		if (body == NULL) {
			snprintf(r->err, r->errlen, "out of memory");
			return HTTPS_STREAM_ERROR;
		}
		r->resp->body = body;
		r->resp->body_len = n;
	}
	return HTTPS_STREAM_OK;
}

enum https_stream_result
https_stream_decode(const struct https_stream *s, const char *const *pieces,
		    const size_t *lens, size_t n, bool head,
		    struct https_response *resp, unsigned long long *body_bytes,
		    char *err, size_t errlen)
{
	struct stream_run r;
	enum https_stream_result rc = HTTPS_STREAM_OK;

	memset(resp, 0, sizeof(*resp));
	memset(&r, 0, sizeof(r));
	r.s = s;
	r.resp = resp;
	r.err = err;
	r.errlen = errlen;
	r.fd = -1;
	r.head_method = head;
	r.max_body = s->max_body > 0 ? s->max_body : HTTPS_DEFAULT_MAX_BODY;
	r.ch = CH_SIZE;
	snprintf(r.auth, sizeof(r.auth), "server");
	buf_init(&r.hdr, HTTPS_MAX_HEADER_BYTES + STREAM_IO);
	buf_init(&r.collect,
		 (size_t)(r.max_body < SIZE_MAX ? r.max_body : SIZE_MAX));
	for (size_t i = 0; i < n && !r.done; i++) {
		/* As from SSL_read: at most STREAM_IO bytes at a time. */
		for (size_t off = 0; off < lens[i] && !r.done;) {
			size_t k = lens[i] - off > STREAM_IO ? STREAM_IO
							     : lens[i] - off;

			rc = stream_input(&r, pieces[i] + off, k);
			if (rc != HTTPS_STREAM_OK)
				goto out;
			off += k;
		}
	}
	rc = stream_finish(&r, false);
out:
	if (body_bytes != NULL)
		*body_bytes = r.delivered;
	buf_free(&r.hdr);
	buf_free(&r.collect);
	return rc;
}

enum https_stream_result
https_stream(struct https_client *c, const struct https_url *url,
	     const struct https_request *req, const struct https_stream *s,
	     struct https_response *resp, unsigned long long *body_bytes,
	     char *err, size_t errlen)
{
	struct stream_run r;
	struct https_request hreq;
	struct buf head;
	uint64_t start = clock_mono_ms(), connect_deadline;
	unsigned long long body_len;
	enum https_stream_result rc = HTTPS_STREAM_ERROR;
	bool write_failed = false, eof = false;

	memset(resp, 0, sizeof(*resp));
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.s = s;
	r.resp = resp;
	r.err = err;
	r.errlen = errlen;
	r.fd = -1;
	r.head_method = strcmp(req->method, "HEAD") == 0;
	r.max_body = s->max_body > 0 ? s->max_body : c->max_body;
	r.idle_ms =
		s->idle_ms > 0 ? (uint64_t)s->idle_ms : (uint64_t)c->timeout_ms;
	r.total_deadline = s->total_ms > 0 ? start + (uint64_t)s->total_ms : 0;
	r.last_move = start;
	r.ch = CH_SIZE;
	url_authority(url, r.auth, sizeof(r.auth));
	buf_init(&r.hdr, HTTPS_MAX_HEADER_BYTES + STREAM_IO);
	buf_init(&r.collect,
		 (size_t)(r.max_body < SIZE_MAX ? r.max_body : SIZE_MAX));
	buf_init(&head, HTTPS_MAX_HEADER_BYTES);
	ERR_clear_error();
	body_len = s->read != NULL ? s->body_len
				   : (req->body != NULL ? req->body_len : 0);
	/* The head alone: a body in memory goes through the same loop as
	 * a streamed one. */
	hreq = *req;
	hreq.body = NULL;
	hreq.body_len = 0;
	if (build_request(url, &hreq, body_len, &head, err, errlen) != 0)
		goto out;
	connect_deadline = start + (uint64_t)c->timeout_ms;
	if (r.total_deadline != 0 && r.total_deadline < connect_deadline)
		connect_deadline = r.total_deadline;
	if (tls_open(c, url, connect_deadline, &r.fd, &r.ssl, err, errlen) !=
	    0) {
		if (r.total_deadline != 0 &&
		    clock_mono_ms() >= r.total_deadline)
			rc = HTTPS_STREAM_TIMEOUT;
		goto out;
	}
	r.last_move = clock_mono_ms();
	rc = stream_send(&r, req, &head, &write_failed, &eof);
	if (rc != HTTPS_STREAM_OK)
		goto out;
	while (!r.done && !eof) {
		bool got = false;
		short ev = 0;

		rc = stream_read_some(&r, &eof, &got);
		if (rc != HTTPS_STREAM_OK)
			goto out;
		if (r.done || eof)
			break;
		rc = stream_wait(&r, POLLIN, &ev);
		if (rc != HTTPS_STREAM_OK)
			goto out;
	}
	rc = stream_finish(&r, write_failed);
	if (rc != HTTPS_STREAM_OK)
		goto out;
	rc = HTTPS_STREAM_OK;
out:
	if (body_bytes != NULL)
		*body_bytes = r.delivered;
	SSL_free(r.ssl);
	if (r.fd >= 0)
		close(r.fd);
	ERR_clear_error();
	buf_free(&head);
	buf_free(&r.hdr);
	buf_free(&r.collect);
	return rc;
}

int
https_url_split(const char *url, struct https_url *base, char *path,
		size_t pathlen, char *err, size_t errlen)
{
	char authority[600];
	const char *p, *slash;
	size_t alen, plen;
	struct https_url u;

	if (url == NULL || strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "URL '%s': must start with https://",
			 url != NULL ? url : "");
		return -1;
	}
	p = url + 8;
	slash = p + strcspn(p, "/?#");
	alen = (size_t)(slash - url);
	if (alen >= sizeof(authority)) {
		snprintf(err, errlen, "URL '%s': host too long", url);
		return -1;
	}
	memcpy(authority, url, alen);
	authority[alen] = '\0';
	if (https_url_parse(authority, &u, err, errlen) != 0)
		return -1;
	if (*slash == '#' || strchr(slash, '#') != NULL) {
		snprintf(err, errlen, "URL '%s': a fragment is not allowed",
			 url);
		return -1;
	}
	plen = strlen(slash);
	for (size_t i = 0; i < plen; i++) {
		unsigned char ch = (unsigned char)slash[i];

		if (ch <= ' ' || ch >= 0x7f) {
			snprintf(err, errlen,
				 "URL '%s': invalid character in path", url);
			return -1;
		}
	}
	if (plen + 2 > pathlen) {
		snprintf(err, errlen, "URL '%s': path too long", url);
		return -1;
	}
	if (*slash == '/') {
		memcpy(path, slash, plen + 1);
	} else {
		path[0] = '/';
		memcpy(path + 1, slash, plen + 1);
	}
	*base = u;
	return 0;
}
