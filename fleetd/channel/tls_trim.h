/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an idle device connection keeps of its TLS handshake. Once the
 * channel has read the device's identity from its verified certificate,
 * OpenSSL would keep that certificate decoded in the connection's session
 * (the X509, its names and extensions, its public key with a copy of the
 * curve group: about 4.5 KB and a hundred allocations) for the life of
 * the connection, although nothing reads it again: the device listener
 * keeps no session cache, sends its one ticket during the handshake and
 * never renegotiates. tls_trim_session() gives the connection an empty
 * session of the same protocol version and cipher instead, shared by
 * the worker's connections of that version and cipher.
 * docs/internals/hundredk.md ("Where an idle connection's memory goes").
 * One per net worker, used on its loop thread.
 */
#ifndef FLEETD_CHANNEL_TLS_TRIM_H
#define FLEETD_CHANNEL_TLS_TRIM_H

#include <openssl/ssl.h>

struct tls_trim;

struct tls_trim *tls_trim_new(void);
void tls_trim_free(struct tls_trim *t);

/* Replaces the established connection's session (the peer certificate
 * with it) by an empty one. 0 when done; -1 when the connection keeps
 * its session (it works as before, it only holds more memory); -2 when
 * the connection was left without its context's certificate and must be
 * closed (only short of memory). */
int tls_trim_session(struct tls_trim *t, SSL *ssl);

#endif
