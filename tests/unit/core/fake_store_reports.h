/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An in-memory store for the report use cases (core/store_reports.h), for
 * unit tests: a few devices, their report windows and latest reports.
 */
#ifndef FAKE_STORE_REPORTS_H
#define FAKE_STORE_REPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/store_reports.h"

struct store *fake_store_new(void);
void fake_store_free(struct store *st);
void fake_store_add_device(struct store *st, const char *id, bool active);
/* The next n store calls fail (STORE_ERR, nothing written). */
void fake_store_fail_next(struct store *st, int n);
/* Reports of kind applied for id; the stored seq and body of the latest. */
int64_t fake_store_applied(struct store *st, const char *id, const char *kind,
			   uint64_t *seq, const char **body);
/* The hello stored last for id, or NULL. */
const struct device_hello *fake_store_hello(struct store *st, const char *id);

#endif
