/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: https_stream's response decoder (the agent's artifact
 * downloads from an untrusted mirror, fleetctl's uploads), through
 * https_stream_decode. The first byte picks how the rest is cut into
 * pieces (as TLS records would cut it); the answer must not depend on the
 * cuts: the same result and the same body bytes as in one piece.
 */
#include "https.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	unsigned char *buf;
	size_t len;
};

static int
on_body(void *arg, const void *p, size_t n)
{
	struct sink *k = arg;

	if (k->len + n > 65536)
		abort(); /* past max_body: the limit did not hold */
	memcpy(k->buf + k->len, p, n);
	k->len += n;
	return 0;
}

static enum https_stream_result
decode(const char *text, size_t len, unsigned cut, struct sink *k,
       unsigned long long *got)
{
	struct https_stream s = {
		.on_body = on_body, .arg = k, .max_body = 65536};
	const char *pieces[512];
	size_t lens[512], n = 0, off = 0;
	struct https_response r;
	char err[HTTPS_ERR_MAX];
	enum https_stream_result rc;

	while (off < len && n < 511) {
		size_t step = cut == 0 ? len : 1 + (off * 7 + cut) % (cut + 1);

		if (step > len - off)
			step = len - off;
		pieces[n] = text + off;
		lens[n++] = step;
		off += step;
	}
	if (off < len) {
		pieces[n] = text + off;
		lens[n++] = len - off;
	}
	rc = https_stream_decode(&s, pieces, lens, n, false, &r, got, err,
				 sizeof(err));
	https_response_free(&r);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char a[65536], b[65536];
	struct sink ka = {a, 0}, kb = {b, 0};
	unsigned long long ga = 0, gb = 0;
	enum https_stream_result ra, rb;

	if (size < 1)
		return 0;
	ra = decode((const char *)data + 1, size - 1, 0, &ka, &ga);
	rb = decode((const char *)data + 1, size - 1, data[0] % 64, &kb, &gb);
	if (ra != rb || ga != gb || ka.len != kb.len ||
	    memcmp(a, b, ka.len) != 0)
		abort();
	return 0;
}
