/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service manager notification protocol (sd_notify(3)) without
 * libsystemd: "KEY=value" lines in one datagram to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 * Used by fleetd's supervisor for READY=1, RELOADING=1, STOPPING=1 and
 * STATUS=; a no-op when fleetd is not started by systemd.
 */
#ifndef FLEETD_SD_NOTIFY_H
#define FLEETD_SD_NOTIFY_H

/*
 * Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. Returns
 * 1 when sent, 0 when there is no such socket (not under systemd), -1 on
 * error (errno set; a bad $NOTIFY_SOCKET is EINVAL).
 */
int sd_notify_send(const char *state);

/* sd_notify_send of a formatted state; the text is cut at 4 KiB. */
int sd_notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
