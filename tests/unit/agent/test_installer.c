/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Installers (agent/installer.c) with real update modules: Debian's
 * unmodified single-file, directory and script modules from mender-client
 * (/usr/share/mender/modules/v3; skipped when the package is missing) and
 * our dir-ab (agent/modules), each through installer_run on a scratch
 * state directory. Mender Artifacts are made with tar as the
 * artifact-format-v3 document lays them out. Also: a module that reads
 * the streams during Download gets the payload's bytes, a hung module is
 * killed with its process group at the timeout, a failing module's exit
 * status and last line are reported, an unknown installer is refused, and
 * opening the same release again keeps the tree (a restarted agent).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_test_util.h"
#include "atomicfile.h"
#include "installer.h"

#define DEBIAN_MODULES "/usr/share/mender/modules/v3"

static char modules_dirs[1024];

static void
put_file(const char *path, const char *text, mode_t mode)
{
	char err[256];

	assert_int_equal(atomic_write_file(path, text, strlen(text), mode, err,
					   sizeof(err)),
			 0);
}

static char *
slurp(const char *path)
{
	char err[256], *text = NULL;
	size_t len;

	if (read_file_bounded(path, 1 << 20, &text, &len, err, sizeof(err)) !=
	    0)
		fail_msg("cannot read %s: %s", path, err);
	return text;
}

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void
manifest(struct pki_manifest *m, const char *name, const char *installer,
	 int64_t v)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->version, sizeof(m->version), "1.%lld", (long long)v);
	m->version_int = v;
	snprintf(m->hw[0], sizeof(m->hw[0]), "test-model");
	m->n_hw = 1;
	snprintf(m->installer, sizeof(m->installer), "%s", installer);
	m->size = 1;
	/* What the installer keys its tree on: distinct per release. */
	for (int i = 0; i < 64; i++)
		m->sha256[i] = "0123456789abcdef"[(v + i) % 16];
	m->sha256[64] = '\0';
}

static void
env_for(struct inst_env *e, const char *dir, char *work, size_t cap)
{
	snprintf(work, cap, "%s/update", dir);
	*e = (struct inst_env){.modules_dir = modules_dirs,
			       .work_dir = work,
			       .device_type = "test-model",
			       .current_name = "old",
			       .timeout_s = 30};
}

static void
run_ok(struct installer *in, enum inst_state s, const char *want)
{
	char answer[64] = "", err[1024] = "";
	int rc = installer_run(in, s, answer, sizeof(answer), err, sizeof(err));

	if (rc != 0)
		fail_msg("%s failed: %s", inst_state_name(s), err);
	if (want != NULL)
		assert_string_equal(answer, want);
}

static bool
have_debian_modules(void)
{
	return access(DEBIAN_MODULES "/single-file", X_OK) == 0;
}

/*
 * A Mender Artifact v3 with one payload of type `type` whose files are
 * the regular files of src (made with tar as mender-artifact lays it out:
 * version first, then manifest, header.tar.gz, data/0000.tar.gz).
 */
static void
mender_artifact(const char *dir, const char *src, const char *type,
		const char *out)
{
	sh("set -e; d='%s/mk'; rm -rf \"$d\"; mkdir -p \"$d/h/headers/0000\" "
	   "\"$d/data\"; cd \"$d\"; "
	   "printf '{\"format\": \"mender\", \"version\": 3}' > version; "
	   "printf '{\"payloads\": [{\"type\": \"%s\"}], "
	   "\"artifact_provides\": {\"artifact_name\": \"t\"}, "
	   "\"artifact_depends\": {\"device_type\": [\"test-model\"]}}' "
	   "> h/header-info; "
	   "printf '{\"type\": \"%s\"}' > h/headers/0000/type-info; "
	   "printf '{}' > h/headers/0000/meta-data; "
	   "tar -czf header.tar.gz -C h header-info headers; "
	   "tar -czf data/0000.tar.gz -C '%s' .; "
	   "sha256sum version header.tar.gz data/0000.tar.gz > manifest; "
	   "tar -cf '%s' version manifest header.tar.gz data/0000.tar.gz",
	   dir, type, type, src, out);
}

static void
test_state_names(void **state)
{
	static const char *const want[] = {
		"Download",
		"ArtifactInstall",
		"NeedsArtifactReboot",
		"SupportsRollback",
		"ArtifactReboot",
		"ArtifactVerifyReboot",
		"ArtifactCommit",
		"ArtifactRollback",
		"ArtifactRollbackReboot",
		"ArtifactVerifyRollbackReboot",
		"ArtifactFailure",
		"Cleanup",
	};

	(void)state;
	for (int i = 0; i < INST_STATE_COUNT; i++)
		assert_string_equal(inst_state_name((enum inst_state)i),
				    want[i]);
	assert_string_equal(inst_state_name(INST_STATE_COUNT), "Unknown");
}

/* The file tree of the protocol, with what the manifest says. */
static void
test_file_tree(void **state)
{
	const char *dir = *state;
	char work[256], art[512], p[768], *t;
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;
	char err[512];
	struct stat st;

	env_for(&e, dir, work, sizeof(work));
	snprintf(art, sizeof(art), "%s/art.bin", dir);
	put_file(art, "payload\n", 0600);
	manifest(&m, "acme-fw", "dir-ab", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/version", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "3\n");
	free(t);
	snprintf(p, sizeof(p), "%s/header/payload_type", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "dir-ab");
	free(t);
	snprintf(p, sizeof(p), "%s/header/artifact_name", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "acme-fw");
	free(t);
	snprintf(p, sizeof(p), "%s/current_artifact_name", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "old");
	free(t);
	snprintf(p, sizeof(p), "%s/current_device_type", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "test-model");
	free(t);
	snprintf(p, sizeof(p), "%s/header/meta-data", installer_tree(in));
	t = slurp(p);
	assert_non_null(strstr(t, "\"version_int\": 2"));
	free(t);
	snprintf(p, sizeof(p), "%s/files/acme-fw", installer_tree(in));
	t = slurp(p);
	assert_string_equal(t, "payload\n");
	free(t);
	snprintf(p, sizeof(p), "%s/stream-next", installer_tree(in));
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	snprintf(p, sizeof(p), "%s/tmp", installer_tree(in));
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/payloads", work);
	sh("test -z \"$(ls -A '%s')\"", p);
}

static void
test_unknown_installer(void **state)
{
	const char *dir = *state;
	char work[256], art[512], err[512];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	env_for(&e, dir, work, sizeof(work));
	snprintf(art, sizeof(art), "%s/art.bin", dir);
	put_file(art, "x", 0600);
	manifest(&m, "x", "no-such-module", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)),
			 -1);
	assert_null(in);
	assert_non_null(strstr(err, "no-such-module"));
	manifest(&m, "x", "../dir-ab", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not valid"));
}

/* Debian's single-file module: install, then a second release rolled
 * back restores the first file. */
static void
test_debian_single_file(void **state)
{
	const char *dir = *state;
	char work[256], art[512], src[512], dest[512], p[768], err[512], *t;
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	if (!have_debian_modules())
		skip();
	env_for(&e, dir, work, sizeof(work));
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dest, sizeof(dest), "%s/dest", dir);
	snprintf(art, sizeof(art), "%s/sf.mender", dir);
	sh("mkdir -p '%s' && cd '%s' && printf '%s' > dest_dir && "
	   "printf app.conf > filename && printf 0640 > permissions && "
	   "printf 'version one\\n' > app.conf",
	   src, src, dest);
	mender_artifact(dir, src, "single-file", art);
	manifest(&m, "app-conf", "single-file", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	run_ok(in, INST_NEEDS_ARTIFACT_REBOOT, "No");
	run_ok(in, INST_SUPPORTS_ROLLBACK, "Yes");
	run_ok(in, INST_ARTIFACT_COMMIT, NULL);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/app.conf", dest);
	t = slurp(p);
	assert_string_equal(t, "version one\n");
	free(t);
	sh("test \"$(stat -c %%a '%s')\" = 640", p);

	sh("printf 'version two\\n' > '%s/app.conf'", src);
	mender_artifact(dir, src, "single-file", art);
	manifest(&m, "app-conf", "single-file", 3);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	t = slurp(p);
	assert_string_equal(t, "version two\n");
	free(t);
	run_ok(in, INST_ARTIFACT_ROLLBACK, NULL);
	run_ok(in, INST_ARTIFACT_FAILURE, NULL);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
	t = slurp(p);
	assert_string_equal(t, "version one\n");
	free(t);
}

/* An artifact made by mender-artifact itself (the tool users have), not
 * by our tar commands: Debian's single-file installs it. */
static void
test_mender_artifact_tool(void **state)
{
	const char *dir = *state;
	char work[256], art[512], src[512], dest[512], p[768], err[512], *t;
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	if (!have_debian_modules() ||
	    system("command -v mender-artifact >/dev/null 2>&1") != 0)
		skip();
	env_for(&e, dir, work, sizeof(work));
	snprintf(src, sizeof(src), "%s/ma", dir);
	snprintf(dest, sizeof(dest), "%s/ma-dest", dir);
	snprintf(art, sizeof(art), "%s/tool.mender", dir);
	sh("mkdir -p '%s' && cd '%s' && printf '%s' > dest_dir && "
	   "printf motd > filename && printf 0600 > permissions && "
	   "printf 'from the tool\\n' > motd && mender-artifact write "
	   "module-image -T single-file -n motd-2 -t test-model -o '%s' "
	   "-f dest_dir -f filename -f permissions -f motd >/dev/null 2>&1",
	   src, src, dest, art);
	manifest(&m, "motd", "single-file", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/header/header-info", installer_tree(in));
	t = slurp(p);
	assert_non_null(strstr(t, "motd-2")); /* the artifact's own header */
	free(t);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	run_ok(in, INST_ARTIFACT_COMMIT, NULL);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/motd", dest);
	t = slurp(p);
	assert_string_equal(t, "from the tool\n");
	free(t);
}

/* Debian's directory module: the tar in update.tar replaces dest_dir. */
static void
test_debian_directory(void **state)
{
	const char *dir = *state;
	char work[256], art[512], src[512], dest[512], err[512];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	if (!have_debian_modules())
		skip();
	env_for(&e, dir, work, sizeof(work));
	snprintf(src, sizeof(src), "%s/dsrc", dir);
	snprintf(dest, sizeof(dest), "%s/www", dir);
	sh("mkdir -p '%s/content/sub' '%s' && echo old > '%s/index.html' && "
	   "echo new > '%s/content/index.html' && echo s > "
	   "'%s/content/sub/s.txt' && tar -cf '%s/update.tar' -C "
	   "'%s/content' . && printf '%s' > '%s/dest_dir' && rm -rf "
	   "'%s/content'",
	   src, dest, dest, src, src, src, src, dest, src, src);
	snprintf(art, sizeof(art), "%s/dir.mender", dir);
	mender_artifact(dir, src, "directory", art);
	manifest(&m, "site", "directory", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	sh("grep -qx new '%s/index.html' && test -f '%s/sub/s.txt'", dest,
	   dest);
	run_ok(in, INST_SUPPORTS_ROLLBACK, "Yes");
	run_ok(in, INST_ARTIFACT_ROLLBACK, NULL);
	sh("grep -qx old '%s/index.html' && test ! -e '%s/sub'", dest, dest);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
}

/* Debian's script module runs the artifact (a plain file, not a Mender
 * Artifact) from files/. */
static void
test_debian_script(void **state)
{
	const char *dir = *state;
	char work[256], art[512], text[1024], err[512];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	if (!have_debian_modules())
		skip();
	env_for(&e, dir, work, sizeof(work));
	snprintf(art, sizeof(art), "%s/run.sh", dir);
	snprintf(text, sizeof(text),
		 "#!/bin/sh\necho \"ran in $PWD with $FLEET_DEVICE_TYPE\" > "
		 "'%s/script-ran'\n",
		 dir);
	put_file(art, text, 0600);
	manifest(&m, "fix-it.sh", "script", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	sh("grep -q 'ran in %s with test-model' '%s/script-ran'",
	   installer_tree(in), dir);
	installer_close(in, true);

	/* A failing script: exit status and its last line in the error. */
	put_file(art, "#!/bin/sh\necho 'disk on fire' >&2\nexit 3\n", 0600);
	manifest(&m, "fix-it.sh", "script", 3);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	assert_int_equal(installer_run(in, INST_ARTIFACT_INSTALL, NULL, 0, err,
				       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "ArtifactInstall: exit"));
	assert_non_null(strstr(err, "disk on fire"));
	installer_close(in, true);
}

static char *
current_slot(const char *root)
{
	char p[512], buf[16];
	ssize_t n;
	int len = snprintf(p, sizeof(p), "%s/current", root);

	assert_true(len > 0 && (size_t)len < sizeof(p));
	n = readlink(p, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	return strdup(buf);
}

static void
assert_slot(const char *root, const char *want)
{
	char *s = current_slot(root);

	assert_string_equal(s, want);
	free(s);
}

/* dir-ab: install into the inactive slot, switch, verify, commit; a
 * second release rolled back; every state run twice (a killed agent runs
 * it again) gives the same result. */
static void
test_dir_ab(void **state)
{
	const char *dir = *state;
	char work[256], art[512], root[512], err[512], *t, p[768];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	env_for(&e, dir, work, sizeof(work));
	snprintf(root, sizeof(root), "%s/dir-ab", dir);
	snprintf(art, sizeof(art), "%s/fw.tar", dir);
	sh("mkdir -p '%s/fw/bin' && echo v2 > '%s/fw/VERSION' && echo x > "
	   "'%s/fw/bin/app' && tar -cf '%s' -C '%s/fw' .",
	   dir, dir, dir, art, dir);
	manifest(&m, "fw", "dir-ab", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	assert_slot(root, "B");
	run_ok(in, INST_ARTIFACT_INSTALL, NULL); /* again: no change */
	assert_slot(root, "B");
	run_ok(in, INST_NEEDS_ARTIFACT_REBOOT, "Yes");
	run_ok(in, INST_SUPPORTS_ROLLBACK, "Yes");
	run_ok(in, INST_ARTIFACT_REBOOT, NULL);
	/* The agent restarts: the same release opens the same tree. */
	installer_close(in, false);
	in = NULL;
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_ARTIFACT_VERIFY_REBOOT, NULL);
	run_ok(in, INST_ARTIFACT_COMMIT, NULL);
	run_ok(in, INST_ARTIFACT_COMMIT, NULL);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/current/VERSION", root);
	t = slurp(p);
	assert_string_equal(t, "v2\n");
	free(t);
	snprintf(p, sizeof(p), "%s/committed", root);
	t = slurp(p);
	assert_string_equal(t, "B\n");
	free(t);

	/* v3 goes to A, fails its health check: rollback to B. */
	sh("echo v3 > '%s/fw/VERSION' && tar -cf '%s' -C '%s/fw' .", dir, art,
	   dir);
	manifest(&m, "fw", "dir-ab", 3);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	run_ok(in, INST_ARTIFACT_INSTALL, NULL);
	assert_slot(root, "A");
	snprintf(p, sizeof(p), "%s/current/VERSION", root);
	t = slurp(p);
	assert_string_equal(t, "v3\n");
	free(t);
	run_ok(in, INST_ARTIFACT_VERIFY_REBOOT, NULL);
	run_ok(in, INST_ARTIFACT_ROLLBACK, NULL);
	run_ok(in, INST_ARTIFACT_ROLLBACK, NULL);
	assert_slot(root, "B");
	run_ok(in, INST_ARTIFACT_ROLLBACK_REBOOT, NULL);
	run_ok(in, INST_ARTIFACT_VERIFY_ROLLBACK_REBOOT, NULL);
	/* VerifyReboot now fails: current is not the new slot. */
	assert_int_equal(installer_run(in, INST_ARTIFACT_VERIFY_REBOOT, NULL, 0,
				       err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "expected A"));
	run_ok(in, INST_ARTIFACT_FAILURE, NULL);
	run_ok(in, INST_CLEANUP, NULL);
	installer_close(in, true);
	t = slurp(p);
	assert_string_equal(t, "v2\n");
	free(t);
}

/* A module that streams during Download gets the bytes of files/. */
static void
test_streams(void **state)
{
	const char *dir = *state;
	char work[256], art[512], mod[512], text[2048], err[512], *t, p[768];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;

	snprintf(mod, sizeof(mod), "%s/mods", dir);
	sh("mkdir -p '%s'", mod);
	snprintf(p, sizeof(p), "%s/streamer", mod);
	snprintf(text, sizeof(text),
		 "#!/bin/sh\nset -e\n[ \"$1\" = Download ] || exit 0\n"
		 "cd \"$2\"\nn=0\nwhile :; do\n"
		 "  s=$(cat stream-next)\n  [ -n \"$s\" ] || break\n"
		 "  cat \"$s\" > \"%s/streamed.$n\"\n  echo \"$s\" >> "
		 "'%s/streams.list'\n  n=$((n+1))\ndone\n",
		 dir, dir);
	put_file(p, text, 0755);
	snprintf(art, sizeof(art), "%s/blob", dir);
	put_file(art, "streamed bytes\n", 0600);
	env_for(&e, dir, work, sizeof(work));
	e.modules_dir = mod;
	manifest(&m, "blob", "streamer", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_DOWNLOAD, NULL);
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/streamed.0", dir);
	t = slurp(p);
	assert_string_equal(t, "streamed bytes\n");
	free(t);
	snprintf(p, sizeof(p), "%s/streams.list", dir);
	t = slurp(p);
	assert_string_equal(t, "streams/blob\n");
	free(t);
}

static bool
alive(pid_t pid)
{
	char p[64], buf[512], *rp;
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	f = fopen(p, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* A module that hangs (with a child of its own) is killed at the
 * timeout, child included; an empty answer to a query is "No". */
static void
test_timeout_and_default(void **state)
{
	const char *dir = *state;
	char work[256], art[512], mod[512], text[1024], err[512], p[768];
	struct inst_env e;
	struct pki_manifest m;
	struct installer *in = NULL;
	char *pid_text;
	long pid;

	snprintf(mod, sizeof(mod), "%s/mods2", dir);
	sh("mkdir -p '%s'", mod);
	snprintf(p, sizeof(p), "%s/hang", mod);
	snprintf(text, sizeof(text),
		 "#!/bin/sh\ncase \"$1\" in\nArtifactInstall)\n"
		 "  sleep 60 &\n  echo $! > '%s/child.pid'\n  wait ;;\n"
		 "esac\nexit 0\n",
		 dir);
	put_file(p, text, 0755);
	snprintf(art, sizeof(art), "%s/blob", dir);
	put_file(art, "x", 0600);
	env_for(&e, dir, work, sizeof(work));
	e.modules_dir = mod;
	e.timeout_s = 1;
	manifest(&m, "blob", "hang", 2);
	assert_int_equal(installer_open(&e, &m, art, &in, err, sizeof(err)), 0);
	run_ok(in, INST_NEEDS_ARTIFACT_REBOOT, "No");
	assert_int_equal(installer_run(in, INST_ARTIFACT_INSTALL, NULL, 0, err,
				       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "timed out after 1 s"));
	installer_close(in, true);
	snprintf(p, sizeof(p), "%s/child.pid", dir);
	pid_text = slurp(p);
	assert_non_null(pid_text);
	pid = strtol(pid_text, NULL, 10);
	free(pid_text);
	assert_true(pid > 0);
	/* The child is gone (killed with the group; a zombie until init
	 * reaps it counts as gone). */
	for (int i = 0; i < 100 && alive((pid_t)pid); i++)
		usleep(20000);
	assert_false(alive((pid_t)pid));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test_setup_teardown(test_file_tree, atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_installer,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_debian_single_file,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_debian_directory, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_mender_artifact_tool,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_debian_script, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_dir_ab, atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_streams, atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_and_default,
						atu_dir_setup,
						atu_dir_teardown),
	};

	snprintf(modules_dirs, sizeof(modules_dirs), "%s/agent/modules:%s",
		 FLEET_SOURCE_DIR, DEBIAN_MODULES);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
