/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Following something that progresses on the server (`config status
 * --watch`, `deployments show --watch`), in watch.c: a progress bar, and
 * the poll loop that draws one live line on a terminal or a plain line
 * per change otherwise, until the thing is finished or Ctrl-C.
 */
#ifndef FLEET_CTL_WATCH_H
#define FLEET_CTL_WATCH_H

#include <stdbool.h>
#include <stddef.h>

/* Writes "[#########.....................]  30%  " (30 cells) for done of
 * total into buf (total 0: full); returns the length written (0 when buf
 * is too small). */
size_t ctl_bar(char *buf, size_t buflen, long long done, long long total);

/*
 * One poll: fetches the thing and writes its status line into line (with
 * a bar when bar is set; the same words either way), and sets *finished.
 * 0, or -1 after printing why.
 */
typedef int (*ctl_watch_poll)(void *arg, bool bar, char *line, size_t linelen,
			      bool *finished);

/*
 * Polls every interval seconds until finished or Ctrl-C (SIGINT,
 * SIGTERM). With show, a terminal gets one live line (\r, erase to the
 * end) and anything else one plain line whenever it changes. 0 when
 * finished, 130 after Ctrl-C, -1 when a poll failed.
 */
int ctl_watch(bool show, long interval, ctl_watch_poll poll, void *arg);

#endif
