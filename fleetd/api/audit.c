/* SPDX-License-Identifier: Apache-2.0 */
/* GET /api/v1/audit (viewer): the audit log, newest first. Job threads. */
#include <string.h>

#include "api/api_int.h"
#include "core/audit.h"

static json_t *
audit_doc(const struct audit_row *r)
{
	json_t *details = json_loads(r->details_json, 0, NULL);

	return json_pack("{s:I, s:o, s:s, s:s, s:o, s:o}", "id",
			 (json_int_t)r->id, "at", api_time(r->at), "actor",
			 r->actor, "action", r->action, "target",
			 r->target ? json_string(r->target) : json_null(),
			 "details", details ? details : json_object());
}

void
api_audit(struct api_call *c, const char *rest)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
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
	if (api_page_parse(c, PAGE_CURSOR_ID, &page, after) != 0)
		return;
	if (audit_list(c->ctx->store, &page, &rows, &n, next, &bad) != 0) {
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
