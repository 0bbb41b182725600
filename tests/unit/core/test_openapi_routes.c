/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The router (api_route_at/api_route_find in fleetd/api/api.c) and the
 * embedded OpenAPI document (fleetd/api/openapi/) describe the same API:
 * - every route the router knows has a path in the document (an exact
 *   route its own path, with exactly the one method it serves; a prefix
 *   route its prefix or a path under it);
 * - every path of the document, with its templates filled in, falls to a
 *   route (an exact route only for its own path);
 * - the template lookup used for metric labels finds each path's own
 *   template for a filled-in path, and nothing for an unrouted one.
 * The routes inside a prefix handler are checked by the integration
 * tests, which validate every answer against the document
 * (tests/lib/oas_validate.js).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/openapi.h"

static const char *const methods[] = {"get",   "put",  "post",	  "delete",
				      "patch", "head", "options", "trace"};

static json_t *
load_paths(void)
{
	json_error_t err;
	json_t *doc = json_loadb((const char *)api_openapi_doc,
				 api_openapi_doc_len, 0, &err);

	if (doc == NULL)
		fail_msg("the embedded document is not JSON: %s", err.text);
	assert_string_equal(json_string_value(json_object_get(doc, "openapi")),
			    "3.1.0");
	assert_true(json_is_object(json_object_get(doc, "paths")));
	return doc;
}

/* "/api/v1/devices/{id}/x" -> a path the router would see. */
static void
fill_template(const char *tpl, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = tpl; *p != '\0' && o + 40 < outlen; p++) {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			const char *v = "0f8fad5b-d9cb-469f-a165-70867728950e";

			assert_non_null(end);
			o += (size_t)snprintf(out + o, outlen - o, "%s", v);
			p = end;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

static void
test_every_route_is_documented(void **state)
{
	json_t *doc = load_paths();
	json_t *paths = json_object_get(doc, "paths");
	const char *allow = NULL;
	bool exact = false;
	const char *route;
	size_t i, n = 0;

	(void)state;
	for (i = 0; (route = api_route_at(i, &exact, &allow)) != NULL; i++) {
		const char *key;
		json_t *item;
		bool found = false;

		n++;
		if (exact) {
			item = json_object_get(paths, route);
			if (item == NULL)
				fail_msg("route %s is not in the OpenAPI "
					 "document",
					 route);
			/* Exactly the one method it serves. */
			for (size_t m = 0;
			     m < sizeof(methods) / sizeof(*methods); m++) {
				bool has = json_object_get(item, methods[m]) !=
					   NULL;
				bool serves =
					allow != NULL &&
					strcasecmp(allow, methods[m]) == 0;

				if (has != serves)
					fail_msg("%s: the document %s %s, the "
						 "router %s it",
						 route, has ? "has" : "lacks",
						 methods[m],
						 serves ? "serves" : "refuses");
			}
			continue;
		}
		json_object_foreach(paths, key, item)
		{
			size_t len = strlen(route);

			if (strncmp(key, route, len) == 0 &&
			    (key[len] == '\0' || key[len] == '/'))
				found = true;
		}
		if (!found)
			fail_msg("route %s (and everything under it) has no "
				 "path in the OpenAPI document",
				 route);
	}
	assert_true(n >= 8);
	json_decref(doc);
}

static void
test_every_documented_path_is_routed(void **state)
{
	json_t *doc = load_paths();
	json_t *paths = json_object_get(doc, "paths");
	const char *key;
	json_t *item;

	(void)state;
	json_object_foreach(paths, key, item)
	{
		char path[1024];
		const char *allow = NULL;
		bool exact = false;
		const char *route;
		int r;

		fill_template(key, path, sizeof(path));
		r = api_route_find(path);
		if (r < 0)
			fail_msg("%s is in the OpenAPI document but the router "
				 "answers 404 for %s",
				 key, path);
		route = api_route_at((size_t)r, &exact, &allow);
		assert_non_null(route);
		if (exact && strcmp(route, path) != 0)
			fail_msg("%s falls to the exact route %s", key, route);
		/* Metric labels: the path's own template. */
		assert_non_null(api_openapi_template(path));
		assert_string_equal(api_openapi_template(path), key);
		/* Every operation names its answers. */
		for (size_t m = 0; m < sizeof(methods) / sizeof(*methods);
		     m++) {
			json_t *op = json_object_get(item, methods[m]);

			if (op != NULL && json_object_size(json_object_get(
						  op, "responses")) == 0)
				fail_msg("%s %s lists no responses", methods[m],
					 key);
		}
	}
	json_decref(doc);
}

static void
test_unrouted_paths(void **state)
{
	(void)state;
	assert_int_equal(api_route_find("/nope"), -1);
	assert_int_equal(api_route_find("/api/v1/nope"), -1);
	assert_int_equal(api_route_find("/healthzz"), -1);
	assert_int_equal(api_route_find("/healthz/x"), -1);
	assert_null(api_openapi_template("/nope"));
	assert_null(api_openapi_template("/api/v1/devices/"));
	assert_null(api_openapi_template(""));
	/* A literal segment wins over a template one. */
	assert_string_equal(api_openapi_template("/api/v1/openapi.json"),
			    "/api/v1/openapi.json");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_route_is_documented),
		cmocka_unit_test(test_every_documented_path_is_routed),
		cmocka_unit_test(test_unrouted_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
