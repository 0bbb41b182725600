/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A net worker process: one libwebsockets event loop serving the api and
 * device listeners (listen sockets inherited from the supervisor and
 * shared with the other workers), plus its job threads. Started and restarted by the supervisor.
 */
#ifndef FLEETD_HTTP_WORKER_H
#define FLEETD_HTTP_WORKER_H

struct fleetd_config;

#include <stdbool.h>

/*
 * slot numbers workers 1..N; signer_fd is this slot's ca socket; api_fd and
 * device_fd are the listen sockets the supervisor bound, or that the
 * service manager holds (held: socket activation; never shut down, so
 * that connections wait for the next fleetd instead of being refused).
 */
int worker_main(int slot, int signer_fd, int api_fd, int device_fd, bool held,
		const struct fleetd_config *cfg);

#endif
