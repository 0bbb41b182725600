/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics listener: a child of the supervisor (fleetd-metrics) that
 * answers GET /metrics on 127.0.0.1:metrics_port in the Prometheus text
 * format, from the registry every net worker writes (core/metrics.c). The
 * socket is bound by the supervisor (as root, before any drop), the child
 * keeps only that descriptor, drops to the configured user, and dies with
 * its parent (PR_SET_PDEATHSIG). Input is untrusted even on loopback: a
 * request head of at most 4 KiB, read within 5 s, one request per
 * connection, one connection at a time; anything but GET /metrics gets a
 * 404 or 405 and the connection is closed.
 */
#define _GNU_SOURCE /* setresuid, close_range */
#include "http/metrics_listen.h"

#include "buf.h"
#include "config.h"
#include "core/metrics.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define METRICS_HEAD_MAX 4096
#define METRICS_TIMEOUT_S 5
#define METRICS_BODY_MAX (8u * 1024u * 1024u)

static volatile sig_atomic_t metrics_stop;
static pid_t metrics_parent;

static void
metrics_on_signal(int sig)
{
	(void)sig;
	metrics_stop = 1;
}

static int
metrics_bind(long port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 16) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Started as root: become cfg->user (as the other children do). */
static int
metrics_drop(const struct fleetd_config *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(cfg->user != NULL ? cfg->user : "fleetd");
	if (pw == NULL || pw->pw_uid == 0) {
		log_error("metrics: no unprivileged user %s to run as",
			  cfg->user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		log_error("metrics: cannot drop to %s: %s", cfg->user,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static void
metrics_send(int fd, const char *head, const char *body, size_t len)
{
	struct buf out;

	buf_init(&out, METRICS_BODY_MAX + 512);
	if (buf_printf(&out,
		       "HTTP/1.1 %s\r\ncontent-type: %s\r\n"
		       "content-length: %zu\r\ncache-control: no-store\r\n"
		       "connection: close\r\n\r\n",
		       head,
		       body != NULL && len > 0 && head[0] == '2'
			       ? "text/plain; version=0.0.4; charset=utf-8"
			       : "text/plain; charset=utf-8",
		       len) == 0 &&
	    (len == 0 || buf_append(&out, body, len) == 0)) {
		size_t off = 0;

		while (off < out.len) {
			ssize_t n = send(fd, out.data + off, out.len - off,
					 MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	buf_free(&out);
}

/* Reads one request head and answers it. */
static void
metrics_serve(int fd)
{
	struct timeval tv = {METRICS_TIMEOUT_S, 0};
	char head[METRICS_HEAD_MAX + 1];
	size_t len = 0;
	char *sp1, *sp2;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < METRICS_HEAD_MAX) {
		ssize_t n = recv(fd, head + len, METRICS_HEAD_MAX - len, 0);

		if (n <= 0)
			return;
		len += (size_t)n;
		head[len] = '\0';
		if (strstr(head, "\r\n\r\n") != NULL ||
		    strstr(head, "\n\n") != NULL)
			break;
	}
	head[len] = '\0';
	sp1 = strchr(head, ' ');
	sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL) {
		metrics_send(fd, "400 Bad Request", "bad request\n", 12);
		return;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	if (strcmp(sp1 + 1, "/metrics") != 0 &&
	    strncmp(sp1 + 1, "/metrics?", 9) != 0) {
		metrics_send(fd, "404 Not Found", "only /metrics here\n", 19);
		return;
	}
	if (strcmp(head, "GET") != 0) {
		metrics_send(fd, "405 Method Not Allowed\r\nallow: GET",
			     "GET only\n", 9);
		return;
	}
	{
		struct buf body;

		buf_init(&body, METRICS_BODY_MAX);
		if (metrics_render(&body) == 0)
			metrics_send(fd, "200 OK", body.data ? body.data : "",
				     body.len);
		else
			metrics_send(fd, "500 Internal Server Error",
				     "the metrics do not fit\n", 23);
		buf_free(&body);
	}
}

static void
metrics_loop(int lfd)
{
	struct pollfd pfd = {lfd, POLLIN, 0};

	while (!metrics_stop && getppid() == metrics_parent) {
		int fd;

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		metrics_serve(fd);
		close(fd);
	}
}

pid_t
metrics_listen_start(const struct fleetd_config *cfg)
{
	struct sigaction sa;
	sigset_t none;
	int lfd;
	pid_t pid;

	if (cfg->metrics_port == 0)
		return 0;
	lfd = metrics_bind(cfg->metrics_port);
	if (lfd < 0) {
		log_error("metrics: cannot listen on 127.0.0.1:%ld: %s",
			  cfg->metrics_port, strerror(errno));
		return -1;
	}
	metrics_parent = getpid();
	pid = fork();
	if (pid < 0) {
		log_error("metrics: fork: %s", strerror(errno));
		close(lfd);
		return -1;
	}
	if (pid > 0) {
		close(lfd);
		log_info("metrics: serving http://127.0.0.1:%ld/metrics (pid "
			 "%ld)",
			 cfg->metrics_port, (long)pid);
		return pid;
	}
	/* The child: nothing of the supervisor's but the listen socket. */
	prctl(PR_SET_NAME, "fleetd-metrics", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != metrics_parent)
		_exit(0);
	if (dup2(lfd, 3) < 0)
		_exit(1);
	close_range(4, ~0U, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = metrics_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (metrics_drop(cfg) != 0)
		_exit(1);
	metrics_loop(3);
	_exit(0);
}
