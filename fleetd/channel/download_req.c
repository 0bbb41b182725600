/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request of an artifact download on the device listener
 * (download_req.h): plain buffers, no I/O, no lws. Runs on a net worker's
 * event loop; everything it reads comes from the network and is bounded
 * before use. Fuzzed by tests/fuzz/fuzz_download.c.
 */
#include "channel/download_req.h"

#include <stdint.h>
#include <string.h>

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
name_is(const char *a, size_t alen, const char *b)
{
	if (alen != strlen(b))
		return false;
	for (size_t i = 0; i < alen; i++) {
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

static bool
starts_with(const unsigned char *buf, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(buf, prefix, n) == 0;
}

bool
download_is_request(const unsigned char *head, size_t head_len)
{
	return starts_with(head, head_len, "HEAD ") ||
	       starts_with(head, head_len, "GET /artifacts/");
}

static bool
sha256_hex_ok(const char *p, size_t len)
{
	if (len != DOWNLOAD_SHA256_HEX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	}
	return true;
}

/* A decimal of at most 19 digits (no sign, no overflow); false else. */
static bool
parse_u63(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * Range: bytes=N-, bytes=N-M or bytes=-N (RFC 9110 §14.1.1). A field this
 * server does not serve (another unit, several ranges, bad syntax) is
 * ignored: the whole body is sent (§14.2 allows it).
 */
static void
parse_range(struct download_req *d, const char *v, size_t len)
{
	size_t dash = 0;
	uint64_t a = 0, b = 0;

	if (len < 6 || !name_is(v, 6, "bytes="))
		return;
	v += 6;
	len -= 6;
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	if (memchr(v, ',', len) != NULL)
		return; /* several ranges: the whole body */
	while (dash < len && v[dash] != '-')
		dash++;
	if (dash == len)
		return;
	if (dash == 0) {
		if (!parse_u63(v + 1, len - 1, &b))
			return;
		d->range = true;
		d->range_suffix = true;
		d->range_last = b; /* the suffix length */
		return;
	}
	if (!parse_u63(v, dash, &a))
		return;
	if (dash + 1 == len) {
		b = UINT64_MAX;
	} else if (!parse_u63(v + dash + 1, len - dash - 1, &b) || b < a) {
		return;
	}
	d->range = true;
	d->range_first = a;
	d->range_last = b;
}

static bool
tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * Parses the head (head_end: offset of the blank line). 0, or the status
 * of a refusal with *why set.
 */
static int
parse_request(struct download_req *d, const char *text, size_t head_end,
	      const char **slug, const char **why)
{
	size_t line_end = 0, sp1 = 0, sp2, ls;
	bool host = false, ranges = false, if_range_ok = true;
	const char *target;
	size_t tlen;

	while (line_end < head_end && text[line_end] != '\r')
		line_end++;
	while (sp1 < line_end && text[sp1] != ' ')
		sp1++;
	sp2 = sp1 + 1;
	while (sp2 < line_end && text[sp2] != ' ')
		sp2++;
	if (sp1 == 0 || sp1 >= line_end || sp2 >= line_end) {
		*why = "malformed request line";
		return 400;
	}
	if (sp1 == 4 && memcmp(text, "HEAD", 4) == 0)
		d->head_only = true;
	else if (sp1 != 3 || memcmp(text, "GET", 3) != 0) {
		*why = "only GET and HEAD are served here";
		*slug = "method-not-allowed";
		return 405;
	}
	if (line_end - sp2 - 1 != 8 || memcmp(text + sp2 + 1, "HTTP/1.1", 8)) {
		*why = "HTTP/1.1 only";
		*slug = "http-version-not-supported";
		return 505;
	}
	target = text + sp1 + 1;
	tlen = sp2 - sp1 - 1;
	if (tlen < 11 || memcmp(target, "/artifacts/", 11) != 0) {
		*why = "the device listener serves only the agent channel and "
		       "artifacts";
		*slug = "not-found";
		return 404;
	}
	if (!sha256_hex_ok(target + 11, tlen - 11)) {
		*why = "an artifact is named by its sha256: 64 lower-case hex "
		       "digits";
		*slug = "artifact-path-invalid";
		return 400;
	}
	memcpy(d->sha256, target + 11, DOWNLOAD_SHA256_HEX);
	d->sha256[DOWNLOAD_SHA256_HEX] = '\0';
	for (ls = line_end + 2; ls < head_end + 2;) {
		size_t le = ls, colon = ls, vs, ve;

		while (le < head_end && text[le] != '\r')
			le++;
		if (le < head_end && text[le + 1] != '\n') {
			*why = "bare CR in the request";
			return 400;
		}
		while (colon < le && tchar((unsigned char)text[colon]))
			colon++;
		if (colon == ls || colon >= le || text[colon] != ':') {
			*why = "malformed header line";
			return 400;
		}
		vs = colon + 1;
		ve = le;
		for (size_t i = vs; i < ve; i++) {
			unsigned char c = (unsigned char)text[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				*why = "control character in a header";
				return 400;
			}
		}
		while (vs < ve && (text[vs] == ' ' || text[vs] == '\t'))
			vs++;
		while (ve > vs && (text[ve - 1] == ' ' || text[ve - 1] == '\t'))
			ve--;
		if (name_is(text + ls, colon - ls, "host")) {
			if (host) {
				*why = "more than one Host";
				return 400;
			}
			host = ve > vs;
		} else if (name_is(text + ls, colon - ls, "range")) {
			if (ranges) {
				*why = "more than one Range";
				return 400;
			}
			ranges = true;
			parse_range(d, text + vs, ve - vs);
		} else if (name_is(text + ls, colon - ls, "if-range")) {
			/* Only our strong ETag keeps the Range (§13.1.5); a
			 * date or another tag asks for the whole body. */
			if_range_ok = ve - vs == DOWNLOAD_SHA256_HEX + 2 &&
				      text[vs] == '"' && text[ve - 1] == '"' &&
				      memcmp(text + vs + 1, d->sha256,
					     DOWNLOAD_SHA256_HEX) == 0;
		} else if (name_is(text + ls, colon - ls,
				   "transfer-encoding") ||
			   (name_is(text + ls, colon - ls, "content-length") &&
			    !(ve - vs == 1 && text[vs] == '0'))) {
			*why = "a download request has no body";
			return 400;
		}
		ls = le + 2;
	}
	if (!host) {
		*why = "no Host";
		return 400;
	}
	if (!if_range_ok)
		d->range = false;
	return 0;
}

int
download_req_parse(const unsigned char *buf, size_t len,
		   struct download_req *out, const char **slug,
		   const char **why)
{
	const char *text = (const char *)buf;
	size_t head_end = 0;
	bool found = false;
	int status;

	memset(out, 0, sizeof(*out));
	*slug = "bad-request";
	for (size_t i = 0; i + 3 < len && i < DOWNLOAD_HEAD_MAX; i++) {
		if (memcmp(text + i, "\r\n\r\n", 4) == 0) {
			head_end = i;
			found = true;
			break;
		}
	}
	if (!found) {
		*why = "request header too large";
		return 431;
	}
	if (memchr(text, '\0', head_end) != NULL) {
		*why = "NUL in the request";
		return 400;
	}
	status = parse_request(out, text, head_end, slug, why);
	if (status == 0)
		out->head_len = head_end + 4;
	return status;
}

int
download_req_range(const struct download_req *r, uint64_t size, uint64_t *first,
		   uint64_t *last)
{
	*first = 0;
	*last = size - 1;
	if (size == 0)
		return 416;
	if (r->range && r->range_suffix) {
		if (r->range_last == 0)
			return 416;
		*first = r->range_last >= size ? 0 : size - r->range_last;
		return 206;
	}
	if (r->range) {
		if (r->range_first >= size)
			return 416;
		*first = r->range_first;
		if (r->range_last < *last)
			*last = r->range_last;
		return 206;
	}
	return 200;
}
