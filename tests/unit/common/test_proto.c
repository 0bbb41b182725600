/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.v1 codec, table-driven: one complete valid message per type; from
 * each, every required field removed, every field given a wrong JSON type,
 * every bounded field pushed one past its limit; plus frame limits,
 * malformed frames, direction, unknown fields and encode round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

#define UUID1 "\"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11\""
#define SHA1 \
	"\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""

/* Every field of every type, optional ones included. */
static const struct {
	enum proto_type type;
	const char *text;
} valid[] = {
	{PROTO_HELLO,
	 "{\"type\":\"hello\",\"seq\":3,\"device_id\":" UUID1
	 ",\"agent_version\":\"0.2.0\",\"fw_version\":\"1.4.2\","
	 "\"fw_version_num\":10402,\"model\":\"plc-x\",\"boot_id\":\"b0\","
	 "\"uptime\":5,\"addresses\":[\"10.0.0.5\",\"fe80::1\"],"
	 "\"config_version\":2,\"config_hash\":" SHA1
	 ",\"inventory\":{\"cpu\":\"arm\"}}"},
	{PROTO_CONFIG_STATUS,
	 "{\"type\":\"config.status\",\"seq\":7,\"config_version\":2,"
	 "\"config_hash\":" SHA1 ",\"state\":\"failed\",\"error\":\"hook\"}"},
	{PROTO_UPDATE_STATUS,
	 "{\"type\":\"update.status\",\"seq\":8,\"state\":\"rolled_back\","
	 "\"version\":12,\"running_version\":11,\"fw_version\":\"1.1\","
	 "\"sha256\":" SHA1 ",\"campaign_id\":" UUID1
	 ",\"progress\":100,\"error\":\"health hook failed\"}"},
	{PROTO_CERT_CSR,
	 "{\"type\":\"cert.csr\",\"seq\":9,\"csr\":\"-----BEGIN CERTIFICATE "
	 "REQUEST-----\\nMII=\\n-----END CERTIFICATE REQUEST-----\\n\","
	 "\"reason\":\"rotate\",\"rotation_id\":" UUID1 "}"},
	{PROTO_CERT_INSTALLED,
	 "{\"type\":\"cert.installed\",\"seq\":10,\"serial\":\"06AFAD95\","
	 "\"previous_serial\":\"7b\",\"rotation_id\":" UUID1 "}"},
	{PROTO_CMD_RESULT,
	 "{\"type\":\"cmd.result\",\"seq\":11,\"cmd_id\":" UUID1
	 ",\"status\":\"failed\",\"exit_code\":-1,\"output\":\"no\"}"},
	{PROTO_WELCOME, "{\"type\":\"welcome\",\"device_id\":" UUID1
			",\"heartbeat_interval\":30,\"server_time\":\"2026-11-"
			"20T10:00:00Z\"}"},
	{PROTO_ACK, "{\"type\":\"ack\",\"seq\":11,\"status\":\"duplicate\"}"},
	{PROTO_ERROR,
	 "{\"type\":\"error\",\"code\":\"bad-cmd.result\",\"message\":\"x\","
	 "\"seq\":4,\"in_reply_to\":\"cmd.result\"}"},
	{PROTO_CONFIG_APPLY,
	 "{\"type\":\"config.apply\",\"config_version\":3,\"config_hash\":" SHA1
	 ",\"document\":{\"a\":1},\"profile\":\"base\"}"},
	{PROTO_UPDATE_OFFER,
	 "{\"type\":\"update.offer\",\"envelope\":{\"payloadType\":\"x\","
	 "\"payload\":\"e30=\",\"signatures\":[]},\"version\":12,"
	 "\"artifact_url\":\"/artifacts/abc\",\"sha256\":" SHA1
	 ",\"size\":1024,\"campaign_id\":" UUID1 "}"},
	{PROTO_CERT_ROTATE,
	 "{\"type\":\"cert.rotate\",\"rotation_id\":" UUID1
	 ",\"reason\":\"operator\",\"campaign_id\":" UUID1 "}"},
	{PROTO_CERT_ISSUED,
	 "{\"type\":\"cert.issued\",\"csr_seq\":9,\"certificate\":\"-----BEGIN "
	 "CERTIFICATE-----\\n\",\"chain\":\"-----BEGIN CERTIFICATE-----\\n\","
	 "\"serial\":\"06AFAD95\",\"rotation_id\":" UUID1 "}"},
	{PROTO_CMD,
	 "{\"type\":\"cmd\",\"cmd_id\":" UUID1 ",\"name\":\"reboot\","
	 "\"args\":{\"delay\":5},\"timeout\":60}"},
	{PROTO_UPDATE_KEYS,
	 "{\"type\":\"update.keys\",\"envelope\":{\"payloadType\":\"x\","
	 "\"payload\":\"e30=\",\"signatures\":[]},\"version\":2}"},
	{PROTO_KEYS_STATUS,
	 "{\"type\":\"keys.status\",\"seq\":12,\"version\":2,"
	 "\"state\":\"refused\",\"reason\":\"threshold\",\"error\":\"x\"}"},
};
#define NVALID (sizeof(valid) / sizeof(valid[0]))

static json_t *
load(const char *text)
{
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);

	assert_non_null(o);
	return o;
}

/* Decodes obj (dumped) in the type's direction; returns rc, fills err. */
static enum proto_rc
decode_obj(const struct proto_def *d, const json_t *obj,
	   struct proto_error *err)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	struct proto_msg m;
	enum proto_rc rc;

	assert_non_null(text);
	memset(&m, 0, sizeof(m));
	rc = proto_decode(text, strlen(text), d->dir, &m, err);
	free(text);
	proto_msg_clear(&m);
	return rc;
}

static void
test_table_complete(void **state)
{
	bool seen[PROTO_TYPE_COUNT] = {false};
	size_t i;

	(void)state;
	assert_int_equal(NVALID, PROTO_TYPE_COUNT);
	for (i = 0; i < NVALID; i++)
		seen[valid[i].type] = true;
	for (i = 0; i < PROTO_TYPE_COUNT; i++) {
		const struct proto_def *d = proto_def((enum proto_type)i);

		assert_true(seen[i]);
		assert_non_null(d);
		assert_int_equal(d->type, i);
		assert_ptr_equal(proto_lookup(d->name, d->dir), d);
		assert_null(proto_lookup(d->name, d->dir == PROTO_TO_SERVER
							  ? PROTO_TO_AGENT
							  : PROTO_TO_SERVER));
		/* reports and only reports carry a required seq */
		if (d->report) {
			assert_string_equal(d->fields[0].name, "seq");
			assert_true(d->fields[0].required);
			assert_int_equal(d->dir, PROTO_TO_SERVER);
		}
	}
	assert_null(proto_def(PROTO_TYPE_COUNT));
}

static void
test_valid_roundtrip(void **state)
{
	struct proto_error err;
	struct proto_msg m;
	json_t *fields, *want;
	char *text;
	size_t i, len;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct proto_def *d = proto_def(valid[i].type);

		memset(&m, 0, sizeof(m));
		assert_int_equal(proto_decode(valid[i].text,
					      strlen(valid[i].text), d->dir, &m,
					      &err),
				 PROTO_OK);
		assert_ptr_equal(m.def, d);
		if (d->report)
			assert_int_equal(m.seq, proto_int(&m, "seq", 0));
		/* encode what was decoded: the same message, type first */
		fields = json_deep_copy(m.body);
		json_object_del(fields, "type");
		text = proto_encode(d->type, fields, &len, &err);
		assert_non_null(text);
		assert_int_equal(len, strlen(text));
		assert_int_equal(strncmp(text, "{\"type\":\"", 9), 0);
		want = load(valid[i].text);
		fields = load(text);
		assert_true(json_equal(want, fields));
		json_decref(want);
		json_decref(fields);
		free(text);
		proto_msg_clear(&m);
	}
}

/* A value of the wrong JSON type for each kind. */
static json_t *
wrong_type(enum proto_kind k)
{
	switch (k) {
	case PROTO_INT:
		return json_string("1");
	case PROTO_BOOL:
		return json_integer(1);
	case PROTO_OBJECT:
		return json_array();
	case PROTO_STRINGS:
		return json_object();
	default:
		return json_integer(12);
	}
}

/* A value of the right JSON type one past the field's limit, or NULL. */
static json_t *
over_limit(const struct proto_field *f)
{
	json_t *v;
	char *s;
	size_t i;

	switch (f->kind) {
	case PROTO_STRING:
	case PROTO_PEM:
	case PROTO_HEX:
		s = malloc(f->max + 2);
		assert_non_null(s);
		memcpy(s, "-----BEGIN ", 11);
		for (i = 11; i < f->max + 1; i++)
			s[i] = 'a';
		s[f->max + 1] = '\0';
		v = json_string(s);
		free(s);
		return v;
	case PROTO_UUID:
		return json_string("0B6F4C1E-8F0A-4A51-9D3C-2F1E0A9B7C11");
	case PROTO_SHA256:
		return json_string("9f86d081");
	case PROTO_ENUM:
		return json_string("no-such-value");
	case PROTO_INT:
		return f->imax < PROTO_SEQ_MAX ? json_integer(f->imax + 1)
					       : json_integer(f->min - 1);
	case PROTO_OBJECT:
		s = malloc(f->max + 1);
		assert_non_null(s);
		memset(s, 'x', f->max);
		s[f->max] = '\0';
		v = json_pack("{s:s}", "k", s);
		free(s);
		return v;
	case PROTO_STRINGS:
		v = json_array();
		for (i = 0; i <= f->max; i++)
			json_array_append_new(v, json_string("1"));
		return v;
	default:
		return NULL;
	}
}

static void
test_each_field_refused(void **state)
{
	struct proto_error err;
	json_t *obj, *v;
	size_t i, j;
	char code[64];

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct proto_def *d = proto_def(valid[i].type);

		snprintf(code, sizeof(code), "bad-%s", d->name);
		for (j = 0; j < d->nfields; j++) {
			const struct proto_field *f = &d->fields[j];

			/* missing */
			obj = load(valid[i].text);
			json_object_del(obj, f->name);
			if (f->required) {
				assert_int_equal(decode_obj(d, obj, &err),
						 PROTO_ERR_INVALID);
				assert_string_equal(err.code, code);
				assert_string_equal(err.field, f->name);
				/* a report's seq is named when readable */
				if (d->report && strcmp(f->name, "seq") != 0)
					assert_int_equal(
						err.seq,
						json_integer_value(
							json_object_get(
								obj, "seq")));
			} else {
				assert_int_equal(decode_obj(d, obj, &err),
						 PROTO_OK);
			}
			json_decref(obj);
			/* wrong JSON type */
			obj = load(valid[i].text);
			json_object_set_new(obj, f->name, wrong_type(f->kind));
			assert_int_equal(decode_obj(d, obj, &err),
					 PROTO_ERR_INVALID);
			assert_string_equal(err.field, f->name);
			if (d->report && strcmp(f->name, "seq") != 0)
				assert_true(err.seq > 0);
			json_decref(obj);
			/* one past the limit */
			v = over_limit(f);
			if (v == NULL)
				continue;
			obj = load(valid[i].text);
			json_object_set_new(obj, f->name, v);
			assert_int_not_equal(decode_obj(d, obj, &err),
					     PROTO_OK);
			json_decref(obj);
		}
	}
}

static void
test_limits_exact(void **state)
{
	struct proto_error err;
	json_t *obj;
	char *s;

	(void)state;
	/* a 128-byte fw_version is fine, 129 is not */
	s = malloc(130);
	assert_non_null(s);
	memset(s, 'v', 129);
	s[128] = '\0';
	obj = load(valid[0].text);
	json_object_set_new(obj, "fw_version", json_string(s));
	assert_int_equal(decode_obj(proto_def(PROTO_HELLO), obj, &err),
			 PROTO_OK);
	s[128] = 'v';
	s[129] = '\0';
	json_object_set_new(obj, "fw_version", json_string(s));
	assert_int_equal(decode_obj(proto_def(PROTO_HELLO), obj, &err),
			 PROTO_ERR_INVALID);
	assert_string_equal(err.code, "bad-hello");
	free(s);
	json_decref(obj);
	/* seq: 1 .. 2^53-1 */
	obj = load(valid[1].text);
	json_object_set_new(obj, "seq", json_integer(0));
	assert_int_equal(decode_obj(proto_def(PROTO_CONFIG_STATUS), obj, &err),
			 PROTO_ERR_INVALID);
	json_object_set_new(obj, "seq", json_integer(PROTO_SEQ_MAX));
	assert_int_equal(decode_obj(proto_def(PROTO_CONFIG_STATUS), obj, &err),
			 PROTO_OK);
	json_object_set_new(obj, "seq", json_integer(PROTO_SEQ_MAX + 1));
	assert_int_equal(decode_obj(proto_def(PROTO_CONFIG_STATUS), obj, &err),
			 PROTO_ERR_INVALID);
	json_object_set_new(obj, "seq", json_real(5.0));
	assert_int_equal(decode_obj(proto_def(PROTO_CONFIG_STATUS), obj, &err),
			 PROTO_ERR_INVALID);
	json_decref(obj);
}

/* A config.apply may be 256 KiB of document; any other frame 64 KiB. */
static void
test_frame_limits(void **state)
{
	struct proto_error err;
	struct proto_msg m;
	json_t *obj;
	char *text, *pad;
	size_t len;

	(void)state;
	pad = malloc(PROTO_CONFIG_DOC_MAX);
	assert_non_null(pad);
	memset(pad, 'x', PROTO_CONFIG_DOC_MAX - 16);
	pad[PROTO_CONFIG_DOC_MAX - 16] = '\0';
	obj = json_pack(
		"{s:I, s:s, s:{s:s}}", "config_version", (json_int_t)1,
		"config_hash",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15"
		"b0f00a08",
		"document", "k", pad);
	text = proto_encode(PROTO_CONFIG_APPLY, obj, &len, &err);
	assert_non_null(text);
	assert_true(len > PROTO_FRAME_MAX);
	memset(&m, 0, sizeof(m));
	assert_int_equal(proto_decode(text, len, PROTO_TO_AGENT, &m, &err),
			 PROTO_OK);
	proto_msg_clear(&m);
	free(text);
	/* the same size as a cmd.result output: too big for its type */
	pad[70000] = '\0';
	obj = json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)1, "cmd_id",
			"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11", "status", "ok",
			"output", pad);
	assert_null(proto_encode(PROTO_CMD_RESULT, obj, &len, &err));
	assert_int_equal(err.rc, PROTO_ERR_INVALID); /* output > 16 KiB */
	len = (size_t)snprintf(pad, 200, "{\"type\":\"cmd.result\",\"x\":\"");
	memset(pad + len, 'y', 70000);
	memcpy(pad + len + 70000, "\"}", 3);
	assert_int_equal(
		proto_decode(pad, strlen(pad), PROTO_TO_SERVER, &m, &err),
		PROTO_ERR_TOO_BIG);
	assert_string_equal(err.code, "too-big");
	free(pad);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"{not json",
		"[1,2]",
		"\"hello\"",
		"{}",
		"{\"type\":5}",
		"{\"type\":\"hello\"}{\"type\":\"hello\"}",
		"{\"type\":\"ack\",\"type\":\"ack\",\"seq\":1}", /* dup key */
		"{\"type\":\"config.status\",\"seq\":99999999999999999999}",
	};
	struct proto_error err;
	struct proto_msg m;
	const char nul[] = "{\"type\":\"hello\"}\0 ";
	const char bad_utf8[] = "{\"type\":\"he\xff\"}";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum proto_dir dir = i == 7 ? PROTO_TO_AGENT : PROTO_TO_SERVER;

		assert_int_equal(
			proto_decode(bad[i], strlen(bad[i]), dir, &m, &err),
			PROTO_ERR_MALFORMED);
		assert_string_equal(err.code, "malformed");
	}
	assert_int_equal(
		proto_decode(nul, sizeof(nul) - 1, PROTO_TO_SERVER, &m, &err),
		PROTO_ERR_MALFORMED);
	assert_int_equal(proto_decode(bad_utf8, strlen(bad_utf8),
				      PROTO_TO_SERVER, &m, &err),
			 PROTO_ERR_MALFORMED);
	assert_int_equal(proto_decode(NULL, 0, PROTO_TO_SERVER, &m, &err),
			 PROTO_ERR_MALFORMED);
}

static void
test_direction_and_unknown(void **state)
{
	struct proto_error err;
	struct proto_msg m;
	const char *ack = "{\"type\":\"ack\",\"seq\":1,\"status\":\"applied\"}";
	const char *frob = "{\"type\":\"frobnicate\"}";
	const char *extra =
		"{\"type\":\"ack\",\"seq\":1,\"status\":\"applied\","
		"\"future\":{\"x\":1},\"seq2\":null}";

	(void)state;
	assert_int_equal(
		proto_decode(ack, strlen(ack), PROTO_TO_SERVER, &m, &err),
		PROTO_ERR_UNKNOWN_TYPE);
	assert_string_equal(err.code, "unknown-type");
	assert_int_equal(
		proto_decode(frob, strlen(frob), PROTO_TO_AGENT, &m, &err),
		PROTO_ERR_UNKNOWN_TYPE);
	/* unknown fields are ignored and do not reach the caller */
	assert_int_equal(
		proto_decode(extra, strlen(extra), PROTO_TO_AGENT, &m, &err),
		PROTO_OK);
	assert_int_equal(m.seq, 1);
	assert_null(proto_get(&m, "future"));
	assert_int_equal(json_object_size(m.body), 3);
	proto_msg_clear(&m);
	/* but we never send an undeclared field */
	assert_null(
		proto_build(PROTO_ACK,
			    json_pack("{s:I, s:s, s:i}", "seq", (json_int_t)1,
				      "status", "applied", "future", 1),
			    &err));
	assert_string_equal(err.field, "future");
	assert_null(proto_build(PROTO_TYPE_COUNT, NULL, &err));
	assert_null(proto_build(PROTO_ACK, NULL, &err)); /* seq required */
}

/* A hello naming itself with a wrong type of value for "type". */
static void
test_validate_type_field(void **state)
{
	struct proto_error err;
	json_t *obj = load(valid[7].text);

	(void)state;
	assert_int_equal(proto_validate(proto_def(PROTO_ACK), obj, &err),
			 PROTO_OK);
	assert_int_equal(proto_validate(proto_def(PROTO_ERROR), obj, &err),
			 PROTO_ERR_INVALID);
	assert_string_equal(err.field, "type");
	json_decref(obj);
}

/* ---- docs/protocol.md is the table ------------------------------------ */

/* The heading of a type's section in docs/protocol.md. */
static void
doc_heading(const struct proto_def *d, char *out, size_t cap)
{
	snprintf(out, cap, "### `%s` (%s%s, frame up to %zu bytes)", d->name,
		 d->dir == PROTO_TO_SERVER ? "agent -> server"
					   : "server -> agent",
		 d->report ? ", report" : "", d->frame_max);
}

/* One field's row of the section's table. */
static void
doc_row(const struct proto_field *f, char *out, size_t cap)
{
	char limit[1024] = "";
	const char *kind = "";
	size_t i, n;

	switch (f->kind) {
	case PROTO_STRING:
		kind = "string";
		snprintf(limit, sizeof(limit), "up to %zu bytes", f->max);
		break;
	case PROTO_UUID:
		kind = "uuid";
		snprintf(limit, sizeof(limit), "lowercase 8-4-4-4-12");
		break;
	case PROTO_SHA256:
		kind = "sha256";
		snprintf(limit, sizeof(limit), "64 lowercase hex digits%s",
			 f->empty_ok ? " or empty" : "");
		break;
	case PROTO_HEX:
		kind = "hex";
		snprintf(limit, sizeof(limit), "1 to %zu hex digits", f->max);
		break;
	case PROTO_PEM:
		kind = "pem";
		snprintf(limit, sizeof(limit), "up to %zu bytes", f->max);
		break;
	case PROTO_ENUM:
		kind = "enum";
		for (i = 0, n = 0; f->values[i] != NULL; i++)
			n += (size_t)snprintf(limit + n, sizeof(limit) - n,
					      "%s`%s`", i > 0 ? ", " : "",
					      f->values[i]);
		break;
	case PROTO_INT:
		kind = "integer";
		snprintf(limit, sizeof(limit), "%lld to %lld",
			 (long long)f->min, (long long)f->imax);
		break;
	case PROTO_BOOL:
		kind = "boolean";
		break;
	case PROTO_OBJECT:
		kind = "object";
		snprintf(limit, sizeof(limit),
			 "up to %zu bytes as compact JSON", f->max);
		break;
	case PROTO_STRINGS:
		kind = "array of strings";
		snprintf(limit, sizeof(limit),
			 "up to %zu items of up to %zu bytes", f->max,
			 f->item_max);
		break;
	}
	snprintf(out, cap, "| `%s` | %s | %s | %s |", f->name, kind,
		 f->required ? "yes" : "no", limit);
}

/* Every type has its section, with its fields' rows in table order and
 * nothing else in its table. PROTO_PRINT_DOC=1 prints the sections. */
static void
test_doc_matches_table(void **state)
{
	char *doc = NULL, line[512], *p, *end;
	size_t i, j, len = 0;
	FILE *f;

	(void)state;
	if (getenv("PROTO_PRINT_DOC") != NULL) {
		for (i = 0; i < PROTO_TYPE_COUNT; i++) {
			const struct proto_def *d = proto_def(i);

			doc_heading(d, line, sizeof(line));
			printf("%s\n\n| field | type | required | limits |\n"
			       "|---|---|---|---|\n",
			       line);
			for (j = 0; j < d->nfields; j++) {
				doc_row(&d->fields[j], line, sizeof(line));
				printf("%s\n", line);
			}
			printf("\n");
		}
	}
	f = fopen(FLEET_PROTOCOL_DOC, "r");
	assert_non_null(f);
	doc = malloc(256 * 1024);
	assert_non_null(doc);
	len = fread(doc, 1, 256 * 1024 - 1, f);
	fclose(f);
	doc[len] = '\0';
	for (i = 0; i < PROTO_TYPE_COUNT; i++) {
		const struct proto_def *d = proto_def(i);

		doc_heading(d, line, sizeof(line));
		p = strstr(doc, line);
		if (p == NULL)
			fail_msg("docs/protocol.md lacks \"%s\"", line);
		p = strstr(p, "|---|---|---|---|\n");
		assert_non_null(p);
		p += strlen("|---|---|---|---|\n");
		for (j = 0; j < d->nfields; j++) {
			doc_row(&d->fields[j], line, sizeof(line));
			end = strchr(p, '\n');
			assert_non_null(end);
			if ((size_t)(end - p) != strlen(line) ||
			    strncmp(p, line, strlen(line)) != 0)
				fail_msg("%s: docs/protocol.md row %zu is "
					 "\"%.*s\", the table says \"%s\"",
					 d->name, j + 1, (int)(end - p), p,
					 line);
			p = end + 1;
		}
		if (*p == '|')
			fail_msg("%s: docs/protocol.md has more fields than "
				 "the table",
				 d->name);
	}
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_valid_roundtrip),
		cmocka_unit_test(test_each_field_refused),
		cmocka_unit_test(test_limits_exact),
		cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_direction_and_unknown),
		cmocka_unit_test(test_validate_type_field),
		cmocka_unit_test(test_doc_matches_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
