/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd's supervisor process (DESIGN.md §2). It holds no keys, no
 * database connection and no listener: it creates one SOCK_SEQPACKET
 * socketpair per worker slot (the worker's end and the ca's end stay open
 * here, so either side can be restarted alone), binds the listen sockets
 * the workers inherit, forks the children, and restarts any that die, with
 * exponential backoff per child.
 *
 * Started as root, it stays root (to bind, and to start a ca that opens
 * the issuing-CA key) and every child drops to the unprivileged `user` of
 * the config for good: net workers at once, the ca after it has loaded
 * its key (docs/internals/privsep.md).
 *
 * Each child reports that it is up through a pipe (one byte); once every
 * child has, the supervisor tells the service manager READY=1 (sd_notify,
 * Type=notify), and RELOADING=1 ... READY=1 around a SIGHUP reload, and
 * STOPPING=1 when it stops (docs/install.md).
 */
#define _GNU_SOURCE /* setresuid, getresuid */
#include "supervisor.h"

#include "backoff.h"
#include "ca/ca_process.h"
#include "ca/signer_proto.h"
#include "clock.h"
#include "config.h"
#include "core/metrics.h"
#include "http/worker.h"
#include "http/metrics_listen.h"
#include "log.h"
#include "sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUPERVISOR_MAX_WORKERS 64
/* Connections the kernel queues before a worker accepts them (capped by
 * net.core.somaxconn, 4096 on Debian 12): a reconnect storm after a
 * restart arrives faster than handshakes complete. */
#define LISTEN_BACKLOG 4096
#define CHILD_STABLE_MS 30000 /* a child up this long resets its backoff */
#define STOP_GRACE_MS 10000
/* A reload that has not brought every child back up by then is reported
 * done anyway (READY=1 with a status saying which are down), so that
 * `systemctl reload` does not wait forever on a child that crash-loops. */
#define RELOAD_READY_MAX_MS 60000

enum child_kind { CHILD_CA, CHILD_WORKER };

struct child {
	enum child_kind kind;
	int slot; /* workers: 1..N */
	pid_t pid;
	uint64_t started_ms;
	uint64_t restart_at_ms; /* when pid == 0 */
	struct backoff backoff;
	bool reload_wanted; /* SIGHUP: replace this child in turn */
	bool reloading; /* SIGTERM sent for a reload */
	int ready_fd; /* read end of its readiness pipe, or -1 */
	bool ready; /* it said it is up (ca: key loaded; worker: serving) */
};

/*
 * Who the children run as. drop is false when fleetd was not started as
 * root: then nothing changes hands.
 */
struct privsep {
	bool drop;
	uid_t uid;
	gid_t gid;
	char user[64];
	pid_t supervisor; /* the children die with it */
};

struct supervisor {
	struct fleetd_config *cfg;
	struct privsep privsep;
	const char *config_path;
	int nworkers;
	int ca_fds[SUPERVISOR_MAX_WORKERS];
	int worker_fds[SUPERVISOR_MAX_WORKERS];
	struct child children[SUPERVISOR_MAX_WORKERS + 1];
	int nchildren;
	int api_fd; /* listen sockets, inherited by every net worker */
	int device_fd;
	bool listeners_held; /* passed by the service manager */
	bool notified_ready; /* READY=1 sent after the start */
	bool reload_active; /* RELOADING=1 sent, READY=1 not yet */
	bool degraded; /* STATUS= says a child died; say when all are back */
	uint64_t reload_started_ms;
	/* fleetd-metrics (metrics_port), restarted like the other children
	 * but outside children[]: it has no readiness pipe, is not replaced
	 * on a reload and binds its own socket at each start. */
	pid_t metrics_pid; /* 0: not running */
	uint64_t metrics_started_ms;
	uint64_t metrics_restart_at_ms;
	struct backoff metrics_backoff;
};

static volatile sig_atomic_t got_stop, got_hup, got_child;

static void
supervisor_on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		got_stop = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_child = 1;
}

static void
close_all_but(struct supervisor *sv, const int *keep, size_t nkeep)
{
	for (int i = 0; i < sv->nworkers; i++) {
		int fds[2] = {sv->ca_fds[i], sv->worker_fds[i]};

		for (int j = 0; j < 2; j++) {
			bool kept = false;

			for (size_t k = 0; k < nkeep; k++)
				kept = kept || keep[k] == fds[j];
			if (!kept)
				close(fds[j]);
		}
	}
}

/*
 * Looks up the unprivileged user when running as root. Refuses uid 0 and
 * a missing user: running the children as root by default is what this
 * exists to prevent.
 */
static int
privsep_init(struct privsep *ps, const char *user)
{
	struct passwd *pw;

	memset(ps, 0, sizeof(ps[0]));
	ps->supervisor = getpid();
	if (geteuid() != 0)
		return 0;
	if (strlen(user) >= sizeof(ps->user)) {
		log_error("user name '%s' is too long", user);
		return -1;
	}
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_error("fleetd is started as root and runs its children as "
			  "user '%s', which does not exist%s%s: create it "
			  "(useradd --system --user-group --no-create-home "
			  "--shell /usr/sbin/nologin %s) or set 'user' in the "
			  "config; refusing to run the children as root",
			  user, errno != 0 ? ": " : "",
			  errno != 0 ? strerror(errno) : "", user);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("user '%s' has uid or gid 0: fleetd's children must "
			  "run as an unprivileged user; refusing to start",
			  user);
		return -1;
	}
	ps->drop = true;
	ps->uid = pw->pw_uid;
	ps->gid = pw->pw_gid;
	snprintf(ps->user, sizeof(ps->user), "%s", user);
	return 0;
}

/*
 * In a child: becomes ps->user for good (supplementary groups cleared,
 * real, effective and saved ids set, then checked, including that root
 * cannot be regained). 0, or -1 after logging why; the caller exits.
 */
static int
privsep_drop(const struct privsep *ps)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (!ps->drop)
		return 0;
	if (setgroups(0, NULL) != 0 ||
	    setresgid(ps->gid, ps->gid, ps->gid) != 0 ||
	    setresuid(ps->uid, ps->uid, ps->uid) != 0) {
		log_error("cannot drop privileges to user %s: %s", ps->user,
			  strerror(errno));
		return -1;
	}
	if (getresuid(&ruid, &euid, &suid) != 0 ||
	    getresgid(&rgid, &egid, &sgid) != 0 || ruid != ps->uid ||
	    euid != ps->uid || suid != ps->uid || rgid != ps->gid ||
	    egid != ps->gid || sgid != ps->gid || getgroups(0, NULL) != 0 ||
	    setuid(0) == 0 || setgid(0) == 0) {
		log_error("privileges were not fully dropped to user %s",
			  ps->user);
		return -1;
	}
	/*
	 * Not dumpable (the kernel already made it so on the uid change; say
	 * it): a sibling of the same uid can neither ptrace this process nor
	 * read its memory or its /proc/<pid>/fd, so a compromised net worker
	 * cannot take the key out of the ca.
	 */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* A change of credentials cleared the parent-death signal. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != ps->supervisor)
		_exit(0);
	return 0;
}

/* A child says it is up: one byte on its readiness pipe, which it then
 * closes (so a later death is an EOF the supervisor already expects). */
static void
child_report_ready(int *fd)
{
	ssize_t n;

	if (*fd < 0)
		return;
	do {
		n = write(*fd, "R", 1);
	} while (n < 0 && errno == EINTR);
	close(*fd);
	*fd = -1;
}

struct ca_hook {
	const struct privsep *privsep;
	int ready_fd;
};

/* ca_process_main's hook: called once the issuing-CA key is loaded; the
 * ca is up once it has dropped its privileges. */
static int
ca_loaded_hook(void *arg)
{
	struct ca_hook *h = arg;

	if (privsep_drop(h->privsep) != 0)
		return -1;
	child_report_ready(&h->ready_fd);
	return 0;
}

/* Opens path as the current user, for reading; the errno, or 0. */
static int
try_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/*
 * Before any child starts: a probe process drops to the user and checks
 * that what a net worker opens is readable to it (files, and the database:
 * a socket directory it cannot search fails only after the drop) and that
 * the issuing-CA key is not, so a wrong mode is one clear message at start
 * instead of workers that fail in a loop (or a key that privilege
 * separation no longer protects).
 */
static int
privsep_check(const struct privsep *ps, const char *pki_dir,
	      const char *database)
{
	static const char *const need[] = {
		"server/server-chain.pem",
		"server/server.key",
		"ca-bundle.pem",
	};
	char path[4096];
	int status = 0, bad = 0, e;
	PGconn *conn;
	pid_t pid;

	if (!ps->drop)
		return 0;
	pid = fork();
	if (pid < 0) {
		log_error("supervisor: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (privsep_drop(ps) != 0)
			_exit(1);
		for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", pki_dir, need[i]);
			e = try_read(path);
			if (e != 0) {
				log_error("user %s cannot read %s (%s), which "
					  "the net workers need: give it to "
					  "group %s (chgrp %s FILE; chmod "
					  "0640 FILE) and make its "
					  "directories searchable",
					  ps->user, path, strerror(e), ps->user,
					  ps->user);
				bad = 1;
			}
		}
		snprintf(path, sizeof(path), "%s/issuing/issuing.key", pki_dir);
		if (try_read(path) == 0) {
			log_error("user %s can read the issuing-CA key %s: "
				  "only root may (chown root:root FILE; chmod "
				  "0600 FILE)",
				  ps->user, path);
			bad = 1;
		}
		conn = PQconnectdb(database);
		if (PQstatus(conn) != CONNECTION_OK) {
			log_error("user %s cannot connect to the database "
				  "(the net workers must): %s",
				  ps->user, PQerrorMessage(conn));
			bad = 1;
		}
		PQfinish(conn);
		_exit(bad);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The signals the supervisor handles, all to one handler (or SIG_DFL). */
static void
set_supervisor_signals(void (*handler)(int))
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void
child_reset_signals(void)
{
	sigset_t none;

	set_supervisor_signals(SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
child_start(struct supervisor *sv, struct child *c)
{
	pid_t parent = getpid();
	int ready[2] = {-1, -1};
	pid_t pid;
	int rc;

	if (pipe2(ready, O_CLOEXEC) != 0) {
		/* Not fatal: this child is taken as up when it starts. */
		log_warn("supervisor: pipe: %s", strerror(errno));
		ready[0] = ready[1] = -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("supervisor: fork: %s", strerror(errno));
		if (ready[0] >= 0) {
			close(ready[0]);
			close(ready[1]);
		}
		c->restart_at_ms = clock_mono_ms() + backoff_next(&c->backoff);
		return;
	}
	if (pid > 0) {
		if (ready[1] >= 0)
			close(ready[1]);
		c->ready_fd = ready[0];
		c->ready = ready[0] < 0;
		c->pid = pid;
		c->started_ms = clock_mono_ms();
		if (c->kind == CHILD_CA)
			log_info("supervisor: started ca (pid %ld)", (long)pid);
		else
			log_info("supervisor: started net worker #%d (pid %ld)",
				 c->slot, (long)pid);
		return;
	}
	/* Die with the supervisor; if it is already gone, do not start. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	child_reset_signals();
	/* The other children's readiness pipes are the supervisor's. */
	for (int i = 0; i < sv->nchildren; i++) {
		if (sv->children[i].ready_fd >= 0)
			close(sv->children[i].ready_fd);
	}
	if (ready[0] >= 0)
		close(ready[0]);
	if (c->kind == CHILD_CA) {
		struct ca_hook hook = {&sv->privsep, ready[1]};

		/* The ca process has no network at all. */
		close(sv->api_fd);
		close(sv->device_fd);
		close_all_but(sv, sv->ca_fds, (size_t)sv->nworkers);
		/* It drops once it holds the key, and is up then. */
		rc = ca_process_main(sv->ca_fds, (size_t)sv->nworkers, sv->cfg,
				     ca_loaded_hook, &hook);
		if (hook.ready_fd >= 0)
			close(hook.ready_fd);
	} else {
		int fd = sv->worker_fds[c->slot - 1];

		close_all_but(sv, &fd, 1);
		/* The listen sockets are bound: nothing needs root now. */
		if (privsep_drop(&sv->privsep) != 0)
			_exit(1);
		/*
		 * Up from here: privileges dropped, the listen sockets and
		 * the ca's channel in hand; connections wait in the listen
		 * backlog until the loop accepts them. worker_main does not
		 * report its own readiness yet; when it does (after its
		 * "serving" line), this call goes.
		 */
		child_report_ready(&ready[1]);
		rc = worker_main(c->slot, fd, sv->api_fd, sv->device_fd,
				 sv->listeners_held, sv->cfg);
	}
	_exit(rc);
}

/* Starts fleetd-metrics when metrics_port is set; a failure (the port
 * taken, no fork) is tried again after the backoff. */
static void
metrics_child_start(struct supervisor *sv)
{
	pid_t pid;
	uint32_t delay;

	if (sv->cfg->metrics_port == 0)
		return;
	pid = metrics_listen_start(sv->cfg);
	if (pid > 0) {
		sv->metrics_pid = pid;
		sv->metrics_started_ms = clock_mono_ms();
		return;
	}
	delay = backoff_next(&sv->metrics_backoff);
	sv->metrics_pid = 0;
	sv->metrics_restart_at_ms = clock_mono_ms() + delay;
	log_warn("supervisor: fleetd-metrics not started; trying again in %u "
		 "ms",
		 delay);
}

/* Says how a child ended and when it comes back. */
static void
log_child_end(const char *name, pid_t pid, int status, uint32_t delay)
{
	if (WIFSIGNALED(status))
		log_warn("supervisor: %s (pid %ld) died of signal %d; "
			 "restarting in %u ms",
			 name, (long)pid, WTERMSIG(status), delay);
	else
		log_warn("supervisor: %s (pid %ld) exited with %d; "
			 "restarting in %u ms",
			 name, (long)pid, WEXITSTATUS(status), delay);
}

/* fleetd-metrics ended: restart it after its backoff, as a worker. */
static void
metrics_child_died(struct supervisor *sv, pid_t pid, int status)
{
	uint64_t now = clock_mono_ms();
	uint32_t delay;

	if (now - sv->metrics_started_ms >= CHILD_STABLE_MS)
		backoff_reset(&sv->metrics_backoff);
	delay = backoff_next(&sv->metrics_backoff);
	sv->metrics_pid = 0;
	sv->metrics_restart_at_ms = now + delay;
	if (got_stop)
		return;
	log_child_end("fleetd-metrics", pid, status, delay);
}

static struct child *
child_by_pid(struct supervisor *sv, pid_t pid)
{
	for (int i = 0; i < sv->nchildren; i++) {
		if (sv->children[i].pid == pid)
			return &sv->children[i];
	}
	return NULL;
}

static void
reap_children(struct supervisor *sv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_by_pid(sv, pid);
		uint64_t now = clock_mono_ms();
		uint32_t delay;

		if (pid == sv->metrics_pid) {
			metrics_child_died(sv, pid, status);
			continue;
		}
		if (c == NULL)
			continue;
		if (c->ready_fd >= 0) {
			close(c->ready_fd);
			c->ready_fd = -1;
		}
		c->ready = false;
		if (now - c->started_ms >= CHILD_STABLE_MS)
			backoff_reset(&c->backoff);
		delay = c->reloading ? 0 : backoff_next(&c->backoff);
		c->pid = 0;
		c->restart_at_ms = now + delay;
		if (got_stop)
			continue;
		if (c->reloading) {
			c->reloading = false;
			continue;
		}
		if (c->kind == CHILD_CA) {
			log_child_end("fleetd-ca", pid, status, delay);
		} else {
			char name[32];

			snprintf(name, sizeof(name), "fleetd-net%d", c->slot);
			log_child_end(name, pid, status, delay);
		}
		sv->degraded = true;
		if (c->kind == CHILD_CA)
			sd_notify_sendf("STATUS=ca (pid %ld) died; restarting "
					"in %u ms",
					(long)pid, delay);
		else
			sd_notify_sendf("STATUS=net worker #%d (pid %ld) died; "
					"restarting in %u ms",
					c->slot, (long)pid, delay);
	}
}

static void
signal_children(struct supervisor *sv, int sig)
{
	for (int i = 0; i < sv->nchildren; i++) {
		if (sv->children[i].pid > 0)
			kill(sv->children[i].pid, sig);
	}
	if (sv->metrics_pid > 0)
		kill(sv->metrics_pid, sig);
}

static bool
any_alive(struct supervisor *sv)
{
	for (int i = 0; i < sv->nchildren; i++) {
		if (sv->children[i].pid > 0)
			return true;
	}
	return sv->metrics_pid > 0;
}

/* SIGTERM to all, wait for the drain, SIGKILL what is left. */
static void
stop_children(struct supervisor *sv)
{
	uint64_t deadline = clock_mono_ms() + STOP_GRACE_MS;

	log_info("supervisor: stopping");
	/* Refuse new connections at once (a load balancer sends them to
	 * another instance); the workers drain what they accepted. Sockets
	 * the service manager holds stay open: what comes meanwhile waits
	 * in their queue for the next instance. */
	if (!sv->listeners_held) {
		shutdown(sv->api_fd, SHUT_RDWR);
		shutdown(sv->device_fd, SHUT_RDWR);
	}
	sd_notify_send("STOPPING=1\nSTATUS=stopping: draining the net "
		       "workers");
	/* Workers first, so their in-flight sign requests still complete. */
	for (int i = 0; i < sv->nchildren; i++) {
		if (sv->children[i].kind == CHILD_WORKER &&
		    sv->children[i].pid > 0)
			kill(sv->children[i].pid, SIGTERM);
	}
	while (any_alive(sv) && clock_mono_ms() < deadline) {
		bool workers_alive = false;

		reap_children(sv);
		for (int i = 0; i < sv->nchildren; i++)
			workers_alive = workers_alive ||
					(sv->children[i].kind == CHILD_WORKER &&
					 sv->children[i].pid > 0);
		if (!workers_alive)
			signal_children(sv, SIGTERM);
		clock_sleep_ms(20);
	}
	signal_children(sv, SIGKILL);
	while (any_alive(sv)) {
		reap_children(sv);
		clock_sleep_ms(10);
	}
}

static int
make_channels(struct supervisor *sv)
{
	for (int i = 0; i < sv->nworkers; i++) {
		int pair[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
			       pair) != 0) {
			log_error("supervisor: socketpair: %s",
				  strerror(errno));
			return -1;
		}
		sv->ca_fds[i] = pair[0];
		sv->worker_fds[i] = pair[1];
		/* Room for one SIGNER_MSG_MAX record each way. */
		for (int j = 0; j < 2; j++) {
			int size = SIGNER_SOCKBUF;

			setsockopt(pair[j], SOL_SOCKET, SO_SNDBUF, &size,
				   sizeof(size));
			setsockopt(pair[j], SOL_SOCKET, SO_RCVBUF, &size,
				   sizeof(size));
		}
	}
	return 0;
}

/*
 * Binds a listen socket that every net worker inherits and accepts on;
 * binding here keeps the ports fixed while workers come and go.
 * TCP_NODELAY is set on the listener because Linux copies it to every
 * accepted socket and the workers adopt those without setting it: with
 * Nagle on, a response written behind the TLS 1.3 session tickets waits
 * for the client's delayed ACK, 40 ms on every request.
 */
static int
listen_socket(const char *host, long port)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(service, sizeof(service), "%ld", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		log_error("cannot listen on %s:%ld: %s", host, port,
			  gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		log_error("cannot listen on %s:%ld: %s", host, port,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * Socket activation (sd_listen_fds(3), the protocol without libsystemd):
 * the service manager passes listen sockets from descriptor 3 on,
 * LISTEN_FDS of them, for the process LISTEN_PID, named by
 * LISTEN_FDNAMES ("api:device", fleetd.socket's FileDescriptorName=).
 * It holds them while fleetd restarts, so devices that reconnect
 * meanwhile wait in the queue instead of being refused and backing off
 * (docs/ops/restarts.md). Returns the descriptor named name, -1 when
 * none is passed to us, or -2 when one is but it is not a listening
 * stream socket.
 */
static int
activated_socket(const char *name)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES"), *p;
	char *end;
	long n, want_pid;
	int fd = -1, accepting = 0, type = 0, one = 1;
	socklen_t len = sizeof(int);
	size_t name_len = strlen(name);

	if (pid == NULL || fds == NULL || names == NULL)
		return -1;
	want_pid = strtol(pid, &end, 10);
	if (*end != '\0' || want_pid != (long)getpid())
		return -1;
	n = strtol(fds, &end, 10);
	if (*end != '\0' || n < 1 || n > 16)
		return -1;
	p = names;
	for (long i = 0; i < n && p != NULL; i++) {
		const char *colon = strchr(p, ':');
		size_t l = colon != NULL ? (size_t)(colon - p) : strlen(p);

		if (l == name_len && strncmp(p, name, l) == 0) {
			fd = 3 + (int)i;
			break;
		}
		p = colon != NULL ? colon + 1 : NULL;
	}
	if (fd < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    !accepting || type != SOCK_STREAM) {
		log_error("socket activation: descriptor %d (\"%s\") is not a "
			  "listening stream socket",
			  fd, name);
		return -2;
	}
	/* What listen_socket sets on its own (a worker that loses the race
	 * for a connection must not block in accept). */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		log_error("socket activation: descriptor %d: %s", fd,
			  strerror(errno));
		return -2;
	}
	return fd;
}

/* The listen socket named name: the service manager's, else bound here. */
static int
supervisor_listener(struct supervisor *sv, const char *name, const char *host,
		    long port)
{
	int fd = activated_socket(name);

	if (fd == -2)
		return -1;
	if (fd >= 0) {
		sv->listeners_held = true;
		log_info("supervisor: the %s listener is the service manager's "
			 "(socket activation; %s:%ld in the config unused)",
			 name, host, port);
		return fd;
	}
	return listen_socket(host, port);
}

static void
config_swap_str(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/*
 * SIGHUP: read the config file again and, if it is valid, replace the
 * children one at a time so they start with it (the listen sockets stay
 * open here, so the other workers serve meanwhile). Listen addresses and
 * the number of workers need a restart.
 */
static void
supervisor_reload(struct supervisor *sv)
{
	struct fleetd_config next;
	enum log_level level = LOG_LEVEL_INFO;
	char err[1024];

	sv->reload_active = true;
	sv->reload_started_ms = clock_mono_ms();
	sd_notify_sendf("RELOADING=1\nSTATUS=reloading %s",
			sv->config_path != NULL ? sv->config_path
						: "(no config file)");
	if (sv->config_path == NULL) {
		log_info("supervisor: SIGHUP: no config file; replacing "
			 "children with the same settings");
	} else if (fleetd_config_load(sv->config_path, &next, err,
				      sizeof(err)) != 0) {
		log_error("supervisor: SIGHUP: %s; keeping the running "
			  "configuration",
			  err);
		/* Nothing changes: the reload is over, and failed. */
		sd_notify_sendf("READY=1\nSTATUS=reload failed, running "
				"configuration kept: %s",
				err);
		sv->reload_active = false;
		return;
	} else {
		if (strcmp(next.api_bind, sv->cfg->api_bind) != 0 ||
		    next.api_port != sv->cfg->api_port ||
		    strcmp(next.device_bind, sv->cfg->device_bind) != 0 ||
		    next.device_port != sv->cfg->device_port ||
		    next.workers != sv->cfg->workers ||
		    strcmp(next.user, sv->cfg->user) != 0)
			log_warn("supervisor: SIGHUP: listen addresses, "
				 "workers and user change only with a "
				 "restart; keeping the running ones");
		/* The children must describe the sockets they inherit and
		 * drop to the user privsep looked up: those stay. */
		config_swap_str(&next.api_bind, &sv->cfg->api_bind);
		config_swap_str(&next.device_bind, &sv->cfg->device_bind);
		config_swap_str(&next.user, &sv->cfg->user);
		next.api_port = sv->cfg->api_port;
		next.device_port = sv->cfg->device_port;
		next.workers = sv->cfg->workers;
		/* fleetd-metrics is restarted on this port when it dies */
		next.metrics_port = sv->cfg->metrics_port;
		fleetd_config_free(sv->cfg);
		*sv->cfg = next;
		(void)log_level_parse(sv->cfg->log_level, &level);
		log_setup("fleetd", level, sv->cfg->log_syslog != 0);
		log_info("supervisor: SIGHUP: configuration reloaded");
	}
	for (int i = 0; i < sv->nchildren; i++)
		sv->children[i].reload_wanted = true;
}

/* Starts the next replacement once the previous one is back and up, so
 * that the others serve meanwhile. */
static void
reload_step(struct supervisor *sv)
{
	for (int i = 0; i < sv->nchildren; i++) {
		struct child *c = &sv->children[i];

		if (c->reloading || (c->pid == 0 && c->reload_wanted))
			return;
		if (c->reload_wanted && (c->pid == 0 || !c->ready))
			continue;
		if (!c->reload_wanted && (c->pid == 0 || !c->ready) &&
		    clock_mono_ms() - sv->reload_started_ms <
			    RELOAD_READY_MAX_MS)
			return; /* a replaced child is not up yet */
	}
	for (int i = 0; i < sv->nchildren; i++) {
		struct child *c = &sv->children[i];

		if (c->reload_wanted && c->pid > 0) {
			c->reload_wanted = false;
			c->reloading = true;
			kill(c->pid, SIGTERM);
			return;
		}
	}
}

/* Reads the readiness bytes that arrived; a child that closed its pipe
 * without one died before it was up (reap_children restarts it). */
static void
collect_ready(struct supervisor *sv, const struct pollfd *pfds, int npfds)
{
	for (int i = 0; i < npfds; i++) {
		struct child *c = NULL;
		char byte;
		ssize_t n;

		if (pfds[i].revents == 0)
			continue;
		for (int j = 0; j < sv->nchildren; j++) {
			if (sv->children[j].ready_fd == pfds[i].fd)
				c = &sv->children[j];
		}
		if (c == NULL)
			continue;
		n = read(c->ready_fd, &byte, 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		c->ready = n == 1;
		close(c->ready_fd);
		c->ready_fd = -1;
		if (c->ready && c->kind == CHILD_CA)
			log_debug("supervisor: ca (pid %ld) is up",
				  (long)c->pid);
		else if (c->ready)
			log_debug("supervisor: net worker #%d (pid %ld) is up",
				  c->slot, (long)c->pid);
	}
}

/* The service manager hears READY=1 once every child is up: after the
 * start, and after a reload has replaced them all. */
static void
notify_progress(struct supervisor *sv)
{
	int up = 0;
	bool replacing = false;

	for (int i = 0; i < sv->nchildren; i++) {
		const struct child *c = &sv->children[i];

		up += c->pid > 0 && c->ready;
		replacing = replacing || c->reload_wanted || c->reloading;
	}
	if (!sv->notified_ready && up == sv->nchildren) {
		sv->notified_ready = true;
		log_info("supervisor: ready (ca and %d net workers up)",
			 sv->nworkers);
		sd_notify_sendf("READY=1\nSTATUS=serving: api %s:%ld, devices "
				"%s:%ld, %d net workers",
				sv->cfg->api_bind, sv->cfg->api_port,
				sv->cfg->device_bind, sv->cfg->device_port,
				sv->nworkers);
		return;
	}
	if (!sv->reload_active && sv->degraded && up == sv->nchildren) {
		sv->degraded = false;
		sd_notify_sendf("STATUS=serving: api %s:%ld, devices %s:%ld, "
				"%d net workers",
				sv->cfg->api_bind, sv->cfg->api_port,
				sv->cfg->device_bind, sv->cfg->device_port,
				sv->nworkers);
	}
	if (!sv->reload_active || replacing)
		return;
	if (up == sv->nchildren) {
		sv->reload_active = false;
		log_info("supervisor: reload done (ca and %d net workers up)",
			 sv->nworkers);
		sd_notify_sendf("READY=1\nSTATUS=serving (reloaded): api "
				"%s:%ld, devices %s:%ld, %d net workers",
				sv->cfg->api_bind, sv->cfg->api_port,
				sv->cfg->device_bind, sv->cfg->device_port,
				sv->nworkers);
	} else if (clock_mono_ms() - sv->reload_started_ms >=
		   RELOAD_READY_MAX_MS) {
		sv->reload_active = false;
		log_warn("supervisor: reload done, but only %d of %d "
			 "children are up",
			 up, sv->nchildren);
		sd_notify_sendf("READY=1\nSTATUS=reloaded; %d of %d children "
				"up, the others restarting",
				up, sv->nchildren);
	}
}

/*
 * Each device connection is a descriptor of the net worker holding it, so
 * a worker holds at most about its open-files limit of them. Raise the
 * soft limit to the hard one, as a service does (the children inherit
 * it; systemd's LimitNOFILE= sets both), and say what that makes for the
 * instance: 100,000 devices under a 20,000 limit need six workers or
 * more (docs/ops/sizing.md).
 */
static void
raise_fd_limit(int nworkers)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("supervisor: cannot raise the open-files "
				 "limit from %ld to %ld: %s",
				 (long)was, (long)rl.rlim_max, strerror(errno));
			rl.rlim_cur = was;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return;
	log_info("supervisor: open-files limit %ld per process: %d net "
		 "workers hold at most about %ld connections",
		 (long)rl.rlim_cur, nworkers,
		 (long)nworkers * ((long)rl.rlim_cur - 128));
}

static void
install_signals(void)
{
	struct sigaction sa;

	set_supervisor_signals(supervisor_on_signal);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int
supervisor_run(struct fleetd_config *cfg, const char *config_path)
{
	struct supervisor sv;
	long ncores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(&sv, 0, sizeof(sv));
	sv.cfg = cfg;
	sv.config_path = config_path;
	sv.nworkers = (int)(cfg->workers > 0 ? cfg->workers
					     : (ncores > 0 ? ncores : 1));
	if (sv.nworkers > SUPERVISOR_MAX_WORKERS)
		sv.nworkers = SUPERVISOR_MAX_WORKERS;
	raise_fd_limit(sv.nworkers);
	if (privsep_init(&sv.privsep, cfg->user) != 0 ||
	    privsep_check(&sv.privsep, cfg->pki_dir, cfg->database) != 0)
		return 1;
	sv.api_fd =
		supervisor_listener(&sv, "api", cfg->api_bind, cfg->api_port);
	if (sv.api_fd < 0)
		return 1;
	sv.device_fd = supervisor_listener(&sv, "device", cfg->device_bind,
					   cfg->device_port);
	if (sv.device_fd < 0)
		return 1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (make_channels(&sv) != 0)
		return 1;
	metrics_shared_init(); /* before the first fork */
	install_signals();
	backoff_init(&sv.metrics_backoff, 100, 30000, 0);
	metrics_child_start(&sv); /* when metrics_port is set */

	sv.children[0].kind = CHILD_CA;
	for (int i = 0; i < sv.nworkers; i++) {
		sv.children[i + 1].kind = CHILD_WORKER;
		sv.children[i + 1].slot = i + 1;
	}
	sv.nchildren = sv.nworkers + 1;
	for (int i = 0; i < sv.nchildren; i++)
		sv.children[i].ready_fd = -1;
	sd_notify_sendf("STATUS=starting the ca and %d net workers",
			sv.nworkers);
	for (int i = 0; i < sv.nchildren; i++) {
		backoff_init(&sv.children[i].backoff, 100, 30000, 0);
		child_start(&sv, &sv.children[i]);
	}
	log_info("supervisor: %d net workers, api %s:%ld, device %s:%ld%s%s",
		 sv.nworkers, cfg->api_bind, cfg->api_port, cfg->device_bind,
		 cfg->device_port, sv.privsep.drop ? ", children run as " : "",
		 sv.privsep.drop ? sv.privsep.user : "");

	while (!got_stop) {
		struct pollfd pfds[SUPERVISOR_MAX_WORKERS + 1];
		int npfds = 0;
		uint64_t now;

		for (int i = 0; i < sv.nchildren; i++) {
			if (sv.children[i].ready_fd < 0)
				continue;
			pfds[npfds].fd = sv.children[i].ready_fd;
			pfds[npfds].events = POLLIN;
			pfds[npfds].revents = 0;
			npfds++;
		}
		/* Signals interrupt the wait; the tick bounds restart lag. */
		if (poll(pfds, (nfds_t)npfds, 50) > 0)
			collect_ready(&sv, pfds, npfds);
		if (got_child) {
			got_child = 0;
			reap_children(&sv);
		}
		if (got_hup) {
			got_hup = 0;
			supervisor_reload(&sv);
		}
		reload_step(&sv);
		notify_progress(&sv);
		now = clock_mono_ms();
		for (int i = 0; i < sv.nchildren && !got_stop; i++) {
			struct child *c = &sv.children[i];

			if (c->pid == 0 && now >= c->restart_at_ms)
				child_start(&sv, c);
		}
		if (!got_stop && cfg->metrics_port != 0 &&
		    sv.metrics_pid == 0 && now >= sv.metrics_restart_at_ms)
			metrics_child_start(&sv);
	}
	stop_children(&sv);
	log_info("supervisor: stopped");
	return 0;
}
