/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The part of the store port EST re-enrollment needs beyond
 * core/store_certificates.h: whether a certificate is the newest of its
 * device (the grace rule of core/est.h). Implemented by fleetd/db/est.c.
 */
#ifndef FLEETD_CORE_STORE_EST_H
#define FLEETD_CORE_STORE_EST_H

#include <stdbool.h>

#include "core/store.h"

/*
 * *known: serial is a certificate of device_id; *newest: and no
 * certificate of that device was issued after it (by notBefore). Both
 * written on STORE_OK.
 */
enum store_rc store_est_cert_newest(struct store *st, const char *device_id,
				    const char *serial, bool *known,
				    bool *newest);

#endif
