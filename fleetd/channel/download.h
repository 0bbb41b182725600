/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifact downloads on the device listener: `GET|HEAD /artifacts/<sha256>`
 * over the same mutual TLS as the agent channel (DESIGN.md §3, §5). A
 * connection whose first request is one of these is handed over by
 * channel.c and served here: the device's certificate is checked against
 * PostgreSQL like a session's, the blob must be complete and offered to
 * the device (a deployment_devices row), and the body streams with bounded
 * memory, from a verified local cache file (artifact_cache_dir) or chunk
 * by chunk from PostgreSQL. One Range (RFC 9110 §14) per request; the
 * connection closes after the answer. Runs on the worker's event loop,
 * storage work on the channel's job threads. The request is untrusted.
 * docs/internals/downloads.md has the rules and the reasons.
 */
#ifndef FLEETD_CHANNEL_DOWNLOAD_H
#define FLEETD_CHANNEL_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "channel/download_req.h"

struct channel;
struct download;
struct lws;

/* download_is_request(): download_req.h. */

/*
 * Takes over wsi (a verified TLS connection of the device listener) with
 * the request bytes received so far (copied) and answers it. cache_dir is
 * the artifact cache directory ("" or NULL: none; copied). NULL when out
 * of memory (drop the connection).
 */
struct download *download_start(struct channel *ch, struct lws *wsi,
				const char *peer, const unsigned char *in,
				size_t len, const char *cache_dir);

/* LWS_CALLBACK_RAW_RX of the connection: what the peer sends after its
 * request is ignored (bounded). 0, or -1 to drop the connection. */
int download_rx(struct download *d, const void *in, size_t len);

/* LWS_CALLBACK_RAW_WRITEABLE: writes the next piece. -1 closes. */
int download_writeable(struct download *d);

/* On the loop after the worker reloaded its revoked set: a download whose
 * certificate is now revoked or superseded is cut at once (its connection
 * reset, the bytes still queued dropped), as sessions are closed. */
struct revoked_set;
void download_check_revoked(struct download *d, struct revoked_set *set);

/* LWS_CALLBACK_RAW_CLOSE: the connection is gone; frees d now or, when a
 * job still runs, once it is back. */
void download_closed(struct download *d);

#endif
