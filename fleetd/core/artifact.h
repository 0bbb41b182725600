/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifacts (issue 11, docs/internals/artifacts.md): a release's DSSE
 * envelope and the manifest fields fleetd copies out of it, and the
 * upload of its file. fleetd never verifies release signatures (it holds
 * no release key; agents do): what it checks is that the bytes uploaded
 * are exactly the ones the manifest names (size, then sha256), so it
 * never offers a file that no device would accept.
 *
 * The upload streams: artifact_upload reads the body from a source in
 * pieces, hashes it, and stores it in ARTIFACT_CHUNK_SIZE chunks through
 * the store port (core/store_artifacts.h), one chunk in memory at a time.
 * The blob becomes complete in the same unit of work as its last chunk,
 * and only when the sha256 matched; any failure removes the chunks.
 * Pure rules plus that loop; no I/O but the source and the store.
 */
#ifndef FLEETD_CORE_ARTIFACT_H
#define FLEETD_CORE_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define ARTIFACT_CHUNK_SIZE (1024u * 1024u) /* 1 MiB, artifact_blobs */
#define ARTIFACT_ID_LEN 37
#define ARTIFACT_SHA_LEN 65
#define ARTIFACT_NAME_MAX 128 /* PKI_RELEASE_NAME_MAX */
#define ARTIFACT_INSTALLER_MAX 64
#define ARTIFACT_HW_MAX 16
#define ARTIFACT_ENVELOPE_MAX (1024u * 1024u) /* PKI_DSSE_MAX_ENVELOPE */
/* artifact_max_size: default 4 GiB; no smaller than 1 MiB (tests), and
 * any value >= 2 GiB must work (issue 11). */
#define ARTIFACT_MAX_SIZE_DEFAULT (4ull * 1024 * 1024 * 1024)

enum artifact_rc {
	ARTIFACT_OK = 0,
	ARTIFACT_ERR_STORE = -1, /* see store_unavailable() */
	ARTIFACT_ERR_NOMEM = -2,
	ARTIFACT_NOTFOUND = 1,
	ARTIFACT_EXISTS, /* the same (name, version_int, sha256) */
	ARTIFACT_BLOB_MISMATCH, /* that sha256 is stored with another size */
	ARTIFACT_IN_USE, /* an unfinished deployment offers it */
	ARTIFACT_BUSY, /* another upload of the same file is running */
	ARTIFACT_TOO_LARGE, /* over artifact_max_size */
	ARTIFACT_SIZE_MISMATCH, /* Content-Length other than the manifest's */
	ARTIFACT_HASH_MISMATCH, /* the bytes' sha256 is not the manifest's */
	ARTIFACT_ABORTED, /* the client went away mid-way */
	ARTIFACT_IDEM_TAKEN, /* a concurrent request holds the key */
};

/* One release as stored. envelope and manifest are JSON texts
 * (malloc'd, artifact_clear frees them; NULL in lists). */
struct artifact {
	char id[ARTIFACT_ID_LEN];
	char sha256[ARTIFACT_SHA_LEN];
	char name[ARTIFACT_NAME_MAX + 1];
	char version[ARTIFACT_NAME_MAX + 1];
	int64_t version_int;
	char hw[ARTIFACT_HW_MAX][ARTIFACT_NAME_MAX + 1];
	size_t n_hw;
	char installer[ARTIFACT_INSTALLER_MAX + 1];
	uint64_t size;
	int64_t expires_at; /* epoch seconds */
	char created_by[80];
	int64_t created_at;
	bool ready; /* the blob is complete */
	char *envelope;
	char *manifest;
};

void artifact_clear(struct artifact *a);
void artifacts_free(struct artifact *items, size_t n);

/* "ready" or "uploading". */
const char *artifact_status(const struct artifact *a);

/* The body of an upload: length bytes (Content-Length) from read, which
 * fills up to cap bytes and returns the count, or <= 0 when the client
 * has gone (or the connection failed). */
struct artifact_source {
	long (*read)(void *arg, void *buf, size_t cap);
	void *arg;
	uint64_t length;
	uint64_t max_size; /* artifact_max_size */
};

/* What artifact_upload did. */
struct artifact_upload_result {
	bool already; /* the blob was complete before: nothing was read */
	uint64_t size; /* the manifest's (0 when the artifact is unknown) */
	uint64_t read; /* body bytes consumed */
	char sha256[ARTIFACT_SHA_LEN]; /* of what was read (when all was) */
};

/*
 * Size rules checked before a byte is read: ARTIFACT_TOO_LARGE when
 * length > max_size, ARTIFACT_SIZE_MISMATCH when length differs from the
 * manifest's size. Exposed for the unit tests.
 */
enum artifact_rc artifact_upload_check(const struct artifact *a,
				       uint64_t length, uint64_t max_size);

/*
 * PUT /api/v1/artifacts/{id}/file: reads the artifact, checks the sizes,
 * then streams src into chunks; the last one is stored with the blob
 * marked complete and the audit row "artifact.upload" (actor) only when
 * the sha256 matched. On any refusal after the first chunk, the chunks
 * are removed (a later upload starts over). A blob already complete reads
 * nothing (res->already). *out (artifact_clear) is the artifact after the
 * upload, on ARTIFACT_OK only.
 */
enum artifact_rc artifact_upload(struct store *st, const char *id,
				 const struct artifact_source *src,
				 const char *actor, struct artifact *out,
				 struct artifact_upload_result *res);

#endif
