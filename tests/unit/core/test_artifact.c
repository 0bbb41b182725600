/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/artifact.c: artifact_upload over an in-memory fake of the store
 * port (core/store_artifacts.h). The source hands the body over in pieces
 * of awkward sizes; the fake keeps the chunks and records every call, so
 * the tests check what a user relies on: the file is stored exactly
 * (chunks of 1 MiB, reassembled they hash to the manifest's sha256), the
 * blob is completed with its last chunk and the audit row only on a
 * match, and every refusal (size, too large, hash, disconnect, store
 * failure, busy) ends the upload with its chunks removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "core/artifact.h"
#include "core/audit.h"
#include "core/store_artifacts.h"
#include "core/store_audit.h"

#define MIB (1024u * 1024u)
#define MAX_CHUNKS 8

/* ---- the fake store ------------------------------------------------------- */

static struct {
	struct artifact art; /* what store_artifact_get finds */
	bool have;
	bool busy;
	bool complete_at_begin;
	int fail_chunk; /* chunk_put fails at this idx (-1: never) */
	unsigned char *chunks[MAX_CHUNKS];
	size_t chunk_len[MAX_CHUNKS];
	int begins, puts, finishes, ends, ends_failed;
	bool completed;
	char audit_action[64];
} fs;

static void
fake_reset(void)
{
	for (int i = 0; i < MAX_CHUNKS; i++)
		free(fs.chunks[i]);
	memset(&fs, 0, sizeof(fs));
	fs.fail_chunk = -1;
}

static void
drop_chunks(void)
{
	for (int i = 0; i < MAX_CHUNKS; i++) {
		free(fs.chunks[i]);
		fs.chunks[i] = NULL;
		fs.chunk_len[i] = 0;
	}
}

enum artifact_rc
store_artifact_get(struct store *st, const char *id, struct artifact *out)
{
	(void)st;
	if (!fs.have || strcmp(id, fs.art.id) != 0)
		return ARTIFACT_NOTFOUND;
	*out = fs.art;
	out->envelope = NULL;
	out->manifest = NULL;
	out->ready = fs.completed;
	return ARTIFACT_OK;
}

enum artifact_rc
store_artifact_upload_begin(struct store *st, const char *sha256,
			    bool *complete)
{
	(void)st;
	assert_string_equal(sha256, fs.art.sha256);
	fs.begins++;
	if (fs.busy)
		return ARTIFACT_BUSY;
	*complete = fs.complete_at_begin;
	if (!*complete)
		drop_chunks();
	return ARTIFACT_OK;
}

static enum artifact_rc
keep(uint32_t idx, const void *data, size_t len)
{
	assert_true(idx < MAX_CHUNKS);
	assert_null(fs.chunks[idx]);
	fs.chunks[idx] = malloc(len);
	assert_non_null(fs.chunks[idx]);
	memcpy(fs.chunks[idx], data, len);
	fs.chunk_len[idx] = len;
	return ARTIFACT_OK;
}

enum artifact_rc
store_artifact_chunk_put(struct store *st, const char *sha256, uint32_t idx,
			 const void *data, size_t len)
{
	(void)st;
	(void)sha256;
	fs.puts++;
	assert_int_equal(len, ARTIFACT_CHUNK_SIZE); /* only the last is short */
	if ((int)idx == fs.fail_chunk)
		return ARTIFACT_ERR_STORE;
	return keep(idx, data, len);
}

enum artifact_rc
store_artifact_upload_finish(struct store *st, const char *sha256, uint32_t idx,
			     const void *data, size_t len,
			     const struct audit_entry *audit)
{
	(void)st;
	(void)sha256;
	fs.finishes++;
	keep(idx, data, len);
	fs.completed = true;
	snprintf(fs.audit_action, sizeof(fs.audit_action), "%s", audit->action);
	return ARTIFACT_OK;
}

void
store_artifact_upload_end(struct store *st, const char *sha256, bool failed)
{
	(void)st;
	(void)sha256;
	fs.ends++;
	if (failed) {
		fs.ends_failed++;
		drop_chunks();
	}
}

/* core/audit.c (linked for audit_add_*) also lists; never called here. */
enum store_rc
store_audit_list(struct store *st, const struct audit_filter *f,
		 const struct page *page, struct audit_row **rows, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	(void)st;
	(void)f;
	(void)page;
	(void)rows;
	(void)n;
	(void)next;
	fail_msg("store_audit_list called");
	return STORE_ERR;
}

/* ---- the source ------------------------------------------------------------ */

struct src {
	const unsigned char *data;
	size_t len, pos;
	size_t fail_at; /* returns -1 once pos reaches this (0: never) */
	unsigned step;
};

static long
src_read(void *arg, void *buf, size_t cap)
{
	struct src *s = arg;
	/* Pieces of 1, 7, 4093, 65536, 200003 bytes in turn. */
	static const size_t sizes[] = {1, 7, 4093, 65536, 200003};
	size_t n = sizes[s->step++ % 5];

	if (s->fail_at > 0 && s->pos >= s->fail_at)
		return -1;
	if (n > cap)
		n = cap;
	if (n > s->len - s->pos)
		n = s->len - s->pos;
	if (n == 0)
		return 0;
	memcpy(buf, s->data + s->pos, n);
	s->pos += n;
	return (long)n;
}

static unsigned char *
pattern(size_t len)
{
	unsigned char *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 2654435761u) >> 13);
	return p;
}

static void
sha_hex(const unsigned char *p, size_t len, char out[65])
{
	unsigned char md[32];

	SHA256(p, len, md);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* An artifact of len bytes whose manifest names data's sha256. */
static void
setup_artifact(const unsigned char *data, size_t len)
{
	fake_reset();
	fs.have = true;
	snprintf(fs.art.id, sizeof(fs.art.id),
		 "0b7c8d2e-4f1a-4c3b-9d5e-6f7a8b9c0d1e");
	sha_hex(data, len, fs.art.sha256);
	fs.art.size = len;
}

static enum artifact_rc
run(struct src *s, uint64_t length, uint64_t max, struct artifact *out,
    struct artifact_upload_result *res)
{
	struct artifact_source src = {src_read, s, length, max};

	memset(out, 0, sizeof(*out));
	return artifact_upload(NULL, fs.art.id, &src, "token:t", out, res);
}

/* The chunks put back together hash to want. */
static void
assert_stored(const char *want, size_t len)
{
	unsigned char *all = malloc(len > 0 ? len : 1);
	size_t off = 0;
	char got[65];

	assert_non_null(all);
	for (int i = 0; i < MAX_CHUNKS && fs.chunks[i] != NULL; i++) {
		memcpy(all + off, fs.chunks[i], fs.chunk_len[i]);
		off += fs.chunk_len[i];
	}
	assert_int_equal(off, len);
	sha_hex(all, len, got);
	assert_string_equal(got, want);
	free(all);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_upload_sizes(void **state)
{
	/* Shorter than a chunk, exactly one, several plus a tail, an exact
	 * multiple. */
	static const size_t lens[] = {1, 1000, MIB, 2 * MIB + 12345, 3 * MIB};

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		unsigned char *data = pattern(lens[i]);
		struct src s = {data, lens[i], 0, 0, 0};
		struct artifact out;
		struct artifact_upload_result res;
		size_t nchunks = (lens[i] + MIB - 1) / MIB;

		setup_artifact(data, lens[i]);
		assert_int_equal(
			run(&s, lens[i], 4ull * MIB * 1024, &out, &res),
			ARTIFACT_OK);
		assert_true(out.ready);
		assert_false(res.already);
		assert_int_equal(res.read, lens[i]);
		assert_string_equal(res.sha256, fs.art.sha256);
		assert_int_equal(fs.puts, (int)nchunks - 1);
		assert_int_equal(fs.finishes, 1);
		assert_int_equal(fs.ends, 1);
		assert_int_equal(fs.ends_failed, 0);
		assert_string_equal(fs.audit_action, "artifact.upload");
		assert_stored(fs.art.sha256, lens[i]);
		artifact_clear(&out);
		free(data);
	}
	fake_reset();
}

struct refusal {
	const char *what;
	size_t len; /* of the manifest */
	uint64_t length; /* Content-Length */
	uint64_t max;
	bool corrupt; /* flip a byte in the middle */
	size_t fail_at; /* the client goes away here */
	int fail_chunk;
	bool busy;
	enum artifact_rc want;
	bool began; /* the upload lock was taken (and released) */
};

static void
test_refusals(void **state)
{
	static const struct refusal cases[] = {
		{"Content-Length other than the manifest's size", 2 * MIB,
		 2 * MIB - 1, 8 * MIB, false, 0, -1, false,
		 ARTIFACT_SIZE_MISMATCH, false},
		{"Content-Length of 0", 100, 0, 8 * MIB, false, 0, -1, false,
		 ARTIFACT_SIZE_MISMATCH, false},
		{"over artifact_max_size", 2 * MIB, 2 * MIB, 2 * MIB - 1, false,
		 0, -1, false, ARTIFACT_TOO_LARGE, false},
		{"a byte changed", 2 * MIB + 5, 2 * MIB + 5, 8 * MIB, true, 0,
		 -1, false, ARTIFACT_HASH_MISMATCH, true},
		{"the client goes away after 1.5 MiB", 3 * MIB, 3 * MIB,
		 8 * MIB, false, MIB + MIB / 2, -1, false, ARTIFACT_ABORTED,
		 true},
		{"PostgreSQL fails on the second chunk", 3 * MIB, 3 * MIB,
		 8 * MIB, false, 0, 1, false, ARTIFACT_ERR_STORE, true},
		{"another upload runs", MIB, MIB, 8 * MIB, false, 0, -1, true,
		 ARTIFACT_BUSY, true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *tc = &cases[i];
		unsigned char *data = pattern(tc->len);
		struct src s = {data, tc->len, 0, tc->fail_at, 0};
		struct artifact out;
		struct artifact_upload_result res;
		enum artifact_rc rc;

		setup_artifact(data, tc->len);
		fs.fail_chunk = tc->fail_chunk;
		fs.busy = tc->busy;
		if (tc->corrupt)
			data[tc->len / 2] ^= 1;
		rc = run(&s, tc->length, tc->max, &out, &res);
		if (rc != tc->want)
			fail_msg("%s: %d, want %d", tc->what, rc, tc->want);
		assert_false(fs.completed);
		assert_int_equal(fs.finishes, 0);
		assert_int_equal(fs.begins, tc->began ? 1 : 0);
		/* Whoever took the lock gave it back, and a failed upload
		 * left no chunk. */
		if (tc->began && !tc->busy) {
			assert_int_equal(fs.ends, 1);
			assert_int_equal(fs.ends_failed, 1);
		}
		for (int k = 0; k < MAX_CHUNKS; k++)
			assert_null(fs.chunks[k]);
		if (!tc->began)
			assert_int_equal(res.read, 0); /* refused unread */
		assert_int_equal(res.size, tc->len);
		free(data);
	}
	fake_reset();
}

static void
test_already_stored(void **state)
{
	unsigned char *data = pattern(5000);
	struct src s = {data, 5000, 0, 0, 0};
	struct artifact out;
	struct artifact_upload_result res;

	(void)state;
	/* Complete before: nothing is read, nothing locked. */
	setup_artifact(data, 5000);
	fs.completed = true;
	assert_int_equal(run(&s, 5000, 8 * MIB, &out, &res), ARTIFACT_OK);
	assert_true(res.already);
	assert_true(out.ready);
	assert_int_equal(res.read, 0);
	assert_int_equal(fs.begins, 0);
	artifact_clear(&out);
	/* Completed by another upload while this one waited for the lock. */
	setup_artifact(data, 5000);
	fs.complete_at_begin = true;
	assert_int_equal(run(&s, 5000, 8 * MIB, &out, &res), ARTIFACT_OK);
	assert_true(res.already);
	assert_int_equal(res.read, 0);
	assert_int_equal(fs.ends, 1);
	assert_int_equal(fs.ends_failed, 0);
	artifact_clear(&out);
	/* Unknown id. */
	fs.have = false;
	assert_int_equal(run(&s, 5000, 8 * MIB, &out, &res), ARTIFACT_NOTFOUND);
	free(data);
	fake_reset();
}

static void
test_rules(void **state)
{
	struct artifact a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.size = 100;
	assert_int_equal(artifact_upload_check(&a, 100, 100), ARTIFACT_OK);
	assert_int_equal(artifact_upload_check(&a, 101, 100),
			 ARTIFACT_TOO_LARGE);
	assert_int_equal(artifact_upload_check(&a, 99, 100),
			 ARTIFACT_SIZE_MISMATCH);
	assert_string_equal(artifact_status(&a), "uploading");
	a.ready = true;
	assert_string_equal(artifact_status(&a), "ready");
	artifact_clear(NULL);
	artifacts_free(NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upload_sizes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_already_stored),
		cmocka_unit_test(test_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
