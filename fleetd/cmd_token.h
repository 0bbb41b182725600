/* SPDX-License-Identifier: Apache-2.0 */
/* `fleetd token create`: the first admin token, made on the server host. */
#ifndef FLEETD_CMD_TOKEN_H
#define FLEETD_CMD_TOKEN_H

/*
 * argv[0] is "token". Prints the new token alone on stdout. Returns the
 * process exit status: 0, 1 on failure, 2 on a usage error.
 */
int cmd_token(int argc, char **argv, const char *conninfo);

#endif
