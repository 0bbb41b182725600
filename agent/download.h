/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifact downloads for the update state machine (update.c): one file of
 * a known size and sha256 (the signed manifest's) fetched over HTTPS into
 * a partial file, resumed with `Range: bytes=N-` after a dropped
 * connection, a restart or a power loss. The server and the network are
 * untrusted: at most size - N bytes are read (more is `oversize`), the
 * whole download has a deadline and every attempt an idle limit (a server
 * that withholds the file ends in `download-timeout`), free space is
 * checked before the first byte (`no-space`), and the sha256 of the whole
 * file is checked before it is handed on (`hash-mismatch`). Blocking; runs
 * on the update worker thread.
 */
#ifndef FLEET_AGENT_DOWNLOAD_H
#define FLEET_AGENT_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dl_result {
	DL_OK = 0,
	DL_OVERSIZE, /* the server sent more than size bytes */
	DL_TIMEOUT, /* the deadline passed */
	DL_FAILED, /* failed for good after the retries */
	DL_NO_SPACE,
	DL_HASH_MISMATCH, /* size bytes arrived but not the manifest's */
	DL_CANCELLED, /* *cancel became true */
};

/* The protocol's reason code of a failure ("oversize", ...). */
const char *dl_result_reason(enum dl_result r);

struct dl_opts {
	const char *url; /* absolute https URL, or a path below base_url */
	const char *base_url; /* "https://host:port" for relative urls */
	const char *ca_file; /* the servers' CA bundle */
	const char *cert_file; /* the device's client certificate, or NULL */
	const char *key_file;
	const char *part_path; /* the partial file (kept between attempts) */
	uint64_t size; /* exactly this many bytes */
	const char *sha256; /* lowercase hex */
	long deadline_s; /* whole download, across attempts and retries */
	long stall_s; /* an attempt with no byte for this long ends */
	unsigned retries; /* transient failures before DL_FAILED */
	uint32_t backoff_base_ms; /* between attempts (full jitter) */
	/* Called with the bytes on disk after each piece (may be NULL). */
	void (*progress)(void *arg, uint64_t bytes);
	void *arg;
	volatile bool *cancel; /* polled; may be NULL */
};

/*
 * Downloads until part_path holds size bytes whose sha256 matches. On
 * DL_OVERSIZE and DL_HASH_MISMATCH the partial file is removed (its bytes
 * cannot be trusted); on DL_TIMEOUT, DL_FAILED and DL_CANCELLED it is kept
 * for a later resume. err gets one line for people.
 */
enum dl_result dl_fetch(const struct dl_opts *o, char *err, size_t errlen);

/* The sha256 of a file's first len bytes as lowercase hex. 0 or -1. */
int dl_file_sha256(const char *path, uint64_t len, char hex[65]);

#endif
