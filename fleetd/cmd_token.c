/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fleetd token create --role admin|operator|viewer [--name N]`: inserts an
 * admin token straight into PostgreSQL (no running fleetd needed), with
 * its audit row (actor "local:fleetd-cli") in the same transaction, and
 * prints the token once on stdout, alone on one line, so a script can
 * capture it. Runs in the fleetd binary as a one-shot command; whoever
 * can reach the database can run it.
 */
#include "cmd_token.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db/admin_tokens.h"
#include "db/audit.h"
#include "db/db.h"
#include "secret.h"

#define CLI_ACTOR "local:fleetd-cli"

static void
token_usage(FILE *f)
{
	fprintf(f,
		"usage: fleetd token create --role admin|operator|viewer "
		"[--name NAME]\n"
		"Creates an API admin token and prints it once on stdout.\n");
}

static int
token_create(const char *conninfo, const char *role, const char *name)
{
	char token[80] = "", hash[SECRET_SHA256_HEX], id[SECRET_UUID_LEN];
	struct db *db = NULL;
	PGconn *conn;
	json_t *doc = NULL, *details = NULL;
	int rc = 1;

	db = db_new(conninfo);
	if (db == NULL)
		goto out;
	conn = db_conn(db);
	if (conn == NULL) {
		fprintf(stderr, "fleetd token: cannot connect to PostgreSQL\n");
		goto out;
	}
	if (secret_uuid_v4(id) != 0 ||
	    secret_token_new("fla_", token, sizeof(token)) != 0) {
		fprintf(stderr, "fleetd token: no randomness\n");
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	details = json_pack("{s:s, s:s}", "role", role, "name", name);
	if (db_exec(conn, "BEGIN") != 0 ||
	    db_admin_token_create(conn, id, hash, role, name, CLI_ACTOR,
				  &doc) != DB_OK ||
	    audit_write(conn, CLI_ACTOR, "admin_token.create", id, details) !=
		    DB_OK ||
	    db_exec(conn, "COMMIT") != 0) {
		fprintf(stderr, "fleetd token: could not store the token "
				"(is the database migrated?)\n");
		goto out;
	}
	printf("%s\n", token);
	if (fflush(stdout) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	json_decref(doc);
	json_decref(details);
	db_free(db);
	return rc;
}

int
cmd_token(int argc, char **argv, const char *conninfo)
{
	const char *role = NULL, *name = "";
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
		} else {
			fprintf(stderr, "fleetd token: bad argument '%s'\n",
				argv[i]);
			token_usage(stderr);
			return 2;
		}
	}
	if (role == NULL ||
	    (strcmp(role, "admin") != 0 && strcmp(role, "operator") != 0 &&
	     strcmp(role, "viewer") != 0)) {
		fprintf(stderr, "fleetd token: --role admin|operator|viewer "
				"is required\n");
		return 2;
	}
	if (strlen(name) > 255) {
		fprintf(stderr, "fleetd token: --name is at most 255 bytes\n");
		return 2;
	}
	return token_create(conninfo, role, name);
}
