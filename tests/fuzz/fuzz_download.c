/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the request of an artifact download on the device
 * listener (fleetd/channel/download_req.c): the request head a device (or
 * anything that passed the TLS handshake) sends. The parser must never
 * read out of bounds; an accepted request names 64 lower-case hex digits
 * and ends inside the input, and every range it resolves lies inside the
 * blob.
 */
#include "channel/download_req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_range(const struct download_req *r, uint64_t size)
{
	uint64_t first = 0, last = 0;
	int status = download_req_range(r, size, &first, &last);

	if (status == 416)
		return;
	if ((status != 200 && status != 206) || first > last || last >= size)
		abort();
	if (status == 200 && (first != 0 || last != size - 1))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct download_req r;
	const char *slug = NULL, *why = NULL;
	unsigned char *buf = malloc(size + 1);
	int status;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size); /* exactly size bytes are valid */
	(void)download_is_request(buf, size);
	status = download_req_parse(buf, size, &r, &slug, &why);
	if (status != 0) {
		if (slug == NULL || why == NULL ||
		    (status != 400 && status != 404 && status != 405 &&
		     status != 431 && status != 505))
			abort();
	} else {
		if (r.head_len > size || strlen(r.sha256) != 64 ||
		    strspn(r.sha256, "0123456789abcdef") != 64)
			abort();
		check_range(&r, 1);
		check_range(&r, 1048576);
		check_range(&r, UINT64_C(5) * 1024 * 1024 * 1024);
	}
	free(buf);
	return 0;
}
