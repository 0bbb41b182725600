/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For unit tests that run a TLS server on loopback: a self-signed P-256
 * certificate for 127.0.0.1 (CA:TRUE, so it is its own trust anchor),
 * valid for an hour, written as dir/cert.pem and dir/key.pem; the paths
 * go to cert_out and key_out (len bytes each).
 */
#ifndef FLEET_TLS_CERT_FIXTURE_H
#define FLEET_TLS_CERT_FIXTURE_H

#include <stddef.h>

void test_self_signed_cert(const char *dir, char *cert_out, char *key_out,
			   size_t len);

#endif
