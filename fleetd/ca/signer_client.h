/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Net-worker side of the CA signer protocol: sends sign requests to the ca
 * process over a socketpair and waits for the answer. Calls block, so they
 * run on job threads only; the requests of a worker's threads are
 * pipelined (each waits for the answer carrying its request id).
 * This is the adapter of core/signer_port.h; its calls are declared there.
 */
#ifndef FLEETD_CA_SIGNER_CLIENT_H
#define FLEETD_CA_SIGNER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/signer_port.h" /* this file implements the port */

struct signer_client;

/* fd is this worker's end of the socketpair; the client owns it. */
struct signer_client *signer_client_new(int fd);
void signer_client_free(struct signer_client *sc);

/* Replaces the socket after the supervisor restarted the ca process. */
void signer_client_set_fd(struct signer_client *sc, int fd);

#endif
