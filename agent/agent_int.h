/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal modules of libfleetagent, exported for the unit tests:
 * identity store (identity.c), sequence numbers and the report queue
 * (queue.c), the outbox that sends queued reports until acknowledged
 * (outbox.c), the hello message (hello.c) and enrollment (enroll.c).
 * None of them knows lws. All return 0 on success or -1 with a message.
 */
#ifndef FLEET_AGENT_INT_H
#define FLEET_AGENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pki.h"
#include "proto/proto.h"
#include "secret.h"

/* ---- identity store (identity.c) ------------------------------------- */

#define AGENT_KEY_FILE "device.key" /* private key, 0600 */
#define AGENT_CERT_FILE "cert.pem" /* device certificate */
#define AGENT_CHAIN_FILE "chain.pem" /* issuing CA, root */
#define AGENT_CLIENT_FILE "client.pem" /* cert + chain, presented in TLS */
#define AGENT_IDENTITY_FILE "identity.json" /* written last: "complete" */
#define AGENT_ENROLL_FILE "enroll.json" /* pending request, 0600 (enroll.c) */
#define AGENT_PATH_MAX 1024

struct agent_identity {
	char device_id[SECRET_UUID_LEN];
	char device_server[512];
	char cert_serial[PKI_SERIAL_HEX_MAX];
	int64_t not_after; /* epoch seconds */
	int generation; /* renew.c: 0 = the enrollment's files */
};

/* The file names of an identity generation (identity.c). */
struct agent_identity_files {
	char key[32], cert[32], client[32];
};

/* 0, or -1 for a negative generation. */
int agent_identity_files(int generation, struct agent_identity_files *f);

/* Writes cert.<n>.pem and client.<n>.pem (cert + chain) atomically. */
int agent_identity_write_generation(const char *dir, int generation,
				    const char *cert_pem, const char *chain_pem,
				    char *err, size_t errlen);

/* Makes generation the identity in use (identity.json, atomically: the
 * commit point of a renewal) and reads it back into *out. */
int agent_identity_switch(const char *dir, const struct agent_identity *cur,
			  int generation, struct agent_identity *out, char *err,
			  size_t errlen);

/* Removes the key and certificate files of a generation. */
void agent_identity_remove_generation(const char *dir, int generation);

/* dir/name into out; -1 if it does not fit. */
int agent_path(char *out, size_t cap, const char *dir, const char *name);

/*
 * Reads a complete identity: identity.json, and the key and certificate it
 * names must load and belong together. Returns 1 (found, *out filled), 0
 * (not enrolled or incomplete: enroll again, reason in err) or -1.
 */
int agent_identity_load(const char *dir, struct agent_identity *out, char *err,
			size_t errlen);

/* The device key: loaded when dir/device.key is readable, otherwise a new
 * P-256 key written 0600. *out owned by the caller (EVP_PKEY_free). */
int agent_identity_key(const char *dir, EVP_PKEY **out, char *err,
		       size_t errlen);

/*
 * Stores an enrollment answer: checks that cert_pem carries key's public
 * key, writes cert.pem, chain.pem and client.pem atomically, then
 * identity.json atomically (the commit point), then removes the pending
 * enrollment request (enroll.json). *out filled on success.
 */
int agent_identity_store(const char *dir, EVP_PKEY *key, const char *device_id,
			 const char *device_server, const char *cert_pem,
			 const char *chain_pem, struct agent_identity *out,
			 char *err, size_t errlen);

/* ---- sequence numbers and the report queue (queue.c) ------------------ */

#define AGENT_QUEUE_DIR "queue"
#define AGENT_SEQ_FILE "seq"
#define AGENT_SEQ_LOCK "seq.lock" /* flock: one seq allocator at a time */
#define AGENT_QUEUE_MAX 10000 /* reports kept while offline */
#define AGENT_REPORT_MAX PROTO_FRAME_MAX /* one report: one frame */

/*
 * The last used seq: max(state_dir/seq, highest queued seq), 0 when new.
 */
int agent_seq_load(const char *dir, uint64_t *last, char *err, size_t errlen);

/* Persists seq as the last used one (atomic write) before it is used. */
int agent_seq_store(const char *dir, uint64_t seq, char *err, size_t errlen);

/* Appends a report as dir/queue/<seq, 20 digits>.json (atomic). Refuses
 * when AGENT_QUEUE_MAX reports are queued. */
int agent_queue_push(const char *dir, uint64_t seq, const char *text,
		     size_t len, char *err, size_t errlen);

/* The oldest (lowest seq) report: 1 (*seq, *text (caller frees), *len
 * set), 0 when the queue is empty, -1 on error. */
int agent_queue_oldest(const char *dir, uint64_t *seq, char **text, size_t *len,
		       char *err, size_t errlen);

/* Removes the report seq (sent). Missing is not an error. */
int agent_queue_remove(const char *dir, uint64_t seq, char *err, size_t errlen);

/* The queued report with the lowest seq above after: 1 (*seq, *text
 * (caller frees), *len set), 0 when there is none, -1 when the queue cannot
 * be read, -2 when that report's file cannot (*seq set). */
int agent_queue_next(const char *dir, uint64_t after, uint64_t *seq,
		     char **text, size_t *len, char *err, size_t errlen);

/* Up to max queued seqs above after into out, lowest first (one bounded
 * scan). The count, or -1. */
int agent_queue_list(const char *dir, uint64_t after, uint64_t *out, int max);

/* Reads report seq: 1 (*text (caller frees), *len), 0 when it is no
 * longer queued, -1 when it cannot be read. */
int agent_queue_read(const char *dir, uint64_t seq, char **text, size_t *len,
		     char *err, size_t errlen);

/* Moves report seq aside as queue/<name>.bad (unreadable or not a valid
 * report: it would block the queue forever). 0 or -1. */
int agent_queue_quarantine(const char *dir, uint64_t seq, char *err,
			   size_t errlen);

/* Number of queued reports (bounded scan), or -1. */
long agent_queue_count(const char *dir);

/*
 * Queues a report: msg is a JSON object with "type" naming a fleet.v1
 * report (docs/protocol.md); it gets the next seq (persisted first, under
 * an flock on dir/seq.lock, so the daemon and `fleet-agent report` never
 * hand out the same number), is validated by common/proto and written to
 * the queue. *seq (may be NULL) set on success. msg is not stolen.
 */
int agent_report_enqueue(const char *dir, json_t *msg, uint64_t *seq, char *err,
			 size_t errlen);

/* ---- the outbox (outbox.c) ---------------------------------------------- */

#define AGENT_INFLIGHT_MAX 8 /* reports sent and not yet acknowledged */
#define AGENT_OUTBOX_BATCH 64 /* seqs found per scan of the queue */

/*
 * Which queued reports are on the wire. Reports go out oldest first, at
 * most AGENT_INFLIGHT_MAX unacknowledged; a report leaves the queue only
 * when the server acknowledges its seq; after a reconnect (or a retry)
 * everything still queued is sent again, oldest first. The server applies
 * each seq once, so sending one twice is harmless.
 */
struct agent_outbox {
	const char *dir; /* the state directory (borrowed) */
	uint64_t sent_upto; /* highest seq sent since the last reset */
	uint64_t inflight[AGENT_INFLIGHT_MAX];
	int ninflight;
	bool retry_due; /* the server asked for a retry */
	/* The next seqs to send, from one scan of the queue (a scan per
	 * report would make draining a long queue quadratic). */
	uint64_t batch[AGENT_OUTBOX_BATCH];
	int nbatch, ibatch;
};

void agent_outbox_init(struct agent_outbox *o, const char *dir);

/* A new connection, or a retry: all queued reports count as unsent. */
void agent_outbox_reset(struct agent_outbox *o);

/* The next report to send now: 1 (*seq, *text (caller frees), *len;
 * counted in flight), 0 when the window is full or all are sent, -1. A
 * queued file that cannot be read or is not a fleet.v1 report with the
 * seq of its name is quarantined (agent_queue_quarantine) and skipped;
 * *skipped (may be NULL) counts them. */
int agent_outbox_next(struct agent_outbox *o, uint64_t *seq, char **text,
		      size_t *len, int *skipped, char *err, size_t errlen);

/* The server acknowledged seq (applied, duplicate, stale or rejected):
 * it leaves the queue. 0 or -1. */
int agent_outbox_ack(struct agent_outbox *o, uint64_t seq, char *err,
		     size_t errlen);

/* The server could not take seq now: it stays queued, to be sent again at
 * the next retry (retry_due set). */
void agent_outbox_nack(struct agent_outbox *o, uint64_t seq);

/* ---- hello (hello.c) -------------------------------------------------- */

/* The hello is not a report: it carries no seq, is never queued and is
 * answered by welcome (docs/protocol.md). */
struct agent_hello {
	const char *agent_version;
	const char *fw_version;
	const char *model;
	const char *boot_id;
	int64_t uptime; /* seconds */
	json_t *addresses; /* borrowed array of strings, NULL: [] */
	int64_t config_version;
	const char *config_hash;
	json_t *inventory; /* borrowed object, NULL: {} */
	int64_t fw_version_num; /* installed release version; 0: not sent */
	int64_t keyset_version; /* pinned release key set; 0: not sent */
};

/* The hello frame as compact JSON, built by common/proto; the caller
 * frees it (*len set). NULL if a field breaks the protocol's limits. */
char *agent_hello_build(const struct agent_hello *h, size_t *len);

/* Non-loopback interface addresses as a new JSON array (caller owns). */
json_t *agent_addresses(void);

/* Inventory of this host (hostname, os, kernel, arch) as a new object;
 * simulated adds "simulated": true. Caller owns it. */
json_t *agent_inventory(bool simulated);

/* Reads a boot id (UUID) from path into out; -1 if absent or malformed. */
int agent_read_boot_id(const char *path, char out[SECRET_UUID_LEN]);

/* Seconds since boot from /proc/uptime, or -1. */
int64_t agent_system_uptime(void);

/* Parses "k=v,k=v" into a new JSON object; -1 on a malformed list. */
int agent_labels_parse(const char *text, json_t **out, char *err,
		       size_t errlen);

/* ---- enrollment (enroll.c) -------------------------------------------- */

struct agent_enroll_request {
	const char *api_url;
	const char *ca_file;
	const char *token;
};

/*
 * The enrollment request kept in state_dir/enroll.json until identity.json
 * is written: the Idempotency-Key sent with every attempt and the body
 * without the token ({"csr", "model", "labels"}), so that every retry,
 * also after a restart, sends the same key and the same bytes.
 */
struct agent_enroll_pending {
	char idem_key[SECRET_UUID_LEN]; /* random UUID */
	json_t *request; /* owned: the body without "token" */
};

struct agent_enroll_answer {
	char device_id[SECRET_UUID_LEN];
	char *certificate; /* owned */
	char *chain; /* owned */
	char *device_server; /* owned, may be NULL */
};

void agent_enroll_answer_clear(struct agent_enroll_answer *a);

/*
 * The pending request of dir: loaded from enroll.json when it is there and
 * its CSR is for key (returns 1), otherwise made (new Idempotency-Key, a
 * CSR for key, model, labels (borrowed, may be NULL)) and written
 * atomically, 0600, before it is returned (returns 0; err names why an
 * existing file was not used, empty when there was none). -1 on error.
 * *out owned by the caller (agent_enroll_pending_clear).
 */
int agent_enroll_pending_open(const char *dir, EVP_PKEY *key, const char *model,
			      json_t *labels, struct agent_enroll_pending *out,
			      char *err, size_t errlen);

void agent_enroll_pending_clear(struct agent_enroll_pending *p);

/* Removes dir/enroll.json (call only once identity.json is written).
 * Missing is not an error. 0 or -1. */
int agent_enroll_pending_remove(const char *dir, char *err, size_t errlen);

/* The request body: p's request (compact, sorted keys) with "token" as
 * its last member: the same bytes for the same p and token. The caller
 * wipes (OPENSSL_cleanse) and frees it; NULL when out of memory or when
 * the token holds a control character. */
char *agent_enroll_body(const struct agent_enroll_pending *p,
			const char *token);

/* POST /enroll/v1 of p with r's token and p's Idempotency-Key.
 * *permanent: refused by the server (asking again will not help). */
int agent_enroll_request(const struct agent_enroll_request *r,
			 const struct agent_enroll_pending *p,
			 struct agent_enroll_answer *out, bool *permanent,
			 char *err, size_t errlen);

/* ---- configuration delivery (config.c) --------------------------------- */

#define AGENT_CONFIG_STATE_FILE "config-state.json" /* what was applied */
#define AGENT_CONFIG_APPLIED_FILE "config-applied.json" /* its document */

struct agent_config_opts {
	const char *path; /* the target file (absolute); NULL: none */
	const char *validate; /* hook run on the temp file, or NULL */
	const char *reload; /* hook run after the switch, or NULL */
	long drift_interval_s; /* re-hash period; 0: at start only */
	bool restore_on_drift; /* write the applied document back */
	bool memory; /* fleet-sim: no file, no hooks */
	unsigned fail_permille; /* memory mode: share of simulated failures */
};

struct agent_config;

/* Reads state_dir/config-state.json; strings of o are copied. NULL with a
 * message on error (a relative path). */
struct agent_config *agent_config_new(const char *state_dir, const char *logctx,
				      const struct agent_config_opts *o,
				      char *err, size_t errlen);
void agent_config_free(struct agent_config *c);

/* A target file (or the memory mode) is configured. */
bool agent_config_enabled(const struct agent_config *c);

/* Seconds between drift checks; 0: none. */
long agent_config_drift_interval(const struct agent_config *c);

/* What hello says: the applied generation (0: none) and the hash of the
 * file as it is now ("" when nothing was applied). */
void agent_config_hello(const struct agent_config *c, int64_t *version,
			char hash[65]);

/*
 * Handles a decoded config.apply: checks the document against its hash,
 * then writes it (temp file, validate hook, rename, fsync of the
 * directory, reload hook; the previous file restored if a hook fails), or
 * finds it applied already. *report is the config.status to send (a new
 * object without seq; NULL when nothing is to be said). 0, or -1 when out
 * of memory or the message is unusable.
 */
int agent_config_apply(struct agent_config *c, const struct proto_msg *m,
		       json_t **report);

/* Re-hashes the target file: a local edit appends a "drifted" report to
 * reports (an array; once per distinct edit) and, with restore_on_drift,
 * the applied document is written back (another report). 0 or -1. */
int agent_config_check(struct agent_config *c, json_t *reports);

/* Process setup shared by fleet-agent and fleet-sim (agent.c; no state
 * kept here): SIGTERM and SIGINT call on_stop, SIGPIPE is ignored (a peer
 * that closes must not kill the process), and lws's log lines at
 * lws_levels (LLL_* bits) go to log.c as errors or warnings. */
void agent_process_init(void (*on_stop)(int), int lws_levels);

struct lws_context;

/*
 * fleet_agent_context_new on a foreign libev loop (fleet-sim's shards):
 * ev_loop is a struct ev_loop * the caller made (epoll backend) and turns
 * with ev_run on one thread; it must outlive the context, and must not
 * turn while fleet_agent_context_free runs (lws closes every connection
 * within that call). lws arms its timer only after an event it serviced:
 * call lws_cancel_service once before the loop first turns, or timers
 * scheduled before then never run. NULL with err when lws cannot use
 * libev (its plugin, libwebsockets-evlib-ev, missing).
 */
struct lws_context *agent_context_new_ev(unsigned max_conns, void *ev_loop,
					 char *err, size_t errlen);

/* ---- certificate renewal (renew.c) -------------------------------------- */

#define AGENT_RENEW_FILE "renew.json" /* the renewal journal, 0600 */

/*
 * The renewal journal: every step is written (atomically) before the
 * next one starts, so a kill at any moment leaves the device with a
 * working identity (the one identity.json names) and a journal that says
 * how to go on. States:
 *   keygen     a new key is being made: at start, dropped
 *   csr        the new key (device.<gen>.key) and its cert.csr report are
 *              queued: wait for cert.issued
 *   issued     cert.<gen>.pem and client.<gen>.pem are written: connect
 *              with them; after welcome, identity.json switches
 *   installed  identity.json names <gen>; cert.installed is queued: once
 *              acknowledged the previous generation's files go
 */
enum agent_renew_state {
	AGENT_RENEW_NONE = 0,
	AGENT_RENEW_KEYGEN,
	AGENT_RENEW_CSR,
	AGENT_RENEW_ISSUED,
	AGENT_RENEW_INSTALLED,
};

struct agent_renew {
	enum agent_renew_state state;
	int gen; /* the new generation */
	int prev_gen; /* the one in use when it started */
	uint64_t csr_seq, installed_seq;
	char reason[16]; /* "renew" or "rotate" */
	char rotation_id[SECRET_UUID_LEN]; /* "" when none */
	char serial[PKI_SERIAL_HEX_MAX]; /* issued */
	char previous_serial[PKI_SERIAL_HEX_MAX];
	int64_t started; /* epoch seconds */
};

/* Reads the journal and finishes or drops what a kill interrupted (see
 * the states); *r is AGENT_RENEW_NONE when there is none. 0 or -1. */
int agent_renew_load(const char *dir, const struct agent_identity *id,
		     struct agent_renew *r, char *err, size_t errlen);

/* Starts a renewal: a new P-256 key, its CSR and a queued cert.csr report
 * (reason "renew" or "rotate" with rotation_id). */
int agent_renew_start(const char *dir, const struct agent_identity *id,
		      const char *reason, const char *rotation_id,
		      struct agent_renew *r, char *err, size_t errlen);

/* The csr state, but its cert.csr left the queue without an answer (the
 * connection dropped after the ack): queue it again for the same key; the
 * server answers with the certificate it issued. */
int agent_renew_resend(const char *dir, const struct agent_identity *id,
		       struct agent_renew *r, char *err, size_t errlen);

/* A cert.issued for the pending key: checks it carries that key and
 * names this device, stores it; state issued. 0, 1 when it is not for
 * the pending key (ignored), -1. */
int agent_renew_issued(const char *dir, const struct agent_identity *id,
		       struct agent_renew *r, const struct proto_msg *m,
		       char *err, size_t errlen);

/* Welcomed over a session that presented the new certificate: switch
 * identity.json to it and queue cert.installed; state installed. */
int agent_renew_commit(const char *dir, struct agent_identity *id,
		       struct agent_renew *r, char *err, size_t errlen);

/* cert.installed was acknowledged: the previous generation's files and
 * the journal go. */
void agent_renew_finish(const char *dir, struct agent_renew *r);

/* ---- renewal after expiry over EST (est_renew.c) ------------------------ */

/* The identity's certificate has expired (the agent's clock), or the
 * server refused it with the certificate_expired alert. */
bool agent_est_due(const struct agent_identity *id, int tls_alert);

/* Renews an expired identity over EST simplereenroll (blocking): a new
 * key, the expired certificate as TLS client certificate, the answer as
 * the next generation; *id switched and a pending channel renewal dropped
 * on 0. -1 with err (a refusal names the problem type). */
int agent_est_renew(const char *dir, const char *api_url, const char *ca_file,
		    struct agent_identity *id, struct agent_renew *renew,
		    const char *logctx, char *err, size_t errlen);

/* When to renew: at fraction (0 < f < 1; 2/3 by default) of the
 * certificate's lifetime, minus up to jitter_permille of it at random.
 * Epoch seconds. */
int64_t agent_renew_due(int64_t not_before, int64_t not_after, double fraction,
			unsigned jitter_permille);

/* A certificate's notBefore from a PEM file (epoch seconds); 0 on error. */
int64_t agent_cert_not_before(const char *path);

#endif
