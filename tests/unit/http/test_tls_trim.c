/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_trim_session() on real OpenSSL connections in memory (a BIO pair):
 * a server that asks for a client certificate, a client that has one.
 * After the trim the server holds neither the session it negotiated nor
 * the client's certificate, and the connection carries data both ways,
 * key updates from either side and a clean close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "channel/tls_trim.h"
#include "tls_cert_fixture.h"

static char server_cert[512], server_key[512];
static char client_cert[512], client_key[512];
static char tmp_dir[64];
static int freed_index = -1;
static int certs_freed;

/* Called when a certificate that carries the marker is freed. */
static void
cert_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
	   void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL)
		certs_freed++;
}

static int
setup(void **state)
{
	char dir[sizeof(tmp_dir) + 16];

	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_tls_trim.XXXXXX");
	assert_non_null(mkdtemp(tmp_dir));
	snprintf(dir, sizeof(dir), "%s/server", tmp_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	test_self_signed_cert(dir, server_cert, server_key, 512);
	snprintf(dir, sizeof(dir), "%s/client", tmp_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	test_self_signed_cert(dir, client_cert, client_key, 512);
	freed_index = X509_get_ex_new_index(0, NULL, NULL, NULL, cert_freed);
	assert_true(freed_index >= 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *server, *client;
};

static SSL_CTX *
server_context(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, server_cert),
			 1);
	assert_int_equal(
		SSL_CTX_use_PrivateKey_file(ctx, server_key, SSL_FILETYPE_PEM),
		1);
	/* The client's self-signed certificate is its own trust anchor. */
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, client_cert, NULL),
			 1);
	SSL_CTX_set_verify(
		ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"t", 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

static SSL_CTX *
client_context(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, client_cert),
			 1);
	assert_int_equal(
		SSL_CTX_use_PrivateKey_file(ctx, client_key, SSL_FILETYPE_PEM),
		1);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, server_cert, NULL),
			 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	return ctx;
}

/* Moves whatever each side wrote to the other, until neither moves. */
static void
pump(struct pair *p, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		int s = SSL_do_handshake(p->server);
		int c = SSL_do_handshake(p->client);

		if (s == 1 && c == 1)
			return;
	}
	fail_msg("handshake did not finish");
}

static void
pair_connect(struct pair *p, SSL_SESSION *resume)
{
	BIO *sbio, *cbio;

	p->server = SSL_new(p->sctx);
	p->client = SSL_new(p->cctx);
	assert_non_null(p->server);
	assert_non_null(p->client);
	assert_int_equal(BIO_new_bio_pair(&sbio, 0, &cbio, 0), 1);
	SSL_set_bio(p->server, sbio, sbio);
	SSL_set_bio(p->client, cbio, cbio);
	SSL_set_accept_state(p->server);
	SSL_set_connect_state(p->client);
	if (resume != NULL)
		assert_int_equal(SSL_set_session(p->client, resume), 1);
	pump(p, 20);
}

/* Writes on one side, reads it on the other (pumping the reader's own
 * post-handshake messages: tickets, key updates). */
static void
carry(SSL *from, SSL *to, const char *text)
{
	char buf[64];
	int n = -1;

	assert_int_equal(SSL_write(from, text, (int)strlen(text)),
			 (int)strlen(text));
	for (int i = 0; i < 10 && n <= 0; i++) {
		n = SSL_read(to, buf, sizeof(buf) - 1);
		if (n <= 0)
			assert_int_equal(SSL_get_error(to, n),
					 SSL_ERROR_WANT_READ);
		/* The writer may owe an answer (a key update). */
		(void)SSL_read(from, buf, 0);
	}
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

static void
both_ways(struct pair *p)
{
	carry(p->client, p->server, "hello from the device");
	carry(p->server, p->client, "welcome");
}

/* Trims the server's side and checks what it freed and what it kept. */
static void
trim_server(struct tls_trim *t, struct pair *p, bool full_handshake)
{
	X509 *peer = SSL_get0_peer_certificate(p->server);
	const char *cipher = SSL_get_cipher_name(p->server);
	int version = SSL_version(p->server);
	char cipher_before[64];

	assert_non_null(peer);
	assert_int_equal(SSL_get_verify_result(p->server), X509_V_OK);
	snprintf(cipher_before, sizeof(cipher_before), "%s", cipher);
	certs_freed = 0;
	assert_int_equal(X509_set_ex_data(peer, freed_index, peer), 1);

	assert_int_equal(tls_trim_session(t, p->server), 0);

	assert_null(SSL_get0_peer_certificate(p->server));
	/* The decoded certificate is gone, not merely unreachable: a full
	 * handshake's verified chain held it as well. */
	assert_int_equal(certs_freed, 1);
	assert_int_equal(SSL_get_verify_result(p->server), X509_V_OK);
	assert_int_equal(SSL_version(p->server), version);
	assert_string_equal(SSL_get_cipher_name(p->server), cipher_before);
	assert_true(SSL_get_SSL_CTX(p->server) == p->sctx);
	if (full_handshake)
		assert_int_equal(
			sk_X509_num(SSL_get0_verified_chain(p->server)), 0);
}

static void
pair_close(struct pair *p)
{
	assert_true(SSL_shutdown(p->client) >= 0);
	assert_int_equal(SSL_shutdown(p->server) >= 0, 1);
	SSL_free(p->server);
	SSL_free(p->client);
	p->server = p->client = NULL;
}

static void
run_version(int max_version)
{
	struct tls_trim *t = tls_trim_new();
	struct pair p = {server_context(), client_context(max_version), NULL,
			 NULL};

	assert_non_null(t);
	pair_connect(&p, NULL);
	assert_int_equal(SSL_version(p.server), max_version);
	both_ways(&p);
	trim_server(t, &p, true);
	both_ways(&p);
	if (max_version == TLS1_3_VERSION) {
		assert_int_equal(
			SSL_key_update(p.server, SSL_KEY_UPDATE_REQUESTED), 1);
		carry(p.server, p.client, "after the server's key update");
		carry(p.client, p.server, "and the device's answer");
		assert_int_equal(
			SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED),
			1);
		carry(p.client, p.server, "after the device's key update");
	}
	both_ways(&p);
	/* A second connection uses the context made for this method and
	 * shares the first one's empty session, which cannot be resumed. */
	struct pair q = {p.sctx, p.cctx, NULL, NULL};
	pair_connect(&q, NULL);
	trim_server(t, &q, true);
	assert_true(SSL_get_session(q.server) == SSL_get_session(p.server));
	assert_int_equal(SSL_SESSION_is_resumable(SSL_get_session(q.server)),
			 0);
	both_ways(&q);
	both_ways(&p);
	/* The end of one leaves the other working. */
	pair_close(&p);
	both_ways(&q);
	pair_close(&q);
	SSL_CTX_free(p.sctx);
	SSL_CTX_free(p.cctx);
	tls_trim_free(t);
}

static void
test_trim_tls13(void **state)
{
	(void)state;
	run_version(TLS1_3_VERSION);
}

static void
test_trim_tls12(void **state)
{
	(void)state;
	run_version(TLS1_2_VERSION);
}

/* The ticket the server sent before the trim still resumes, and a
 * resumed connection is trimmed like a full one. */
static void
test_trim_resumed(void **state)
{
	struct tls_trim *t = tls_trim_new();
	struct pair p = {server_context(), client_context(TLS1_3_VERSION), NULL,
			 NULL};
	SSL_SESSION *ticket;

	(void)state;
	pair_connect(&p, NULL);
	both_ways(&p); /* the client reads its ticket */
	trim_server(t, &p, true);
	ticket = SSL_get1_session(p.client);
	assert_non_null(ticket);
	assert_int_equal(SSL_SESSION_is_resumable(ticket), 1);
	pair_close(&p);

	pair_connect(&p, ticket);
	assert_int_equal(SSL_session_reused(p.server), 1);
	trim_server(t, &p, false);
	both_ways(&p);
	pair_close(&p);
	SSL_SESSION_free(ticket);
	SSL_CTX_free(p.sctx);
	SSL_CTX_free(p.cctx);
	tls_trim_free(t);
}

/* Before the handshake has finished there is nothing to trim: the
 * connection is left as it is and finishes normally. */
static void
test_trim_refused_during_handshake(void **state)
{
	struct tls_trim *t = tls_trim_new();
	struct pair p = {server_context(), client_context(TLS1_3_VERSION), NULL,
			 NULL};
	BIO *sbio, *cbio;

	(void)state;
	p.server = SSL_new(p.sctx);
	p.client = SSL_new(p.cctx);
	assert_int_equal(BIO_new_bio_pair(&sbio, 0, &cbio, 0), 1);
	SSL_set_bio(p.server, sbio, sbio);
	SSL_set_bio(p.client, cbio, cbio);
	SSL_set_accept_state(p.server);
	SSL_set_connect_state(p.client);
	assert_int_equal(tls_trim_session(t, p.server), -1);
	assert_int_equal(tls_trim_session(NULL, p.server), -1);
	pump(&p, 20);
	assert_non_null(SSL_get0_peer_certificate(p.server));
	both_ways(&p);
	pair_close(&p);
	SSL_CTX_free(p.sctx);
	SSL_CTX_free(p.cctx);
	tls_trim_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim_tls13),
		cmocka_unit_test(test_trim_tls12),
		cmocka_unit_test(test_trim_resumed),
		cmocka_unit_test(test_trim_refused_during_handshake),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
