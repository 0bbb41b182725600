/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets that travel as text: random tokens, their SHA-256 fingerprints,
 * hex, constant-time comparison, random UUIDs.
 */
#ifndef FLEET_COMMON_SECRET_H
#define FLEET_COMMON_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_TOKEN_BYTES 32 /* 256 bits */
#define SECRET_SHA256_HEX 65 /* 64 hex digits + NUL */
#define SECRET_UUID_LEN 37 /* 36 + NUL */

/* Writes len bytes as lowercase hex plus NUL; out holds 2*len+1. */
void hex_encode(const void *data, size_t len, char *out);

/*
 * Makes a random token "<prefix><64 hex digits>" into out (at least
 * strlen(prefix) + 65 bytes). Returns 0 or -1 if the RNG failed.
 */
int secret_token_new(const char *prefix, char *out, size_t outlen);

/* SHA-256 of len bytes as 64 lowercase hex digits. */
void secret_sha256_hex(const void *data, size_t len,
		       char out[SECRET_SHA256_HEX]);

/* Constant-time equality of two strings of the same length. */
bool secret_equal(const char *a, const char *b);

/* A random (version 4) UUID, lowercase. Returns 0 or -1. */
int secret_uuid_v4(char out[SECRET_UUID_LEN]);

/* True if s is a canonical lowercase UUID. */
bool secret_is_uuid(const char *s);

#endif
