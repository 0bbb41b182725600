/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fleet.v1 message table and its codec (see proto.h). One row per
 * message type: name, direction, whether it is a report, frame limit and
 * fields (type, required, limits). docs/protocol.md documents this table;
 * change both together. Runs in the agent and in fleetd's net workers;
 * the input of proto_decode is untrusted.
 */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ---------------------------------------------------------- */

#define SEQ_REQ                                                               \
	{                                                                     \
		.name = "seq", .kind = PROTO_INT, .required = true, .min = 1, \
		.imax = PROTO_SEQ_MAX                                         \
	}
#define F_STR(n, req, mx)                                                   \
	{                                                                   \
		.name = n, .kind = PROTO_STRING, .required = req, .max = mx \
	}
#define F_INT(n, req, lo, hi)                                             \
	{                                                                 \
		.name = n, .kind = PROTO_INT, .required = req, .min = lo, \
		.imax = hi                                                \
	}
#define F_UUID(n, req)                                         \
	{                                                      \
		.name = n, .kind = PROTO_UUID, .required = req \
	}
#define F_SHA(n, req, empty)                                      \
	{                                                         \
		.name = n, .kind = PROTO_SHA256, .required = req, \
		.empty_ok = empty                                 \
	}
#define F_HEX(n, req, mx)                                                \
	{                                                                \
		.name = n, .kind = PROTO_HEX, .required = req, .max = mx \
	}
#define F_PEM(n, req, mx)                                                \
	{                                                                \
		.name = n, .kind = PROTO_PEM, .required = req, .max = mx \
	}
#define F_ENUM(n, req, vals)                                                   \
	{                                                                      \
		.name = n, .kind = PROTO_ENUM, .required = req, .values = vals \
	}
#define F_OBJ(n, req, mx)                                                   \
	{                                                                   \
		.name = n, .kind = PROTO_OBJECT, .required = req, .max = mx \
	}
#define F_STRS(n, req, items, each)                                \
	{                                                          \
		.name = n, .kind = PROTO_STRINGS, .required = req, \
		.max = items, .item_max = each                     \
	}
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const config_states[] = {"applied", "failed", "drifted",
					    NULL};
static const char *const update_states[] = {
	"downloading", "downloaded", "installing", "installed",
	"rebooting",   "verifying",  "committed",  "failed",
	"rolled_back", "refused",    NULL};
/* Why an update was refused or failed: stable codes, docs/protocol.md. */
static const char *const update_reasons[] = {
	"bad-envelope",	 "bad-signature", "unknown-key",      "threshold",
	"expired",	 "not-newer",	  "hardware",	      "size-mismatch",
	"hash-mismatch", "oversize",	  "download-timeout", "download-failed",
	"no-space",	 "installer",	  "install-failed",   "reboot-failed",
	"health-failed", "superseded",	  "internal",	      NULL};
static const char *const keys_states[] = {"adopted", "refused", NULL};
static const char *const csr_reasons[] = {"renew", "rotate", NULL};
static const char *const cmd_statuses[] = {"ok", "failed", "refused", "timeout",
					   NULL};
static const char *const ack_statuses[] = {"applied", "duplicate", "stale",
					   "rejected", NULL};
static const char *const rotate_reasons[] = {"expiring", "operator", "campaign",
					     NULL};

static const struct proto_field hello_fields[] = {
	/* earlier agents sent a seq in hello; accepted and ignored */
	F_INT("seq", false, 0, PROTO_SEQ_MAX),
	F_UUID("device_id", false),
	F_STR("agent_version", true, 64),
	F_STR("fw_version", true, 128),
	F_INT("fw_version_num", false, 0, PROTO_SEQ_MAX),
	F_STR("model", true, 128),
	F_STR("boot_id", true, 64),
	F_INT("uptime", false, 0, PROTO_SEQ_MAX),
	F_STRS("addresses", false, 32, 64),
	F_INT("config_version", false, 0, PROTO_SEQ_MAX),
	F_SHA("config_hash", false, true),
	F_OBJ("inventory", false, PROTO_INVENTORY_MAX),
	F_INT("keyset_version", false, 0, PROTO_SEQ_MAX),
};

static const struct proto_field config_status_fields[] = {
	SEQ_REQ,
	F_INT("config_version", true, 0, PROTO_SEQ_MAX),
	F_SHA("config_hash", true, false),
	F_ENUM("state", true, config_states),
	F_STR("error", false, 1024),
};

static const struct proto_field update_status_fields[] = {
	SEQ_REQ,
	F_ENUM("state", true, update_states),
	F_INT("version", true, 0, PROTO_SEQ_MAX),
	F_INT("running_version", false, 0, PROTO_SEQ_MAX),
	F_STR("fw_version", false, 128),
	F_SHA("sha256", false, false),
	F_UUID("campaign_id", false),
	F_INT("progress", false, 0, 100),
	F_STR("error", false, 1024),
	F_UUID("deployment_id", false),
	F_ENUM("reason", false, update_reasons),
	F_INT("bytes", false, 0, PROTO_SEQ_MAX),
};

static const struct proto_field cert_csr_fields[] = {
	SEQ_REQ,
	F_PEM("csr", true, 8192),
	F_ENUM("reason", true, csr_reasons),
	F_UUID("rotation_id", false),
};

static const struct proto_field cert_installed_fields[] = {
	SEQ_REQ,
	F_HEX("serial", true, 64),
	F_HEX("previous_serial", false, 64),
	F_UUID("rotation_id", false),
};

static const struct proto_field cmd_result_fields[] = {
	SEQ_REQ,
	F_UUID("cmd_id", true),
	F_ENUM("status", true, cmd_statuses),
	F_INT("exit_code", false, -2147483648LL, 2147483647LL),
	F_STR("output", false, 16384),
};

static const struct proto_field keys_status_fields[] = {
	SEQ_REQ,
	F_INT("version", true, 1, PROTO_SEQ_MAX),
	F_ENUM("state", true, keys_states),
	F_STR("reason", false, 48),
	F_STR("error", false, 1024),
};

static const struct proto_field welcome_fields[] = {
	F_UUID("device_id", true),
	F_INT("heartbeat_interval", true, 1, 3600),
	F_STR("server_time", true, 40),
};

static const struct proto_field ack_fields[] = {
	SEQ_REQ,
	F_ENUM("status", true, ack_statuses),
};

static const struct proto_field error_fields[] = {
	F_STR("code", true, 48),
	F_STR("message", true, 512),
	F_INT("seq", false, 1, PROTO_SEQ_MAX),
	F_STR("in_reply_to", false, 32),
};

static const struct proto_field config_apply_fields[] = {
	F_INT("config_version", true, 0, PROTO_SEQ_MAX),
	F_SHA("config_hash", true, false),
	F_OBJ("document", true, PROTO_CONFIG_DOC_MAX),
	F_STR("profile", false, 128),
};

static const struct proto_field update_offer_fields[] = {
	F_OBJ("envelope", true, 32768),
	F_INT("version", true, 1, PROTO_SEQ_MAX),
	F_STR("artifact_url", true, 1024),
	F_SHA("sha256", true, false),
	F_INT("size", true, 1, PROTO_SEQ_MAX),
	F_UUID("campaign_id", false),
	F_UUID("deployment_id", false),
};

static const struct proto_field cert_rotate_fields[] = {
	F_UUID("rotation_id", true),
	F_ENUM("reason", true, rotate_reasons),
	F_UUID("campaign_id", false),
};

static const struct proto_field cert_issued_fields[] = {
	F_INT("csr_seq", true, 1, PROTO_SEQ_MAX),
	F_PEM("certificate", true, 16384),
	F_PEM("chain", true, 32768),
	F_HEX("serial", true, 64),
	F_UUID("rotation_id", false),
};

static const struct proto_field cmd_fields[] = {
	F_UUID("cmd_id", true),
	F_STR("name", true, 64),
	F_OBJ("args", false, 16384),
	F_INT("timeout", false, 1, 86400),
};

static const struct proto_field update_keys_fields[] = {
	F_OBJ("envelope", true, 32768),
	F_INT("version", true, 2, PROTO_SEQ_MAX),
};

#define DEF(t, n, d, rep, fmax, f) [t] = {t, n, d, rep, fmax, f, NFIELDS(f)}
/* Agent to server, a report (kept until acked): all of them but hello. */
#define REPORT(t, n, f) DEF(t, n, PROTO_TO_SERVER, true, PROTO_FRAME_MAX, f)
/* Server to agent: never a report; only config.apply has its own limit. */
#define TO_AGENT(t, n, f) DEF(t, n, PROTO_TO_AGENT, false, PROTO_FRAME_MAX, f)

static const struct proto_def defs[PROTO_TYPE_COUNT] = {
	DEF(PROTO_HELLO, "hello", PROTO_TO_SERVER, false, PROTO_FRAME_MAX,
	    hello_fields),
	REPORT(PROTO_CONFIG_STATUS, "config.status", config_status_fields),
	REPORT(PROTO_UPDATE_STATUS, "update.status", update_status_fields),
	REPORT(PROTO_CERT_CSR, "cert.csr", cert_csr_fields),
	REPORT(PROTO_CERT_INSTALLED, "cert.installed", cert_installed_fields),
	REPORT(PROTO_CMD_RESULT, "cmd.result", cmd_result_fields),
	REPORT(PROTO_KEYS_STATUS, "keys.status", keys_status_fields),
	TO_AGENT(PROTO_WELCOME, "welcome", welcome_fields),
	TO_AGENT(PROTO_ACK, "ack", ack_fields),
	TO_AGENT(PROTO_ERROR, "error", error_fields),
	DEF(PROTO_CONFIG_APPLY, "config.apply", PROTO_TO_AGENT, false,
	    PROTO_CONFIG_FRAME_MAX, config_apply_fields),
	TO_AGENT(PROTO_UPDATE_OFFER, "update.offer", update_offer_fields),
	TO_AGENT(PROTO_CERT_ROTATE, "cert.rotate", cert_rotate_fields),
	TO_AGENT(PROTO_CERT_ISSUED, "cert.issued", cert_issued_fields),
	TO_AGENT(PROTO_CMD, "cmd", cmd_fields),
	TO_AGENT(PROTO_UPDATE_KEYS, "update.keys", update_keys_fields),
};

const struct proto_def *
proto_def(enum proto_type type)
{
	if ((unsigned)type >= PROTO_TYPE_COUNT)
		return NULL;
	return &defs[type];
}

const struct proto_def *
proto_lookup(const char *name, enum proto_dir dir)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < PROTO_TYPE_COUNT; i++) {
		if (defs[i].dir == dir && strcmp(defs[i].name, name) == 0)
			return &defs[i];
	}
	return NULL;
}

/* ---- errors ------------------------------------------------------------- */

static enum proto_rc
fail(struct proto_error *err, enum proto_rc rc, const struct proto_def *def,
     const char *field, const char *what)
{
	if (err == NULL)
		return rc;
	err->rc = rc;
	err->def = def;
	switch (rc) {
	case PROTO_ERR_MALFORMED:
		snprintf(err->code, sizeof(err->code), "malformed");
		break;
	case PROTO_ERR_TOO_BIG:
		snprintf(err->code, sizeof(err->code), "too-big");
		break;
	case PROTO_ERR_UNKNOWN_TYPE:
		snprintf(err->code, sizeof(err->code), "unknown-type");
		break;
	case PROTO_ERR_INVALID:
		snprintf(err->code, sizeof(err->code), "bad-%s",
			 def != NULL ? def->name : "message");
		break;
	default:
		snprintf(err->code, sizeof(err->code), "internal");
		break;
	}
	snprintf(err->field, sizeof(err->field), "%s",
		 field != NULL ? field : "");
	if (field != NULL)
		snprintf(err->message, sizeof(err->message), "%.31s: %s", field,
			 what);
	else
		snprintf(err->message, sizeof(err->message), "%s", what);
	return rc;
}

static void
error_init(struct proto_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

/* ---- field checks ------------------------------------------------------- */

static bool
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool
is_hex(char c)
{
	return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

static bool
uuid_ok(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_lower_hex(s[i])) {
			return false;
		}
	}
	return true;
}

/* Size of v as compact JSON without building the text. */
static size_t
compact_size(const json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

/* NULL when v is a valid value of f, else what is wrong. */
static const char *
field_problem(const struct proto_field *f, const json_t *v)
{
	const char *s;
	size_t n, i;
	json_int_t iv;

	switch (f->kind) {
	case PROTO_STRING:
	case PROTO_UUID:
	case PROTO_SHA256:
	case PROTO_HEX:
	case PROTO_PEM:
	case PROTO_ENUM:
		if (!json_is_string(v))
			return "not a string";
		s = json_string_value(v);
		n = json_string_length(v);
		if (strlen(s) != n)
			return "contains a NUL character";
		break;
	case PROTO_INT:
		if (!json_is_integer(v))
			return "not an integer";
		iv = json_integer_value(v);
		if (iv < f->min || iv > f->imax)
			return "out of range";
		return NULL;
	case PROTO_BOOL:
		return json_is_boolean(v) ? NULL : "not a boolean";
	case PROTO_OBJECT:
		if (!json_is_object(v))
			return "not an object";
		if (compact_size(v) > f->max)
			return "larger than its limit";
		return NULL;
	case PROTO_STRINGS:
		if (!json_is_array(v))
			return "not an array";
		if (json_array_size(v) > f->max)
			return "too many items";
		for (i = 0; i < json_array_size(v); i++) {
			const json_t *it = json_array_get(v, i);

			if (!json_is_string(it) ||
			    json_string_length(it) > f->item_max ||
			    strlen(json_string_value(it)) !=
				    json_string_length(it))
				return "an item is not a short string";
		}
		return NULL;
	default:
		return "unknown field kind";
	}
	/* string kinds */
	switch (f->kind) {
	case PROTO_STRING:
		return n > f->max ? "longer than its limit" : NULL;
	case PROTO_UUID:
		return uuid_ok(s, n) ? NULL : "not a lowercase UUID";
	case PROTO_SHA256:
		if (n == 0 && f->empty_ok)
			return NULL;
		if (n != 64)
			return "not 64 lowercase hex digits";
		for (i = 0; i < n; i++) {
			if (!is_lower_hex(s[i]))
				return "not 64 lowercase hex digits";
		}
		return NULL;
	case PROTO_HEX:
		if (n == 0 || n > f->max)
			return "not 1 to 64 hex digits";
		for (i = 0; i < n; i++) {
			if (!is_hex(s[i]))
				return "not 1 to 64 hex digits";
		}
		return NULL;
	case PROTO_PEM:
		if (n > f->max)
			return "longer than its limit";
		return strncmp(s, "-----BEGIN ", 11) == 0 ? NULL
							  : "not PEM text";
	case PROTO_ENUM:
		for (i = 0; f->values[i] != NULL; i++) {
			if (strcmp(s, f->values[i]) == 0)
				return NULL;
		}
		return "not one of the allowed values";
	default:
		return NULL;
	}
}

enum proto_rc
proto_validate(const struct proto_def *def, const json_t *obj,
	       struct proto_error *err)
{
	const char *problem;
	const json_t *v;
	size_t i;

	error_init(err);
	if (def == NULL || !json_is_object(obj))
		return fail(err, PROTO_ERR_MALFORMED, def, NULL,
			    "a message is one JSON object");
	v = json_object_get(obj, "type");
	if (v != NULL && (!json_is_string(v) ||
			  strcmp(json_string_value(v), def->name) != 0))
		return fail(err, PROTO_ERR_INVALID, def, "type",
			    "does not name this message type");
	/* seq first, so that an error about any other field can name it */
	if (def->report && err != NULL) {
		v = json_object_get(obj, "seq");
		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= PROTO_SEQ_MAX)
			err->seq = (uint64_t)json_integer_value(v);
	}
	for (i = 0; i < def->nfields; i++) {
		const struct proto_field *f = &def->fields[i];

		v = json_object_get(obj, f->name);
		if (v == NULL || json_is_null(v)) {
			if (!f->required)
				continue;
			return fail(err, PROTO_ERR_INVALID, def, f->name,
				    "required");
		}
		problem = field_problem(f, v);
		if (problem != NULL)
			return fail(err, PROTO_ERR_INVALID, def, f->name,
				    problem);
	}
	return PROTO_OK;
}

/* ---- decode ------------------------------------------------------------- */

/* A new object with "type" and the table's fields found in obj (a null
 * value means absent; obj may be NULL). */
static json_t *
extract(const struct proto_def *def, json_t *obj)
{
	json_t *body = json_object();
	size_t i;

	if (body == NULL ||
	    json_object_set_new(body, "type", json_string(def->name)) != 0)
		goto fail;
	for (i = 0; i < def->nfields; i++) {
		json_t *v = json_object_get(obj, def->fields[i].name);

		if (v != NULL && !json_is_null(v) &&
		    json_object_set(body, def->fields[i].name, v) != 0)
			goto fail;
	}
	return body;
fail:
	json_decref(body);
	return NULL;
}

enum proto_rc
proto_decode(const char *text, size_t len, enum proto_dir dir,
	     struct proto_msg *out, struct proto_error *err)
{
	const struct proto_def *def;
	json_error_t jerr;
	json_t *obj = NULL, *body;
	const json_t *type;
	enum proto_rc rc;

	error_init(err);
	if (len > PROTO_RX_MAX)
		return fail(err, PROTO_ERR_TOO_BIG, NULL, NULL,
			    "frame over the size limit");
	/* jansson stops at a raw NUL; anything after it must not be
	 * ignored silently. */
	if (text == NULL || len == 0 || memchr(text, '\0', len) != NULL)
		return fail(err, PROTO_ERR_MALFORMED, NULL, NULL,
			    "a message is one JSON object");
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return fail(err, PROTO_ERR_MALFORMED, NULL, NULL,
			    "a message is one JSON object");
	}
	type = json_object_get(obj, "type");
	if (!json_is_string(type)) {
		json_decref(obj);
		return fail(err, PROTO_ERR_MALFORMED, NULL, "type",
			    "the message has no type");
	}
	def = proto_lookup(json_string_value(type), dir);
	if (def == NULL) {
		json_decref(obj);
		return fail(err, PROTO_ERR_UNKNOWN_TYPE, NULL, NULL,
			    "this peer does not handle that message type");
	}
	if (len > def->frame_max) {
		json_decref(obj);
		return fail(err, PROTO_ERR_TOO_BIG, def, NULL,
			    "frame over the size limit of its type");
	}
	rc = proto_validate(def, obj, err);
	if (rc != PROTO_OK) {
		json_decref(obj);
		return rc;
	}
	body = extract(def, obj);
	json_decref(obj);
	if (body == NULL)
		return fail(err, PROTO_ERR_NOMEM, def, NULL, "out of memory");
	out->def = def;
	out->body = body;
	out->seq = 0;
	if (def->report || def->type == PROTO_ACK)
		out->seq = (uint64_t)json_integer_value(
			json_object_get(body, "seq"));
	return PROTO_OK;
}

void
proto_msg_clear(struct proto_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->body);
	memset(m, 0, sizeof(*m));
}

/* ---- encode ------------------------------------------------------------- */

json_t *
proto_build(enum proto_type type, json_t *fields, struct proto_error *err)
{
	const struct proto_def *def = proto_def(type);
	const char *key;
	json_t *msg = NULL, *v;
	size_t i;
	bool known;

	error_init(err);
	if (def == NULL) {
		json_decref(fields);
		fail(err, PROTO_ERR_UNKNOWN_TYPE, NULL, NULL,
		     "no such message type");
		return NULL;
	}
	if (fields != NULL && !json_is_object(fields)) {
		json_decref(fields);
		fail(err, PROTO_ERR_MALFORMED, def, NULL,
		     "fields must be an object");
		return NULL;
	}
	json_object_foreach(fields, key, v)
	{
		known = strcmp(key, "type") == 0;
		for (i = 0; i < def->nfields && !known; i++)
			known = strcmp(key, def->fields[i].name) == 0;
		if (!known) {
			fail(err, PROTO_ERR_INVALID, def, key,
			     "not a field of this message type");
			json_decref(fields);
			return NULL;
		}
	}
	/* The same copy as decode: "type" and the table's fields, nulls
	 * left out (fields may be NULL: a message of "type" alone). */
	msg = extract(def, fields);
	if (msg == NULL)
		goto nomem;
	json_decref(fields);
	fields = NULL;
	if (proto_validate(def, msg, err) != PROTO_OK) {
		json_decref(msg);
		return NULL;
	}
	return msg;
nomem:
	json_decref(fields);
	json_decref(msg);
	fail(err, PROTO_ERR_NOMEM, def, NULL, "out of memory");
	return NULL;
}

char *
proto_encode(enum proto_type type, json_t *fields, size_t *len,
	     struct proto_error *err)
{
	json_t *msg = proto_build(type, fields, err);
	char *text;
	size_t n;

	if (msg == NULL)
		return NULL;
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL) {
		fail(err, PROTO_ERR_NOMEM, proto_def(type), NULL,
		     "out of memory");
		return NULL;
	}
	n = strlen(text);
	if (n > proto_def(type)->frame_max) {
		free(text);
		fail(err, PROTO_ERR_TOO_BIG, proto_def(type), NULL,
		     "message over the frame limit of its type");
		return NULL;
	}
	*len = n;
	return text;
}

/* ---- accessors ---------------------------------------------------------- */

const json_t *
proto_get(const struct proto_msg *m, const char *name)
{
	return m != NULL ? json_object_get(m->body, name) : NULL;
}

const char *
proto_str(const struct proto_msg *m, const char *name)
{
	return json_string_value(proto_get(m, name));
}

int64_t
proto_int(const struct proto_msg *m, const char *name, int64_t dflt)
{
	const json_t *v = proto_get(m, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}
