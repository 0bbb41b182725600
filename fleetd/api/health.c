/* SPDX-License-Identifier: Apache-2.0 */
/* GET /healthz: 200 while the store answers, else 503. Job threads. */
#include "api/api_int.h"
#include "core/store_health.h"

void
api_health(struct api_call *c)
{
	if (store_ping(c->ctx->store) != STORE_OK) {
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
		return;
	}
	api_json(c->resp, 200, json_pack("{s:s}", "status", "ok"));
}
