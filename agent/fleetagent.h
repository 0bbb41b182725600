/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libfleetagent: the device side of fleetd. One struct fleet_agent is one
 * device: its identity in a state directory (key generated here, never
 * sent), enrollment with a token over HTTPS (POST /enroll/v1), and its
 * mutually authenticated websocket channel (fleet.v1, docs/protocol.md)
 * with reconnects, a dead-server watchdog and an on-disk report queue.
 *
 * No global state: fleet-agent runs one agent in its own lws context;
 * fleet-sim runs thousands in one process, in one lws context per service
 * thread. The agents of a context share one client vhost and TLS context;
 * each connection presents its own agent's identity.
 *
 * Threads: fleet_agent_enroll() blocks (HTTPS) and may run on any thread,
 * one call per agent at a time, before fleet_agent_start(). Everything else
 * runs on the thread that services the lws context.
 *
 * Return values: 0 on success, -1 with a one-line message in err.
 */
#ifndef FLEET_AGENT_H
#define FLEET_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fleet_version.h"

#define FLEET_AGENT_VERSION FLEET_PROJECT_VERSION
#define FLEET_AGENT_SUBPROTOCOL "fleet.v1"
#define FLEET_AGENT_ERR_MAX 512

struct lws_context;
struct fleet_agent;
struct agent_update_opts;

struct fleet_agent_config {
	const char *name; /* log context ("sim-17"); NULL: none */
	const char *api_url; /* https://host:port, for enrollment */
	const char *device_url; /* wss://host:port/agent/v1; NULL: the
					enrollment answer's device_server */
	const char *ca_file; /* PEM bundle that signs the servers */
	const char *state_dir; /* identity, seq, queue, status */
	const char *token; /* enrollment token, or NULL */
	const char *token_file; /* file holding the token, or NULL */
	const char *model; /* hardware model; NULL: "generic" */
	const char *fw_version; /* firmware version string, or NULL */
	const char *fw_version_file; /* file to read it from, or NULL */
	const char *labels; /* "k=v,k=v" asked for at enrollment */
	const char *boot_id; /* NULL: /proc/sys/kernel/random/boot_id */
	bool virtual_uptime; /* uptime counts from fleet_agent_new */
	bool write_status; /* keep state_dir/status.json current */
	/* Configuration delivery (agent/config.c, docs/agent.md; fleet-agent
	 * reads them as config keys config_path, ...). No path:
	 * config.apply is answered "failed". */
	const char *config_path; /* the file config.apply writes */
	const char *config_validate; /* hook on the temp file ($1) */
	const char *config_reload; /* hook after the switch */
	long config_drift_interval; /* seconds; 0: the default (60) */
	bool config_restore_on_drift;
	/* fleet-sim: apply in memory (no file, no hooks), reports kept in
	 * memory (only the latest config.status matters), and fail
	 * config_fail_permille of the applies on purpose. */
	bool config_memory;
	unsigned config_fail_permille;
	/* Certificates (agent/renew.c, docs/agent.md "Certificate renewal";
	 * fleet-agent reads them as config keys renew_at, ...). */
	double renew_at; /* fraction of the lifetime; 0: 2/3 */
	double renew_jitter; /* up to this fraction earlier; 0: 0.05 */
	long refused_backoff; /* seconds between attempts once refused for
				 good; 0: 3600 */
	bool reenroll; /* enroll again with the token when refused */
	/* fleet-sim: renew in memory (new key, CSR, reconnect,
	 * cert.installed), nothing written to disk. */
	bool cert_memory;
	/* Signed updates (update.c, docs/agent.md "Updates"): NULL, or
	 * update_keys unset: update.offer is not acted on. */
	const struct agent_update_opts *update;
	/* fleet-sim (agent/sim_update.c): with update_offer_hook set, no
	 * update worker is started; each update.offer goes to the hook on
	 * the loop thread (offer is borrowed for the call), while
	 * update->keys and update->threshold still give hello's
	 * keyset_version and update.keys adoption. welcome_hook is called
	 * after every welcome. NULL: the agent's own behaviour. */
	void (*update_offer_hook)(void *arg, struct fleet_agent *a,
				  json_t *offer);
	void (*welcome_hook)(void *arg, struct fleet_agent *a);
	void *hook_arg;
};

/*
 * Copies cfg, creates state_dir (0700) and reads the identity if one is
 * complete. The caller owns the result (fleet_agent_free).
 */
struct fleet_agent *fleet_agent_new(const struct fleet_agent_config *cfg,
				    char *err, size_t errlen);

/* Frees the agent; accepts NULL. Call fleet_agent_stop() and destroy (or
 * keep servicing) the context first if the agent was started. */
void fleet_agent_free(struct fleet_agent *a);

/* True when state_dir holds a complete identity. */
bool fleet_agent_enrolled(const struct fleet_agent *a);

/*
 * Enrolls when there is no complete identity (no-op otherwise): key
 * (reused or generated, 0600), CSR, POST /enroll/v1, then the identity is
 * stored atomically. Blocking. *permanent (may be NULL) is set when the
 * server refused (token or CSR) so that retrying the same request is
 * pointless; otherwise the failure is transient (network, 5xx).
 */
int fleet_agent_enroll(struct fleet_agent *a, bool *permanent, char *err,
		       size_t errlen);

/*
 * A client context suitable for agents: TLS initialised, no listener, no
 * default vhost; lws sizes its fd table by the process's open-files
 * limit. max_conns is how many agents it will run: above 1, their timers
 * (watchdog, retries, drift checks) go on one wheel the context turns ten
 * times a second instead of lws's sorted list (O(1) instead of O(agents)
 * per timer armed; agent.c).
 * The caller owns it and frees it with fleet_agent_context_free. Every
 * agent started in it shares one client TLS context and vhost, so all must
 * use the same ca_file; each connection presents its own identity.
 */
struct lws_context *fleet_agent_context_new(unsigned max_conns, char *err,
					    size_t errlen);
/* Destroys the context (lws_context_destroy) and what its agents shared.
 * Accepts NULL. */
void fleet_agent_context_free(struct lws_context *ctx);

/* Starts the agent in ctx (the context's shared client vhost; the first
 * agent creates it) and connects (on the loop). */
int fleet_agent_start(struct fleet_agent *a, struct lws_context *ctx, char *err,
		      size_t errlen);

/* Stops reconnecting, cancels timers and closes the channel (async). */
void fleet_agent_stop(struct fleet_agent *a);

/*
 * Queues a report (a JSON object whose "type" is a fleet.v1 report, with
 * that type's fields; the agent adds "seq") on disk and sends it when the
 * channel is up. Reports go out oldest first and stay queued until the
 * server acknowledges their seq (at least once; the server applies each
 * seq once). Refuses a report that breaks docs/protocol.md. msg is not
 * stolen (its "seq" is set).
 */
int fleet_agent_report(struct fleet_agent *a, json_t *msg, char *err,
		       size_t errlen);

/*
 * fleet-sim (config_memory): queues a report in memory instead of on
 * disk. It gets the next seq of the block reserved on disk, is validated
 * by common/proto, and is sent after welcome in the order queued, kept
 * until the server acknowledges its seq, and sent again after a
 * reconnect or when unanswered for a while (as the disk queue). At most
 * FLEET_AGENT_MEM_REPORTS_MAX are kept. Loop thread only. msg is not
 * stolen.
 */
#define FLEET_AGENT_MEM_REPORTS_MAX 64
int fleet_agent_report_memory(struct fleet_agent *a, json_t *msg, char *err,
			      size_t errlen);

/* In-memory reports not acknowledged yet. */
unsigned fleet_agent_memory_reports(const struct fleet_agent *a);

/* fleet-sim: a "reboot": a new boot id, uptime from now, and the session
 * closed and opened again at once (a planned reconnect). Loop thread. */
void fleet_agent_reboot(struct fleet_agent *a);

/* Where an artifact download goes and with which identity: the device
 * listener as "https://host:port" (set once started) and the client
 * certificate chain and key files of the identity in use. 0 or -1. */
int fleet_agent_download_identity(const struct fleet_agent *a, char *base_url,
				  char *cert_file, char *key_file, size_t cap);

const char *fleet_agent_state_dir(const struct fleet_agent *a);

bool fleet_agent_online(const struct fleet_agent *a); /* welcome received */
uint64_t fleet_agent_attempts(const struct fleet_agent *a);
const char *fleet_agent_device_id(const struct fleet_agent *a); /* or "" */
uint64_t fleet_agent_renewals(const struct fleet_agent *a); /* installed */
const char *fleet_agent_cert_serial(const struct fleet_agent *a);

#endif
