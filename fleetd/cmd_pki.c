// SPDX-License-Identifier: Apache-2.0
/*
 * `fleetd pki init --dir DIR --server-name NAME [--server-name NAME...]
 * [--crl-url URL]`: creates a new fleet PKI with libfleetpki (root CA,
 * device issuing CA, server certificate, CA bundle). Run once by the
 * operator in the fleetd binary; trusts its command line only as far as
 * libfleetpki checks it. Never overwrites an existing PKI.
 */
#include <stdio.h>
#include <string.h>

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

static int
pki_init(int argc, char **argv)
{
	const char *names[PKI_INIT_MAX_NAMES];
	const char *dir = NULL, *crl_url = NULL;
	struct pki_error err;
	size_t n = 0;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr,
				"fleetd pki init: %s needs a value "
				"(see --help)\n",
				a);
			return 2;
		}
		if (strcmp(a, "--dir") == 0) {
			dir = argv[++i];
		} else if (strcmp(a, "--server-name") == 0) {
			if (n == PKI_INIT_MAX_NAMES) {
				fprintf(stderr,
					"fleetd pki init: at most %d server "
					"names\n",
					PKI_INIT_MAX_NAMES);
				return 2;
			}
			names[n++] = argv[++i];
		} else if (strcmp(a, "--crl-url") == 0) {
			crl_url = argv[++i];
		} else {
			fprintf(stderr,
				"fleetd pki init: unknown option %s (see "
				"--help)\n",
				a);
			return 2;
		}
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
	printf("created PKI in %s; move %s/root/root.key offline\n", dir, dir);
	return 0;
}

int
cmd_pki(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "init") == 0)
		return pki_init(argc - 1, argv + 1);
	fprintf(stderr, "fleetd pki: unknown command %s (see --help)\n",
		argv[1]);
	return 2;
}
