/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config files: `key = value` lines, `#` comments, blank lines. The caller
 * describes its keys in a table (name, type, where in its struct, bounds,
 * default); unknown keys and bad values are errors that name file:line.
 * After the file, the environment overrides any key: <prefix><KEY> in upper
 * case (FLEETD_WORKERS for "workers" with prefix "FLEETD_").
 */
#ifndef FLEET_COMMON_CONFFILE_H
#define FLEET_COMMON_CONFFILE_H

#include <stddef.h>

enum config_type {
	CONFIG_STRING, /* char *, strdup'd; "" allowed */
	CONFIG_INT, /* long, within [min, max] */
	CONFIG_BOOL, /* int: true/false/yes/no/on/off/1/0 */
	CONFIG_DURATION, /* long seconds: 30, 30s, 5m, 2h, 90d */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset; /* offsetof(struct your_config, field) */
	long min; /* CONFIG_INT, CONFIG_DURATION */
	long max;
	const char *def; /* default as text, NULL: string NULL or 0 */
};

#define CONFIG_ERR_MAX 512

/*
 * Fills target from defaults, then the file at path (skipped when NULL),
 * then the environment. Returns 0, or -1 with a message in err such as
 * "fleetd.conf:12: unknown key 'wrokers'". On failure target holds no
 * allocations. Free the strings with config_free().
 */
int config_load(const char *path, const struct config_key *keys, size_t nkeys,
		const char *env_prefix, void *target, char *err, size_t errlen);

/* Frees the CONFIG_STRING fields of target and sets them to NULL. */
void config_free(const struct config_key *keys, size_t nkeys, void *target);

/* Parses "90d", "5m", "30s", "2h", "1w" or plain seconds. 0 or -1. */
int config_parse_duration(const char *text, long *seconds);

#endif
