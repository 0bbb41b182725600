/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fleetctl keys ...`: update-signing keys for DSSE manifests.
 */
#ifndef FLEETCTL_CMD_KEYS_H
#define FLEETCTL_CMD_KEYS_H

/* argv[0] = "keys"; handles `gen` and `--help`. Returns the process exit
 * code; errors are printed as one line on stderr. */
int ctl_cmd_keys(int argc, char **argv);

#endif
