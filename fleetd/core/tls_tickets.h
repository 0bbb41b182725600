/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules of TLS session resumption on the device listener
 * (docs/internals/tls-resumption.md): when a ticket key is made, which key
 * encrypts a new ticket, which keys are accepted to decrypt one, when a key
 * is removed, how long a ticket lives, and whether a decrypted ticket may
 * resume a session. Pure functions on plain values (epoch seconds); the
 * keys themselves live in PostgreSQL (core/store_tls_tickets.h) and are
 * used by the net workers' TLS callbacks (channel/tls_tickets.c).
 */
#ifndef FLEETD_CORE_TLS_TICKETS_H
#define FLEETD_CORE_TLS_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key's name, sent in clear in every ticket it encrypts (OpenSSL's
 * 16-byte key_name), and its secret: a 32-byte HMAC-SHA256 key, then a
 * 32-byte AES-256-CBC key. */
#define TLS_TICKET_NAME_LEN 16
#define TLS_TICKET_SECRET_LEN 64
/* Keys a worker holds at most (rotation at its shortest, 1 minute, and
 * the longest lifetime, 24 h, would need 1,441: the store keeps only
 * the newest this many; older tickets fall back to a full handshake). */
#define TLS_TICKET_KEYS_MAX 64
/* The bounds of tls_ticket_lifetime (0 disables resumption). TLS 1.3
 * allows 7 days; a day keeps a stolen ticket key's reach short. */
#define TLS_TICKET_LIFETIME_MIN 60
#define TLS_TICKET_LIFETIME_MAX 86400
/* Another host's clock may run this far ahead of ours: a key it made
 * "in the future" by at most this much is still the newest. */
#define TLS_TICKET_CLOCK_SKEW_S 300

struct tls_ticket_key {
	unsigned char name[TLS_TICKET_NAME_LEN];
	unsigned char secret[TLS_TICKET_SECRET_LEN];
	int64_t created; /* epoch seconds (PostgreSQL's clock) */
	int64_t expires; /* no ticket of it is accepted from then on */
};

struct tls_ticket_policy {
	long lifetime_s; /* of a ticket; 0: resumption off */
	long rotation_s; /* a new key this often */
};

/* 0 when the settings are usable, else -1 with a message for the
 * operator in err. */
int tls_ticket_policy_check(const struct tls_ticket_policy *p, char *err,
			    size_t errlen);

/* A key made at `created` encrypts for at most one rotation and is
 * accepted until the last ticket it could encrypt has expired. */
int64_t tls_ticket_key_expires(const struct tls_ticket_policy *p,
			       int64_t created);

/* True when no key was made within the last rotation: one must be made
 * now (by one host: the store serialises the check and the insert). */
bool tls_ticket_keys_need_new(const struct tls_ticket_key *keys, size_t n,
			      const struct tls_ticket_policy *p, int64_t now);

/* True when the key will never be accepted again: remove it. */
bool tls_ticket_key_removable(const struct tls_ticket_key *k, int64_t now);

/* The key that encrypts new tickets: the newest one made (at most
 * TLS_TICKET_CLOCK_SKEW_S in the future) that has not expired. NULL when
 * there is none (no ticket is issued). Borrowed from keys. */
const struct tls_ticket_key *
tls_ticket_keys_encrypting(const struct tls_ticket_key *keys, size_t n,
			   int64_t now);

/* The key named `name` if it is still accepted to decrypt, else NULL
 * (the ticket is ignored: a full handshake). Borrowed from keys. */
const struct tls_ticket_key *
tls_ticket_keys_decrypting(const struct tls_ticket_key *keys, size_t n,
			   const unsigned char name[TLS_TICKET_NAME_LEN],
			   int64_t now);

/*
 * The lifetime of a ticket issued now, in seconds: the configured one,
 * shortened so that it ends neither after its key stops being accepted
 * nor after the peer certificate's notAfter. 0: issue none.
 */
long tls_ticket_lifetime(const struct tls_ticket_policy *p, int64_t now,
			 int64_t key_expires, int64_t cert_not_after);

enum tls_resume {
	TLS_RESUME_OK = 0,
	TLS_RESUME_NOT_LOADED, /* the refused set is not known yet */
	TLS_RESUME_REFUSED, /* the certificate's serial is refused */
	TLS_RESUME_CERT_EXPIRED, /* past the certificate's notAfter */
	TLS_RESUME_TICKET_EXPIRED, /* past the ticket's own lifetime */
	TLS_RESUME_DISABLED, /* resumption is off (lifetime 0) */
};

/*
 * May a decrypted ticket resume a session? Exactly the checks of a full
 * handshake that do not need a signature: the certificate's serial is not
 * in the refused set (revoked, superseded, decommissioned; the set must
 * be loaded) and the certificate has not expired; and the ticket itself is
 * within its lifetime, which is never longer than the policy's (a ticket
 * claiming more is cut to it). Anything but TLS_RESUME_OK means a full
 * handshake instead, which checks everything again.
 */
enum tls_resume tls_resume_check(const struct tls_ticket_policy *p, int64_t now,
				 int64_t issued, long timeout_s,
				 int64_t cert_not_after, bool refused_loaded,
				 bool serial_refused);

/* A short English word for logs. */
const char *tls_resume_name(enum tls_resume r);

#endif
