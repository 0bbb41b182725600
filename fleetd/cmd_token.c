/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fleetd token create --role admin|operator|viewer [--name N]
 * [--expires D]`: makes an
 * admin token through the same core code as POST /api/v1/admin-tokens
 * (core/token.c), stored straight into PostgreSQL through the store port
 * (no running fleetd needed) with its audit row (actor "local:fleetd-cli")
 * in the same transaction, and prints the token once on stdout, alone on
 * one line, so a script can capture it. Runs in the fleetd binary as a
 * one-shot command; whoever can reach the database can run it.
 */
#include "cmd_token.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/token.h"
#include "db/store.h"
#include "secret.h"

#define CLI_ACTOR "local:fleetd-cli"

static void
token_usage(FILE *f)
{
	fprintf(f, "usage: fleetd token create --role admin|operator|viewer "
		   "[--name NAME] [--expires DURATION]\n"
		   "Creates an API admin token and prints it once on stdout.\n"
		   "DURATION: seconds or 30m, 24h, 90d (at most 366 days); "
		   "without it the token\nnever expires.\n");
}

static int
token_create(const char *conninfo, enum token_role role, const char *name,
	     long expires_in)
{
	char text[TOKEN_TEXT_MAX] = "", sha256[SECRET_SHA256_HEX];
	struct store *st = NULL;
	struct token_spec spec;
	struct token tok;
	int rc = 1;

	memset(&tok, 0, sizeof(tok));
	token_spec_init(&spec, TOKEN_ADMIN);
	spec.role = role;
	spec.name = name;
	spec.expires_in = expires_in;
	if (token_spec_check(&spec) != TOKEN_OK) {
		fprintf(stderr, "fleetd token: --name is at most 255 bytes "
				"of text\n");
		return 2;
	}
	st = store_new(conninfo);
	if (st == NULL || store_conn(st) == NULL) {
		fprintf(stderr, "fleetd token: cannot connect to PostgreSQL\n");
		goto out;
	}
	if (token_make(&spec, (int64_t)time(NULL), &tok, text, sha256) !=
	    TOKEN_OK) {
		fprintf(stderr, "fleetd token: no randomness\n");
		goto out;
	}
	if (token_store(st, &tok, sha256, CLI_ACTOR, NULL) != TOKEN_OK) {
		fprintf(stderr,
			"fleetd token: could not store the token (%s)\n",
			store_write_unconfirmed(st)
				? "the database did not confirm the write; "
				  "try again"
				: "is the database migrated?");
		goto out;
	}
	printf("%s\n", text);
	if (fflush(stdout) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(text, sizeof(text));
	token_clear(&tok);
	store_free(st);
	return rc;
}

int
cmd_token(int argc, char **argv, const char *conninfo)
{
	const char *role = NULL, *name = "";
	long expires_in = 0;
	int i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		token_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "create") != 0) {
		fprintf(stderr, "fleetd token: unknown command '%s'\n",
			argv[1]);
		token_usage(stderr);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			token_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
			role = argv[++i];
		} else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else if (strcmp(argv[i], "--expires") == 0 && i + 1 < argc) {
			expires_in = token_duration_parse(argv[++i]);
			if (expires_in < 0) {
				fprintf(stderr,
					"fleetd token: --expires '%s': give "
					"seconds or 30m, 24h, 90d, at most "
					"366 days\n",
					argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "fleetd token: bad argument '%s'\n",
				argv[i]);
			token_usage(stderr);
			return 2;
		}
	}
	if (token_role_parse(role) == TOKEN_ROLE_NONE) {
		fprintf(stderr, "fleetd token: --role admin|operator|viewer "
				"is required\n");
		return 2;
	}
	return token_create(conninfo, token_role_parse(role), name, expires_in);
}
