/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of fleetctl's configuration commands (see cfg.h): documents read
 * from files with a size limit and a strict parser, API calls with
 * If-Match / Idempotency-Key and the ETag kept, and -f spelled for the
 * command runner. What they print is in cfg_render.c.
 *
 * Runs in fleetctl on an operator's machine. The files are the
 * operator's; answers come from the server and are bounded by the HTTPS
 * client and sanitized before they reach the terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cfg.h"

/* ---- documents from files -------------------------------------------- */

json_t *
cfg_read_doc(const char *path, const char *what)
{
	FILE *f = NULL;
	struct buf b;
	json_error_t jerr;
	json_t *doc = NULL;
	char chunk[8192];
	size_t n;

	buf_init(&b, CFG_DOC_MAX);
	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (f == NULL) {
			ctl_fail("%s %s: %s", what, path, strerror(errno));
			goto out;
		}
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) != 0) {
			ctl_fail("%s %s: larger than %u KiB (the limit of a "
				 "configuration document)",
				 what, path, CFG_DOC_MAX / 1024);
			goto out;
		}
	}
	if (ferror(f)) {
		ctl_fail("%s %s: read error", what, path);
		goto out;
	}
	if (b.len == 0) {
		ctl_fail("%s %s: empty file (expected a JSON object)", what,
			 path);
		goto out;
	}
	doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		ctl_fail("%s %s: not JSON: %s at line %d", what, path,
			 jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(doc)) {
		ctl_fail("%s %s: the document must be a JSON object", what,
			 path);
		json_decref(doc);
		doc = NULL;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	buf_free(&b);
	return doc;
}

/* ---- API calls -------------------------------------------------------- */

int
cfg_get(struct ctl *ctl, const char *path, const char *what404, json_t **out)
{
	struct ctl_call call;

	memset(&call, 0, sizeof(call));
	call.on_404 = what404;
	return ctl_call(ctl, "GET", path, NULL, &call, out);
}

int
cfg_get_quiet(struct ctl *ctl, const char *path, json_t **out)
{
	struct ctl_call call;

	memset(&call, 0, sizeof(call));
	call.quiet = true;
	return ctl_call(ctl, "GET", path, NULL, &call, out);
}

/* ---- argv -------------------------------------------------------------- */

char **
cfg_argv_file(int argc, char **argv)
{
	char **out = calloc((size_t)argc + 1, sizeof(*out));
	bool rest = false;

	if (out == NULL)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *prev = i > 0 ? argv[i - 1] : "";
		/* The value of an option ("--note -fixed") stays as it is:
		 * every long option of the profiles group but --help takes a
		 * value, and so does -o. */
		bool value = (strncmp(prev, "--", 2) == 0 && prev[2] != '\0' &&
			      strchr(prev, '=') == NULL &&
			      strcmp(prev, "--help") != 0) ||
			     strcmp(prev, "-o") == 0;
		struct buf b;

		rest = rest || strcmp(a, "--") == 0;
		buf_init(&b, 65536);
		if (!rest && !value && i > 0 && strncmp(a, "-f", 2) == 0)
			(void)buf_printf(&b, "--file%s%s",
					 a[2] != '\0' ? "=" : "", a + 2);
		else
			(void)buf_printf(&b, "%s", a);
		out[i] = buf_detach(&b, NULL);
		if (out[i] == NULL) {
			cfg_argv_free(i, out);
			return NULL;
		}
	}
	return out;
}

void
cfg_argv_free(int argc, char **argv)
{
	if (argv == NULL)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}
