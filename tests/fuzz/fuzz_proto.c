/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: fleet.v1 frames (common/proto), decoded in both directions as
 * the channel and the agent do. Whatever decodes must validate again, and
 * re-encode into a frame that decodes to the same body (the codec agrees
 * with itself); anything refused must come with a wire error code.
 */
#include "proto/proto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one(const char *text, size_t len, enum proto_dir dir)
{
	struct proto_error err, err2;
	struct proto_msg m, again;
	json_t *fields;
	char *out;
	size_t out_len;

	memset(&m, 0, sizeof(m));
	if (proto_decode(text, len, dir, &m, &err) != PROTO_OK) {
		if (err.code[0] == '\0')
			abort();
		return;
	}
	if (m.def == NULL || m.def->dir != dir ||
	    proto_validate(m.def, m.body, &err) != PROTO_OK)
		abort();
	fields = json_deep_copy(m.body);
	json_object_del(fields, "type");
	out = proto_encode(m.def->type, fields, &out_len, &err);
	/* A decoded frame may exceed the frame limit only if it was sent
	 * with insignificant whitespace; our encoding is compact. */
	if (out == NULL) {
		if (err.rc != PROTO_ERR_TOO_BIG && err.rc != PROTO_ERR_NOMEM)
			abort();
		goto out;
	}
	memset(&again, 0, sizeof(again));
	if (proto_decode(out, out_len, dir, &again, &err2) != PROTO_OK ||
	    again.def != m.def || again.seq != m.seq ||
	    !json_equal(again.body, m.body))
		abort();
	proto_msg_clear(&again);
	free(out);
out:
	proto_msg_clear(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one((const char *)data, size, PROTO_TO_SERVER);
	one((const char *)data, size, PROTO_TO_AGENT);
	return 0;
}
