/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifact downloads (download.h): a resumable, bounded HTTPS GET into a
 * partial file, over common/https.c's streamed exchange. Runs on the
 * update worker thread of fleet-agent. Trusts nothing the server says:
 * the byte limit, the deadlines and the final sha256 come from the signed
 * manifest and the agent's configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backoff.h"
#include "clock.h"
#include "download.h"
#include "https.h"

#define DL_PATH_MAX 2048
#define DL_SPACE_MARGIN (1u << 20) /* keep 1 MiB free beside the file */
#define DL_SLEEP_STEP_MS 100u

const char *
dl_result_reason(enum dl_result r)
{
	switch (r) {
	case DL_OK:
		return "ok";
	case DL_OVERSIZE:
		return "oversize";
	case DL_TIMEOUT:
		return "download-timeout";
	case DL_NO_SPACE:
		return "no-space";
	case DL_HASH_MISMATCH:
		return "hash-mismatch";
	case DL_CANCELLED:
	case DL_FAILED:
	default:
		return "download-failed";
	}
}

int
dl_file_sha256(const char *path, uint64_t len, char hex[65])
{
	unsigned char buf[65536], md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t left = len;
	int fd = -1, rc = -1;
	size_t i;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while (left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out; /* shorter than len */
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		left -= (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		goto out;
	for (i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The state of one attempt, seen by the callbacks. */
struct dl_attempt {
	const struct dl_opts *o;
	int fd;
	uint64_t have; /* bytes in the file when the attempt started */
	uint64_t got; /* bytes written by this attempt */
	bool restart; /* the server ignored Range: start from 0 */
	bool bad_head; /* a status or Content-Range we cannot use */
	bool write_failed;
	bool cancelled;
	char why[160];
};

static bool
dl_cancelled(const struct dl_opts *o)
{
	return o->cancel != NULL && *o->cancel;
}

/* "bytes N-M/T": N must be where we are, T the manifest's size. */
static bool
dl_content_range_ok(const char *v, uint64_t have, uint64_t size)
{
	unsigned long long first, last, total;
	char tail;

	if (v == NULL || sscanf(v, "bytes %llu-%llu/%llu%c", &first, &last,
				&total, &tail) != 3)
		return false;
	return first == have && total == size && last >= first && last < size;
}

static int
dl_on_head(void *arg, const struct https_response *head)
{
	struct dl_attempt *a = arg;

	if (a->have > 0 && head->status == 200) {
		a->restart = true;
		snprintf(a->why, sizeof(a->why),
			 "the server ignored Range (200): starting over");
		return 1;
	}
	if (a->have > 0 && head->status == 416) {
		a->restart = true;
		snprintf(a->why, sizeof(a->why),
			 "the server refused Range bytes=%" PRIu64
			 "- (416): starting over",
			 a->have);
		return 1;
	}
	if (head->status != (a->have > 0 ? 206 : 200)) {
		a->bad_head = true;
		snprintf(a->why, sizeof(a->why), "HTTP %d %s", head->status,
			 head->reason);
		return 1;
	}
	if (a->have > 0 &&
	    !dl_content_range_ok(https_response_header(head, "Content-Range"),
				 a->have, a->o->size)) {
		a->bad_head = true;
		snprintf(a->why, sizeof(a->why),
			 "206 with an unexpected Content-Range");
		return 1;
	}
	return 0;
}

static int
dl_on_body(void *arg, const void *data, size_t len)
{
	struct dl_attempt *a = arg;
	const char *p = data;

	if (dl_cancelled(a->o)) {
		a->cancelled = true;
		return 1;
	}
	while (len > 0) {
		ssize_t n = write(a->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			a->write_failed = true;
			snprintf(a->why, sizeof(a->why), "writing: %s",
				 strerror(n < 0 ? errno : ENOSPC));
			return 1;
		}
		p += n;
		len -= (size_t)n;
		a->got += (uint64_t)n;
	}
	if (a->o->progress != NULL)
		a->o->progress(a->o->arg, a->have + a->got);
	return 0;
}

/* Bytes already in the partial file; a file longer than size is
 * dropped (it cannot be a prefix of the artifact). */
static uint64_t
dl_have(const struct dl_opts *o)
{
	struct stat st;

	if (stat(o->part_path, &st) != 0)
		return 0;
	if ((uint64_t)st.st_size > o->size) {
		unlink(o->part_path);
		return 0;
	}
	return (uint64_t)st.st_size;
}

static bool
dl_space_ok(const struct dl_opts *o, uint64_t need)
{
	char dir[DL_PATH_MAX];
	struct statvfs vfs;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", o->part_path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (statvfs(dir, &vfs) != 0)
		return true; /* cannot tell: the write will say */
	return (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize >=
	       need + DL_SPACE_MARGIN;
}

/* Sleeps ms, or less when the deadline or a cancel comes first. */
static void
dl_sleep(const struct dl_opts *o, uint64_t ms, uint64_t deadline)
{
	uint64_t end = clock_mono_ms() + ms;

	while (!dl_cancelled(o) && clock_mono_ms() < end &&
	       clock_mono_ms() < deadline)
		clock_sleep_ms(DL_SLEEP_STEP_MS);
}

enum dl_result
dl_fetch(const struct dl_opts *o, char *err, size_t errlen)
{
	struct https_options ho;
	struct https_client *c = NULL;
	struct https_url base;
	struct https_request req;
	struct https_response resp;
	struct https_header hdr[1];
	struct https_stream s;
	struct backoff bo;
	enum https_stream_result sr;
	enum dl_result rc = DL_FAILED;
	char path[1100], range[64], herr[HTTPS_ERR_MAX], hex[65];
	uint64_t deadline, now;
	unsigned failures = 0;
	bool space_checked = false;

	err[0] = '\0';
	herr[0] = '\0';
	deadline = clock_mono_ms() +
		   (uint64_t)(o->deadline_s > 0 ? o->deadline_s : 3600) * 1000u;
	if (strncmp(o->url, "https://", 8) == 0) {
		if (https_url_split(o->url, &base, path, sizeof(path), err,
				    errlen) != 0)
			return DL_FAILED;
	} else if (o->url[0] == '/' && o->base_url != NULL) {
		if (https_url_parse(o->base_url, &base, err, errlen) != 0)
			return DL_FAILED;
		if (snprintf(path, sizeof(path), "%s%s", base.prefix, o->url) >=
		    (int)sizeof(path)) {
			snprintf(err, errlen, "artifact URL too long");
			return DL_FAILED;
		}
		base.prefix[0] = '\0';
	} else {
		snprintf(err, errlen,
			 "artifact URL is neither https:// nor a path: %.100s",
			 o->url);
		return DL_FAILED;
	}
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = o->ca_file;
	ho.cert_file = o->cert_file;
	ho.key_file = o->key_file;
	ho.timeout_ms = (int)((o->stall_s > 0 ? o->stall_s : 60) * 1000);
	c = https_client_new(&ho, err, errlen);
	if (c == NULL)
		return DL_FAILED;
	backoff_init(&bo, o->backoff_base_ms > 0 ? o->backoff_base_ms : 1000u,
		     60000u, 0);
	for (;;) {
		struct dl_attempt a;
		uint64_t have = dl_have(o);

		if (dl_cancelled(o)) {
			snprintf(err, errlen, "cancelled");
			rc = DL_CANCELLED;
			goto out;
		}
		if (have == o->size)
			break;
		if (!space_checked) {
			if (!dl_space_ok(o, o->size - have)) {
				snprintf(err, errlen,
					 "not enough free space for %" PRIu64
					 " bytes beside %s",
					 o->size - have, o->part_path);
				rc = DL_NO_SPACE;
				goto out;
			}
			space_checked = true;
		}
		now = clock_mono_ms();
		if (now >= deadline) {
			snprintf(err, errlen,
				 "not downloaded within %ld s (%" PRIu64
				 " of %" PRIu64 " bytes)%s%s",
				 o->deadline_s, have, o->size,
				 herr[0] != '\0' ? ": " : "", herr);
			rc = DL_TIMEOUT;
			goto out;
		}
		memset(&a, 0, sizeof(a));
		a.o = o;
		a.have = have;
		a.fd = open(o->part_path,
			    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (a.fd < 0) {
			snprintf(err, errlen, "%s: %s", o->part_path,
				 strerror(errno));
			goto out;
		}
		memset(&req, 0, sizeof(req));
		req.method = "GET";
		req.path = path;
		if (have > 0) {
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-",
				 have);
			hdr[0].name = "Range";
			hdr[0].value = range;
			req.headers = hdr;
			req.n_headers = 1;
		}
		memset(&s, 0, sizeof(s));
		s.on_head = dl_on_head;
		s.on_body = dl_on_body;
		s.arg = &a;
		/* Never read past the manifest's size (endless data). */
		s.max_body = o->size - have;
		s.total_ms = (int)(deadline - now);
		s.idle_ms = ho.timeout_ms;
		herr[0] = '\0';
		sr = https_stream(c, &base, &req, &s, &resp, NULL, herr,
				  sizeof(herr));
		https_response_free(&resp);
		if (fsync(a.fd) != 0 && !a.write_failed)
			snprintf(a.why, sizeof(a.why), "fsync: %s",
				 strerror(errno));
		close(a.fd);
		if (a.cancelled || dl_cancelled(o)) {
			snprintf(err, errlen, "cancelled");
			rc = DL_CANCELLED;
			goto out;
		}
		if (sr == HTTPS_STREAM_TOO_LARGE) {
			unlink(o->part_path);
			snprintf(err, errlen,
				 "the server sent more than the manifest's "
				 "%" PRIu64 " bytes",
				 o->size);
			rc = DL_OVERSIZE;
			goto out;
		}
		if (a.write_failed) {
			snprintf(err, errlen, "%s", a.why);
			rc = DL_NO_SPACE;
			goto out;
		}
		if (a.restart) {
			unlink(o->part_path);
			continue;
		}
		if (sr == HTTPS_STREAM_OK && !a.bad_head &&
		    have + a.got == o->size)
			break;
		if (sr == HTTPS_STREAM_TIMEOUT) {
			snprintf(err, errlen,
				 "not downloaded within %ld s (%" PRIu64
				 " of %" PRIu64 " bytes)",
				 o->deadline_s, have + a.got, o->size);
			rc = DL_TIMEOUT;
			goto out;
		}
		if (a.why[0] != '\0')
			snprintf(herr, sizeof(herr), "%s", a.why);
		else if (sr == HTTPS_STREAM_OK)
			snprintf(herr, sizeof(herr),
				 "the body ended at %" PRIu64 " of %" PRIu64
				 " bytes",
				 have + a.got, o->size);
		/* Progress resets the count: a slow, flaky link finishes
		 * within the deadline; a dead one fails after the retries. */
		if (a.got > 0) {
			failures = 0;
			backoff_reset(&bo);
		}
		if (++failures > o->retries) {
			snprintf(err, errlen,
				 "download failed after %u attempts: %s",
				 failures, herr);
			rc = DL_FAILED;
			goto out;
		}
		dl_sleep(o, backoff_next(&bo), deadline);
	}
	if (dl_file_sha256(o->part_path, o->size, hex) != 0) {
		snprintf(err, errlen, "%s: cannot be read back", o->part_path);
		rc = DL_FAILED;
		goto out;
	}
	if (strcmp(hex, o->sha256) != 0) {
		unlink(o->part_path);
		snprintf(err, errlen,
			 "the downloaded file's sha256 is %s, the manifest "
			 "says %s",
			 hex, o->sha256);
		rc = DL_HASH_MISMATCH;
		goto out;
	}
	rc = DL_OK;
out:
	https_client_free(c);
	return rc;
}
