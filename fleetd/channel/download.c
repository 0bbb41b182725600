/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Artifact downloads on the device listener (download.h): one request per
 * connection, `GET|HEAD /artifacts/<sha256>`, answered 200, 206 (one
 * Range), 416, or a problem+json refusal, then the connection closes.
 * Runs on a net worker's event loop; the access check, the chunk reads
 * and the filling of the cache file run on the channel's job threads
 * (channel_submit_work). Memory per download is bounded: a 64 KiB write
 * buffer with a cache file, two chunk buffers without one (the next chunk
 * is fetched once the current one is half written). Everything the peer
 * sends is untrusted; its identity comes from its verified certificate.
 * docs/internals/downloads.md has the reasons.
 */
#include "channel/download.h"
#include "channel/channel_int.h"
#include "channel/revoked.h"

#include "core/metrics.h"
#include "core/store_artifact_read.h"
#include "log.h"
#include "pki.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes handed to TLS at a time, and pieces per writeable callback. */
#define DL_PIECE (64 * 1024)
#define DL_BURST 4
/* A peer that takes nothing for this long is dropped. */
#define DL_IDLE_S 30
/* Stored chunks larger than this are refused (0011 makes 1 MiB ones). */
#define DL_CHUNK_MAX (16 * 1024 * 1024)
/* What a peer may send after its request before it is not read. */
#define DL_DISCARD_MAX (64 * 1024)
/* Cache files verified by this process (sha256 checked once each). */
#define DL_VERIFIED_MAX 64

#define SHA256_HEX DOWNLOAD_SHA256_HEX

enum dl_state {
	DL_CHECKING, /* the access job runs */
	DL_HEAD, /* the answer's head is being written */
	DL_BODY, /* streaming */
	DL_DONE, /* everything written: close at the next writeable */
};

struct dl_chunk {
	unsigned char *mem; /* LWS_PRE + chunk_size */
	size_t len, pos; /* bytes in it; the next one to write */
	int64_t idx;
	bool ready;
};

struct download {
	struct channel *ch;
	struct lws *wsi;
	char peer[64];
	char *cache_dir;
	char device_id[SECRET_UUID_LEN];
	char serial[PKI_SERIAL_HEX_MAX];
	struct download_req req; /* the request as parsed */
	const char *sha256; /* req.sha256 */
	bool head_only;
	/* The job's results. */
	bool job_running, orphaned;
	bool cut; /* the certificate was revoked: reset the connection */
	enum store_rc rc;
	enum artifact_access access;
	struct artifact_blob blob;
	int fd; /* the verified cache file, or -1: chunks from PostgreSQL */
	/* What is written. */
	enum dl_state state;
	unsigned char *head; /* LWS_PRE + the answer's head (and body) */
	size_t head_len;
	uint64_t off, end; /* the next body byte; one past the last */
	unsigned char *piece; /* LWS_PRE + DL_PIECE (cache file) */
	size_t piece_len, piece_pos; /* read into it; sent of it */
	struct dl_chunk chunk[2]; /* from PostgreSQL */
	int cur; /* the chunk being written */
	bool fetching;
	int64_t fetch_idx;
	int fetch_slot;
	size_t discarded;
	const char *source; /* metric label: cache or database */
};

/* ---- answers -------------------------------------------------------- */

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 206:
		return "Partial Content";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 416:
		return "Range Not Satisfiable";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

static int
set_head(struct download *d, const char *text, size_t len)
{
	free(d->head);
	d->head = malloc(LWS_PRE + len);
	if (d->head == NULL)
		return -1;
	memcpy(d->head + LWS_PRE, text, len);
	d->head_len = len;
	d->state = DL_HEAD;
	if (d->wsi != NULL)
		lws_callback_on_writable(d->wsi);
	return 0;
}

static void
count_request(int status)
{
	char code[8];

	snprintf(code, sizeof(code), "%d", status);
	metrics_add(METRIC_ARTIFACT_REQUESTS, 1, "status", code, NULL);
}

/* A refusal: problem+json (urn:fleet:problem:<slug>), then close. */
static int
refuse(struct download *d, int status, const char *slug, const char *detail)
{
	char body[512], text[1024];
	char range[64] = "";
	int blen, n;

	count_request(status);
	if (d->device_id[0] != '\0' || status >= 500)
		log_write(LOG_LEVEL_INFO,
			  d->device_id[0] != '\0' ? d->device_id : NULL,
			  "download: peer %s: %d %s", d->peer, status, detail);
	if (status == 416)
		snprintf(range, sizeof(range),
			 "Content-Range: bytes */%lld\r\n",
			 (long long)d->blob.size);
	blen = snprintf(body, sizeof(body),
			"{\"type\":\"urn:fleet:problem:%s\",\"title\":\"%s\","
			"\"status\":%d,\"detail\":\"%s\"}",
			slug, reason_phrase(status), status, detail);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return -1;
	n = snprintf(text, sizeof(text),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: application/problem+json\r\n"
		     "Content-Length: %d\r\n%s%s"
		     "Cache-Control: no-store\r\n"
		     "Connection: close\r\n\r\n%s",
		     status, reason_phrase(status), d->head_only ? 0 : blen,
		     range, status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     d->head_only ? "" : body);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	d->end = d->off = 0;
	return set_head(d, text, (size_t)n);
}

/* The blob is there and the device may have it: 200, 206 or 416. */
static int
answer_blob(struct download *d)
{
	uint64_t size = (uint64_t)d->blob.size;
	uint64_t first = 0, last = 0;
	char text[512], range[96] = "";
	int status = download_req_range(&d->req, size, &first, &last), n;

	if (status == 416)
		return refuse(d, 416, "artifact-range-not-satisfiable",
			      "the range selects no byte of the artifact");
	if (status == 206)
		snprintf(range, sizeof(range),
			 "Content-Range: bytes %llu-%llu/%llu\r\n",
			 (unsigned long long)first, (unsigned long long)last,
			 (unsigned long long)size);
	n = snprintf(text, sizeof(text),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: application/octet-stream\r\n"
		     "Content-Length: %llu\r\n%s"
		     "Accept-Ranges: bytes\r\n"
		     "ETag: \"%s\"\r\n"
		     "Cache-Control: private, max-age=0\r\n"
		     "Connection: close\r\n\r\n",
		     status, reason_phrase(status),
		     (unsigned long long)(last - first + 1), range, d->sha256);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	count_request(status);
	log_write(LOG_LEVEL_INFO, d->device_id,
		  "download: %s %s bytes %llu-%llu of %llu from the %s",
		  d->head_only ? "HEAD" : "GET", d->sha256,
		  (unsigned long long)first, (unsigned long long)last,
		  (unsigned long long)size, d->source);
	d->off = first;
	d->end = d->head_only ? first : last + 1;
	return set_head(d, text, (size_t)n);
}

/* ---- the cache file --------------------------------------------------- */

/* Cache files whose sha256 this process checked: (dev, ino, size, mtime)
 * identify the file content that was checked. */
struct dl_verified {
	char sha256[SHA256_HEX + 1];
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

static pthread_mutex_t dl_verified_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dl_verified dl_verified[DL_VERIFIED_MAX];
static size_t dl_verified_next;

static bool
verified_same(const struct dl_verified *v, const char *sha256,
	      const struct stat *st)
{
	return strcmp(v->sha256, sha256) == 0 && v->dev == st->st_dev &&
	       v->ino == st->st_ino && v->size == st->st_size &&
	       v->mtime.tv_sec == st->st_mtim.tv_sec &&
	       v->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool
verified_known(const char *sha256, const struct stat *st)
{
	bool known = false;

	pthread_mutex_lock(&dl_verified_lock);
	for (size_t i = 0; i < DL_VERIFIED_MAX && !known; i++)
		known = verified_same(&dl_verified[i], sha256, st);
	pthread_mutex_unlock(&dl_verified_lock);
	return known;
}

static void
verified_add(const char *sha256, const struct stat *st)
{
	struct dl_verified *v;

	pthread_mutex_lock(&dl_verified_lock);
	v = &dl_verified[dl_verified_next];
	dl_verified_next = (dl_verified_next + 1) % DL_VERIFIED_MAX;
	memcpy(v->sha256, sha256, sizeof(v->sha256));
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->size = st->st_size;
	v->mtime = st->st_mtim;
	pthread_mutex_unlock(&dl_verified_lock);
}

static void
hex_of(const unsigned char *md, char out[SHA256_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[SHA256_HEX] = '\0';
}

/* Whether fd holds exactly size bytes whose sha256 is sha256. */
static bool
cache_verify(int fd, const char *sha256, int64_t size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc(DL_PIECE);
	unsigned char digest[32];
	char hex[SHA256_HEX + 1];
	int64_t total = 0;
	bool ok = false;
	ssize_t n;

	if (md == NULL || buf == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = pread(fd, buf, DL_PIECE, total)) > 0) {
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		total += n;
	}
	if (n < 0 || total != size || EVP_DigestFinal_ex(md, digest, NULL) != 1)
		goto out;
	hex_of(digest, hex);
	ok = strcmp(hex, sha256) == 0;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return ok;
}

/* The cache file if it is there and checked (by this process once); -1
 * when it is not. */
static int
cache_try(const char *path, const char *sha256, int64_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size != size) {
		close(fd);
		return -1;
	}
	if (verified_known(sha256, &st))
		return fd;
	if (!cache_verify(fd, sha256, size)) {
		log_warn("download: cache file %s does not match its sha256; "
			 "writing it again",
			 path);
		close(fd);
		return -1;
	}
	verified_add(sha256, &st);
	return fd;
}

/* Writes the blob from PostgreSQL into tmp, hashing it; 0 when size and
 * sha256 match. */
static int
cache_fill(struct store *st, const char *tmp, const char *sha256,
	   const struct artifact_blob *blob)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc((size_t)blob->chunk_size);
	unsigned char digest[32];
	char hex[SHA256_HEX + 1];
	int64_t total = 0;
	int fd = -1, rc = -1;

	if (md == NULL || buf == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("download: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (int64_t idx = 0; total < blob->size; idx++) {
		size_t len = 0;
		int64_t want = blob->size - total < blob->chunk_size
				       ? blob->size - total
				       : blob->chunk_size;

		if (store_artifact_chunk(st, sha256, idx, buf,
					 (size_t)blob->chunk_size,
					 &len) != STORE_OK ||
		    (int64_t)len != want || EVP_DigestUpdate(md, buf, len) != 1)
			goto out;
		for (size_t w = 0; w < len;) {
			ssize_t n = write(fd, buf + w, len - w);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				log_warn("download: cannot write %s: %s", tmp,
					 strerror(errno));
				goto out;
			}
			w += (size_t)n;
		}
		total += (int64_t)len;
	}
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1)
		goto out;
	hex_of(digest, hex);
	if (strcmp(hex, sha256) != 0) {
		log_error("download: blob %s in PostgreSQL does not match its "
			  "sha256; not served",
			  sha256);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0 && close(fd) != 0)
		rc = -1;
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

/*
 * On a job thread: the verified cache file of the blob, written from
 * PostgreSQL first if needed (once: a lock file serialises the workers of
 * the host). -1 when the cache cannot be used (logged); the caller then
 * streams from PostgreSQL.
 */
static int
cache_open(struct store *st, const char *dir, const char *sha256,
	   const struct artifact_blob *blob)
{
	char path[4096], lock[4096], tmp[4096];
	int fd, lockfd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, sha256) >=
		    (int)sizeof(path) ||
	    snprintf(lock, sizeof(lock), "%s/%s.lock", dir, sha256) >=
		    (int)sizeof(lock) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.part.%ld", dir, sha256,
		     (long)getpid()) >= (int)sizeof(tmp))
		return -1;
	fd = cache_try(path, sha256, blob->size);
	if (fd >= 0)
		return fd;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_warn("download: cannot create the cache directory %s: %s",
			 dir, strerror(errno));
		return -1;
	}
	lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		log_warn("download: cannot lock %s: %s", lock, strerror(errno));
		if (lockfd >= 0)
			close(lockfd);
		return -1;
	}
	/* Another worker may have written it while this one waited. */
	fd = cache_try(path, sha256, blob->size);
	if (fd < 0 && cache_fill(st, tmp, sha256, blob) == 0) {
		if (rename(tmp, path) != 0)
			log_warn("download: cannot rename %s: %s", tmp,
				 strerror(errno));
		else
			fd = cache_try(path, sha256, blob->size);
	}
	if (fd < 0)
		(void)unlink(tmp);
	close(lockfd); /* unlocks */
	return fd;
}

/* ---- jobs ------------------------------------------------------------ */

static void
download_free(struct download *d)
{
	if (d == NULL)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d->chunk[0].mem);
	free(d->chunk[1].mem);
	free(d->piece);
	free(d->head);
	free(d->cache_dir);
	free(d);
}

static void
open_run(struct store *st, const char *unused, void *arg)
{
	struct download *d = arg;

	(void)unused;
	d->rc = store_artifact_access(st, d->device_id, d->serial, d->sha256,
				      &d->access, &d->blob);
	if (d->rc != STORE_OK || d->access != ARTIFACT_ALLOWED ||
	    d->head_only || d->cache_dir == NULL)
		return;
	if (d->blob.chunk_size > DL_CHUNK_MAX) {
		d->rc = STORE_ERR;
		log_error("download: blob %s has chunks of %lld bytes (at "
			  "most %d are served)",
			  d->sha256, (long long)d->blob.chunk_size,
			  DL_CHUNK_MAX);
		return;
	}
	d->fd = cache_open(st, d->cache_dir, d->sha256, &d->blob);
}

static void
open_done(struct channel *ch, struct channel_session *unused, void *arg)
{
	struct download *d = arg;
	int rc;

	(void)ch;
	(void)unused;
	d->job_running = false;
	if (d->orphaned) {
		download_free(d);
		return;
	}
	d->source = d->fd >= 0 ? "cache" : "database";
	if (d->rc != STORE_OK)
		rc = refuse(d, 503, "service-unavailable",
			    "storage unavailable; try again later");
	else if (d->access == ARTIFACT_DEVICE_REFUSED)
		rc = refuse(d, 403, "artifact-device-refused",
			    "the device is not active or its certificate is "
			    "revoked, superseded or unknown");
	else if (d->access != ARTIFACT_ALLOWED)
		rc = refuse(d, 404, "artifact-not-found",
			    "no such artifact for this device");
	else if (d->blob.chunk_size > DL_CHUNK_MAX)
		rc = refuse(d, 503, "service-unavailable",
			    "the artifact cannot be served");
	else
		rc = answer_blob(d);
	if (rc != 0 && d->wsi != NULL)
		lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
}

static void
chunk_run(struct store *st, const char *unused, void *arg)
{
	struct download *d = arg;
	struct dl_chunk *c = &d->chunk[d->fetch_slot];

	(void)unused;
	c->len = 0;
	d->rc = store_artifact_chunk(st, d->sha256, d->fetch_idx,
				     c->mem + LWS_PRE,
				     (size_t)d->blob.chunk_size, &c->len);
}

static void
chunk_done(struct channel *ch, struct channel_session *unused, void *arg)
{
	struct download *d = arg;
	struct dl_chunk *c = &d->chunk[d->fetch_slot];
	int64_t start = d->fetch_idx * d->blob.chunk_size;
	int64_t want = d->blob.size - start < d->blob.chunk_size
			       ? d->blob.size - start
			       : d->blob.chunk_size;

	(void)ch;
	(void)unused;
	d->job_running = false;
	d->fetching = false;
	if (d->orphaned) {
		download_free(d);
		return;
	}
	if (d->rc != STORE_OK || (int64_t)c->len != want) {
		/* The head is out: all that can be done is to stop, and
		 * the agent resumes with a Range. */
		log_write(LOG_LEVEL_WARN, d->device_id,
			  "download: chunk %lld of %s unavailable; closing",
			  (long long)d->fetch_idx, d->sha256);
		if (d->wsi != NULL)
			lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
		return;
	}
	c->idx = d->fetch_idx;
	c->pos = d->off > (uint64_t)start &&
				 d->off - (uint64_t)start < (uint64_t)c->len
			 ? (size_t)(d->off - (uint64_t)start)
			 : 0;
	c->ready = true;
	if (d->wsi != NULL)
		lws_callback_on_writable(d->wsi);
}

/* Fetches chunk idx into slot on a job thread. */
static int
chunk_fetch(struct download *d, int slot, int64_t idx)
{
	struct channel_work w = {chunk_run, chunk_done, d};

	if (d->chunk[slot].mem == NULL) {
		d->chunk[slot].mem =
			malloc(LWS_PRE + (size_t)d->blob.chunk_size);
		if (d->chunk[slot].mem == NULL)
			return -1;
	}
	d->chunk[slot].ready = false;
	d->fetch_slot = slot;
	d->fetch_idx = idx;
	d->fetching = true;
	d->job_running = true;
	if (!channel_submit_work(d->ch, NULL, &w)) {
		d->fetching = false;
		d->job_running = false;
		log_write(LOG_LEVEL_WARN, d->device_id,
			  "download: job queue full; closing");
		return -1;
	}
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

/*
 * The body goes to the connection's TLS directly (SSL_write), not through
 * lws_write: lws 4.1 cuts every lws_write into pieces of the protocol's
 * rx_buffer_size (4 KiB on the device listener) plus LWS_PRE + 4 bytes,
 * i.e. 4 KiB TLS records, and copies the rest into its own buffer, which
 * halved the throughput (docs/internals/downloads.md). Nothing else writes
 * on this connection meanwhile: the head went out through lws_write, and
 * lws calls WRITEABLE only once its own buffer is empty.
 */
enum dl_write {
	DL_WROTE = 1, /* all of the piece went out: write more */
	DL_FULL = 0, /* the socket is full: wait for writeable */
	DL_WAIT = 2, /* waiting for a chunk from PostgreSQL */
	DL_FAIL = -1,
};

/* Sends p (n bytes); *sent is what TLS took (0 when the socket is full:
 * then call again with the same bytes, as SSL_write requires). */
static enum dl_write
tls_send(struct download *d, const unsigned char *p, size_t n, size_t *sent)
{
	SSL *ssl = lws_get_ssl(d->wsi);
	int r;

	*sent = 0;
	if (ssl == NULL)
		return DL_FAIL;
	ERR_clear_error();
	r = SSL_write(ssl, p, (int)n);
	if (r > 0) {
		*sent = (size_t)r;
		d->off += (uint64_t)r;
		metrics_add(METRIC_ARTIFACT_BYTES, r, "source", d->source,
			    NULL);
		return *sent == n ? DL_WROTE : DL_FULL;
	}
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_READ:
		return DL_FULL;
	default:
		ERR_clear_error();
		return DL_FAIL;
	}
}

/* A piece of the cache file, read at the offset (pread: no shared file
 * position; the page cache does the rest), sent until it is all out. */
static enum dl_write
write_from_file(struct download *d)
{
	size_t sent;
	enum dl_write rc;

	if (d->piece == NULL) {
		d->piece = malloc(LWS_PRE + DL_PIECE);
		if (d->piece == NULL)
			return DL_FAIL;
	}
	if (d->piece_pos == d->piece_len) {
		size_t want = d->end - d->off < DL_PIECE
				      ? (size_t)(d->end - d->off)
				      : DL_PIECE;
		ssize_t n =
			pread(d->fd, d->piece + LWS_PRE, want, (off_t)d->off);

		if (n <= 0) {
			log_write(LOG_LEVEL_WARN, d->device_id,
				  "download: cache file of %s short at %llu; "
				  "closing",
				  d->sha256, (unsigned long long)d->off);
			return DL_FAIL;
		}
		d->piece_len = (size_t)n;
		d->piece_pos = 0;
	}
	rc = tls_send(d, d->piece + LWS_PRE + d->piece_pos,
		      d->piece_len - d->piece_pos, &sent);
	d->piece_pos += sent;
	return rc;
}

/* From the chunk buffers: write from the current one; once it is half
 * written, fetch the next into the other. */
static enum dl_write
write_from_chunks(struct download *d)
{
	int64_t cs = d->blob.chunk_size;
	int64_t idx = (int64_t)(d->off / (uint64_t)cs);
	struct dl_chunk *c = &d->chunk[d->cur];
	enum dl_write rc;
	size_t n, sent;

	if (!(c->ready && c->idx == idx && c->pos < c->len)) {
		struct dl_chunk *o = &d->chunk[1 - d->cur];

		if (!(o->ready && o->idx == idx)) {
			/* Not here yet: wait for the job (its done()
			 * asks for the next writeable). */
			if (!d->fetching &&
			    chunk_fetch(d, 1 - d->cur, idx) != 0)
				return DL_FAIL;
			return DL_WAIT;
		}
		c->ready = false;
		d->cur = 1 - d->cur;
		c = o;
		c->pos = (size_t)(d->off - (uint64_t)(idx * cs));
	}
	n = c->len - c->pos < DL_PIECE ? c->len - c->pos : DL_PIECE;
	if ((uint64_t)n > d->end - d->off)
		n = (size_t)(d->end - d->off);
	rc = tls_send(d, c->mem + LWS_PRE + c->pos, n, &sent);
	c->pos += sent;
	if (rc != DL_FAIL && !d->fetching && c->pos * 2 >= c->len &&
	    (uint64_t)((idx + 1) * cs) < d->end &&
	    !(d->chunk[1 - d->cur].ready &&
	      d->chunk[1 - d->cur].idx == idx + 1) &&
	    chunk_fetch(d, 1 - d->cur, idx + 1) != 0)
		return DL_FAIL;
	return rc;
}

int
download_writeable(struct download *d)
{
	enum dl_write rc = DL_WROTE;

	if (d->wsi == NULL)
		return -1;
	if (d->cut)
		return -1; /* download_check_revoked reset it */
	switch (d->state) {
	case DL_CHECKING:
		return 0;
	case DL_HEAD:
		if (lws_write(d->wsi, d->head + LWS_PRE, d->head_len,
			      LWS_WRITE_RAW) < (int)d->head_len)
			return -1;
		free(d->head);
		d->head = NULL;
		d->state = d->off < d->end ? DL_BODY : DL_DONE;
		break;
	case DL_BODY:
		/* A few pieces per turn of the loop, fair to the others. */
		for (int i = 0; i < DL_BURST && rc == DL_WROTE; i++) {
			rc = d->fd >= 0 ? write_from_file(d)
					: write_from_chunks(d);
			if (d->off >= d->end)
				d->state = DL_DONE;
			if (d->state == DL_DONE)
				break;
		}
		if (rc == DL_FAIL)
			return -1;
		if (rc == DL_WAIT && d->state != DL_DONE)
			return 0; /* the chunk job asks for writeable */
		break;
	case DL_DONE:
		/* Everything is with TLS (and lws's buffer is empty). */
		return -1;
	}
	lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK, DL_IDLE_S);
	lws_callback_on_writable(d->wsi);
	return 0;
}

/* ---- life ------------------------------------------------------------ */

/* The device id (CN, a UUID) and serial of the verified peer. */
static bool
identify(struct download *d)
{
	SSL *ssl = lws_get_ssl(d->wsi);
	X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	struct pki_error err;
	char cn[64];

	if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
				      NID_commonName, cn, sizeof(cn)) <= 0 ||
	    !secret_is_uuid(cn))
		return false;
	if (pki_cert_serial_hex(peer, d->serial, sizeof(d->serial), &err) !=
	    PKI_OK)
		return false;
	memcpy(d->device_id, cn, sizeof(d->device_id));
	return true;
}

struct download *
download_start(struct channel *ch, struct lws *wsi, const char *peer,
	       const unsigned char *in, size_t len, const char *cache_dir)
{
	struct download *d = calloc(1, sizeof(*d));
	const char *why = NULL, *slug = NULL;
	int status;

	if (d == NULL)
		return NULL;
	d->ch = ch;
	d->wsi = wsi;
	d->fd = -1;
	d->source = "database";
	snprintf(d->peer, sizeof(d->peer), "%s", peer);
	if (cache_dir != NULL && cache_dir[0] != '\0') {
		d->cache_dir = strdup(cache_dir);
		if (d->cache_dir == NULL)
			goto fail;
	}
	/* Ours from here: the idle rule below replaces the channel's. */
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, DL_IDLE_S);
	status = download_req_parse(in, len, &d->req, &slug, &why);
	d->sha256 = d->req.sha256;
	d->head_only = d->req.head_only;
	if (status != 0) {
		if (refuse(d, status, slug, why) != 0)
			goto fail;
		return d;
	}
	if (!identify(d)) {
		d->device_id[0] = '\0';
		if (refuse(d, 403, "artifact-device-refused",
			   "the certificate names no device") != 0)
			goto fail;
		return d;
	}
	d->state = DL_CHECKING;
	{
		struct channel_work w = {open_run, open_done, d};

		d->job_running = true;
		if (!channel_submit_work(ch, NULL, &w)) {
			d->job_running = false;
			if (refuse(d, 503, "service-unavailable",
				   "the worker is busy; try again later") != 0)
				goto fail;
		}
	}
	return d;
fail:
	download_free(d);
	return NULL;
}

int
download_rx(struct download *d, const void *in, size_t len)
{
	(void)in;
	/* One request per connection: later bytes are not read, and a peer
	 * that keeps sending is no longer read (it blocks). */
	d->discarded += len;
	if (d->discarded > DL_DISCARD_MAX && d->wsi != NULL)
		lws_rx_flow_control(d->wsi, 0);
	return 0;
}

void
download_check_revoked(struct download *d, struct revoked_set *set)
{
	if (d == NULL || d->cut || d->serial[0] == '\0' ||
	    !revoked_set_contains(set, d->serial))
		return;
	log_write(LOG_LEVEL_INFO, d->device_id,
		  "download: certificate %s revoked; cutting the download",
		  d->serial);
	d->cut = true;
	if (d->wsi != NULL) {
		/* Now, not at the next writeable: a peer that does not read
		 * never makes the connection writeable. A reset, not a close:
		 * what TLS queued is not delivered. */
		struct linger lg = {1, 0};

		(void)setsockopt(lws_get_socket_fd(d->wsi), SOL_SOCKET,
				 SO_LINGER, &lg, sizeof(lg));
		lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
}

void
download_closed(struct download *d)
{
	if (d == NULL)
		return;
	d->wsi = NULL;
	if (d->job_running)
		d->orphaned = true;
	else
		download_free(d);
}
