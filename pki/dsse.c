// SPDX-License-Identifier: Apache-2.0
/*
 * DSSE envelopes (secure-systems-lab DSSE v1) for signed update manifests
 * (DESIGN.md §5). Signing runs offline in fleetctl; verification runs in the
 * agent on envelopes that arrive over an untrusted transport. The envelope
 * is trusted for nothing: it is size-limited, parsed strictly, and the
 * payload is handed out only after at least k distinct trusted keys have
 * verified their signature over the pre-authentication encoding (PAE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "pki_int.h"

/* Signatures are small; anything bigger is not one of ours. */
#define MAX_SIG_BYTES 1024

enum pki_result
pki_dsse_pae(const char *payload_type, const void *payload, size_t len,
	     unsigned char **out, size_t *out_len, struct pki_error *err)
{
	char head[96];
	size_t tlen, hlen, total;
	unsigned char *buf = NULL;
	int n;

	if (payload_type == NULL || (payload == NULL && len > 0) ||
	    out == NULL || out_len == NULL)
		return pki_err(err, PKI_ERR_ARG, "DSSE: no payload");
	tlen = strlen(payload_type);
	if (tlen > 256 || len > PKI_DSSE_MAX_ENVELOPE)
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "DSSE: payload or type too large");
	n = snprintf(head, sizeof(head), "DSSEv1 %zu ", tlen);
	if (n < 0 || (size_t)n >= sizeof(head))
		return pki_err(err, PKI_ERR_ARG, "DSSE: PAE");
	hlen = (size_t)n;
	total = hlen + tlen + 1 + 24 + len;
	buf = malloc(total);
	if (buf == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	memcpy(buf, head, hlen);
	memcpy(buf + hlen, payload_type, tlen);
	n = snprintf((char *)buf + hlen + tlen, 26, " %zu ", len);
	if (n < 0 || n >= 26) {
		free(buf);
		return pki_err(err, PKI_ERR_ARG, "DSSE: PAE");
	}
	total = hlen + tlen + (size_t)n;
	if (len > 0)
		memcpy(buf + total, payload, len);
	*out = buf;
	*out_len = total + len;
	return PKI_OK;
}

enum pki_result
pki_sign_bytes(EVP_PKEY *key, const void *msg, size_t len, unsigned char **sig,
	       size_t *sig_len, struct pki_error *err)
{
	enum pki_result r;
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	size_t n = 0;

	if (key == NULL || (msg == NULL && len > 0) || sig == NULL ||
	    sig_len == NULL)
		return pki_err(err, PKI_ERR_ARG, "sign: no key or message");
	r = pki_sign_md(key, &md, err);
	if (r != PKI_OK)
		return r;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "sign");
	if (EVP_DigestSignInit_ex(ctx, NULL,
				  md != NULL ? EVP_MD_get0_name(md) : NULL,
				  NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, msg, len) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "sign");
		goto out;
	}
	buf = malloc(n);
	if (buf == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (EVP_DigestSign(ctx, buf, &n, msg, len) != 1) {
		free(buf);
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "sign");
		goto out;
	}
	*sig = buf;
	*sig_len = n;
	r = PKI_OK;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

enum pki_result
pki_verify_bytes(EVP_PKEY *key, const void *msg, size_t len,
		 const unsigned char *sig, size_t sig_len,
		 struct pki_error *err)
{
	enum pki_result r;
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;

	if (key == NULL || (msg == NULL && len > 0) || sig == NULL)
		return pki_err(err, PKI_ERR_ARG, "verify: no key or message");
	r = pki_sign_md(key, &md, err);
	if (r != PKI_OK)
		return r;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return pki_err_ssl(err, PKI_ERR_NOMEM, "verify");
	if (EVP_DigestVerifyInit_ex(ctx, NULL,
				    md != NULL ? EVP_MD_get0_name(md) : NULL,
				    NULL, NULL, key, NULL) != 1) {
		r = pki_err_ssl(err, PKI_ERR_CRYPTO, "verify");
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, sig_len, msg, len) != 1) {
		r = pki_err_ssl(err, PKI_ERR_SIGNATURE,
				"signature does not verify");
		goto out;
	}
	r = PKI_OK;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Standard base64 with padding, malloc()ed and NUL terminated. */
static char *
b64_encode(const unsigned char *in, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *out = NULL;

	if (len > INT32_MAX / 2)
		return NULL;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	if (EVP_EncodeBlock((unsigned char *)out, in, (int)len) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Strict decoder for standard or URL-safe base64, padding optional (the
 * DSSE spec allows either alphabet). out gets a trailing NUL. */
static enum pki_result
b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len,
	   struct pki_error *err)
{
	unsigned char *buf = NULL;
	size_t i, n = 0;
	unsigned acc = 0;
	int bits = 0, v;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return pki_err(err, PKI_ERR_PARSE, "DSSE: bad base64 length");
	buf = malloc(len / 4 * 3 + 3 + 1);
	if (buf == NULL)
		return pki_err(err, PKI_ERR_NOMEM, "out of memory");
	for (i = 0; i < len; i++) {
		v = b64_value(in[i]);
		if (v < 0) {
			free(buf);
			return pki_err(err, PKI_ERR_PARSE,
				       "DSSE: invalid base64");
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {
		/* Non-canonical: leftover bits must be zero. */
		free(buf);
		return pki_err(err, PKI_ERR_PARSE, "DSSE: invalid base64");
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return PKI_OK;
}

static enum pki_result
add_signature(json_t *sigs, EVP_PKEY *key, const unsigned char *pae,
	      size_t pae_len, struct pki_error *err)
{
	enum pki_result r;
	char keyid[PKI_KEY_ID_LEN];
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char *b64 = NULL;
	json_t *obj = NULL;

	r = pki_key_id(key, keyid, err);
	if (r != PKI_OK)
		return r;
	r = pki_sign_bytes(key, pae, pae_len, &sig, &sig_len, err);
	if (r != PKI_OK)
		return r;
	b64 = b64_encode(sig, sig_len);
	if (b64 == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	obj = json_pack("{s:s, s:s}", "keyid", keyid, "sig", b64);
	if (obj == NULL || json_array_append_new(sigs, obj) != 0) {
		r = pki_err(err, PKI_ERR_NOMEM, "DSSE: building JSON");
		goto out;
	}
	r = PKI_OK;
out:
	free(b64);
	free(sig);
	return r;
}

enum pki_result
pki_dsse_sign(const void *payload, size_t len, const char *payload_type,
	      EVP_PKEY *const *keys, size_t n, char **json, size_t *json_len,
	      struct pki_error *err)
{
	enum pki_result r;
	unsigned char *pae = NULL;
	size_t pae_len = 0;
	char *b64 = NULL;
	char *text = NULL;
	json_t *env = NULL;
	json_t *sigs = NULL;
	size_t i;

	if (keys == NULL || n == 0 || n > PKI_DSSE_MAX_SIGNATURES ||
	    json == NULL)
		return pki_err(err, PKI_ERR_ARG,
			       "DSSE: need 1 to %d signing keys",
			       PKI_DSSE_MAX_SIGNATURES);
	r = pki_dsse_pae(payload_type, payload, len, &pae, &pae_len, err);
	if (r != PKI_OK)
		return r;
	sigs = json_array();
	b64 = b64_encode(payload, len);
	if (sigs == NULL || b64 == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		r = add_signature(sigs, keys[i], pae, pae_len, err);
		if (r != PKI_OK)
			goto out;
	}
	env = json_pack("{s:s, s:s, s:O}", "payload", b64, "payloadType",
			payload_type, "signatures", sigs);
	if (env == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "DSSE: building JSON");
		goto out;
	}
	text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "DSSE: encoding JSON");
		goto out;
	}
	*json = text;
	if (json_len != NULL)
		*json_len = strlen(text);
	r = PKI_OK;
out:
	json_decref(env);
	json_decref(sigs);
	free(b64);
	free(pae);
	return r;
}

/* Try one signature entry against the trusted keys it may name. */
static void
check_signature(json_t *entry, const unsigned char *pae, size_t pae_len,
		EVP_PKEY *const *trusted, char (*ids)[PKI_KEY_ID_LEN],
		size_t n_trusted, bool *ok)
{
	const char *keyid = NULL;
	const char *sig_b64 = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	json_t *jk, *js;
	size_t i;

	if (!json_is_object(entry))
		return;
	jk = json_object_get(entry, "keyid"); /* borrowed */
	js = json_object_get(entry, "sig");
	if (!json_is_string(js) || (jk != NULL && !json_is_string(jk)))
		return;
	keyid = jk != NULL ? json_string_value(jk) : "";
	sig_b64 = json_string_value(js);
	if (json_string_length(js) > MAX_SIG_BYTES * 2)
		return;
	if (b64_decode(sig_b64, json_string_length(js), &sig, &sig_len, NULL) !=
	    PKI_OK)
		return;
	for (i = 0; i < n_trusted; i++) {
		if (ok[i])
			continue; /* each key counts once */
		if (keyid[0] != '\0' && strcmp(keyid, ids[i]) != 0)
			continue;
		if (pki_verify_bytes(trusted[i], pae, pae_len, sig, sig_len,
				     NULL) == PKI_OK) {
			ok[i] = true;
			break;
		}
	}
	ERR_clear_error();
	free(sig);
}

enum pki_result
pki_dsse_verify(const void *json, size_t json_len, const char *payload_type,
		EVP_PKEY *const *trusted, size_t n_trusted, size_t k,
		bool *verified, size_t *n_valid, unsigned char **payload,
		size_t *payload_len, struct pki_error *err)
{
	enum pki_result r;
	json_error_t jerr;
	json_t *env = NULL;
	json_t *jp, *jt, *jsigs;
	char(*ids)[PKI_KEY_ID_LEN] = NULL;
	bool *ok = NULL;
	unsigned char *body = NULL;
	unsigned char *pae = NULL;
	size_t body_len = 0, pae_len = 0, i, count = 0;

	if (json == NULL || payload_type == NULL || trusted == NULL ||
	    n_trusted == 0 || n_trusted > 64 || payload == NULL ||
	    payload_len == NULL)
		return pki_err(err, PKI_ERR_ARG,
			       "DSSE: no envelope, type or trusted keys");
	if (k == 0 || k > n_trusted)
		return pki_err(err, PKI_ERR_ARG,
			       "DSSE: threshold %zu out of range 1..%zu", k,
			       n_trusted);
	if (json_len > PKI_DSSE_MAX_ENVELOPE)
		return pki_err(err, PKI_ERR_TOO_LARGE,
			       "DSSE: envelope of %zu bytes, limit %u",
			       json_len, PKI_DSSE_MAX_ENVELOPE);
	ids = calloc(n_trusted, sizeof(*ids));
	ok = calloc(n_trusted, sizeof(*ok));
	if (ids == NULL || ok == NULL) {
		r = pki_err(err, PKI_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n_trusted; i++) {
		r = pki_key_id(trusted[i], ids[i], err);
		if (r != PKI_OK)
			goto out;
	}
	env = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (env == NULL) {
		r = pki_err(err, PKI_ERR_PARSE, "DSSE: invalid JSON: %s",
			    jerr.text);
		goto out;
	}
	jp = json_object_get(env, "payload"); /* borrowed */
	jt = json_object_get(env, "payloadType");
	jsigs = json_object_get(env, "signatures");
	if (!json_is_string(jp) || !json_is_string(jt) ||
	    !json_is_array(jsigs)) {
		r = pki_err(err, PKI_ERR_PARSE,
			    "DSSE: need payload, payloadType and signatures");
		goto out;
	}
	if (strcmp(json_string_value(jt), payload_type) != 0) {
		r = pki_err(err, PKI_ERR_POLICY, "DSSE: payload type is not %s",
			    payload_type);
		goto out;
	}
	if (json_array_size(jsigs) > PKI_DSSE_MAX_SIGNATURES) {
		r = pki_err(err, PKI_ERR_TOO_LARGE,
			    "DSSE: more than %d signatures",
			    PKI_DSSE_MAX_SIGNATURES);
		goto out;
	}
	r = b64_decode(json_string_value(jp), json_string_length(jp), &body,
		       &body_len, err);
	if (r != PKI_OK)
		goto out;
	r = pki_dsse_pae(payload_type, body, body_len, &pae, &pae_len, err);
	if (r != PKI_OK)
		goto out;
	for (i = 0; i < json_array_size(jsigs); i++)
		check_signature(json_array_get(jsigs, i), pae, pae_len, trusted,
				ids, n_trusted, ok);
	for (i = 0; i < n_trusted; i++) {
		if (ok[i])
			count++;
		if (verified != NULL)
			verified[i] = ok[i];
	}
	if (n_valid != NULL)
		*n_valid = count;
	if (count < k) {
		r = pki_err(err, PKI_ERR_THRESHOLD,
			    "DSSE: %zu valid signature(s) from trusted keys, "
			    "%zu required",
			    count, k);
		goto out;
	}
	*payload = body;
	*payload_len = body_len;
	body = NULL;
	r = PKI_OK;
out:
	free(pae);
	free(body);
	free(ok);
	free(ids);
	json_decref(env);
	return r;
}
