/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libfleetpki: keys, CSRs, certificates, CRLs and DSSE envelopes for fleetd
 * (DESIGN.md §4, §5). Linked by fleetd (the `ca` process serves the signer),
 * fleetctl (offline update signing) and the agent (CSR, DSSE verification).
 * OpenSSL 3 only; no global state, no lws, no libpq.
 *
 * Every function returns enum pki_result and fills struct pki_error (the last
 * argument, may be NULL) with a message a user can read, including the
 * OpenSSL error queue when OpenSSL failed. Out-parameters are written only on
 * success. Free functions accept NULL.
 *
 * Keys and certificates are plain OpenSSL objects (EVP_PKEY, X509, X509_REQ)
 * released with EVP_PKEY_free, X509_free, X509_REQ_free. Byte and string
 * buffers returned by this library are allocated with malloc() and released
 * by the caller with free() (pki_free_secret() for private key material).
 */
#ifndef FLEET_PKI_H
#define FLEET_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * Return codes.
 *   PKI_OK             success
 *   PKI_ERR_ARG        invalid argument (NULL, malformed device id, bad type)
 *   PKI_ERR_NOMEM      allocation failed
 *   PKI_ERR_IO         file system error (message names the file)
 *   PKI_ERR_EXISTS     refusing to overwrite an existing file or PKI
 *   PKI_ERR_PARSE      malformed PEM, DER, base64 or JSON input
 *   PKI_ERR_TOO_LARGE  input larger than the configured limit
 *   PKI_ERR_SIGNATURE  a signature does not verify (CSR proof of possession)
 *   PKI_ERR_POLICY     refused by policy (key type, validity, payload type)
 *   PKI_ERR_THRESHOLD  fewer valid DSSE signatures than the threshold
 *   PKI_ERR_CRYPTO     OpenSSL failed for another reason
 */
enum pki_result {
	PKI_OK = 0,
	PKI_ERR_ARG,
	PKI_ERR_NOMEM,
	PKI_ERR_IO,
	PKI_ERR_EXISTS,
	PKI_ERR_PARSE,
	PKI_ERR_TOO_LARGE,
	PKI_ERR_SIGNATURE,
	PKI_ERR_POLICY,
	PKI_ERR_THRESHOLD,
	PKI_ERR_CRYPTO,
};

struct pki_error {
	char msg[256];
};

/* Static string naming a result code ("PKI_ERR_POLICY"); never NULL. */
const char *pki_result_str(enum pki_result r);

/* Wipe a buffer with OPENSSL_cleanse and free() it. Accepts NULL. */
void pki_free_secret(void *p, size_t len);

/* ---- keys (key.c) ---------------------------------------------------- */

enum pki_key_type {
	PKI_KEY_P256 = 1,
	PKI_KEY_P384 = 2,
	PKI_KEY_ED25519 = 4,
	PKI_KEY_RSA = 8,
};

/* SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex, NUL included. */
#define PKI_KEY_ID_LEN 65

/* Generate a key: PKI_KEY_P256, PKI_KEY_P384 or PKI_KEY_ED25519.
 * *out is owned by the caller (EVP_PKEY_free). */
enum pki_result pki_key_generate(enum pki_key_type type, EVP_PKEY **out,
				 struct pki_error *err);

/* Classify a key. *bits is the key size (256, 384, RSA modulus bits). */
enum pki_result pki_key_type_of(const EVP_PKEY *key, enum pki_key_type *type,
				int *bits, struct pki_error *err);

/* Key id: hex SHA-256 of the SubjectPublicKeyInfo into id[PKI_KEY_ID_LEN]. */
enum pki_result pki_key_id(const EVP_PKEY *key, char id[PKI_KEY_ID_LEN],
			   struct pki_error *err);

/* Write the private key as PKCS#8 PEM. The file is created under a temporary
 * name with O_CREAT|O_EXCL mode 0600, fsynced and then moved into place, so
 * it is never readable by others at any moment. If replace is false an
 * existing file at path is an error (PKI_ERR_EXISTS). */
enum pki_result pki_key_save_private(const EVP_PKEY *key, const char *path,
				     bool replace, struct pki_error *err);

/* Write the public key (SubjectPublicKeyInfo PEM), mode 0644. */
enum pki_result pki_key_save_public(const EVP_PKEY *key, const char *path,
				    bool replace, struct pki_error *err);

/* Load an unencrypted private key PEM; *out owned by the caller. */
enum pki_result pki_key_load_private(const char *path, EVP_PKEY **out,
				     struct pki_error *err);

/* Load a public key PEM (or the public key of a certificate PEM). */
enum pki_result pki_key_load_public(const char *path, EVP_PKEY **out,
				    struct pki_error *err);

/* Parse a public key PEM from memory; *out owned by the caller. */
enum pki_result pki_key_public_from_pem(const void *pem, size_t len,
					EVP_PKEY **out, struct pki_error *err);

/* Public key as PEM text; *out (NUL terminated, *len without the NUL) is
 * owned by the caller (free). */
enum pki_result pki_key_public_pem(const EVP_PKEY *key, char **out, size_t *len,
				   struct pki_error *err);

/* Write bytes to path atomically (temp name O_EXCL with mode, fsync,
 * rename or, when !replace, link so an existing file is never replaced). */
enum pki_result pki_file_write(const char *path, const void *data, size_t len,
			       unsigned mode, bool replace,
			       struct pki_error *err);

/* ---- policy ---------------------------------------------------------- */

#define PKI_DEFAULT_MAX_CSR_BYTES (16u * 1024u)
#define PKI_DEFAULT_VALIDITY (90 * 86400)
#define PKI_DEFAULT_MAX_VALIDITY (397 * 86400)
#define PKI_MIN_RSA_BITS 3072
#define PKI_BACKDATE_SECONDS 300

struct pki_policy {
	unsigned allowed_keys; /* mask of enum pki_key_type (not RSA) */
	bool allow_rsa; /* RSA >= PKI_MIN_RSA_BITS */
	size_t max_csr_bytes; /* input size limit, PEM or DER */
	int64_t default_validity; /* seconds, used when 0 is asked */
	int64_t max_validity; /* seconds */
	const char *crl_url; /* CRL distribution point, NULL = none;
				     pki_signer_open copies it */
};

/* P-256, P-384, Ed25519; no RSA; 16 KiB; 90 days; 397 days; no CRL URL. */
void pki_policy_default(struct pki_policy *p);

/* ---- CSR (csr.c) ----------------------------------------------------- */

/* Device side: a CSR for key with subject CN=cn, signed with key.
 * *pem (NUL terminated, *len without NUL) is owned by the caller (free). */
enum pki_result pki_csr_create(EVP_PKEY *key, const char *cn, char **pem,
			       size_t *len, struct pki_error *err);

/* Server side: parse a PEM or DER CSR of at most policy->max_csr_bytes and
 * check it: well formed with no trailing bytes, signature valid (proof of
 * possession) and made with SHA-256 or better (or EdDSA), key type allowed
 * by policy, EC keys on a named curve (explicit curve parameters are
 * refused: PKI_ERR_POLICY, as is a SHA-1 signature). Attributes and requested
 * extensions are ignored: nothing from the CSR but the public key is ever
 * used. *out is owned by the caller (X509_REQ_free). */
enum pki_result pki_csr_parse_check(const void *buf, size_t len,
				    const struct pki_policy *policy,
				    X509_REQ **out, struct pki_error *err);

/* Check a key against policy (used by the CSR check). */
enum pki_result pki_policy_check_key(const struct pki_policy *policy,
				     const EVP_PKEY *key,
				     struct pki_error *err);

/* ---- certificates (cert.c) ------------------------------------------- */

/* Canonical lowercase UUID (8-4-4-4-12 hex)? */
bool pki_device_id_valid(const char *id);

/* Self-signed root CA: CA:true (critical), KU keyCertSign+cRLSign, SKI,
 * AKI. *out owned by the caller. */
enum pki_result pki_ca_create_root(EVP_PKEY *key, const char *cn,
				   int64_t validity_seconds, X509 **out,
				   struct pki_error *err);

/* Device issuing CA signed by the root: CA:true pathLen:0 (critical), KU
 * keyCertSign+cRLSign, SKI, AKI. *out owned by the caller. */
enum pki_result pki_ca_create_issuing(X509 *root, EVP_PKEY *root_key,
				      EVP_PKEY *issuing_key, const char *cn,
				      int64_t validity_seconds, X509 **out,
				      struct pki_error *err);

/* TLS server certificate signed by issuer: CN = names[0], SAN with each name
 * as a dNSName or, when it parses as one, an iPAddress; EKU serverAuth, KU
 * digitalSignature, CA:false. *out owned by the caller. */
enum pki_result pki_cert_create_server(X509 *issuer, EVP_PKEY *issuer_key,
				       EVP_PKEY *server_key,
				       const char *const *names, size_t n,
				       int64_t validity_seconds, X509 **out,
				       struct pki_error *err);

/* Device certificate per DESIGN.md §4 for pubkey (taken from a checked
 * CSR). Prefer pki_signer_issue_device, which checks the CSR and caches the
 * issuer; this is the uncached building block. *out owned by the caller. */
enum pki_result pki_cert_issue_device(X509 *issuer, EVP_PKEY *issuer_key,
				      EVP_PKEY *pubkey, const char *device_id,
				      int64_t validity_seconds,
				      const char *crl_url, X509 **out,
				      struct pki_error *err);

/* PEM text of one or more certificates concatenated (a chain, leaf
 * first). *out (NUL terminated) owned by the caller (free). */
enum pki_result pki_cert_pem(X509 *const *certs, size_t n, char **out,
			     size_t *len, struct pki_error *err);

/* Load the first certificate of a PEM file; *out owned by the caller. */
enum pki_result pki_cert_load(const char *path, X509 **out,
			      struct pki_error *err);

/* Parse one certificate from PEM or DER; *out owned by the caller. */
enum pki_result pki_cert_parse(const void *buf, size_t len, X509 **out,
			       struct pki_error *err);

/* Serial number exactly as `openssl x509 -serial` prints it: uppercase
 * hex, two digits per octet of the minimal encoding, so a leading zero
 * digit is kept ("06AFAD95..."). The one format fleetd uses everywhere
 * (API, audit, database, logs, revoked-serial set); out[cap], at most
 * PKI_SERIAL_HEX_MAX. PKI_ERR_ARG for a negative serial or a short out. */
enum pki_result pki_cert_serial_hex(const X509 *cert, char *out, size_t cap,
				    struct pki_error *err);

/* ---- CRL (crl.c) ----------------------------------------------------- */

/* RFC 5280 CRLReason codes (7 is unused by the RFC). */
enum pki_crl_reason {
	PKI_CRL_UNSPECIFIED = 0,
	PKI_CRL_KEY_COMPROMISE = 1,
	PKI_CRL_CA_COMPROMISE = 2,
	PKI_CRL_AFFILIATION_CHANGED = 3,
	PKI_CRL_SUPERSEDED = 4,
	PKI_CRL_CESSATION_OF_OPERATION = 5,
	PKI_CRL_CERTIFICATE_HOLD = 6,
	PKI_CRL_REMOVE_FROM_CRL = 8,
	PKI_CRL_PRIVILEGE_WITHDRAWN = 9,
	PKI_CRL_AA_COMPROMISE = 10,
};

/* Longest serial accepted: 20 octets (RFC 5280) in hex, plus NUL. */
#define PKI_SERIAL_HEX_MAX 41

struct pki_revoked {
	char serial_hex[PKI_SERIAL_HEX_MAX];
	int64_t revoked_at; /* epoch seconds */
	int reason; /* enum pki_crl_reason */
};

/* Sign a v2 CRL: thisUpdate = now, nextUpdate = now + next_update_seconds,
 * crlNumber, AKI, one entry per revoked serial with its reason code (no
 * reason extension for PKI_CRL_UNSPECIFIED). *der owned by the caller
 * (free). */
enum pki_result pki_crl_sign(X509 *issuer, EVP_PKEY *issuer_key,
			     const struct pki_revoked *revoked, size_t n,
			     uint64_t crl_number, int64_t next_update_seconds,
			     unsigned char **der, size_t *der_len,
			     struct pki_error *err);

/* ---- PKCS#7 certs-only and base64 (pkcs7.c) -------------------------- */

#define PKI_PKCS7_MAX_BYTES (256u * 1024u)

/* A certs-only PKCS#7 SignedData (RFC 7030 §4.1.3: no signers, no
 * content) holding certs[0..n) in that order, DER. *der owned by the
 * caller (free). */
enum pki_result pki_pkcs7_certs_der(X509 *const *certs, size_t n,
				    unsigned char **der, size_t *der_len,
				    struct pki_error *err);

/* The same as base64 text in lines of 64 characters ending in CRLF (the
 * body of an EST answer, RFC 7030/8951). *out (NUL terminated, *out_len
 * without the NUL) owned by the caller (free). */
enum pki_result pki_pkcs7_certs_base64(X509 *const *certs, size_t n, char **out,
				       size_t *out_len, struct pki_error *err);

/* Parse a certs-only (or any SignedData) PKCS#7 of at most
 * PKI_PKCS7_MAX_BYTES DER bytes with no trailing bytes, holding 1 to
 * max_certs certificates. Signatures are not checked here (certs-only has
 * none): verify the certificates. *certs (an array of *n owned X509) is
 * released with pki_certs_free. PKI_ERR_PARSE, PKI_ERR_TOO_LARGE. */
enum pki_result pki_pkcs7_certs_parse(const void *der, size_t len,
				      size_t max_certs, X509 ***certs,
				      size_t *n, struct pki_error *err);

/* Every certificate of a PEM text (a bundle), at most max_certs, in
 * order. *certs released with pki_certs_free. */
enum pki_result pki_certs_parse_pem(const char *pem, size_t len,
				    size_t max_certs, X509 ***certs, size_t *n,
				    struct pki_error *err);

/* Frees an array of certificates and the array; accepts NULL. */
void pki_certs_free(X509 **certs, size_t n);

/* Base64 (RFC 4648 alphabet) in lines of 64 with CRLF. *out NUL
 * terminated, owned by the caller (free). */
enum pki_result pki_base64_encode(const void *data, size_t len, char **out,
				  size_t *out_len, struct pki_error *err);

/* Decode base64 text, skipping whitespace and line breaks; anything else
 * outside the alphabet, misplaced padding or a length that is not a
 * multiple of 4 is PKI_ERR_PARSE; more than max_out decoded bytes is
 * PKI_ERR_TOO_LARGE. *out owned by the caller (free). */
enum pki_result pki_base64_decode(const void *text, size_t len, size_t max_out,
				  unsigned char **out, size_t *out_len,
				  struct pki_error *err);

/* ---- DSSE envelopes (dsse.c) ----------------------------------------- */

#define PKI_DSSE_MANIFEST_TYPE "application/vnd.fleet.manifest+json"
#define PKI_DSSE_MAX_ENVELOPE (1024u * 1024u)
#define PKI_DSSE_MAX_SIGNATURES 16

/* The pre-authentication encoding:
 * "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII
 * decimal. *out owned by the caller (free). */
enum pki_result pki_dsse_pae(const char *payload_type, const void *payload,
			     size_t len, unsigned char **out, size_t *out_len,
			     struct pki_error *err);

/* Raw signature over msg with key (SHA-256 for P-256 and RSA, SHA-384 for
 * P-384, pure Ed25519; ECDSA signatures are DER). *sig owned by the caller
 * (free). Used for the PAE; exported for tests and tools. */
enum pki_result pki_sign_bytes(EVP_PKEY *key, const void *msg, size_t len,
			       unsigned char **sig, size_t *sig_len,
			       struct pki_error *err);

/* Verify sig over msg: PKI_OK or PKI_ERR_SIGNATURE. */
enum pki_result pki_verify_bytes(EVP_PKEY *key, const void *msg, size_t len,
				 const unsigned char *sig, size_t sig_len,
				 struct pki_error *err);

/* Envelope JSON {"payload","payloadType","signatures":[{"keyid","sig"}]}
 * signed over the PAE by each of keys[0..n). *json (NUL terminated) owned by
 * the caller (free). */
enum pki_result pki_dsse_sign(const void *payload, size_t len,
			      const char *payload_type, EVP_PKEY *const *keys,
			      size_t n, char **json, size_t *json_len,
			      struct pki_error *err);

/* Verify an envelope against trusted[0..n_trusted) with threshold k >= 1.
 * The payload type must equal payload_type. A signature whose keyid names
 * a trusted key is checked against that key only; one with an empty keyid
 * against each trusted key. Each trusted key counts once however often it
 * signed. On return (also on PKI_ERR_THRESHOLD) verified[i] (optional,
 * caller-provided, n_trusted entries) tells whether trusted[i] verified and
 * *n_valid (optional) how many did. On PKI_OK *payload (owned by the
 * caller, free; NUL terminated after *payload_len bytes) holds the verified
 * bytes: parse only those. */
enum pki_result pki_dsse_verify(const void *json, size_t json_len,
				const char *payload_type,
				EVP_PKEY *const *trusted, size_t n_trusted,
				size_t k, bool *verified, size_t *n_valid,
				unsigned char **payload, size_t *payload_len,
				struct pki_error *err);

/* ---- in-process signer (signer.c), served by the `ca` process -------- */

struct pki_signer;

/* Open from the issuing CA certificate and key PEM files and a policy
 * (copied, including crl_url). Checks that the key matches the
 * certificate. *out owned by the caller (pki_signer_free). */
enum pki_result pki_signer_open(const char *cert_path, const char *key_path,
				const struct pki_policy *policy,
				struct pki_signer **out, struct pki_error *err);

/* Same from objects; takes its own references to cert and key. */
enum pki_result pki_signer_new(X509 *cert, EVP_PKEY *key,
			       const struct pki_policy *policy,
			       struct pki_signer **out, struct pki_error *err);

/* Wipes and frees; accepts NULL. */
void pki_signer_free(struct pki_signer *s);

/* The issuing CA certificate (borrowed, lives as long as s). */
X509 *pki_signer_cert(const struct pki_signer *s);

struct pki_issued {
	char *cert_pem; /* owned, NUL terminated */
	size_t cert_pem_len;
	unsigned char *cert_der; /* owned */
	size_t cert_der_len;
	char serial_hex[PKI_SERIAL_HEX_MAX];
	int64_t not_before; /* epoch seconds */
	int64_t not_after;
};

/* Release the buffers of an issued result and zero it; accepts NULL. */
void pki_issued_clear(struct pki_issued *r);

/* Check the CSR (pki_csr_parse_check with the signer's policy), refuse a
 * device id that is not a canonical lowercase UUID and a validity above the
 * policy maximum (0 = policy default), then issue the device certificate.
 * On PKI_OK *out is filled; release with pki_issued_clear. */
enum pki_result pki_signer_issue_device(struct pki_signer *s, const void *csr,
					size_t csr_len, const char *device_id,
					int64_t validity_seconds,
					struct pki_issued *out,
					struct pki_error *err);

/* Sign the CRL with the issuing CA (see pki_crl_sign). *der owned by the
 * caller (free). */
enum pki_result pki_signer_sign_crl(struct pki_signer *s,
				    const struct pki_revoked *revoked, size_t n,
				    uint64_t crl_number,
				    int64_t next_update_seconds,
				    unsigned char **der, size_t *der_len,
				    struct pki_error *err);

/* ---- PKI directory (init.c), run by `fleetd pki init` ----------------- */

#define PKI_INIT_MAX_NAMES 32

/* Create dir/root/{root.key,root.pem}, dir/issuing/{issuing.key,
 * issuing.pem,crl-url}, dir/server/{server.key,server.pem,
 * server-chain.pem} and dir/ca-bundle.pem. Refuses (PKI_ERR_EXISTS) when any
 * of them exists. crl_url may be NULL. */
enum pki_result pki_init_dir(const char *dir, const char *const *server_names,
			     size_t n_names, const char *crl_url,
			     struct pki_error *err);

/* ---- issuing-CA rollover (rollover.c), `fleetd pki rotate-issuing` ---- */

struct pki_rollover {
	char old_id[PKI_KEY_ID_LEN]; /* key id of the CA in use */
	char new_id[PKI_KEY_ID_LEN]; /* key id of the new one */
	char *old_pem; /* their certificates, owned (pki_rollover_clear) */
	char *new_pem;
};

void pki_rollover_clear(struct pki_rollover *r);

/* Makes a new issuing CA under the root of root_dir (root.pem, root.key:
 * the root must have signed dir's current issuing CA) into
 * dir/issuing/next/. Refuses (PKI_ERR_EXISTS) while dir/issuing/previous
 * or dir/issuing/next exists. Changes nothing in use. */
enum pki_result pki_rollover_prepare(const char *dir, const char *root_dir,
				     struct pki_rollover *out,
				     struct pki_error *err);

/* Removes dir/issuing/next/ (after a prepare that is not committed). */
void pki_rollover_abort(const char *dir);

/* Makes the prepared CA the issuing one: the current CA moves to
 * dir/issuing/previous/, the new one takes its place (marked
 * issuing/rotated), and ca-bundle.pem lists root, new, previous. */
enum pki_result pki_rollover_commit(const char *dir, struct pki_error *err);

/* Key id of dir/issuing/previous/issuing.pem. */
enum pki_result pki_rollover_previous_id(const char *dir,
					 char id[PKI_KEY_ID_LEN],
					 struct pki_error *err);

/* Removes the previous CA (key, certificate) and rewrites ca-bundle.pem
 * without it. */
enum pki_result pki_rollover_retire(const char *dir, struct pki_error *err);

#endif /* FLEET_PKI_H */
