/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the config-file parser, fed through a temporary file. */
#include "conffile.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sample {
	char *name;
	long count;
	long period;
	int flag;
};

static const struct config_key keys[] = {
	{"name", CONFIG_STRING, offsetof(struct sample, name), 0, 0, "x"},
	{"count", CONFIG_INT, offsetof(struct sample, count), 0, 100, "1"},
	{"period", CONFIG_DURATION, offsetof(struct sample, period), 0, 86400,
	 "1s"},
	{"flag", CONFIG_BOOL, offsetof(struct sample, flag), 0, 0, "no"},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/fleet-fuzz-conf-XXXXXX";
	char err[CONFIG_ERR_MAX];
	struct sample s = {0};
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size &&
	    config_load(path, keys, 4, NULL, &s, err, sizeof(err)) == 0)
		config_free(keys, 4, &s);
	close(fd);
	unlink(path);
	return 0;
}
