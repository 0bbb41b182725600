/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Atomic file replacement: write a temp file in the same directory, fsync
 * it, rename it over the target, fsync the directory. A crash at any
 * moment leaves either the old file or the new one, never a mix.
 */
#ifndef FLEET_COMMON_ATOMICFILE_H
#define FLEET_COMMON_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces path with len bytes of data, created with mode (e.g. 0600 for
 * keys; the temp file has that mode from its creation on). Returns 0, or -1
 * with a message in err; on failure path is unchanged and no temp file is
 * left behind.
 */
int atomic_write_file(const char *path, const void *data, size_t len,
		      mode_t mode, char *err, size_t errlen);

/*
 * Reads a whole file of at most max bytes into a NUL-terminated buffer the
 * caller frees. Returns 0, or -1 with a message (also when larger).
 */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len,
		      char *err, size_t errlen);

#endif
