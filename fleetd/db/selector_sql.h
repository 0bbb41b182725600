/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selectors to SQL with bound parameters only (see selector_sql.c). The
 * caller says which SQL expressions stand for the built-in keys.
 */
#ifndef FLEETD_DB_SELECTOR_SQL_H
#define FLEETD_DB_SELECTOR_SQL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/selector.h"

/*
 * SQL expressions for the built-in keys and the labels column. online is a
 * boolean expression; it may use placeholders below first_param.
 */
struct selector_columns {
	const char *id; /* text expression, e.g. "d.id::text" */
	const char *model; /* text, nullable */
	const char *fw_version; /* text, nullable */
	/* boolean; may be NULL for "not online" (e.g. no session row):
	 * a selector of online devices then leaves the row out like
	 * false, and one of offline devices takes it */
	const char *online;
	/* text, "active" or "decommissioned"; NULL: the rows have no
	 * status, so the key holds as an absent one */
	const char *status;
	const char *labels; /* jsonb object of string values */
};

struct selector_sql {
	char *where; /* malloc'd; "TRUE" when there are no terms */
	char **params; /* malloc'd copies; nparams entries */
	size_t nparams; /* placeholders are $first_param..$first_param+n-1 */
};

/*
 * Translates sel into out (free with selector_sql_free). Returns 0, or -1
 * with a message in err (out of memory, or a term selector_parse would
 * have refused).
 */
int selector_to_sql(const struct selector *sel,
		    const struct selector_columns *cols, int first_param,
		    struct selector_sql *out, char *err, size_t errlen);
void selector_sql_free(struct selector_sql *q);

/*
 * Runs fmt, SQL whose one "%s" stands for sel's WHERE (translated with
 * cols; fmt is not a printf format: nothing else in it is expanded), with
 * fixed[0..nfixed) as $1..$nfixed and the selector's parameters after
 * them. The result (PQclear it), or NULL when the selector does not
 * translate or the query fails (logged, with what naming the caller).
 */
PGresult *selector_query(PGconn *conn, const struct selector *sel,
			 const struct selector_columns *cols, const char *fmt,
			 const char *const *fixed, size_t nfixed,
			 const char *what);

#endif
