/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one API request whose body is not collected in memory first:
 * PUT /api/v1/artifacts/{id}/file streams (docs/internals/artifacts.md).
 * The http layer asks api_artifacts_streamed() whether a request head is
 * that one, and then calls api_handle_streamed() on the job thread
 * instead of api_handle(): routing, authentication and roles are the
 * same; the upload handler reads the body from stream as the event loop
 * hands it over.
 */
#ifndef FLEETD_API_ARTIFACTS_H
#define FLEETD_API_ARTIFACTS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"

struct api_body_stream {
	/* Up to cap bytes of the body: the count, or <= 0 when the client
	 * went away (blocks while nothing has arrived yet). */
	long (*read)(void *arg, void *buf, size_t cap);
	void *arg;
	uint64_t length; /* Content-Length */
	uint64_t max_size; /* artifact_max_size */
	bool *consumed; /* set when the handler read the whole body */
};

/* True for "PUT /api/v1/artifacts/<anything>/file". */
bool api_artifacts_streamed(const char *method, const char *path);

/* api_handle() with the body in stream (req->body is empty). */
void api_handle_streamed(struct api_ctx *ctx, const struct api_request *req,
			 const struct api_body_stream *stream,
			 struct api_response *resp);

#endif
