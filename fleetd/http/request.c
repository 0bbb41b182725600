/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP requests on the api listener, inside a net worker's event loop.
 * Two ways in: on a connection adopted as a raw TLS socket, h1.c parses
 * the head (the design; see the raw section below); on a connection lws
 * parsed, this file checks what lws left: HTTP/1.1 framing (RFC 9112: one
 * numeric Content-Length or none, no Transfer-Encoding), the methods we
 * serve, the size of every field we copy (a field over its limit is
 * refused with 414/431/400, never cut or dropped), and never a websocket.
 * The body is collected on the loop (bounded: max_body), the request is
 * handed to a job thread that runs api_handle(), and the answer is
 * written back in the WRITEABLE callback. A refused request is answered
 * with problem+json and the connection is closed, so nothing after it on
 * the connection (a smuggled body, a pipelined request) is ever read as a
 * request. All input is untrusted. A connection that closes while its job
 * runs orphans the job; the loop frees it when it comes back. Buffers that
 * held an Authorization header, a body or an answer are wiped before they
 * are freed. docs/internals/threat-model.md has the limits table and what
 * lws itself refuses before this file sees a request.
 */
#include "http/http.h"

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "http/h1.h"
#include "http/jobs.h"
#include "log.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_CHUNK 16384

/* Limits of what we copy out of lws's header table (threat-model.md);
 * the field sizes are h1.h's, shared with the raw path. */
#define HTTP_PATH_MAX H1_PATH_MAX /* decoded path, with its NUL */
#define HTTP_QUERY_DECODED_MAX 8192 /* all parameters, decoded */
#define HTTP_QUERY_PARAMS_MAX H1_QUERY_PARAMS_MAX
#define HTTP_AUTHORIZATION_MAX H1_AUTHORIZATION_MAX /* with the NUL */
#define HTTP_CONTENT_TYPE_MAX H1_CONTENT_TYPE_MAX
#define HTTP_IF_MATCH_MAX H1_IF_MATCH_MAX
#define HTTP_IDEMPOTENCY_KEY_MAX H1_IDEMPOTENCY_KEY_MAX
#define HTTP_CONTENT_LENGTH_DIGITS H1_CONTENT_LENGTH_DIGITS

struct http_job {
	struct job job;
	struct lws *wsi; /* NULL once the connection has closed */
	bool in_pool; /* owned by the job pool until done() */
	bool head; /* HEAD: run as GET, answer without the body */
	struct worker *worker;
	uint64_t started_ms;
	char method[16];
	char path[HTTP_PATH_MAX];
	char *query; /* re-encoded, malloc'd; never NULL once filled */
	char authorization[HTTP_AUTHORIZATION_MAX];
	char content_type[HTTP_CONTENT_TYPE_MAX];
	char if_match[HTTP_IF_MATCH_MAX];
	char idempotency_key[HTTP_IDEMPOTENCY_KEY_MAX];
	char request_id[32];
	char peer[64];
	char *body; /* body_cap bytes, wiped before free */
	size_t body_len;
	size_t body_cap;
	struct api_response resp;
};

struct http_session {
	struct http_job *job; /* being collected, in the pool, or answering */
	char *body; /* exactly Content-Length + 1 bytes, never realloc'd */
	size_t body_len;
	size_t body_cap;
	bool answered; /* an early answer (4xx, 503) is queued */
	bool started; /* the job was handed out (lws may still report a
			  body completion for Content-Length: 0) */
	bool headers_sent;
	bool close_after;
	size_t sent;
	/* Raw connections (h1.c parses): for the whole connection. */
	enum { RAW_HEAD = 0, RAW_BODY, RAW_RUN, RAW_CLOSING } raw_phase;
	bool raw_continue; /* 100 Continue to write */
	bool raw_overflow; /* input past H1_HEAD_MAX was dropped: close */
	char *in; /* H1_HEAD_MAX bytes: what is read but not yet used */
	size_t in_len;
	char *out; /* LWS_PRE + the answer (head and body) */
	size_t out_len, out_sent;
};

/* Why a request is refused before it reaches the API. */
struct http_refusal {
	int status;
	const char *slug;
	char detail[192];
};

size_t
http_session_size(void)
{
	return sizeof(struct http_session);
}

/* Frees a body buffer after wiping it: it may hold an enrollment token. */
static void
http_body_free(char *body, size_t cap)
{
	if (body == NULL)
		return;
	OPENSSL_cleanse(body, cap);
	free(body);
}

static void
http_job_free(struct http_job *job)
{
	if (job == NULL)
		return;
	http_body_free(job->body, job->body_cap);
	free(job->query);
	/* The answer may carry a new token. */
	if (job->resp.body != NULL)
		OPENSSL_cleanse(job->resp.body, job->resp.body_len);
	api_response_free(&job->resp);
	OPENSSL_cleanse(job, sizeof(*job)); /* the Authorization copy */
	free(job);
}

/* ---- problem+json answers made here --------------------------------- */

/* Titles of the problem types answered here; those the API answers too
 * (not-found, payload-too-large, service-unavailable) carry api/problem.c's
 * title, so one type keeps one title. */
static const struct {
	const char *slug;
	const char *title;
} http_titles[] = {
	{"bad-request", "Bad request"},
	{"not-found", "Not found"},
	{"payload-too-large", "Payload too large"},
	{"uri-too-long", "URI too long"},
	{"header-too-large", "Request header fields too large"},
	{"upgrade-refused", "Upgrade refused"},
	{"expectation-failed", "Expectation failed"},
	{"not-implemented", "Not implemented"},
	{"service-unavailable", "Service unavailable"},
	{"http-version-not-supported", "HTTP version not supported"},
};

static const char *
http_title(int status, const char *slug)
{
	for (size_t i = 0; i < sizeof(http_titles) / sizeof(http_titles[0]);
	     i++)
		if (strcmp(http_titles[i].slug, slug) == 0)
			return http_titles[i].title;
	return h1_reason(status);
}

/* The problem document of RFC 7807; detail is ours (no secrets). Returns
 * a malloc'd NUL-terminated string or NULL. */
static char *
http_problem_json(int status, const char *slug, const char *detail)
{
	struct buf b;

	buf_init(&b, 1024);
	if (buf_printf(&b,
		       "{\"type\":\"urn:fleet:problem:%s\",\"title\":\"%s\","
		       "\"status\":%d",
		       slug, http_title(status, slug), status) != 0)
		goto fail;
	if (detail != NULL) {
		if (buf_append(&b, ",\"detail\":\"", 11) != 0)
			goto fail;
		for (const char *p = detail; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;
			int rc;

			if (c == '"' || c == '\\')
				rc = buf_printf(&b, "\\%c", c);
			else if (c < 0x20)
				rc = buf_printf(&b, "\\u%04x", c);
			else
				rc = buf_append(&b, p, 1);
			if (rc != 0)
				goto fail;
		}
		if (buf_append(&b, "\"", 1) != 0)
			goto fail;
	}
	if (buf_append(&b, "}", 1) != 0)
		goto fail;
	return buf_detach(&b, NULL);
fail:
	buf_free(&b);
	return NULL;
}

static void
http_problem(struct api_response *resp, int status, const char *slug,
	     const char *detail)
{
	api_response_free(resp);
	memset(resp, 0, sizeof(*resp));
	resp->status = status;
	resp->content_type = "application/problem+json";
	resp->body = http_problem_json(status, slug, detail);
	resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
}

static void refuse(struct http_refusal *r, int status, const char *slug,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
refuse(struct http_refusal *r, int status, const char *slug, const char *fmt,
       ...)
{
	va_list ap;

	r->status = status;
	r->slug = slug;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* ---- which listener ---------------------------------------------------- */

/*
 * lws may move a connection to the first vhost after parsing its head
 * (vhosts are picked by port and adopted sockets have none), so the vhost
 * does not say which listener accepted it. The TLS context does: the
 * device listener is the one that requires a client certificate.
 */
static bool
http_from_device_listener(struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	return ssl != NULL && (SSL_CTX_get_verify_mode(SSL_get_SSL_CTX(ssl)) &
			       SSL_VERIFY_FAIL_IF_NO_PEER_CERT) != 0;
}

/* ---- copying the request head out of lws, within limits ------------- */

static const struct {
	enum lws_token_indexes token;
	const char *name;
} http_methods[] = {
	{WSI_TOKEN_GET_URI, "GET"},	  {WSI_TOKEN_POST_URI, "POST"},
	{WSI_TOKEN_PATCH_URI, "PATCH"},	  {WSI_TOKEN_PUT_URI, "PUT"},
	{WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
	{WSI_TOKEN_HEAD_URI, "HEAD"},
};

static const char *
http_method(struct lws *wsi)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]);
	     i++) {
		if (lws_hdr_total_length(wsi, http_methods[i].token) > 0)
			return http_methods[i].name;
	}
	return NULL;
}

/* The methods some route of the API serves; the others get 501. */
static bool
http_method_served(const char *method)
{
	static const char *const served[] = {"GET", "HEAD", "POST", "PATCH",
					     "DELETE"};

	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		if (strcmp(method, served[i]) == 0)
			return true;
	return false;
}

/* lws keeps a repeated header as a chain of fragments; every fragment
 * after the first starts with the space lws inserts, so it is never
 * empty. */
static bool
http_header_repeated(struct lws *wsi, enum lws_token_indexes token)
{
	return lws_hdr_fragment_length(wsi, token, 1) > 0;
}

/*
 * Copies a single-valued header into out. Absent: "" and 0. Repeated: 400.
 * Longer than outlen - 1: 431. Returns 0 or -1 with r filled.
 */
static int
http_header(struct lws *wsi, enum lws_token_indexes token, const char *name,
	    char *out, size_t outlen, struct http_refusal *r)
{
	int len = lws_hdr_total_length(wsi, token);

	out[0] = '\0';
	if (len <= 0)
		return 0; /* lws keeps no empty value either */
	if (http_header_repeated(wsi, token)) {
		refuse(r, 400, "bad-request", "%s is sent more than once",
		       name);
		return -1;
	}
	if (len < 0 || (size_t)len >= outlen) {
		refuse(r, 431, "header-too-large", "%s is limited to %zu bytes",
		       name, outlen - 1);
		return -1;
	}
	if (len > 0 && lws_hdr_copy(wsi, out, (int)outlen, token) < 0) {
		refuse(r, 400, "bad-request", "%s cannot be read", name);
		return -1;
	}
	return 0;
}

/* The same for a header lws does not know (name lower case, with ':'). */
static int
http_custom_header(struct lws *wsi, const char *name, const char *display,
		   char *out, size_t outlen, struct http_refusal *r)
{
	int namelen = (int)strlen(name);
	int len = lws_hdr_custom_length(wsi, name, namelen);

	out[0] = '\0';
	if (len < 0)
		return 0;
	if ((size_t)len >= outlen) {
		refuse(r, 431, "header-too-large", "%s is limited to %zu bytes",
		       display, outlen - 1);
		return -1;
	}
	if (lws_hdr_custom_copy(wsi, out, (int)outlen, name, namelen) < 0) {
		refuse(r, 400, "bad-request", "%s cannot be read", display);
		return -1;
	}
	return 0;
}

static bool
http_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

/*
 * lws has already percent-decoded each "name=value" and split them at
 * '&'; encode them again so that the API sees one raw query string (an
 * encoded '&' or '=' inside a value stays a value). Every parameter is
 * kept whole: over the limits the request is refused (414, 400), never
 * cut. Returns 0 with *out malloc'd ("" without a query) or -1 with r.
 */
static int
http_query(struct lws *wsi, char **out, struct http_refusal *r)
{
	static const char hex[] = "0123456789ABCDEF";
	int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	char *frag = NULL, *q = NULL;
	size_t o = 0, cap;
	int i;

	*out = NULL;
	if (total < 0 || total > HTTP_QUERY_DECODED_MAX) {
		refuse(r, 414, "uri-too-long",
		       "query parameters are limited to %d bytes (decoded)",
		       HTTP_QUERY_DECODED_MAX);
		return -1;
	}
	/* Each byte becomes at most three, plus one '&' per parameter. */
	cap = (size_t)total * 3 + HTTP_QUERY_PARAMS_MAX + 1;
	frag = malloc((size_t)total + 1);
	q = malloc(cap);
	if (frag == NULL || q == NULL)
		goto oom;
	q[0] = '\0';
	for (i = 0;; i++) {
		bool in_value = false;
		int n = lws_hdr_copy_fragment(wsi, frag, total + 1,
					      WSI_TOKEN_HTTP_URI_ARGS, i);

		if (n < 0)
			break; /* no more: the buffer holds any fragment */
		if (i >= HTTP_QUERY_PARAMS_MAX) {
			refuse(r, 400, "bad-request",
			       "at most %d query parameters",
			       HTTP_QUERY_PARAMS_MAX);
			goto fail;
		}
		if (i > 0)
			q[o++] = '&';
		for (int j = 0; j < n; j++) {
			unsigned char c = (unsigned char)frag[j];

			if (c == '=' && !in_value) {
				in_value = true;
				q[o++] = '=';
			} else if (http_unreserved(c)) {
				q[o++] = (char)c;
			} else {
				q[o++] = '%';
				q[o++] = hex[c >> 4];
				q[o++] = hex[c & 15];
			}
		}
		q[o] = '\0';
	}
	free(frag);
	*out = q;
	return 0;
oom:
	refuse(r, 503, "service-unavailable", "out of memory");
fail:
	free(frag);
	free(q);
	return -1;
}

/* Decoded path: bounded, and no control bytes (they would reach logs). */
static int
http_path(const char *path, size_t len, char *out, size_t outlen,
	  struct http_refusal *r)
{
	if (len >= outlen) {
		refuse(r, 414, "uri-too-long", "paths are limited to %zu bytes",
		       outlen - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c < 0x20 || c == 0x7f) {
			refuse(r, 400, "bad-request",
			       "control characters in the path");
			return -1;
		}
	}
	memcpy(out, path, len);
	out[len] = '\0';
	return 0;
}

/*
 * RFC 9112 §6: the body's length is one Content-Length of digits only, or
 * nothing. Transfer-Encoding (chunked or any other) is not accepted: lws
 * 4.1 does not decode chunked request bodies, and with Content-Length it
 * is the classic smuggling pair. lws files a header written with a space
 * before the colon under a custom name; such a framing header would mean
 * one thing to a proxy and another to us, so it is refused too.
 * Returns the length (0 when absent), -2 when absent but a body is due
 * (POST, PATCH: lws would then read up to 100 MB as the body), or -1 with
 * r filled.
 */
static long long
http_framing(struct lws *wsi, const char *method, struct http_refusal *r)
{
	static const char *const spaced[] = {
		"content-length :", "content-length\t:", "transfer-encoding :",
		"transfer-encoding\t:"};
	char text[HTTP_CONTENT_LENGTH_DIGITS + 8];
	int len;
	size_t n;
	long long v = 0;

	for (size_t i = 0; i < sizeof(spaced) / sizeof(spaced[0]); i++) {
		if (lws_hdr_custom_length(wsi, spaced[i],
					  (int)strlen(spaced[i])) >= 0) {
			refuse(r, 400, "bad-request",
			       "whitespace between a header name and its "
			       "colon");
			return -1;
		}
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		refuse(r, 400, "bad-request",
		       "Transfer-Encoding is not accepted; send the body "
		       "with one Content-Length");
		return -1;
	}
	len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (len <= 0) {
		if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0)
			return -2;
		return 0;
	}
	if (http_header_repeated(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH)) {
		refuse(r, 400, "bad-request",
		       "Content-Length is sent more than once");
		return -1;
	}
	if ((size_t)len >= sizeof(text) ||
	    lws_hdr_copy(wsi, text, (int)sizeof(text),
			 WSI_TOKEN_HTTP_CONTENT_LENGTH) != len)
		goto invalid;
	n = (size_t)len;
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--; /* trailing OWS; lws dropped the leading one */
	if (n == 0 || n > HTTP_CONTENT_LENGTH_DIGITS)
		goto invalid;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			goto invalid;
		v = v * 10 + (text[i] - '0');
	}
	return v;
invalid:
	refuse(r, 400, "bad-request",
	       "Content-Length must be one decimal number");
	return -1;
}

/*
 * The request line ends in HTTP/1.1 or HTTP/1.0, and HTTP/1.1 needs
 * exactly one Host (RFC 9112 §3.2). lws ends the request line at a
 * decoded %0A or %0D in the URL and reads the rest as headers: the
 * version is then missing, and such a request is refused here.
 */
static int
http_version_host(struct lws *wsi, struct http_refusal *r)
{
	char version[16];
	bool v11;

	if (lws_hdr_copy(wsi, version, (int)sizeof(version), WSI_TOKEN_HTTP) <=
		    0 ||
	    (strcmp(version, "HTTP/1.1") != 0 &&
	     strcmp(version, "HTTP/1.0") != 0)) {
		refuse(r, 400, "bad-request",
		       "the request line must end in HTTP/1.1");
		return -1;
	}
	v11 = strcmp(version, "HTTP/1.1") == 0;
	if (http_header_repeated(wsi, WSI_TOKEN_HOST)) {
		refuse(r, 400, "bad-request", "Host is sent more than once");
		return -1;
	}
	if (v11 && lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0) {
		refuse(r, 400, "bad-request", "HTTP/1.1 requires Host");
		return -1;
	}
	return 0;
}

/* Copies what the API needs; -1 with r filled when something is refused. */
static int
http_job_fill(struct http_job *job, struct lws *wsi, struct http_refusal *r)
{
	if (http_query(wsi, &job->query, r) != 0 ||
	    http_version_host(wsi, r) != 0 ||
	    http_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, "Authorization",
			job->authorization, sizeof(job->authorization),
			r) != 0 ||
	    http_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, "Content-Type",
			job->content_type, sizeof(job->content_type), r) != 0 ||
	    http_header(wsi, WSI_TOKEN_HTTP_IF_MATCH, "If-Match", job->if_match,
			sizeof(job->if_match), r) != 0 ||
	    http_custom_header(wsi, "idempotency-key:", "Idempotency-Key",
			       job->idempotency_key,
			       sizeof(job->idempotency_key), r) != 0)
		return -1;
	return 0;
}

static struct http_job *
http_job_new(struct worker *w, struct lws *wsi, const char *method)
{
	struct http_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->wsi = wsi;
	job->worker = w;
	job->started_ms = clock_mono_ms();
	snprintf(job->method, sizeof(job->method), "%s",
		 method != NULL ? method : "-");
	snprintf(job->request_id, sizeof(job->request_id), "w%d-%llu", w->slot,
		 (unsigned long long)++w->request_seq);
	lws_get_peer_simple(wsi, job->peer, sizeof(job->peer));
	return job;
}

/* ---- the job ---------------------------------------------------------- */

static void
http_job_run(struct job *j, void *state)
{
	struct http_job *job = (struct http_job *)j;
	struct api_ctx *ctx = state;
	struct api_request req = {
		.method = job->head ? "GET" : job->method,
		.path = job->path,
		.query = job->query != NULL ? job->query : "",
		.authorization = job->authorization[0] != '\0'
					 ? job->authorization
					 : NULL,
		.content_type =
			job->content_type[0] != '\0' ? job->content_type : NULL,
		.if_match = job->if_match[0] != '\0' ? job->if_match : NULL,
		.idempotency_key = job->idempotency_key[0] != '\0'
					   ? job->idempotency_key
					   : NULL,
		.request_id = job->request_id,
		.peer = job->peer,
		.body = job->body != NULL ? job->body : "",
		.body_len = job->body_len,
	};

	api_handle(ctx, &req, &job->resp);
}

/* Back on the loop: answer, or drop the job if its connection is gone. */
static void
http_job_done(struct job *j)
{
	struct http_job *job = (struct http_job *)j;

	job->in_pool = false;
	if (job->wsi == NULL) {
		http_job_free(job);
		return;
	}
	lws_callback_on_writable(job->wsi);
}

static void
http_start_job(struct worker *w, struct http_session *s)
{
	struct http_job *job = s->job;

	if (s->started)
		return;
	s->started = true;
	job->body = s->body;
	job->body_len = s->body_len;
	job->body_cap = s->body_cap;
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	job->job.run = http_job_run;
	job->job.done = http_job_done;
	job->in_pool = true;
	if (!job_pool_submit(w->jobs, &job->job)) {
		job->in_pool = false;
		http_problem(&job->resp, 503, "service-unavailable",
			     "this worker is overloaded; retry later");
		lws_callback_on_writable(job->wsi);
	}
}

/* Answers at once, without a job, and closes the connection after. */
static void
http_answer_now(struct http_session *s, struct lws *wsi, int status,
		const char *slug, const char *detail)
{
	http_problem(&s->job->resp, status, slug, detail);
	s->answered = true;
	s->close_after = true;
	lws_callback_on_writable(wsi);
}

/* ---- writing the answer ---------------------------------------------- */

static int
http_write_headers(struct lws *wsi, struct http_session *s)
{
	struct api_response *resp = &s->job->resp;
	unsigned char buf[LWS_PRE + 2048];
	unsigned char *start = buf + LWS_PRE, *p = start;
	unsigned char *end = buf + sizeof(buf) - 1;
	char etag[80];

	if (lws_add_http_common_headers(wsi, (unsigned)resp->status,
					resp->content_type, resp->body_len, &p,
					end) != 0)
		return -1;
	if (resp->etag[0] != '\0') {
		int n = snprintf(etag, sizeof(etag), "\"%s\"", resp->etag);

		if (lws_add_http_header_by_name(
			    wsi, (const unsigned char *)"etag:",
			    (const unsigned char *)etag, n, &p, end) != 0)
			return -1;
	}
	if (resp->location[0] != '\0' &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
					(const unsigned char *)resp->location,
					(int)strlen(resp->location), &p,
					end) != 0)
		return -1;
	if (resp->allow[0] != '\0' &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
					(const unsigned char *)resp->allow,
					(int)strlen(resp->allow), &p, end) != 0)
		return -1;
	if (lws_add_http_header_by_name(
		    wsi, (const unsigned char *)"x-request-id:",
		    (const unsigned char *)s->job->request_id,
		    (int)strlen(s->job->request_id), &p, end) != 0 ||
	    lws_add_http_header_by_name(
		    wsi, (const unsigned char *)"cache-control:",
		    (const unsigned char *)"no-store", 8, &p, end) != 0)
		return -1;
	if (s->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p,
					 end) != 0)
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end) != 0)
		return -1;
	s->headers_sent = true;
	return 0;
}

static void
http_log_request(const struct http_job *job)
{
	log_write(job->resp.status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
		  job->request_id, "%s %s -> %d (%llu ms) peer=%s", job->method,
		  job->path[0] != '\0' ? job->path : "-", job->resp.status,
		  (unsigned long long)(clock_mono_ms() - job->started_ms),
		  job->peer);
}

/* Returns -1 to close the connection, 0 to go on. */
static int
http_writeable(struct lws *wsi, struct http_session *s)
{
	struct api_response *resp = &s->job->resp;
	unsigned char buf[LWS_PRE + HTTP_CHUNK];
	size_t n, body_len = s->job->head ? 0 : resp->body_len;
	enum lws_write_protocol mode = LWS_WRITE_HTTP;
	bool close_after = s->close_after;

	if (!s->headers_sent) {
		if (http_write_headers(wsi, s) != 0)
			return -1;
		if (body_len > 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	n = body_len - s->sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	if (s->sent + n == body_len)
		mode = LWS_WRITE_HTTP_FINAL;
	if (n > 0) {
		int wrote;

		memcpy(buf + LWS_PRE, resp->body + s->sent, n);
		wrote = lws_write(wsi, buf + LWS_PRE, n, mode);
		/* the copy may hold a new token */
		OPENSSL_cleanse(buf + LWS_PRE, n);
		if (wrote != (int)n)
			return -1;
		s->sent += n;
	}
	if (s->sent < body_len) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	http_log_request(s->job);
	http_job_free(s->job);
	s->job = NULL;
	if (close_after)
		return -1;
	return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

/* ---- request life cycle ---------------------------------------------- */

static void
http_session_reset(struct http_session *s)
{
	http_body_free(s->body, s->body_cap);
	memset(s, 0, sizeof(*s));
}

/* Body bytes: the buffer was sized from Content-Length, so more than that
 * cannot arrive (lws stops at it); copies, then wipes lws's buffer. */
static void
http_body(struct http_session *s, void *in, size_t len)
{
	if (s->body != NULL && len <= s->body_cap - 1 - s->body_len) {
		memcpy(s->body + s->body_len, in, len);
		s->body_len += len;
		s->body[s->body_len] = '\0';
	}
	if (in != NULL && len > 0)
		OPENSSL_cleanse(in, len);
}

static int
http_begin(struct lws *wsi, struct worker *w, struct http_session *s,
	   const char *path, size_t pathlen)
{
	const char *method = http_method(wsi);
	struct http_refusal r = {0};
	long long content_length;

	http_session_reset(s);
	s->job = http_job_new(w, wsi, method);
	if (s->job == NULL)
		return -1;
	if (http_from_device_listener(wsi)) {
		/* The device listener serves the agent channel only. */
		http_answer_now(s, wsi, 404, "not-found",
				"the device listener serves only /agent/v1");
		return 0;
	}
	if (w->stopping) {
		http_answer_now(s, wsi, 503, "service-unavailable",
				"fleetd is stopping");
		return 0;
	}
	if (method == NULL || !http_method_served(method)) {
		http_answer_now(s, wsi, 501, "not-implemented",
				"the API serves GET, HEAD, POST, PATCH and "
				"DELETE");
		return 0;
	}
	s->job->head = strcmp(method, "HEAD") == 0;
	if (http_path(path, pathlen, s->job->path, sizeof(s->job->path), &r) !=
	    0)
		goto refused;
	content_length = http_framing(wsi, method, &r);
	if (content_length == -1)
		goto refused;
	if (http_job_fill(s->job, wsi, &r) != 0)
		goto refused;
	if (content_length == -2) {
		/* No body (RFC 9112 §6.3), but lws reads what follows as one:
		 * nothing more is read as a request on this connection. */
		s->close_after = true;
		content_length = 0;
	}
	if (content_length > w->cfg->max_body) {
		char detail[128];

		snprintf(detail, sizeof(detail),
			 "request bodies are limited to %ld bytes",
			 w->cfg->max_body);
		http_answer_now(s, wsi, 413, "payload-too-large", detail);
		return 0;
	}
	if (content_length > 0) {
		/* Sized once from the checked length: never realloc'd, so
		 * no stale copy of a token is left behind in the heap. */
		s->body_cap = (size_t)content_length + 1;
		s->body = calloc(1, s->body_cap);
		if (s->body == NULL) {
			s->body_cap = 0;
			http_answer_now(s, wsi, 503, "service-unavailable",
					"out of memory");
			return 0;
		}
		/* It continues in HTTP_BODY_COMPLETION. */
		return 0;
	}
	http_start_job(w, s);
	return 0;
refused:
	http_answer_now(s, wsi, r.status, r.slug, r.detail);
	return 0;
}

/*
 * An Upgrade request. The api listener never upgrades: it answers 400 at
 * once and closes. lws has answered an Upgrade other than websocket or h2c
 * itself (403) before this is called, so those are only closed. Upgrades
 * on the device listener are the channel's to accept or refuse.
 */
static int
http_confirm_upgrade(struct lws *wsi, const char *upgrade)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start;
	unsigned char *end = buf + sizeof(buf) - 1;
	char *body;
	size_t body_len;

	if (http_from_device_listener(wsi))
		return 0;
	if (upgrade == NULL || (strcasecmp(upgrade, "websocket") != 0 &&
				strcasecmp(upgrade, "h2c") != 0))
		return -1;
	body = http_problem_json(400, "upgrade-refused",
				 "the api listener does not upgrade "
				 "connections; websockets are served on the "
				 "device listener");
	if (body == NULL)
		return -1;
	body_len = strlen(body);
	/* No writeable callback comes for a connection about to upgrade, so
	 * this small answer is written here, as lws_return_http_status
	 * does, and the connection is closed after it. */
	if (lws_add_http_common_headers(wsi, 400, "application/problem+json",
					body_len, &p, end) == 0 &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p,
					 end) == 0 &&
	    lws_finalize_write_http_header(wsi, start, &p, end) == 0 &&
	    body_len < sizeof(buf) - LWS_PRE) {
		memcpy(start, body, body_len);
		(void)lws_write(wsi, start, body_len, LWS_WRITE_HTTP_FINAL);
	}
	log_write(LOG_LEVEL_INFO, "http", "upgrade to %.16s refused", upgrade);
	free(body);
	return -1;
}

/* ---- api connections as raw TLS sockets, parsed by h1.c --------------- */

/*
 * When the worker adopts api connections as raw TLS sockets
 * (LWS_ADOPT_SOCKET | LWS_ADOPT_ALLOW_SSL, protocol "http"), lws does the
 * TLS and nothing else: the request head is parsed by h1.c, which refuses
 * what lws's own parser drops or answers in HTML (%00, an over-long URL or
 * header, unknown methods and upgrades). The same path serves a CONNECT,
 * or with LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG an
 * unknown method, that lws gives up to protocols[0] as a raw socket: h1.c
 * answers it 501. One request at a time: reading stops while a request
 * runs (pipelined bytes wait in the input buffer), and a refusal closes.
 */

#define RAW_HEAD_TIMEOUT_S 10 /* from the first byte of a head */
#define RAW_BODY_TIMEOUT_S 30
#define RAW_IDLE_TIMEOUT_S 30 /* keep-alive */

/* Appends to the input buffer; past H1_HEAD_MAX the bytes are dropped
 * and the connection closes after the current answer. */
static void
raw_stash(struct http_session *s, const char *data, size_t len)
{
	size_t room;

	if (len == 0)
		return;
	if (s->in == NULL) {
		s->in = malloc(H1_HEAD_MAX);
		if (s->in == NULL) {
			s->raw_overflow = true;
			return;
		}
	}
	room = H1_HEAD_MAX - s->in_len;
	if (len > room) {
		s->raw_overflow = true;
		len = room;
	}
	memcpy(s->in + s->in_len, data, len);
	s->in_len += len;
}

/* Drops the first n buffered bytes; an idle connection keeps no buffer. */
static void
raw_consume(struct http_session *s, size_t n)
{
	OPENSSL_cleanse(s->in, n);
	memmove(s->in, s->in + n, s->in_len - n);
	s->in_len -= n;
	if (s->in_len == 0) {
		OPENSSL_cleanse(s->in, H1_HEAD_MAX); /* moved copies too */
		free(s->in);
		s->in = NULL;
	}
}

/* Builds the whole answer (head + body) for RAW_WRITEABLE. */
static int
raw_prepare(struct http_session *s)
{
	const struct api_response *resp = &s->job->resp;
	size_t body_len = s->job->head ? 0 : resp->body_len;
	struct buf h;
	int rc = 0;

	buf_init(&h, 4096);
	rc |= buf_printf(&h, "HTTP/1.1 %d %s\r\n", resp->status,
			 h1_reason(resp->status));
	if (resp->content_type != NULL)
		rc |= buf_printf(&h, "content-type: %s\r\n",
				 resp->content_type);
	rc |= buf_printf(&h, "content-length: %zu\r\n", resp->body_len);
	{
		/* RFC 9110 §6.6.1: an origin server with a clock sends Date. */
		char date[64];
		time_t now = time(NULL);
		struct tm tm;

		if (gmtime_r(&now, &tm) != NULL &&
		    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
			     &tm) > 0)
			rc |= buf_printf(&h, "date: %s\r\n", date);
	}
	if (resp->etag[0] != '\0')
		rc |= buf_printf(&h, "etag: \"%s\"\r\n", resp->etag);
	if (resp->location[0] != '\0')
		rc |= buf_printf(&h, "location: %s\r\n", resp->location);
	if (resp->allow[0] != '\0')
		rc |= buf_printf(&h, "allow: %s\r\n", resp->allow);
	rc |= buf_printf(&h,
			 "x-request-id: %s\r\ncache-control: no-store\r\n%s"
			 "\r\n",
			 s->job->request_id,
			 s->close_after ? "connection: close\r\n" : "");
	if (rc != 0) {
		buf_free(&h);
		return -1;
	}
	s->out_len = h.len + body_len;
	s->out = malloc(LWS_PRE + s->out_len);
	if (s->out == NULL) {
		buf_free(&h);
		return -1;
	}
	memcpy(s->out + LWS_PRE, h.data, h.len);
	if (body_len > 0)
		memcpy(s->out + LWS_PRE + h.len, resp->body, body_len);
	s->out_sent = 0;
	buf_free(&h);
	return 0;
}

static void
raw_out_free(struct http_session *s)
{
	if (s->out != NULL) {
		OPENSSL_cleanse(s->out, LWS_PRE + s->out_len);
		free(s->out);
	}
	s->out = NULL;
	s->out_len = s->out_sent = 0;
}

/* A refusal: answered, then closed; nothing more is read. */
static void
raw_refuse(struct lws *wsi, struct http_session *s, int status,
	   const char *slug, const char *detail)
{
	http_problem(&s->job->resp, status, slug, detail);
	s->answered = true;
	s->close_after = true;
	s->raw_phase = RAW_RUN;
	lws_rx_flow_control(wsi, 0);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	lws_callback_on_writable(wsi);
}

static void raw_feed(struct lws *wsi, struct worker *w, struct http_session *s,
		     const char *data, size_t len);

/* A parsed head: copy it into a job, then the body or the job. */
static void
raw_begin(struct lws *wsi, struct worker *w, struct http_session *s,
	  struct h1_request *req)
{
	struct http_job *job = s->job;

	snprintf(job->method, sizeof(job->method), "%s", req->method);
	job->head = strcmp(req->method, "HEAD") == 0;
	memcpy(job->path, req->path, sizeof(job->path));
	job->query = req->query;
	req->query = NULL;
	memcpy(job->authorization, req->authorization,
	       sizeof(job->authorization));
	memcpy(job->content_type, req->content_type, sizeof(job->content_type));
	memcpy(job->if_match, req->if_match, sizeof(job->if_match));
	memcpy(job->idempotency_key, req->idempotency_key,
	       sizeof(job->idempotency_key));
	s->close_after = !req->keep_alive || s->raw_overflow;
	if (w->stopping) {
		raw_refuse(wsi, s, 503, "service-unavailable",
			   "fleetd is stopping");
		return;
	}
	if (req->content_length > w->cfg->max_body) {
		char detail[128];

		snprintf(detail, sizeof(detail),
			 "request bodies are limited to %ld bytes",
			 w->cfg->max_body);
		raw_refuse(wsi, s, 413, "payload-too-large", detail);
		return;
	}
	s->body_len = 0;
	s->body_cap = 0;
	if (req->content_length > 0) {
		s->body_cap = (size_t)req->content_length + 1;
		s->body = calloc(1, s->body_cap);
		if (s->body == NULL) {
			s->body_cap = 0;
			raw_refuse(wsi, s, 503, "service-unavailable",
				   "out of memory");
			return;
		}
		s->raw_phase = RAW_BODY;
		s->raw_continue = req->expect_continue;
		if (s->raw_continue)
			lws_callback_on_writable(wsi);
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
				RAW_BODY_TIMEOUT_S);
		return;
	}
	s->raw_phase = RAW_RUN;
	lws_rx_flow_control(wsi, 0);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	http_start_job(w, s);
}

/* Feeds bytes from the network (or, with len 0, what is buffered). */
static void
raw_feed(struct lws *wsi, struct worker *w, struct http_session *s,
	 const char *data, size_t len)
{
	struct h1_request req;
	struct h1_error err;

	while (s->raw_phase != RAW_RUN) {
		if (s->raw_phase == RAW_BODY) {
			size_t want = s->body_cap - 1 - s->body_len, n;

			/* First what is buffered, then the new bytes. */
			n = s->in_len < want ? s->in_len : want;
			if (n > 0) {
				memcpy(s->body + s->body_len, s->in, n);
				s->body_len += n;
				raw_consume(s, n);
				want -= n;
			}
			n = len < want ? len : want;
			if (n > 0) {
				memcpy(s->body + s->body_len, data, n);
				s->body_len += n;
				data += n;
				len -= n;
				want -= n;
			}
			if (want > 0)
				return;
			s->body[s->body_len] = '\0';
			s->raw_phase = RAW_RUN;
			s->raw_continue = false;
			lws_rx_flow_control(wsi, 0);
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
			http_start_job(w, s);
			break;
		}
		/* RAW_HEAD */
		if (len > 0) {
			size_t room = H1_HEAD_MAX - s->in_len;
			size_t n = len < room ? len : room;

			raw_stash(s, data, n);
			data += n;
			len -= n;
		}
		if (s->in_len == 0)
			return;
		if (s->job == NULL) {
			s->job = http_job_new(w, wsi, NULL);
			if (s->job == NULL) {
				s->raw_phase = RAW_CLOSING;
				lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
						LWS_TO_KILL_ASYNC);
				return;
			}
			lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
					RAW_HEAD_TIMEOUT_S);
		}
		switch (h1_parse(s->in, s->in_len, &req, &err)) {
		case H1_INCOMPLETE:
			/* h1_parse refuses a full buffer itself (431). */
			return;
		case H1_ERROR:
			raw_refuse(wsi, s, err.status, err.slug, err.detail);
			return;
		case H1_OK:
			raw_consume(s, req.head_len);
			raw_begin(wsi, w, s, &req);
			h1_request_clear(&req);
			break;
		}
	}
	/* Running: later bytes wait (reading is paused; these are what
	 * was already read). */
	raw_stash(s, data, len);
}

/* RAW_WRITEABLE: 100 Continue, or the answer in chunks, then the next
 * request on a kept-alive connection. Returns -1 to close. */
static int
raw_writeable(struct lws *wsi, struct worker *w, struct http_session *s)
{
	size_t n;

	if (s->raw_phase == RAW_BODY && s->raw_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		unsigned char buf[LWS_PRE + sizeof(cont)];

		s->raw_continue = false;
		memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
		return lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1,
				 LWS_WRITE_RAW) == (int)(sizeof(cont) - 1)
			       ? 0
			       : -1;
	}
	if (s->raw_phase != RAW_RUN || s->job == NULL || s->job->in_pool)
		return 0;
	if (s->out == NULL && raw_prepare(s) != 0)
		return -1;
	n = s->out_len - s->out_sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	if (n > 0) {
		unsigned char *p =
			(unsigned char *)s->out + LWS_PRE + s->out_sent;

		/* LWS_PRE bytes before p are ours: the head room, or bytes
		 * already sent. */
		if (lws_write(wsi, p, n, LWS_WRITE_RAW) != (int)n)
			return -1;
		s->out_sent += n;
	}
	if (s->out_sent < s->out_len) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	http_log_request(s->job);
	raw_out_free(s);
	http_job_free(s->job);
	s->job = NULL;
	http_body_free(s->body, s->body_cap);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	if (s->close_after) {
		s->raw_phase = RAW_CLOSING;
		return -1;
	}
	/* Kept alive: the next request, maybe already buffered. */
	s->answered = false;
	s->started = false;
	s->raw_phase = RAW_HEAD;
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE,
			RAW_IDLE_TIMEOUT_S);
	lws_rx_flow_control(wsi, 1);
	raw_feed(wsi, w, s, NULL, 0);
	return 0;
}

static void
raw_close(struct http_session *s)
{
	if (s->job != NULL) {
		if (s->job->in_pool)
			s->job->wsi = NULL; /* freed when it comes back */
		else
			http_job_free(s->job);
		s->job = NULL;
	}
	http_body_free(s->body, s->body_cap);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	raw_out_free(s);
	if (s->in != NULL) {
		OPENSSL_cleanse(s->in, H1_HEAD_MAX);
		free(s->in);
	}
	s->in = NULL;
	s->in_len = 0;
}

static int
http_raw(struct lws *wsi, struct worker *w, enum lws_callback_reasons reason,
	 struct http_session *s, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		s->raw_phase = RAW_HEAD;
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE,
				RAW_IDLE_TIMEOUT_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		/* Never anything in the clear: lws hands a plaintext client
		 * on the TLS port to the raw protocol when the vhost falls
		 * back to raw. */
		if (lws_get_ssl(wsi) == NULL)
			return -1;
		if (s->raw_phase == RAW_CLOSING)
			return 0;
		raw_feed(wsi, w, s, in, len);
		if (in != NULL && len > 0)
			OPENSSL_cleanse(in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (lws_get_ssl(wsi) == NULL)
			return -1;
		return raw_writeable(wsi, w, s);
	case LWS_CALLBACK_RAW_CLOSE:
		raw_close(s);
		return 0;
	default:
		return 0;
	}
}

int
http_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		  void *in, size_t len)
{
	struct http_session *s = user;
	struct worker *w = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_begin(wsi, w, s, in, len);
	case LWS_CALLBACK_HTTP_BODY:
		if (s->job == NULL)
			return -1;
		if (!s->answered)
			http_body(s, in, len);
		else if (in != NULL && len > 0)
			OPENSSL_cleanse(in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s->job == NULL)
			return -1;
		if (s->answered)
			return 0;
		http_start_job(w, s);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s->job == NULL || s->job->in_pool)
			return 0;
		return http_writeable(wsi, s);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return http_confirm_upgrade(wsi, in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_ESTABLISHED:
		/* A websocket that fell back to this protocol (an unknown
		 * subprotocol): never. */
		return -1;
	case LWS_CALLBACK_RAW_ADOPT:
	case LWS_CALLBACK_RAW_RX:
	case LWS_CALLBACK_RAW_WRITEABLE:
	case LWS_CALLBACK_RAW_CLOSE:
		if (s == NULL)
			return -1;
		return http_raw(wsi, w, reason, s, in, len);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (s != NULL && s->job != NULL) {
			/* A job in the pool is freed when it comes back. */
			if (s->job->in_pool)
				s->job->wsi = NULL;
			else
				http_job_free(s->job);
			s->job = NULL;
		}
		if (s != NULL) {
			http_body_free(s->body, s->body_cap);
			s->body = NULL;
			s->body_len = s->body_cap = 0;
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
