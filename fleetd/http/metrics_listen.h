/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The optional metrics listener (config key metrics_port): plain HTTP on
 * 127.0.0.1 only, GET /metrics without a token, served by a small child of
 * the supervisor that reads the shared registry (core/metrics.h). For
 * hosts that scrape locally (a Prometheus agent or node exporter's
 * textfile collector beside fleetd) and do not want a token on disk.
 */
#ifndef FLEETD_HTTP_METRICS_LISTEN_H
#define FLEETD_HTTP_METRICS_LISTEN_H

#include <sys/types.h>

struct fleetd_config;

/*
 * In the supervisor, after metrics_shared_init(): when cfg->metrics_port
 * is not 0, binds 127.0.0.1:port and forks the server (named
 * fleetd-metrics), which drops to cfg->user when started as root and
 * exits with the supervisor. Returns the child's pid, 0 when metrics_port
 * is 0, or -1 (logged) when the port cannot be bound or the fork fails.
 * The supervisor reaps the child and calls this again to restart it (the
 * port is bound anew each time, so no other child inherits the socket).
 */
pid_t metrics_listen_start(const struct fleetd_config *cfg);

#endif
