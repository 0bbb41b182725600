/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Installers (agent/installer.h): runs one state of a Mender Update Module
 * v3 on the file tree of one release. Runs in fleet-agent on the thread of
 * the update state machine (agent/update.c); every state is a child
 * process with a clean environment, its own process group and a timeout
 * (the group is killed when it expires), so a hung module cannot hang the
 * agent.
 *
 * The file tree lives in <work_dir>/payloads/0000/tree, the layout of the
 * Mender client (docs.mender.io, "Update Modules v3 file API"): version,
 * current_artifact_{name,group}, current_device_type, header/{artifact_name,
 * artifact_group,payload_type,header-info,type-info,meta-data}, tmp/,
 * files/, and during Download the streams tree (stream-next and a named
 * pipe per payload file in streams/).
 *
 * Input it trusts: the manifest and the artifact, which update.c verified
 * (signatures, size, sha256) before calling installer_open, and the
 * modules directory (part of the device image). What a module prints is
 * untrusted text: kept bounded, first line for queries, tail for errors.
 *
 * Two differences from the Mender client, both because fleet-agent checks
 * the whole artifact before any installer state runs (Mender verifies
 * after streaming): files/ is filled before Download and stays there also
 * when a module reads the streams, and the streams are fed from the
 * verified file on disk, not from the network.
 *
 * A payload is the artifact itself (files/<manifest name>), or, when the
 * artifact is a Mender Artifact (a tar whose first member is `version`
 * with {"format": "mender", "version": 3}), its first payload: the files
 * of data/0000.tar.* go to files/ and its headers to header/, so artifacts
 * made for Debian's single-file or directory modules (single-file-artifact-
 * gen, mender-artifact) install unmodified. The DSSE envelope covers the
 * whole .mender file; its own optional signature is not needed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atomicfile.h"
#include "clock.h"
#include "installer.h"

#define INST_DEFAULT_DIRS \
	"/usr/share/fleet-agent/modules:/usr/share/mender/modules/v3"
#define INST_DEFAULT_TIMEOUT_S 3600
#define INST_OUT_MAX 4096 /* bytes of stdout kept (queries: first line) */
#define INST_ERR_TAIL 512 /* bytes of stderr kept (the end) */
#define INST_MAX_FILES 64 /* payload files streamed during Download */
#define INST_MODULE_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define INST_MAX_ENV 48

extern char **environ;

struct installer {
	char module[PATH_MAX]; /* the executable */
	char base[PATH_MAX]; /* <work_dir>/payloads/0000 */
	char tree[PATH_MAX]; /* <base>/tree */
	char work_dir[PATH_MAX];
	char device_type[PKI_RELEASE_NAME_MAX + 1];
	int timeout_s;
};

static const char *const state_names[INST_STATE_COUNT] = {
	[INST_DOWNLOAD] = "Download",
	[INST_ARTIFACT_INSTALL] = "ArtifactInstall",
	[INST_NEEDS_ARTIFACT_REBOOT] = "NeedsArtifactReboot",
	[INST_SUPPORTS_ROLLBACK] = "SupportsRollback",
	[INST_ARTIFACT_REBOOT] = "ArtifactReboot",
	[INST_ARTIFACT_VERIFY_REBOOT] = "ArtifactVerifyReboot",
	[INST_ARTIFACT_COMMIT] = "ArtifactCommit",
	[INST_ARTIFACT_ROLLBACK] = "ArtifactRollback",
	[INST_ARTIFACT_ROLLBACK_REBOOT] = "ArtifactRollbackReboot",
	[INST_ARTIFACT_VERIFY_ROLLBACK_REBOOT] = "ArtifactVerifyRollbackReboot",
	[INST_ARTIFACT_FAILURE] = "ArtifactFailure",
	[INST_CLEANUP] = "Cleanup",
};

const char *
inst_state_name(enum inst_state s)
{
	if ((int)s < 0 || s >= INST_STATE_COUNT)
		return "Unknown";
	return state_names[s];
}

/* ---- small file helpers ------------------------------------------------ */

static int
path_join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
mkdir_p(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", tmp,
				 strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes dirfd/name and everything below it without following links. */
static int
rm_at(int parent, const char *name)
{
	struct stat st;
	DIR *d = NULL;
	struct dirent *e;
	int fd, rc = 0;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (rm_at(dirfd(d), e->d_name) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) != 0)
		rc = -1;
	return rc;
}

static int
rm_tree(const char *path)
{
	return rm_at(AT_FDCWD, path);
}

static int
write_text(const char *dir, const char *name, const char *text, char *err,
	   size_t errlen)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), dir, name) != 0) {
		snprintf(err, errlen, "path too long: %s/%s", dir, name);
		return -1;
	}
	return atomic_write_file(path, text, strlen(text), 0600, err, errlen);
}

static int
write_json(const char *dir, const char *name, json_t *doc, char *err,
	   size_t errlen)
{
	char *text = NULL;
	int rc;

	if (doc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(doc);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = write_text(dir, name, text, err, errlen);
	free(text);
	return rc;
}

static int
copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	char buf[65536];
	int in = -1, out = -1, rc = -1;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(err, errlen, "open %s: %s", from, strerror(errno));
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		snprintf(err, errlen, "create %s: %s", to, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "read %s: %s", from,
				 strerror(errno));
			goto out;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				snprintf(err, errlen, "write %s: %s", to,
					 strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	if (fsync(out) != 0) {
		snprintf(err, errlen, "fsync %s: %s", to, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc != 0)
		(void)unlink(to);
	return rc;
}

/* Hard link (no copy of a large image) or, across file systems, copy. */
static int
link_or_copy(const char *from, const char *to, char *err, size_t errlen)
{
	(void)unlink(to);
	if (link(from, to) == 0)
		return 0;
	return copy_file(from, to, err, errlen);
}

/* The payload's file name: the manifest's name where it is a safe file
 * name, with anything else replaced by '_'. */
static void
payload_name(const char *name, char *out, size_t cap)
{
	size_t i = 0;

	for (; name[i] != '\0' && i + 1 < cap; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-' || c == '+';

		out[i] = ok ? c : '_';
	}
	out[i] = '\0';
	if (i == 0 || out[0] == '.')
		snprintf(out, cap, "artifact");
}

/* ---- running a child ---------------------------------------------------- */

struct run_out {
	char out[INST_OUT_MAX + 1]; /* the start of stdout */
	size_t out_len;
	char tail[INST_ERR_TAIL]; /* ring: the end of stderr */
	size_t tail_len; /* bytes ever written into the ring */
	int status;
	bool timed_out;
};

static void
keep_out(struct run_out *r, const char *p, size_t n)
{
	size_t room = INST_OUT_MAX - r->out_len;

	if (n > room)
		n = room;
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
	r->out[r->out_len] = '\0';
}

static void
keep_tail(struct run_out *r, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		r->tail[(r->tail_len++) % INST_ERR_TAIL] = p[i];
}

/* The last line of stderr (or of stdout: Debian's modules print some
 * errors there) for a message. */
static void
last_words(const struct run_out *r, char *out, size_t cap)
{
	char buf[INST_OUT_MAX + 1];
	size_t n = 0;
	char *end, *start;

	if (r->tail_len > 0) {
		size_t have = r->tail_len < INST_ERR_TAIL ? r->tail_len
							  : INST_ERR_TAIL;
		size_t first = r->tail_len - have;

		for (size_t i = 0; i < have; i++)
			buf[n++] = r->tail[(first + i) % INST_ERR_TAIL];
	} else {
		memcpy(buf, r->out, r->out_len);
		n = r->out_len;
	}
	buf[n] = '\0';
	end = buf + n;
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' ||
			     end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	start = strrchr(buf, '\n');
	start = start != NULL ? start + 1 : buf;
	for (char *p = start; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	snprintf(out, cap, "%.*s", (int)(cap - 1), start);
}

/* The environment of a module: nothing of the agent's but PATH, the
 * locale and the FLEET_MODULE_* variables (module settings an operator
 * gives the agent, e.g. FLEET_MODULE_DIR_AB_ROOT), plus where the agent
 * keeps its update state. */
static size_t
module_env(char **env, char bufs[][PATH_MAX + 64], const char *work_dir,
	   const char *device_type)
{
	size_t n = 0;

	snprintf(bufs[n], sizeof(bufs[n]), "PATH=%s", INST_MODULE_PATH);
	env[n] = bufs[n];
	n++;
	snprintf(bufs[n], sizeof(bufs[n]), "LC_ALL=C");
	env[n] = bufs[n];
	n++;
	snprintf(bufs[n], sizeof(bufs[n]), "FLEET_UPDATE_DIR=%s", work_dir);
	env[n] = bufs[n];
	n++;
	snprintf(bufs[n], sizeof(bufs[n]), "FLEET_DEVICE_TYPE=%s", device_type);
	env[n] = bufs[n];
	n++;
	for (char **e = environ; e != NULL && *e != NULL; e++) {
		if (n + 1 >= INST_MAX_ENV)
			break;
		if (strncmp(*e, "FLEET_MODULE_", 13) != 0 ||
		    strlen(*e) >= sizeof(bufs[n]))
			continue;
		snprintf(bufs[n], sizeof(bufs[n]), "%s", *e);
		env[n] = bufs[n];
		n++;
	}
	env[n] = NULL;
	return n;
}

/* In the child, before exec: only async-signal-safe calls. */
static void
close_from(int lowfd)
{
	long maxfd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0U) == 0)
		return;
#endif
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (long fd = lowfd; fd < maxfd; fd++)
		(void)close((int)fd);
}

static void
write_all_raw(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/*
 * The streams side of Download (a child in the module's process group):
 * for each payload file, one line "streams/<name>" on stream-next, then
 * the file's bytes on that named pipe; then an empty read of stream-next.
 * A module that does not stream never opens stream-next, so this blocks
 * in open() until it is killed when the module has exited.
 */
static void
streamer(const char *tree, char names[][NAME_MAX + 1], size_t n)
{
	char next[PATH_MAX], line[NAME_MAX + 16], pipe_path[PATH_MAX],
		file_path[PATH_MAX], buf[65536];

	signal(SIGPIPE, SIG_IGN);
	if (path_join(next, sizeof(next), tree, "stream-next") != 0)
		_exit(1);
	for (size_t i = 0; i < n; i++) {
		int fd, in;
		ssize_t r;
		int len =
			snprintf(line, sizeof(line), "streams/%s\n", names[i]);

		if (len < 0 || (size_t)len >= sizeof(line) ||
		    snprintf(pipe_path, sizeof(pipe_path), "%s/streams/%s",
			     tree, names[i]) >= (int)sizeof(pipe_path) ||
		    snprintf(file_path, sizeof(file_path), "%s/files/%s", tree,
			     names[i]) >= (int)sizeof(file_path))
			_exit(1);
		fd = open(next, O_WRONLY);
		if (fd < 0)
			_exit(1);
		write_all_raw(fd, line, (size_t)len);
		close(fd);
		fd = open(pipe_path, O_WRONLY);
		in = open(file_path, O_RDONLY);
		if (fd < 0 || in < 0)
			_exit(1);
		while ((r = read(in, buf, sizeof(buf))) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				_exit(1);
			write_all_raw(fd, buf, (size_t)r);
		}
		close(in);
		close(fd);
	}
	/* The end: an open and close with nothing written. */
	int fd = open(next, O_WRONLY);

	if (fd >= 0)
		close(fd);
	_exit(0);
}

struct run_spec {
	char *const *argv;
	const char *cwd;
	const char *work_dir;
	const char *device_type;
	int timeout_s;
	/* Download: stream these payload files from tree */
	const char *stream_tree;
	char (*stream_names)[NAME_MAX + 1];
	size_t n_stream;
};

static void
reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/*
 * Runs argv in cwd with a clean environment in a new process group and
 * waits (at most timeout_s; then the whole group is killed). Returns 0
 * when it ran (r->status holds how it ended) or -1 when it could not
 * start.
 */
static int
run_child(const struct run_spec *sp, struct run_out *r, char *err,
	  size_t errlen)
{
	char(*envbufs)[PATH_MAX + 64] = NULL;
	char *env[INST_MAX_ENV];
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	pid_t pid, spid = -1;
	uint64_t deadline;
	bool out_open = true, err_open = true, exited = false;
	uint64_t exit_at = 0;

	memset(r, 0, sizeof(*r));
	envbufs = calloc(INST_MAX_ENV, sizeof(*envbufs));
	if (envbufs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	module_env(env, envbufs, sp->work_dir, sp->device_type);
	if (pipe(outp) != 0 || pipe(errp) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		(void)setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(outp[1], 1) < 0 ||
		    dup2(errp[1], 2) < 0)
			_exit(127);
		close_from(3);
		if (sp->cwd != NULL && chdir(sp->cwd) != 0)
			_exit(127);
		execve(sp->argv[0], sp->argv, env);
		_exit(127);
	}
	(void)setpgid(pid, pid); /* no race with the child's own call */
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (sp->n_stream > 0) {
		spid = fork();
		if (spid == 0) {
			(void)setpgid(0, pid);
			close_from(3);
			streamer(sp->stream_tree, sp->stream_names,
				 sp->n_stream);
		}
		if (spid > 0)
			(void)setpgid(spid, pid);
	}
	deadline = clock_mono_ms() +
		   (uint64_t)(sp->timeout_s > 0 ? sp->timeout_s
						: INST_DEFAULT_TIMEOUT_S) *
			   1000u;
	for (;;) {
		struct pollfd p[2];
		nfds_t np = 0;
		uint64_t now = clock_mono_ms();
		char buf[4096];
		int st;

		if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
			exited = true;
			exit_at = now;
			r->status = st;
		}
		/* Done when the output is closed, or shortly after the
		 * module exited if a child of it still holds the pipes. */
		if ((!out_open && !err_open && exited) ||
		    (exited && now - exit_at > 1000))
			break;
		if (now >= deadline) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			break;
		}
		if (out_open)
			p[np++] = (struct pollfd){outp[0], POLLIN, 0};
		if (err_open)
			p[np++] = (struct pollfd){errp[0], POLLIN, 0};
		if (np == 0) {
			struct timespec ts = {0, 10 * 1000 * 1000};

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(p, np, 50) <= 0)
			continue;
		for (nfds_t i = 0; i < np; i++) {
			ssize_t n;

			if (p[i].revents == 0)
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (p[i].fd == outp[0]) {
				if (n <= 0)
					out_open = false;
				else
					keep_out(r, buf, (size_t)n);
			} else {
				if (n <= 0)
					err_open = false;
				else
					keep_tail(r, buf, (size_t)n);
			}
		}
	}
	if (!exited)
		reap(pid, &r->status);
	if (spid > 0) {
		int st;

		kill(spid, SIGKILL);
		reap(spid, &st);
	}
	close(outp[0]);
	close(errp[0]);
	free(envbufs);
	return 0;
fail:
	free(envbufs);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return -1;
}

/* "exit 3: <last line>", "killed after 30 s", "signal 9: ..." */
static void
describe_end(const char *what, const struct run_out *r, int timeout_s,
	     char *err, size_t errlen)
{
	char words[INST_ERR_TAIL + 1];

	last_words(r, words, sizeof(words));
	if (r->timed_out)
		snprintf(err, errlen, "%s: timed out after %d s, killed%s%s",
			 what, timeout_s, words[0] ? ": " : "", words);
	else if (WIFEXITED(r->status))
		snprintf(err, errlen, "%s: exit %d%s%s", what,
			 WEXITSTATUS(r->status), words[0] ? ": " : "", words);
	else
		snprintf(err, errlen, "%s: signal %d%s%s", what,
			 WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0,
			 words[0] ? ": " : "", words);
}

static bool
ran_ok(const struct run_out *r)
{
	return !r->timed_out && WIFEXITED(r->status) &&
	       WEXITSTATUS(r->status) == 0;
}

/* ---- Mender Artifacts ---------------------------------------------------- */

/* True when the file is a tar whose first member is "version" saying
 * {"format": "mender", "version": 3}. */
static bool
is_mender_artifact(const char *path)
{
	unsigned char hdr[512];
	char body[513], sizefield[13];
	unsigned long long size;
	json_t *doc = NULL;
	bool yes = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, "version", 8) != 0 ||
	    memcmp(hdr + 257, "ustar", 5) != 0)
		goto out;
	memcpy(sizefield, hdr + 124, 12);
	sizefield[12] = '\0';
	size = strtoull(sizefield, NULL, 8);
	if (size == 0 || size > 512)
		goto out;
	if (read(fd, body, (size_t)size) != (ssize_t)size)
		goto out;
	body[size] = '\0';
	doc = json_loads(body, 0, NULL);
	yes = doc != NULL && json_is_string(json_object_get(doc, "format")) &&
	      strcmp(json_string_value(json_object_get(doc, "format")),
		     "mender") == 0 &&
	      json_integer_value(json_object_get(doc, "version")) == 3;
out:
	json_decref(doc);
	close(fd);
	return yes;
}

static int
run_tar(struct installer *in, const char *archive, const char *dest, char *err,
	size_t errlen)
{
	char a[PATH_MAX], d[PATH_MAX],
		tar[] = "/bin/tar", x[] = "-x", no_owner[] = "--no-same-owner",
		no_perm[] = "--no-same-permissions", f[] = "-f", c[] = "-C";
	char *argv[] = {tar, x, no_owner, no_perm, f, a, c, d, NULL};
	struct run_spec sp = {.argv = argv,
			      .cwd = dest,
			      .work_dir = in->work_dir,
			      .device_type = in->device_type,
			      .timeout_s = in->timeout_s};
	struct run_out *r = NULL;
	int rc = -1;

	if (snprintf(a, sizeof(a), "%s", archive) >= (int)sizeof(a) ||
	    snprintf(d, sizeof(d), "%s", dest) >= (int)sizeof(d)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (run_child(&sp, r, err, errlen) != 0)
		goto out;
	if (!ran_ok(r)) {
		describe_end("tar", r, in->timeout_s, err, errlen);
		goto out;
	}
	rc = 0;
out:
	free(r);
	return rc;
}

/* The one member of dir whose name starts with prefix ("header.tar"). */
static int
find_prefixed(const char *dir, const char *prefix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = -1;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
		    path_join(out, cap, dir, e->d_name) == 0) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Unpacks payload 0000 of a Mender Artifact: data/0000.tar.* into
 * files/, header-info and headers/0000/{type-info,meta-data} into
 * header/. A second payload is refused (one installer per release). */
static int
unpack_mender(struct installer *in, const char *artifact, char *err,
	      size_t errlen)
{
	char unpack[PATH_MAX], hdir[PATH_MAX], p[PATH_MAX], q[PATH_MAX],
		files[PATH_MAX], header[PATH_MAX];
	static const char *const hfiles[][2] = {
		{"header-info", "header-info"},
		{"headers/0000/type-info", "type-info"},
		{"headers/0000/meta-data", "meta-data"},
	};
	int rc = -1;

	if (path_join(unpack, sizeof(unpack), in->base, "unpack") != 0 ||
	    path_join(hdir, sizeof(hdir), unpack, "h") != 0 ||
	    path_join(files, sizeof(files), in->tree, "files") != 0 ||
	    path_join(header, sizeof(header), in->tree, "header") != 0) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	(void)rm_tree(unpack);
	if (mkdir_p(hdir, err, errlen) != 0 ||
	    run_tar(in, artifact, unpack, err, errlen) != 0)
		goto out;
	if (path_join(p, sizeof(p), unpack, "data") != 0)
		goto out;
	if (find_prefixed(p, "0001.", q, sizeof(q)) == 0) {
		snprintf(err, errlen,
			 "Mender Artifact with more than one "
			 "payload: not supported");
		goto out;
	}
	if (find_prefixed(p, "0000.tar", q, sizeof(q)) != 0) {
		snprintf(err, errlen, "Mender Artifact without data/0000.tar");
		goto out;
	}
	if (run_tar(in, q, files, err, errlen) != 0)
		goto out;
	if (find_prefixed(unpack, "header.tar", p, sizeof(p)) != 0) {
		snprintf(err, errlen, "Mender Artifact without header.tar");
		goto out;
	}
	if (run_tar(in, p, hdir, err, errlen) != 0)
		goto out;
	for (size_t i = 0; i < sizeof(hfiles) / sizeof(hfiles[0]); i++) {
		struct stat st;

		if (path_join(p, sizeof(p), hdir, hfiles[i][0]) != 0 ||
		    path_join(q, sizeof(q), header, hfiles[i][1]) != 0)
			goto out;
		if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue; /* meta-data is optional */
		if (copy_file(p, q, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	(void)rm_tree(unpack);
	return rc;
}

/* ---- the file tree -------------------------------------------------------- */

static int
find_module(const char *dirs, const char *name, char *out, size_t cap)
{
	char list[PATH_MAX * 2];
	char *save = NULL, *d;

	snprintf(list, sizeof(list), "%s",
		 dirs != NULL && dirs[0] != '\0' ? dirs : INST_DEFAULT_DIRS);
	for (d = strtok_r(list, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		struct stat st;

		if (path_join(out, cap, d, name) != 0)
			continue;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

static bool
valid_installer_name(const char *s)
{
	if (s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

static int
make_fifo(const char *dir, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), dir, name) != 0) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	(void)unlink(path);
	if (mkfifo(path, 0600) != 0) {
		snprintf(err, errlen, "mkfifo %s in the update tree: %s", name,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static json_t *
header_info(const struct pki_manifest *m)
{
	json_t *hw = json_array();

	for (size_t i = 0; i < m->n_hw; i++)
		json_array_append_new(hw, json_string(m->hw[i]));
	return json_pack("{s:[{s:s}], s:{s:s, s:s}, s:{s:o}}", "payloads",
			 "type", m->installer, "artifact_provides",
			 "artifact_name", m->name, "artifact_version",
			 m->version, "artifact_depends", "device_type", hw);
}

/* Builds the tree from nothing: the marker file (written last) says it
 * is complete for this release. */
static int
build_tree(struct installer *in, const struct inst_env *env,
	   const struct pki_manifest *m, const char *artifact, char *err,
	   size_t errlen)
{
	char dir[PATH_MAX], file[PATH_MAX], name[NAME_MAX + 1];
	static const char *const subdirs[] = {"header", "tmp", "files",
					      "streams"};

	if (mkdir_p(in->tree, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (path_join(dir, sizeof(dir), in->tree, subdirs[i]) != 0 ||
		    mkdir_p(dir, err, errlen) != 0)
			return -1;
	}
	if (write_text(in->tree, "version", "3\n", err, errlen) != 0 ||
	    write_text(in->tree, "current_artifact_name",
		       env->current_name != NULL ? env->current_name : "", err,
		       errlen) != 0 ||
	    write_text(in->tree, "current_artifact_group", "", err, errlen) !=
		    0 ||
	    write_text(in->tree, "current_device_type", in->device_type, err,
		       errlen) != 0)
		return -1;
	if (path_join(dir, sizeof(dir), in->tree, "header") != 0)
		return -1;
	if (write_text(dir, "artifact_name", m->name, err, errlen) != 0 ||
	    write_text(dir, "artifact_group", "", err, errlen) != 0 ||
	    write_text(dir, "payload_type", m->installer, err, errlen) != 0 ||
	    write_json(dir, "header-info", header_info(m), err, errlen) != 0 ||
	    write_json(dir, "type-info",
		       json_pack("{s:s}", "type", m->installer), err,
		       errlen) != 0 ||
	    write_json(dir, "meta-data",
		       json_pack("{s:s, s:I, s:s, s:I}", "version", m->version,
				 "version_int", (json_int_t)m->version_int,
				 "sha256", m->sha256, "size",
				 (json_int_t)m->size),
		       err, errlen) != 0)
		return -1;
	if (is_mender_artifact(artifact)) {
		if (unpack_mender(in, artifact, err, errlen) != 0)
			return -1;
	} else {
		payload_name(m->name, name, sizeof(name));
		if (path_join(dir, sizeof(dir), in->tree, "files") != 0 ||
		    path_join(file, sizeof(file), dir, name) != 0 ||
		    link_or_copy(artifact, file, err, errlen) != 0)
			return -1;
	}
	if (make_fifo(in->tree, "stream-next", err, errlen) != 0)
		return -1;
	return 0;
}

int
installer_open(const struct inst_env *env, const struct pki_manifest *m,
	       const char *artifact_path, struct installer **out, char *err,
	       size_t errlen)
{
	struct installer *in = NULL;
	char marker[PATH_MAX], *seen = NULL;
	size_t seen_len = 0;
	char why[256];

	if (env == NULL || m == NULL || artifact_path == NULL ||
	    env->work_dir == NULL || out == NULL) {
		snprintf(err, errlen, "installer_open: missing argument");
		return -1;
	}
	if (!valid_installer_name(m->installer)) {
		snprintf(err, errlen, "installer name \"%s\" is not valid",
			 m->installer);
		return -1;
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	in->timeout_s =
		env->timeout_s > 0 ? env->timeout_s : INST_DEFAULT_TIMEOUT_S;
	snprintf(in->device_type, sizeof(in->device_type), "%s",
		 env->device_type != NULL ? env->device_type : "");
	if (find_module(env->modules_dir, m->installer, in->module,
			sizeof(in->module)) != 0) {
		snprintf(err, errlen, "installer \"%s\" not found in %s",
			 m->installer,
			 env->modules_dir != NULL && env->modules_dir[0]
				 ? env->modules_dir
				 : INST_DEFAULT_DIRS);
		goto fail;
	}
	if (snprintf(in->work_dir, sizeof(in->work_dir), "%s", env->work_dir) >=
		    (int)sizeof(in->work_dir) ||
	    path_join(in->base, sizeof(in->base), env->work_dir,
		      "payloads/0000") != 0 ||
	    path_join(in->tree, sizeof(in->tree), in->base, "tree") != 0 ||
	    path_join(marker, sizeof(marker), in->base, "release") != 0) {
		snprintf(err, errlen, "work_dir path too long");
		goto fail;
	}
	/* The same release again (an agent restart): keep the tree, tmp/
	 * included, since a module may keep its own state there. */
	if (read_file_bounded(marker, 256, &seen, &seen_len, why,
			      sizeof(why)) == 0 &&
	    seen_len >= 64 && memcmp(seen, m->sha256, 64) == 0) {
		free(seen);
		*out = in;
		return 0;
	}
	free(seen);
	(void)unlink(marker);
	if (rm_tree(in->tree) != 0) {
		snprintf(err, errlen, "cannot remove the old file tree %s: %s",
			 in->tree, strerror(errno));
		goto fail;
	}
	if (build_tree(in, env, m, artifact_path, err, errlen) != 0)
		goto fail;
	if (write_text(in->base, "release", m->sha256, err, errlen) != 0)
		goto fail;
	*out = in;
	return 0;
fail:
	free(in);
	return -1;
}

/* The regular files in files/, sorted, for the streams of Download. */
static size_t
list_payload(const char *tree, char names[][NAME_MAX + 1], size_t cap)
{
	char dir[PATH_MAX];
	struct dirent **list = NULL;
	int n;
	size_t k = 0;

	if (path_join(dir, sizeof(dir), tree, "files") != 0)
		return 0;
	n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char p[PATH_MAX];
		struct stat st;

		if (k < cap && list[i]->d_name[0] != '.' &&
		    path_join(p, sizeof(p), dir, list[i]->d_name) == 0 &&
		    lstat(p, &st) == 0 && S_ISREG(st.st_mode))
			snprintf(names[k++], NAME_MAX + 1, "%s",
				 list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return k;
}

int
installer_run(struct installer *in, enum inst_state s, char *answer,
	      size_t answer_len, char *err, size_t errlen)
{
	char(*names)[NAME_MAX + 1] = NULL;
	char *argv[4], state[64];
	struct run_spec sp;
	struct run_out *r = NULL;
	char what[PATH_MAX + 64];
	int rc = -1;

	if (in == NULL || (int)s < 0 || s >= INST_STATE_COUNT) {
		snprintf(err, errlen, "installer_run: bad state");
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	argv[0] = in->module;
	snprintf(state, sizeof(state), "%s", inst_state_name(s));
	argv[1] = state;
	argv[2] = in->tree;
	argv[3] = NULL;
	sp = (struct run_spec){.argv = argv,
			       .cwd = in->tree,
			       .work_dir = in->work_dir,
			       .device_type = in->device_type,
			       .timeout_s = in->timeout_s};
	if (s == INST_DOWNLOAD) {
		char tmp[256];

		names = calloc(INST_MAX_FILES, sizeof(*names));
		if (names == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		/* Fresh pipes each run: a killed earlier run may have left
		 * a stream half read. */
		sp.n_stream = list_payload(in->tree, names, INST_MAX_FILES);
		sp.stream_names = names;
		sp.stream_tree = in->tree;
		if (make_fifo(in->tree, "stream-next", tmp, sizeof(tmp)) != 0)
			sp.n_stream = 0;
		for (size_t i = 0; i < sp.n_stream; i++) {
			char sdir[PATH_MAX];

			if (path_join(sdir, sizeof(sdir), in->tree,
				      "streams") != 0 ||
			    make_fifo(sdir, names[i], tmp, sizeof(tmp)) != 0) {
				sp.n_stream = 0;
				break;
			}
		}
	}
	snprintf(what, sizeof(what), "%s %s", in->module, inst_state_name(s));
	if (run_child(&sp, r, err, errlen) != 0)
		goto out;
	if (!ran_ok(r)) {
		describe_end(what, r, in->timeout_s, err, errlen);
		goto out;
	}
	if (answer != NULL && answer_len > 0) {
		size_t n = strcspn(r->out, "\r\n");

		/* An empty answer is the protocol's default, "No". */
		if (n == 0 && (s == INST_NEEDS_ARTIFACT_REBOOT ||
			       s == INST_SUPPORTS_ROLLBACK))
			snprintf(answer, answer_len, "No");
		else
			snprintf(answer, answer_len, "%.*s", (int)n, r->out);
	}
	rc = 0;
out:
	free(names);
	free(r);
	return rc;
}

const char *
installer_tree(const struct installer *in)
{
	return in != NULL ? in->tree : NULL;
}

void
installer_close(struct installer *in, bool remove_tree)
{
	if (in == NULL)
		return;
	if (remove_tree)
		(void)rm_tree(in->base);
	free(in);
}
