/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct fleet_agent: one device's channel to fleetd over lws. The agents
 * of one lws context share a client vhost; each has one session at a time
 * (two while a renewal's connection is made beside it: make-before-break,
 * docs/agent.md "Certificate renewal") and a few timers: `connect` (the
 * next attempt, exponential backoff and full jitter), `watchdog` (pings an
 * idle server and hangs up on one silent for 2 x heartbeat + 10 s; it also
 * re-sends reports the server has not acknowledged in time), drift checks
 * and renewal. In a context made for many agents (fleet-sim) the timers
 * sit on a wheel the context turns (agent_timer), not on lws's sorted
 * list. Nothing runs while an agent waits: no polling, no busy loop.
 *
 * Runs on the thread servicing the lws context; no global state, so any
 * number of agents share one context (fleet-sim). Frames from the server
 * are untrusted: bounded reassembly, decoded and validated by common/proto.
 */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent_int.h"
#include "agent_timer.h"
#include "atomicfile.h"
#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "conffile.h"
#include "fleetagent.h"
#include "https.h"
#include "keyset.h"
#include "log.h"
#include "update.h"

#define BACKOFF_BASE_MS 1000u
#define BACKOFF_CAP_MS (5u * 60u * 1000u)
#define STABLE_MS 60000u /* up this long: backoff starts over */
#define AGENT_CONNECT_TIMEOUT_S 30 /* connect, TLS and upgrade together */
#define DEFAULT_HEARTBEAT_S 30 /* until welcome says otherwise */
#define RX_MAX PROTO_RX_MAX /* config.apply: documents up to 256 KiB */
#define RESEND_MIN_MS 5000u /* unacknowledged this long: send again */
#define FW_VERSION_MAX 128
#define HELLO_TEXT_MAX 128 /* model, fw_version in hello */
#define TOKEN_MAX 512
#define CONFIG_DRIFT_DEFAULT_S 60
/* Memory mode (fleet-sim): seqs of in-memory reports are reserved on disk
 * in blocks, one write per block instead of one per report. */
#define CONFIG_SEQ_BLOCK 1024u

/*
 * A limit on connections being made at once in a many-agent context
 * (fleet-sim's shards): at most max hold a slot, the others wait in the
 * queue, oldest first, and a freed slot admits the next from the loop
 * (not inside the callback that freed it). max 0: no limit (fleet-agent).
 */
struct agent_gate_slot {
	lws_dll2_t wait; /* in the gate's queue */
	bool held;
};

struct agent_gate {
	unsigned max, inflight;
	lws_dll2_owner_t queue;
	lws_sorted_usec_list_t sul_admit;
	struct lws_context *ctx;
	void (*retry)(struct agent_gate_slot *slot); /* a queued one's turn */
};

struct fleet_agent {
	/* configuration (owned copies) */
	char *name, *api_url, *device_url, *ca_file, *state_dir;
	char *token, *token_file, *model, *fw_version;
	char boot_id[SECRET_UUID_LEN];
	json_t *labels;
	bool virtual_uptime, write_status;
	uint64_t created_ms;
	char logctx[64];

	/* identity */
	struct agent_identity id;
	bool enrolled;

	/* where to connect (owned; exact sizes: fleet-sim holds thousands) */
	char *host, *address, *path;
	int port;

	/* channel */
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *wsi;
	lws_sorted_usec_list_t sul_connect, sul_watchdog;
	struct backoff bo;
	bool live; /* a connection exists or is being made */
	bool welcomed; /* welcome received on the current one */
	bool stopping;
	bool ping_due;
	uint64_t attempts;
	uint64_t established_ms, last_rx_ms;
	int heartbeat_s;
	char *hello; /* pending hello frame, or NULL */
	size_t hello_len;
	struct buf rx;
	struct agent_outbox outbox;
	uint64_t progress_ms; /* last report sent or acknowledged */
	long queued;
	char last_error[256];

	/* configuration delivery (config.c) */
	struct agent_config *config;
	lws_sorted_usec_list_t sul_config; /* drift checks */
	bool config_memory; /* reports in memory, not in the disk queue */
	char *config_report; /* memory mode: the latest config.status */
	size_t config_report_len;
	uint64_t config_report_seq; /* its seq (0: none pending) */
	bool config_report_sent; /* on the wire on this connection */
	uint64_t config_report_sent_ms;
	uint64_t config_seq, config_seq_reserved;

	/* certificates (renew.c; docs/agent.md "Certificate renewal") */
	/* The identity the connection being made presents: loaded before
	 * it (or, when it offers a ticket, only if fleetd asks for a
	 * certificate after all), handed to its SSL by agent_ssl_cert_cb,
	 * then dropped (the SSL holds its own references; an idle agent
	 * keeps no copy). tls_gen: the generation of its files. */
	X509 *tls_cert;
	EVP_PKEY *tls_key;
	int tls_gen;
	/* The session fleetd's last ticket resumes (memory only: none
	 * across a restart of the agent), and a tag of the identity it was
	 * made with: a renewed or re-enrolled identity never offers it
	 * (docs/internals/tls-resumption.md). */
	SSL_SESSION *tls_session;
	uint64_t tls_session_tag;
	EVP_PKEY *mem_id_key; /* memory mode: the installed identity's key */
	struct fleet_agent *wake_next; /* agent_shared's wake list */
	struct agent_renew renew;
	bool conn_new; /* this connection presents the renewal's certificate */
	unsigned new_failed; /* its connections that failed before welcome */
	lws_sorted_usec_list_t sul_renew;
	double renew_fraction; /* of the lifetime; 0: 2/3 */
	unsigned renew_jitter; /* permille of the lifetime, earlier */
	int64_t renew_due_at; /* epoch seconds, with its jitter drawn */
	long refused_backoff_s;
	bool reenroll; /* enroll again (token) when refused for good */
	char refused[160]; /* why the server refused us, "" when not */
	int peer_close; /* close code the server sent, 0 when none */
	int tls_alert; /* the last TLS alert the server sent, 0 when none */
	char peer_reason[124];
	bool cert_memory; /* fleet-sim: renew in memory, nothing on disk */
	EVP_PKEY *mem_key; /* memory mode: the pending key */
	char *mem_cert; /* memory mode: the new identity (its chain is not
			   sent: agent_ssl_cert_cb) */
	char *cert_report; /* memory mode: the cert report to send */
	size_t cert_report_len;
	uint64_t cert_report_seq;
	bool cert_report_sent;
	uint64_t renewals; /* installed since start */
	bool reconnect_planned; /* closed to reconnect with a new identity */
	/* Make-before-break (docs/agent.md "Certificate renewal"): the
	 * connection that presents the renewal's certificate while the
	 * session above (wsi) stays up. Welcomed, it becomes wsi and the old
	 * one is closed; failed, the old session goes on and it is tried
	 * again later (bo_next). */
	struct lws *wsi_next;
	bool next_live, next_established;
	char *hello_next;
	size_t hello_next_len;
	struct buf rx_next;
	struct backoff bo_next;
	lws_sorted_usec_list_t sul_next;
	struct agent_gate_slot next_slot; /* agent_shared's next_gate */
	/* Many-agent contexts: a connection being made holds one of the
	 * context's connect slots until it is established or ends. */
	struct agent_gate_slot conn_slot; /* agent_shared's conn_gate */

	/* signed updates (update.c; docs/agent.md "Updates") */
	struct agent_update *update; /* NULL: no update keys configured */
	char *update_keys; /* for hello's keyset_version */
	long fw_version_num; /* configured; firmware.json wins */
	long update_threshold; /* update.keys: adopting (keyset.c) */

	/* fleet-sim's in-memory updates (sim_update.c): hooks, and the
	 * reports queued in memory (fleet_agent_report_memory), oldest
	 * first; none kept once acknowledged. */
	void (*update_offer_hook)(void *arg, struct fleet_agent *a,
				  json_t *offer);
	void (*welcome_hook)(void *arg, struct fleet_agent *a);
	void *hook_arg;
	struct agent_mem_report *mem_head, *mem_tail;
	unsigned mem_count;
};

/* One in-memory report (fleet-sim): its encoded frame. */
struct agent_mem_report {
	struct agent_mem_report *next;
	uint64_t seq;
	uint64_t sent_ms;
	bool sent; /* on the wire on this connection */
	size_t len;
	char text[];
};

static int agent_callback(struct lws *wsi, enum lws_callback_reasons reason,
			  void *user, void *in, size_t len);

/* The update worker (another thread) queued a report. */
static void
agent_update_wake(void *arg)
{
	struct fleet_agent *a = arg;

	if (a->ctx != NULL)
		lws_cancel_service(a->ctx);
}
/* Certificates (renew.c; the block "certificates" below). */
static int agent_certs_setup(struct fleet_agent *a,
			     const struct fleet_agent_config *cfg, char *err,
			     size_t errlen);
static bool agent_cert_retry(struct fleet_agent *a, const char *why,
			     bool was_welcomed);

/* rx_buffer_size: lws keeps a receive buffer this big for the whole life
 * of each connection; messages are reassembled in a->rx (agent_receive)
 * whatever the size of the pieces lws hands over, and most are a few
 * hundred bytes, so a small one is enough (fleet-sim holds thousands). */
static const struct lws_protocols agent_protocols[] = {
	{FLEET_AGENT_SUBPROTOCOL, agent_callback, 0, 1024, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}};
/* A context made for many agents (fleet-sim): 256 bytes, 0.75 KiB less per
 * idle device. A welcome or a config.apply then comes in a few pieces
 * more. tx_packet_size stays what rx_buffer_size gave before (lws caps
 * one write at it when it is 0): a larger frame would be split and its
 * rest copied. */
static const struct lws_protocols agent_protocols_many[] = {
	{FLEET_AGENT_SUBPROTOCOL, agent_callback, 0, 256, 0, NULL, 1024},
	{NULL, NULL, 0, 0, 0, NULL, 0}};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void
agent_log_ctx(struct fleet_agent *a)
{
	if (a->enrolled)
		snprintf(a->logctx, sizeof(a->logctx), "%s%sdevice=%s",
			 a->name != NULL ? a->name : "",
			 a->name != NULL ? " " : "", a->id.device_id);
	else
		snprintf(a->logctx, sizeof(a->logctx), "%s",
			 a->name != NULL ? a->name : "agent");
}

/* The first line of a small file, trimmed. */
static int
read_line_file(const char *path, size_t max, char **out, char *err,
	       size_t errlen)
{
	char *text = NULL;
	size_t len, total;

	if (read_file_bounded(path, max, &text, &total, err, errlen) != 0)
		return -1;
	len = strcspn(text, "\r\n");
	/* The file may be a token file: the caller wipes strlen() bytes,
	 * so wipe what follows the first line here. */
	OPENSSL_cleanse(text + len, total - len);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		text[--len] = '\0';
	*out = text;
	return 0;
}

/* wss://host[:port][/path] into host, address, port and path. */
static int
agent_parse_device_url(struct fleet_agent *a, const char *url, char *err,
		       size_t errlen)
{
	struct https_url u;
	char tmp[1024];
	long port;
	int n;

	if (strncmp(url, "wss://", 6) != 0) {
		snprintf(err, errlen, "device URL must start with wss://: %s",
			 url);
		return -1;
	}
	n = snprintf(tmp, sizeof(tmp), "https://%s", url + 6);
	if (n < 0 || (size_t)n >= sizeof(tmp) ||
	    https_url_parse(tmp, &u, err, errlen) != 0)
		return -1;
	port = strtol(u.port, NULL, 10);
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "bad port in %s", url);
		return -1;
	}
	free(a->host);
	free(a->address);
	free(a->path);
	a->host = strdup(u.host);
	/* Loopback by name means 127.0.0.1: lws 4.1 tries only the first
	 * address getaddrinfo returns, which may be ::1. TLS still checks
	 * the name (lws verifies against the Host header). */
	a->address =
		strdup(strcmp(u.host, "localhost") == 0 ? "127.0.0.1" : u.host);
	a->path = strdup(u.prefix[0] != '\0' ? u.prefix : "/agent/v1");
	if (a->host == NULL || a->address == NULL || a->path == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->port = (int)port;
	return 0;
}

static void
agent_status_write(struct fleet_agent *a)
{
	char path[AGENT_PATH_MAX], err[256], now[32], exp[32];
	char *text;
	json_t *doc;

	if (!a->write_status)
		return;
	clock_format_rfc3339((time_t)clock_wall_s(), now, sizeof(now));
	clock_format_rfc3339((time_t)a->id.not_after, exp, sizeof(exp));
	doc = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s, s:i, s:s, s:s, "
			"s:s, s:I}",
			"device_id", a->id.device_id, "cert_serial",
			a->id.cert_serial, "cert_not_after",
			a->enrolled ? exp : "", "connected", a->welcomed,
			"attempts", (json_int_t)a->attempts, "queued",
			(json_int_t)a->queued, "last_error", a->last_error,
			"pid", (int)getpid(), "updated_at", now,
			"agent_version", FLEET_AGENT_VERSION, "refused",
			a->refused, "renewals", (json_int_t)a->renewals);
	text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	if (text == NULL ||
	    agent_path(path, sizeof(path), a->state_dir, "status.json") != 0 ||
	    atomic_write_file(path, text, strlen(text), 0644, err,
			      sizeof(err)) != 0)
		log_write(LOG_LEVEL_WARN, a->logctx, "status file not written");
	free(text);
	json_decref(doc);
}

/* The configuration-delivery settings (fleet_agent_config). */
static int
agent_config_setup(struct fleet_agent *a, const struct fleet_agent_config *cfg,
		   char *err, size_t errlen)
{
	struct agent_config_opts o;
	long secs = cfg->config_drift_interval;

	memset(&o, 0, sizeof(o));
	o.memory = cfg->config_memory;
	o.fail_permille = cfg->config_fail_permille;
	o.path = cfg->config_path;
	o.validate = cfg->config_validate;
	o.reload = cfg->config_reload;
	o.restore_on_drift = cfg->config_restore_on_drift;
	o.drift_interval_s = secs > 0 ? secs : CONFIG_DRIFT_DEFAULT_S;
	a->config_memory = o.memory;
	a->config = agent_config_new(a->state_dir, a->logctx, &o, err, errlen);
	return a->config != NULL ? 0 : -1;
}

/* Renewal after expiry over EST (est_renew.c): 0 when the identity was
 * renewed, else the reason is logged and shown in status. */
static int
agent_est_try(struct fleet_agent *a)
{
	char err[256];

	if (agent_est_renew(a->state_dir, a->api_url, a->ca_file, &a->id,
			    &a->renew, a->logctx, err, sizeof(err)) == 0) {
		a->new_failed = 0;
		a->last_error[0] = '\0';
		return 0;
	}
	log_write(LOG_LEVEL_WARN, a->logctx, "the certificate has expired: %s",
		  err);
	snprintf(a->last_error, sizeof(a->last_error), "%s", err);
	return -1;
}

struct fleet_agent *
fleet_agent_new(const struct fleet_agent_config *cfg, char *err, size_t errlen)
{
	struct fleet_agent *a = NULL;
	char ierr[256], path[AGENT_PATH_MAX];
	int found;

	if (cfg->state_dir == NULL || cfg->api_url == NULL ||
	    cfg->ca_file == NULL) {
		snprintf(err, errlen,
			 "api_url, ca_file and state_dir are "
			 "required");
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->name = dup_or_null(cfg->name);
	a->api_url = dup_or_null(cfg->api_url);
	a->device_url = dup_or_null(cfg->device_url);
	a->ca_file = dup_or_null(cfg->ca_file);
	a->state_dir = dup_or_null(cfg->state_dir);
	a->token = dup_or_null(cfg->token);
	a->token_file = dup_or_null(cfg->token_file);
	a->model = strdup(cfg->model != NULL ? cfg->model : "generic");
	a->virtual_uptime = cfg->virtual_uptime;
	a->write_status = cfg->write_status;
	a->created_ms = clock_mono_ms();
	a->heartbeat_s = DEFAULT_HEARTBEAT_S;
	buf_init(&a->rx, RX_MAX);
	buf_init(&a->rx_next, RX_MAX);
	backoff_init(&a->bo, BACKOFF_BASE_MS, BACKOFF_CAP_MS, 0);
	backoff_init(&a->bo_next, BACKOFF_BASE_MS, BACKOFF_CAP_MS, 0);
	agent_log_ctx(a);
	if (a->api_url == NULL || a->ca_file == NULL || a->state_dir == NULL ||
	    a->model == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->fw_version != NULL) {
		a->fw_version = strdup(cfg->fw_version);
	} else if (cfg->fw_version_file != NULL) {
		if (read_line_file(cfg->fw_version_file, FW_VERSION_MAX,
				   &a->fw_version, err, errlen) != 0)
			goto fail;
	} else {
		a->fw_version = strdup("unknown");
	}
	if (a->fw_version == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* hello must fit fleet.v1 (docs/protocol.md): refuse at start
	 * rather than fail every connection. */
	if (strlen(a->model) > HELLO_TEXT_MAX ||
	    strlen(a->fw_version) > HELLO_TEXT_MAX) {
		snprintf(err, errlen,
			 "model and fw_version are limited to %d bytes",
			 HELLO_TEXT_MAX);
		goto fail;
	}
	if (agent_labels_parse(cfg->labels != NULL ? cfg->labels : "",
			       &a->labels, err, errlen) != 0)
		goto fail;
	if (cfg->boot_id != NULL) {
		if (!secret_is_uuid(cfg->boot_id)) {
			snprintf(err, errlen, "boot id must be a UUID");
			goto fail;
		}
		memcpy(a->boot_id, cfg->boot_id, SECRET_UUID_LEN);
	} else if (agent_read_boot_id("/proc/sys/kernel/random/boot_id",
				      a->boot_id) != 0 &&
		   secret_uuid_v4(a->boot_id) != 0) {
		snprintf(err, errlen, "no boot id");
		goto fail;
	}
	if (mkdir(a->state_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", a->state_dir, strerror(errno));
		goto fail;
	}
	/* The identity's paths are made per connection (agent_ssl_identity);
	 * a state directory too long for them fails here, once. */
	if (agent_path(path, sizeof(path), a->state_dir, AGENT_KEY_FILE) != 0 ||
	    agent_path(path, sizeof(path), a->state_dir, AGENT_CLIENT_FILE) !=
		    0) {
		snprintf(err, errlen, "state directory path too long");
		goto fail;
	}
	found = agent_identity_load(a->state_dir, &a->id, ierr, sizeof(ierr));
	if (found < 0) {
		snprintf(err, errlen, "%s", ierr);
		goto fail;
	}
	if (found == 0 && strcmp(ierr, "not enrolled yet") != 0)
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "identity incomplete, enrolling again: %s", ierr);
	a->enrolled = found == 1;
	/* Killed between identity.json and removing enroll.json: the
	 * request is answered and stored, its key is no longer needed. */
	if (a->enrolled &&
	    agent_enroll_pending_remove(a->state_dir, ierr, sizeof(ierr)) != 0)
		log_write(LOG_LEVEL_WARN, a->logctx, "%s", ierr);
	agent_log_ctx(a);
	agent_outbox_init(&a->outbox, a->state_dir);
	a->queued = agent_queue_count(a->state_dir);
	if (agent_config_setup(a, cfg, err, errlen) != 0)
		goto fail;
	if (agent_certs_setup(a, cfg, err, errlen) != 0)
		goto fail;
	if (cfg->update != NULL) {
		a->fw_version_num = cfg->update->fw_version_num;
		a->update_keys = dup_or_null(cfg->update->keys);
		a->update_threshold = cfg->update->threshold;
	}
	a->update_offer_hook = cfg->update_offer_hook;
	a->welcome_hook = cfg->welcome_hook;
	a->hook_arg = cfg->hook_arg;
	if (a->update_keys != NULL && a->update_keys[0] != '\0' &&
	    a->update_offer_hook == NULL) {
		a->update =
			agent_update_new(cfg->update, a->state_dir, a->model,
					 a->ca_file, a->logctx, err, errlen);
		if (a->update == NULL)
			goto fail;
	}
	/* Offline past the certificate's end: renew over EST first. */
	if (a->enrolled && !a->cert_memory && agent_est_due(&a->id, 0))
		(void)agent_est_try(a);
	return a;
fail:
	fleet_agent_free(a);
	return NULL;
}

void
fleet_agent_free(struct fleet_agent *a)
{
	if (a == NULL)
		return;
	if (a->token != NULL)
		OPENSSL_cleanse(a->token, strlen(a->token));
	agent_update_free(a->update);
	free(a->update_keys);
	free(a->name);
	free(a->api_url);
	free(a->device_url);
	free(a->host);
	free(a->address);
	free(a->path);
	free(a->ca_file);
	free(a->state_dir);
	free(a->token);
	free(a->token_file);
	free(a->model);
	free(a->fw_version);
	free(a->hello);
	free(a->hello_next);
	json_decref(a->labels);
	buf_free(&a->rx);
	buf_free(&a->rx_next);
	agent_config_free(a->config);
	free(a->config_report);
	X509_free(a->tls_cert);
	EVP_PKEY_free(a->tls_key);
	SSL_SESSION_free(a->tls_session);
	EVP_PKEY_free(a->mem_id_key);
	EVP_PKEY_free(a->mem_key);
	free(a->mem_cert);
	free(a->cert_report);
	while (a->mem_head != NULL) {
		struct agent_mem_report *r = a->mem_head;

		a->mem_head = r->next;
		free(r);
	}
	free(a);
}

bool
fleet_agent_enrolled(const struct fleet_agent *a)
{
	return a->enrolled;
}

bool
fleet_agent_online(const struct fleet_agent *a)
{
	return a->welcomed;
}

uint64_t
fleet_agent_attempts(const struct fleet_agent *a)
{
	return a->attempts;
}

const char *
fleet_agent_device_id(const struct fleet_agent *a)
{
	return a->id.device_id;
}

uint64_t
fleet_agent_renewals(const struct fleet_agent *a)
{
	return a->renewals;
}

const char *
fleet_agent_cert_serial(const struct fleet_agent *a)
{
	return a->id.cert_serial;
}

int
fleet_agent_enroll(struct fleet_agent *a, bool *permanent, char *err,
		   size_t errlen)
{
	struct agent_enroll_request req;
	struct agent_enroll_pending pending;
	struct agent_enroll_answer ans;
	EVP_PKEY *key = NULL;
	char *token = NULL;
	bool perm = false;
	int found, rc = -1;

	memset(&ans, 0, sizeof(ans));
	memset(&pending, 0, sizeof(pending));
	if (a->enrolled)
		return 0;
	if (a->token != NULL && a->token[0] != '\0') {
		token = strdup(a->token);
	} else if (a->token_file != NULL) {
		if (read_line_file(a->token_file, TOKEN_MAX, &token, err,
				   errlen) != 0) {
			perm = true;
			goto out;
		}
	}
	if (token == NULL || token[0] == '\0') {
		snprintf(err, errlen,
			 "not enrolled and no enrollment token "
			 "(token or token_file)");
		perm = true;
		goto out;
	}
	if (agent_identity_key(a->state_dir, &key, err, errlen) != 0)
		goto out;
	/* The same Idempotency-Key and body for every attempt until the
	 * identity is stored, also across restarts (enroll.c). */
	found = agent_enroll_pending_open(a->state_dir, key, a->model,
					  a->labels, &pending, err, errlen);
	if (found < 0)
		goto out;
	if (found == 0 && err[0] != '\0')
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "new enrollment request: %s", err);
	else if (found == 1)
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "repeating the pending enrollment request");
	memset(&req, 0, sizeof(req));
	req.api_url = a->api_url;
	req.ca_file = a->ca_file;
	req.token = token;
	if (agent_enroll_request(&req, &pending, &ans, &perm, err, errlen) != 0)
		goto out;
	if (agent_identity_store(a->state_dir, key, ans.device_id,
				 ans.device_server, ans.certificate, ans.chain,
				 &a->id, err, errlen) != 0)
		goto out;
	a->enrolled = true;
	agent_log_ctx(a);
	log_write(LOG_LEVEL_INFO, a->logctx, "enrolled, certificate %s",
		  a->id.cert_serial);
	rc = 0;
out:
	if (token != NULL) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	if (permanent != NULL)
		*permanent = perm;
	agent_enroll_answer_clear(&ans);
	agent_enroll_pending_clear(&pending);
	EVP_PKEY_free(key);
	return rc;
}

/*
 * What every agent of one lws context shares (the context's user data):
 * one client TLS context and one client vhost. fleet-sim runs thousands of
 * agents in a context, and an SSL_CTX with its trust store, plus an lws
 * vhost, per device cost more than the device's connection itself. Each
 * connection still presents its own agent's identity: agent_ssl_cert_cb
 * sets it on the connection's SSL.
 */
/*
 * The agents' own timers of a context made for many agents (fleet-sim):
 * a timing wheel of WHEEL_SLOTS lists, one slot per WHEEL_TICK_MS, turned
 * by one lws timer. lws 4.1 keeps its timers in ONE sorted list per
 * context, so arming a timer walks past every timer due earlier: with a
 * watchdog, a retry and a drift check per device, that was O(devices) per
 * arm and a quarter of fleet-sim's CPU (docs/internals/agent-scale.md).
 * Here arming and cancelling are O(1) (the same lws_sorted_usec_list_t,
 * linked into a slot instead; lws_sul_cancel unlinks it from either), a
 * turn looks at one slot, and a timer further out than the wheel stays in
 * its slot for as many turns as it needs. Timers due within a tick still
 * go to lws (they go to the head of its list: no walk).
 */
/*
 * A fleet rotated at once makes every device open its renewal's
 * connection within seconds: thousands of handshakes the server cannot
 * finish within its handshake timeout, most of them failing and retried.
 * The old sessions stay up meanwhile, so nothing is lost by waiting: a
 * many-agent context makes at most this many renewal connections at a
 * time, the others wait their turn (a finished one admits the next).
 * 32 throttled a lightly loaded fleetd (about 70 renewals/s whatever the
 * load); 128 kept the storm away at 2,000 devices with no failed
 * attempt (docs/internals/agent-scale.md).
 */
#define AGENT_RENEW_CONNECTS_MAX 128u

/*
 * The same for every connection of a many-agent context (fleet-sim's
 * shards): at most this many connect, finish TLS and wait for the
 * upgrade at once; the others wait for a slot in a FIFO, their backoff
 * and the 30 s connect timeout not yet running. lws 4.1 gives each
 * connection being made its timeouts in the context's one sorted timer
 * list (lws_set_timeout, the connect timer): with thousands of devices
 * of a shard connecting at once (a first start, a reconnect storm) each
 * insertion walked thousands of entries (15 to 18 % of a simulator in a
 * 30,000-device run), and thousands of handshakes sharing the CPU all
 * ran late, so that fleetd or the connect timeout cut them and the
 * devices started over (docs/internals/fleet-sim.md).
 */
#define AGENT_CONNECTS_MAX 128u

#define WHEEL_SLOTS 512u
#define WHEEL_TICK_US ((lws_usec_t)100 * LWS_US_PER_MS)

struct agent_wheel {
	lws_sorted_usec_list_t sul_turn;
	struct lws_context *ctx;
	uint64_t turned; /* the last tick looked at */
	lws_dll2_owner_t slot[WHEEL_SLOTS];
};

struct agent_shared {
	struct lws_context *ctx;
	SSL_CTX *ssl_ctx;
	struct lws_vhost *vh;
	char *ca_file; /* the trust anchors every agent here uses */
	struct fleet_agent *wake; /* agents with an update worker */
	struct agent_wheel *wheel; /* NULL: the agents' timers are lws's */
	/* Renewal and channel connections being made at once (many-agent
	 * contexts; no limit otherwise). */
	struct agent_gate next_gate, conn_gate;
};

static void agent_conn_retry(struct agent_gate_slot *slot);
static void agent_next_retry(struct agent_gate_slot *slot);

static void
agent_wheel_turn(lws_sorted_usec_list_t *sul)
{
	struct agent_wheel *w =
		lws_container_of(sul, struct agent_wheel, sul_turn);
	lws_usec_t now = lws_now_usecs();
	uint64_t tick = (uint64_t)(now / WHEEL_TICK_US), t;

	/* Every tick since the last turn (the loop may have been late), at
	 * most one round of the wheel. */
	t = tick - w->turned > WHEEL_SLOTS ? tick - WHEEL_SLOTS : w->turned + 1;
	for (; t <= tick; t++) {
		lws_dll2_owner_t *own = &w->slot[t % WHEEL_SLOTS];
		lws_dll2_owner_t turn;
		lws_dll2_t *d;

		/* The slot's timers move to a list of this turn first: a
		 * callback may cancel or re-arm any timer, also the next one
		 * of the slot. */
		memset(&turn, 0, sizeof(turn));
		while ((d = lws_dll2_get_head(own)) != NULL) {
			lws_dll2_remove(d);
			lws_dll2_add_tail(d, &turn);
		}
		while ((d = lws_dll2_get_head(&turn)) != NULL) {
			lws_sorted_usec_list_t *e = lws_container_of(
				d, lws_sorted_usec_list_t, list);

			lws_dll2_remove(d);
			if (e->us > (lws_usec_t)t * WHEEL_TICK_US) {
				/* due in a later round */
				lws_dll2_add_tail(d, own);
				continue;
			}
			e->us = 0;
			e->cb(e);
		}
	}
	w->turned = tick;
	lws_sul_schedule(w->ctx, 0, &w->sul_turn, agent_wheel_turn,
			 WHEEL_TICK_US);
}

/* Arms one of an agent's timers (replacing its previous arming). */
void
agent_timer(struct lws_context *ctx, lws_sorted_usec_list_t *sul, sul_cb_t cb,
	    lws_usec_t us)
{
	struct agent_shared *sh = lws_context_user(ctx);
	struct agent_wheel *w = sh != NULL ? sh->wheel : NULL;
	lws_usec_t due;

	if (w == NULL || us < WHEEL_TICK_US) {
		lws_sul_schedule(ctx, 0, sul, cb, us);
		return;
	}
	lws_sul_cancel(sul);
	due = lws_now_usecs() + us;
	sul->us = due;
	sul->cb = cb;
	/* The first tick at or after it: never early, at most a tick late. */
	lws_dll2_add_tail(
		&sul->list,
		&w->slot[(uint64_t)((due + WHEEL_TICK_US - 1) / WHEEL_TICK_US) %
			 WHEEL_SLOTS]);
}

/*
 * ev_loop: NULL for lws's own loop (fleet-agent: one connection), or a
 * libev loop the caller made and turns (fleet-sim's shards). lws 4.1's
 * own loop poll()s every descriptor of the context on every turn: O(N)
 * per event with N connections (docs/internals/fleet-sim.md). On a
 * foreign libev loop lws registers an ev_io per descriptor and runs its
 * timers from one ev_timer; it dlopens its libev plugin (Debian:
 * libwebsockets-evlib-ev) for that, and installs no signal watcher.
 */
static struct lws_context *
agent_context_make(unsigned max_conns, void *ev_loop, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct agent_shared *sh = calloc(1, sizeof(*sh));
	void *loops[1] = {ev_loop};

	if (sh == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (ev_loop != NULL) {
		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = loops;
	}
	info.gid = -1;
	info.uid = -1;
	info.user = sh;
	/* How long a connection may take to connect, finish its TLS
	 * handshake and be answered the upgrade (and a close to complete).
	 * lws's default, 5 s, gave up on connections waiting their turn in
	 * a server's listen queue after a restart: each became a failure,
	 * a backoff step and a new handshake, and a 10,000-device reconnect
	 * storm took 4.5 attempts per device (docs/internals/storm.md).
	 * 30 s is what MQTT clients wait for a CONNACK (Paho's default). */
	info.timeout_secs = AGENT_CONNECT_TIMEOUT_S;
	/* No fd_limit_per_thread, whatever max_conns says: with it lws 4.1
	 * finds the connection of every event by a linear search of its fd
	 * table (wsi_from_fd), a tenth of fleet-sim's CPU at 5,000 devices
	 * (docs/internals/perf.md). lws sizes the table by the process's
	 * open-files limit, which the caller raises. */
	sh->ctx = lws_create_context(&info);
	if (sh->ctx == NULL) {
		snprintf(err, errlen,
			 ev_loop != NULL ? "lws_create_context on libev failed "
					   "(is libwebsockets-evlib-ev "
					   "installed?)"
					 : "lws_create_context failed");
		free(sh);
		return NULL;
	}
	sh->next_gate.ctx = sh->ctx;
	sh->next_gate.retry = agent_next_retry;
	sh->conn_gate.ctx = sh->ctx;
	sh->conn_gate.retry = agent_conn_retry;
	/* Many agents: their timers on a wheel (fleet-agent's one agent
	 * keeps lws's timers, and no 10 Hz turn on a device). */
	if (max_conns > 1) {
		sh->wheel = calloc(1, sizeof(*sh->wheel));
		if (sh->wheel == NULL) {
			snprintf(err, errlen, "out of memory");
			lws_context_destroy(sh->ctx);
			free(sh);
			return NULL;
		}
		sh->wheel->ctx = sh->ctx;
		sh->next_gate.max = AGENT_RENEW_CONNECTS_MAX;
		sh->conn_gate.max = AGENT_CONNECTS_MAX;
		sh->wheel->turned = (uint64_t)(lws_now_usecs() / WHEEL_TICK_US);
		lws_sul_schedule(sh->ctx, 0, &sh->wheel->sul_turn,
				 agent_wheel_turn, WHEEL_TICK_US);
	}
	return sh->ctx;
}

struct lws_context *
fleet_agent_context_new(unsigned max_conns, char *err, size_t errlen)
{
	return agent_context_make(max_conns, NULL, err, errlen);
}

struct lws_context *
agent_context_new_ev(unsigned max_conns, void *ev_loop, char *err,
		     size_t errlen)
{
	if (ev_loop == NULL) {
		snprintf(err, errlen, "agent_context_new_ev: no loop");
		return NULL;
	}
	return agent_context_make(max_conns, ev_loop, err, errlen);
}

void
fleet_agent_context_free(struct lws_context *ctx)
{
	struct agent_shared *sh;

	if (ctx == NULL)
		return;
	sh = lws_context_user(ctx);
	if (sh->wheel != NULL)
		lws_sul_cancel(&sh->wheel->sul_turn);
	lws_sul_cancel(&sh->next_gate.sul_admit);
	lws_sul_cancel(&sh->conn_gate.sul_admit);
	lws_context_destroy(ctx);
	free(sh->wheel);
	/* lws frees no client context it was given (the vhost's is ours). */
	SSL_CTX_free(sh->ssl_ctx);
	free(sh->ca_file);
	free(sh);
}

/* ---- the process ---------------------------------------------------- */

/* One lws line, without its newline, as one of our log lines. */
static void
agent_lws_log_emit(int level, const char *line)
{
	size_t n = strcspn(line, "\n");

	log_write(level == LLL_ERR ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, "lws",
		  "%.*s", (int)n, line);
}

void
agent_process_init(void (*on_stop)(int), int lws_levels)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(lws_levels, agent_lws_log_emit);
}

/* ---- the channel ----------------------------------------------------- */

static void agent_connect_cb(lws_sorted_usec_list_t *sul);
static void agent_watchdog_cb(lws_sorted_usec_list_t *sul);

static void
agent_schedule_retry(struct fleet_agent *a)
{
	uint32_t ms;

	if (a->stopping)
		return;
	ms = backoff_next(&a->bo);
	log_write(LOG_LEVEL_INFO, a->logctx,
		  "reconnecting in %u ms (attempts so far %" PRIu64 ")", ms,
		  a->attempts);
	agent_timer(a->ctx, &a->sul_connect, agent_connect_cb,
		    (lws_usec_t)ms * LWS_US_PER_MS);
}

static int agent_ssl_identity(struct fleet_agent *a);
static int agent_ssl_load(struct fleet_agent *a);
static void agent_ssl_set(struct fleet_agent *a, X509 *cert, EVP_PKEY *key);
static void agent_cert_welcome(struct fleet_agent *a);
static void agent_cert_ack(struct fleet_agent *a, uint64_t seq,
			   const char *status);
static int agent_send_cert_report(struct fleet_agent *a, struct lws *wsi);
static void agent_mem_reports_unsent(struct fleet_agent *a);
static bool agent_mem_report_ack(struct fleet_agent *a, uint64_t seq,
				 const char *status);
static struct agent_mem_report *agent_mem_report_unsent(struct fleet_agent *a);
static int agent_send_mem_report(struct fleet_agent *a, struct lws *wsi);
static void agent_next_promote(struct fleet_agent *a, bool close_old,
			       const char *why);
static void agent_renew_connect(struct fleet_agent *a);

/* A slot of g for s: true when s may connect now, false when it waits
 * in g's queue (g's retry calls again). Always true without a limit. */
static bool
agent_gate_take(struct agent_gate *g, struct agent_gate_slot *s)
{
	if (g->max == 0 || s->held)
		return true;
	if (g->inflight >= g->max) {
		if (s->wait.owner == NULL)
			lws_dll2_add_tail(&s->wait, &g->queue);
		return false;
	}
	g->inflight++;
	s->held = true;
	return true;
}

/* Slots are free: the ones waiting longest try again. */
static void
agent_gate_admit_cb(lws_sorted_usec_list_t *sul)
{
	struct agent_gate *g =
		lws_container_of(sul, struct agent_gate, sul_admit);
	lws_dll2_t *d;

	while (g->inflight < g->max &&
	       (d = lws_dll2_get_head(&g->queue)) != NULL) {
		lws_dll2_remove(d);
		g->retry(lws_container_of(d, struct agent_gate_slot, wait));
	}
}

/* The connection s was made for is established or ended: its slot goes
 * to the one waiting longest, from the loop (not inside this callback). */
static void
agent_gate_free(struct agent_gate *g, struct agent_gate_slot *s)
{
	if (!s->held)
		return;
	s->held = false;
	g->inflight--;
	if (g->queue.count > 0)
		lws_sul_schedule(g->ctx, 0, &g->sul_admit, agent_gate_admit_cb,
				 1);
}

static struct agent_shared *
agent_shared_of(const struct fleet_agent *a)
{
	return lws_context_user(a->ctx);
}

/* Called once per connection, whichever way it ended. */
static void
agent_disconnected(struct fleet_agent *a, const char *why)
{
	uint64_t now = clock_mono_ms();
	bool was_welcomed = a->welcomed;

	if (!a->live)
		return;
	agent_gate_free(&agent_shared_of(a)->conn_gate, &a->conn_slot);
	/* The renewal's connection is being made: it takes over (the server
	 * closes a session its device replaced; that is no failure). */
	if (a->next_live && !a->stopping) {
		agent_next_promote(a, false, why);
		return;
	}
	if (a->welcomed && now - a->established_ms >= STABLE_MS)
		backoff_reset(&a->bo);
	a->live = false;
	a->wsi = NULL;
	agent_ssl_set(a, NULL, NULL); /* one never handed to an SSL */
	if (a->stopping)
		log_write(LOG_LEVEL_INFO, a->logctx, "channel closed");
	else if (a->welcomed)
		log_write(LOG_LEVEL_WARN, a->logctx, "offline: %s", why);
	else
		log_write(LOG_LEVEL_INFO, a->logctx, "connection failed: %s",
			  why);
	snprintf(a->last_error, sizeof(a->last_error), "%s", why);
	a->welcomed = false;
	a->ping_due = false;
	/* Whatever was not acknowledged goes again on the next connection. */
	agent_outbox_reset(&a->outbox);
	a->config_report_sent = false;
	free(a->hello);
	a->hello = NULL;
	buf_free(&a->rx);
	lws_sul_cancel(&a->sul_watchdog);
	a->cert_report_sent = false;
	agent_mem_reports_unsent(a);
	agent_status_write(a);
	if (a->stopping || !agent_cert_retry(a, why, was_welcomed))
		agent_schedule_retry(a);
}

/*
 * lws's own idle check off: the watchdog (heartbeat, "server silent")
 * is the agent's. lws's default re-arms a validity timer on every frame
 * received, and inserting it walks the sorted timer list of the whole
 * context: O(devices) per frame in fleet-sim (docs/internals/perf.md).
 */
static const lws_retry_bo_t agent_idle_policy = {
	.secs_since_valid_ping = 0,
	.secs_since_valid_hangup = 0,
};

/* Where and how a connection of a goes; *pwsi gets its wsi. */
static void
agent_connect_info(struct fleet_agent *a, struct lws_client_connect_info *ip,
		   struct lws **pwsi)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = a->ctx;
	i.vhost = a->vh;
	i.address = a->address;
	i.port = a->port;
	i.path = a->path;
	i.host = a->host;
	i.origin = a->host;
	i.protocol = FLEET_AGENT_SUBPROTOCOL;
	i.ssl_connection = LCCSCF_USE_SSL;
	i.alpn = "http/1.1";
	i.opaque_user_data = a;
	i.pwsi = pwsi;
	i.retry_and_idle_policy = &agent_idle_policy;
	*ip = i;
}

static void
agent_connect_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet_agent *a =
		lws_container_of(sul, struct fleet_agent, sul_connect);
	struct lws_client_connect_info i;
	struct lws *wsi;

	if (a->stopping || a->live)
		return;
	if (!agent_gate_take(&agent_shared_of(a)->conn_gate, &a->conn_slot))
		return; /* agent_conn_retry calls again */
	agent_connect_info(a, &i, &a->wsi);
	a->attempts++;
	a->live = true;
	a->welcomed = false;
	/* The identity this connection presents (renew.c). */
	if (agent_ssl_identity(a) != 0) {
		agent_disconnected(a, "identity files do not load");
		return;
	}
	log_write(LOG_LEVEL_DEBUG, a->logctx,
		  "connecting to %s:%d (attempt %" PRIu64 ")", a->address,
		  a->port, a->attempts);
	agent_status_write(a);
	wsi = lws_client_connect_via_info(&i);
	if (wsi == NULL)
		agent_disconnected(a, "connect failed");
}

/* A connect slot is free for the agent waiting longest (conn_gate). */
static void
agent_conn_retry(struct agent_gate_slot *slot)
{
	struct fleet_agent *a =
		lws_container_of(slot, struct fleet_agent, conn_slot);

	agent_connect_cb(&a->sul_connect);
}

static void
agent_watchdog_arm(struct fleet_agent *a)
{
	int s = a->heartbeat_s / 2 > 1 ? a->heartbeat_s / 2 : 1;

	agent_timer(a->ctx, &a->sul_watchdog, agent_watchdog_cb,
		    (lws_usec_t)s * LWS_US_PER_SEC);
}

/*
 * Once per watchdog period while online: reports the server did not
 * answer for a while, or asked us to retry, go again (the server applies
 * a seq once, so a second copy is harmless); and reports queued by
 * `fleet-agent report` while we run are picked up.
 */
static void
agent_reports_tick(struct fleet_agent *a)
{
	uint64_t wait = (uint64_t)a->heartbeat_s * 3000u;
	uint64_t now = clock_mono_ms();

	if (wait < RESEND_MIN_MS)
		wait = RESEND_MIN_MS;
	if (a->outbox.retry_due ||
	    (a->outbox.ninflight > 0 && now - a->progress_ms >= wait)) {
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "sending unacknowledged reports again");
		agent_outbox_reset(&a->outbox);
		a->progress_ms = now;
	}
	if (a->config_report_sent && now - a->config_report_sent_ms >= wait)
		a->config_report_sent = false;
	if (a->mem_head != NULL && a->mem_head->sent &&
	    now - a->mem_head->sent_ms >= wait)
		agent_mem_reports_unsent(a);
	if (a->outbox.ninflight < AGENT_INFLIGHT_MAX ||
	    (a->config_report != NULL && !a->config_report_sent) ||
	    agent_mem_report_unsent(a) != NULL)
		lws_callback_on_writable(a->wsi);
}

static void
agent_watchdog_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet_agent *a =
		lws_container_of(sul, struct fleet_agent, sul_watchdog);
	uint64_t idle = clock_mono_ms() - a->last_rx_ms;
	uint64_t hb_ms = (uint64_t)a->heartbeat_s * 1000u;

	if (a->wsi == NULL || a->stopping)
		return;
	if (idle > 2 * hb_ms + 10000u) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "server silent for %" PRIu64 " s, reconnecting",
			  idle / 1000u);
		lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	/* Ask for traffic: the server's pong (or anything) proves it
	 * alive. lws gives no callback for pings it answers for us. */
	if (idle >= hb_ms / 2) {
		a->ping_due = true;
		lws_callback_on_writable(a->wsi);
	}
	if (a->welcomed)
		agent_reports_tick(a);
	agent_watchdog_arm(a);
}

/* The hello frame for a new connection (caller frees), or NULL. */
static char *
agent_hello_text(struct fleet_agent *a, size_t *len)
{
	struct agent_hello h;
	json_t *addrs = agent_addresses();
	json_t *inv = agent_inventory(a->virtual_uptime);
	char config_hash[65];
	char fw_installed[129] = "";
	char *text;

	memset(&h, 0, sizeof(h));
	h.agent_version = FLEET_AGENT_VERSION;
	h.fw_version = a->fw_version;
	h.model = a->model;
	h.boot_id = a->boot_id;
	h.uptime =
		a->virtual_uptime
			? (int64_t)((clock_mono_ms() - a->created_ms) / 1000u)
			: agent_system_uptime();
	h.addresses = addrs;
	h.inventory = inv;
	agent_config_hello(a->config, &h.config_version, config_hash);
	h.config_hash = config_hash;
	h.fw_version_num =
		agent_update_fw_version_num(a->state_dir, a->fw_version_num,
					    fw_installed, sizeof(fw_installed));
	if (fw_installed[0] != '\0')
		h.fw_version = fw_installed;
	h.keyset_version =
		agent_keyset_pinned_version(a->state_dir, a->update_keys);
	text = agent_hello_build(&h, len);
	json_decref(addrs);
	json_decref(inv);
	if (text == NULL)
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "hello does not fit the protocol's limits");
	return text;
}

static int
agent_send_hello(struct fleet_agent *a)
{
	free(a->hello);
	a->hello = agent_hello_text(a, &a->hello_len);
	if (a->hello == NULL)
		return -1;
	lws_callback_on_writable(a->wsi);
	return 0;
}

static void
agent_welcome(struct fleet_agent *a, const struct proto_msg *m)
{
	const char *id = proto_str(m, "device_id");

	if (strcmp(id, a->id.device_id) != 0)
		log_write(LOG_LEVEL_WARN, a->logctx, "server calls us %s", id);
	a->heartbeat_s = (int)proto_int(m, "heartbeat_interval", 30);
	if (!a->welcomed) {
		a->welcomed = true;
		a->last_error[0] = '\0';
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "online (attempt %" PRIu64 ", heartbeat %d s)",
			  a->attempts, a->heartbeat_s);
		agent_status_write(a);
	}
	agent_watchdog_arm(a);
	/* Queued reports go out oldest first, acknowledged or not before. */
	agent_outbox_reset(&a->outbox);
	a->progress_ms = clock_mono_ms();
	agent_cert_welcome(a);
	agent_update_welcome(a->update);
	lws_callback_on_writable(a->wsi);
	if (a->welcome_hook != NULL)
		a->welcome_hook(a->hook_arg, a);
}

static void
agent_ack(struct fleet_agent *a, const struct proto_msg *m)
{
	const char *status = proto_str(m, "status");
	char err[256];
	long before = a->queued;

	agent_cert_ack(a, m->seq, status);
	if (agent_mem_report_ack(a, m->seq, status))
		return;
	if (a->config_report != NULL && m->seq == a->config_report_seq) {
		/* The in-memory config.status (fleet-sim): answered. */
		free(a->config_report);
		a->config_report = NULL;
		a->config_report_seq = 0;
		a->config_report_sent = false;
		lws_callback_on_writable(a->wsi);
		return;
	}
	if (strcmp(status, "rejected") == 0)
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "server rejected report %" PRIu64 "; dropped",
			  m->seq);
	else
		log_write(LOG_LEVEL_DEBUG, a->logctx,
			  "report %" PRIu64 " acknowledged (%s)", m->seq,
			  status);
	if (agent_outbox_ack(&a->outbox, m->seq, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, a->logctx, "%s", err);
	a->progress_ms = clock_mono_ms();
	/* A scan per ack would make draining a long queue quadratic: count
	 * down, and look again only when it seems empty (reports queued by
	 * `fleet-agent report` are not in the count). */
	if (a->queued > 1)
		a->queued--;
	else
		a->queued = agent_queue_count(a->state_dir);
	if (a->queued < 0)
		a->queued = 0;
	if (a->queued == 0 && before > 0)
		agent_status_write(a);
	lws_callback_on_writable(a->wsi);
}

static void
agent_error(struct fleet_agent *a, const struct proto_msg *m)
{
	const char *code = proto_str(m, "code");
	uint64_t seq = (uint64_t)proto_int(m, "seq", 0);

	log_write(LOG_LEVEL_WARN, a->logctx, "server error %s: %s", code,
		  proto_str(m, "message"));
	/* "bad-<type>" comes with an ack "rejected"; any other error about
	 * a report means "not now": it stays queued for the next retry. */
	if (seq > 0 && strncmp(code, "bad-", 4) != 0)
		agent_outbox_nack(&a->outbox, seq);
	if (seq > 0 && seq == a->config_report_seq)
		a->config_report_sent = false; /* again at the next tick */
	if (seq > 0 && seq == a->cert_report_seq &&
	    strncmp(code, "bad-", 4) != 0)
		a->cert_report_sent = false;
	if (seq > 0 && a->mem_head != NULL && strncmp(code, "bad-", 4) != 0) {
		struct agent_mem_report *r;

		for (r = a->mem_head; r != NULL; r = r->next)
			if (r->seq == seq)
				r->sent = false;
	}
}

/* ---- configuration delivery ------------------------------------------ */

/* The next seq of an in-memory report, from a block reserved on disk (the
 * disk queue's allocator starts above it). 0 when the state directory
 * cannot be written. */
static uint64_t
agent_config_next_seq(struct fleet_agent *a)
{
	char err[256];
	uint64_t last = 0;

	if (a->config_seq >= a->config_seq_reserved) {
		if (agent_seq_load(a->state_dir, &last, err, sizeof(err)) !=
			    0 ||
		    agent_seq_store(
			    a->state_dir,
			    (last > a->config_seq ? last : a->config_seq) +
				    CONFIG_SEQ_BLOCK,
			    err, sizeof(err)) != 0) {
			log_write(LOG_LEVEL_ERROR, a->logctx, "%s", err);
			return 0;
		}
		if (last > a->config_seq)
			a->config_seq = last;
		a->config_seq_reserved = a->config_seq + CONFIG_SEQ_BLOCK;
	}
	return ++a->config_seq;
}

/* A config.status to send: queued on disk (fleet-agent), or, in memory
 * mode, kept as the one pending status (a newer one replaces it: only the
 * latest state matters). report is consumed. */
static void
agent_config_emit(struct fleet_agent *a, json_t *report)
{
	struct proto_error perr;
	char err[256];
	uint64_t seq;

	if (report == NULL)
		return;
	if (!a->config_memory) {
		if (fleet_agent_report(a, report, err, sizeof(err)) != 0)
			log_write(LOG_LEVEL_ERROR, a->logctx,
				  "config.status not queued: %s", err);
		json_decref(report);
		return;
	}
	seq = agent_config_next_seq(a);
	if (seq == 0 ||
	    json_object_set_new(report, "seq", json_integer((json_int_t)seq)) !=
		    0) {
		json_decref(report);
		return;
	}
	free(a->config_report);
	a->config_report = proto_encode(PROTO_CONFIG_STATUS, report,
					&a->config_report_len, &perr);
	a->config_report_seq = a->config_report != NULL ? seq : 0;
	a->config_report_sent = false;
	if (a->config_report == NULL)
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "config.status not built: %s", perr.message);
	else if (a->welcomed && a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
}

static void
agent_config_on_apply(struct fleet_agent *a, const struct proto_msg *m)
{
	json_t *report = NULL;

	if (agent_config_apply(a->config, m, &report) != 0)
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "config.apply not handled (out of memory?)");
	agent_config_emit(a, report);
}

/* Re-hashes the target file: drift is reported (and restored). */
static void
agent_config_check_now(struct fleet_agent *a)
{
	json_t *reports = json_array();
	size_t i;

	if (reports == NULL)
		return;
	if (agent_config_check(a->config, reports) != 0)
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "configuration file not checked");
	for (i = 0; i < json_array_size(reports); i++)
		agent_config_emit(a, json_incref(json_array_get(reports, i)));
	json_decref(reports);
}

static void
agent_config_timer_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet_agent *a =
		lws_container_of(sul, struct fleet_agent, sul_config);
	long s = agent_config_drift_interval(a->config);

	if (a->stopping || s <= 0)
		return;
	agent_config_check_now(a);
	agent_timer(a->ctx, &a->sul_config, agent_config_timer_cb,
		    (lws_usec_t)s * LWS_US_PER_SEC);
}

/* In-memory config.status on the wire; it stays until acknowledged. */
static int
agent_send_config_report(struct fleet_agent *a, struct lws *wsi)
{
	unsigned char *frame = malloc(LWS_PRE + a->config_report_len);
	int n;

	if (frame == NULL)
		return -1;
	memcpy(frame + LWS_PRE, a->config_report, a->config_report_len);
	n = lws_write(wsi, frame + LWS_PRE, a->config_report_len,
		      LWS_WRITE_TEXT);
	free(frame);
	if (n < (int)a->config_report_len)
		return -1;
	a->config_report_sent = true;
	a->config_report_sent_ms = clock_mono_ms();
	lws_callback_on_writable(wsi); /* queued reports next */
	return 0;
}

/* ---- certificates (renew.c; docs/agent.md "Certificate renewal") ------- */

#define REFUSED_BACKOFF_S 3600 /* refused for good: ask again this rarely */
#define RENEW_JITTER_PERMILLE 50 /* up to 5% of the lifetime earlier */
#define NEW_IDENTITY_TRIES 3 /* then alternate with the old identity */

static void agent_renew_cb(lws_sorted_usec_list_t *sul);

static int
agent_certs_setup(struct fleet_agent *a, const struct fleet_agent_config *cfg,
		  char *err, size_t errlen)
{
	if (cfg->renew_at < 0.0 || cfg->renew_at >= 1.0 ||
	    cfg->renew_jitter < 0.0 || cfg->renew_jitter >= 0.5) {
		snprintf(err, errlen,
			 "renew_at is a fraction of the lifetime (0 < f < 1), "
			 "renew_jitter one under 0.5");
		return -1;
	}
	a->renew_fraction = cfg->renew_at;
	a->refused_backoff_s = cfg->refused_backoff > 0 ? cfg->refused_backoff
							: REFUSED_BACKOFF_S;
	a->reenroll = cfg->reenroll;
	a->cert_memory = cfg->cert_memory;
	a->renew_jitter =
		cfg->renew_jitter <= 0.0
			? RENEW_JITTER_PERMILLE
			: (unsigned)(cfg->renew_jitter * 1000.0 + 0.5);
	if (a->enrolled && !a->cert_memory &&
	    agent_renew_load(a->state_dir, &a->id, &a->renew, err, errlen) != 0)
		return -1;
	return 0;
}

/* The agent whose connection an SSL is: the one agent_ssl_cert_cb marked
 * it with, or before that the context's connection on its socket. NULL
 * when it has none. (lws keeps the wsi in an ex_data index of its own;
 * index 0, the "app data", is the application's.) */
static struct fleet_agent *
agent_of_ssl(const SSL *ssl)
{
	struct agent_shared *sh = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct fleet_agent *a = SSL_get_app_data(ssl);
	int fd = SSL_get_fd(ssl);
	struct lws *wsi;

	if (a != NULL)
		return a;
	if (sh == NULL || fd < 0)
		return NULL;
	wsi = wsi_from_fd(sh->ctx, fd);
	return wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
}

/* The identity a session belongs to: the installed certificate's serial
 * (FNV-1a), so that a renewal or a re-enrollment never offers the old
 * identity's session. */
static uint64_t
agent_session_tag(const struct fleet_agent *a)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (const unsigned char *p = (const unsigned char *)a->id.cert_serial;
	     *p != '\0'; p++)
		h = (h ^ *p) * UINT64_C(0x100000001b3);
	return h;
}

static void
agent_session_drop(struct fleet_agent *a)
{
	SSL_SESSION_free(a->tls_session);
	a->tls_session = NULL;
}

/* The agent's channel connection's SSL (not the renewal's), or NULL. */
static SSL *
agent_main_ssl(struct fleet_agent *a, const SSL *ssl)
{
	SSL *main_ssl = a->wsi != NULL ? lws_get_ssl(a->wsi) : NULL;

	return main_ssl == ssl ? main_ssl : NULL;
}

/* A ticket the next connection offers: one made with the identity it
 * presents (never on the renewal's connection, which presents a new
 * one). One its connection's end marked not resumable is still usable:
 * agent_session_revive. */
static bool
agent_session_usable(const struct fleet_agent *a)
{
	return a->tls_session != NULL && !a->conn_new &&
	       a->tls_session_tag == agent_session_tag(a) &&
	       SSL_SESSION_has_ticket(a->tls_session);
}

/*
 * The kept session is the one its connection holds (agent_ssl_new_session
 * takes a reference instead of a copy: a copy of a session and its ticket
 * is about 2 KiB more per idle device in fleet-sim). When that connection
 * ends without a close_notify (a server restart, a lost network: exactly
 * when resuming matters) OpenSSL marks it not resumable, a TLS 1.2-era
 * rule against truncation that TLS 1.3 (RFC 8446) dropped. Before it is
 * offered again it is then made anew from its encoding (which carries
 * the ticket, the resumption secret, the times and the server's
 * certificate, not that mark). 0, or -1 when it cannot be (then dropped).
 */
static int
agent_session_revive(struct fleet_agent *a)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	SSL_SESSION *fresh = NULL;
	int len;

	if (SSL_SESSION_is_resumable(a->tls_session))
		return 0;
	len = i2d_SSL_SESSION(a->tls_session, &der);
	if (len > 0) {
		p = der;
		fresh = d2i_SSL_SESSION(NULL, &p, len);
	}
	OPENSSL_free(der);
	if (fresh == NULL || !SSL_SESSION_is_resumable(fresh)) {
		ERR_clear_error();
		SSL_SESSION_free(fresh);
		agent_session_drop(a);
		return -1;
	}
	SSL_SESSION_free(a->tls_session);
	a->tls_session = fresh;
	return 0;
}

/*
 * A handshake starts: the channel connection offers the session of the
 * last ticket, if it was made with the identity this connection presents
 * (the renewal's connection presents a new identity: it never does).
 * fleetd resumes it (no certificate chain, no signature on either side,
 * a fresh ECDHE share still) or falls back to a full handshake.
 */
static void
agent_session_offer(const SSL *ssl)
{
	struct fleet_agent *a = agent_of_ssl(ssl);
	SSL *s;

	if (a == NULL || a->tls_session == NULL)
		return;
	s = agent_main_ssl(a, ssl);
	if (s == NULL || a->conn_new || !SSL_in_before(s))
		return;
	if (!agent_session_usable(a)) {
		agent_session_drop(a);
		return;
	}
	if (agent_session_revive(a) != 0)
		return;
	if (SSL_set_session(s, a->tls_session) != 1) {
		ERR_clear_error();
		agent_session_drop(a);
	}
}

/*
 * fleetd sent a ticket (TLS 1.3: after the handshake): keep the newest
 * for the next connection. Returns 1: we keep OpenSSL's reference to the
 * session the connection holds, no copy (agent_session_revive says why
 * that is enough); 0: not kept.
 */
static int
agent_ssl_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct fleet_agent *a = agent_of_ssl(ssl);

	if (a == NULL || agent_main_ssl(a, ssl) == NULL || a->conn_new ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(a->tls_session);
	a->tls_session = sess;
	a->tls_session_tag = agent_session_tag(a);
	return 1;
}

/* TLS alerts from the server: with TLS 1.3 the refusal of our certificate
 * comes after the handshake, and lws reports only "read failed". A
 * handshake's start: the session to offer. */
static void
agent_ssl_info(const SSL *ssl, int where, int ret)
{
	struct fleet_agent *a;

	if ((where & SSL_CB_HANDSHAKE_START) != 0) {
		agent_session_offer(ssl);
		return;
	}
	if ((where & SSL_CB_READ_ALERT) == 0)
		return;
	a = agent_of_ssl(ssl);
	if (a != NULL)
		a->tls_alert = ret & 0xff;
}

/*
 * The server asked for our certificate: this connection's agent presents
 * the identity it loaded before connecting (agent_ssl_identity). Only the
 * device certificate goes: the server holds the issuing CA(s) as its trust
 * anchors, so it needs no chain, and a chain would be parsed and kept for
 * every connection it holds. Returns 1, or 0 to fail the handshake.
 */
static int
agent_ssl_cert_cb(SSL *ssl, void *arg)
{
	struct fleet_agent *a = agent_of_ssl(ssl);
	int ok;

	(void)arg;
	if (a == NULL)
		return 0;
	/* A ticket was offered and not taken: the identity is loaded now. */
	if ((a->tls_cert == NULL || a->tls_key == NULL) &&
	    agent_ssl_load(a) != 0) {
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "identity files do not load");
		return 0;
	}
	/* The refusal of this certificate comes later, as an alert read
	 * while lws may already be closing the connection (its socket out
	 * of lws's table): agent_ssl_info finds the agent through this. */
	SSL_set_app_data(ssl, a);
	ok = SSL_use_certificate(ssl, a->tls_cert) == 1 &&
	     SSL_use_PrivateKey(ssl, a->tls_key) == 1 &&
	     SSL_check_private_key(ssl) == 1;
	/* The SSL holds its own references now. */
	X509_free(a->tls_cert);
	EVP_PKEY_free(a->tls_key);
	a->tls_cert = NULL;
	a->tls_key = NULL;
	if (!ok) {
		log_openssl(LOG_LEVEL_ERROR, "agent: client certificate");
		return 0;
	}
	return 1;
}

/* The context's client TLS context: the fleet CA as trust anchors, the
 * identity set per connection (agent_ssl_cert_cb). */
static SSL_CTX *
agent_ssl_ctx_new(struct agent_shared *sh, const char *ca_file, char *err,
		  size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "TLS context: cannot load %s", ca_file);
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* What lws sets on the client contexts it makes: it retries partial
	 * non-blocking writes from another buffer, and idle connections
	 * should hold no TLS record buffers. NO_AUTO_CHAIN: the device
	 * certificate goes alone (agent_ssl_cert_cb), not with a chain
	 * OpenSSL would build from the trust store. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_NO_AUTO_CHAIN);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_app_data(ctx, sh);
	SSL_CTX_set_info_callback(ctx, agent_ssl_info);
	SSL_CTX_set_cert_cb(ctx, agent_ssl_cert_cb, NULL);
	/* Tickets: each agent keeps its own session (agent_ssl_new_session),
	 * OpenSSL's client cache none. */
	SSL_CTX_set_session_cache_mode(
		ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, agent_ssl_new_session);
	return ctx;
}

/* The identity the next connection presents, replacing one not used. */
static void
agent_ssl_set(struct fleet_agent *a, X509 *cert, EVP_PKEY *key)
{
	X509_free(a->tls_cert);
	EVP_PKEY_free(a->tls_key);
	a->tls_cert = cert;
	a->tls_key = key;
}

/* Memory mode: the identity from PEM text and its key: the renewal's
 * pending key when the certificate is the one issued for it, else the
 * installed identity's. */
static int
agent_ssl_use_mem(struct fleet_agent *a)
{
	EVP_PKEY *key = NULL;
	struct pki_error perr;
	X509 *cert = NULL;

	if (pki_cert_parse(a->mem_cert, strlen(a->mem_cert), &cert, &perr) ==
	    PKI_OK) {
		if (a->mem_key != NULL &&
		    X509_check_private_key(cert, a->mem_key) == 1)
			key = a->mem_key;
		else if (a->mem_id_key != NULL &&
			 X509_check_private_key(cert, a->mem_id_key) == 1)
			key = a->mem_id_key;
	}
	if (key == NULL || EVP_PKEY_up_ref(key) != 1) {
		ERR_clear_error();
		X509_free(cert);
		return -1;
	}
	agent_ssl_set(a, cert, key);
	return 0;
}

/* The first certificate of a PEM file (the device's; a chain after it is
 * not sent) and the key of another. */
static int
agent_ssl_load_files(struct fleet_agent *a, const char *client,
		     const char *keyfile)
{
	BIO *bio = BIO_new_file(client, "r");
	X509 *cert =
		bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = NULL;

	BIO_free(bio);
	bio = BIO_new_file(keyfile, "r");
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (cert == NULL || key == NULL ||
	    X509_check_private_key(cert, key) != 1) {
		log_openssl(LOG_LEVEL_ERROR, "agent: identity files");
		X509_free(cert);
		EVP_PKEY_free(key);
		return -1;
	}
	agent_ssl_set(a, cert, key);
	return 0;
}

/* Loads the identity agent_ssl_identity chose. */
static int
agent_ssl_load(struct fleet_agent *a)
{
	struct agent_identity_files f;
	char key[AGENT_PATH_MAX], client[AGENT_PATH_MAX];

	if (a->cert_memory && a->mem_cert != NULL)
		return agent_ssl_use_mem(a);
	if (agent_identity_files(a->tls_gen, &f) != 0 ||
	    agent_path(key, sizeof(key), a->state_dir, f.key) != 0 ||
	    agent_path(client, sizeof(client), a->state_dir, f.client) != 0)
		return -1;
	return agent_ssl_load_files(a, client, key);
}

/*
 * Chooses the identity the next connection presents: the one
 * identity.json names, or the renewal's while it waits to be confirmed
 * (alternating with the old one if it keeps failing, so the device always
 * has one that works). It is loaded now, unless the connection offers a
 * ticket: fleetd then resumes without asking for a certificate, and
 * decoding the files would be wasted (the decoders' locks and parsing
 * were a third of fleet-sim's CPU in a reconnect storm;
 * docs/internals/tls-resumption.md). Should fleetd ask after all,
 * agent_ssl_cert_cb loads it then.
 */
static int
agent_ssl_identity(struct fleet_agent *a)
{
	a->conn_new = false;
	a->tls_gen = a->id.generation;
	if (a->cert_memory && a->mem_cert != NULL) {
		a->conn_new = true;
	} else if (a->renew.state == AGENT_RENEW_ISSUED &&
		   (a->new_failed < NEW_IDENTITY_TRIES ||
		    a->new_failed % 2 == 0)) {
		a->tls_gen = a->renew.gen;
		a->conn_new = true;
	}
	if (agent_session_usable(a)) {
		agent_ssl_set(a, NULL, NULL);
		return 0;
	}
	return agent_ssl_load(a);
}

/*
 * The handshake is done: the connection's SSL no longer needs our
 * certificate and key (no renegotiation, no post-handshake
 * authentication: neither is offered), so they are freed now instead of
 * living as long as the connection: a decoded X509, an EC key and its
 * Montgomery contexts, several KiB per idle device in fleet-sim.
 */
static void
agent_ssl_drop_identity(struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	if (ssl != NULL)
		SSL_certs_clear(ssl);
}

/* Memory mode: one cert report at a time, sent after welcome. */
static void
agent_cert_emit(struct fleet_agent *a, json_t *report)
{
	struct proto_error perr;
	uint64_t seq = agent_config_next_seq(a);
	char *text;
	size_t len;

	if (seq == 0 ||
	    json_object_set_new(report, "seq", json_integer((json_int_t)seq)) !=
		    0) {
		json_decref(report);
		return;
	}
	text = proto_encode(
		proto_lookup(json_string_value(json_object_get(report, "type")),
			     PROTO_TO_SERVER)
			->type,
		report, &len, &perr);
	if (text == NULL) {
		log_write(LOG_LEVEL_ERROR, a->logctx, "cert report: %s",
			  perr.message);
		return;
	}
	free(a->cert_report);
	a->cert_report = text;
	a->cert_report_len = len;
	a->cert_report_seq = seq;
	a->cert_report_sent = false;
	if (a->welcomed && a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
}

static int
agent_send_cert_report(struct fleet_agent *a, struct lws *wsi)
{
	unsigned char *frame = malloc(LWS_PRE + a->cert_report_len);
	int n;

	if (frame == NULL)
		return -1;
	memcpy(frame + LWS_PRE, a->cert_report, a->cert_report_len);
	n = lws_write(wsi, frame + LWS_PRE, a->cert_report_len, LWS_WRITE_TEXT);
	free(frame);
	if (n < (int)a->cert_report_len)
		return -1;
	a->cert_report_sent = true;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Starts a renewal (reason "renew" or "rotate"). */
static void
agent_renew_begin(struct fleet_agent *a, const char *reason,
		  const char *rotation_id)
{
	struct pki_error perr;
	char err[256], *csr = NULL;
	size_t len;
	json_t *msg;

	if (a->cert_memory) {
		if (a->mem_key != NULL && a->cert_report != NULL)
			return; /* one at a time */
		EVP_PKEY_free(a->mem_key);
		a->mem_key = NULL;
		if (pki_key_generate(PKI_KEY_P256, &a->mem_key, &perr) !=
			    PKI_OK ||
		    pki_csr_create(a->mem_key, a->id.device_id, &csr, &len,
				   &perr) != PKI_OK) {
			log_write(LOG_LEVEL_ERROR, a->logctx, "renewal: %s",
				  perr.msg);
			return;
		}
		msg = json_pack("{s:s, s:s, s:s}", "type", "cert.csr", "csr",
				csr, "reason", reason);
		free(csr);
		if (msg != NULL && rotation_id != NULL)
			json_object_set_new(msg, "rotation_id",
					    json_string(rotation_id));
		if (msg != NULL)
			agent_cert_emit(a, msg);
		return;
	}
	if (a->renew.state != AGENT_RENEW_NONE) {
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "a renewal is under way already");
		return;
	}
	if (agent_renew_start(a->state_dir, &a->id, reason, rotation_id,
			      &a->renew, err, sizeof(err)) != 0) {
		log_write(LOG_LEVEL_ERROR, a->logctx, "renewal: %s", err);
		return;
	}
	log_write(
		LOG_LEVEL_INFO, a->logctx,
		"renewing the certificate (%s): new key, cert.csr seq %" PRIu64,
		reason, a->renew.csr_seq);
	a->queued++;
	if (a->welcomed && a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
}

/* When the current certificate is due for renewal (2/3 of its life). */
static void
agent_renew_schedule(struct fleet_agent *a)
{
	struct agent_identity_files f;
	char path[AGENT_PATH_MAX];
	int64_t nb, due, now = clock_wall_s();
	int64_t delay;

	if (a->cert_memory || a->ctx == NULL ||
	    agent_identity_files(a->id.generation, &f) != 0 ||
	    agent_path(path, sizeof(path), a->state_dir, f.cert) != 0)
		return;
	nb = agent_cert_not_before(path);
	if (nb <= 0)
		return;
	due = agent_renew_due(nb, a->id.not_after, a->renew_fraction,
			      a->renew_jitter);
	a->renew_due_at = due;
	delay = due > now ? due - now : 1;
	if (delay > 86400)
		delay = 86400; /* look again daily */
	agent_timer(a->ctx, &a->sul_renew, agent_renew_cb,
		    (lws_usec_t)delay * LWS_US_PER_SEC);
}

static void
agent_renew_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet_agent *a =
		lws_container_of(sul, struct fleet_agent, sul_renew);

	if (a->stopping)
		return;
	if (a->renew_due_at > 0 && a->renew_due_at <= clock_wall_s() &&
	    a->renew.state == AGENT_RENEW_NONE)
		agent_renew_begin(a, "renew", NULL);
	else if (a->renew.state == AGENT_RENEW_NONE)
		agent_renew_schedule(a);
}

static void
agent_cert_rotate(struct fleet_agent *a, const struct proto_msg *m)
{
	log_write(LOG_LEVEL_INFO, a->logctx, "server asks for a rotation (%s)",
		  proto_str(m, "reason"));
	agent_renew_begin(a, "rotate", proto_str(m, "rotation_id"));
}

/* Closes the connection and connects again at once (not a failure). */
static void
agent_reconnect_now(struct fleet_agent *a)
{
	if (a->wsi == NULL)
		return;
	a->new_failed = 0;
	a->reconnect_planned = true;
	/* Planned, not a failure: if the new connection fails, retry from
	 * the first backoff step, not from where earlier failures left it. */
	backoff_reset(&a->bo);
	lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void
agent_cert_issued(struct fleet_agent *a, const struct proto_msg *m)
{
	const char *pem = proto_str(m, "certificate");
	struct pki_error perr;
	char err[256];
	X509 *cert = NULL;
	int rc;

	if (a->cert_memory) {
		if (a->mem_key == NULL ||
		    pki_cert_parse(pem, strlen(pem), &cert, &perr) != PKI_OK ||
		    X509_check_private_key(cert, a->mem_key) != 1) {
			X509_free(cert);
			ERR_clear_error();
			return;
		}
		X509_free(cert);
		free(a->mem_cert);
		a->mem_cert = strdup(pem);
		free(a->cert_report); /* the csr is answered */
		a->cert_report = NULL;
		a->cert_report_seq = 0;
		snprintf(a->renew.serial, sizeof(a->renew.serial), "%s",
			 proto_str(m, "serial"));
		snprintf(a->renew.previous_serial,
			 sizeof(a->renew.previous_serial), "%s",
			 a->id.cert_serial);
		snprintf(a->renew.rotation_id, sizeof(a->renew.rotation_id),
			 "%s",
			 proto_str(m, "rotation_id") != NULL
				 ? proto_str(m, "rotation_id")
				 : "");
		backoff_reset(&a->bo_next);
		agent_renew_connect(a);
		return;
	}
	rc = agent_renew_issued(a->state_dir, &a->id, &a->renew, m, err,
				sizeof(err));
	if (rc < 0) {
		log_write(LOG_LEVEL_ERROR, a->logctx, "%s", err);
		return;
	}
	if (rc > 0)
		return; /* not for the pending key */
	log_write(LOG_LEVEL_INFO, a->logctx,
		  "new certificate %s received; connecting with it",
		  a->renew.serial);
	backoff_reset(&a->bo_next);
	agent_renew_connect(a);
}

/* ---- make-before-break: the renewal's connection beside the session ---- */

static void agent_next_cb(lws_sorted_usec_list_t *sul);

/* A renewal's certificate waits to be presented. */
static bool
agent_renew_pending(const struct fleet_agent *a)
{
	if (a->cert_memory)
		return a->mem_key != NULL && a->mem_cert != NULL &&
		       a->renew.serial[0] != '\0';
	return a->renew.state == AGENT_RENEW_ISSUED;
}

/* The identity the renewal's connection presents. */
static int
agent_ssl_identity_new(struct fleet_agent *a)
{
	struct agent_identity_files f;
	char key[AGENT_PATH_MAX], client[AGENT_PATH_MAX];

	if (a->cert_memory)
		return agent_ssl_use_mem(a);
	if (agent_identity_files(a->renew.gen, &f) != 0 ||
	    agent_path(key, sizeof(key), a->state_dir, f.key) != 0 ||
	    agent_path(client, sizeof(client), a->state_dir, f.client) != 0)
		return -1;
	return agent_ssl_load_files(a, client, key);
}

/* The renewal's connection ended before its welcome: the session in use
 * goes on with the old identity, and the new one is tried again later. */
static void
agent_next_failed(struct fleet_agent *a, const char *why)
{
	uint32_t ms;

	if (!a->next_live)
		return;
	a->next_live = false;
	a->next_established = false;
	a->wsi_next = NULL;
	free(a->hello_next);
	a->hello_next = NULL;
	buf_free(&a->rx_next);
	agent_ssl_set(a, NULL, NULL); /* one never handed to an SSL */
	ERR_clear_error();
	a->tls_alert = 0;
	a->new_failed++;
	agent_gate_free(&agent_shared_of(a)->next_gate, &a->next_slot);
	if (a->stopping)
		return;
	ms = backoff_next(&a->bo_next);
	log_write(LOG_LEVEL_WARN, a->logctx,
		  "the connection with the new certificate failed (%s); "
		  "the current session stays, trying again in %u ms",
		  why, ms);
	agent_timer(a->ctx, &a->sul_next, agent_next_cb,
		    (lws_usec_t)ms * LWS_US_PER_MS);
}

/* Opens the renewal's connection while the current session stays up
 * (it is closed once the new one is welcomed). Not welcomed yet, or
 * offline: the next connection of the session presents the new identity
 * anyway (agent_ssl_identity), or agent_cert_welcome calls again. */
static void
agent_renew_connect(struct fleet_agent *a)
{
	struct agent_shared *sh = lws_context_user(a->ctx);
	struct lws_client_connect_info i;

	if (a->stopping || a->next_live || !agent_renew_pending(a) ||
	    !a->welcomed || a->wsi == NULL)
		return;
	if (!agent_gate_take(&sh->next_gate, &a->next_slot))
		return; /* agent_next_retry calls again */
	if (agent_ssl_identity_new(a) != 0) {
		agent_gate_free(&sh->next_gate, &a->next_slot);
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "the new identity does not load");
		return;
	}
	agent_connect_info(a, &i, &a->wsi_next);
	a->attempts++;
	a->next_live = true;
	a->next_established = false;
	log_write(LOG_LEVEL_DEBUG, a->logctx,
		  "connecting with the new certificate beside the session");
	if (lws_client_connect_via_info(&i) == NULL)
		agent_next_failed(a, "connect failed");
}

/* A renewal slot is free for the agent waiting longest (next_gate). */
static void
agent_next_retry(struct agent_gate_slot *slot)
{
	struct fleet_agent *a =
		lws_container_of(slot, struct fleet_agent, next_slot);

	agent_renew_connect(a); /* no longer due: takes no slot */
}

static void
agent_next_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet_agent *a =
		lws_container_of(sul, struct fleet_agent, sul_next);

	agent_renew_connect(a);
}

/*
 * The renewal's connection becomes the session: it was welcomed
 * (close_old: the old session is closed now; the server may have done so
 * already, "replaced by a newer session"), or the old session ended
 * while it was being made. What was in flight on the old session is sent
 * again on the new one, as after any reconnect.
 */
static void
agent_next_promote(struct fleet_agent *a, bool close_old, const char *why)
{
	struct lws *old = a->wsi;

	if (old != NULL && close_old) {
		/* Its callbacks from now on name no agent. */
		lws_set_opaque_user_data(old, NULL);
		lws_set_timeout(old, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
	log_write(LOG_LEVEL_INFO, a->logctx,
		  "the connection with the new certificate takes over (%s)",
		  why);
	a->welcomed = false;
	a->ping_due = false;
	a->peer_close = 0;
	a->tls_alert = 0;
	agent_outbox_reset(&a->outbox);
	a->config_report_sent = false;
	a->cert_report_sent = false;
	agent_mem_reports_unsent(a);
	lws_sul_cancel(&a->sul_watchdog);
	free(a->hello);
	a->hello = a->hello_next;
	a->hello_len = a->hello_next_len;
	a->hello_next = NULL;
	buf_free(&a->rx);
	a->rx = a->rx_next;
	buf_init(&a->rx_next, RX_MAX);
	a->wsi = a->wsi_next;
	a->wsi_next = NULL;
	a->next_live = false;
	a->conn_new = true;
	agent_gate_free(&agent_shared_of(a)->next_gate, &a->next_slot);
	if (a->next_established) {
		a->established_ms = a->last_rx_ms = clock_mono_ms();
		a->heartbeat_s = DEFAULT_HEARTBEAT_S;
		agent_watchdog_arm(a);
		if (a->hello != NULL)
			lws_callback_on_writable(a->wsi);
	}
	a->next_established = false;
}

/* A message on the renewal's connection: only its welcome matters (it
 * answers the hello); the connection then becomes the session. */
static int
agent_next_receive(struct fleet_agent *a, struct lws *wsi, const void *in,
		   size_t len)
{
	struct proto_error perr;
	struct proto_msg m;
	int rc;

	if (buf_append(&a->rx_next, in, len) != 0) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL,
				 0);
		return -1;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	memset(&m, 0, sizeof(m));
	rc = proto_decode(a->rx_next.data != NULL ? a->rx_next.data : "",
			  a->rx_next.len, PROTO_TO_AGENT, &m, &perr);
	buf_free(&a->rx_next);
	if (rc != PROTO_OK) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "message on the new connection refused (%s): %s",
			  perr.code, perr.message);
		return 0;
	}
	if (m.def->type == PROTO_WELCOME) {
		agent_next_promote(a, true, "welcomed");
		a->last_rx_ms = clock_mono_ms();
		agent_welcome(a, &m);
	} else {
		log_write(LOG_LEVEL_DEBUG, a->logctx,
			  "%s before welcome on the new connection: ignored",
			  m.def->name);
	}
	proto_msg_clear(&m);
	return 0;
}

/* lws callbacks of the renewal's connection (a->wsi_next). */
static int
agent_next_callback(struct fleet_agent *a, struct lws *wsi,
		    enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	unsigned char *frame;
	char why[160];
	int n;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(why, sizeof(why), "%.120s",
			 in != NULL ? (const char *)in : "connect error");
		agent_next_failed(a, why);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		agent_ssl_drop_identity(wsi);
		a->next_established = true;
		free(a->hello_next);
		a->hello_next = agent_hello_text(a, &a->hello_next_len);
		if (a->hello_next == NULL)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (a->hello_next == NULL)
			return 0;
		frame = malloc(LWS_PRE + a->hello_next_len);
		if (frame == NULL)
			return -1;
		memcpy(frame + LWS_PRE, a->hello_next, a->hello_next_len);
		n = lws_write(wsi, frame + LWS_PRE, a->hello_next_len,
			      LWS_WRITE_TEXT);
		free(frame);
		if (n < (int)a->hello_next_len)
			return -1;
		free(a->hello_next);
		a->hello_next = NULL;
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return agent_next_receive(a, wsi, in, len);
	case LWS_CALLBACK_CLIENT_CLOSED:
		agent_next_failed(a, "connection closed");
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		agent_next_failed(a, "connection lost");
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* Welcome: a session with the renewal's certificate confirms it. */
static void
agent_cert_welcome(struct fleet_agent *a)
{
	char err[256], *text = NULL;
	size_t len;
	json_t *msg;

	a->refused[0] = '\0';
	a->new_failed = 0;
	if (a->cert_memory) {
		if (a->conn_new && a->renew.serial[0] != '\0') {
			msg = json_pack("{s:s, s:s, s:s}", "type",
					"cert.installed", "serial",
					a->renew.serial, "previous_serial",
					a->renew.previous_serial);
			if (msg != NULL && a->renew.rotation_id[0] != '\0')
				json_object_set_new(
					msg, "rotation_id",
					json_string(a->renew.rotation_id));
			snprintf(a->id.cert_serial, sizeof(a->id.cert_serial),
				 "%s", a->renew.serial);
			memset(&a->renew, 0, sizeof(a->renew));
			/* The key of the identity in use from now on
			 * (agent_ssl_use_mem); none pending. */
			EVP_PKEY_free(a->mem_id_key);
			a->mem_id_key = a->mem_key;
			a->mem_key = NULL;
			a->renewals++;
			if (msg != NULL)
				agent_cert_emit(a, msg);
		}
		return;
	}
	if (a->conn_new && a->renew.state == AGENT_RENEW_ISSUED) {
		if (agent_renew_commit(a->state_dir, &a->id, &a->renew, err,
				       sizeof(err)) != 0) {
			log_write(LOG_LEVEL_ERROR, a->logctx, "renewal: %s",
				  err);
			return;
		}
		a->queued++;
		a->renewals++;
		agent_log_ctx(a);
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "renewed: certificate %s in use (was %s)",
			  a->id.cert_serial, a->renew.previous_serial);
		agent_status_write(a);
	} else if (a->renew.state == AGENT_RENEW_CSR &&
		   agent_queue_read(a->state_dir, a->renew.csr_seq, &text, &len,
				    err, sizeof(err)) == 0) {
		/* Acknowledged, but its cert.issued was lost: ask again
		 * for the same key. */
		if (agent_renew_resend(a->state_dir, &a->id, &a->renew, err,
				       sizeof(err)) == 0)
			a->queued++;
	} else if (a->renew.state == AGENT_RENEW_ISSUED) {
		/* Welcomed with the old identity (the new one failed a few
		 * times): try the new one beside this session. */
		agent_renew_connect(a);
	}
	free(text);
	agent_renew_schedule(a);
}

static void
agent_cert_ack(struct fleet_agent *a, uint64_t seq, const char *status)
{
	if (a->cert_memory) {
		if (seq == a->cert_report_seq && a->cert_report != NULL &&
		    strcmp(status, "rejected") != 0 &&
		    a->renew.serial[0] == '\0' && a->mem_key == NULL) {
			free(a->cert_report);
			a->cert_report = NULL;
			a->cert_report_seq = 0;
		} else if (seq == a->cert_report_seq &&
			   strcmp(status, "rejected") == 0) {
			free(a->cert_report);
			a->cert_report = NULL;
			a->cert_report_seq = 0;
			EVP_PKEY_free(a->mem_key);
			a->mem_key = NULL;
		}
		return;
	}
	if (a->renew.state == AGENT_RENEW_INSTALLED &&
	    seq == a->renew.installed_seq) {
		log_write(LOG_LEVEL_INFO, a->logctx,
			  "renewal confirmed; the previous key is deleted");
		agent_renew_finish(a->state_dir, &a->renew);
	} else if (a->renew.state == AGENT_RENEW_CSR &&
		   seq == a->renew.csr_seq && strcmp(status, "rejected") == 0) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "the server refused the renewal; the current "
			  "identity stays");
		agent_identity_remove_generation(a->state_dir, a->renew.gen);
		agent_renew_finish(a->state_dir, &a->renew);
	}
}

/* Why the server refused this device for good, from the way the
 * connection ended; NULL when it did not. */
static const char *
agent_refusal(struct fleet_agent *a, const char *why)
{
	unsigned long e = ERR_peek_last_error();

	if (a->peer_close == 1008 &&
	    (strstr(a->peer_reason, "revoked") != NULL ||
	     strstr(a->peer_reason, "not active") != NULL ||
	     strstr(a->peer_reason, "superseded") != NULL))
		return a->peer_reason;
	if (a->tls_alert == SSL_AD_CERTIFICATE_REVOKED ||
	    (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	     ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED) ||
	    strstr(why, "revoked") != NULL)
		return "TLS handshake refused: certificate revoked";
	return NULL;
}

/* Drops the refused identity and enrolls again with the token. */
static int
agent_reenroll(struct fleet_agent *a)
{
	char from[AGENT_PATH_MAX], to[AGENT_PATH_MAX], err[256];
	bool permanent = false;

	if (agent_path(from, sizeof(from), a->state_dir, AGENT_IDENTITY_FILE) !=
		    0 ||
	    agent_path(to, sizeof(to), a->state_dir, "identity.refused.json") !=
		    0 ||
	    rename(from, to) != 0)
		return -1;
	agent_identity_remove_generation(a->state_dir, a->id.generation);
	if (a->id.generation != 0)
		agent_identity_remove_generation(a->state_dir, 0);
	memset(&a->renew, 0, sizeof(a->renew));
	a->enrolled = false;
	if (fleet_agent_enroll(a, &permanent, err, sizeof(err)) != 0) {
		log_write(LOG_LEVEL_ERROR, a->logctx, "enrolling again: %s",
			  err);
		return -1;
	}
	log_write(LOG_LEVEL_INFO, a->logctx,
		  "enrolled again as device %s after the refusal",
		  a->id.device_id);
	a->refused[0] = '\0';
	return 0;
}

/* After a connection ended: true when this took care of the next
 * attempt (refused for good, or a planned reconnect). */
static bool
agent_cert_retry(struct fleet_agent *a, const char *why, bool was_welcomed)
{
	const char *refusal = a->conn_new ? NULL : agent_refusal(a, why);
	bool est_due = !a->cert_memory && agent_est_due(&a->id, a->tls_alert);

	ERR_clear_error();
	a->peer_close = 0;
	a->tls_alert = 0;
	if (a->reconnect_planned) {
		a->reconnect_planned = false;
		agent_timer(a->ctx, &a->sul_connect, agent_connect_cb,
			    LWS_US_PER_MS);
		return true;
	}
	if (a->conn_new && !was_welcomed)
		a->new_failed++;
	/* Refused for an expired certificate: renew over EST, then again. */
	if (est_due && !was_welcomed && refusal == NULL &&
	    agent_est_try(a) == 0) {
		agent_timer(a->ctx, &a->sul_connect, agent_connect_cb,
			    LWS_US_PER_MS);
		return true;
	}
	if (refusal == NULL)
		return false;
	/* Refused: nothing of this session is offered again. */
	agent_session_drop(a);
	snprintf(a->refused, sizeof(a->refused), "%s", refusal);
	snprintf(a->last_error, sizeof(a->last_error),
		 "refused by the server: %s", refusal);
	log_write(LOG_LEVEL_ERROR, a->logctx, "%s", a->last_error);
	if (a->reenroll && (a->token != NULL || a->token_file != NULL) &&
	    agent_reenroll(a) == 0) {
		agent_status_write(a);
		agent_timer(a->ctx, &a->sul_connect, agent_connect_cb,
			    LWS_US_PER_MS);
		return true;
	}
	agent_status_write(a);
	log_write(LOG_LEVEL_WARN, a->logctx,
		  "not asking again for %ld s (refused)", a->refused_backoff_s);
	agent_timer(a->ctx, &a->sul_connect, agent_connect_cb,
		    (lws_usec_t)a->refused_backoff_s * LWS_US_PER_SEC);
	return true;
}

/* update.keys: a rotated release key set, adopted only when the set pinned
 * now signed it (keyset.c); the answer is a queued keys.status report. */
static void
agent_keys_on_update(struct fleet_agent *a, const struct proto_msg *m)
{
	json_t *report = NULL;
	const char *reason;
	char err[256];

	if (agent_keyset_on_update_keys(a->state_dir, a->update_keys,
					a->update_threshold, m, &report) != 0) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "update.keys not handled (out of memory?)");
		return;
	}
	reason = json_string_value(json_object_get(report, "reason"));
	log_write(LOG_LEVEL_INFO, a->logctx, "release key set %lld: %s %s",
		  (long long)json_integer_value(
			  json_object_get(report, "version")),
		  json_string_value(json_object_get(report, "state")),
		  reason != NULL ? reason : "");
	if (fleet_agent_report(a, report, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "keys.status not queued: %s", err);
	json_decref(report);
}

/* An offer to an agent that pins no release keys: nothing can verify
 * it, so it is refused (reported, so fleetd stops offering it). */
static void
agent_update_refuse_unpinned(struct fleet_agent *a, const struct proto_msg *m)
{
	char err[256];
	json_t *r;

	log_write(LOG_LEVEL_WARN, a->logctx,
		  "update offer refused: no update_keys configured");
	r = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "type", "update.status",
		      "state", "refused", "version",
		      (json_int_t)proto_int(m, "version", 0), "sha256",
		      proto_str(m, "sha256"), "reason", "unknown-key", "error",
		      "this device pins no release keys (update_keys)");
	if (r != NULL && proto_str(m, "deployment_id") != NULL)
		json_object_set_new(r, "deployment_id",
				    json_string(proto_str(m, "deployment_id")));
	if (r != NULL && fleet_agent_report(a, r, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, a->logctx, "%s", err);
	json_decref(r);
}

static void
agent_handle_message(struct fleet_agent *a, const char *text, size_t len)
{
	struct proto_error err;
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	if (proto_decode(text, len, PROTO_TO_AGENT, &m, &err) != PROTO_OK) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "message from server refused (%s): %s", err.code,
			  err.message);
		return;
	}
	switch (m.def->type) {
	case PROTO_WELCOME:
		agent_welcome(a, &m);
		break;
	case PROTO_ACK:
		agent_ack(a, &m);
		break;
	case PROTO_ERROR:
		agent_error(a, &m);
		break;
	case PROTO_CONFIG_APPLY:
		agent_config_on_apply(a, &m);
		break;
	case PROTO_CERT_ROTATE:
		agent_cert_rotate(a, &m);
		break;
	case PROTO_CERT_ISSUED:
		agent_cert_issued(a, &m);
		break;
	case PROTO_UPDATE_KEYS:
		agent_keys_on_update(a, &m);
		break;
	case PROTO_UPDATE_OFFER:
		if (a->update_offer_hook != NULL)
			a->update_offer_hook(a->hook_arg, a, m.body);
		else if (a->update != NULL)
			agent_update_offer(a->update, &m);
		else
			agent_update_refuse_unpinned(a, &m);
		break;
	default:
		/* config.apply, update.offer, cert.*, cmd: later issues */
		log_write(LOG_LEVEL_DEBUG, a->logctx,
			  "ignoring message type %s", m.def->name);
		break;
	}
	proto_msg_clear(&m);
}

/* Sends the next queued report; it stays queued until acknowledged. */
static int
agent_send_queued(struct fleet_agent *a, struct lws *wsi)
{
	char err[256], *text = NULL;
	unsigned char *frame;
	uint64_t seq;
	size_t len;
	int n, skipped = 0;

	n = agent_outbox_next(&a->outbox, &seq, &text, &len, &skipped, err,
			      sizeof(err));
	if (skipped > 0)
		log_write(LOG_LEVEL_ERROR, a->logctx,
			  "%d unreadable or invalid queued report(s) moved "
			  "aside (queue/*.bad)",
			  skipped);
	if (n <= 0) {
		if (n < 0)
			log_write(LOG_LEVEL_ERROR, a->logctx, "%s", err);
		return 0;
	}
	frame = malloc(LWS_PRE + len);
	if (frame == NULL) {
		free(text);
		return -1;
	}
	memcpy(frame + LWS_PRE, text, len);
	free(text);
	n = lws_write(wsi, frame + LWS_PRE, len, LWS_WRITE_TEXT);
	free(frame);
	if (n < (int)len)
		return -1;
	log_write(LOG_LEVEL_DEBUG, a->logctx, "report %" PRIu64 " sent", seq);
	if (a->outbox.ninflight == 1)
		a->progress_ms = clock_mono_ms();
	/* Fill the window: the next writable finds the next report. */
	lws_callback_on_writable(wsi);
	return 0;
}

static int
agent_writeable(struct fleet_agent *a, struct lws *wsi)
{
	unsigned char ping[LWS_PRE + 1];
	unsigned char *frame;
	int n;

	if (a->hello != NULL) {
		frame = malloc(LWS_PRE + a->hello_len);
		if (frame == NULL)
			return -1;
		memcpy(frame + LWS_PRE, a->hello, a->hello_len);
		n = lws_write(wsi, frame + LWS_PRE, a->hello_len,
			      LWS_WRITE_TEXT);
		free(frame);
		if (n < (int)a->hello_len)
			return -1;
		free(a->hello);
		a->hello = NULL;
		if (a->ping_due)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (a->ping_due) {
		a->ping_due = false;
		if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
			return -1;
		if (a->welcomed)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (a->welcomed && a->cert_report != NULL && !a->cert_report_sent)
		return agent_send_cert_report(a, wsi);
	if (a->welcomed && a->config_report != NULL && !a->config_report_sent)
		return agent_send_config_report(a, wsi);
	if (a->welcomed && agent_mem_report_unsent(a) != NULL)
		return agent_send_mem_report(a, wsi);
	if (a->welcomed)
		return agent_send_queued(a, wsi);
	return 0;
}

static int
agent_receive(struct fleet_agent *a, struct lws *wsi, const void *in,
	      size_t len)
{
	a->last_rx_ms = clock_mono_ms();
	if (buf_append(&a->rx, in, len) != 0) {
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "message from server too big, closing");
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL,
				 0);
		return -1;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	agent_handle_message(a, a->rx.data != NULL ? a->rx.data : "",
			     a->rx.len);
	/* Idle agents hold no receive buffer. */
	buf_free(&a->rx);
	return 0;
}

static int
agent_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	       void *in, size_t len)
{
	struct fleet_agent *a =
		wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
	char why[160];

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED && wsi != NULL) {
		struct agent_shared *sh =
			lws_context_user(lws_get_context(wsi));

		/* The update worker queued a report: send it now. */
		for (a = sh != NULL ? sh->wake : NULL; a != NULL;
		     a = a->wake_next)
			if (a->welcomed && a->wsi != NULL)
				lws_callback_on_writable(a->wsi);
		return 0;
	}
	if (a == NULL)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	/* The renewal's connection (lws sets wsi_next before any callback
	 * of it that names the agent). */
	if (a->next_live && wsi != a->wsi && wsi == a->wsi_next)
		return agent_next_callback(a, wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* in is lws's NUL-terminated reason, or NULL */
		snprintf(why, sizeof(why), "%.120s",
			 in != NULL ? (const char *)in : "connect error");
		if (a->wsi == wsi || a->wsi == NULL)
			agent_disconnected(a, why);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		agent_gate_free(&agent_shared_of(a)->conn_gate, &a->conn_slot);
		agent_ssl_drop_identity(wsi);
		/* A resumed session never asked for the identity loaded
		 * for it. */
		agent_ssl_set(a, NULL, NULL);
		if (SSL_session_reused(lws_get_ssl(wsi)) == 1)
			log_write(LOG_LEVEL_DEBUG, a->logctx,
				  "TLS session resumed");
		a->established_ms = a->last_rx_ms = clock_mono_ms();
		a->heartbeat_s = DEFAULT_HEARTBEAT_S;
		if (agent_send_hello(a) != 0)
			return -1;
		agent_watchdog_arm(a);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return agent_receive(a, wsi, in, len);
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		a->last_rx_ms = clock_mono_ms();
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* in: the close payload (code, reason): why we were closed */
		if (in != NULL && len >= 2) {
			const unsigned char *p = in;

			a->peer_close = (p[0] << 8) | p[1];
			snprintf(a->peer_reason, sizeof(a->peer_reason), "%.*s",
				 (int)(len - 2 < 120 ? len - 2 : 120),
				 (const char *)in + 2);
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return agent_writeable(a, wsi);
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (a->wsi == wsi || a->wsi == NULL)
			agent_disconnected(a, "connection closed");
		/* Replaced by the renewal's connection: no more of it. */
		if (a->wsi != wsi)
			lws_set_opaque_user_data(wsi, NULL);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* Some failures end a connection with no other callback. */
		if (a->live && (a->wsi == wsi || a->wsi == NULL))
			agent_disconnected(a, "connection lost");
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/*
 * The context's client vhost and TLS context, made by the first agent
 * started in it. One context trusts one CA file: an agent with another
 * is refused (it would verify the server against the wrong anchors).
 */
static int
agent_shared_vhost(struct lws_context *ctx, const char *ca_file, char *err,
		   size_t errlen)
{
	struct agent_shared *sh = lws_context_user(ctx);
	struct lws_context_creation_info info;

	if (sh == NULL || sh->ctx != ctx) {
		snprintf(err, errlen,
			 "the lws context was not made by "
			 "fleet_agent_context_new");
		return -1;
	}
	if (sh->vh != NULL) {
		if (strcmp(sh->ca_file, ca_file) == 0)
			return 0;
		snprintf(err, errlen,
			 "agents of one context must trust one CA file "
			 "(%s, not %s)",
			 sh->ca_file, ca_file);
		return -1;
	}
	if (sh->ssl_ctx == NULL)
		sh->ssl_ctx = agent_ssl_ctx_new(sh, ca_file, err, errlen);
	if (sh->ssl_ctx == NULL)
		return -1;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols =
		sh->wheel != NULL ? agent_protocols_many : agent_protocols;
	/* Trust the fleet CA only, not the OS store (which would also cost
	 * ~1 MiB per vhost). Our own client context: each connection
	 * presents its agent's identity (agent_ssl_cert_cb). */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	info.vhost_name = "fleet-agent";
	info.ssl_client_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	info.provided_client_ssl_ctx = sh->ssl_ctx;
	info.gid = -1;
	info.uid = -1;
	sh->vh = lws_create_vhost(ctx, &info);
	if (sh->vh == NULL) {
		snprintf(err, errlen, "cannot create the client vhost");
		return -1;
	}
	sh->ca_file = strdup(ca_file);
	if (sh->ca_file == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Agents with an update worker hear its wake-ups (the shared vhost's
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED names no agent). */
static void
agent_wake_link(struct fleet_agent *a)
{
	struct agent_shared *sh = lws_context_user(a->ctx);

	a->wake_next = sh->wake;
	sh->wake = a;
}

static void
agent_wake_unlink(struct fleet_agent *a)
{
	struct agent_shared *sh = lws_context_user(a->ctx);
	struct fleet_agent **p = &sh->wake;

	while (*p != NULL && *p != a)
		p = &(*p)->wake_next;
	if (*p == a)
		*p = a->wake_next;
	a->wake_next = NULL;
}

int
fleet_agent_start(struct fleet_agent *a, struct lws_context *ctx, char *err,
		  size_t errlen)
{
	const char *url;

	if (!a->enrolled) {
		snprintf(err, errlen, "not enrolled");
		return -1;
	}
	url = a->device_url != NULL && a->device_url[0] != '\0'
		      ? a->device_url
		      : a->id.device_server;
	if (url[0] == '\0') {
		snprintf(err, errlen,
			 "no device_url configured and none "
			 "received at enrollment");
		return -1;
	}
	if (agent_parse_device_url(a, url, err, errlen) != 0)
		return -1;
	if (agent_shared_vhost(ctx, a->ca_file, err, errlen) != 0)
		return -1;
	a->ctx = ctx;
	a->vh = ((struct agent_shared *)lws_context_user(ctx))->vh;
	a->stopping = false;
	agent_status_write(a);
	if (a->update != NULL) {
		char base[300];

		snprintf(base, sizeof(base), "https://%s:%d", a->host, a->port);
		if (agent_update_start(a->update, base, a->logctx,
				       agent_update_wake, a, err, errlen) != 0)
			return -1;
		agent_wake_link(a);
	}
	/* In-memory reports need their seq block before the first one. */
	if (a->config_memory && a->config_seq >= a->config_seq_reserved) {
		if (agent_config_next_seq(a) == 0) {
			snprintf(err, errlen, "cannot reserve report seqs");
			return -1;
		}
		a->config_seq--; /* reserved, not used */
	}
	/* At start: a file edited while the agent was down is drift. */
	agent_config_check_now(a);
	if (agent_config_drift_interval(a->config) > 0)
		agent_timer(ctx, &a->sul_config, agent_config_timer_cb,
			    (lws_usec_t)agent_config_drift_interval(a->config) *
				    LWS_US_PER_SEC);
	agent_renew_schedule(a);
	agent_timer(ctx, &a->sul_connect, agent_connect_cb, 1);
	return 0;
}

void
fleet_agent_stop(struct fleet_agent *a)
{
	if (a == NULL || a->ctx == NULL)
		return;
	a->stopping = true;
	/* The update worker wakes the loop: it ends before the context. */
	if (a->update != NULL)
		agent_wake_unlink(a);
	agent_update_free(a->update);
	a->update = NULL;
	lws_sul_cancel(&a->sul_connect);
	lws_sul_cancel(&a->sul_watchdog);
	lws_sul_cancel(&a->sul_config);
	lws_sul_cancel(&a->sul_renew);
	lws_sul_cancel(&a->sul_next);
	lws_dll2_remove(&a->next_slot.wait);
	lws_dll2_remove(&a->conn_slot.wait);
	if (a->wsi != NULL)
		lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	if (a->wsi_next != NULL)
		lws_set_timeout(a->wsi_next, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	agent_status_write(a);
}

int
fleet_agent_report(struct fleet_agent *a, json_t *msg, char *err, size_t errlen)
{
	if (agent_report_enqueue(a->state_dir, msg, NULL, err, errlen) != 0)
		return -1;
	a->queued++;
	if (a->welcomed && a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
	return 0;
}

/* ---- fleet-sim: in-memory reports and reboots (sim_update.c) ------------ */

static void
agent_mem_reports_unsent(struct fleet_agent *a)
{
	struct agent_mem_report *r;

	for (r = a->mem_head; r != NULL; r = r->next)
		r->sent = false;
}

/* The oldest report not on the wire, or NULL. */
static struct agent_mem_report *
agent_mem_report_unsent(struct fleet_agent *a)
{
	struct agent_mem_report *r;

	for (r = a->mem_head; r != NULL; r = r->next)
		if (!r->sent)
			return r;
	return NULL;
}

/* True when seq was an in-memory report (then it is dropped). */
static bool
agent_mem_report_ack(struct fleet_agent *a, uint64_t seq, const char *status)
{
	struct agent_mem_report *r, *prev = NULL;

	for (r = a->mem_head; r != NULL; prev = r, r = r->next)
		if (r->seq == seq)
			break;
	if (r == NULL)
		return false;
	if (strcmp(status, "rejected") == 0)
		log_write(LOG_LEVEL_WARN, a->logctx,
			  "server rejected report %" PRIu64 "; dropped", seq);
	if (prev == NULL)
		a->mem_head = r->next;
	else
		prev->next = r->next;
	if (a->mem_tail == r)
		a->mem_tail = prev;
	free(r);
	a->mem_count--;
	a->progress_ms = clock_mono_ms();
	if (a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
	return true;
}

static int
agent_send_mem_report(struct fleet_agent *a, struct lws *wsi)
{
	struct agent_mem_report *r = agent_mem_report_unsent(a);
	unsigned char *frame;
	int n;

	if (r == NULL)
		return 0;
	frame = malloc(LWS_PRE + r->len);
	if (frame == NULL)
		return -1;
	memcpy(frame + LWS_PRE, r->text, r->len);
	n = lws_write(wsi, frame + LWS_PRE, r->len, LWS_WRITE_TEXT);
	free(frame);
	if (n < (int)r->len)
		return -1;
	r->sent = true;
	r->sent_ms = clock_mono_ms();
	lws_callback_on_writable(wsi); /* the next one */
	return 0;
}

int
fleet_agent_report_memory(struct fleet_agent *a, json_t *msg, char *err,
			  size_t errlen)
{
	const struct proto_def *def;
	struct agent_mem_report *r;
	struct proto_error perr;
	uint64_t seq;
	char *text;
	size_t len;

	if (!a->config_memory) {
		snprintf(err, errlen, "in-memory reports need the memory mode");
		return -1;
	}
	if (a->mem_count >= FLEET_AGENT_MEM_REPORTS_MAX) {
		snprintf(err, errlen, "%u reports unacknowledged already",
			 a->mem_count);
		return -1;
	}
	def = proto_lookup(json_string_value(json_object_get(msg, "type")),
			   PROTO_TO_SERVER);
	if (def == NULL) {
		snprintf(err, errlen, "not a report type");
		return -1;
	}
	seq = agent_config_next_seq(a);
	if (seq == 0 ||
	    json_object_set_new(msg, "seq", json_integer((json_int_t)seq)) !=
		    0) {
		snprintf(err, errlen, "no seq for the report");
		return -1;
	}
	/* proto_encode steals its fields: msg stays the caller's. */
	text = proto_encode(def->type, json_incref(msg), &len, &perr);
	if (text == NULL) {
		snprintf(err, errlen, "%s", perr.message);
		return -1;
	}
	r = malloc(sizeof(*r) + len);
	if (r == NULL) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(r, 0, sizeof(*r));
	r->seq = seq;
	r->len = len;
	memcpy(r->text, text, len);
	free(text);
	if (a->mem_tail != NULL)
		a->mem_tail->next = r;
	else
		a->mem_head = r;
	a->mem_tail = r;
	a->mem_count++;
	if (a->welcomed && a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
	return 0;
}

unsigned
fleet_agent_memory_reports(const struct fleet_agent *a)
{
	return a->mem_count;
}

void
fleet_agent_reboot(struct fleet_agent *a)
{
	char boot[SECRET_UUID_LEN];

	if (secret_uuid_v4(boot) == 0)
		memcpy(a->boot_id, boot, sizeof(boot));
	a->created_ms = clock_mono_ms();
	log_write(LOG_LEVEL_INFO, a->logctx, "rebooting (boot id %s)",
		  a->boot_id);
	agent_reconnect_now(a);
}

int
fleet_agent_download_identity(const struct fleet_agent *a, char *base_url,
			      char *cert_file, char *key_file, size_t cap)
{
	struct agent_identity_files f;
	int n;

	if (a->port <= 0 || agent_identity_files(a->id.generation, &f) != 0 ||
	    agent_path(cert_file, cap, a->state_dir, f.client) != 0 ||
	    agent_path(key_file, cap, a->state_dir, f.key) != 0)
		return -1;
	n = snprintf(base_url, cap, "https://%s:%d", a->host, a->port);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

const char *
fleet_agent_state_dir(const struct fleet_agent *a)
{
	return a->state_dir;
}
