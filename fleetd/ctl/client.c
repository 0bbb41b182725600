/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's API client: one HTTPS request per call (common/https.h),
 * bearer authentication, JSON bodies, problem+json errors turned into one
 * line ("403 Forbidden: role viewer may not ..."), and cursor pagination.
 * What the server sends is bounded by the HTTPS client and parsed with
 * jansson; strings shown to the user are sanitized by the printers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"

#define CTL_PAGE_SIZE 500
#define CTL_MAX_PAGES 100000 /* a server looping on cursors ends here */

int
ctl_connect(struct ctl *ctl)
{
	struct https_options opts;
	char err[HTTPS_ERR_MAX];

	if (ctl->https != NULL)
		return 0;
	if (https_url_parse(ctl->server, &ctl->url, err, sizeof(err)) != 0) {
		ctl_fail("--server: %s", err);
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.ca_file = ctl->ca;
	ctl->https = https_client_new(&opts, err, sizeof(err));
	if (ctl->https == NULL) {
		ctl_fail("%s", err);
		return -1;
	}
	return 0;
}

void
ctl_disconnect(struct ctl *ctl)
{
	https_client_free(ctl->https);
	ctl->https = NULL;
}

int
ctl_urlencode(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char enc[3];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
			if (buf_append(out, s, 1) != 0)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 15];
		if (buf_append(out, enc, 3) != 0)
			return -1;
	}
	return 0;
}

int
ctl_path_id(char *out, size_t outlen, const char *collection, const char *id,
	    const char *suffix)
{
	struct buf b;
	int rc = -1;

	buf_init(&b, outlen - 1);
	if (buf_printf(&b, "/api/v1/%s/", collection) == 0 &&
	    ctl_urlencode(&b, id) == 0 && buf_printf(&b, "%s", suffix) == 0) {
		memcpy(out, b.data, b.len + 1);
		rc = 0;
	}
	buf_free(&b);
	if (rc != 0)
		ctl_fail("identifier too long");
	return rc;
}

/*
 * "403 Forbidden: detail (hint)" from a problem+json body, or the status
 * line. With weak, the hint only stands in for a missing detail.
 */
static void
report_error(const struct https_response *r, bool have_token, const char *hint,
	     bool weak)
{
	const char *title = NULL, *detail = NULL, *field = NULL;
	json_t *doc = NULL, *cands = NULL;
	char msg[1024];
	size_t i;
	int n;

	if (r->content_type != NULL && strstr(r->content_type, "json") != NULL)
		doc = json_loadb(r->body, r->body_len, 0, NULL);
	if (json_is_object(doc)) {
		title = json_string_value(json_object_get(doc, "title"));
		detail = json_string_value(json_object_get(doc, "detail"));
		field = json_string_value(json_object_get(doc, "field"));
		cands = json_object_get(doc, "candidates");
	}
	if (title == NULL || title[0] == '\0')
		title = r->reason[0] != '\0' ? r->reason : "HTTP error";
	n = snprintf(msg, sizeof(msg), "%d %s", r->status, title);
	if (detail != NULL && detail[0] != '\0' && n > 0 &&
	    (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", detail);
	if (field != NULL &&
	    (detail == NULL || strstr(detail, field) == NULL) && n > 0 &&
	    (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, " (field %s)",
			      field);
	/* An ambiguous id prefix: the devices it may mean. */
	for (i = 0; json_is_array(cands) && i < json_array_size(cands) &&
		    n > 0 && (size_t)n < sizeof(msg);
	     i++) {
		const char *c = json_string_value(json_array_get(cands, i));

		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s%s",
			      i == 0 ? " (candidates: " : ", ",
			      c != NULL ? c : "?");
	}
	if (json_array_size(cands) > 0 && n > 0 && (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ")");
	if (r->status == 401 && !have_token && n > 0 && (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n,
			      " (no admin token: set FLEET_TOKEN or --token)");
	if (weak && detail != NULL && detail[0] != '\0')
		hint = NULL;
	if (hint != NULL && n > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, " (%s)", hint);
	json_decref(doc);
	ctl_fail("%s", msg);
}

static int
api_call(struct ctl *ctl, const char *method, const char *path, json_t *body,
	 const char *content_type, bool auth, struct ctl_call *call,
	 json_t **out)
{
	struct https_header hdrs[6];
	struct https_request req;
	struct https_response resp;
	char err[HTTPS_ERR_MAX], bearer[512];
	char *text = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	size_t nh = 0;
	int rc = -1;

	memset(&resp, 0, sizeof(resp));
	if (auth && (ctl->token == NULL || ctl->token[0] == '\0')) {
		ctl_fail("no admin token: set FLEET_TOKEN or use --token");
		return -1;
	}
	if (ctl_connect(ctl) != 0)
		return -1;
	hdrs[nh++] = (struct https_header){"Accept", "application/json"};
	hdrs[nh++] = (struct https_header){"User-Agent", "fleetctl"};
	if (auth) {
		if ((size_t)snprintf(bearer, sizeof(bearer), "Bearer %s",
				     ctl->token) >= sizeof(bearer) ||
		    strpbrk(ctl->token, "\r\n") != NULL) {
			ctl_fail("the admin token is malformed");
			return -1;
		}
		hdrs[nh++] = (struct https_header){"Authorization", bearer};
	}
	if (call != NULL && call->if_match != NULL)
		hdrs[nh++] = (struct https_header){"If-Match", call->if_match};
	if (call != NULL && call->idempotency_key != NULL)
		hdrs[nh++] = (struct https_header){"Idempotency-Key",
						   call->idempotency_key};
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			ctl_fail("out of memory");
			goto out;
		}
		req.body = text;
		req.body_len = strlen(text);
		hdrs[nh++] = (struct https_header){
			"Content-Type", content_type != NULL
						? content_type
						: "application/json"};
	}
	req.headers = hdrs;
	req.n_headers = nh;
	if (https_request(ctl->https, &ctl->url, &req, &resp, err,
			  sizeof(err)) != 0) {
		if (call == NULL || !call->quiet)
			ctl_fail("%s", err);
		goto out;
	}
	if (call != NULL) {
		call->status = resp.status;
		call->etag[0] = '\0';
		if (resp.etag != NULL && strlen(resp.etag) < CTL_ETAG_MAX)
			memcpy(call->etag, resp.etag, strlen(resp.etag) + 1);
	}
	if (resp.status < 200 || resp.status > 299) {
		const char *hint = NULL;

		if (call != NULL && resp.status == 412)
			hint = call->on_412;
		else if (call != NULL && resp.status == 404)
			hint = call->on_404;
		if (call == NULL || !call->quiet)
			report_error(&resp,
				     ctl->token != NULL &&
					     ctl->token[0] != '\0',
				     hint, resp.status == 404);
		goto out;
	}
	if (resp.body_len == 0) {
		doc = json_null();
	} else {
		doc = json_loadb(resp.body, resp.body_len, 0, &jerr);
		if (doc == NULL) {
			ctl_fail("%s %s: the server sent invalid JSON: %s",
				 method, path, jerr.text);
			goto out;
		}
	}
	if (out != NULL) {
		*out = doc;
		doc = NULL;
	}
	rc = 0;
out:
	if (auth)
		OPENSSL_cleanse(bearer, sizeof(bearer));
	json_decref(doc);
	/* The body may hold an enrollment token, the answer a new token. */
	ctl_free_wiped(text);
	if (resp.body != NULL)
		OPENSSL_cleanse(resp.body, resp.body_len);
	https_response_free(&resp);
	return rc;
}

int
ctl_api(struct ctl *ctl, const char *method, const char *path, json_t *body,
	const char *content_type, bool auth, json_t **out)
{
	return api_call(ctl, method, path, body, content_type, auth, NULL, out);
}

int
ctl_call(struct ctl *ctl, const char *method, const char *path, json_t *body,
	 struct ctl_call *call, json_t **out)
{
	return api_call(ctl, method, path, body, NULL, true, call, out);
}

int
ctl_api_list(struct ctl *ctl, const char *path, const char *query, size_t max,
	     json_t **items)
{
	return ctl_api_list_total(ctl, path, query, max, items, NULL, NULL);
}

int
ctl_api_list_total(struct ctl *ctl, const char *path, const char *query,
		   size_t max, json_t **items, long long *total, bool *exact)
{
	json_t *all = json_array(), *page = NULL;
	char *cursor = NULL;
	long page_size = CTL_PAGE_SIZE;
	struct buf url;
	int rc = -1;

	buf_init(&url, 8192);
	if (all == NULL)
		goto out;
	/* FLEETCTL_PAGE_SIZE exists so that tests can exercise paging. */
	if (getenv("FLEETCTL_PAGE_SIZE") != NULL &&
	    ctl_parse_long(getenv("FLEETCTL_PAGE_SIZE"), 1, 1000, &page_size) !=
		    0)
		page_size = CTL_PAGE_SIZE;
	for (size_t pages = 0; pages < CTL_MAX_PAGES; pages++) {
		size_t want = (size_t)page_size;
		json_t *list, *next;

		if (max > 0 && max - json_array_size(all) < want)
			want = max - json_array_size(all);
		buf_reset(&url);
		if (buf_printf(&url, "%s?%s%slimit=%zu", path, query,
			       query[0] != '\0' ? "&" : "", want) != 0 ||
		    (cursor != NULL && (buf_printf(&url, "&cursor=") != 0 ||
					ctl_urlencode(&url, cursor) != 0))) {
			ctl_fail("request URL too long");
			goto out;
		}
		if (ctl_api(ctl, "GET", url.data, NULL, NULL, true, &page) != 0)
			goto out;
		list = json_object_get(page, "items");
		next = json_object_get(page, "next_cursor");
		if (pages == 0 && total != NULL)
			*total = json_is_integer(json_object_get(page, "total"))
					 ? (long long)json_integer_value(
						   json_object_get(page,
								   "total"))
					 : -1;
		if (pages == 0 && exact != NULL)
			*exact = !json_is_false(
				json_object_get(page, "total_exact"));
		if (!json_is_array(list)) {
			ctl_fail("GET %s: the answer has no 'items' list",
				 path);
			goto out;
		}
		for (size_t i = 0; i < json_array_size(list); i++) {
			if (max > 0 && json_array_size(all) >= max)
				break;
			json_array_append(all, json_array_get(list, i));
		}
		if ((max > 0 && json_array_size(all) >= max) ||
		    !json_is_string(next) || json_array_size(list) == 0) {
			*items = all;
			all = NULL;
			rc = 0;
			goto out;
		}
		if (cursor != NULL &&
		    strcmp(cursor, json_string_value(next)) == 0) {
			ctl_fail("GET %s: the server repeated cursor '%s'",
				 path, cursor);
			goto out;
		}
		free(cursor);
		cursor = strdup(json_string_value(next));
		json_decref(page);
		page = NULL;
		if (cursor == NULL) {
			ctl_fail("out of memory");
			goto out;
		}
	}
	ctl_fail("GET %s: more than %d pages", path, CTL_MAX_PAGES);
out:
	json_decref(page);
	json_decref(all);
	free(cursor);
	buf_free(&url);
	return rc;
}
