/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for what a device sends first and then always: the
 * upgrade request and client websocket frames (fleetd/channel/ws.c). The
 * input is fed as one request followed by frames, as channel.c does; the
 * parser must never read out of bounds, and every frame it accepts must be
 * masked, within the limit and inside the buffer.
 */
#include "channel/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PAYLOAD (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_upgrade up;
	unsigned char *buf;
	size_t used = 0;
	char answer[1024];
	enum ws_rc rc;

	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	rc = ws_upgrade_parse(buf, size, "/agent/v1", "fleet.v1", &up);
	if (rc != WS_MORE)
		(void)ws_upgrade_answer(&up, rc, "fleet.v1", answer,
					sizeof(answer));
	if (rc == WS_OK) {
		if (up.consumed > size)
			abort();
		used = up.consumed;
	}
	/* Whatever follows (or the whole input) as frames. */
	for (;;) {
		struct ws_frame f;
		const char *why = NULL;
		int code = 0;

		rc = ws_frame_parse(buf + used, size - used, FUZZ_MAX_PAYLOAD,
				    &f, &code, &why);
		if (rc != WS_OK) {
			if (rc == WS_REFUSED && code != 1002 && code != 1009)
				abort();
			break;
		}
		if (f.frame_len > size - used ||
		    f.payload_len > FUZZ_MAX_PAYLOAD ||
		    f.payload + f.payload_len > buf + size)
			abort();
		used += f.frame_len;
	}
	free(buf);
	return 0;
}
