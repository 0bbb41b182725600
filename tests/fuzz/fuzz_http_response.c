/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the HTTPS client's response parser (agents and fleetctl). */
#include "https.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct https_response resp = {0};
	char err[HTTPS_ERR_MAX];

	(void)https_response_parse((const char *)data, size, true, false,
				   64 * 1024, &resp, err, sizeof(err));
	https_response_free(&resp);
	return 0;
}
