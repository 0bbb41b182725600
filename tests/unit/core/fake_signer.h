/* SPDX-License-Identifier: Apache-2.0 */
/* A fake of the signer port (core/signer_port.h) for core unit tests. */
#ifndef FAKE_SIGNER_H
#define FAKE_SIGNER_H

#include "core/signer_port.h"

struct signer_client {
	enum signer_status answer; /* what the next calls answer */
	int calls;
	char last_device_id[40];
};

#endif
