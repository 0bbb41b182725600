/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session tickets of the device listener (channel/tls_tickets.h). The
 * keys come from PostgreSQL (core/store_tls_tickets.h), the schedule and
 * the resumption rule from core/tls_tickets.c; this file is the OpenSSL
 * glue. Input trusted: the keys (our database). Untrusted: every ticket a
 * client presents (OpenSSL checks its HMAC before anything of it is
 * read; its contents are then checked by tls_resume_check).
 */
#include "channel/tls_tickets.h"

#include "channel/revoked.h"
#include "config.h"
#include "core/store_tls_tickets.h"
#include "core/metrics.h"
#include "core/tls_tickets.h"
#include "log.h"
#include "pki.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The same in every worker and host: a session made on one is resumed on
 * another (OpenSSL refuses a session whose context differs). */
static const unsigned char tickets_sid_ctx[] = "fleet.v1 device listener";

struct tls_tickets {
	struct tls_ticket_policy policy;
	struct revoked_set *refused; /* borrowed: the worker's */
	pthread_mutex_t lock; /* keys, n */
	struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
	size_t n;
	/* Encrypts when no key of the store can (none loaded yet, or all
	 * expired): a ticket must be sent once announced, and a TLS 1.3
	 * client treats an empty one as a decode error. Never accepted to
	 * decrypt, so such a ticket falls back to a full handshake. */
	struct tls_ticket_key local;
	uint64_t synced_ms; /* the last attempt (0: none) */
	atomic_uint_fast64_t resumed, refused_n;
};

static int tickets_index = -1;

struct tls_tickets *
tls_tickets_new(const struct fleetd_config *cfg, struct revoked_set *refused)
{
	struct tls_tickets *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->policy.lifetime_s = cfg->tls_ticket_lifetime;
	t->policy.rotation_s = cfg->tls_ticket_key_rotation;
	t->refused = refused;
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return NULL;
	}
	if (RAND_bytes(t->local.name, sizeof(t->local.name)) != 1 ||
	    RAND_bytes(t->local.secret, sizeof(t->local.secret)) != 1) {
		log_openssl(LOG_LEVEL_ERROR, "tls tickets: random");
		tls_tickets_free(t);
		return NULL;
	}
	atomic_init(&t->resumed, 0);
	atomic_init(&t->refused_n, 0);
	return t;
}

void
tls_tickets_free(struct tls_tickets *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

bool
tls_tickets_enabled(const struct tls_tickets *t)
{
	return t != NULL && t->policy.lifetime_s > 0;
}

uint64_t
tls_tickets_resumed(const struct tls_tickets *t)
{
	return t != NULL ? atomic_load(&t->resumed) : 0;
}

uint64_t
tls_tickets_refused(const struct tls_tickets *t)
{
	return t != NULL ? atomic_load(&t->refused_n) : 0;
}

bool
tls_tickets_sync_due(const struct tls_tickets *t, uint64_t now_ms)
{
	return tls_tickets_enabled(t) &&
	       (t->synced_ms == 0 ||
		now_ms - t->synced_ms >= TLS_TICKETS_SYNC_MS);
}

int
tls_tickets_sync(struct tls_tickets *t, struct store *st, uint64_t now_ms)
{
	struct tls_ticket_key fresh;
	struct tls_ticket_key *keys = NULL;
	size_t n = 0;
	int64_t now_s = 0;
	int rc = -1;

	if (!tls_tickets_enabled(t))
		return 0;
	t->synced_ms = now_ms;
	keys = calloc(TLS_TICKET_KEYS_MAX, sizeof(*keys));
	if (keys == NULL)
		return -1;
	if (RAND_bytes(fresh.name, sizeof(fresh.name)) != 1 ||
	    RAND_bytes(fresh.secret, sizeof(fresh.secret)) != 1) {
		log_openssl(LOG_LEVEL_ERROR, "tls tickets: random");
		goto out;
	}
	fresh.created = fresh.expires = 0;
	if (store_tls_ticket_keys_sync(st, &t->policy, &fresh, keys, &n,
				       &now_s) != STORE_OK) {
		log_warn("tls tickets: cannot load the ticket keys; the %s "
			 "ones stay in use until they expire",
			 t->n != 0 ? "loaded" : "(no)");
		goto out;
	}
	pthread_mutex_lock(&t->lock);
	if (n != t->n || memcmp(keys, t->keys, n * sizeof(*keys)) != 0)
		log_info("tls tickets: %zu ticket key(s) loaded", n);
	OPENSSL_cleanse(t->keys, sizeof(t->keys));
	memcpy(t->keys, keys, n * sizeof(*keys));
	t->n = n;
	pthread_mutex_unlock(&t->lock);
	rc = 0;
out:
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	OPENSSL_cleanse(keys, TLS_TICKET_KEYS_MAX * sizeof(*keys));
	free(keys);
	return rc;
}

/* The peer certificate's notAfter in epoch seconds; 0 when unreadable
 * (then no ticket outlives it and none resumes). */
static int64_t
cert_not_after(const X509 *cert, int64_t now)
{
	int days = 0, secs = 0;

	if (cert == NULL ||
	    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) != 1)
		return 0;
	return now + (int64_t)days * 86400 + secs;
}

/* The HMAC and cipher of a ticket under key k (OpenSSL's ticket format:
 * HMAC-SHA256 over the encrypted state, AES-256-CBC). */
static int
tickets_init(const struct tls_ticket_key *k, unsigned char *iv,
	     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(
		OSSL_MAC_PARAM_KEY, (void *)(uintptr_t)k->secret, 32);
	params[1] = OSSL_PARAM_construct_utf8_string(
		OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t) "SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
					  k->secret + 32, iv) == 1
			       ? 0
			       : -1;
	return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->secret + 32,
				  iv) == 1
		       ? 0
		       : -1;
}

/*
 * OpenSSL's ticket key callback. Encrypting: the newest key of the store
 * (or the worker's local one, see struct tls_tickets), a fresh IV; returns
 * 1. Decrypting: the key the ticket names if it is still accepted;
 * returns 1, 2 when the ticket should be replaced by one under the newest
 * key, 0 when the key is unknown or expired (a full handshake), -1 on
 * error.
 */
static int
tickets_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
	       EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_tickets *t =
		SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tickets_index);
	int64_t now = (int64_t)time(NULL);
	const struct tls_ticket_key *k, *newest;
	struct tls_ticket_key use;
	int rc = -1;

	if (t == NULL)
		return -1;
	pthread_mutex_lock(&t->lock);
	newest = tls_ticket_keys_encrypting(t->keys, t->n, now);
	if (enc) {
		/* TLS 1.2 resumption has no fresh key exchange: its tickets
		 * are made under the local key, which never decrypts. */
		if (newest == NULL || SSL_version(ssl) != TLS1_3_VERSION)
			newest = &t->local;
		use = *newest;
		k = &use;
	} else {
		k = tls_ticket_keys_decrypting(t->keys, t->n, name, now);
		if (k != NULL)
			use = *k;
	}
	pthread_mutex_unlock(&t->lock);
	if (enc) {
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
			goto out;
		memcpy(name, use.name, TLS_TICKET_NAME_LEN);
		rc = tickets_init(&use, iv, cctx, hctx, 1) == 0 ? 1 : -1;
		goto out;
	}
	if (k == NULL) {
		rc = 0;
		goto out;
	}
	if (tickets_init(&use, iv, cctx, hctx, 0) != 0)
		goto out;
	rc = newest != NULL && memcmp(newest->name, use.name,
				      TLS_TICKET_NAME_LEN) == 0
		     ? 1
		     : 2;
out:
	if (rc < 0)
		log_openssl(LOG_LEVEL_ERROR, "tls tickets: ticket key");
	OPENSSL_cleanse(&use, sizeof(use));
	return rc;
}

/* A ticket is about to be made: its lifetime, never beyond the key's
 * acceptance nor the peer certificate's notAfter. */
static int
tickets_generate_cb(SSL *ssl, void *arg)
{
	struct tls_tickets *t = arg;
	SSL_SESSION *sess = SSL_get_session(ssl);
	int64_t now = (int64_t)time(NULL);
	int64_t key_expires = now + t->policy.lifetime_s;
	const struct tls_ticket_key *newest;
	long life;

	if (sess == NULL)
		return 1;
	pthread_mutex_lock(&t->lock);
	newest = tls_ticket_keys_encrypting(t->keys, t->n, now);
	if (newest != NULL)
		key_expires = newest->expires;
	pthread_mutex_unlock(&t->lock);
	life = tls_ticket_lifetime(
		&t->policy, now, key_expires,
		cert_not_after(SSL_get0_peer_certificate(ssl), now));
	/* 0: a ticket must still be sent; one second makes it useless. */
	SSL_SESSION_set_timeout(sess, life > 0 ? life : 1);
	return 1;
}

/* The result label of fleetd_tls_resumptions_total for a refusal. */
static const char *
tickets_refusal_label(enum tls_resume r)
{
	switch (r) {
	case TLS_RESUME_OK:
		return "resumed";
	case TLS_RESUME_NOT_LOADED:
		return "not_loaded";
	case TLS_RESUME_REFUSED:
		return "revoked"; /* revoked, superseded or decommissioned */
	case TLS_RESUME_CERT_EXPIRED:
		return "cert_expired";
	case TLS_RESUME_TICKET_EXPIRED:
		return "ticket_expired";
	case TLS_RESUME_DISABLED:
		return "disabled";
	}
	return "invalid";
}

/* Counts a ticket's fate (a fixed set of labels). */
static void
tickets_count(const char *result)
{
	metrics_add(METRIC_TLS_RESUMPTIONS, 1, "result", result, NULL);
}

/* A ticket decrypted (or not): may it resume? Exactly the checks of a
 * full handshake that need no signature (tls_resume_check). */
static SSL_TICKET_RETURN
tickets_decrypt_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
		   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	struct tls_tickets *t = arg;
	int64_t now = (int64_t)time(NULL);
	X509 *peer;
	char serial[PKI_SERIAL_HEX_MAX] = "";
	struct pki_error err;
	bool loaded, refused = false;
	enum tls_resume r;

	(void)ssl;
	(void)keyname;
	(void)keyname_len;
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		break;
	case SSL_TICKET_FATAL_ERR_MALLOC:
	case SSL_TICKET_FATAL_ERR_OTHER:
		tickets_count("error");
		return SSL_TICKET_RETURN_ABORT;
	case SSL_TICKET_NO_DECRYPT:
		/* A key we do not know (removed, expired, another
		 * deployment's) or a ticket that fails its HMAC. */
		tickets_count("unknown_key");
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default: /* no ticket offered: a full handshake, not counted */
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	peer = SSL_SESSION_get0_peer(sess);
	if (SSL_SESSION_get_protocol_version(sess) != TLS1_3_VERSION ||
	    peer == NULL ||
	    pki_cert_serial_hex(peer, serial, sizeof(serial), &err) != PKI_OK) {
		atomic_fetch_add(&t->refused_n, 1);
		tickets_count("invalid");
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	loaded = revoked_set_loaded(t->refused);
	if (loaded)
		refused = revoked_set_contains(t->refused, serial);
	r = tls_resume_check(&t->policy, now,
			     (int64_t)SSL_SESSION_get_time(sess),
			     (long)SSL_SESSION_get_timeout(sess),
			     cert_not_after(peer, now), loaded, refused);
	if (r != TLS_RESUME_OK) {
		atomic_fetch_add(&t->refused_n, 1);
		tickets_count(tickets_refusal_label(r));
		log_info("tls tickets: not resuming certificate %s: %s; a "
			 "full handshake instead",
			 serial, tls_resume_name(r));
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	atomic_fetch_add(&t->resumed, 1);
	tickets_count("resumed");
	return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
						  : SSL_TICKET_RETURN_USE;
}

int
tls_tickets_ssl_setup(struct tls_tickets *t, SSL_CTX *ctx)
{
	if (SSL_CTX_set_session_id_context(ctx, tickets_sid_ctx,
					   sizeof(tickets_sid_ctx) - 1) != 1)
		goto fail;
	/* Stateless tickets only: no server-side cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!tls_tickets_enabled(t)) {
		/* Every handshake verifies the chain and the refused set. */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		return 0;
	}
	if (tickets_index < 0)
		tickets_index =
			SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tickets_index < 0 ||
	    SSL_CTX_set_ex_data(ctx, tickets_index, t) != 1)
		goto fail;
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	/* Forward secrecy: a resumption must also make a fresh (EC)DHE
	 * share (psk_dhe_ke); a client offering only psk_ke gets a full
	 * handshake (OpenSSL's default, stated here). No 0-RTT data. */
	SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
	SSL_CTX_set_max_early_data(ctx, 0);
	/* One ticket per handshake: a device reconnects one at a time. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, t->policy.lifetime_s);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tickets_key_cb) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, tickets_generate_cb,
					  tickets_decrypt_cb, t) != 1)
		goto fail;
	return 0;
fail:
	log_openssl(LOG_LEVEL_ERROR, "tls tickets: device listener setup");
	return -1;
}
