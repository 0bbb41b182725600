/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /healthz (alive: 200 while the store answers, else 503) and
 * GET /readyz (ready to serve: the database answers, every migration this
 * build ships is applied, and the ca process answers; else 503 not-ready
 * naming what is not). Job threads; no input but the path.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/signer_port.h"
#include "core/store_health.h"
#include "core/store_ready.h"

#ifndef FLEET_SCHEMA_VERSIONS
#error "FLEET_SCHEMA_VERSIONS: the shipped migration numbers (CMake)"
#endif

static const int api_schema_versions[] = {FLEET_SCHEMA_VERSIONS};

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

static json_t *
ready_check(bool ok, const char *detail)
{
	json_t *check = json_pack("{s:b}", "ok", ok);

	if (check != NULL && !ok && detail != NULL)
		json_object_set_new(check, "detail", json_string(detail));
	return check;
}

/* The schema check: every shipped migration applied. */
static json_t *
ready_schema(struct api_call *c, bool db_ok, bool *ok)
{
	size_t n = sizeof(api_schema_versions) / sizeof(api_schema_versions[0]);
	size_t missing = 0;
	int first = 0;
	char detail[160];

	*ok = false;
	if (!db_ok)
		return ready_check(false, "not checked: no database");
	if (store_schema_missing(c->ctx->store, api_schema_versions, n,
				 &missing, &first) != STORE_OK)
		return ready_check(false, "cannot read schema_migrations");
	if (missing > 0) {
		snprintf(detail, sizeof(detail),
			 "%zu of the %zu migrations this fleetd ships are not "
			 "applied (first: %04d): run `fleetd migrate`",
			 missing, n, first);
		return ready_check(false, detail);
	}
	*ok = true;
	return ready_check(true, NULL);
}

/* The ca check: the ca process answers a ping (nothing is signed). */
static json_t *
ready_ca(struct api_call *c, bool *ok)
{
	char err[256] = "";

	*ok = signer_ping(c->ctx->signer, err, sizeof(err)) == SIGNER_OK;
	if (*ok)
		return ready_check(true, NULL);
	return ready_check(
		false, err[0] != '\0' ? err : "the ca process does not answer");
}

void
api_ready(struct api_call *c)
{
	bool db_ok = store_ping(c->ctx->store) == STORE_OK;
	bool schema_ok = false, ca_ok = false;
	json_t *checks;
	char detail[96];

	checks = json_pack("{s:o, s:o, s:o}", "database",
			   ready_check(db_ok, "the database is unreachable"),
			   "schema", ready_schema(c, db_ok, &schema_ok), "ca",
			   ready_ca(c, &ca_ok));
	if (checks == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return;
	}
	if (db_ok && schema_ok && ca_ok) {
		api_json(c->resp, 200,
			 json_pack("{s:s, s:o}", "status", "ready", "checks",
				   checks));
		return;
	}
	snprintf(detail, sizeof(detail), "not ready:%s%s%s",
		 db_ok ? "" : " database", schema_ok ? "" : " schema",
		 ca_ok ? "" : " ca");
	api_problem(c->resp, 503, "not-ready", detail);
	/* problem.c has no title for this type (not this file's table). */
	api_problem_member(c->resp, "title", json_string("Not ready"));
	api_problem_member(c->resp, "checks", checks);
}
