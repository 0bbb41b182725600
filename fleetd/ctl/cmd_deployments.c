/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's deployment commands (docs/fleetctl.md, docs/updates.md):
 * `deployments create --artifact ID (--device ID | --selector S)
 * [--dry-run]`, `deployments list`, `deployments show ID [--watch]` (live
 * per-state counts with watch.c's progress line, until nothing is open)
 * and `deployments cancel ID`. Thin over /api/v1/deployments; whatever
 * the server sends is sanitized before it is printed.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "watch.h"

enum {
	OPT_ARTIFACT = CTL_OPT_FIRST_LOCAL,
	OPT_DEVICE,
	OPT_SELECTOR,
	OPT_DRY_RUN,
	OPT_WATCH,
	OPT_INTERVAL,
	OPT_STATE,
};

/* ---- create ------------------------------------------------------------ */

static const struct ctl_help create_help = {
	"deployments create",
	"--artifact ID (--device ID | --selector S) [--dry-run]",
	"Offers an artifact (a signed release uploaded with 'fleetctl\n"
	"artifacts upload') to one device or to every active device a\n"
	"selector matches (docs/selectors.md). Devices whose model is not in\n"
	"the release's hardware list, and devices installing another release,\n"
	"are skipped and counted; a device's earlier offer that it has not\n"
	"started to install is superseded. Connected devices get the offer at\n"
	"once, the others when they reconnect. Prints the deployment id;\n"
	"follow it with 'fleetctl deployments show ID --watch'.\n"
	"\n"
	"Options:\n"
	"  --artifact ID      the artifact to deploy\n"
	"  --device ID        one device (its full id)\n"
	"  --selector S       the devices a selector matches\n"
	"  --dry-run          only count: matched, offline, skipped\n"};

struct create_args {
	const char *artifact, *device, *selector;
	bool dry_run;
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;

	switch (c) {
	case OPT_ARTIFACT:
		a->artifact = val;
		break;
	case OPT_DEVICE:
		a->device = val;
		break;
	case OPT_SELECTOR:
		a->selector = val;
		break;
	default:
		a->dry_run = true;
		break;
	}
	return CTL_CONTINUE;
}

static void
print_plan(const json_t *doc)
{
	char b[96];

	if (json_is_true(json_object_get(doc, "dry_run")))
		printf("dry run: nothing was deployed\n");
	else
		ctl_print_field("DEPLOYMENT:",
				ctl_text_or_dash(doc, "id", b, sizeof(b)));
	ctl_print_field("MATCHED:",
			ctl_text_or_dash(doc, "matched", b, sizeof(b)));
	ctl_print_field("OFFERED TO:",
			ctl_text_or_dash(doc, "targets", b, sizeof(b)));
	ctl_print_field("  OFFLINE:",
			ctl_text_or_dash(doc, "offline", b, sizeof(b)));
	ctl_print_field("  SUPERSEDING:",
			ctl_text_or_dash(doc, "supersede", b, sizeof(b)));
	ctl_print_field(
		"SKIPPED (HW):",
		ctl_text_or_dash(doc, "hardware_mismatch", b, sizeof(b)));
	ctl_print_field("SKIPPED (BUSY):",
			ctl_text_or_dash(doc, "busy", b, sizeof(b)));
}

static int
deployments_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"artifact", required_argument, NULL, OPT_ARTIFACT},
		{"device", required_argument, NULL, OPT_DEVICE},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{0}};
	struct create_args a = {NULL, NULL, NULL, false};
	struct ctl_optset local = {opts, create_opt, &a};
	json_t *body = NULL, *doc = NULL;
	int rc = ctl_parse(ctl, &create_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.artifact == NULL)
		return ctl_usage(&create_help, "--artifact is required");
	if ((a.device == NULL) == (a.selector == NULL))
		return ctl_usage(&create_help,
				 "give exactly one of --device and --selector");
	body = json_pack("{s:s, s:b}", "artifact_id", a.artifact, "dry_run",
			 a.dry_run);
	if (body == NULL)
		return ctl_fail("out of memory");
	json_object_set_new(body, a.device ? "device_id" : "selector",
			    json_string(a.device ? a.device : a.selector));
	if (ctl_api(ctl, "POST", "/api/v1/deployments", body, NULL, true,
		    &doc) != 0) {
		json_decref(body);
		return CTL_EXIT_FAIL;
	}
	if (ctl->output == CTL_OUT_JSON)
		rc = ctl_print_json(doc) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	else
		print_plan(doc);
	json_decref(body);
	json_decref(doc);
	return rc == CTL_CONTINUE ? CTL_EXIT_OK : rc;
}

/* ---- list ----------------------------------------------------------------- */

static const struct ctl_help list_help = {
	"deployments list", "",
	"Lists deployments, oldest first, with their status (active,\n"
	"finished, cancelled) and how many devices are still open.\n"};

static const char *
artifact_cell(const json_t *item, char *buf, size_t buflen)
{
	const json_t *a = json_object_get(item, "artifact");
	char n[64], v[64];

	snprintf(buf, buflen, "%s %s",
		 ctl_text_or_dash(a, "name", n, sizeof(n)),
		 ctl_text_or_dash(a, "version", v, sizeof(v)));
	return buf;
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_CELL("ARTIFACT", artifact_cell),
	CTL_COL_KEY("STATUS", "status"),
	CTL_COL_KEY("OPEN", "open"),
	CTL_COL_KEY("DEVICES", "total"),
	CTL_COL_KEY("SELECTOR", "selector"),
	CTL_COL_KEY("CREATED", "created_at"),
};

static const struct ctl_list list = {&list_help, "/api/v1/deployments",
				     list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

/* ---- show [--watch] -------------------------------------------------------- */

static const struct ctl_help show_help = {
	"deployments show", "ID [--watch] [--interval SECONDS]",
	"Shows a deployment: its artifact, how many devices are in each state\n"
	"(pending, offered, downloading, ..., committed, failed, rolled_back,\n"
	"refused, superseded) and the failures with their reason; STALLED\n"
	"when its artifact expired while devices were still pending (they\n"
	"are never offered an expired release: cancel it, deploy a newer\n"
	"one).\n"
	"\n"
	"With --watch it follows the deployment until no device is open or it\n"
	"stalls (or Ctrl-C): a live progress bar on a terminal, one line per\n"
	"change of the counts otherwise (with -o json: nothing until the\n"
	"end). It then exits 0 if no device failed, rolled back or refused,\n"
	"1 if some did or it stalled, 130 after Ctrl-C (the deployment goes\n"
	"on; offline devices get it when they reconnect).\n"
	"\n"
	"Options:\n"
	"  --watch            follow it until nothing is open\n"
	"  --interval S       seconds between polls (1..60, default 1)\n"};

struct show_args {
	bool watch;
	long interval;
};

static int
show_opt(void *arg, int c, const char *val)
{
	struct show_args *a = arg;

	if (c == OPT_WATCH) {
		a->watch = true;
		return CTL_CONTINUE;
	}
	if (ctl_parse_long(val, 1, 60, &a->interval) != 0)
		return ctl_usage(&show_help,
				 "--interval takes 1 to 60 seconds, not '%s'",
				 val);
	return CTL_CONTINUE;
}

static long long
count_of(const json_t *doc, const char *state)
{
	const json_t *v =
		json_object_get(json_object_get(doc, "counts"), state);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static long long
num_of(const json_t *doc, const char *key)
{
	const json_t *v = json_object_get(doc, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static long long
failures_of(const json_t *doc)
{
	return count_of(doc, "failed") + count_of(doc, "rolled_back") +
	       count_of(doc, "refused");
}

/* "[bar] 40%  2/5 finished: 1 committed, 1 failed, ...; 3 open" */
static void
progress_line(const json_t *doc, bool bar, char *line, size_t len)
{
	long long total = num_of(doc, "total"), open = num_of(doc, "open");
	size_t off = bar ? ctl_bar(line, len, total - open, total) : 0;

	snprintf(line + off, len - off,
		 "%lld/%lld finished: %lld committed, %lld failed, %lld "
		 "rolled back, %lld refused, %lld superseded; %lld open "
		 "(%lld downloading, %lld installing)",
		 total - open, total, count_of(doc, "committed"),
		 count_of(doc, "failed"), count_of(doc, "rolled_back"),
		 count_of(doc, "refused"), count_of(doc, "superseded"), open,
		 count_of(doc, "downloading") + count_of(doc, "downloaded"),
		 count_of(doc, "installing") + count_of(doc, "installed") +
			 count_of(doc, "rebooting") +
			 count_of(doc, "verifying"));
}

/* Why the deployment waits for nothing (its artifact expired), or NULL. */
static const char *
stalled_reason(const json_t *doc)
{
	return json_string_value(json_object_get(doc, "stalled_reason"));
}

static const struct ctl_column failure_cols[] = {
	CTL_COL_KEY("DEVICE", "device_id"),
	CTL_COL_KEY("STATE", "state"),
	CTL_COL_KEY("REASON", "reason"),
	CTL_COL_KEY("RUNNING", "running_version"),
	CTL_COL_KEY("ERROR", "error"),
};

static void
print_deployment(struct ctl *ctl, const json_t *doc)
{
	static const char *const states[] = {
		"pending",    "offered",   "downloading", "downloaded",
		"installing", "installed", "rebooting",	  "verifying",
		"committed",  "failed",	   "rolled_back", "refused",
		"superseded"};
	const json_t *failures = json_object_get(doc, "failures");
	char b[256], line[512];

	ctl_print_field("DEPLOYMENT:",
			ctl_text_or_dash(doc, "id", b, sizeof(b)));
	ctl_print_field("ARTIFACT:", artifact_cell(doc, b, sizeof(b)));
	ctl_print_field("STATUS:",
			ctl_text_or_dash(doc, "status", b, sizeof(b)));
	if (stalled_reason(doc) != NULL)
		ctl_print_field("STALLED:", stalled_reason(doc));
	ctl_print_field("SELECTOR:",
			ctl_text_or_dash(doc, "selector", b, sizeof(b)));
	ctl_print_field("BY:",
			ctl_text_or_dash(doc, "created_by", b, sizeof(b)));
	ctl_print_field("CREATED:",
			ctl_text_or_dash(doc, "created_at", b, sizeof(b)));
	progress_line(doc, false, line, sizeof(line));
	ctl_print_field("PROGRESS:", line);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char label[32];

		if (count_of(doc, states[i]) == 0)
			continue;
		snprintf(label, sizeof(label), "  %s:", states[i]);
		snprintf(b, sizeof(b), "%lld", count_of(doc, states[i]));
		ctl_print_field(label, b);
	}
	if (json_is_array(failures) && json_array_size(failures) > 0) {
		printf("\nFAILURES:\n");
		ctl_print_items(ctl, failures, failure_cols,
				sizeof(failure_cols) / sizeof(failure_cols[0]));
	}
}

struct show_poll {
	struct ctl *ctl;
	const char *path;
	json_t *doc;
};

static int
show_get(void *arg, bool bar, char *line, size_t len, bool *finished)
{
	struct show_poll *p = arg;
	struct ctl_call call;
	json_t *doc = NULL;

	memset(&call, 0, sizeof(call));
	call.on_404 = "no such deployment";
	if (ctl_call(p->ctl, "GET", p->path, NULL, &call, &doc) != 0)
		return -1;
	json_decref(p->doc);
	p->doc = doc;
	progress_line(doc, bar, line, len);
	/* A stalled deployment's open rows wait for nothing: stop there. */
	*finished = num_of(doc, "open") == 0 || stalled_reason(doc) != NULL;
	return 0;
}

static int
deployments_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"watch", no_argument, NULL, OPT_WATCH},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{0}};
	struct show_args a = {false, 1};
	struct ctl_optset local = {opts, show_opt, &a};
	struct show_poll p = {ctl, NULL, NULL};
	char path[512], line[512];
	bool finished;
	int rc = ctl_parse(ctl, &show_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "deployments", argv[optind], "") !=
	    0)
		return CTL_EXIT_FAIL;
	p.path = path;
	if (a.watch)
		rc = ctl_watch(ctl->output != CTL_OUT_JSON, a.interval,
			       show_get, &p);
	else
		rc = show_get(&p, false, line, sizeof(line), &finished);
	if (rc == -1) {
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(p.doc);
	else if (!a.watch)
		print_deployment(ctl, p.doc);
	else if (rc == 130)
		printf("stopped watching; the deployment goes on (%lld "
		       "open)\n",
		       num_of(p.doc, "open"));
	if (a.watch && rc == 0 && stalled_reason(p.doc) != NULL)
		rc = ctl_fail("deployment %s stalled: %s", argv[optind],
			      stalled_reason(p.doc));
	else if (a.watch && rc == 0 && failures_of(p.doc) > 0)
		rc = ctl_fail("deployment %s: %lld device%s failed, rolled "
			      "back or refused",
			      argv[optind], failures_of(p.doc),
			      failures_of(p.doc) == 1 ? "" : "s");
out:
	json_decref(p.doc);
	return rc;
}

/* ---- devices ID [--state S] ------------------------------------------------ */

static const struct ctl_help devices_help = {
	"deployments devices", "ID [--state S]",
	"Lists the devices of a deployment (every page) with their state,\n"
	"download progress, reason code of a failure and the version they\n"
	"run. --state shows only one state (pending, offered, downloading,\n"
	"downloaded, installing, installed, rebooting, verifying, committed,\n"
	"failed, rolled_back, refused, superseded).\n"
	"\n"
	"Options:\n"
	"  --state S          only devices in state S\n"};

static int
state_opt(void *arg, int c, const char *val)
{
	(void)c;
	*(const char **)arg = val;
	return CTL_CONTINUE;
}

static const struct ctl_column device_cols[] = {
	CTL_COL_KEY("DEVICE", "device_id"),
	CTL_COL_KEY("MODEL", "model"),
	CTL_COL_KEY("STATE", "state"),
	CTL_COL_KEY("PROGRESS", "progress"),
	CTL_COL_KEY("REASON", "reason"),
	CTL_COL_KEY("RUNNING", "running_version"),
	CTL_COL_KEY("UPDATED", "updated_at"),
};

static int
deployments_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, OPT_STATE}, {0}};
	const char *state = NULL;
	struct ctl_optset local = {opts, state_opt, &state};
	struct buf q;
	json_t *items = NULL;
	char path[512];
	int rc = ctl_parse(ctl, &devices_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "deployments", argv[optind],
			"/devices") != 0)
		return CTL_EXIT_FAIL;
	buf_init(&q, 256);
	if (state != NULL &&
	    (buf_printf(&q, "state=") != 0 || ctl_urlencode(&q, state) != 0)) {
		buf_free(&q);
		return ctl_fail("out of memory");
	}
	rc = ctl_api_list(ctl, path, q.data != NULL ? q.data : "", 0, &items);
	buf_free(&q);
	if (rc != 0)
		return CTL_EXIT_FAIL;
	rc = ctl_print_items(ctl, items, device_cols,
			     sizeof(device_cols) / sizeof(device_cols[0]));
	json_decref(items);
	return rc;
}

/* ---- cancel ---------------------------------------------------------------- */

static const struct ctl_help cancel_help = {
	"deployments cancel", "ID",
	"Cancels a deployment: devices that have not started to install it\n"
	"(pending, offered, downloading, downloaded) are taken off it\n"
	"(superseded). Devices already installing are not told to stop: an\n"
	"install is never cut halfway; they finish and report as usual.\n"};

static void
print_cancel(const json_t *doc)
{
	char b[32];

	ctl_print_field("TAKEN OFF:",
			ctl_text_or_dash(doc, "cancelled_rows", b, sizeof(b)));
	ctl_print_field("STILL OPEN:",
			ctl_text_or_dash(doc, "open", b, sizeof(b)));
}

static const struct ctl_action cancel = {&cancel_help,		 "POST",
					 "deployments",		 "/cancel",
					 "cancelled deployment", print_cancel};

static int
deployments_cancel(struct ctl *ctl, int argc, char **argv)
{
	return ctl_run_action(ctl, &cancel, argc, argv);
}

static const struct ctl_subcmd subs[] = {
	{"create", "offer an artifact to a device or a selector",
	 deployments_create, NULL, NULL},
	{"list", "deployments and how many devices are open", NULL, &list,
	 NULL},
	{"show", "counts per state and failures; --watch follows it",
	 deployments_show, NULL, NULL},
	{"devices", "its devices and their states; --state filters",
	 deployments_devices, NULL, NULL},
	{"cancel", "take devices that have not started installing off it",
	 deployments_cancel, NULL, NULL},
};

int
ctl_cmd_deployments(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "deployments",
			    "Deployments: signed releases offered to devices "
			    "(docs/updates.md).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
