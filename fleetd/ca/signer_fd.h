/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Passing bulk bytes between a net worker and the ca process: a sealed
 * memfd sent beside a SOCK_SEQPACKET record (SCM_RIGHTS). Used by the CRL
 * exchange (signer_proto.h), whose input and output outgrow one record.
 * Both sides treat what they receive as untrusted: every received
 * descriptor is checked (a regular file, sealed against writes and
 * resizing, of the announced size) and closed by the receiver.
 */
#ifndef FLEETD_CA_SIGNER_FD_H
#define FLEETD_CA_SIGNER_FD_H

#include <stddef.h>
#include <sys/types.h>

/* A sealed memfd holding len bytes of data; -1 on failure (errno). */
int signer_fd_make(const char *name, const void *data, size_t len);

/*
 * Copies exactly len bytes out of a received descriptor after checking
 * it is a sealed regular file of that size. *out is malloc'd (caller
 * frees); 0 on success, -1 otherwise. The descriptor is not closed.
 */
int signer_fd_read(int fd, size_t len, unsigned char **out);

/*
 * sendmsg of one record, with fd attached when fd >= 0. flags as for
 * send (MSG_NOSIGNAL is added). Returns what sendmsg returns.
 */
ssize_t signer_fd_send(int sock, const void *buf, size_t len, int fd,
		       int flags);

/*
 * recvmsg of one record into buf (cap bytes). A descriptor that came
 * with it is returned in *fd (else -1); any further ones, and all of
 * them when the control data was truncated, are closed here. Returns
 * what recvmsg returns.
 */
ssize_t signer_fd_recv(int sock, void *buf, size_t cap, int *fd, int flags);

#endif
