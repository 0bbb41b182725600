/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.v1 messages from devices: one table maps a message type to its
 * handler. A handler validates what it was given (the frame is untrusted;
 * the device id is the certificate's, never a message's), does its storage
 * work on a job thread through channel_submit_work() and answers on the
 * loop. Runs on the net worker's event loop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/channel_int.h"
#include "clock.h"
#include "db/presence.h"
#include "db/store.h"
#include "log.h"

#define CHANNEL_INVENTORY_MAX (32 * 1024)
#define CHANNEL_TEXT_MAX 255

/* ---- hello ------------------------------------------------------------ */

static bool
text_field_ok(const json_t *msg, const char *key)
{
	const json_t *v = json_object_get(msg, key);

	return v == NULL ||
	       (json_is_string(v) && json_string_length(v) <= CHANNEL_TEXT_MAX);
}

/* Checks a hello's fields; returns NULL or what is wrong. */
static const char *
hello_problem(const char *device_id, const json_t *msg)
{
	static const char *const texts[] = {"agent_version", "fw_version",
					    "model", "boot_id", "config_hash"};
	const json_t *claimed = json_object_get(msg, "device_id");
	const json_t *inventory = json_object_get(msg, "inventory");
	const json_t *addresses = json_object_get(msg, "addresses");
	char *dumped;
	size_t size;

	if (claimed != NULL &&
	    (!json_is_string(claimed) ||
	     strcmp(json_string_value(claimed), device_id) != 0))
		return "hello names another device; the device id is the "
		       "certificate's";
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (!text_field_ok(msg, texts[i]))
			return "a text field is not a string of at most 255 "
			       "bytes";
	}
	if (addresses != NULL && !json_is_array(addresses))
		return "addresses is not an array";
	if (inventory == NULL)
		return NULL;
	if (!json_is_object(inventory))
		return "inventory is not an object";
	dumped = json_dumps(inventory, JSON_COMPACT);
	size = dumped != NULL ? strlen(dumped) : SIZE_MAX;
	free(dumped);
	if (size > CHANNEL_INVENTORY_MAX)
		return "inventory is larger than 32 KiB";
	return NULL;
}

static void
hello_store(struct store *st, const char *device_id, void *arg)
{
	PGconn *conn = store_conn(st);

	if (conn != NULL)
		(void)db_presence_hello(conn, device_id, arg);
}

static void
hello_stored(struct channel *ch, struct channel_session *s, void *arg)
{
	(void)ch;
	(void)s;
	json_decref(arg);
}

static void
handle_hello(struct channel *ch, struct channel_session *s, json_t *msg)
{
	const char *device_id = channel_session_device_id(s);
	const char *problem = hello_problem(device_id, msg);
	struct channel_work work = {hello_store, hello_stored, msg};
	char now[32];

	if (problem != NULL) {
		channel_send_error(ch, s, "bad-hello", problem);
		return;
	}
	json_incref(msg);
	if (!channel_submit_work(ch, s, &work)) {
		json_decref(msg);
		log_warn("channel: job queue full; a hello was not stored");
	}
	clock_format_rfc3339(time(NULL), now, sizeof(now));
	channel_send(s, json_pack("{s:s, s:s, s:I, s:s}", "type", "welcome",
				  "device_id", device_id, "heartbeat_interval",
				  (json_int_t)channel_heartbeat_interval(ch),
				  "server_time", now));
}

/* ---- the table -------------------------------------------------------- */

static const struct {
	const char *type;
	void (*handle)(struct channel *ch, struct channel_session *s,
		       json_t *msg);
} handlers[] = {
	{"hello", handle_hello},
};

void
channel_dispatch(struct channel *ch, struct channel_session *s,
		 const char *text, size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb(text, len, 0, &jerr);
	const char *type;
	size_t i;

	if (!json_is_object(msg)) {
		channel_send_error(ch, s, "malformed",
				   "a message is one JSON object");
		goto out;
	}
	type = json_string_value(json_object_get(msg, "type"));
	if (type == NULL) {
		channel_send_error(ch, s, "malformed",
				   "the message has no type");
		goto out;
	}
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(type, handlers[i].type) == 0) {
			handlers[i].handle(ch, s, msg);
			goto out;
		}
	}
	channel_send_error(ch, s, "unknown-type",
			   "this server does not handle that message type");
out:
	json_decref(msg);
}
