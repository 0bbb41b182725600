/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The progress bar and poll loop of fleetctl's --watch options (see
 * watch.h). Shared by `config status --watch` (cfg_render.c draws its
 * line with ctl_bar) and `deployments show --watch` (cmd_deployments.c).
 */
#include "watch.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define LINE_MAX_LEN 512

size_t
ctl_bar(char *buf, size_t buflen, long long done, long long total)
{
	char cells[BAR_WIDTH + 1];
	int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : BAR_WIDTH;
	int pct = total > 0 ? (int)(done * 100 / total) : 100;
	int n;

	if (fill > BAR_WIDTH)
		fill = BAR_WIDTH;
	if (fill < 0)
		fill = 0;
	memset(cells, '#', (size_t)fill);
	memset(cells + fill, '.', (size_t)(BAR_WIDTH - fill));
	cells[BAR_WIDTH] = '\0';
	n = snprintf(buf, buflen, "[%s] %3d%%  ", cells, pct);
	if (n < 0 || (size_t)n >= buflen) {
		if (buflen > 0)
			buf[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

static volatile sig_atomic_t interrupted;

static void
on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleeps s seconds unless Ctrl-C comes first. */
static void
nap(long s)
{
	struct timespec ts = {(time_t)s, 0};

	while (!interrupted && nanosleep(&ts, &ts) != 0)
		;
}

int
ctl_watch(bool show, long interval, ctl_watch_poll poll, void *arg)
{
	struct sigaction sa, old_int, old_term;
	bool tty = isatty(STDOUT_FILENO) == 1, first = true, finished = false;
	char line[LINE_MAX_LEN], last[LINE_MAX_LEN];
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	last[0] = '\0';
	for (;;) {
		if (poll(arg, show && tty, line, sizeof(line), &finished) !=
		    0) {
			rc = -1;
			break;
		}
		if (show && tty) {
			/* \r and erase to the end: one live line. */
			printf("\r%s\033[K", line);
		} else if (show && (first || strcmp(line, last) != 0)) {
			printf("%s\n", line);
		}
		fflush(stdout);
		first = false;
		snprintf(last, sizeof(last), "%s", line);
		if (finished)
			break;
		nap(interval);
		if (interrupted) {
			rc = 130;
			break;
		}
	}
	if (show && tty && !first)
		printf("\n");
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}
