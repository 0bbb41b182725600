/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request of an artifact download on the device listener, on plain
 * buffers (no I/O, no lws; download.c does the rest): `GET|HEAD
 * /artifacts/<sha256> HTTP/1.1` with Host, no body, and the Range and
 * If-Range fields this server serves (RFC 9110 §14, one range). All input
 * is untrusted.
 */
#ifndef FLEETD_CHANNEL_DOWNLOAD_REQ_H
#define FLEETD_CHANNEL_DOWNLOAD_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request head, at most (431 beyond; the channel's limit too). */
#define DOWNLOAD_HEAD_MAX 8192
#define DOWNLOAD_SHA256_HEX 64

struct download_req {
	bool head_only; /* HEAD */
	char sha256[DOWNLOAD_SHA256_HEX + 1]; /* lower-case hex */
	/* A Range this server serves (bytes=N-, N-M, -N; several ranges,
	 * another unit, bad syntax or an If-Range that does not hold leave
	 * it false: the whole body). */
	bool range;
	bool range_suffix; /* bytes=-N: range_last is N */
	uint64_t range_first, range_last; /* range_last UINT64_MAX: open */
	size_t head_len; /* bytes of the head, blank line included */
};

/* Whether a complete request head (head_len bytes, as received) asks for
 * an artifact: its method is HEAD, or it is `GET /artifacts/...`. */
bool download_is_request(const unsigned char *head, size_t head_len);

/*
 * Parses the request head at the start of buf. 0 and *out set, or the
 * status of a refusal (400, 404, 405, 431, 505) with *slug (the problem
 * type slug: artifact-path-invalid, bad-request, not-found,
 * method-not-allowed, http-version-not-supported) and *why (a short
 * reason); both static.
 */
int download_req_parse(const unsigned char *buf, size_t len,
		       struct download_req *out, const char **slug,
		       const char **why);

/* The answer to r for a blob of size bytes: 200 (first 0, last size - 1),
 * 206 (the bytes first..last, within the blob) or 416. */
int download_req_range(const struct download_req *r, uint64_t size,
		       uint64_t *first, uint64_t *last);

#endif
