/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A net worker process: one libwebsockets event loop serving the api and
 * device listeners (shared with the other workers via SO_REUSEPORT), plus
 * its job threads. Started and restarted by the supervisor.
 */
#ifndef FLEETD_HTTP_WORKER_H
#define FLEETD_HTTP_WORKER_H

struct fleetd_config;

/* slot numbers workers 1..N; signer_fd is this slot's ca socket. */
int worker_main(int slot, int signer_fd, const struct fleetd_config *cfg);

#endif
