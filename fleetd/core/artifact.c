/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifacts: the upload loop and its rules (core/artifact.h). Runs on an
 * api job thread; the source is the request body as the event loop hands
 * it over (http/request.c), untrusted. Memory: one chunk buffer of
 * ARTIFACT_CHUNK_SIZE per upload, whatever the file's size.
 */
#include "core/artifact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/audit.h"
#include "core/store_artifacts.h"

void
artifact_clear(struct artifact *a)
{
	if (a == NULL)
		return;
	free(a->envelope);
	free(a->manifest);
	memset(a, 0, sizeof(*a));
}

void
artifacts_free(struct artifact *items, size_t n)
{
	if (items == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		artifact_clear(&items[i]);
	free(items);
}

const char *
artifact_status(const struct artifact *a)
{
	return a->ready ? "ready" : "uploading";
}

enum artifact_rc
artifact_upload_check(const struct artifact *a, uint64_t length,
		      uint64_t max_size)
{
	if (length > max_size)
		return ARTIFACT_TOO_LARGE;
	if (length != a->size)
		return ARTIFACT_SIZE_MISMATCH;
	return ARTIFACT_OK;
}

static void
hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Fills buf with exactly want bytes from src: 0, or -1 when the client
 * went away first. */
static int
read_full(const struct artifact_source *src, unsigned char *buf, size_t want,
	  uint64_t *total)
{
	size_t got = 0;

	while (got < want) {
		long n = src->read(src->arg, buf + got, want - got);

		if (n <= 0 || (size_t)n > want - got)
			return -1;
		got += (size_t)n;
		*total += (uint64_t)n;
	}
	return 0;
}

/* Streams the body into chunks; the blob's upload lock is held. */
static enum artifact_rc
upload_chunks(struct store *st, const struct artifact *a,
	      const struct artifact_source *src, const char *actor,
	      struct artifact_upload_result *res)
{
	unsigned char *chunk = NULL, md[32];
	EVP_MD_CTX *md_ctx = NULL;
	uint64_t left = a->size;
	uint32_t idx = 0;
	unsigned int mdlen = 0;
	enum artifact_rc rc = ARTIFACT_ERR_NOMEM;

	chunk = malloc(ARTIFACT_CHUNK_SIZE);
	md_ctx = EVP_MD_CTX_new();
	if (chunk == NULL || md_ctx == NULL ||
	    EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		size_t n = left > ARTIFACT_CHUNK_SIZE ? ARTIFACT_CHUNK_SIZE
						      : (size_t)left;

		if (read_full(src, chunk, n, &res->read) != 0) {
			rc = ARTIFACT_ABORTED;
			goto out;
		}
		if (EVP_DigestUpdate(md_ctx, chunk, n) != 1) {
			rc = ARTIFACT_ERR_NOMEM;
			goto out;
		}
		left -= n;
		if (left > 0) {
			rc = store_artifact_chunk_put(st, a->sha256, idx, chunk,
						      n);
			if (rc != ARTIFACT_OK)
				goto out;
			idx++;
			continue;
		}
		if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1 ||
		    mdlen != sizeof(md)) {
			rc = ARTIFACT_ERR_NOMEM;
			goto out;
		}
		hex(md, sizeof(md), res->sha256);
		if (strcmp(res->sha256, a->sha256) != 0) {
			rc = ARTIFACT_HASH_MISMATCH;
			goto out;
		}
		{
			struct audit_entry e = {.actor = actor,
						.action = "artifact.upload",
						.target = a->id};

			audit_add_str(&e, "sha256", a->sha256);
			audit_add_int(&e, "size", (int64_t)a->size);
			audit_add_int(&e, "chunks", (int64_t)idx + 1);
			rc = store_artifact_upload_finish(st, a->sha256, idx,
							  chunk, n, &e);
		}
		goto out;
	}
out:
	EVP_MD_CTX_free(md_ctx);
	if (chunk != NULL) {
		OPENSSL_cleanse(chunk, ARTIFACT_CHUNK_SIZE);
		free(chunk);
	}
	return rc;
}

enum artifact_rc
artifact_upload(struct store *st, const char *id,
		const struct artifact_source *src, const char *actor,
		struct artifact *out, struct artifact_upload_result *res)
{
	struct artifact a;
	bool complete = false;
	enum artifact_rc rc;

	memset(&a, 0, sizeof(a));
	memset(res, 0, sizeof(*res));
	rc = store_artifact_get(st, id, &a);
	if (rc != ARTIFACT_OK)
		goto out;
	res->size = a.size;
	if (a.ready) {
		res->already = true;
		goto done;
	}
	rc = artifact_upload_check(&a, src->length, src->max_size);
	if (rc != ARTIFACT_OK)
		goto out;
	rc = store_artifact_upload_begin(st, a.sha256, &complete);
	if (rc != ARTIFACT_OK)
		goto out;
	if (complete) {
		/* Another upload finished while this one waited. */
		store_artifact_upload_end(st, a.sha256, false);
		res->already = true;
		a.ready = true;
		goto done;
	}
	rc = upload_chunks(st, &a, src, actor, res);
	store_artifact_upload_end(st, a.sha256, rc != ARTIFACT_OK);
	if (rc != ARTIFACT_OK)
		goto out;
	a.ready = true;
done:
	*out = a;
	return ARTIFACT_OK;
out:
	artifact_clear(&a);
	return rc;
}
