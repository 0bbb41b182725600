// SPDX-License-Identifier: Apache-2.0
/*
 * Signed releases (pki/release.h, docs/internals/updates.md, docs/releases.md):
 * the manifest and key set formats, and the one verification path agents,
 * fleetctl and the fuzzer use for release and key set envelopes. Runs in
 * fleet-agent (envelopes arrive from fleetd over a transport trusted for
 * nothing), in fleetctl and, for parsing only, in fleetd.
 *
 * Why release.c walks the signatures itself instead of calling
 * pki_dsse_verify: an agent must report *why* it refused (a pinned key whose
 * signature fails, signers it does not pin, too few signers, a signature
 * listed twice), and pki_dsse_verify folds all of those into one
 * PKI_ERR_THRESHOLD. The walk is stricter too: every entry must name its key
 * (64 hex digits), each key may appear once, and unknown envelope fields are
 * refused. Nothing of the payload is parsed before the threshold is met.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "clock.h"
#include "pki_int.h"
#include "release.h"

/* Signatures are small; anything bigger is not one of ours. */
#define MAX_SIG_B64 2048
/* A PEM public key (P-384, Ed25519, RSA 4096) fits easily. */
#define MAX_PEM 4096

static const char *const reason_codes[PKI_RELEASE_REASON_COUNT] = {
	[PKI_RELEASE_OK] = "ok",
	[PKI_RELEASE_BAD_ENVELOPE] = "bad-envelope",
	[PKI_RELEASE_BAD_SIGNATURE] = "bad-signature",
	[PKI_RELEASE_UNKNOWN_KEY] = "unknown-key",
	[PKI_RELEASE_THRESHOLD] = "threshold",
	[PKI_RELEASE_EXPIRED] = "expired",
	[PKI_RELEASE_NOT_NEWER] = "not-newer",
	[PKI_RELEASE_HARDWARE] = "hardware",
	[PKI_RELEASE_SIZE_MISMATCH] = "size-mismatch",
	[PKI_RELEASE_HASH_MISMATCH] = "hash-mismatch",
};

const char *
pki_release_reason_code(enum pki_release_reason r)
{
	if ((unsigned)r >= PKI_RELEASE_REASON_COUNT)
		return "bad-envelope";
	return reason_codes[r];
}

static enum pki_release_reason refuse(enum pki_release_reason r, char *why,
				      size_t whylen, const char *fmt, ...)
	PKI_PRINTF(4, 5);

static enum pki_release_reason
refuse(enum pki_release_reason r, char *why, size_t whylen, const char *fmt,
       ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ---- small strict checks --------------------------------------------- */

static bool
is_lower_hex(const char *s, size_t want)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == want;
}

/* Printable text of 1..max bytes: no control characters (these strings end
 * up in logs, terminals and file names of installers' trees). */
static bool
is_text(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max || strlen(s) != len)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
is_installer(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return i >= 1 && i <= PKI_RELEASE_INSTALLER_MAX;
}

static bool
format_time(time_t t, char out[21])
{
	struct tm tm;

	if (t < 0 || gmtime_r(&t, &tm) == NULL)
		return false;
	return strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 20;
}

/* Every key of obj is one of names[0..n): a signed document means exactly
 * what it says, so a field we do not know is refused, not ignored. */
static const char *
unknown_field(json_t *obj, const char *const *names, size_t n)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (i == n)
			return key;
	}
	return NULL;
}

/* A required string field of 1..max bytes of text. */
static const char *
get_text(json_t *obj, const char *name, size_t max)
{
	json_t *v = json_object_get(obj, name); /* borrowed */

	if (!json_is_string(v) ||
	    !is_text(json_string_value(v), json_string_length(v), max))
		return NULL;
	return json_string_value(v);
}

static bool
get_int(json_t *obj, const char *name, json_int_t min, json_int_t *out)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v) || json_integer_value(v) < min)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool
get_time(json_t *obj, const char *name, time_t *out)
{
	const char *s = get_text(obj, name, 20);

	int64_t t;

	/* One spelling per instant, so a signed time means one thing. */
	if (s == NULL || clock_parse_rfc3339(s, &t) != 0)
		return false;
	*out = (time_t)t;
	return true;
}

static json_t *
load_strict(const void *buf, size_t len, struct pki_error *err,
	    const char *what)
{
	json_error_t jerr;
	json_t *root = NULL;

	if (buf == NULL || len == 0 || len > PKI_DSSE_MAX_ENVELOPE) {
		pki_err(err, PKI_ERR_PARSE, "%s: empty or too large", what);
		return NULL;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		pki_err(err, PKI_ERR_PARSE, "%s: invalid JSON: %s", what,
			jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		pki_err(err, PKI_ERR_PARSE, "%s: not a JSON object", what);
		return NULL;
	}
	return root;
}

/* ---- manifest --------------------------------------------------------- */

static const char *const manifest_fields[] = {
	"name", "version", "version_int", "hw",	     "installer",
	"size", "sha256",  "expires",	  "created",
};

enum pki_result
pki_manifest_parse(const void *payload, size_t len, struct pki_manifest *out,
		   struct pki_error *err)
{
	enum pki_result r = PKI_ERR_PARSE;
	struct pki_manifest *m = NULL;
	json_t *root = NULL, *hw, *v;
	const char *s, *bad;
	json_int_t iv;
	size_t i, j;

	if (out == NULL)
		return pki_err(err, PKI_ERR_ARG, "manifest: no output");
	root = load_strict(payload, len, err, "manifest");
	if (root == NULL)
		return PKI_ERR_PARSE;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	bad = unknown_field(root, manifest_fields,
			    sizeof(manifest_fields) /
				    sizeof(manifest_fields[0]));
	if (bad != NULL) {
		pki_err(err, r, "manifest: unknown field \"%.64s\"", bad);
		goto out;
	}
	s = get_text(root, "name", PKI_RELEASE_NAME_MAX);
	if (s == NULL) {
		pki_err(err, r, "manifest: name must be text of 1 to %d bytes",
			PKI_RELEASE_NAME_MAX);
		goto out;
	}
	memcpy(m->name, s, strlen(s) + 1);
	s = get_text(root, "version", PKI_RELEASE_NAME_MAX);
	if (s == NULL) {
		pki_err(err, r,
			"manifest: version must be text of 1 to %d bytes",
			PKI_RELEASE_NAME_MAX);
		goto out;
	}
	memcpy(m->version, s, strlen(s) + 1);
	if (!get_int(root, "version_int", 1, &iv)) {
		pki_err(err, r,
			"manifest: version_int must be an integer >= 1");
		goto out;
	}
	m->version_int = (int64_t)iv;
	hw = json_object_get(root, "hw");
	if (!json_is_array(hw) || json_array_size(hw) == 0 ||
	    json_array_size(hw) > PKI_RELEASE_MAX_HW) {
		pki_err(err, r, "manifest: hw must list 1 to %d models",
			PKI_RELEASE_MAX_HW);
		goto out;
	}
	json_array_foreach(hw, i, v)
	{
		if (!json_is_string(v) ||
		    !is_text(json_string_value(v), json_string_length(v),
			     PKI_RELEASE_NAME_MAX)) {
			pki_err(err, r,
				"manifest: hw[%zu] must be text of 1 to %d "
				"bytes",
				i, PKI_RELEASE_NAME_MAX);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(m->hw[j], json_string_value(v)) == 0) {
				pki_err(err, r,
					"manifest: hw lists \"%s\" twice",
					m->hw[j]);
				goto out;
			}
		memcpy(m->hw[i], json_string_value(v),
		       json_string_length(v) + 1);
	}
	m->n_hw = json_array_size(hw);
	s = get_text(root, "installer", PKI_RELEASE_INSTALLER_MAX);
	if (s == NULL || !is_installer(s)) {
		pki_err(err, r,
			"manifest: installer must match [a-z0-9._-]{1,%d}",
			PKI_RELEASE_INSTALLER_MAX);
		goto out;
	}
	memcpy(m->installer, s, strlen(s) + 1);
	if (!get_int(root, "size", 1, &iv)) {
		pki_err(err, r, "manifest: size must be an integer >= 1");
		goto out;
	}
	m->size = (uint64_t)iv;
	s = get_text(root, "sha256", 64);
	if (s == NULL || !is_lower_hex(s, 64)) {
		pki_err(err, r,
			"manifest: sha256 must be 64 lowercase hex digits");
		goto out;
	}
	memcpy(m->sha256, s, 65);
	if (!get_time(root, "expires", &m->expires)) {
		pki_err(err, r,
			"manifest: expires must be RFC 3339 UTC "
			"(YYYY-MM-DDTHH:MM:SSZ)");
		goto out;
	}
	if (!get_time(root, "created", &m->created)) {
		pki_err(err, r,
			"manifest: created must be RFC 3339 UTC "
			"(YYYY-MM-DDTHH:MM:SSZ)");
		goto out;
	}
	if (m->expires <= m->created) {
		pki_err(err, r, "manifest: expires is not after created");
		goto out;
	}
	*out = *m;
	r = PKI_OK;
out:
	free(m);
	json_decref(root);
	return r;
}

enum pki_result
pki_manifest_json(const struct pki_manifest *m, char **json, size_t *len,
		  struct pki_error *err)
{
	enum pki_result r;
	struct pki_manifest *check = NULL;
	char expires[21], created[21];
	json_t *root = NULL, *hw = NULL;
	char *text = NULL;
	size_t i;

	if (m == NULL || json == NULL || m->n_hw > PKI_RELEASE_MAX_HW)
		return pki_err(err, PKI_ERR_ARG, "manifest: no input");
	if (m->size > (uint64_t)INT64_MAX)
		return pki_err(err, PKI_ERR_ARG, "manifest: size too large");
	if (!format_time(m->expires, expires) ||
	    !format_time(m->created, created))
		return pki_err(err, PKI_ERR_ARG, "manifest: bad time");
	hw = json_array();
	if (hw == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	for (i = 0; i < m->n_hw; i++)
		if (json_array_append_new(hw, json_string(m->hw[i])) != 0) {
			json_decref(hw);
			return pki_err(err, PKI_ERR_ARG,
				       "manifest: hw[%zu] is not UTF-8", i);
		}
	root = json_pack("{s:s?, s:s?, s:I, s:o, s:s?, s:I, s:s?, s:s, s:s}",
			 "name", m->name, "version", m->version, "version_int",
			 (json_int_t)m->version_int, "hw", hw, "installer",
			 m->installer, "size", (json_int_t)m->size, "sha256",
			 m->sha256, "expires", expires, "created", created);
	if (root == NULL)
		return pki_err(err, PKI_ERR_ARG,
			       "manifest: a field is not UTF-8");
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "manifest: encoding JSON");
	/* Never sign what an agent would refuse to parse. */
	check = malloc(sizeof(*check));
	if (check == NULL) {
		free(text);
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	}
	r = pki_manifest_parse(text, strlen(text), check, err);
	free(check);
	if (r != PKI_OK) {
		free(text);
		return PKI_ERR_ARG;
	}
	*json = text;
	if (len != NULL)
		*len = strlen(text);
	return PKI_OK;
}

/* ---- key sets --------------------------------------------------------- */

void
pki_keyset_clear(struct pki_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < PKI_RELEASE_MAX_KEYS; i++)
		EVP_PKEY_free(ks->keys[i]);
	memset(ks, 0, sizeof(*ks));
}

/* Release keys: P-256, P-384, Ed25519, or RSA of at least 3072 bits. */
static enum pki_result
check_key_type(const EVP_PKEY *key, struct pki_error *err)
{
	enum pki_key_type type;
	int bits = 0;
	enum pki_result r;

	r = pki_key_type_of(key, &type, &bits, err);
	if (r != PKI_OK)
		return r;
	if (type == PKI_KEY_RSA && bits < PKI_MIN_RSA_BITS)
		return pki_err(err, PKI_ERR_POLICY,
			       "RSA key of %d bits, %d required", bits,
			       PKI_MIN_RSA_BITS);
	return PKI_OK;
}

/* Add key (taking ownership) unless its id is there already. */
static enum pki_result
keyset_add(struct pki_keyset *ks, EVP_PKEY *key, struct pki_error *err)
{
	enum pki_result r;
	char id[PKI_KEY_ID_LEN];
	size_t i;

	r = check_key_type(key, err);
	if (r == PKI_OK)
		r = pki_key_id(key, id, err);
	if (r != PKI_OK) {
		EVP_PKEY_free(key);
		return r;
	}
	for (i = 0; i < ks->n; i++)
		if (strcmp(ks->ids[i], id) == 0) {
			EVP_PKEY_free(key);
			return pki_err(err, PKI_ERR_ARG,
				       "key %.16s... is listed twice", id);
		}
	if (ks->n >= PKI_RELEASE_MAX_KEYS) {
		EVP_PKEY_free(key);
		return pki_err(err, PKI_ERR_ARG, "more than %d keys",
			       PKI_RELEASE_MAX_KEYS);
	}
	ks->keys[ks->n] = key;
	memcpy(ks->ids[ks->n], id, PKI_KEY_ID_LEN);
	ks->n++;
	return PKI_OK;
}

enum pki_result
pki_keyset_from_files(const char *const *paths, size_t n, size_t threshold,
		      struct pki_keyset *out, struct pki_error *err)
{
	struct pki_keyset ks;
	enum pki_result r;
	EVP_PKEY *key = NULL;
	size_t i;

	if (paths == NULL || out == NULL || n == 0 || n > PKI_RELEASE_MAX_KEYS)
		return pki_err(err, PKI_ERR_ARG, "key set: need 1 to %d keys",
			       PKI_RELEASE_MAX_KEYS);
	if (threshold < 1 || threshold > n)
		return pki_err(err, PKI_ERR_ARG,
			       "key set: threshold %zu out of range 1..%zu",
			       threshold, n);
	memset(&ks, 0, sizeof(ks));
	for (i = 0; i < n; i++) {
		key = NULL;
		r = pki_key_load_public(paths[i], &key, err);
		if (r == PKI_OK)
			r = keyset_add(&ks, key, err);
		if (r != PKI_OK) {
			pki_keyset_clear(&ks);
			return r;
		}
	}
	ks.version = 1;
	ks.threshold = threshold;
	*out = ks;
	return PKI_OK;
}

static const char *const keyset_fields[] = {"version", "threshold", "keys",
					    "created"};
static const char *const keyset_key_fields[] = {"keyid", "public_key"};

enum pki_result
pki_keyset_json(const struct pki_keyset *ks, char **json, size_t *len,
		struct pki_error *err)
{
	enum pki_result r;
	char created[21];
	json_t *root = NULL, *keys = NULL, *e = NULL;
	char *pem = NULL, *text = NULL;
	size_t pem_len = 0, i;

	if (ks == NULL || json == NULL || ks->n == 0 ||
	    ks->n > PKI_RELEASE_MAX_KEYS || ks->threshold < 1 ||
	    ks->threshold > ks->n || ks->version < 1)
		return pki_err(err, PKI_ERR_ARG, "key set: incomplete");
	if (!format_time(time(NULL), created))
		return pki_err(err, PKI_ERR_ARG, "key set: clock");
	keys = json_array();
	if (keys == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	for (i = 0; i < ks->n; i++) {
		r = pki_key_public_pem(ks->keys[i], &pem, &pem_len, err);
		if (r != PKI_OK)
			goto fail;
		e = json_pack("{s:s, s:s}", "keyid", ks->ids[i], "public_key",
			      pem);
		free(pem);
		pem = NULL;
		if (e == NULL || json_array_append_new(keys, e) != 0) {
			r = pki_err(err, PKI_ERR_NOMEM, "key set: JSON");
			goto fail;
		}
	}
	root = json_pack("{s:I, s:I, s:o, s:s}", "version",
			 (json_int_t)ks->version, "threshold",
			 (json_int_t)ks->threshold, "keys", keys, "created",
			 created);
	keys = NULL; /* stolen by json_pack, also on failure */
	if (root == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "key set: JSON");
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "key set: encoding JSON");
	*json = text;
	if (len != NULL)
		*len = strlen(text);
	return PKI_OK;
fail:
	json_decref(keys);
	return r;
}

enum pki_result
pki_keyset_parse(const void *payload, size_t len, struct pki_keyset *out,
		 struct pki_error *err)
{
	enum pki_result r = PKI_ERR_PARSE;
	struct pki_keyset ks;
	json_t *root = NULL, *keys, *e, *jid, *jpem;
	const char *bad;
	json_int_t version, threshold;
	EVP_PKEY *key = NULL;
	time_t created;
	size_t i;

	memset(&ks, 0, sizeof(ks));
	if (out == NULL)
		return pki_err(err, PKI_ERR_ARG, "key set: no output");
	root = load_strict(payload, len, err, "key set");
	if (root == NULL)
		return PKI_ERR_PARSE;
	bad = unknown_field(root, keyset_fields, 4);
	if (bad != NULL) {
		pki_err(err, r, "key set: unknown field \"%.64s\"", bad);
		goto out;
	}
	if (!get_int(root, "version", 1, &version)) {
		pki_err(err, r, "key set: version must be an integer >= 1");
		goto out;
	}
	if (!get_time(root, "created", &created)) {
		pki_err(err, r,
			"key set: created must be RFC 3339 UTC "
			"(YYYY-MM-DDTHH:MM:SSZ)");
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    json_array_size(keys) > PKI_RELEASE_MAX_KEYS) {
		pki_err(err, r, "key set: keys must list 1 to %d keys",
			PKI_RELEASE_MAX_KEYS);
		goto out;
	}
	json_array_foreach(keys, i, e)
	{
		char id[PKI_KEY_ID_LEN];

		if (!json_is_object(e) ||
		    unknown_field(e, keyset_key_fields, 2) != NULL) {
			pki_err(err, r,
				"key set: keys[%zu] must be {keyid, "
				"public_key}",
				i);
			goto out;
		}
		jid = json_object_get(e, "keyid");
		jpem = json_object_get(e, "public_key");
		if (!json_is_string(jid) ||
		    !is_lower_hex(json_string_value(jid), 64) ||
		    !json_is_string(jpem) || json_string_length(jpem) == 0 ||
		    json_string_length(jpem) > MAX_PEM) {
			pki_err(err, r,
				"key set: keys[%zu] needs a keyid (64 hex) and "
				"a public_key PEM",
				i);
			goto out;
		}
		key = NULL;
		if (pki_key_public_from_pem(json_string_value(jpem),
					    json_string_length(jpem), &key,
					    NULL) != PKI_OK ||
		    pki_key_id(key, id, NULL) != PKI_OK) {
			EVP_PKEY_free(key);
			ERR_clear_error();
			pki_err(err, r,
				"key set: keys[%zu].public_key is not a public "
				"key PEM",
				i);
			goto out;
		}
		if (strcmp(id, json_string_value(jid)) != 0) {
			EVP_PKEY_free(key);
			pki_err(err, r,
				"key set: keys[%zu].keyid is not the key's id",
				i);
			goto out;
		}
		if (keyset_add(&ks, key, err) != PKI_OK) {
			r = PKI_ERR_PARSE;
			goto out;
		}
	}
	if (!get_int(root, "threshold", 1, &threshold) ||
	    (json_int_t)ks.n < threshold) {
		pki_err(err, r, "key set: threshold must be 1 to %zu", ks.n);
		goto out;
	}
	ks.version = (int64_t)version;
	ks.threshold = (size_t)threshold;
	*out = ks;
	memset(&ks, 0, sizeof(ks));
	r = PKI_OK;
out:
	pki_keyset_clear(&ks);
	json_decref(root);
	return r;
}

/* ---- the one verification path ---------------------------------------- */

static const char *const envelope_fields[] = {"payload", "payloadType",
					      "signatures"};
static const char *const sig_fields[] = {"keyid", "sig"};

/*
 * Verify a DSSE envelope of payload type `type` against `pinned` and hand
 * out the verified payload bytes (*payload, malloc()ed, NUL terminated).
 * Rules, in order: strict envelope JSON (BAD_ENVELOPE), each entry names a
 * key, no key twice (BAD_ENVELOPE); a signature by a pinned key that does
 * not verify is BAD_SIGNATURE (even when enough others do: a release whose
 * signatures do not all hold was tampered with or mis-signed); fewer than
 * the threshold of pinned keys is UNKNOWN_KEY when some signer is not
 * pinned, THRESHOLD otherwise.
 */
static enum pki_release_reason
verify_envelope(const void *envelope, size_t len, const char *type,
		const struct pki_keyset *pinned, unsigned char **payload,
		size_t *payload_len, char *why, size_t whylen)
{
	enum pki_release_reason rr;
	json_error_t jerr;
	json_t *env = NULL, *jp, *jt, *jsigs, *e, *jid, *jsig;
	unsigned char *body = NULL, *pae = NULL, *sig = NULL;
	size_t body_len = 0, pae_len = 0, sig_len = 0, i, j, k;
	size_t valid = 0, unknown = 0;
	const char *id;

	if (pinned == NULL || pinned->n == 0 || pinned->threshold < 1 ||
	    pinned->threshold > pinned->n)
		return refuse(PKI_RELEASE_THRESHOLD, why, whylen,
			      "no usable pinned key set");
	if (envelope == NULL || len == 0 || len > PKI_DSSE_MAX_ENVELOPE)
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			      "envelope empty or larger than %u bytes",
			      PKI_DSSE_MAX_ENVELOPE);
	env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, &jerr);
	if (env == NULL || !json_is_object(env)) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "envelope is not a JSON object: %s",
			    env == NULL ? jerr.text : "wrong type");
		goto out;
	}
	if (unknown_field(env, envelope_fields, 3) != NULL) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "envelope has an unknown field");
		goto out;
	}
	jp = json_object_get(env, "payload"); /* borrowed */
	jt = json_object_get(env, "payloadType");
	jsigs = json_object_get(env, "signatures");
	if (!json_is_string(jp) || !json_is_string(jt) ||
	    !json_is_array(jsigs)) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "envelope needs payload, payloadType and "
			    "signatures");
		goto out;
	}
	if (strcmp(json_string_value(jt), type) != 0) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "payloadType is not %s", type);
		goto out;
	}
	if (json_array_size(jsigs) == 0 ||
	    json_array_size(jsigs) > PKI_DSSE_MAX_SIGNATURES) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "envelope must carry 1 to %d signatures",
			    PKI_DSSE_MAX_SIGNATURES);
		goto out;
	}
	/* Shape and duplicates first, before any crypto. */
	json_array_foreach(jsigs, i, e)
	{
		jid = json_object_get(e, "keyid");
		jsig = json_object_get(e, "sig");
		if (!json_is_object(e) ||
		    unknown_field(e, sig_fields, 2) != NULL ||
		    !json_is_string(jid) ||
		    !is_lower_hex(json_string_value(jid), 64) ||
		    !json_is_string(jsig) || json_string_length(jsig) == 0 ||
		    json_string_length(jsig) > MAX_SIG_B64) {
			rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
				    "signatures[%zu] must be {keyid (64 hex), "
				    "sig}",
				    i);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(json_string_value(json_object_get(
					   json_array_get(jsigs, j), "keyid")),
				   json_string_value(jid)) == 0) {
				rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why,
					    whylen, "key %.16s... signed twice",
					    json_string_value(jid));
				goto out;
			}
	}
	if (pki_base64_decode(json_string_value(jp), json_string_length(jp),
			      PKI_DSSE_MAX_ENVELOPE, &body, &body_len,
			      NULL) != PKI_OK) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "payload is not base64");
		goto out;
	}
	if (pki_dsse_pae(type, body, body_len, &pae, &pae_len, NULL) !=
	    PKI_OK) {
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			    "payload too large");
		goto out;
	}
	json_array_foreach(jsigs, i, e)
	{
		id = json_string_value(json_object_get(e, "keyid"));
		jsig = json_object_get(e, "sig");
		for (k = 0; k < pinned->n; k++)
			if (strcmp(pinned->ids[k], id) == 0)
				break;
		if (k == pinned->n) {
			unknown++;
			continue;
		}
		sig = NULL;
		if (pki_base64_decode(json_string_value(jsig),
				      json_string_length(jsig), MAX_SIG_B64,
				      &sig, &sig_len, NULL) != PKI_OK ||
		    pki_verify_bytes(pinned->keys[k], pae, pae_len, sig,
				     sig_len, NULL) != PKI_OK) {
			free(sig);
			rr = refuse(PKI_RELEASE_BAD_SIGNATURE, why, whylen,
				    "the signature of pinned key %.16s... "
				    "does not verify",
				    id);
			goto out;
		}
		free(sig);
		valid++;
	}
	if (valid < pinned->threshold) {
		if (unknown > 0)
			rr = refuse(PKI_RELEASE_UNKNOWN_KEY, why, whylen,
				    "%zu valid signature(s) by pinned keys "
				    "(version %lld), %zu required; %zu by "
				    "keys not pinned",
				    valid, (long long)pinned->version,
				    pinned->threshold, unknown);
		else
			rr = refuse(PKI_RELEASE_THRESHOLD, why, whylen,
				    "%zu valid signature(s) by pinned keys "
				    "(version %lld), %zu required",
				    valid, (long long)pinned->version,
				    pinned->threshold);
		goto out;
	}
	*payload = body;
	*payload_len = body_len;
	body = NULL;
	rr = PKI_RELEASE_OK;
	refuse(rr, why, whylen, "%zu of %zu pinned keys signed", valid,
	       pinned->n);
out:
	ERR_clear_error();
	free(pae);
	free(body);
	json_decref(env);
	return rr;
}

enum pki_release_reason
pki_release_verify(const void *envelope, size_t len,
		   const struct pki_keyset *pinned, struct pki_manifest *out,
		   char *why, size_t whylen)
{
	enum pki_release_reason rr;
	struct pki_error err;
	unsigned char *payload = NULL;
	size_t plen = 0;

	if (out == NULL)
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			      "no output");
	rr = verify_envelope(envelope, len, PKI_RELEASE_MANIFEST_TYPE, pinned,
			     &payload, &plen, why, whylen);
	if (rr != PKI_RELEASE_OK)
		return rr;
	/* Only verified bytes reach the parser. */
	if (pki_manifest_parse(payload, plen, out, &err) != PKI_OK)
		rr = refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen, "%s",
			    err.msg);
	free(payload);
	return rr;
}

enum pki_release_reason
pki_keyset_verify(const void *envelope, size_t len,
		  const struct pki_keyset *current, struct pki_keyset *next,
		  char *why, size_t whylen)
{
	enum pki_release_reason rr;
	struct pki_error err;
	struct pki_keyset ks;
	unsigned char *payload = NULL;
	size_t plen = 0;

	if (next == NULL || current == NULL)
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			      "no key set");
	rr = verify_envelope(envelope, len, PKI_RELEASE_KEYSET_TYPE, current,
			     &payload, &plen, why, whylen);
	if (rr != PKI_RELEASE_OK)
		return rr;
	if (pki_keyset_parse(payload, plen, &ks, &err) != PKI_OK) {
		free(payload);
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen, "%s",
			      err.msg);
	}
	free(payload);
	if (ks.version != current->version + 1) {
		rr = refuse(PKI_RELEASE_NOT_NEWER, why, whylen,
			    "key set version %lld, expected %lld",
			    (long long)ks.version,
			    (long long)current->version + 1);
		pki_keyset_clear(&ks);
		return rr;
	}
	*next = ks;
	return PKI_RELEASE_OK;
}

/* ---- device-side checks ----------------------------------------------- */

enum pki_release_reason
pki_manifest_check(const struct pki_manifest *m, time_t now,
		   int64_t installed_version, const char *model, char *why,
		   size_t whylen)
{
	char when[21];
	size_t i;

	if (m == NULL)
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			      "no manifest");
	if (now >= m->expires) {
		if (!format_time(m->expires, when))
			when[0] = '\0';
		return refuse(PKI_RELEASE_EXPIRED, why, whylen,
			      "release %s %s expired at %s", m->name,
			      m->version, when);
	}
	if (m->version_int <= installed_version)
		return refuse(PKI_RELEASE_NOT_NEWER, why, whylen,
			      "release version %lld is not newer than the "
			      "installed %lld",
			      (long long)m->version_int,
			      (long long)installed_version);
	for (i = 0; model != NULL && i < m->n_hw && i < PKI_RELEASE_MAX_HW; i++)
		if (strcmp(m->hw[i], model) == 0)
			return refuse(PKI_RELEASE_OK, why, whylen,
				      "release %s %s fits this device", m->name,
				      m->version);
	return refuse(PKI_RELEASE_HARDWARE, why, whylen,
		      "model \"%s\" is not among the release's hw",
		      model != NULL ? model : "");
}

enum pki_release_reason
pki_manifest_match(const struct pki_manifest *m, uint64_t size,
		   const char *sha256, char *why, size_t whylen)
{
	if (m == NULL)
		return refuse(PKI_RELEASE_BAD_ENVELOPE, why, whylen,
			      "no manifest");
	if (size != m->size)
		return refuse(PKI_RELEASE_SIZE_MISMATCH, why, whylen,
			      "size %llu, the manifest says %llu",
			      (unsigned long long)size,
			      (unsigned long long)m->size);
	if (sha256 == NULL || strnlen(sha256, 65) != 64 ||
	    CRYPTO_memcmp(sha256, m->sha256, 64) != 0)
		return refuse(PKI_RELEASE_HASH_MISMATCH, why, whylen,
			      "sha256 %.64s, the manifest says %s",
			      sha256 != NULL ? sha256 : "(none)", m->sha256);
	return refuse(PKI_RELEASE_OK, why, whylen, "size and sha256 match");
}
