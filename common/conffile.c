/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config-file parser shared by fleetd and fleet-agent. The file is
 * trusted to be the operator's but not to be well formed: every line is
 * length-checked and every value is validated against the key table before
 * anything is stored.
 */
#include "conffile.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_LINE_MAX 4096

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static int
parse_long(const char *text, long *out)
{
	char *end = NULL;
	long v;

	if (*text == '\0')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
config_parse_duration(const char *text, long *seconds)
{
	char num[32];
	size_t len = strlen(text);
	long unit = 1;
	long v;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, text, len + 1);
	switch (num[len - 1]) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	default:
		unit = 0;
		break;
	}
	if (unit != 0)
		num[len - 1] = '\0';
	else
		unit = 1;
	if (parse_long(num, &v) != 0 || v < 0 || v > LONG_MAX / unit)
		return -1;
	*seconds = v * unit;
	return 0;
}

static int
parse_bool(const char *text, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(text, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(text, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* Stores value for key; on failure writes the reason to why. */
static int
config_set(const struct config_key *key, const char *value, void *target,
	   char *why, size_t whylen)
{
	char *field = (char *)target + key->offset;
	long v = 0;
	int b = 0;
	char *copy = NULL;

	switch (key->type) {
	case CONFIG_STRING:
		copy = strdup(value);
		if (copy == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	case CONFIG_INT:
		if (parse_long(value, &v) != 0 || v < key->min ||
		    v > key->max) {
			snprintf(why, whylen,
				 "bad value '%s' for '%s': expected an integer "
				 "from %ld to %ld",
				 value, key->name, key->min, key->max);
			return -1;
		}
		*(long *)field = v;
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(value, &v) != 0 || v < key->min ||
		    v > key->max) {
			snprintf(
				why, whylen,
				"bad value '%s' for '%s': expected a duration "
				"such as 30s, 5m, 2h or 90d, from %lds to %lds",
				value, key->name, key->min, key->max);
			return -1;
		}
		*(long *)field = v;
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, &b) != 0) {
			snprintf(why, whylen,
				 "bad value '%s' for '%s': expected true or "
				 "false",
				 value, key->name);
			return -1;
		}
		*(int *)field = b;
		return 0;
	}
	snprintf(why, whylen, "internal error: bad key type");
	return -1;
}

static const struct config_key *
config_find(const struct config_key *keys, size_t nkeys, const char *name)
{
	for (size_t i = 0; i < nkeys; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

static int
config_defaults(const struct config_key *keys, size_t nkeys, void *target,
		char *err, size_t errlen)
{
	char why[CONFIG_ERR_MAX];

	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].def == NULL)
			continue;
		if (config_set(&keys[i], keys[i].def, target, why,
			       sizeof(why)) != 0) {
			snprintf(err, errlen, "default: %s", why);
			return -1;
		}
	}
	return 0;
}

static int
config_read_file(const char *path, const struct config_key *keys, size_t nkeys,
		 void *target, char *err, size_t errlen)
{
	char line[CONFIG_LINE_MAX];
	char why[CONFIG_ERR_MAX];
	unsigned lineno = 0;
	FILE *fp = NULL;
	int rc = -1;

	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		const struct config_key *key;
		char *name, *value, *eq, *hash;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen,
				 "%s:%u: line longer than %d bytes", path,
				 lineno, CONFIG_LINE_MAX - 2);
			goto out;
		}
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		name = trim(line);
		if (*name == '\0')
			continue;
		eq = strchr(name, '=');
		if (eq == NULL) {
			snprintf(err, errlen,
				 "%s:%u: expected 'key = value', got '%s'",
				 path, lineno, name);
			goto out;
		}
		*eq = '\0';
		value = trim(eq + 1);
		name = trim(name);
		key = config_find(keys, nkeys, name);
		if (key == NULL) {
			snprintf(err, errlen, "%s:%u: unknown key '%s'", path,
				 lineno, name);
			goto out;
		}
		if (config_set(key, value, target, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(fp);
	return rc;
}

static int
config_read_env(const char *prefix, const struct config_key *keys, size_t nkeys,
		void *target, char *err, size_t errlen)
{
	char var[128];
	char why[CONFIG_ERR_MAX];

	for (size_t i = 0; i < nkeys; i++) {
		const char *value;
		size_t n;

		n = (size_t)snprintf(var, sizeof(var), "%s%s", prefix,
				     keys[i].name);
		if (n >= sizeof(var))
			continue;
		for (size_t j = 0; var[j] != '\0'; j++) {
			var[j] = (char)toupper((unsigned char)var[j]);
			if (var[j] == '-' || var[j] == '.')
				var[j] = '_';
		}
		value = getenv(var);
		if (value == NULL)
			continue;
		if (config_set(&keys[i], value, target, why, sizeof(why)) !=
		    0) {
			snprintf(err, errlen, "environment %s: %s", var, why);
			return -1;
		}
	}
	return 0;
}

int
config_load(const char *path, const struct config_key *keys, size_t nkeys,
	    const char *env_prefix, void *target, char *err, size_t errlen)
{
	if (config_defaults(keys, nkeys, target, err, errlen) != 0)
		goto fail;
	if (path != NULL &&
	    config_read_file(path, keys, nkeys, target, err, errlen) != 0)
		goto fail;
	if (env_prefix != NULL &&
	    config_read_env(env_prefix, keys, nkeys, target, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	config_free(keys, nkeys, target);
	return -1;
}

void
config_free(const struct config_key *keys, size_t nkeys, void *target)
{
	for (size_t i = 0; i < nkeys; i++) {
		char **field;

		if (keys[i].type != CONFIG_STRING)
			continue;
		field = (char **)(void *)((char *)target + keys[i].offset);
		free(*field);
		*field = NULL;
	}
}
