/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device selectors (DESIGN.md §9): "site=b7,model in (a,b),!retired".
 * Parsed into terms and matched against a device in memory; the store
 * translates the same terms into SQL with bound parameters only
 * (db/selector_sql.c). Transport-free and database-free. Input is
 * untrusted (a query string) and bounded here: at most SELECTOR_MAX_LEN
 * bytes, SELECTOR_MAX_TERMS terms and SELECTOR_MAX_VALUES values per
 * in-list. The built-in keys id, model, fw_version, online and status
 * shadow labels of the same name; online takes only true or false,
 * status only active or decommissioned. The grammar is docs/selectors.md.
 */
#ifndef FLEETD_CORE_SELECTOR_H
#define FLEETD_CORE_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/label_set.h"

#define SELECTOR_MAX_LEN 4096
#define SELECTOR_MAX_TERMS 32
#define SELECTOR_MAX_VALUES 64
#define SELECTOR_KEY_MAX 63
#define SELECTOR_VALUE_MAX 255

enum selector_op {
	SELECTOR_EQ, /* key=value (also key==value) */
	SELECTOR_NE, /* key!=value: absent or different */
	SELECTOR_IN, /* key in (a,b) */
	SELECTOR_NOTIN, /* key notin (a,b): absent or none of them */
	SELECTOR_EXISTS, /* key */
	SELECTOR_NOT_EXISTS, /* !key */
};

struct selector_term {
	enum selector_op op;
	char *key;
	char **values; /* nvalues strings; one for EQ/NE, none for (NOT_)EXISTS */
	size_t nvalues;
};

struct selector {
	struct selector_term *terms; /* all must hold (AND) */
	size_t nterms;
};

/*
 * Parses text (NUL-terminated). An empty or all-blank text is a selector
 * with no terms, which matches everything. Returns 0 and *out (free with
 * selector_free), or -1 with a message in err (naming the 1-based column
 * for syntax errors; "online" compared with anything but true/false is
 * refused here too, so matching never fails).
 */
int selector_parse(const char *text, struct selector **out, char *err,
		   size_t errlen);
void selector_free(struct selector *sel);

/* Adds the term online=true or online=false (a filter beside the
 * selector, e.g. ?online=); may pass SELECTOR_MAX_TERMS. 0, or -1 when
 * out of memory. */
int selector_and_online(struct selector *sel, bool online);

/* Adds the term key=value (copies both; may pass SELECTOR_MAX_TERMS).
 * 0, or -1 when out of memory. */
int selector_and_eq(struct selector *sel, const char *key, const char *value);

/* True if a term of sel names key (e.g. "status"). */
bool selector_has_key(const struct selector *sel, const char *key);

/* True if key is a syntactically valid key (label keys share the rule). */
int selector_key_valid(const char *key, size_t len);

/*
 * What a selector is matched against: a device's labels and built-ins.
 * NULL model or fw_version means the device has none (so "model" does not
 * hold, "!model" and "model!=x" do). online comes from device_online()
 * (core/device.h), the one definition of presence.
 */
struct selector_target {
	const char *id; /* canonical lowercase uuid */
	const char *model; /* NULL when unknown */
	const char *fw_version; /* NULL when unknown */
	bool online;
	/* "active" or "decommissioned"; NULL when unknown (then status
	 * behaves as an absent key) */
	const char *status;
	const struct label_set *labels;
};

/*
 * True if every term holds for t. This is the definition of selector
 * semantics; db/selector_sql.c translates the same terms into SQL and
 * tests/integration/test_devices.sh (selector_contract) checks that both
 * give the same answers on a table of devices.
 */
bool selector_match(const struct selector *sel,
		    const struct selector_target *t);

#endif
