/* SPDX-License-Identifier: Apache-2.0 */
/* GET /healthz: 200 while PostgreSQL answers, else 503. Job threads. */
#include "api/api_int.h"
#include "db/db.h"

void
api_health(struct api_call *c)
{
	PGresult *res;

	if (api_connect(c) != 0)
		return;
	res = PQexec(c->conn, "SELECT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
		return;
	}
	PQclear(res);
	api_json(c->resp, 200, json_pack("{s:s}", "status", "ok"));
}
