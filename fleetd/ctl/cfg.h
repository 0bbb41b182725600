/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of fleetctl's configuration commands (cmd_profiles.c,
 * cmd_config.c), in cfg_util.c: reading a JSON document from a file, API
 * calls that send If-Match / Idempotency-Key and keep the ETag, a readable
 * diff of two JSON documents, and the progress bar of `config status
 * --watch`. Everything printed that came from the server is sanitized.
 */
#ifndef FLEET_CTL_CFG_H
#define FLEET_CTL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "ctl.h"

/* A configuration document (a profile version, overrides) is at most
 * 256 KiB (docs/profiles.md); fleetctl refuses a larger file before it
 * sends anything. */
#define CFG_DOC_MAX (256u * 1024u)

/* ETag values fleetctl keeps (the server's are short revisions). */

/*
 * Reads the JSON document in path ("-": standard input), at most
 * CFG_DOC_MAX bytes, strict (duplicate member names refused), and
 * requires an object. what names the option in messages ("-f"). Returns
 * the document (owned by the caller), or prints one line
 * ("fleetctl: -f x.json: not JSON: ... at line 3") and returns NULL.
 */
json_t *cfg_read_doc(const char *path, const char *what);

/* GET path with ctl_call; a 404 adds what404 ("no device X") to the
 * message. */
int cfg_get(struct ctl *ctl, const char *path, const char *what404,
	    json_t **out);

/* GET path printing nothing on failure (a best-effort read). */
int cfg_get_quiet(struct ctl *ctl, const char *path, json_t **out);

/*
 * Prints what changes from `from` to `to` (either may be NULL: absent),
 * one line per changed member, to f:
 *     <indent>~ /mqtt/port: 1883 -> 8883
 *     <indent>+ /ntp: {"servers":["a"]}
 *     <indent>- /debug: true
 * Objects are compared member by member (paths are JSON Pointers, RFC
 * 6901); other values whole. At most max_lines lines, then "... N more".
 * Returns the number of differences (0: the documents are equal).
 */
size_t cfg_diff_print(FILE *f, json_t *from, json_t *to, const char *indent,
		      size_t max_lines);

/*
 * Prints a JSON merge patch (RFC 7386) as the changes it makes to base
 * (NULL: unknown or {}), in the format of cfg_diff_print: a null member
 * removes ("-"), an object member recurses, any other value sets ("+"
 * or "~"). Returns the number of lines it would print.
 */
size_t cfg_patch_print(FILE *f, json_t *base, json_t *patch, const char *indent,
		       size_t max_lines);

/* Counts of a change, as GET /api/v1/config/changes/{id} answers them. */
struct cfg_counts {
	long long total, pending, applied, failed, offline, superseded;
};

/* Reads the counts of a change document; 0, or -1 if they are missing. */
int cfg_counts_read(const json_t *change, struct cfg_counts *c);

/*
 * Writes one status line of a change into buf:
 *   with bar: "[#######.............]  35%  7/20 applied, 1 failed, ..."
 *   without:  "7/20 applied, 1 failed, 2 offline, 10 pending"
 */
void cfg_progress_text(const struct cfg_counts *c, bool bar, char *buf,
		       size_t buflen);

/*
 * A profile version's document may hold no null member in its objects
 * (null deletes in a merge patch, so no effective config can hold one;
 * arrays may). Returns 0, or -1 with the first such member as a JSON
 * Pointer in where ("/mqtt/tls").
 */
int cfg_doc_nulls(json_t *doc, char *where, size_t wherelen);

/* The first buflen - 1 hex digits of a SHA-256 for tables; hash may
 * point into buf. buf, or NULL when hash is NULL. */
const char *cfg_short_hash(const char *hash, char *buf, size_t buflen);

/* Splits "name@version" (version a positive integer or "latest"). *version
 * is 0 for latest or no '@'. 0, or -1 when malformed. name is copied
 * into namebuf. */
int cfg_parse_profile_ref(const char *ref, char *namebuf, size_t namelen,
			  long *version, bool *has_version);

/*
 * ctl_parse knows only -h and -o as short options. Returns a copy of argv
 * (NULL-terminated, owned by the caller: cfg_argv_free) in which "-f X"
 * and "-fX" are spelled "--file X" and "--file=X", up to a "--" and
 * except as the value of an option (the profiles group's long options
 * all take one, but --help).
 */
char **cfg_argv_file(int argc, char **argv);
void cfg_argv_free(int argc, char **argv);

#endif
