/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenAPI 3.1 document of the API (assembled at build time from the
 * fragments in fleetd/api/openapi/ by build.py, embedded as bytes), the
 * router's tables as a list (for the coverage test), and the route
 * template of a raw path (for the metrics labels).
 * docs/internals/openapi.md.
 */
#ifndef FLEETD_API_OPENAPI_H
#define FLEETD_API_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

/* The document, NUL-terminated; api_openapi_doc_len excludes the NUL.
 * Generated (openapi_doc.c in the build tree). */
extern const unsigned char api_openapi_doc[];
extern const size_t api_openapi_doc_len;

/*
 * The router (api.c), for tests: the i-th path it serves, in the order it
 * tries them; NULL past the end. *exact is true when only that path is
 * served, false when the path and everything under it ("prefix/...") go
 * to one handler that routes the rest itself. *allow is the only method
 * of an exact path ("GET"), or NULL when the handler checks methods.
 */
const char *api_route_at(size_t i, bool *exact, const char **allow);

/* The route a decoded path falls to (an index for api_route_at), or -1
 * when the router answers 404 itself. */
int api_route_find(const char *path);

/*
 * The path template of the document that a decoded path matches
 * ("/api/v1/devices/{id}" for "/api/v1/devices/6f0c..."), or NULL when
 * none does. A template segment "{x}" matches any one non-empty segment;
 * a literal segment wins over a template one. The string is static.
 * Thread-safe; the first call parses the document.
 */
const char *api_openapi_template(const char *path);

#endif
