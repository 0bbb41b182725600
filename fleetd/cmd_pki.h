/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fleetd pki ...`: operator commands for the fleet PKI (see docs/pki.md).
 */
#ifndef FLEETD_CMD_PKI_H
#define FLEETD_CMD_PKI_H

/* argv[0] = "pki"; handles `init` and `--help`. user is the config's
 * `user` (the net workers' user when fleetd runs as root): as root, init
 * makes the server key readable to its group. Returns the process exit
 * code; errors are printed as one line on stderr. */
int cmd_pki(int argc, char **argv, const char *user);

#endif
