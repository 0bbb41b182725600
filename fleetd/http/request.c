/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP requests on the api listener, inside a net worker's event loop.
 * Headers and body are collected on the loop (bounded: max_body), the
 * request is handed to a job thread that runs api_handle(), and the answer
 * is written back in LWS_CALLBACK_HTTP_WRITEABLE. All input is untrusted.
 * A connection that closes while its job runs orphans the job; the loop
 * frees it when it comes back.
 */
#include "http/http.h"

#include "api/api_int.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "http/jobs.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_CHUNK 16384

struct http_job {
	struct job job;
	struct lws *wsi; /* NULL once the connection has closed */
	bool in_pool; /* owned by the job pool until done() */
	struct worker *worker;
	uint64_t started_ms;
	char method[8];
	char path[1024];
	char query[2048];
	char authorization[512];
	char content_type[128];
	char if_match[128];
	char idempotency_key[256];
	char request_id[32];
	char peer[64];
	char *body;
	size_t body_len;
	struct api_response resp;
};

struct http_session {
	struct http_job *job; /* being collected, in the pool, or answering */
	struct buf body;
	bool too_large;
	bool answered; /* an early answer (413, 405, 503) is queued */
	bool started; /* the job was handed out (lws may still report a
			  body completion for Content-Length: 0) */
	bool headers_sent;
	bool close_after;
	size_t sent;
};

size_t
http_session_size(void)
{
	return sizeof(struct http_session);
}

static void
http_job_free(struct http_job *job)
{
	if (job == NULL)
		return;
	free(job->body);
	api_response_free(&job->resp);
	free(job);
}

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

/* Copies a header; "" when absent or too long (the API then refuses it). */
static void
http_header(struct lws *wsi, enum lws_token_indexes token, char *out,
	    size_t outlen)
{
	int len = lws_hdr_total_length(wsi, token);

	out[0] = '\0';
	if (len <= 0 || (size_t)len >= outlen)
		return;
	if (lws_hdr_copy(wsi, out, (int)outlen, token) < 0)
		out[0] = '\0';
}

static void
http_custom_header(struct lws *wsi, const char *name, char *out, size_t outlen)
{
	int namelen = (int)strlen(name);
	int len = lws_hdr_custom_length(wsi, name, namelen);

	out[0] = '\0';
	if (len <= 0 || (size_t)len >= outlen)
		return;
	if (lws_hdr_custom_copy(wsi, out, (int)outlen, name, namelen) < 0)
		out[0] = '\0';
}

/* lws has already percent-decoded each "name=value"; encode it again. */
static void
http_query(struct lws *wsi, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	char frag[1024];
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < 32; i++) {
		int n = lws_hdr_copy_fragment(wsi, frag, (int)sizeof(frag),
					      WSI_TOKEN_HTTP_URI_ARGS, i);
		bool in_value = false;

		if (n < 0)
			break;
		if (o > 0 && o + 1 < outlen)
			out[o++] = '&';
		for (int j = 0; j < n && o + 4 < outlen; j++) {
			unsigned char c = (unsigned char)frag[j];

			if (c == '=' && !in_value) {
				in_value = true;
				out[o++] = '=';
			} else if ((c >= 'a' && c <= 'z') ||
				   (c >= 'A' && c <= 'Z') ||
				   (c >= '0' && c <= '9') || c == '-' ||
				   c == '_' || c == '.' || c == '~') {
				out[o++] = (char)c;
			} else {
				out[o++] = '%';
				out[o++] = hex[c >> 4];
				out[o++] = hex[c & 15];
			}
		}
		out[o] = '\0';
	}
}

static struct http_job *
http_job_new(struct worker *w, struct lws *wsi, const char *path)
{
	struct http_job *job = calloc(1, sizeof(*job));
	const char *method = http_method(wsi);

	if (job == NULL)
		return NULL;
	job->wsi = wsi;
	job->worker = w;
	job->started_ms = clock_mono_ms();
	snprintf(job->method, sizeof(job->method), "%s",
		 method != NULL ? method : "");
	snprintf(job->path, sizeof(job->path), "%s", path);
	http_query(wsi, job->query, sizeof(job->query));
	http_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, job->authorization,
		    sizeof(job->authorization));
	http_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, job->content_type,
		    sizeof(job->content_type));
	http_header(wsi, WSI_TOKEN_HTTP_IF_MATCH, job->if_match,
		    sizeof(job->if_match));
	http_custom_header(wsi, "idempotency-key:", job->idempotency_key,
			   sizeof(job->idempotency_key));
	snprintf(job->request_id, sizeof(job->request_id), "w%d-%llu", w->slot,
		 (unsigned long long)++w->request_seq);
	lws_get_peer_simple(wsi, job->peer, sizeof(job->peer));
	return job;
}

static void
http_job_run(struct job *j, void *state)
{
	struct http_job *job = (struct http_job *)j;
	struct api_ctx *ctx = state;
	struct api_request req = {
		.method = job->method,
		.path = job->path,
		.query = job->query,
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
	job->body = buf_detach(&s->body, &job->body_len);
	job->job.run = http_job_run;
	job->job.done = http_job_done;
	job->in_pool = true;
	if (job->body == NULL || !job_pool_submit(w->jobs, &job->job)) {
		job->in_pool = false;
		api_problem(&job->resp, 503, "service-unavailable",
			    "this worker is overloaded; retry later");
		lws_callback_on_writable(job->wsi);
	}
}

/* Answers at once, without a job (413, 405 and the like). */
static void
http_answer_now(struct http_session *s, struct lws *wsi, int status,
		const char *slug, const char *detail)
{
	api_problem(&s->job->resp, status, slug, detail);
	s->answered = true;
	s->close_after = true;
	lws_callback_on_writable(wsi);
}

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
		  job->path, job->resp.status,
		  (unsigned long long)(clock_mono_ms() - job->started_ms),
		  job->peer);
}

/* Returns -1 to close the connection, 0 to go on. */
static int
http_writeable(struct lws *wsi, struct http_session *s)
{
	struct api_response *resp = &s->job->resp;
	unsigned char buf[LWS_PRE + HTTP_CHUNK];
	size_t n;
	enum lws_write_protocol mode = LWS_WRITE_HTTP;
	bool close_after = s->close_after;

	if (!s->headers_sent) {
		if (http_write_headers(wsi, s) != 0)
			return -1;
		if (resp->body_len > 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	n = resp->body_len - s->sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	if (s->sent + n == resp->body_len)
		mode = LWS_WRITE_HTTP_FINAL;
	if (n > 0) {
		memcpy(buf + LWS_PRE, resp->body + s->sent, n);
		if (lws_write(wsi, buf + LWS_PRE, n, mode) != (int)n)
			return -1;
		s->sent += n;
	}
	if (s->sent < resp->body_len) {
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

static void
http_session_reset(struct http_session *s, size_t max_body)
{
	buf_free(&s->body);
	memset(s, 0, sizeof(*s));
	buf_init(&s->body, max_body);
}

/* Past the limit the rest is read and dropped, then 413 is answered. */
static void
http_body(struct http_session *s, const void *in, size_t len)
{
	if (!s->too_large && buf_append(&s->body, in, len) != 0) {
		s->too_large = true;
		buf_free(&s->body);
	}
}

static long
http_content_length(struct lws *wsi)
{
	char text[32];

	http_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, text, sizeof(text));
	if (text[0] == '\0')
		return -1;
	return strtol(text, NULL, 10);
}

static int
http_begin(struct lws *wsi, struct worker *w, struct http_session *s,
	   const char *path)
{
	long content_length;

	http_session_reset(s, (size_t)w->cfg->max_body);
	s->job = http_job_new(w, wsi, path);
	if (s->job == NULL)
		return -1;
	if (w->stopping) {
		http_answer_now(s, wsi, 503, "service-unavailable",
				"fleetd is stopping");
		return 0;
	}
	if (s->job->method[0] == '\0') {
		http_answer_now(s, wsi, 405, "method-not-allowed",
				"this method is not supported");
		return 0;
	}
	content_length = http_content_length(wsi);
	if (content_length > w->cfg->max_body) {
		char detail[128];

		snprintf(detail, sizeof(detail),
			 "request bodies are limited to %ld bytes",
			 w->cfg->max_body);
		http_answer_now(s, wsi, 413, "payload-too-large", detail);
		return 0;
	}
	/* Requests with a body continue in HTTP_BODY_COMPLETION. */
	if (content_length <= 0)
		http_start_job(w, s);
	return 0;
}

int
http_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		  void *in, size_t len)
{
	struct http_session *s = user;
	struct worker *w = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_begin(wsi, w, s, in);
	case LWS_CALLBACK_HTTP_BODY:
		if (s->job == NULL)
			return -1;
		if (!s->answered)
			http_body(s, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s->job == NULL)
			return -1;
		if (s->answered)
			return 0;
		if (s->too_large) {
			char detail[128];

			snprintf(detail, sizeof(detail),
				 "request bodies are limited to %ld bytes",
				 w->cfg->max_body);
			http_answer_now(s, wsi, 413, "payload-too-large",
					detail);
			return 0;
		}
		http_start_job(w, s);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s->job == NULL || s->job->in_pool)
			return 0;
		return http_writeable(wsi, s);
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
		if (s != NULL)
			buf_free(&s->body);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
