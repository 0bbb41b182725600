// SPDX-License-Identifier: Apache-2.0
/*
 * `fleetd pki init --dir DIR --server-name NAME [--server-name NAME...]
 * [--crl-url URL]`: creates a new fleet PKI with libfleetpki (root CA,
 * device issuing CA, server certificate, CA bundle). Run once by the
 * operator in the fleetd binary; trusts its command line only as far as
 * libfleetpki checks it. Never overwrites an existing PKI.
 *
 * Run as root, it hands DIR/server/ and the server key to the group of the
 * config's `user`, which fleetd's net workers run as; the root and issuing
 * keys stay root's alone (docs/internals/privsep.md).
 *
 * `fleetd pki rotate-issuing --dir DIR --root-dir RDIR [--database C]`
 * and `fleetd pki retire-issuing --dir DIR [--database C]`: the issuing-CA
 * rollover (docs/pki.md). rotate-issuing makes a new issuing CA under the
 * root (its key brought back from offline in RDIR), registers both CAs in
 * PostgreSQL (one transaction, with its audit row), then moves the files;
 * SIGHUP to fleetd makes the ca issue with it and the workers trust both.
 * retire-issuing removes the previous CA once no active certificate of it
 * remains. The database comes from --database or FLEETD_DATABASE.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_pki.h"
#include "core/audit.h"
#include "core/store_issuing_ca.h"
#include "db/store.h"
#include "pki.h"

#define PKI_CLI_ACTOR "local:fleetd-cli"

static void
usage(FILE *out)
{
	fprintf(out, "usage: fleetd pki init --dir DIR --server-name NAME "
		     "[--server-name NAME...] [--crl-url URL]\n"
		     "\n"
		     "Creates DIR/root/ (root.key, root.pem: move root.key "
		     "offline),\n"
		     "DIR/issuing/ (issuing.key, issuing.pem), DIR/server/\n"
		     "(server.key, server.pem, server-chain.pem) and\n"
		     "DIR/ca-bundle.pem (root + issuing CA, what devices and\n"
		     "clients trust). NAME is a DNS name or an IP address.\n"
		     "Refuses to overwrite an existing PKI.\n"
		     "\n"
		     "usage: fleetd pki rotate-issuing --dir DIR --root-dir "
		     "RDIR [--database CONNINFO]\n"
		     "       fleetd pki retire-issuing --dir DIR [--database "
		     "CONNINFO]\n"
		     "\n"
		     "rotate-issuing: a new device issuing CA under the root "
		     "of RDIR\n(root.pem, root.key); the current one is kept "
		     "as DIR/issuing/previous/,\ntrusted until retired. Then "
		     "send SIGHUP to fleetd. retire-issuing:\nremoves the "
		     "previous CA once no active certificate of it remains.\n"
		     "CONNINFO defaults to $FLEETD_DATABASE.\n");
}

/* Gives path to root:gid with mode, without following a link. */
static int
share_with_group(const char *path, gid_t gid, mode_t mode)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	int rc = 0;

	if (fd < 0 || fchown(fd, 0, gid) != 0 || fchmod(fd, mode) != 0) {
		fprintf(stderr, "fleetd pki init: %s: %s\n", path,
			strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * As root: the net workers (user `user`) must read the server certificate
 * and key; DIR/server/ becomes root:<group> 0750 and server.key 0640.
 */
static int
share_server_key(const char *dir, const char *user)
{
	char path[4096];
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL || pw->pw_gid == 0) {
		printf("note: user '%s' does not exist (or is in group root); "
		       "fleetd started as root needs it: create it, then "
		       "chgrp it %s/server %s/server/server.key and chmod "
		       "0750 and 0640\n",
		       user, dir, dir);
		return 0;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/server", dir) >=
		    sizeof(path) ||
	    share_with_group(path, pw->pw_gid, 0750) != 0)
		return -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/server/server.key", dir) >=
		    sizeof(path) ||
	    share_with_group(path, pw->pw_gid, 0640) != 0)
		return -1;
	return 0;
}

static int
pki_init(int argc, char **argv, const char *user)
{
	enum { OPT_DIR = 1000, OPT_NAME, OPT_CRL_URL };
	static const struct option opts[] = {
		{"dir", required_argument, NULL, OPT_DIR},
		{"server-name", required_argument, NULL, OPT_NAME},
		{"crl-url", required_argument, NULL, OPT_CRL_URL},
		{"help", no_argument, NULL, 'h'},
		{0}};
	const char *names[PKI_INIT_MAX_NAMES];
	const char *dir = NULL, *crl_url = NULL;
	struct pki_error err;
	size_t n = 0;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_DIR:
			dir = optarg;
			break;
		case OPT_NAME:
			if (n == PKI_INIT_MAX_NAMES) {
				fprintf(stderr,
					"fleetd pki init: at most %d server "
					"names\n",
					PKI_INIT_MAX_NAMES);
				return 2;
			}
			names[n++] = optarg;
			break;
		case OPT_CRL_URL:
			crl_url = optarg;
			break;
		case ':':
			fprintf(stderr,
				"fleetd pki init: %s needs a value (see "
				"--help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr,
				"fleetd pki init: unknown option %s (see "
				"--help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"fleetd pki init: unexpected argument %s (see "
			"--help)\n",
			argv[optind]);
		return 2;
	}
	if (dir == NULL || n == 0) {
		fprintf(stderr, "fleetd pki init: --dir and at least one "
				"--server-name are required\n");
		return 2;
	}
	if (pki_init_dir(dir, names, n, crl_url, &err) != PKI_OK) {
		fprintf(stderr, "fleetd pki init: %s\n", err.msg);
		return 1;
	}
	if (share_server_key(dir, user) != 0)
		return 1;
	printf("created PKI in %s; move %s/root/root.key offline\n", dir, dir);
	return 0;
}

/* Options of rotate-issuing and retire-issuing. 0, or an exit code. */
static int
rollover_args(int argc, char **argv, const char *cmd, const char **dir,
	      const char **root_dir, const char **database)
{
	enum { OPT_DIR = 1000, OPT_ROOT, OPT_DB };
	static const struct option opts[] = {
		{"dir", required_argument, NULL, OPT_DIR},
		{"root-dir", required_argument, NULL, OPT_ROOT},
		{"database", required_argument, NULL, OPT_DB},
		{"help", no_argument, NULL, 'h'},
		{0}};
	int c;

	*database = getenv("FLEETD_DATABASE");
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return -1;
		case OPT_DIR:
			*dir = optarg;
			break;
		case OPT_ROOT:
			*root_dir = optarg;
			break;
		case OPT_DB:
			*database = optarg;
			break;
		default:
			fprintf(stderr,
				"fleetd pki %s: bad option %s (see --help)\n",
				cmd, argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc || *dir == NULL ||
	    (strcmp(cmd, "rotate-issuing") == 0 && *root_dir == NULL)) {
		fprintf(stderr,
			"fleetd pki %s: --dir%s required (see --help)\n", cmd,
			strcmp(cmd, "rotate-issuing") == 0
				? " and --root-dir are"
				: " is");
		return 2;
	}
	if (*database == NULL || (*database)[0] == '\0') {
		fprintf(stderr,
			"fleetd pki %s: no database: give --database "
			"or set FLEETD_DATABASE\n",
			cmd);
		return 2;
	}
	return 0;
}

static struct store *
rollover_store(const char *cmd, const char *database)
{
	struct store *st = store_new(database);

	if (st == NULL || store_conn(st) == NULL) {
		fprintf(stderr, "fleetd pki %s: cannot connect to PostgreSQL\n",
			cmd);
		store_free(st);
		return NULL;
	}
	return st;
}

static int
pki_rotate_issuing(int argc, char **argv)
{
	const char *dir = NULL, *root_dir = NULL, *database = NULL;
	struct pki_rollover ro;
	struct pki_error err;
	struct audit_entry audit;
	struct store *st = NULL;
	enum store_rc src;
	int rc;

	rc = rollover_args(argc, argv, "rotate-issuing", &dir, &root_dir,
			   &database);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	memset(&ro, 0, sizeof(ro));
	st = rollover_store("rotate-issuing", database);
	if (st == NULL)
		return 1;
	rc = 1;
	if (pki_rollover_prepare(dir, root_dir, &ro, &err) != PKI_OK) {
		fprintf(stderr, "fleetd pki rotate-issuing: %s\n", err.msg);
		goto out;
	}
	memset(&audit, 0, sizeof(audit));
	audit.actor = PKI_CLI_ACTOR;
	audit.action = "pki.rotate-issuing";
	audit.target = ro.new_id;
	audit_add_str(&audit, "previous", ro.old_id);
	src = store_issuing_ca_rotate(st, ro.old_id, ro.old_pem, ro.new_id,
				      ro.new_pem, &audit);
	if (src != STORE_OK) {
		pki_rollover_abort(dir);
		fprintf(stderr, "fleetd pki rotate-issuing: %s\n",
			src == STORE_CONFLICT
				? "the database says another rollover is in "
				  "progress or this is not the current "
				  "issuing CA; nothing changed"
				: "cannot register the new CA in PostgreSQL; "
				  "nothing changed");
		goto out;
	}
	if (pki_rollover_commit(dir, &err) != PKI_OK) {
		fprintf(stderr,
			"fleetd pki rotate-issuing: the new CA %s is "
			"registered but the files were not moved: %s\n",
			ro.new_id, err.msg);
		goto out;
	}
	printf("new issuing CA %s (previous %s kept until retired); send "
	       "SIGHUP to fleetd to issue with it\n",
	       ro.new_id, ro.old_id);
	rc = 0;
out:
	pki_rollover_clear(&ro);
	store_free(st);
	return rc;
}

static int
pki_retire_issuing(int argc, char **argv)
{
	const char *dir = NULL, *root_dir = NULL, *database = NULL;
	char id[PKI_KEY_ID_LEN];
	struct pki_error err;
	struct audit_entry audit;
	struct store *st = NULL;
	enum store_rc src;
	int64_t left = 0;
	int rc;

	rc = rollover_args(argc, argv, "retire-issuing", &dir, &root_dir,
			   &database);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (pki_rollover_previous_id(dir, id, &err) != PKI_OK) {
		fprintf(stderr, "fleetd pki retire-issuing: %s\n", err.msg);
		return 1;
	}
	st = rollover_store("retire-issuing", database);
	if (st == NULL)
		return 1;
	memset(&audit, 0, sizeof(audit));
	audit.actor = PKI_CLI_ACTOR;
	audit.action = "pki.retire-issuing";
	audit.target = id;
	src = store_issuing_ca_retire(st, id, &left, &audit);
	store_free(st);
	if (src == STORE_CONFLICT) {
		fprintf(stderr,
			"fleetd pki retire-issuing: %lld active certificate%s "
			"of %s remain%s; they move to the new CA as their "
			"devices renew (or rotate them)\n",
			(long long)left, left == 1 ? "" : "s", id,
			left == 1 ? "s" : "");
		return 1;
	}
	if (src != STORE_OK) {
		fprintf(stderr, "fleetd pki retire-issuing: %s\n",
			src == STORE_NOTFOUND
				? "the database knows no previous issuing CA "
				  "with this key id"
				: "PostgreSQL failed; nothing changed");
		return 1;
	}
	if (pki_rollover_retire(dir, &err) != PKI_OK) {
		fprintf(stderr, "fleetd pki retire-issuing: %s\n", err.msg);
		return 1;
	}
	printf("retired issuing CA %s; send SIGHUP to fleetd to stop "
	       "trusting it\n",
	       id);
	return 0;
}

int
cmd_pki(int argc, char **argv, const char *user)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "init") == 0)
		return pki_init(argc - 1, argv + 1, user);
	if (strcmp(argv[1], "rotate-issuing") == 0)
		return pki_rotate_issuing(argc - 1, argv + 1);
	if (strcmp(argv[1], "retire-issuing") == 0)
		return pki_retire_issuing(argc - 1, argv + 1);
	fprintf(stderr, "fleetd pki: unknown command %s (see --help)\n",
		argv[1]);
	return 2;
}
