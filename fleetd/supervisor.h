/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor: forks the ca process and N net workers, restarts a child
 * that dies (with backoff), on SIGHUP re-reads config_path and replaces the
 * children one at a time, and on SIGTERM stops them all.
 */
#ifndef FLEETD_SUPERVISOR_H
#define FLEETD_SUPERVISOR_H

struct fleetd_config;

/* Runs until SIGTERM/SIGINT. cfg is replaced on reload. Returns the exit
 * code. config_path may be NULL (environment only). */
int supervisor_run(struct fleetd_config *cfg, const char *config_path);

#endif
