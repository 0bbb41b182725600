/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd's entry point: parses the command line and runs one command:
 * `serve` (the supervisor, which forks the ca process and the net workers),
 * `migrate`, `check-config`, `token create` and `pki init`. The command
 * line and the config file are the operator's, but still checked.
 */
#include "cmd_pki.h"
#include "cmd_token.h"
#include "config.h"
#include "db/db.h"
#include "db/migrate.h"
#include "fleet_paths.h"
#include "fleet_version.h"
#include "log.h"
#include "supervisor.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: fleetd [-c FILE] [COMMAND]\n"
		"\n"
		"Secure device provisioning and fleet manager.\n"
		"\n"
		"commands:\n"
		"  serve           run the service (default)\n"
		"  migrate         apply pending database migrations\n"
		"  check-config    validate the config file and exit\n"
		"  token create    make an admin token (direct database "
		"access)\n"
		"  pki init        create the CA hierarchy and server "
		"certificate\n"
		"\n"
		"options:\n"
		"  -c, --config FILE   config file (keys: docs/config.md); "
		"every key can\n"
		"                      also be set as FLEETD_<KEY> in the "
		"environment\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"signals (serve):\n"
		"  SIGHUP          reload the config file: log level and "
		"what the ca and\n"
		"                  net workers read are applied by replacing "
		"them one at a\n"
		"                  time; listen addresses, workers and user "
		"need a restart\n"
		"  SIGTERM         stop: the net workers drain, then the ca "
		"stops\n"
		"\n"
		"Under systemd (Type=notify) fleetd reports READY=1, "
		"RELOADING=1, STOPPING=1\n"
		"and its status to the service manager, and logs to the "
		"journal with syslog\n"
		"priorities. Configuration keys: fleetd.conf(5); "
		"documentation: docs/.\n");
}

static int
load_config(const char *path, struct fleetd_config *cfg)
{
	enum log_level level = LOG_LEVEL_INFO;
	char err[1024];

	if (fleetd_config_load(path, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fleetd: %s\n", err);
		return -1;
	}
	(void)log_level_parse(cfg->log_level, &level);
	log_setup("fleetd", level, cfg->log_syslog != 0);
	db_commit_timeout_set(cfg->database_commit_timeout);
	return 0;
}

static PGconn *
connect_db(const struct fleetd_config *cfg)
{
	PGconn *conn = PQconnectdb(cfg->database);

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "fleetd: database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int
cmd_migrate(const struct fleetd_config *cfg)
{
	char err[1024];
	PGconn *conn = connect_db(cfg);
	char installed[4096];
	const char *dir = cfg->migrations_dir;
	int applied = 0;
	int rc = 1;

	/* The default (the source tree's directory) means "the migrations
	 * this fleetd ships with": an installed fleetd has them beside it. */
	if (strcmp(dir, FLEET_MIGRATIONS_SOURCE_DIR) == 0 &&
	    migrate_installed_dir(installed, sizeof(installed)) == 0)
		dir = installed;
	if (conn == NULL)
		return 1;
	if (migrate_apply(conn, dir, &applied, err, sizeof(err)) != 0) {
		fprintf(stderr, "fleetd: migrate: %s\n", err);
		goto out;
	}
	printf("migrations applied: %d (schema version %d)\n", applied,
	       FLEET_SCHEMA_VERSION);
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}

static int
cmd_serve(struct fleetd_config *cfg, const char *config_path)
{
	char err[1024];
	PGconn *conn = connect_db(cfg);
	int rc;

	if (conn == NULL)
		return 1;
	rc = migrate_check(conn, FLEET_SCHEMA_VERSION, err, sizeof(err));
	PQfinish(conn);
	if (rc != 0) {
		fprintf(stderr, "fleetd: %s\n", err);
		return 1;
	}
	return supervisor_run(cfg, config_path);
}

int
main(int argc, char **argv)
{
	struct fleetd_config cfg;
	const char *config_path = NULL;
	const char *command = "serve";
	int cmd_index = argc;
	int rc;

	log_setup("fleetd", LOG_LEVEL_INFO, false);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			if (cmd_index < argc)
				break; /* the command's own --help */
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 ||
			   strcmp(argv[i], "--version") == 0) {
			printf("fleetd %s (schema %d)\n", FLEET_PROJECT_VERSION,
			       FLEET_SCHEMA_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 ||
			   strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "fleetd: %s needs a file\n",
					argv[i]);
				return 2;
			}
			config_path = argv[++i];
		} else if (argv[i][0] == '-' && cmd_index == argc) {
			fprintf(stderr,
				"fleetd: unknown option '%s' (see --help)\n",
				argv[i]);
			return 2;
		} else if (cmd_index == argc) {
			cmd_index = i;
			command = argv[i];
			/* pki and token parse the rest themselves. */
			if (strcmp(command, "pki") == 0 ||
			    strcmp(command, "token") == 0)
				break;
		}
	}

	if (strcmp(command, "pki") == 0) {
		/* Only for `user` (who gets the server key when root). */
		if (load_config(config_path, &cfg) != 0)
			return 1;
		rc = cmd_pki(argc - cmd_index, argv + cmd_index, cfg.user);
		fleetd_config_free(&cfg);
		return rc;
	}

	if (strcmp(command, "check-config") == 0 && config_path == NULL) {
		fprintf(stderr, "fleetd: check-config needs -c FILE\n");
		return 2;
	}
	if (strcmp(command, "serve") != 0 && strcmp(command, "migrate") != 0 &&
	    strcmp(command, "check-config") != 0 &&
	    strcmp(command, "token") != 0) {
		fprintf(stderr, "fleetd: unknown command '%s' (see --help)\n",
			command);
		return 2;
	}
	if (load_config(config_path, &cfg) != 0)
		return 1;
	if (strcmp(command, "check-config") == 0) {
		printf("%s: ok\n", config_path);
		rc = 0;
	} else if (strcmp(command, "migrate") == 0) {
		rc = cmd_migrate(&cfg);
	} else if (strcmp(command, "token") == 0) {
		rc = cmd_token(argc - cmd_index, argv + cmd_index,
			       cfg.database);
	} else {
		rc = cmd_serve(&cfg, config_path);
	}
	fleetd_config_free(&cfg);
	return rc;
}
