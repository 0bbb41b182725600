/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of fleetctl's configuration commands (see cfg.h): documents read
 * from files with a size limit and a strict parser, API calls with
 * If-Match / Idempotency-Key and the ETag kept, and -f spelled for the
 * command runner. What they print is in cfg_render.c.
 *
 * Runs in fleetctl on an operator's machine. The files are the
 * operator's; answers come from the server and are bounded by the HTTPS
 * client and sanitized before they reach the terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cfg.h"

/* ---- documents from files -------------------------------------------- */

json_t *
cfg_read_doc(const char *path, const char *what)
{
	FILE *f = NULL;
	struct buf b;
	json_error_t jerr;
	json_t *doc = NULL;
	char chunk[8192];
	size_t n;

	buf_init(&b, CFG_DOC_MAX);
	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (f == NULL) {
			ctl_fail("%s %s: %s", what, path, strerror(errno));
			goto out;
		}
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) != 0) {
			ctl_fail("%s %s: larger than %u KiB (the limit of a "
				 "configuration document)",
				 what, path, CFG_DOC_MAX / 1024);
			goto out;
		}
	}
	if (ferror(f)) {
		ctl_fail("%s %s: read error", what, path);
		goto out;
	}
	if (b.len == 0) {
		ctl_fail("%s %s: empty file (expected a JSON object)", what,
			 path);
		goto out;
	}
	doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		ctl_fail("%s %s: not JSON: %s at line %d", what, path,
			 jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(doc)) {
		ctl_fail("%s %s: the document must be a JSON object", what,
			 path);
		json_decref(doc);
		doc = NULL;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	buf_free(&b);
	return doc;
}

/* ---- API calls with headers -------------------------------------------- */

/* "412 Precondition Failed: detail (hint)" from a problem+json answer;
 * with weak, the hint only stands in for a missing detail. */
static void
report_problem(const struct https_response *r, const char *hint, bool weak)
{
	const char *title = NULL, *detail = NULL, *field = NULL;
	json_t *doc = NULL;
	char msg[1024];
	int n;

	if (r->content_type != NULL && strstr(r->content_type, "json") != NULL)
		doc = json_loadb(r->body, r->body_len, 0, NULL);
	if (json_is_object(doc)) {
		title = json_string_value(json_object_get(doc, "title"));
		detail = json_string_value(json_object_get(doc, "detail"));
		field = json_string_value(json_object_get(doc, "field"));
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
	if (weak && detail != NULL && detail[0] != '\0')
		hint = NULL;
	if (hint != NULL && n > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, " (%s)", hint);
	json_decref(doc);
	ctl_fail("%s", msg);
}

int
cfg_api(struct ctl *ctl, const char *method, const char *path, json_t *body,
	struct cfg_call *call, json_t **out)
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
	if (ctl->token == NULL || ctl->token[0] == '\0') {
		ctl_fail("no admin token: set FLEET_TOKEN or use --token");
		return -1;
	}
	if (strpbrk(ctl->token, "\r\n") != NULL ||
	    (size_t)snprintf(bearer, sizeof(bearer), "Bearer %s", ctl->token) >=
		    sizeof(bearer)) {
		ctl_fail("the admin token is malformed");
		goto out;
	}
	if (ctl_connect(ctl) != 0)
		goto out;
	hdrs[nh++] = (struct https_header){"Accept", "application/json"};
	hdrs[nh++] = (struct https_header){"User-Agent", "fleetctl"};
	hdrs[nh++] = (struct https_header){"Authorization", bearer};
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
		hdrs[nh++] = (struct https_header){"Content-Type",
						   "application/json"};
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
		if (resp.etag != NULL && strlen(resp.etag) < CFG_ETAG_MAX)
			memcpy(call->etag, resp.etag, strlen(resp.etag) + 1);
	}
	if (resp.status < 200 || resp.status > 299) {
		const char *hint = NULL;

		if (call != NULL && resp.status == 412)
			hint = call->on_412;
		else if (call != NULL && resp.status == 404)
			hint = call->on_404;
		if (call == NULL || !call->quiet)
			report_problem(&resp, hint, resp.status == 404);
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
	OPENSSL_cleanse(bearer, sizeof(bearer));
	json_decref(doc);
	free(text);
	https_response_free(&resp);
	return rc;
}

int
cfg_get(struct ctl *ctl, const char *path, const char *what404, json_t **out)
{
	struct cfg_call call;

	memset(&call, 0, sizeof(call));
	call.on_404 = what404;
	return cfg_api(ctl, "GET", path, NULL, &call, out);
}

int
cfg_get_quiet(struct ctl *ctl, const char *path, json_t **out)
{
	struct cfg_call call;

	memset(&call, 0, sizeof(call));
	call.quiet = true;
	return cfg_api(ctl, "GET", path, NULL, &call, out);
}

/* ---- argv -------------------------------------------------------------- */

char **
cfg_argv_file(int argc, char **argv)
{
	char **out = calloc((size_t)argc + 1, sizeof(*out));
	bool rest = false;

	if (out == NULL)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *prev = i > 0 ? argv[i - 1] : "";
		/* The value of an option ("--note -fixed") stays as it is:
		 * every long option of the profiles group but --help takes a
		 * value, and so does -o. */
		bool value = (strncmp(prev, "--", 2) == 0 && prev[2] != '\0' &&
			      strchr(prev, '=') == NULL &&
			      strcmp(prev, "--help") != 0) ||
			     strcmp(prev, "-o") == 0;
		struct buf b;

		rest = rest || strcmp(a, "--") == 0;
		buf_init(&b, 65536);
		if (!rest && !value && i > 0 && strncmp(a, "-f", 2) == 0)
			(void)buf_printf(&b, "--file%s%s",
					 a[2] != '\0' ? "=" : "", a + 2);
		else
			(void)buf_printf(&b, "%s", a);
		out[i] = buf_detach(&b, NULL);
		if (out[i] == NULL) {
			cfg_argv_free(i, out);
			return NULL;
		}
	}
	return out;
}

void
cfg_argv_free(int argc, char **argv)
{
	if (argv == NULL)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}
