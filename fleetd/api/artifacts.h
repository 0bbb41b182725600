/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one API request whose body is not collected in memory first:
 * PUT /api/v1/artifacts/{id}/file streams (docs/internals/artifacts.md).
 * The http layer asks api_artifacts_streamed() whether a request head is
 * that one, and then calls api_handle() with req->body_stream set instead
 * of a body: routing, authentication and roles are the same; the upload
 * handler reads the body from the stream as the event loop hands it over.
 */
#ifndef FLEETD_API_ARTIFACTS_H
#define FLEETD_API_ARTIFACTS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"

/* True for "PUT /api/v1/artifacts/<anything>/file". */
bool api_artifacts_streamed(const char *method, const char *path);

#endif
