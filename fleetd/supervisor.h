/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor: forks the ca process and N net workers, restarts a child
 * that dies (with backoff), forwards SIGHUP, and on SIGTERM stops them all.
 */
#ifndef FLEETD_SUPERVISOR_H
#define FLEETD_SUPERVISOR_H

struct fleetd_config;

/* Runs until SIGTERM/SIGINT. Returns the exit code. */
int supervisor_run(const struct fleetd_config *cfg);

#endif
