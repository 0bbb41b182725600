/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Canonical JSON: one byte sequence per JSON value, so that fleetd and the
 * agent compute the same SHA-256 over a configuration document however it
 * was spelled on the wire (the config hash of DESIGN.md §6).
 *
 * The model is RFC 8785 (JSON Canonicalization Scheme, JCS):
 * - no insignificant whitespace;
 * - object members sorted by key, arrays in order;
 * - strings in UTF-8, escaping only '"', '\\' and the control characters
 *   below U+0020 (\b \f \n \r \t by name, the others as \u00XX with
 *   lowercase hex); everything else, '/', U+007F and U+2028 included,
 *   is written as itself;
 * - real numbers in the shortest form that reads back to the same IEEE 754
 *   double, laid out as ECMAScript's Number.prototype.toString does
 *   (1e+21, 1e-7, 0.000001, 123.5; -0 is written 0; a real with an
 *   integral value below 2^63 is written without a fraction: 1.0 -> 1).
 *
 * Where this differs from JCS, and why:
 * - Keys are sorted by their UTF-8 bytes (memcmp), not by UTF-16 code
 *   units. The two orders agree except between keys holding characters
 *   above U+FFFF and keys holding U+E000..U+FFFF at the same position;
 *   byte order needs no transcoding and is what a C agent gets for free.
 * - Integers (numbers jansson parsed without a fraction or exponent) are
 *   written as exact decimal integers over the whole int64 range, where
 *   JCS would first round them to a double (2^53 + 1 would become
 *   9007199254740992). Config documents hold counters and ids; silently
 *   changing them would be worse than leaving JCS.
 * - A real with an integral value of 2^63 or more is written in exponent
 *   form (1e+20, 2.9514790517935283e+20), where JCS writes digits up to
 *   1e21 (100000000000000000000): digits are read back as an integer,
 *   and jansson (and so the agent) refuses integers past int64, so the
 *   JCS form would not parse back. Below 2^63 the JCS form is kept.
 * - Strings may hold U+0000 (jansson keeps their length); it is written
 *   \u0000 like any control character.
 *
 * Pure functions, no global state; used by fleetd (core), the agent and
 * fleetctl. The input is a jansson value the caller owns (any origin).
 */
#ifndef FLEET_COMMON_CANON_H
#define FLEET_COMMON_CANON_H

#include <jansson.h>
#include <stddef.h>

/* Hard limit on the canonical text (far above any config document). */
#define CANON_MAX_BYTES (64u * 1024u * 1024u)
/* Nesting deeper than this is refused (jansson's parser stops at 2048). */
#define CANON_MAX_DEPTH 2048

/*
 * Returns the canonical serialisation of doc, NUL-terminated, malloc'd:
 * the caller frees it. *len (if len is non-NULL) receives its length
 * without the NUL. Returns NULL (and leaves *len alone) if doc is NULL,
 * nests deeper than CANON_MAX_DEPTH, holds a real that is not finite,
 * would exceed CANON_MAX_BYTES, or memory runs out.
 */
char *canon_json(const json_t *doc, size_t *len);

/*
 * Writes the lowercase hex SHA-256 of canon_json(doc) and a NUL to hex.
 * Returns 0, or -1 (hex untouched) when canon_json fails.
 */
int canon_sha256_hex(const json_t *doc, char hex[65]);

/* Lowercase hex SHA-256 of len bytes (the hash of an already canonical
 * text, e.g. one read back from the database). Returns 0 or -1. */
int canon_sha256_hex_bytes(const void *data, size_t len, char hex[65]);

#endif
