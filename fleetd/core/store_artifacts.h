/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifacts part of the store port (core/artifact.h), implemented on
 * PostgreSQL by fleetd/db/artifacts.c (tables of migrations/0011). Each
 * function is one atomic unit of work; the mutating ones write their
 * audit row in it. Returns enum artifact_rc (ARTIFACT_ERR_STORE: see
 * store_unavailable()).
 *
 * An upload is a session: upload_begin takes the blob's upload lock (one
 * upload of a sha256 at a time, whatever the instance) and removes the
 * chunks of an earlier, unfinished upload; chunk_put stores one chunk and
 * commits it; upload_finish stores the last chunk, marks the blob
 * complete and writes the audit row in one transaction; upload_end
 * releases the lock and, when the upload failed, removes its chunks.
 */
#ifndef FLEETD_CORE_STORE_ARTIFACTS_H
#define FLEETD_CORE_STORE_ARTIFACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/artifact.h"
#include "core/audit.h"
#include "core/idempotency.h"
#include "core/page.h"
#include "core/store.h"

/* Creates a->id (caller-made uuid) and its blob row when the sha256 is
 * new, with audit "artifact.create"; a->ready is set from the blob.
 * ARTIFACT_EXISTS, ARTIFACT_BLOB_MISMATCH, ARTIFACT_IDEM_TAKEN. */
enum artifact_rc store_artifact_create(struct store *st, struct artifact *a,
				       const char *actor,
				       const struct idem_record *idem);

/* One artifact with its envelope and manifest. ARTIFACT_NOTFOUND. */
enum artifact_rc store_artifact_get(struct store *st, const char *id,
				    struct artifact *out);

/* One page, oldest first (cursor PAGE_CURSOR_TIME_ID), optionally only
 * those of a name and/or display version; without envelopes. */
enum artifact_rc store_artifact_list(struct store *st, const struct page *page,
				     const char *name, const char *version,
				     struct artifact **items, size_t *n,
				     char next[PAGE_CURSOR_MAX]);

/* Deletes the artifact (with the finished deployments that named it) and
 * its blob and chunks when no other artifact uses them; audit
 * "artifact.delete". ARTIFACT_NOTFOUND, ARTIFACT_IN_USE. */
enum artifact_rc store_artifact_delete(struct store *st, const char *id,
				       const char *actor);

/* ARTIFACT_BUSY when another upload holds the lock; *complete when the
 * blob is already complete (the lock is held either way). */
enum artifact_rc store_artifact_upload_begin(struct store *st,
					     const char *sha256,
					     bool *complete);
enum artifact_rc store_artifact_chunk_put(struct store *st, const char *sha256,
					  uint32_t idx, const void *data,
					  size_t len);
enum artifact_rc store_artifact_upload_finish(struct store *st,
					      const char *sha256, uint32_t idx,
					      const void *data, size_t len,
					      const struct audit_entry *audit);
void store_artifact_upload_end(struct store *st, const char *sha256,
			       bool failed);

#endif
