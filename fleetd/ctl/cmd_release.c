// SPDX-License-Identifier: Apache-2.0
/*
 * `fleetctl release ...`: the release engineer's offline tools
 * (docs/releases.md). `sign` hashes a file and signs its manifest with one
 * or more release keys (k-of-n), `verify` applies exactly the agent's
 * checks (pki_release_verify, pki_manifest_check, pki_manifest_match) so a
 * release can be tried before it is uploaded, `keys rotate` makes the
 * envelope of key set version n+1 signed by set n, `keys verify` checks
 * one, and `keys upload` posts it to fleetd (the only subcommand that
 * needs a server and a token).
 *
 * Runs on the release engineer's machine. Trusts its command line and the
 * key files it names; envelopes and files given to `verify` are trusted
 * for nothing (they may come from anywhere). Private keys are wiped when
 * freed (secmem.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "atomicfile.h"
#include "conffile.h"
#include "ctl.h"
#include "pki.h"
#include "release.h"

#define READ_CHUNK (64u * 1024u)
#define MAX_DURATION (10L * 366 * 86400) /* ten years */

enum {
	OPT_KEY = CTL_OPT_FIRST_LOCAL,
	OPT_NAME,
	OPT_VERSION,
	OPT_VERSION_INT,
	OPT_HW,
	OPT_INSTALLER,
	OPT_EXPIRES,
	OPT_OUT,
	OPT_KEYS,
	OPT_THRESHOLD,
	OPT_MODEL,
	OPT_INSTALLED,
	OPT_CURRENT_VERSION,
	OPT_NEW_KEY,
	OPT_KEYSET,
};

/* ---- helpers ------------------------------------------------------------ */

/* Streams path through SHA-256: lowercase hex into hex, byte count into
 * *size. 0, or -1 with a message printed. */
static int
hash_file(const char *path, char hex[65], uint64_t *size)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	unsigned char *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	FILE *f = NULL;
	uint64_t total = 0;
	size_t n;
	int rc = -1;

	f = fopen(path, "rb");
	if (f == NULL) {
		ctl_fail("%s: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(READ_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (buf == NULL || ctx == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		ctl_fail("out of memory");
		goto out;
	}
	while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, n) != 1) {
			ctl_fail("sha256 failed");
			goto out;
		}
		total += n;
	}
	if (ferror(f)) {
		ctl_fail("%s: read error", path);
		goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		ctl_fail("sha256 failed");
		goto out;
	}
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	fclose(f);
	return rc;
}

/* Reads an envelope file (bounded). 0, or -1 with a message printed. */
static int
read_envelope(const char *path, char **text, size_t *len)
{
	char err[512];

	if (read_file_bounded(path, PKI_DSSE_MAX_ENVELOPE, text, len, err,
			      sizeof(err)) != 0) {
		ctl_fail("%s", err);
		return -1;
	}
	return 0;
}

/* Splits "a,b,c" into at most max pointers into the copy *store. The
 * count, or -1 (an empty element, or too many). */
static int
split_list(const char *s, char **store, const char **out, int max)
{
	char *p, *next;
	int n = 0;

	*store = strdup(s);
	if (*store == NULL)
		return -1;
	for (p = *store; p != NULL; p = next) {
		next = strchr(p, ',');
		if (next != NULL)
			*next++ = '\0';
		if (*p == '\0' || n >= max)
			return -1;
		out[n++] = p;
	}
	return n;
}

/* Loads the private keys (refusing the same key twice). 0, or the exit
 * code after a message. */
static int
load_private_keys(const char *cmd, const char *const *paths, size_t n,
		  EVP_PKEY **keys, char (*ids)[PKI_KEY_ID_LEN])
{
	struct pki_error err;
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (pki_key_load_private(paths[i], &keys[i], &err) != PKI_OK ||
		    pki_key_id(keys[i], ids[i], &err) != PKI_OK)
			return ctl_fail("%s: %s", cmd, err.msg);
		for (j = 0; j < i; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				return ctl_fail("%s: %s and %s are the same "
						"key (%s): each key signs once",
						cmd, paths[j], paths[i],
						ids[i]);
	}
	return 0;
}

static void
free_keys(EVP_PKEY **keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
}

/* The pinned set for verification: --keyset FILE (a key set payload, as
 * an agent stores it in keyset.json) or --keys PUB,... with --threshold.
 * 0, or the exit code after a message. */
static int
pinned_set(const struct ctl_help *h, const char *keyset_file,
	   const char *keys_csv, long threshold, struct pki_keyset *ks)
{
	const char *paths[PKI_RELEASE_MAX_KEYS];
	struct pki_error err;
	char *store = NULL, *text = NULL;
	size_t len = 0;
	int n;

	if (keyset_file != NULL && keys_csv != NULL)
		return ctl_usage(h, "give --keys or --keyset, not both");
	if (keyset_file != NULL) {
		if (read_envelope(keyset_file, &text, &len) != 0)
			return CTL_EXIT_FAIL;
		if (pki_keyset_parse(text, len, ks, &err) != PKI_OK) {
			free(text);
			return ctl_fail("%s: %s", keyset_file, err.msg);
		}
		free(text);
		return 0;
	}
	if (keys_csv == NULL)
		return ctl_usage(h, "--keys PUB[,PUB...] is required");
	if (threshold <= 0)
		return ctl_usage(h, "--threshold K is required");
	n = split_list(keys_csv, &store, paths, PKI_RELEASE_MAX_KEYS);
	if (n <= 0) {
		free(store);
		return ctl_usage(h,
				 "--keys must list 1 to %d files separated by "
				 "commas",
				 PKI_RELEASE_MAX_KEYS);
	}
	if (pki_keyset_from_files(paths, (size_t)n, (size_t)threshold, ks,
				  &err) != PKI_OK) {
		free(store);
		return ctl_fail("%s: %s", h->cmd, err.msg);
	}
	free(store);
	return 0;
}

static json_t *
manifest_to_json(const struct pki_manifest *m)
{
	struct pki_error err;
	char *text = NULL;
	json_t *j = NULL;

	if (pki_manifest_json(m, &text, NULL, &err) != PKI_OK)
		return NULL;
	j = json_loads(text, 0, NULL);
	free(text);
	return j;
}

static void
print_manifest(const struct pki_manifest *m)
{
	char buf[PKI_RELEASE_MAX_HW * (PKI_RELEASE_NAME_MAX + 1) + 1];
	char num[32];
	struct tm tm;
	size_t i, off = 0;

	ctl_print_field("name", m->name);
	ctl_print_field("version", m->version);
	snprintf(num, sizeof(num), "%lld", (long long)m->version_int);
	ctl_print_field("version_int", num);
	buf[0] = '\0';
	for (i = 0; i < m->n_hw; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
					i > 0 ? "," : "", m->hw[i]);
	ctl_print_field("hw", buf);
	ctl_print_field("installer", m->installer);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)m->size);
	ctl_print_field("size", num);
	ctl_print_field("sha256", m->sha256);
	gmtime_r(&m->created, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ctl_print_field("created", buf);
	gmtime_r(&m->expires, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ctl_print_field("expires", buf);
}

/* ---- release sign -------------------------------------------------------- */

static const struct ctl_help sign_help = {
	"release sign",
	"--key K [--key K2 ...] --name N --version V --version-int I --hw "
	"MODEL[,MODEL] --installer TYPE --expires DUR [--out ENVELOPE] FILE",
	"Hashes FILE (SHA-256, streamed) and writes a DSSE envelope over its\n"
	"manifest, signed by every --key (release private keys; k-of-n: give\n"
	"at least the agents' update_threshold of them). Prints the key ids\n"
	"that signed. Offline: needs no server. Refuses to overwrite.\n"
	"\n"
	"Options:\n"
	"  --key FILE          a release private key (repeatable, each once)\n"
	"  --name N            the release's name (1 to 128 bytes)\n"
	"  --version V         the version people read (\"2.4.1\")\n"
	"  --version-int I     the version agents compare: must grow with\n"
	"                      every release (>= 1); no downgrades\n"
	"  --hw M[,M]          hardware models it is for (repeatable, 1..16)\n"
	"  --installer TYPE    the installer agents run ([a-z0-9._-], e.g.\n"
	"                      single-file, dir-ab, rauc, swupdate)\n"
	"  --expires DUR       agents refuse it after now + DUR (90d, 12h)\n"
	"  --out FILE          the envelope (default FILE.release.json)\n"};

struct sign_args {
	const char *keys[PKI_DSSE_MAX_SIGNATURES];
	size_t nkeys;
	bool too_many_keys;
	struct pki_manifest m;
	char *hw_store[PKI_RELEASE_MAX_HW];
	size_t nhw_store;
	bool hw_bad;
	const char *name, *version, *installer, *out;
	long version_int, expires;
};

static int
sign_add_hw(struct sign_args *a, const char *val)
{
	const char *models[PKI_RELEASE_MAX_HW];
	char *store = NULL;
	size_t i, j;
	int n;

	n = split_list(val, &store, models, PKI_RELEASE_MAX_HW);
	if (n <= 0 || a->nhw_store >= PKI_RELEASE_MAX_HW) {
		free(store);
		return ctl_usage(&sign_help,
				 "--hw must list 1 to %d models separated by "
				 "commas",
				 PKI_RELEASE_MAX_HW);
	}
	a->hw_store[a->nhw_store++] = store;
	for (i = 0; i < (size_t)n; i++) {
		if (a->m.n_hw >= PKI_RELEASE_MAX_HW ||
		    strlen(models[i]) > PKI_RELEASE_NAME_MAX)
			return ctl_usage(&sign_help,
					 "--hw: at most %d models of up to %d "
					 "bytes",
					 PKI_RELEASE_MAX_HW,
					 PKI_RELEASE_NAME_MAX);
		for (j = 0; j < a->m.n_hw; j++)
			if (strcmp(a->m.hw[j], models[i]) == 0)
				return ctl_usage(&sign_help,
						 "--hw lists '%s' twice",
						 models[i]);
		snprintf(a->m.hw[a->m.n_hw++], PKI_RELEASE_NAME_MAX + 1, "%s",
			 models[i]);
	}
	return CTL_CONTINUE;
}

static int
sign_opt(void *arg, int c, const char *val)
{
	struct sign_args *a = arg;

	switch (c) {
	case OPT_KEY:
		if (a->nkeys >= PKI_DSSE_MAX_SIGNATURES)
			return ctl_usage(&sign_help, "at most %d --key",
					 PKI_DSSE_MAX_SIGNATURES);
		a->keys[a->nkeys++] = val;
		break;
	case OPT_NAME:
		a->name = val;
		break;
	case OPT_VERSION:
		a->version = val;
		break;
	case OPT_VERSION_INT:
		if (ctl_parse_long(val, 1, 9007199254740991L,
				   &a->version_int) != 0)
			return ctl_usage(&sign_help,
					 "--version-int must be an integer >= "
					 "1, not '%s'",
					 val);
		break;
	case OPT_HW:
		return sign_add_hw(a, val);
	case OPT_INSTALLER:
		a->installer = val;
		break;
	case OPT_EXPIRES:
		if (config_parse_duration(val, &a->expires) != 0 ||
		    a->expires <= 0 || a->expires > MAX_DURATION)
			return ctl_usage(&sign_help,
					 "--expires must be a duration such as "
					 "90d or 12h (at most ten years), not "
					 "'%s'",
					 val);
		break;
	case OPT_OUT:
		a->out = val;
		break;
	}
	return CTL_CONTINUE;
}

/* A text option into a manifest field of cap bytes. */
static int
sign_text(const char *opt, const char *val, char *field, size_t cap)
{
	if (val == NULL || val[0] == '\0')
		return ctl_usage(&sign_help, "%s is required", opt);
	if (strlen(val) >= cap)
		return ctl_usage(&sign_help, "%s: at most %zu bytes", opt,
				 cap - 1);
	memcpy(field, val, strlen(val) + 1);
	return 0;
}

static int
release_sign(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, OPT_KEY},
		{"name", required_argument, NULL, OPT_NAME},
		{"version", required_argument, NULL, OPT_VERSION},
		{"version-int", required_argument, NULL, OPT_VERSION_INT},
		{"hw", required_argument, NULL, OPT_HW},
		{"installer", required_argument, NULL, OPT_INSTALLER},
		{"expires", required_argument, NULL, OPT_EXPIRES},
		{"out", required_argument, NULL, OPT_OUT},
		{0}};
	struct sign_args *a = calloc(1, sizeof(*a));
	struct ctl_optset local = {opts, sign_opt, a};
	EVP_PKEY *keys[PKI_DSSE_MAX_SIGNATURES] = {NULL};
	char ids[PKI_DSSE_MAX_SIGNATURES][PKI_KEY_ID_LEN];
	struct pki_error err;
	char outbuf[4096];
	char *manifest = NULL, *env = NULL;
	size_t mlen = 0, elen = 0, i;
	const char *file, *out;
	json_t *doc = NULL, *signers = NULL;
	time_t now;
	int rc;

	if (a == NULL)
		return ctl_fail("out of memory");
	local.arg = a;
	rc = ctl_parse(ctl, &sign_help, argc, argv, &local, 1);
	if (rc != CTL_CONTINUE)
		goto out;
	file = argv[optind];
	rc = CTL_EXIT_USAGE;
	if (a->nkeys == 0) {
		rc = ctl_usage(&sign_help, "at least one --key is required");
		goto out;
	}
	if (sign_text("--name", a->name, a->m.name, sizeof(a->m.name)) != 0 ||
	    sign_text("--version", a->version, a->m.version,
		      sizeof(a->m.version)) != 0 ||
	    sign_text("--installer", a->installer, a->m.installer,
		      sizeof(a->m.installer)) != 0)
		goto out;
	if (a->version_int <= 0) {
		rc = ctl_usage(&sign_help, "--version-int I is required");
		goto out;
	}
	if (a->m.n_hw == 0) {
		rc = ctl_usage(&sign_help, "--hw MODEL is required");
		goto out;
	}
	if (a->expires <= 0) {
		rc = ctl_usage(&sign_help, "--expires DUR is required");
		goto out;
	}
	out = a->out;
	if (out == NULL) {
		int n = snprintf(outbuf, sizeof(outbuf), "%s.release.json",
				 file);

		if (n < 0 || (size_t)n >= sizeof(outbuf)) {
			rc = ctl_usage(&sign_help, "FILE: path too long");
			goto out;
		}
		out = outbuf;
	}
	rc = load_private_keys("release sign", a->keys, a->nkeys, keys, ids);
	if (rc != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	if (hash_file(file, a->m.sha256, &a->m.size) != 0)
		goto out;
	if (a->m.size == 0) {
		rc = ctl_fail("release sign: %s is empty", file);
		goto out;
	}
	now = time(NULL);
	a->m.version_int = a->version_int;
	a->m.created = now;
	a->m.expires = now + a->expires;
	if (pki_manifest_json(&a->m, &manifest, &mlen, &err) != PKI_OK) {
		rc = ctl_fail("release sign: %s", err.msg);
		goto out;
	}
	if (pki_dsse_sign(manifest, mlen, PKI_RELEASE_MANIFEST_TYPE, keys,
			  a->nkeys, &env, &elen, &err) != PKI_OK ||
	    pki_file_write(out, env, elen, 0644, false, &err) != PKI_OK) {
		rc = ctl_fail("release sign: %s", err.msg);
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		doc = manifest_to_json(&a->m);
		signers = json_array();
		for (i = 0; signers != NULL && i < a->nkeys; i++)
			json_array_append_new(signers, json_string(ids[i]));
		if (doc == NULL || signers == NULL ||
		    json_object_set_new(doc, "envelope", json_string(out)) ||
		    json_object_set(doc, "signed_by", signers) ||
		    ctl_print_json(doc) != 0) {
			rc = ctl_fail("out of memory");
			goto out;
		}
	} else {
		ctl_print_field("envelope", out);
		print_manifest(&a->m);
		for (i = 0; i < a->nkeys; i++)
			ctl_print_field("signed by", ids[i]);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	json_decref(signers);
	free(env);
	free(manifest);
	free_keys(keys, a->nkeys);
	for (i = 0; i < a->nhw_store; i++)
		free(a->hw_store[i]);
	free(a);
	return rc;
}

/* ---- release verify ------------------------------------------------------ */

static const struct ctl_help verify_help = {
	"release verify",
	"(--keys PUB[,PUB...] --threshold K | --keyset FILE) [--model M] "
	"[--installed-version N] ENVELOPE [FILE]",
	"Checks a release as an agent would: the envelope's signatures "
	"against\n"
	"the pinned keys (at least K of them), then the manifest: expiry,\n"
	"--installed-version (0 by default) and --model (any of its hw when\n"
	"not given); with FILE also its size and SHA-256. Prints the manifest\n"
	"and exits 0, or exits 1 with the agent's reason code: bad-envelope,\n"
	"bad-signature, unknown-key, threshold, expired, not-newer, hardware,\n"
	"size-mismatch, hash-mismatch.\n"
	"\n"
	"Options:\n"
	"  --keys PUB,...         public keys the agents pin (update_keys)\n"
	"  --threshold K          how many must have signed "
	"(update_threshold)\n"
	"  --keyset FILE          instead: a key set payload (an agent's\n"
	"                         keyset.json after a rotation)\n"
	"  --model M              the device's model\n"
	"  --installed-version N  the device's installed version_int\n"};

struct verify_args {
	const char *keys, *keyset, *model;
	long threshold, installed;
	long current_version;
	const struct ctl_help *help;
};

static int
verify_opt(void *arg, int c, const char *val)
{
	struct verify_args *a = arg;

	switch (c) {
	case OPT_KEYS:
		a->keys = val;
		break;
	case OPT_KEYSET:
		a->keyset = val;
		break;
	case OPT_THRESHOLD:
		if (ctl_parse_long(val, 1, PKI_RELEASE_MAX_KEYS,
				   &a->threshold) != 0)
			return ctl_usage(a->help,
					 "--threshold must be 1 to %d, not "
					 "'%s'",
					 PKI_RELEASE_MAX_KEYS, val);
		break;
	case OPT_MODEL:
		a->model = val;
		break;
	case OPT_INSTALLED:
		if (ctl_parse_long(val, 0, 9007199254740991L, &a->installed) !=
		    0)
			return ctl_usage(a->help,
					 "--installed-version must be an "
					 "integer >= 0, not '%s'",
					 val);
		break;
	case OPT_CURRENT_VERSION:
		if (ctl_parse_long(val, 1, 9007199254740990L,
				   &a->current_version) != 0)
			return ctl_usage(a->help,
					 "--current-version must be an "
					 "integer >= 1, not '%s'",
					 val);
		break;
	}
	return CTL_CONTINUE;
}

static int
refused(const char *cmd, enum pki_release_reason r, const char *why)
{
	return ctl_fail("%s: refused (%s): %s", cmd, pki_release_reason_code(r),
			why);
}

static int
release_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"keys", required_argument, NULL, OPT_KEYS},
		{"keyset", required_argument, NULL, OPT_KEYSET},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"model", required_argument, NULL, OPT_MODEL},
		{"installed-version", required_argument, NULL, OPT_INSTALLED},
		{0}};
	struct verify_args a = {0};
	struct ctl_optset local = {opts, verify_opt, &a};
	struct pki_keyset ks = {0};
	struct pki_manifest *m = NULL;
	enum pki_release_reason r;
	char why[512], sha[65];
	char *env = NULL;
	size_t elen = 0;
	uint64_t size = 0;
	json_t *doc = NULL;
	int rc, nargs;

	a.help = &verify_help;
	rc = ctl_parse(ctl, &verify_help, argc, argv, &local, -1);
	if (rc != CTL_CONTINUE)
		return rc;
	nargs = argc - optind;
	if (nargs < 1 || nargs > 2)
		return ctl_want_args(&verify_help, argc, argv,
				     nargs < 1 ? 1 : 2);
	rc = pinned_set(&verify_help, a.keyset, a.keys, a.threshold, &ks);
	if (rc != 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		rc = ctl_fail("out of memory");
		goto out;
	}
	rc = CTL_EXIT_FAIL;
	if (read_envelope(argv[optind], &env, &elen) != 0)
		goto out;
	r = pki_release_verify(env, elen, &ks, m, why, sizeof(why));
	if (r == PKI_RELEASE_OK)
		r = pki_manifest_check(m, time(NULL), a.installed,
				       a.model != NULL ? a.model : m->hw[0],
				       why, sizeof(why));
	if (r == PKI_RELEASE_OK && nargs == 2) {
		if (hash_file(argv[optind + 1], sha, &size) != 0)
			goto out;
		r = pki_manifest_match(m, size, sha, why, sizeof(why));
	}
	if (r != PKI_RELEASE_OK) {
		rc = refused("release verify", r, why);
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		doc = manifest_to_json(m);
		if (doc == NULL || ctl_print_json(doc) != 0) {
			rc = ctl_fail("out of memory");
			goto out;
		}
	} else {
		print_manifest(m);
		ctl_print_field("verified",
				nargs == 2 ? "signatures, manifest, "
					     "file size and sha256"
					   : "signatures and manifest");
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	free(env);
	free(m);
	pki_keyset_clear(&ks);
	return rc;
}

/* ---- release keys rotate -------------------------------------------------- */

static const struct ctl_help rotate_help = {
	"release keys rotate",
	"--key CURRENT_PRIV [--key ...] --current-version N --new-key PUB "
	"[--new-key ...] --threshold K [--out FILE]",
	"Writes the envelope of release key set version N+1 (the --new-key\n"
	"public keys, K of which must sign releases from then on), signed by\n"
	"the --key private keys of set N: at least set N's threshold of them,\n"
	"or agents refuse it. Upload it with 'fleetctl release keys upload'.\n"
	"Offline: needs no server. Refuses to overwrite.\n"
	"\n"
	"Options:\n"
	"  --key FILE             a private key of the current set "
	"(repeatable)\n"
	"  --current-version N    the version agents pin now (1: update_keys)\n"
	"  --new-key FILE         a public key of the new set (repeatable)\n"
	"  --threshold K          signatures the new set requires (1..keys)\n"
	"  --out FILE             default keyset-v<N+1>.json\n"};

struct rotate_args {
	const char *keys[PKI_DSSE_MAX_SIGNATURES];
	size_t nkeys;
	const char *new_keys[PKI_RELEASE_MAX_KEYS];
	size_t nnew;
	long current_version, threshold;
	const char *out;
};

static int
rotate_opt(void *arg, int c, const char *val)
{
	struct rotate_args *a = arg;

	switch (c) {
	case OPT_KEY:
		if (a->nkeys >= PKI_DSSE_MAX_SIGNATURES)
			return ctl_usage(&rotate_help, "at most %d --key",
					 PKI_DSSE_MAX_SIGNATURES);
		a->keys[a->nkeys++] = val;
		break;
	case OPT_NEW_KEY:
		if (a->nnew >= PKI_RELEASE_MAX_KEYS)
			return ctl_usage(&rotate_help, "at most %d --new-key",
					 PKI_RELEASE_MAX_KEYS);
		a->new_keys[a->nnew++] = val;
		break;
	case OPT_CURRENT_VERSION:
		if (ctl_parse_long(val, 1, 9007199254740990L,
				   &a->current_version) != 0)
			return ctl_usage(&rotate_help,
					 "--current-version must be an "
					 "integer >= 1, not '%s'",
					 val);
		break;
	case OPT_THRESHOLD:
		if (ctl_parse_long(val, 1, PKI_RELEASE_MAX_KEYS,
				   &a->threshold) != 0)
			return ctl_usage(&rotate_help,
					 "--threshold must be 1 to %d, not "
					 "'%s'",
					 PKI_RELEASE_MAX_KEYS, val);
		break;
	case OPT_OUT:
		a->out = val;
		break;
	}
	return CTL_CONTINUE;
}

static int
keys_rotate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, OPT_KEY},
		{"new-key", required_argument, NULL, OPT_NEW_KEY},
		{"current-version", required_argument, NULL,
		 OPT_CURRENT_VERSION},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"out", required_argument, NULL, OPT_OUT},
		{0}};
	struct rotate_args a = {0};
	struct ctl_optset local = {opts, rotate_opt, &a};
	EVP_PKEY *keys[PKI_DSSE_MAX_SIGNATURES] = {NULL};
	char ids[PKI_DSSE_MAX_SIGNATURES][PKI_KEY_ID_LEN];
	struct pki_keyset next = {0};
	struct pki_error err;
	char outbuf[64], num[32];
	char *payload = NULL, *env = NULL;
	size_t plen = 0, elen = 0, i;
	json_t *doc = NULL;
	int rc;

	rc = ctl_parse(ctl, &rotate_help, argc, argv, &local, 0);
	if (rc != CTL_CONTINUE)
		return rc;
	if (a.nkeys == 0)
		return ctl_usage(&rotate_help,
				 "at least one --key of the current set is "
				 "required");
	if (a.current_version <= 0)
		return ctl_usage(&rotate_help,
				 "--current-version N is required");
	if (a.nnew == 0)
		return ctl_usage(&rotate_help,
				 "at least one --new-key is required");
	if (a.threshold <= 0 || (size_t)a.threshold > a.nnew)
		return ctl_usage(&rotate_help,
				 "--threshold must be 1 to the number of "
				 "--new-key (%zu)",
				 a.nnew);
	if (a.out == NULL) {
		snprintf(outbuf, sizeof(outbuf), "keyset-v%ld.json",
			 a.current_version + 1);
		a.out = outbuf;
	}
	rc = load_private_keys("release keys rotate", a.keys, a.nkeys, keys,
			       ids);
	if (rc != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	/* The new set: version 1's rules (each key once, 1 <= K <= n). */
	if (pki_keyset_from_files(a.new_keys, a.nnew, (size_t)a.threshold,
				  &next, &err) != PKI_OK) {
		rc = ctl_fail("release keys rotate: --new-key: %s", err.msg);
		goto out;
	}
	next.version = a.current_version + 1;
	if (pki_keyset_json(&next, &payload, &plen, &err) != PKI_OK ||
	    pki_dsse_sign(payload, plen, PKI_RELEASE_KEYSET_TYPE, keys, a.nkeys,
			  &env, &elen, &err) != PKI_OK ||
	    pki_file_write(a.out, env, elen, 0644, false, &err) != PKI_OK) {
		rc = ctl_fail("release keys rotate: %s", err.msg);
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		doc = json_loads(payload, 0, NULL);
		if (doc == NULL ||
		    json_object_set_new(doc, "envelope", json_string(a.out)) ||
		    ctl_print_json(doc) != 0) {
			rc = ctl_fail("out of memory");
			goto out;
		}
	} else {
		ctl_print_field("envelope", a.out);
		snprintf(num, sizeof(num), "%lld", (long long)next.version);
		ctl_print_field("version", num);
		snprintf(num, sizeof(num), "%zu of %zu", next.threshold,
			 next.n);
		ctl_print_field("threshold", num);
		for (i = 0; i < next.n; i++)
			ctl_print_field("key", next.ids[i]);
		for (i = 0; i < a.nkeys; i++)
			ctl_print_field("signed by", ids[i]);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	free(env);
	free(payload);
	pki_keyset_clear(&next);
	free_keys(keys, a.nkeys);
	return rc;
}

/* ---- release keys verify -------------------------------------------------- */

static const struct ctl_help kverify_help = {
	"release keys verify",
	"(--keys PUB[,PUB...] --threshold K [--current-version N] | --keyset "
	"FILE) ENVELOPE",
	"Checks a key set envelope as an agent would: signed by at least K of\n"
	"the keys of the set pinned now (version N, 1 by default: the\n"
	"agents' update_keys; or --keyset, a key set payload with its own\n"
	"version), and of version N+1. Prints the new set and exits 0, or\n"
	"exits 1 with the reason code (bad-envelope, bad-signature,\n"
	"unknown-key, threshold, not-newer).\n"
	"\n"
	"Options:\n"
	"  --keys PUB,...          public keys of the current set\n"
	"  --threshold K           its threshold\n"
	"  --current-version N     its version (default 1)\n"
	"  --keyset FILE           instead: the current set's payload\n"};

static int
keys_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"keys", required_argument, NULL, OPT_KEYS},
		{"keyset", required_argument, NULL, OPT_KEYSET},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"current-version", required_argument, NULL,
		 OPT_CURRENT_VERSION},
		{0}};
	struct verify_args a = {0};
	struct ctl_optset local = {opts, verify_opt, &a};
	struct pki_keyset cur = {0}, next = {0};
	struct pki_error err;
	enum pki_release_reason r;
	char why[512], num[32];
	char *env = NULL, *payload = NULL;
	size_t elen = 0, i;
	json_t *doc = NULL;
	int rc;

	a.help = &kverify_help;
	rc = ctl_parse(ctl, &kverify_help, argc, argv, &local, 1);
	if (rc != CTL_CONTINUE)
		return rc;
	if (a.keyset != NULL && a.current_version > 0)
		return ctl_usage(&kverify_help,
				 "--current-version goes with --keys; a "
				 "--keyset has its own version");
	rc = pinned_set(&kverify_help, a.keyset, a.keys, a.threshold, &cur);
	if (rc != 0)
		return rc;
	if (a.keyset == NULL && a.current_version > 0)
		cur.version = a.current_version;
	rc = CTL_EXIT_FAIL;
	if (read_envelope(argv[optind], &env, &elen) != 0)
		goto out;
	r = pki_keyset_verify(env, elen, &cur, &next, why, sizeof(why));
	if (r != PKI_RELEASE_OK) {
		rc = refused("release keys verify", r, why);
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		if (pki_keyset_json(&next, &payload, NULL, &err) != PKI_OK) {
			rc = ctl_fail("release keys verify: %s", err.msg);
			goto out;
		}
		doc = json_loads(payload, 0, NULL);
		if (doc == NULL || ctl_print_json(doc) != 0) {
			rc = ctl_fail("out of memory");
			goto out;
		}
	} else {
		snprintf(num, sizeof(num), "%lld", (long long)next.version);
		ctl_print_field("version", num);
		snprintf(num, sizeof(num), "%zu of %zu", next.threshold,
			 next.n);
		ctl_print_field("threshold", num);
		for (i = 0; i < next.n; i++)
			ctl_print_field("key", next.ids[i]);
		ctl_print_field("verified", "signed by the current set");
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	free(payload);
	free(env);
	pki_keyset_clear(&cur);
	pki_keyset_clear(&next);
	return rc;
}

/* ---- release keys upload -------------------------------------------------- */

static const struct ctl_help upload_help = {
	"release keys upload", "ENVELOPE",
	"Posts a key set envelope (from 'fleetctl release keys rotate') to\n"
	"fleetd (POST /api/v1/release-keysets), which delivers it to every\n"
	"agent as update.keys. fleetd cannot check the signatures (it holds\n"
	"no release keys); the agents do. Needs --server and an admin "
	"token.\n"};

static int
keys_upload(struct ctl *ctl, int argc, char **argv)
{
	json_error_t jerr;
	json_t *env = NULL, *body = NULL, *answer = NULL;
	char *text = NULL;
	size_t len = 0;
	char num[32];
	int rc = ctl_parse(ctl, &upload_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (read_envelope(argv[optind], &text, &len) != 0)
		return CTL_EXIT_FAIL;
	env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!json_is_object(env)) {
		json_decref(env);
		return ctl_fail("release keys upload: %s is not a JSON "
				"envelope: %s",
				argv[optind], jerr.text);
	}
	body = json_pack("{s:o}", "envelope", env);
	if (body == NULL)
		return ctl_fail("out of memory");
	rc = CTL_EXIT_FAIL;
	if (ctl_api(ctl, "POST", "/api/v1/release-keysets", body, NULL, true,
		    &answer) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		if (ctl_print_json(answer) != 0)
			goto out;
	} else {
		json_t *v = json_object_get(answer, "version");

		snprintf(num, sizeof(num), "%lld",
			 json_is_integer(v) ? (long long)json_integer_value(v)
					    : 0LL);
		printf("uploaded release key set version %s\n", num);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(answer);
	json_decref(body);
	return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

static const struct ctl_subcmd keys_subs[] = {
	{"rotate", "key set version N+1, signed by set N (offline)",
	 keys_rotate, NULL, NULL},
	{"verify", "check a key set envelope as agents would (offline)",
	 keys_verify, NULL, NULL},
	{"upload", "post a key set envelope to fleetd", keys_upload, NULL,
	 NULL},
};

static int
release_keys(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "release keys",
			    "Release key sets agents pin: rotate, verify "
			    "(offline), upload\n(docs/releases.md).",
			    keys_subs, sizeof(keys_subs) / sizeof(keys_subs[0]),
			    argc, argv);
}

static const struct ctl_subcmd subs[] = {
	{"sign", "sign a release file with release keys (offline)",
	 release_sign, NULL, NULL},
	{"verify", "check a release as agents would (offline)", release_verify,
	 NULL, NULL},
	{"keys", "release key sets: rotate, verify, upload", release_keys, NULL,
	 NULL},
};

int
ctl_cmd_release(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "release",
			    "Signed releases: sign and verify (offline), "
			    "release key rotation\n(docs/releases.md).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
