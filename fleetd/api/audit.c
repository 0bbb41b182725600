/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /api/v1/audit (viewer): the audit log, newest first, with the
 * actor's name beside its id and filters by actor (id or token name),
 * action (or a family "device.*"), target and time (since, until: RFC 3339
 * UTC). Job threads; the query string is untrusted.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/audit.h"

static json_t *
audit_doc(const struct audit_row *r)
{
	json_t *details = json_loads(r->details_json, 0, NULL);

	return json_pack(
		"{s:I, s:o, s:s, s:o, s:s, s:o, s:o}", "id", (json_int_t)r->id,
		"at", api_time(r->at), "actor", r->actor, "actor_name",
		r->actor_name ? json_string(r->actor_name) : json_null(),
		"action", r->action, "target",
		r->target ? json_string(r->target) : json_null(), "details",
		details ? details : json_object());
}

/* One text filter: 0 (absent or read into buf), -1 answered 400. */
static int
filter_param(struct api_call *c, const char *name, char *buf, size_t len,
	     const char **out)
{
	int rc = api_query_param(c->req->query, name, buf, len);

	*out = NULL;
	if (rc == 0)
		return 0;
	if (rc < 0) {
		api_problem_field(c->resp, name,
				  "at most 255 bytes, percent-encoded");
		return -1;
	}
	*out = buf;
	return 0;
}

static int
time_param(struct api_call *c, const char *name, int64_t *out)
{
	char buf[32];
	int rc = api_query_param(c->req->query, name, buf, sizeof(buf));

	*out = 0;
	if (rc == 0)
		return 0;
	if (rc > 0)
		*out = audit_time_parse(buf);
	if (rc < 0 || *out < 0) {
		api_problem_field(c->resp, name,
				  "a UTC time as 2026-12-01T09:00:00Z");
		return -1;
	}
	return 0;
}

/* The filters of the query into f (texts into the buffers). 0, or -1
 * answered 400. */
static int
filter_read(struct api_call *c, struct audit_filter *f,
	    char bufs[3][AUDIT_FILTER_TEXT_MAX + 1])
{
	const char *bad;

	memset(f, 0, sizeof(*f));
	if (filter_param(c, "actor", bufs[0], sizeof(bufs[0]), &f->actor) !=
		    0 ||
	    filter_param(c, "action", bufs[1], sizeof(bufs[1]), &f->action) !=
		    0 ||
	    filter_param(c, "target", bufs[2], sizeof(bufs[2]), &f->target) !=
		    0 ||
	    time_param(c, "since", &f->since) != 0 ||
	    time_param(c, "until", &f->until) != 0)
		return -1;
	bad = audit_filter_check(f);
	if (bad == NULL)
		return 0;
	if (strcmp(bad, "until") == 0)
		api_problem_field(c->resp, "until",
				  "until must be after since");
	else if (strcmp(bad, "action") == 0)
		api_problem_field(c->resp, "action",
				  "an action (device.update) or a family "
				  "ending in .* (device.*)");
	else
		api_problem_field(c->resp, bad,
				  "1..255 bytes without control characters");
	return -1;
}

void
api_audit(struct api_call *c, const char *rest)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	char bufs[3][AUDIT_FILTER_TEXT_MAX + 1];
	struct audit_filter filter;
	struct audit_row *rows = NULL;
	struct page page;
	json_t *items;
	size_t i, n = 0;
	bool bad = false;

	if (rest[0] != '\0') {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (strcmp(c->req->method, "GET") != 0) {
		api_method_not_allowed(c->resp, "GET");
		return;
	}
	if (filter_read(c, &filter, bufs) != 0)
		return;
	if (api_page_parse(c, PAGE_CURSOR_ID, &page, after) != 0)
		return;
	if (audit_list(c->ctx->store, &filter, &page, &rows, &n, next, &bad) !=
	    0) {
		if (bad)
			api_problem_field(c->resp, "cursor",
					  "not a cursor of this list");
		else
			api_store_failed(c);
		return;
	}
	items = json_array();
	for (i = 0; items != NULL && i < n; i++)
		if (json_array_append_new(items, audit_doc(&rows[i])) != 0) {
			json_decref(items);
			items = NULL;
		}
	audit_rows_free(rows, n);
	if (items == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return;
	}
	api_list(c, items, next);
}
