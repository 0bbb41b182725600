/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An in-memory store for configuration delivery
 * (core/store_config_delivery.h), for unit tests. It keeps the report
 * window and the generic report effect in fake_store_reports.c (the same
 * struct store), and per device its desired state, its reported state and
 * the count of ignored reports, in a small table of its own.
 */
#ifndef FAKE_STORE_CONFIG_DELIVERY_H
#define FAKE_STORE_CONFIG_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/store_config_delivery.h"

/* Sets a device's desired state (document may be NULL: none). */
void fake_cfg_set_desired(const char *id, int64_t generation,
			  const char *sha256, const char *document);

/* The reported state of id: false when none. */
bool fake_cfg_reported(const char *id, int64_t *generation, const char **sha256,
		       const char **status, const char **reason);

/* Reports of id acknowledged but ignored. */
int64_t fake_cfg_ignored(const char *id);

/* Forgets every device (between tests). */
void fake_cfg_reset(void);

#endif
