/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl artifacts: upload a signed release and its file, list, show,
 * rm (docs/fleetctl.md, docs/internals/artifacts.md). upload reads the
 * manifest out of the envelope first and checks the file's size against
 * it, so a wrong file is refused before anything is sent; it reuses an
 * artifact already registered for the same release and file (a retry
 * after a broken upload starts the file over), then streams the file with
 * https_stream: constant memory, a progress bar on a terminal and plain
 * lines otherwise. The envelope is not verified here (fleetctl release
 * verify does that; devices always do).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "atomicfile.h"
#include "clock.h"
#include "ctl.h"
#include "pki.h"
#include "release.h"

#define UPLOAD_IDLE_MS 120000 /* the server may take a while on the end */

static void
print_artifact(const json_t *a)
{
	char b[256];
	const json_t *hw = json_object_get(a, "hw");

	ctl_print_field("ID:", ctl_text(a, "id", b, sizeof(b)));
	ctl_print_field("NAME:", ctl_text(a, "name", b, sizeof(b)));
	ctl_print_field("VERSION:", ctl_text(a, "version", b, sizeof(b)));
	ctl_print_field("VERSION INT:",
			ctl_text(a, "version_int", b, sizeof(b)));
	ctl_print_field("HARDWARE:", ctl_json_text(hw, b, sizeof(b)));
	ctl_print_field("INSTALLER:", ctl_text(a, "installer", b, sizeof(b)));
	ctl_print_field("SIZE:", ctl_text(a, "size", b, sizeof(b)));
	ctl_print_field("SHA256:", ctl_text(a, "sha256", b, sizeof(b)));
	ctl_print_field("EXPIRES:", ctl_text(a, "expires", b, sizeof(b)));
	ctl_print_field("STATUS:", ctl_text(a, "status", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(a, "created_at", b, sizeof(b)));
	ctl_print_field("CREATED BY:", ctl_text(a, "created_by", b, sizeof(b)));
}

/* ---- upload ---------------------------------------------------------------- */

static const struct ctl_help upload_help = {
	"artifacts upload", "ENVELOPE FILE",
	"Uploads a release: ENVELOPE (from 'fleetctl release sign') and its\n"
	"FILE, streamed (any size up to the server's artifact_max_size). The\n"
	"file must be the one the manifest names (size and sha256; fleetd\n"
	"refuses anything else and keeps nothing). When the release is "
	"already\nregistered its upload is resumed from the start; when the "
	"file is\nalready stored nothing is sent. A progress bar is drawn on a "
	"terminal.\n"};

struct upload {
	int fd;
	bool tty;
	bool json;
	unsigned long long total;
	uint64_t started_ms, last_ms;
	int last_decile;
};

static long
upload_read(void *arg, void *buf, size_t cap)
{
	struct upload *u = arg;

	for (;;) {
		ssize_t n = read(u->fd, buf, cap);

		if (n >= 0)
			return (long)n;
		if (errno != EINTR)
			return -1;
	}
}

static void
upload_progress(void *arg, unsigned long long sent, unsigned long long total)
{
	enum { WIDTH = 30 };
	struct upload *u = arg;
	uint64_t now = clock_mono_ms();
	double secs = (double)(now - u->started_ms) / 1000.0;
	double mib = (double)sent / (1024.0 * 1024.0);
	int pct = total > 0 ? (int)(sent * 100 / total) : 100;
	char cells[WIDTH + 1];
	int fill = pct * WIDTH / 100;

	if (u->json)
		return;
	if (u->tty) {
		/* At most ten redraws a second, and the last one. */
		if (sent < total && now - u->last_ms < 100)
			return;
		u->last_ms = now;
		memset(cells, '#', (size_t)fill);
		memset(cells + fill, '.', (size_t)(WIDTH - fill));
		cells[WIDTH] = '\0';
		printf("\r[%s] %3d%%  %.1f/%.1f MiB  %.1f MiB/s\033[K", cells,
		       pct, mib, (double)total / (1024.0 * 1024.0),
		       secs > 0 ? mib / secs : 0.0);
		if (sent == total)
			printf("\n");
		fflush(stdout);
		return;
	}
	/* Plain lines: one per tenth. */
	if (pct / 10 == u->last_decile)
		return;
	u->last_decile = pct / 10;
	printf("uploaded %d%% (%llu of %llu bytes)\n", pct, sent, total);
	fflush(stdout);
}

/* The manifest inside the envelope (unverified: only to check the file
 * and find the release). 0, or -1 printed. */
static int
envelope_manifest(const char *path, json_t **env, struct pki_manifest *m)
{
	char *text = NULL, err[512];
	unsigned char *payload = NULL;
	size_t len = 0, plen = 0;
	const char *b64;
	struct pki_error perr;
	json_error_t jerr;
	int rc = -1;

	if (read_file_bounded(path, PKI_DSSE_MAX_ENVELOPE, &text, &len, err,
			      sizeof(err)) != 0) {
		ctl_fail("%s", err);
		return -1;
	}
	*env = json_loadb(text, len, 0, &jerr);
	if (!json_is_object(*env)) {
		ctl_fail("%s: not a JSON envelope: %s", path, jerr.text);
		goto out;
	}
	b64 = json_string_value(json_object_get(*env, "payload"));
	if (b64 == NULL ||
	    pki_base64_decode(b64, strlen(b64), PKI_DSSE_MAX_ENVELOPE, &payload,
			      &plen, &perr) != PKI_OK ||
	    pki_manifest_parse(payload, plen, m, &perr) != PKI_OK) {
		ctl_fail("%s: not a release envelope (no manifest payload)",
			 path);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		json_decref(*env);
		*env = NULL;
	}
	free(payload);
	free(text);
	return rc;
}

/* The artifact already registered for this release and file, if any:
 * *found (owned) or NULL. 0, or -1 printed. */
static int
find_existing(struct ctl *ctl, const struct pki_manifest *m, json_t **found)
{
	struct buf q;
	json_t *items = NULL;
	size_t i;
	int rc = -1;

	*found = NULL;
	buf_init(&q, 1024);
	if (buf_printf(&q, "name=") != 0 || ctl_urlencode(&q, m->name) != 0 ||
	    buf_printf(&q, "&version=") != 0 ||
	    ctl_urlencode(&q, m->version) != 0) {
		ctl_fail("release name too long");
		goto out;
	}
	if (ctl_api_list(ctl, "/api/v1/artifacts", q.data, 0, &items) != 0)
		goto out;
	for (i = 0; i < json_array_size(items); i++) {
		json_t *a = json_array_get(items, i);
		const char *sha =
			json_string_value(json_object_get(a, "sha256"));

		if (sha != NULL && strcmp(sha, m->sha256) == 0 &&
		    json_integer_value(json_object_get(a, "version_int")) ==
			    m->version_int) {
			*found = json_incref(a);
			break;
		}
	}
	rc = 0;
out:
	json_decref(items);
	buf_free(&q);
	return rc;
}

/* The problem+json of a failed upload as one line. */
static void
upload_failed(const struct https_response *r)
{
	json_t *doc = json_loadb(r->body != NULL ? r->body : "", r->body_len, 0,
				 NULL);
	const char *title = json_string_value(json_object_get(doc, "title"));
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	char t[128], d[512];

	snprintf(t, sizeof(t), "%s",
		 title != NULL ? title
			       : (r->reason[0] != '\0' ? r->reason : "error"));
	snprintf(d, sizeof(d), "%s", detail != NULL ? detail : "");
	ctl_fail("upload: %d %s%s%s", r->status, ctl_sanitize(t),
		 d[0] != '\0' ? ": " : "", ctl_sanitize(d));
	json_decref(doc);
}

/* PUT the file. *doc (owned) the answer. 0, or -1 printed. */
static int
put_file(struct ctl *ctl, const char *id, struct upload *u, json_t **doc)
{
	char path[512], bearer[512], err[HTTPS_ERR_MAX];
	struct https_header hdrs[4] = {
		{"Content-Type", "application/octet-stream"},
		{"Accept", "application/json"},
		{"User-Agent", "fleetctl"},
		{"Authorization", bearer},
	};
	struct https_request req = {
		.method = "PUT", .path = path, .headers = hdrs, .n_headers = 4};
	struct https_stream s = {.read = upload_read,
				 .body_len = u->total,
				 .progress = upload_progress,
				 .arg = u,
				 .max_body = 1024 * 1024,
				 .idle_ms = UPLOAD_IDLE_MS};
	struct https_response resp;
	enum https_stream_result r;
	int rc = -1;

	if (ctl_path_id(path, sizeof(path), "artifacts", id, "/file") != 0)
		return -1;
	if ((size_t)snprintf(bearer, sizeof(bearer), "Bearer %s", ctl->token) >=
		    sizeof(bearer) ||
	    strpbrk(ctl->token, "\r\n") != NULL) {
		ctl_fail("the admin token is malformed");
		return -1;
	}
	u->started_ms = u->last_ms = clock_mono_ms();
	u->last_decile = -1;
	r = https_stream(ctl->https, &ctl->url, &req, &s, &resp, NULL, err,
			 sizeof(err));
	OPENSSL_cleanse(bearer, sizeof(bearer));
	if (u->tty && !u->json)
		printf("\n");
	if (r != HTTPS_STREAM_OK) {
		ctl_fail("upload: %s", err);
		goto out;
	}
	if (resp.status != 200) {
		upload_failed(&resp);
		goto out;
	}
	*doc = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (*doc == NULL) {
		ctl_fail("upload: the server sent invalid JSON");
		goto out;
	}
	rc = 0;
out:
	https_response_free(&resp);
	return rc;
}

static int
artifacts_upload(struct ctl *ctl, int argc, char **argv)
{
	struct pki_manifest m;
	struct upload u;
	struct stat st;
	json_t *env = NULL, *body = NULL, *art = NULL, *done = NULL;
	const char *status, *id;
	char idbuf[64];
	int rc = ctl_parse(ctl, &upload_help, argc, argv, NULL, 2);

	if (rc != CTL_CONTINUE)
		return rc;
	rc = CTL_EXIT_FAIL;
	memset(&u, 0, sizeof(u));
	u.fd = -1;
	if (envelope_manifest(argv[optind], &env, &m) != 0)
		goto out;
	u.fd = open(argv[optind + 1], O_RDONLY | O_CLOEXEC);
	if (u.fd < 0 || fstat(u.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ctl_fail("%s: %s", argv[optind + 1],
			 u.fd < 0 ? strerror(errno) : "not a regular file");
		goto out;
	}
	if ((unsigned long long)st.st_size != m.size) {
		ctl_fail("%s is %lld bytes; the manifest says %" PRIu64
			 ": not the file this release was signed for",
			 argv[optind + 1], (long long)st.st_size, m.size);
		goto out;
	}
	u.total = m.size;
	u.tty = isatty(STDOUT_FILENO) == 1;
	u.json = ctl->output == CTL_OUT_JSON;
	if (find_existing(ctl, &m, &art) != 0)
		goto out;
	if (art == NULL) {
		struct ctl_call call;

		body = json_pack("{s:O}", "envelope", env);
		memset(&call, 0, sizeof(call));
		if (body == NULL || ctl_call(ctl, "POST", "/api/v1/artifacts",
					     body, &call, &art) != 0)
			goto out;
	}
	id = json_string_value(json_object_get(art, "id"));
	status = json_string_value(json_object_get(art, "status"));
	if (id == NULL || status == NULL) {
		ctl_fail("the server's answer has no artifact id");
		goto out;
	}
	snprintf(idbuf, sizeof(idbuf), "%s", id);
	if (strcmp(status, "ready") == 0) {
		done = json_incref(art);
		if (!u.json)
			printf("the file is already stored: nothing to "
			       "upload\n");
	} else if (put_file(ctl, idbuf, &u, &done) != 0) {
		ctl_fail("artifact %s is registered without its file; run "
			 "the same upload again to retry",
			 ctl_sanitize(idbuf));
		goto out;
	}
	if (u.json) {
		ctl_print_json(done);
	} else {
		printf("uploaded artifact %s\n", ctl_sanitize(idbuf));
		print_artifact(done);
	}
	rc = CTL_EXIT_OK;
out:
	if (u.fd >= 0)
		close(u.fd);
	json_decref(env);
	json_decref(body);
	json_decref(art);
	json_decref(done);
	return rc;
}

/* ---- list, show, rm ---------------------------------------------------------- */

enum { OPT_NAME = CTL_OPT_FIRST_LOCAL, OPT_VERSION };

static const struct ctl_help list_help = {
	"artifacts list", "[--name N] [--version V]",
	"Lists artifacts (all pages), oldest first.\n"
	"\n"
	"Options:\n"
	"  --name N      only releases named N\n"
	"  --version V   only releases whose display version is V\n"};

static const char *
short_sha(const json_t *item, char *buf, size_t buflen)
{
	const char *s = json_string_value(json_object_get(item, "sha256"));

	if (s == NULL || buflen < 13)
		return NULL;
	snprintf(buf, 13, "%s", s);
	return buf;
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),	   CTL_COL_KEY("NAME", "name"),
	CTL_COL_KEY("VERSION", "version"), CTL_COL_KEY("INT", "version_int"),
	CTL_COL_KEY("SIZE", "size"),	   CTL_COL_CELL("SHA256", short_sha),
	CTL_COL_KEY("STATUS", "status"),   CTL_COL_KEY("CREATED", "created_at"),
};

struct list_args {
	const char *name, *version;
};

static int
list_opt(void *arg, int c, const char *val)
{
	struct list_args *a = arg;

	if (c == OPT_NAME)
		a->name = val;
	else
		a->version = val;
	return CTL_CONTINUE;
}

static int
artifacts_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, OPT_NAME},
		{"version", required_argument, NULL, OPT_VERSION},
		{0}};
	struct list_args a = {NULL, NULL};
	struct ctl_optset local = {opts, list_opt, &a};
	struct ctl_list l = {&list_help, "/api/v1/artifacts", list_cols,
			     sizeof(list_cols) / sizeof(list_cols[0])};
	struct buf q;
	int rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	buf_init(&q, 1024);
	if ((a.name != NULL && (buf_printf(&q, "name=") != 0 ||
				ctl_urlencode(&q, a.name) != 0)) ||
	    (a.version != NULL &&
	     (buf_printf(&q, "%sversion=", q.len > 0 ? "&" : "") != 0 ||
	      ctl_urlencode(&q, a.version) != 0))) {
		buf_free(&q);
		return ctl_usage(&list_help, "--name or --version too long");
	}
	rc = ctl_list_items(ctl, &l, q.data != NULL ? q.data : "", 0);
	buf_free(&q);
	return rc;
}

static const struct ctl_help show_help = {
	"artifacts show", "ID",
	"Shows an artifact (-o json: with its "
	"envelope).\n"};
static const struct ctl_action show = {&show_help, "GET", "artifacts",
				       "",	   NULL,  print_artifact};

static const struct ctl_help rm_help = {
	"artifacts rm", "ID",
	"Deletes an artifact; refused while a deployment that is not "
	"finished\noffers it. The file goes with the last release that uses "
	"it.\n"};
static const struct ctl_action rm = {&rm_help, "DELETE",	   "artifacts",
				     "",       "deleted artifact", NULL};

static const struct ctl_subcmd subs[] = {
	{"upload", "upload a signed release and its file (streamed)",
	 artifacts_upload, NULL, NULL},
	{"list", "list artifacts", artifacts_list, NULL, NULL},
	{"show", "show an artifact", NULL, NULL, &show},
	{"rm", "delete an artifact", NULL, NULL, &rm},
};

int
ctl_cmd_artifacts(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "artifacts",
			    "Artifacts: signed releases and their files on "
			    "fleetd (docs/fleetctl.md).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
