/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS session resumption on the device listener: TLS 1.3 session tickets
 * encrypted with keys every net worker of every host reads from
 * PostgreSQL, so a device resumes on any worker and after a restart
 * without a certificate chain to verify or a signature to make. A resumed
 * session is checked exactly as a full handshake is where no signature is
 * involved: its certificate's serial against the worker's refused set,
 * and the certificate's and the ticket's lifetimes (core/tls_tickets.h).
 * Runs in a net worker: the TLS callbacks on its loop thread, the key
 * loads on its channel listener thread (and once at start).
 * docs/internals/tls-resumption.md has the rules and the security
 * argument.
 */
#ifndef FLEETD_CHANNEL_TLS_TICKETS_H
#define FLEETD_CHANNEL_TLS_TICKETS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

struct fleetd_config;
struct revoked_set;
struct store;

/* Keys are loaded again (and rotated) this often. */
#define TLS_TICKETS_SYNC_MS 10000u

struct tls_tickets;

/* Resumption as the configuration says (tls_ticket_lifetime 0: off);
 * refused is the worker's refused-serial set (borrowed). NULL when out of
 * memory. */
struct tls_tickets *tls_tickets_new(const struct fleetd_config *cfg,
				    struct revoked_set *refused);
void tls_tickets_free(struct tls_tickets *t);

bool tls_tickets_enabled(const struct tls_tickets *t);

/*
 * The device listener's SSL_CTX: a session id context that is the same
 * in every worker and host (lws sets its context's address), and, when
 * resumption is on, tickets (one per handshake) through our key and
 * ticket callbacks; when it is off, no tickets and no cache, as before.
 * Returns 0, or -1 (OpenSSL's errors logged).
 */
int tls_tickets_ssl_setup(struct tls_tickets *t, SSL_CTX *ctx);

/* True when a sync is due (never when resumption is off). */
bool tls_tickets_sync_due(const struct tls_tickets *t, uint64_t now_ms);

/* Loads the keys from the store, making the next one when it is due and
 * removing expired ones (store_tls_ticket_keys_sync). On failure the keys
 * held stay in use until they expire. Returns 0 or -1. Any thread; st
 * belongs to the caller's thread. */
int tls_tickets_sync(struct tls_tickets *t, struct store *st, uint64_t now_ms);

/* Handshakes this worker finished with a resumed session, and tickets it
 * refused although they decrypted (refused certificate, expired). */
uint64_t tls_tickets_resumed(const struct tls_tickets *t);
uint64_t tls_tickets_refused(const struct tls_tickets *t);

#endif
