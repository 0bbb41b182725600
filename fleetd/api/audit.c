/* SPDX-License-Identifier: Apache-2.0 */
/* GET /api/v1/audit (viewer): the audit log, newest first. Job threads. */
#include <string.h>

#include "api/api_int.h"
#include "db/audit.h"

void
api_audit(struct api_call *c, const char *rest)
{
	char after[DB_CURSOR_MAX], next[DB_CURSOR_MAX];
	struct db_page page;
	json_t *items = NULL;

	if (rest[0] != '\0') {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (strcmp(c->req->method, "GET") != 0) {
		api_method_not_allowed(c->resp, "GET");
		return;
	}
	if (api_page(c, true, &page, after) != 0)
		return;
	if (audit_list(c->conn, &page, &items, next) != DB_OK) {
		api_db_failed(c);
		return;
	}
	api_list(c, items, next);
}
