// SPDX-License-Identifier: Apache-2.0
/*
 * `fleetctl keys gen --out FILE [--type p256|ed25519]`: makes an update
 * signing key on the release engineer's machine (never on fleetd): FILE
 * gets the private key (PEM, mode 0600 from creation), FILE.pub the public
 * key, and the key id (SHA-256 of the SubjectPublicKeyInfo) is printed for
 * the agents' trusted key list. Trusts only its command line; needs no
 * server. The key is wiped when it is freed (secmem.c).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pki.h"

static const struct ctl_help gen_help = {
	"keys gen", "--out FILE [--type p256|ed25519]",
	"Writes a new update-signing private key to FILE (mode 0600) and its\n"
	"public key to FILE.pub, and prints the key id. Refuses to "
	"overwrite.\n"
	"\n"
	"Options:\n"
	"  --out FILE        where to write the private key\n"
	"  --type T          p256 (default) or ed25519\n"};

enum { OPT_OUT = CTL_OPT_FIRST_LOCAL, OPT_TYPE };

struct gen_args {
	const char *out;
	enum pki_key_type type;
};

static int
gen_opt(void *arg, int c, const char *val)
{
	struct gen_args *a = arg;

	if (c == OPT_OUT)
		a->out = val;
	else if (strcmp(val, "p256") == 0)
		a->type = PKI_KEY_P256;
	else if (strcmp(val, "ed25519") == 0)
		a->type = PKI_KEY_ED25519;
	else
		return ctl_usage(&gen_help,
				 "--type must be p256 or ed25519, not '%s'",
				 val);
	return CTL_CONTINUE;
}

static int
keys_gen(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, OPT_OUT},
		{"type", required_argument, NULL, OPT_TYPE},
		{0}};
	struct gen_args a = {NULL, PKI_KEY_P256};
	struct ctl_optset local = {opts, gen_opt, &a};
	struct pki_error err;
	EVP_PKEY *key = NULL;
	char pub[4096];
	char id[PKI_KEY_ID_LEN];
	int n, rc = ctl_parse(ctl, &gen_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.out == NULL || a.out[0] == '\0')
		return ctl_usage(&gen_help, "--out FILE is required");
	n = snprintf(pub, sizeof(pub), "%s.pub", a.out);
	if (n < 0 || (size_t)n >= sizeof(pub))
		return ctl_usage(&gen_help, "--out: path too long");
	rc = CTL_EXIT_FAIL;
	if (pki_key_generate(a.type, &key, &err) != PKI_OK ||
	    pki_key_id(key, id, &err) != PKI_OK)
		goto fail;
	/* Public first: if FILE.pub is in the way, no private key is left
	 * behind without its public half. */
	if (pki_key_save_public(key, pub, false, &err) != PKI_OK)
		goto fail;
	if (pki_key_save_private(key, a.out, false, &err) != PKI_OK) {
		(void)remove(pub);
		goto fail;
	}
	printf("%s\n", id);
	rc = CTL_EXIT_OK;
	goto out;
fail:
	ctl_fail("keys gen: %s", err.msg);
out:
	EVP_PKEY_free(key);
	return rc;
}

static const struct ctl_subcmd subs[] = {
	{"gen", "make an update-signing key pair", keys_gen, NULL, NULL},
};

int
ctl_cmd_keys(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "keys",
			    "Update-signing keys for DSSE manifests (offline, "
			    "no server).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
