/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet-sim's firmware updates (issue 12, docs/internals/fleet-sim.md):
 * every virtual device of the process answers update.offer in memory.
 * The envelope is verified with the agent's own code (the pinned key set
 * of agent/keyset.c, pki_release_verify, pki_manifest_check and
 * pki_manifest_match), the artifact is downloaded over the device
 * listener with the device's client certificate by a bounded pool of
 * threads shared by all devices (its bytes hashed and counted, never
 * stored), then the device reports every state fleet-agent reports,
 * "reboots" (closes its session and reconnects) and commits: its hello
 * then carries the new version (state_dir/firmware.json, as the agent).
 *
 * Failure cohorts, chosen by a stable hash of the option and the device
 * id (sim_update_cohort), so that a rerun picks the same devices: fail
 * (update.status failed, reason install-failed), rollback (after the
 * reboot, rolled_back with the old version), silent (commits, then
 * disconnects and stays away for the rest of the run).
 *
 * Threads: everything but the downloads runs on the loop thread that
 * services the lws context. A device holds a job only while it updates.
 */
#ifndef FLEET_SIM_UPDATE_H
#define FLEET_SIM_UPDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "fleetagent.h"

#define SIM_UPDATE_MAX_THREADS 64

struct sim_update_opts {
	const char *keys; /* release public key PEM files, comma-separated */
	long threshold; /* signatures needed (<= 0: 1) */
	double fail, rollback, silent; /* cohort shares, 0..1 each */
	unsigned download_threads; /* 1..SIM_UPDATE_MAX_THREADS */
	const char *ca_file; /* the servers' CA bundle */
	const char *model; /* every device's hardware model */
	const char *fw_version; /* the display version devices start with */
};

struct sim_update_counts {
	unsigned active; /* devices updating now */
	unsigned committed, failed, rolled_back, refused;
	unsigned silent; /* committed, then gone for good */
	unsigned superseded; /* a newer offer came before the install */
};

struct sim_update;

/* For count devices; strings of o are copied. NULL with a message. */
struct sim_update *sim_update_new(const struct sim_update_opts *o,
				  unsigned count, char *err, size_t errlen);

/* Sets the update fields of device i's configuration (before
 * fleet_agent_new): the pinned keys and the hooks that bring offers and
 * welcomes here. */
void sim_update_config(struct sim_update *su, unsigned i,
		       struct fleet_agent_config *ac);

/* Starts the download threads; offers are taken from now on. 0 or -1. */
int sim_update_start(struct sim_update *su, struct lws_context *ctx, char *err,
		     size_t errlen);

/* Cancels the timer and stops the download threads (waits for them).
 * Call before lws_context_destroy. */
void sim_update_stop(struct sim_update *su);

/* Frees everything; accepts NULL. Call after sim_update_stop. */
void sim_update_free(struct sim_update *su);

void sim_update_get_counts(const struct sim_update *su,
			   struct sim_update_counts *c);

/* True when the device is in the cohort of option ("update-fail", ...):
 * the first 8 bytes of SHA-256("<option>:<device_id>"), big-endian,
 * divided by 2^64, are below share. */
bool sim_update_cohort(const char *option, const char *device_id, double share);

#endif
