/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit entries as plain structs: who (actor), did what (action), to what
 * (target), with which details. Core decides what an action records; the
 * store writes the entry in the same unit of work as the change, so the
 * row exists exactly when the change does. Details are a short list of
 * typed fields; the adapter renders them as a JSON object.
 */
#ifndef FLEETD_CORE_AUDIT_H
#define FLEETD_CORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/label_set.h"
#include "core/page.h"

#define AUDIT_FIELDS_MAX 6
#define AUDIT_ACTOR_MAX 80 /* "token:<uuid>", "device:<uuid>", ... */

enum audit_kind {
	AUDIT_STR, /* str, or JSON null when NULL */
	AUDIT_INT,
	AUDIT_LABELS,
};

struct audit_field {
	const char *key;
	enum audit_kind kind;
	const char *str;
	int64_t num;
	const struct label_set *labels;
};

/* Every pointer is borrowed for the duration of the store call. */
struct audit_entry {
	const char *actor;
	const char *action; /* "token.create", "device.enroll", ... */
	const char *target; /* an id, or NULL */
	size_t n;
	struct audit_field fields[AUDIT_FIELDS_MAX];
};

/* Adds a field (silently ignored past AUDIT_FIELDS_MAX: a programming
 * error the unit tests catch). */
void audit_add_str(struct audit_entry *e, const char *key, const char *str);
void audit_add_int(struct audit_entry *e, const char *key, int64_t num);
void audit_add_labels(struct audit_entry *e, const char *key,
		      const struct label_set *labels);

/* One stored row, for the list. details_json is the stored JSON object
 * text (shown as is; it was rendered from fields by the adapter). */
struct audit_row {
	int64_t id;
	int64_t at;
	char *actor;
	char *actor_name; /* the admin token's name for "token:<uuid>"; NULL
			     when the actor is not a token or it has none */
	char *action;
	char *target; /* NULL when none */
	char *details_json;
};

void audit_rows_free(struct audit_row *rows, size_t n);

struct store;

#define AUDIT_FILTER_TEXT_MAX 255

/*
 * What a list is narrowed to; NULL or 0 members do not filter. actor is
 * an actor as stored ("token:<uuid>", "local:fleetd-cli") or an admin
 * token's name; action is an action or a family "device.*"; target an id
 * or selector as stored; rows with since <= at < until (epoch seconds).
 */
struct audit_filter {
	const char *actor;
	const char *action;
	const char *target;
	int64_t since;
	int64_t until;
};

/* Exactly "YYYY-MM-DDTHH:MM:SSZ" (the API's own time format), a real
 * date after 1970, into epoch seconds; -1 otherwise (another shape, a
 * day that does not exist). */
int64_t audit_time_parse(const char *s);

/* Why a filter is refused: NULL if it is valid, else the name of the
 * bad member ("actor", "action", "target", "until"): texts are 1..255
 * bytes without control characters; an action family ends in ".*" after
 * at least one character; until after since. */
const char *audit_filter_check(const struct audit_filter *f);

/* One page of the log, newest first (page->after an ID cursor, checked
 * here again), narrowed by f (checked with audit_filter_check first;
 * may be NULL). 0 with *rows (n of them; audit_rows_free), or -1 after a
 * store failure or with a cursor the store did not make (*bad_cursor). */
int audit_list(struct store *st, const struct audit_filter *f,
	       const struct page *page, struct audit_row **rows, size_t *n,
	       char next[PAGE_CURSOR_MAX], bool *bad_cursor);

#endif
