/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.v1, the device channel's wire protocol: every message type in one
 * table (proto.c), with encode, decode and validate. The agent and fleetd's
 * channel build and parse messages only through this module, and
 * docs/protocol.md is the same table in prose.
 *
 * A message is one JSON object in one websocket text frame:
 * {"type": "<name>", <fields>}. Decoding is strict (RFC 8259 JSON in
 * UTF-8, no NUL bytes, no duplicate keys, declared types and sizes) and
 * yields a body that holds only the table's fields: unknown fields are
 * ignored (a newer peer may add optional fields) and never reach the
 * caller. Pure library: no lws, no libpq, no globals; frames are
 * untrusted and every length is checked before use.
 */
#ifndef FLEET_PROTO_H
#define FLEET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_SUBPROTOCOL "fleet.v1"
#define PROTO_FRAME_MAX (64u * 1024u) /* any frame but config.apply */
#define PROTO_CONFIG_DOC_MAX (256u * 1024u) /* config.apply document */
#define PROTO_CONFIG_FRAME_MAX (PROTO_CONFIG_DOC_MAX + 4096u)
#define PROTO_RX_MAX PROTO_CONFIG_FRAME_MAX /* largest frame of all */
#define PROTO_SEQ_MAX 9007199254740991LL /* 2^53 - 1: exact in JSON */
#define PROTO_INVENTORY_MAX (32u * 1024u)

enum proto_dir {
	PROTO_TO_SERVER = 1, /* agent -> server */
	PROTO_TO_AGENT = 2, /* server -> agent */
};

enum proto_type {
	/* agent -> server */
	PROTO_HELLO,
	PROTO_CONFIG_STATUS,
	PROTO_UPDATE_STATUS,
	PROTO_CERT_CSR,
	PROTO_CERT_INSTALLED,
	PROTO_CMD_RESULT,
	PROTO_KEYS_STATUS,
	/* server -> agent */
	PROTO_WELCOME,
	PROTO_ACK,
	PROTO_ERROR,
	PROTO_CONFIG_APPLY,
	PROTO_UPDATE_OFFER,
	PROTO_CERT_ROTATE,
	PROTO_CERT_ISSUED,
	PROTO_CMD,
	PROTO_UPDATE_KEYS,
	PROTO_TYPE_COUNT
};

enum proto_kind {
	PROTO_STRING, /* UTF-8 text of at most max bytes */
	PROTO_UUID, /* canonical lowercase 8-4-4-4-12 */
	PROTO_SHA256, /* 64 lowercase hex digits ("" if empty_ok) */
	PROTO_HEX, /* 1..max lowercase or uppercase hex digits */
	PROTO_PEM, /* "-----BEGIN ..." text of at most max bytes */
	PROTO_ENUM, /* one of values */
	PROTO_INT, /* integer in [min, imax] */
	PROTO_BOOL,
	PROTO_OBJECT, /* object of at most max bytes as compact JSON */
	PROTO_STRINGS, /* array of at most max strings, item_max bytes each */
};

struct proto_field {
	const char *name;
	enum proto_kind kind;
	bool required;
	size_t max; /* see enum proto_kind */
	int64_t min, imax; /* PROTO_INT */
	const char *const *values; /* PROTO_ENUM, NULL-terminated */
	size_t item_max; /* PROTO_STRINGS */
	bool empty_ok; /* PROTO_SHA256: "" allowed */
};

struct proto_def {
	enum proto_type type;
	const char *name;
	enum proto_dir dir;
	/* A report: carries seq, is kept by the agent until the server
	 * answers `ack` with that seq. */
	bool report;
	size_t frame_max;
	const struct proto_field *fields;
	size_t nfields;
};

enum proto_rc {
	PROTO_OK = 0,
	PROTO_ERR_MALFORMED = 1, /* not one JSON object with a type */
	PROTO_ERR_TOO_BIG = 2, /* over the type's frame limit */
	PROTO_ERR_UNKNOWN_TYPE = 3, /* no such type in this direction */
	PROTO_ERR_INVALID = 4, /* a field is missing, mistyped or too big */
	PROTO_ERR_NOMEM = 5,
};

/* What went wrong, ready for an `error` answer. */
struct proto_error {
	enum proto_rc rc;
	char code[48]; /* wire code: malformed, too-big, unknown-type,
			  bad-<type> */
	char message[192];
	char field[32]; /* the offending field, or "" */
	const struct proto_def *def; /* the type, when it was known */
	uint64_t seq; /* a report's seq when it was readable, else 0 */
};

/* A decoded message. body holds "type" and only the table's fields, all
 * validated; owned by the message (proto_msg_clear). */
struct proto_msg {
	const struct proto_def *def;
	json_t *body;
	uint64_t seq; /* reports (and ack); 0 otherwise */
};

/* The table entry of a type (never NULL for a valid enum value). */
const struct proto_def *proto_def(enum proto_type type);

/* The entry for a wire name in direction dir, or NULL. */
const struct proto_def *proto_lookup(const char *name, enum proto_dir dir);

/*
 * Decodes one frame of len bytes (untrusted, need not be NUL-terminated)
 * that travels in direction dir. PROTO_OK and *out filled (caller clears),
 * or an error in *err (out untouched).
 */
enum proto_rc proto_decode(const char *text, size_t len, enum proto_dir dir,
			   struct proto_msg *out, struct proto_error *err);

void proto_msg_clear(struct proto_msg *m);

/* Checks obj (a whole message, "type" included or not) against def. */
enum proto_rc proto_validate(const struct proto_def *def, const json_t *obj,
			     struct proto_error *err);

/*
 * Builds a message of type from fields (an object of field values,
 * stolen, may be NULL for none): "type" first, then the table's fields in
 * table order; unknown fields are an error here (we never send what the
 * table does not declare). A new object (caller owns), or NULL with *err.
 */
json_t *proto_build(enum proto_type type, json_t *fields,
		    struct proto_error *err);

/* proto_build, then compact JSON text within the type's frame limit;
 * caller frees the text, *len set. */
char *proto_encode(enum proto_type type, json_t *fields, size_t *len,
		   struct proto_error *err);

/* Field accessors on a decoded message (borrowed; NULL/dflt if absent). */
const char *proto_str(const struct proto_msg *m, const char *name);
int64_t proto_int(const struct proto_msg *m, const char *name, int64_t dflt);
const json_t *proto_get(const struct proto_msg *m, const char *name);

#endif
