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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_pki.h"
#include "pki.h"

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
		     "Refuses to overwrite an existing PKI.\n");
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
	fprintf(stderr, "fleetd pki: unknown command %s (see --help)\n",
		argv[1]);
	return 2;
}
