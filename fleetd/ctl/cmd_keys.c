// SPDX-License-Identifier: Apache-2.0
/*
 * `fleetctl keys gen --out FILE [--type p256|ed25519]`: makes an update
 * signing key on the release engineer's machine (never on fleetd): FILE
 * gets the private key (PEM, mode 0600 from creation), FILE.pub the public
 * key, and the key id (SHA-256 of the SubjectPublicKeyInfo) is printed for
 * the agents' trusted key list. Trusts only its command line.
 */
#include <stdio.h>
#include <string.h>

#include "cmd_keys.h"
#include "pki.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: fleetctl keys gen --out FILE "
		"[--type p256|ed25519]\n"
		"\n"
		"Writes a new update-signing private key to FILE (mode "
		"0600) and its\n"
		"public key to FILE.pub, and prints the key id. Refuses to "
		"overwrite.\n");
}

static int
keys_gen(int argc, char **argv)
{
	enum pki_key_type type = PKI_KEY_P256;
	const char *out = NULL;
	struct pki_error err;
	EVP_PKEY *key = NULL;
	char pub[4096];
	char id[PKI_KEY_ID_LEN];
	int n, i, rc = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr,
				"fleetctl keys gen: %s needs a value "
				"(see --help)\n",
				a);
			return 2;
		}
		if (strcmp(a, "--out") == 0) {
			out = argv[++i];
		} else if (strcmp(a, "--type") == 0) {
			i++;
			if (strcmp(argv[i], "p256") == 0) {
				type = PKI_KEY_P256;
			} else if (strcmp(argv[i], "ed25519") == 0) {
				type = PKI_KEY_ED25519;
			} else {
				fprintf(stderr,
					"fleetctl keys gen: --type must be "
					"p256 or ed25519\n");
				return 2;
			}
		} else {
			fprintf(stderr,
				"fleetctl keys gen: unknown option %s (see "
				"--help)\n",
				a);
			return 2;
		}
	}
	if (out == NULL || out[0] == '\0') {
		fprintf(stderr, "fleetctl keys gen: --out FILE is required\n");
		return 2;
	}
	n = snprintf(pub, sizeof(pub), "%s.pub", out);
	if (n < 0 || (size_t)n >= sizeof(pub)) {
		fprintf(stderr, "fleetctl keys gen: path too long\n");
		return 2;
	}
	if (pki_key_generate(type, &key, &err) != PKI_OK ||
	    pki_key_id(key, id, &err) != PKI_OK)
		goto fail;
	/* Public first: if FILE.pub is in the way, no private key is left
	 * behind without its public half. */
	if (pki_key_save_public(key, pub, false, &err) != PKI_OK)
		goto fail;
	if (pki_key_save_private(key, out, false, &err) != PKI_OK) {
		(void)remove(pub);
		goto fail;
	}
	printf("%s\n", id);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "fleetctl keys gen: %s\n", err.msg);
out:
	EVP_PKEY_free(key);
	return rc;
}

int
ctl_cmd_keys(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "gen") == 0)
		return keys_gen(argc - 1, argv + 1);
	fprintf(stderr, "fleetctl keys: unknown command %s (see --help)\n",
		argv[1]);
	return 2;
}
