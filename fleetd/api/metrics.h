/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the API adds to the metrics registry (core/metrics.h): the answer
 * of every request on the api listener, labelled by its OpenAPI route
 * template. Called by the http layer once an answer is written.
 */
#ifndef FLEETD_API_METRICS_H
#define FLEETD_API_METRICS_H

#include <stdint.h>

/* method and path as received (path decoded, without the query); status
 * as answered; us from the request head to the answer. Thread-safe. */
void api_metrics_request(const char *method, const char *path, int status,
			 uint64_t us);

#endif
