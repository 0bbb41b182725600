/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Devices on PostgreSQL: implements core/store_devices.h (documents,
 * selector lists, label changes, decommissioning). Enrollment inserts
 * devices through core/store_enroll.h (db/enroll.c).
 */
#ifndef FLEETD_DB_DEVICES_H
#define FLEETD_DB_DEVICES_H

#include "core/store_devices.h"

#endif
