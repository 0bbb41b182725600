/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Installers: the part of fleet-agent that puts a verified artifact on the
 * device. Every installer speaks the Mender Update Module protocol v3 (an
 * executable called with a state name and a file-tree directory), so the
 * modules Debian's mender-client ships in /usr/share/mender/modules/v3
 * (directory, single-file, script) work unmodified, and so do ours
 * (dir-ab, rauc, swupdate, shipped in agent/modules/). The update state
 * machine (update.c) decides which state runs when; this module only runs
 * one state of one installer and says what it answered.
 * docs/internals/updates.md has the contract; docs/updates.md (installer
 * guide) how to write one.
 */
#ifndef FLEET_AGENT_INSTALLER_H
#define FLEET_AGENT_INSTALLER_H

#include <stdbool.h>
#include <stddef.h>

#include "release.h"

/* The Mender v3 states, in the order the protocol names them. */
enum inst_state {
	INST_DOWNLOAD,
	INST_ARTIFACT_INSTALL,
	INST_NEEDS_ARTIFACT_REBOOT, /* query: "No", "Yes" or "Automatic" */
	INST_SUPPORTS_ROLLBACK, /* query: "No" or "Yes" */
	INST_ARTIFACT_REBOOT,
	INST_ARTIFACT_VERIFY_REBOOT,
	INST_ARTIFACT_COMMIT,
	INST_ARTIFACT_ROLLBACK,
	INST_ARTIFACT_ROLLBACK_REBOOT,
	INST_ARTIFACT_VERIFY_ROLLBACK_REBOOT,
	INST_ARTIFACT_FAILURE,
	INST_CLEANUP,
	INST_STATE_COUNT
};

/* "Download", "ArtifactInstall", ... as the protocol spells them. */
const char *inst_state_name(enum inst_state s);

struct inst_env {
	const char *modules_dir; /* where installers are looked up by name */
	const char *work_dir; /* state_dir/update: file trees live here */
	const char *device_type; /* the agent's model */
	const char *current_name; /* running release's name ("" if none) */
	int timeout_s; /* per state run; the module is killed after it */
};

struct installer;

/*
 * Prepares the file tree for one release under env->work_dir (version,
 * header/..., files/, tmp/, current_* files; the verified artifact is put
 * into files/ as the protocol's Download state expects) and finds the
 * installer named by the manifest in env->modules_dir. Survives an agent
 * restart: opening the same release again reuses the tree. Returns 0, or
 * -1 with a message (unknown installer: the update fails with reason
 * "installer").
 */
int installer_open(const struct inst_env *env, const struct pki_manifest *m,
		   const char *artifact_path, struct installer **out, char *err,
		   size_t errlen);

/*
 * Runs one state and waits for it (bounded by timeout_s). For the query
 * states answer gets the module's first output line ("Yes", "No",
 * "Automatic"); otherwise answer may be NULL. Returns 0 when the module
 * exited 0, else -1 with a message (its exit status or signal, the tail of
 * its stderr).
 */
int installer_run(struct installer *in, enum inst_state s, char *answer,
		  size_t answer_len, char *err, size_t errlen);

/* The file tree's directory (owned by in), for logs and tests. */
const char *installer_tree(const struct installer *in);

/* Removes the file tree (after Cleanup) and frees. */
void installer_close(struct installer *in, bool remove_tree);

#endif
