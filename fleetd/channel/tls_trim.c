/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replacing an established server connection's session, with public
 * OpenSSL 3 calls only. SSL_set_session() would first switch the
 * connection to its context's method when the two differ, and they do
 * after every handshake: the context's method is the version-flexible
 * TLS_server_method(), the connection's is the negotiated version's
 * (ssl_choose_server_version). Switching frees the connection's record
 * state. So the connection is lent, for the call, a context of its own
 * method, and given its context back after it.
 */
#include "tls_trim.h"

#include <openssl/err.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

/* Contexts of the negotiated methods (TLS 1.2 and 1.3), and empty
 * sessions of the negotiated versions and ciphers. */
#define TRIM_METHODS 4
#define TRIM_SESSIONS 16

struct tls_trim {
	const SSL_METHOD *method[TRIM_METHODS];
	SSL_CTX *ctx[TRIM_METHODS];
	size_t nctx;
	SSL_SESSION *empty[TRIM_SESSIONS];
	size_t nempty;
	bool failed_logged;
};

struct tls_trim *
tls_trim_new(void)
{
	return calloc(1, sizeof(struct tls_trim));
}

void
tls_trim_free(struct tls_trim *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nctx; i++)
		SSL_CTX_free(t->ctx[i]);
	for (size_t i = 0; i < t->nempty; i++)
		SSL_SESSION_free(t->empty[i]);
	free(t);
}

/* A context whose method is the connection's, made once per method. */
static SSL_CTX *
trim_context(struct tls_trim *t, const SSL_METHOD *method)
{
	SSL_CTX *ctx;

	for (size_t i = 0; i < t->nctx; i++)
		if (t->method[i] == method)
			return t->ctx[i];
	if (t->nctx == TRIM_METHODS)
		return NULL;
	ctx = SSL_CTX_new(method);
	if (ctx == NULL)
		return NULL;
	t->method[t->nctx] = method;
	t->ctx[t->nctx] = ctx;
	t->nctx++;
	return ctx;
}

/*
 * The empty session of the connection's version and cipher, one for all
 * the worker's connections of that kind (a session is reference counted
 * and, on a server, not written after the handshake). It has no id, no
 * secret and no ticket, so it can neither be resumed nor be found in a
 * cache, and what an alert does to a session (removing it from the
 * cache) does nothing to it.
 */
static SSL_SESSION *
trim_empty_session(struct tls_trim *t, int version, const SSL_CIPHER *cipher)
{
	SSL_SESSION *sess;

	for (size_t i = 0; i < t->nempty; i++)
		if (SSL_SESSION_get_protocol_version(t->empty[i]) == version &&
		    SSL_SESSION_get0_cipher(t->empty[i]) == cipher)
			return t->empty[i];
	if (t->nempty == TRIM_SESSIONS)
		return NULL;
	sess = SSL_SESSION_new();
	if (sess == NULL ||
	    SSL_SESSION_set_protocol_version(sess, version) != 1 ||
	    SSL_SESSION_set_cipher(sess, cipher) != 1) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	t->empty[t->nempty++] = sess;
	return sess;
}

/* Empties the stack; the connection frees the stack itself. */
static void
trim_chain(STACK_OF(X509) * chain)
{
	X509 *cert;

	while (chain != NULL && (cert = sk_X509_pop(chain)) != NULL)
		X509_free(cert);
}

int
tls_trim_session(struct tls_trim *t, SSL *ssl)
{
	SSL_CTX *own = SSL_get_SSL_CTX(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	long verified = SSL_get_verify_result(ssl);
	SSL_CTX *lent;
	SSL_SESSION *empty;
	int rc = -1;

	if (t == NULL || own == NULL || cipher == NULL ||
	    !SSL_is_init_finished(ssl))
		goto out;
	lent = trim_context(t, SSL_get_ssl_method(ssl));
	empty = trim_empty_session(t, SSL_version(ssl), cipher);
	if (lent == NULL || empty == NULL || SSL_set_SSL_CTX(ssl, lent) != lent)
		goto out;
	rc = SSL_set_session(ssl, empty) == 1 ? 0 : -1;
	if (SSL_set_SSL_CTX(ssl, own) != own) {
		/* Cannot happen short of memory; the lent context has no
		 * certificate, so the connection is ended by the caller. */
		rc = -2;
		goto out;
	}
	/* SSL_set_session took the empty session's "unverified". */
	SSL_set_verify_result(ssl, verified);
	/* The chain a full handshake verified holds the certificate too. */
	trim_chain(SSL_get0_verified_chain(ssl));
out:
	if (rc == -1 && t != NULL && !t->failed_logged) {
		t->failed_logged = true;
		log_openssl(LOG_LEVEL_WARN, "tls: a connection keeps its "
					    "handshake's session");
	}
	ERR_clear_error();
	return rc;
}
