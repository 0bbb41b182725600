/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seam inside the device channel: channel.c owns sessions (TLS,
 * websocket frames, presence, revocation, job threads); dispatch.c turns
 * one complete text frame into a fleet.v1 message and hands it to its
 * handler. Everything here runs on the worker's event loop unless a
 * comment says otherwise.
 */
#ifndef FLEETD_CHANNEL_INT_H
#define FLEETD_CHANNEL_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct channel;
struct channel_session;
struct store;

/* ---- channel.c --------------------------------------------------------- */

/* Queues msg (a JSON object; stolen) for the session's next writeable. */
void channel_send(struct channel_session *s, json_t *msg);

/* Counts a bad message and answers `error`; closes with 1008 after too
 * many. */
void channel_send_error(struct channel *ch, struct channel_session *s,
			const char *code, const char *message);

/* The device id of the session, from its verified certificate. */
const char *channel_session_device_id(const struct channel_session *s);

/* The heartbeat interval in seconds (sent in `welcome`). */
long channel_heartbeat_interval(const struct channel *ch);

/*
 * Work of a message handler that needs storage. run() is called on a job
 * thread with that thread's store and the session's device id; done() is
 * called afterwards on the loop with the session, or NULL if the session
 * ended meanwhile, and must release arg.
 */
struct channel_work {
	void (*run)(struct store *st, const char *device_id, void *arg);
	void (*done)(struct channel *ch, struct channel_session *s, void *arg);
	void *arg;
};

/* Queues work for s. false when the job queue is full (nothing called;
 * the caller still owns arg). */
bool channel_submit_work(struct channel *ch, struct channel_session *s,
			 const struct channel_work *work);

/* ---- dispatch.c -------------------------------------------------------- */

/* Sends a message built by the protocol module (fields stolen); logs
 * what cannot be built. */
void channel_send_msg(struct channel_session *s, enum proto_type type,
		      json_t *fields);

/* Acknowledges report seq with status (applied, duplicate, rejected). */
void channel_send_ack(struct channel_session *s, uint64_t seq,
		      const char *status);

/* An `error` about one report of type (not the device's fault: not
 * counted as a bad message). */
void channel_send_report_error(struct channel_session *s, const char *code,
			       const char *message, uint64_t seq,
			       const char *type);

/* One complete text frame of len bytes (untrusted, not NUL-terminated). */
void channel_dispatch(struct channel *ch, struct channel_session *s,
		      const char *text, size_t len);

/* ---- certificates (cert.c) ------------------------------------------------ */

struct signer_client;
struct x509_st;

/* The signer port of this worker (the ca process, channel_deps.signer),
 * for renewals on job threads. */
struct signer_client *channel_signer(const struct channel *ch);

/* The lifetime of certificates (config cert_validity, seconds) and the
 * PKI directory (its ca-bundle.pem is the chain sent with cert.issued). */
long channel_cert_validity(const struct channel *ch);
const char *channel_pki_dir(const struct channel *ch);
const char *channel_worker_id(const struct channel *ch);

/* The serial (pki_cert_serial_hex) and the key id (pki_key_id) of the
 * session's verified certificate. The connection itself no longer holds
 * the certificate (tls_trim.h). */
const char *channel_session_serial(const struct channel_session *s);
const char *channel_session_key_id(const struct channel_session *s);

/* A rotation id already sent to this session (SECRET_UUID_LEN bytes,
 * "" when none), so a notification does not ask twice. */
char *channel_session_rotation_sent(struct channel_session *s);

/* The checked, open session of device_id on this worker, or NULL. */
struct channel_session *channel_find_device(struct channel *ch,
					    const char *device_id);

/* Closes s with a websocket close code and reason (static text). */
void channel_close_session(struct channel *ch, struct channel_session *s,
			   int code, const char *reason);

/* The worker's queue of cert.installed reports (cert.c's; NULL until the
 * first one; channel.c frees it with cert_install_batch_free). */
struct cert_install_batch;
struct cert_install_batch **channel_cert_install_slot(struct channel *ch);
void cert_install_batch_free(struct cert_install_batch *b); /* accepts NULL */

/* channel_submit_work() also takes s == NULL: work for the worker, not a
 * session (run() gets device_id "", done() gets s == NULL). */

/* ---- configuration delivery (config.c, config_status.c) ---------------- */

struct proto_msg;

/* Calls fn for every session that passed its checks and is not closing
 * (on the loop). */
void channel_foreach_session(struct channel *ch,
			     void (*fn)(struct channel *ch,
					struct channel_session *s, void *arg),
			     void *arg);

/* The configuration generation last sent on s (0: none on this
 * session); config.c's to read and write. */
int64_t *channel_session_config_sent(struct channel_session *s);

/* The config.status handler of the message table (config_status.c). */
void channel_cfg_status(struct channel *ch, struct channel_session *s,
			struct proto_msg *m);

/* The worker's configuration delivery state (channel.c; config.c's). */
struct channel_cfg;
struct channel_cfg *channel_cfg_of(struct channel *ch);

/* The worker's queue of config.status reports (config_status.c's; kept
 * in config.c's state, NULL until the first report) and its free. */
struct cfg_status_batch;
struct cfg_status_batch **channel_cfg_status_slot(struct channel *ch);
void cfg_status_batch_free(struct cfg_status_batch *b); /* accepts NULL */

#endif
