/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl internals shared by its command files: global settings, the API
 * client (client.c), output helpers (output.c) and option parsing helpers
 * (main.c). fleetctl runs on an operator's machine; it trusts the server
 * only as far as TLS verifies it and bounds everything it receives.
 *
 * Exit codes: 0 success, 1 failure (network, TLS, API error), 2 usage.
 * Every failure prints exactly one line "fleetctl: ..." on stderr.
 */
#ifndef FLEET_CTL_H
#define FLEET_CTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "buf.h"
#include "https.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_CONTINUE (-1) /* from ctl_opt_common: keep parsing */

#define CTL_DEFAULT_SERVER "https://127.0.0.1:8443"

enum ctl_output { CTL_OUT_TABLE, CTL_OUT_JSON };

struct ctl {
	const char *server; /* --server, FLEET_SERVER, or the default */
	const char *token; /* --token, FLEET_TOKEN (admin token) */
	const char *ca; /* --ca, FLEET_CA; NULL: system store */
	enum ctl_output output;
	struct https_url url;
	struct https_client *https; /* made by ctl_connect */
	/* Set by `fleetctl completion`: commands report their help and
	 * groups their subcommands instead of running (cmd_completion.c). */
	struct ctl_probe *probe;
};

/* Long option values of the global options (any command accepts them). */
enum {
	CTL_OPT_SERVER = 1000,
	CTL_OPT_TOKEN,
	CTL_OPT_CA,
	CTL_OPT_FIRST_LOCAL = 1100, /* commands number theirs from here */
};

/* Global options without --token (enroll has its own --token). */
#define CTL_LONGOPTS_BASE                                    \
	{"server", required_argument, NULL, CTL_OPT_SERVER}, \
		{"ca", required_argument, NULL, CTL_OPT_CA}, \
		{"output", required_argument, NULL, 'o'},    \
	{                                                    \
		"help", no_argument, NULL, 'h'               \
	}
#define CTL_LONGOPTS_GLOBAL                                     \
	CTL_LONGOPTS_BASE,                                      \
	{                                                       \
		"token", required_argument, NULL, CTL_OPT_TOKEN \
	}
#define CTL_SHORTOPTS ":ho:"

/* What --help prints for a command, and what usage errors refer to. */
struct ctl_help {
	const char *cmd; /* "tokens create" */
	const char *usage; /* "--uses N --expires DUR [--label k=v]..." */
	const char *text; /* description and options, ends with \n */
};

/* ---- main.c ----------------------------------------------------------- */

/*
 * Handles a global option, --help or a getopt error (c is what getopt_long
 * returned; optstring must start with ':'). Returns CTL_CONTINUE to keep
 * parsing, or the exit code the command should return.
 */
int ctl_opt_common(struct ctl *ctl, int c, const struct ctl_help *h,
		   char **argv);

/* Prints the help of h to stdout. */
void ctl_print_help(const struct ctl_help *h);

/* Prints "fleetctl: <cmd>: <message> (see ...--help)"; returns 2. */
int ctl_usage(const struct ctl_help *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints "fleetctl: <message>" on stderr; returns 1. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checks that exactly n positional arguments remain; else usage error. */
int ctl_want_args(const struct ctl_help *h, int argc, char **argv, int n);

/* Parses a decimal integer in [min, max]; 0 or -1. */
int ctl_parse_long(const char *s, long min, long max, long *out);

/* Adds "k=v" to the JSON object labels; 0 or -1 (no '=' or empty key). */
int ctl_parse_label(json_t *labels, const char *kv);

struct ctl_list;
struct ctl_action;

/* One group of subcommands ("tokens" -> create, list, revoke). Each is a
 * function (run), or a list or an action for the command runner
 * (runner.c): exactly one of run, list and action is set. */
struct ctl_subcmd {
	const char *name;
	const char *summary;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const struct ctl_list *list;
	const struct ctl_action *action;
};

/* Dispatches argv[1] among subs (argv[0] is the group). */
int ctl_dispatch(struct ctl *ctl, const char *group, const char *summary,
		 const struct ctl_subcmd *subs, size_t n, int argc,
		 char **argv);

/* The i-th top-level command of the table; 0, or -1 past the end. */
int ctl_command_at(size_t i, const char **name,
		   int (**run)(struct ctl *ctl, int argc, char **argv));

/* ---- cmd_completion.c ------------------------------------------------- */

/* `fleetctl completion bash|zsh|fish`. */
int ctl_cmd_completion(struct ctl *ctl, int argc, char **argv);

/* In probe mode (ctl->probe set): what ctl_opt_common does for --help and
 * ctl_dispatch for a group. Record, never run; return CTL_EXIT_OK. */
int ctl_probe_help(struct ctl *ctl, const struct ctl_help *h);
int ctl_probe_group(struct ctl *ctl, const char *group, const char *summary,
		    const struct ctl_subcmd *subs, size_t n);

/* ---- client.c --------------------------------------------------------- */

/* Parses the server URL and makes the TLS client (once). 0, or prints and
 * returns -1. */
int ctl_connect(struct ctl *ctl);

/* Frees what ctl_connect made. */
void ctl_disconnect(struct ctl *ctl);

/* Appends s percent-encoded (RFC 3986 unreserved kept) to out. */
int ctl_urlencode(struct buf *out, const char *s);

/*
 * One API call. path is after the URL prefix ("/api/v1/devices/..."); body
 * (borrowed, may be NULL) is sent as JSON with content_type (NULL:
 * application/json). With auth, the admin token is sent (and required).
 * On a 2xx answer returns 0 and *out (may be NULL) receives the parsed
 * body (owned by the caller; json_null() when empty). Otherwise prints one
 * line ("fleetctl: 403 Forbidden: ...") and returns -1.
 */
int ctl_api(struct ctl *ctl, const char *method, const char *path, json_t *body,
	    const char *content_type, bool auth, json_t **out);

#define CTL_ETAG_MAX 128

/* The extra headers of one call and what it gives back. */
struct ctl_call {
	const char *if_match; /* sent as If-Match when not NULL */
	const char *idempotency_key; /* sent as Idempotency-Key */
	const char *on_412; /* appended to a 412's message */
	const char *on_404; /* a 404 without a detail says this */
	bool quiet; /* print nothing on failure (a best-effort call) */
	int status; /* the answer's HTTP status (0: none) */
	char etag[CTL_ETAG_MAX]; /* the answer's ETag, "" if none */
};

/*
 * ctl_api (JSON, with the admin token) with the headers of call (may be
 * NULL) and the answer's ETag and status kept in it. On failure prints
 * one line ("fleetctl: 412 Precondition Failed: ... (<on_412>)") unless
 * call->quiet, and returns -1.
 */
int ctl_call(struct ctl *ctl, const char *method, const char *path,
	     json_t *body, struct ctl_call *call, json_t **out);

/*
 * GET a list following next_cursor. query is "" or "a=b&c=d" (encoded).
 * max 0 means all items. *items (owned by the caller) is a JSON array.
 */
int ctl_api_list(struct ctl *ctl, const char *path, const char *query,
		 size_t max, json_t **items);
/*
 * ctl_api_list, and from the first page: *total, its "total" (-1 without
 * one), and *exact (may be NULL), false when the server counted only up
 * to a bound ("total_exact": false, docs/api.md; a server without the
 * member counted exactly).
 */
int ctl_api_list_total(struct ctl *ctl, const char *path, const char *query,
		       size_t max, json_t **items, long long *total,
		       bool *exact);

/* Builds "/api/v1/<collection>/<id-encoded><suffix>" into out. */
int ctl_path_id(char *out, size_t outlen, const char *collection,
		const char *id, const char *suffix);

/* ---- runner.c --------------------------------------------------------- */

/* A command's own options: getopt_long entries numbered from
 * CTL_OPT_FIRST_LOCAL (ending with {0}), and what to do with each. on_opt
 * returns CTL_CONTINUE, or the exit code (a usage error, say). */
struct ctl_optset {
	const struct option *opts;
	int (*on_opt)(void *arg, int c, const char *optarg);
	void *arg;
};

/*
 * Parses a command's argv: its own options (local, may be NULL), the
 * global options, --help and usage errors; then checks that exactly nargs
 * positional arguments follow (nargs < 0: any number; they start at
 * argv[optind]). Returns CTL_CONTINUE to run the command, or the exit
 * code to return.
 */
int ctl_parse(struct ctl *ctl, const struct ctl_help *h, int argc, char **argv,
	      const struct ctl_optset *local, int nargs);

#define CTL_MAX_COLUMNS 8
#define CTL_CELL_MAX 256

/* A table column: the member key shown as text; or a cell function that
 * writes into buf (or returns a static string or NULL); or a word for the
 * item (a status). Exactly one of key, cell and word is set. */
struct ctl_column {
	const char *header;
	const char *key;
	const char *(*cell)(const json_t *item, char *buf, size_t buflen);
	const char *(*word)(const json_t *item);
};

#define CTL_COL_KEY(h, k)                 \
	{                                 \
		.header = (h), .key = (k) \
	}
#define CTL_COL_CELL(h, f)                 \
	{                                  \
		.header = (h), .cell = (f) \
	}
#define CTL_COL_WORD(h, f)                 \
	{                                  \
		.header = (h), .word = (f) \
	}

/* Cell: the item's labels as "k=v,k2=v2". */
const char *ctl_cell_labels(const json_t *item, char *buf, size_t buflen);

/* Prints a JSON array as JSON (-o json) or as a table. An exit code. */
int ctl_print_items(struct ctl *ctl, const json_t *items,
		    const struct ctl_column *cols, size_t ncols);

/* A list command: GET path (every page), printed with cols. */
struct ctl_list {
	const struct ctl_help *help;
	const char *path; /* "/api/v1/tokens" */
	const struct ctl_column *cols;
	size_t ncols;
};

/* Fetches and prints the list (query "" or encoded "a=b&c=d"; max 0 =
 * all). An exit code. */
int ctl_list_items(struct ctl *ctl, const struct ctl_list *l, const char *query,
		   size_t max);

/* A list command without options of its own, argv and all. */
int ctl_run_list(struct ctl *ctl, const struct ctl_list *l, int argc,
		 char **argv);

/* An action on one resource: `<cmd> ID` calls METHOD
 * /api/v1/<collection>/<ID><suffix>; table output prints "<done> ID" and
 * then print(answer), each if not NULL. */
struct ctl_action {
	const struct ctl_help *help;
	const char *method;
	const char *collection;
	const char *suffix;
	const char *done;
	void (*print)(const json_t *doc);
};

int ctl_run_action(struct ctl *ctl, const struct ctl_action *a, int argc,
		   char **argv);

/* ---- secmem.c -------------------------------------------------------- */

/*
 * Makes jansson and OpenSSL wipe every block they free (call first in
 * main, before either allocates). Secrets fleetctl holds itself are freed
 * with ctl_free_wiped().
 */
void ctl_secmem_init(void);

/* Overwrites the whole heap block p (from malloc; may be NULL), frees it. */
void ctl_free_wiped(void *p);

/* ---- output.c --------------------------------------------------------- */

struct ctl_table;

/* A table with ncols columns named by headers (borrowed, static). */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (copied; NULL prints "-"). 0 or -1. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* Prints aligned columns, two spaces apart, the header first. */
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Pretty-prints v as JSON on stdout. 0 or -1. */
int ctl_print_json(const json_t *v);

/* Prints "label:" padded and value (sanitized) for show output. */
void ctl_print_field(const char *label, const char *value);

/*
 * Text of a member for a table cell: strings as they are, numbers and
 * booleans as text, null or missing as NULL ("-"). Points into buf or
 * into obj.
 */
const char *ctl_text(const json_t *obj, const char *key, char *buf,
		     size_t buflen);

/* ctl_text, or "-" for null or missing. */
const char *ctl_text_or_dash(const json_t *obj, const char *key, char *buf,
			     size_t buflen);

/* Labels object as "k=v,k2=v2" sorted by key (into buf, truncated). */
const char *ctl_labels_text(json_t *labels, char *buf, size_t buflen);

/* Compact JSON of v, truncated to buflen-1 bytes with "..." when longer. */
const char *ctl_json_text(const json_t *v, char *buf, size_t buflen);

/* Replaces control characters in s (in place) so a hostile server cannot
 * drive the terminal. Returns s. */
char *ctl_sanitize(char *s);

/* ---- commands --------------------------------------------------------- */

int ctl_cmd_tokens(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_admin_tokens(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_devices(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_audit(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_enroll(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_keys(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_profiles(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_config(struct ctl *ctl, int argc, char **argv);
/* `devices config show|set` (cmd_config.c), dispatched by cmd_devices.c */
int ctl_cmd_devices_config(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_devices_certificates(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_devices_rotate(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_certificates(struct ctl *ctl, int argc, char **argv);
/* `release sign|verify|keys` (cmd_release.c, docs/releases.md) */
int ctl_cmd_release(struct ctl *ctl, int argc, char **argv);
/* `deployments create|list|show|cancel` (cmd_deployments.c) */
int ctl_cmd_deployments(struct ctl *ctl, int argc, char **argv);
/* `artifacts upload|list|show|rm` (cmd_artifacts.c) */
int ctl_cmd_artifacts(struct ctl *ctl, int argc, char **argv);
/* `campaigns create|list|show|devices|events|start|pause|resume|abort|watch`
 * (cmd_campaigns.c, docs/campaigns.md) */
int ctl_cmd_campaigns(struct ctl *ctl, int argc, char **argv);

/* Prints a newly created secret so that it cannot be missed. */
void ctl_print_secret(const char *what, const char *secret);

#endif
