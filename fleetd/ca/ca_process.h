/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `ca` process: the only process that loads the issuing-CA private key.
 * It has no network and no database; it serves sign requests from the net
 * workers over SOCK_SEQPACKET socketpairs (one per worker slot, created by
 * the supervisor and kept across restarts of either side).
 */
#ifndef FLEETD_CA_PROCESS_H
#define FLEETD_CA_PROCESS_H

#include <stddef.h>

struct fleetd_config;

/*
 * Runs the ca process until SIGTERM or until every fd is closed. fds are
 * the ca ends of the workers' socketpairs. Once the issuing-CA key is
 * loaded, drop(drop_arg) is called (if not NULL) to give up privileges; if
 * it fails the process ends. Returns the exit code.
 */
int ca_process_main(const int *fds, size_t nfds,
		    const struct fleetd_config *cfg, int (*drop)(void *arg),
		    void *drop_arg);

#endif
