/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS ticket key schedule and the resumption rule (core/tls_tickets.h).
 * Pure functions: no clock, no storage, no OpenSSL; every time is an
 * argument.
 */
#include "core/tls_tickets.h"

#include <stdio.h>
#include <string.h>

int
tls_ticket_policy_check(const struct tls_ticket_policy *p, char *err,
			size_t errlen)
{
	if (p->lifetime_s == 0)
		return 0;
	if (p->lifetime_s < TLS_TICKET_LIFETIME_MIN ||
	    p->lifetime_s > TLS_TICKET_LIFETIME_MAX) {
		snprintf(err, errlen,
			 "tls_ticket_lifetime must be 0 (off) or between "
			 "%ds and %ds, not %lds",
			 TLS_TICKET_LIFETIME_MIN, TLS_TICKET_LIFETIME_MAX,
			 p->lifetime_s);
		return -1;
	}
	if (p->rotation_s < 60 || p->rotation_s > p->lifetime_s) {
		snprintf(err, errlen,
			 "tls_ticket_key_rotation must be between 60s and "
			 "tls_ticket_lifetime (%lds), not %lds",
			 p->lifetime_s, p->rotation_s);
		return -1;
	}
	return 0;
}

int64_t
tls_ticket_key_expires(const struct tls_ticket_policy *p, int64_t created)
{
	return created + p->rotation_s + p->lifetime_s;
}

bool
tls_ticket_keys_need_new(const struct tls_ticket_key *keys, size_t n,
			 const struct tls_ticket_policy *p, int64_t now)
{
	if (p->lifetime_s == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (keys[i].created > now - p->rotation_s &&
		    keys[i].expires > now)
			return false;
	}
	return true;
}

bool
tls_ticket_key_removable(const struct tls_ticket_key *k, int64_t now)
{
	return k->expires <= now;
}

const struct tls_ticket_key *
tls_ticket_keys_encrypting(const struct tls_ticket_key *keys, size_t n,
			   int64_t now)
{
	const struct tls_ticket_key *best = NULL;

	for (size_t i = 0; i < n; i++) {
		const struct tls_ticket_key *k = &keys[i];

		if (k->expires <= now ||
		    k->created > now + TLS_TICKET_CLOCK_SKEW_S)
			continue;
		/* Equal times: the greater name, so that every worker
		 * picks the same key. */
		if (best == NULL || k->created > best->created ||
		    (k->created == best->created &&
		     memcmp(k->name, best->name, TLS_TICKET_NAME_LEN) > 0))
			best = k;
	}
	return best;
}

const struct tls_ticket_key *
tls_ticket_keys_decrypting(const struct tls_ticket_key *keys, size_t n,
			   const unsigned char name[TLS_TICKET_NAME_LEN],
			   int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(keys[i].name, name, TLS_TICKET_NAME_LEN) == 0)
			return keys[i].expires > now ? &keys[i] : NULL;
	}
	return NULL;
}

long
tls_ticket_lifetime(const struct tls_ticket_policy *p, int64_t now,
		    int64_t key_expires, int64_t cert_not_after)
{
	int64_t life = p->lifetime_s;

	if (key_expires - now < life)
		life = key_expires - now;
	if (cert_not_after - now < life)
		life = cert_not_after - now;
	return life > 0 ? (long)life : 0;
}

enum tls_resume
tls_resume_check(const struct tls_ticket_policy *p, int64_t now, int64_t issued,
		 long timeout_s, int64_t cert_not_after, bool refused_loaded,
		 bool serial_refused)
{
	long life = timeout_s < p->lifetime_s ? timeout_s : p->lifetime_s;

	if (p->lifetime_s == 0)
		return TLS_RESUME_DISABLED;
	if (!refused_loaded)
		return TLS_RESUME_NOT_LOADED;
	if (serial_refused)
		return TLS_RESUME_REFUSED;
	if (now >= cert_not_after)
		return TLS_RESUME_CERT_EXPIRED;
	/* A ticket from the future (another host's clock) is as old as
	 * the skew allows at most. */
	if (issued > now + TLS_TICKET_CLOCK_SKEW_S || life <= 0 ||
	    now - issued >= life)
		return TLS_RESUME_TICKET_EXPIRED;
	return TLS_RESUME_OK;
}

const char *
tls_resume_name(enum tls_resume r)
{
	switch (r) {
	case TLS_RESUME_OK:
		return "ok";
	case TLS_RESUME_NOT_LOADED:
		return "refused serials not loaded yet";
	case TLS_RESUME_REFUSED:
		return "certificate refused";
	case TLS_RESUME_CERT_EXPIRED:
		return "certificate expired";
	case TLS_RESUME_TICKET_EXPIRED:
		return "ticket expired";
	case TLS_RESUME_DISABLED:
		return "resumption off";
	}
	return "?";
}
