/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device selectors (DESIGN.md §9): "site=b7,model in (a,b),!retired".
 * Parsed into terms, then translated into an SQL WHERE fragment that uses
 * $n placeholders and a parameter array: selector text never becomes SQL
 * text. Transport-free and database-free; the caller says which SQL
 * expressions stand for the built-in keys. Input is untrusted (a query
 * string) and bounded here: at most SELECTOR_MAX_TERMS terms and
 * SELECTOR_MAX_VALUES values per in-list.
 */
#ifndef FLEETD_CORE_SELECTOR_H
#define FLEETD_CORE_SELECTOR_H

#include <stddef.h>

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
 * selector_free), or -1 with a message naming the 1-based column in err.
 */
int selector_parse(const char *text, struct selector **out, char *err,
		   size_t errlen);
void selector_free(struct selector *sel);

/* True if key is a syntactically valid key (label keys share the rule). */
int selector_key_valid(const char *key, size_t len);

/*
 * SQL expressions for the built-in keys and the labels column. online is a
 * boolean expression; it may use placeholders below first_param.
 */
struct selector_columns {
	const char *id; /* text expression, e.g. "d.id::text" */
	const char *model; /* text, nullable */
	const char *fw_version; /* text, nullable */
	const char *online; /* boolean */
	const char *labels; /* jsonb object of string values */
};

struct selector_sql {
	char *where; /* malloc'd; "TRUE" when there are no terms */
	char **params; /* malloc'd copies; nparams entries */
	size_t nparams; /* placeholders are $first_param..$first_param+n-1 */
};

/*
 * Translates sel into out (free with selector_sql_free). Returns 0, or -1
 * with a message in err (e.g. "online" compared with something other than
 * true/false).
 */
int selector_to_sql(const struct selector *sel,
		    const struct selector_columns *cols, int first_param,
		    struct selector_sql *out, char *err, size_t errlen);
void selector_sql_free(struct selector_sql *q);

#endif
