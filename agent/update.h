/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's update state machine (docs/internals/agent-update.md,
 * docs/internals/updates.md "The agent"): an `update.offer` is verified
 * against the pinned release keys and checked against the device, then
 * downloaded (download.c), handed to an installer (installer.c) state by
 * state, rebooted into, health-checked and committed, or rolled back.
 * Every step is written to state_dir/update/journal.json (atomically)
 * before the next starts, so a kill at any moment resumes or rolls back.
 *
 * One worker thread per agent runs the slow parts (download, installer
 * states, health hook); the lws loop only hands it offers and tells it
 * when the agent was welcomed. Reports go to the agent's disk queue
 * (agent_report_enqueue, flock-protected) and the loop is woken to send
 * them. The offer is untrusted: nothing in it is used before the envelope
 * verified against the pinned set, and the manifest, not the offer, is
 * authoritative.
 */
#ifndef FLEET_AGENT_UPDATE_H
#define FLEET_AGENT_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/proto.h"

#define AGENT_UPDATE_DIR "update" /* under state_dir */
#define AGENT_UPDATE_JOURNAL "journal.json"
#define AGENT_UPDATE_PART "artifact.part"
#define AGENT_UPDATE_PAUSED "paused" /* test knob marker */
#define AGENT_FIRMWARE_FILE "firmware.json"
#define AGENT_UPDATE_PAUSE_ENV "FLEET_AGENT_UPDATE_PAUSE_AT"

/* What fleet-agent's config gives the update machinery (docs/agent.md);
 * strings are copied by agent_update_new. */
struct agent_update_opts {
	const char *keys; /* update_keys: comma-separated PEM public keys */
	long threshold; /* update_threshold */
	const char *modules_dir; /* update_modules_dir; NULL: default */
	long download_deadline_s; /* whole download; 0: 3600 */
	long stall_s; /* no byte for this long: try again; 0: 60 */
	const char *reboot_command; /* "" / NULL: no reboot; "reexec" */
	const char *health_command; /* NULL / "": connected is healthy */
	long health_deadline_s; /* 0: 300 */
	long fw_version_num; /* installed version before firmware.json */
	const char *fw_version; /* its display string */
	long state_timeout_s; /* per installer state; 0: 600 */
};

/* The running firmware: state_dir/firmware.json, written at commit. */
struct agent_firmware {
	int64_t version_int;
	char version[129];
	char name[129];
};

/* Reads state_dir/firmware.json: 1 (found), 0 (none), -1 (unreadable). */
int agent_firmware_read(const char *state_dir, struct agent_firmware *fw);

/* Writes it atomically. 0 or -1. */
int agent_firmware_write(const char *state_dir, const struct agent_firmware *fw,
			 char *err, size_t errlen);

/* ---- the journal ------------------------------------------------------ */

enum upd_step {
	UPD_NONE = 0, /* no journal */
	UPD_VERIFIED, /* envelope verified, manifest checked */
	UPD_DOWNLOADING,
	UPD_DOWNLOADED, /* sha256 checked */
	UPD_INSTALLING, /* Download + ArtifactInstall may have half-run */
	UPD_INSTALLED,
	UPD_REBOOTING, /* the reboot command is (about to be) run */
	UPD_VERIFYING, /* reconnect + health hook */
	UPD_COMMITTING,
	UPD_ROLLING_BACK,
	UPD_DONE, /* outcome reported */
	UPD_STEP_COUNT
};

const char *upd_step_name(enum upd_step s);
/* UPD_NONE for an unknown name. */
enum upd_step upd_step_parse(const char *name);

struct upd_journal {
	enum upd_step step;
	/* the offer */
	char *envelope; /* compact JSON of the DSSE envelope, owned */
	char deployment_id[37]; /* "" when the offer had none */
	char campaign_id[37];
	char url[1025];
	char sha256[65];
	uint64_t size;
	int64_t version_int;
	char version[129];
	char name[129];
	char installer[65];
	/* what ran before */
	int64_t prev_version_int;
	char prev_version[129];
	char prev_name[129];
	/* progress */
	bool needs_reboot; /* NeedsArtifactReboot said Yes/Automatic */
	bool automatic_reboot;
	bool supports_rollback;
	bool rebooted; /* the reboot command ran (rollback reboots too) */
	bool rb_rebooting; /* rolling back: its reboot is under way */
	int64_t verify_since; /* wall seconds the health window opened */
	char outcome[16]; /* at done: committed, failed, rolled_back, ... */
	char reason[24]; /* failed / rolled_back: the stable code */
	char error[256];
	char reported[16]; /* the last state reported for this offer */
};

void upd_journal_clear(struct upd_journal *j);

/* Reads dir/journal.json: 1 (*j filled), 0 (none), -1 (unreadable:
 * err says why; the caller moves it aside). */
int upd_journal_load(const char *dir, struct upd_journal *j, char *err,
		     size_t errlen);

/* Writes dir/journal.json atomically. 0 or -1. */
int upd_journal_save(const char *dir, const struct upd_journal *j, char *err,
		     size_t errlen);

/* What to do with an offer, given the journal. */
enum upd_offer_action {
	UPD_OFFER_NEW, /* nothing in progress: verify and start it */
	UPD_OFFER_RESUME, /* the journal's own offer, still in progress */
	UPD_OFFER_IGNORE, /* the journal's offer, already finished; or
			     another offer while an install is under way */
	UPD_OFFER_SUPERSEDE, /* another offer before anything was
				installed: drop the current one */
};

enum upd_offer_action upd_offer_decide(const struct upd_journal *j,
				       const char *deployment_id,
				       const char *sha256, int64_t version);

/* What to do after a restart, from the step the journal was left in. */
enum upd_resume_action {
	UPD_RESUME_NOTHING, /* no journal, or done */
	UPD_RESUME_DOWNLOAD, /* verified, downloading: (re)start it */
	UPD_RESUME_INSTALL, /* downloaded, installing: (re)run install */
	UPD_RESUME_AFTER_INSTALL, /* installed: reboot or verify */
	UPD_RESUME_VERIFY_REBOOT, /* rebooting: ArtifactVerifyReboot */
	UPD_RESUME_HEALTH, /* verifying: reconnect and health hook */
	UPD_RESUME_COMMIT, /* committing: ArtifactCommit again */
	UPD_RESUME_ROLLBACK, /* rolling back: again from its start */
};

enum upd_resume_action upd_resume_decide(const struct upd_journal *j);

/* ---- the worker -------------------------------------------------------- */

struct agent_update;

/* Copies o; reads nothing yet. NULL with a message on a bad option. */
struct agent_update *agent_update_new(const struct agent_update_opts *o,
				      const char *state_dir, const char *model,
				      const char *ca_file, const char *logctx,
				      char *err, size_t errlen);

/* Starts the worker (it resumes the journal). base_url is the device
 * listener as "https://host:port" (relative artifact URLs), logctx the
 * agent's log context now that it is enrolled; wake(arg) is
 * called from the worker after a report was queued (thread-safe, e.g.
 * lws_cancel_service). 0 or -1. */
int agent_update_start(struct agent_update *u, const char *base_url,
		       const char *logctx, void (*wake)(void *), void *arg,
		       char *err, size_t errlen);

/* An update.offer from the loop: copied and handed to the worker. */
void agent_update_offer(struct agent_update *u, const struct proto_msg *m);

/* The agent was welcomed by fleetd (the health check waits for it). */
void agent_update_welcome(struct agent_update *u);

/* Stops the worker (waits for the state it runs) and frees; NULL ok. */
void agent_update_free(struct agent_update *u);

/* What hello says (0 when unknown): the installed version and the
 * pinned key set's version. fw_version gets the installed display
 * version when firmware.json names one (else untouched). */
int64_t agent_update_fw_version_num(const char *state_dir, long configured,
				    char *fw_version, size_t fwlen);

#endif
