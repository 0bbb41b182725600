/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's campaign commands (docs/campaigns.md, the contract in
 * docs/internals/campaigns.md): `campaigns create` (with --dry-run, the
 * preflight), `list`, `show` (the campaign and a table per phase),
 * `devices`, `events`, the operator transitions `start`, `pause`,
 * `resume` (optionally with a fixed selector) and `abort`, and `watch`:
 * per-phase progress bars on a terminal, plain lines otherwise, until the
 * campaign completes (exit 0), pauses (3) or is aborted (4). Thin over
 * /api/v1/campaigns; whatever the server sends is sanitized before it is
 * printed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "buf.h"
#include "conffile.h"
#include "ctl.h"
#include "watch.h"

#define CAMPAIGNS_EXIT_PAUSED 3
#define CAMPAIGNS_EXIT_ABORTED 4
/* The server's bounds (core/campaign_json.c), checked here too so that a
 * typo is a usage error before anything is sent. */
#define MAX_SECONDS (366L * 86400)
#define MAX_COUNT 10000000L
#define MAX_INTERVAL 3600L

enum {
	OPT_NAME = CTL_OPT_FIRST_LOCAL,
	OPT_KIND,
	OPT_ARTIFACT,
	OPT_PROFILE,
	OPT_VERSION,
	OPT_SELECTOR,
	OPT_PHASES,
	OPT_DEVICES,
	OPT_MIN_SUCCESS,
	OPT_SOAK,
	OPT_MAX_FAILURE,
	OPT_MIN_FINISHED,
	OPT_HEALTH_WINDOW,
	OPT_HOURS,
	OPT_WEEKDAYS,
	OPT_MAX_CONCURRENT,
	OPT_START,
	OPT_DRY_RUN,
	OPT_IDEM_KEY,
	OPT_STATUS,
	OPT_STATE,
	OPT_PHASE,
	OPT_REASON,
	OPT_INTERVAL,
};

/* ---- small helpers ----------------------------------------------------- */

static long long
num_of(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *
str_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* A share: "0.9" or "90%", within [0, 1]. 0 or -1. */
static int
parse_share(const char *s, double *out)
{
	char *end = NULL;
	double v = strtod(s, &end);

	if (end == s || !isfinite(v))
		return -1;
	if (*end == '%') {
		v /= 100.0;
		end++;
	}
	if (*end != '\0' || v < 0.0 || v > 1.0)
		return -1;
	*out = v;
	return 0;
}

/* A duration ("90", "90s", "10m", "2h") in [min, MAX_SECONDS]. 0 or -1. */
static int
parse_seconds(const char *s, long min, long max, long *out)
{
	long v;

	if (config_parse_duration(s, &v) != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "0s", "45s", "10m", "1h30m", "2d" */
static const char *
duration_text(long long s, char *buf, size_t len)
{
	static const struct {
		long long secs;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t off = 0;

	if (s <= 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		long long n = s / units[i].secs;
		int w;

		if (n == 0)
			continue;
		s -= n * units[i].secs;
		w = snprintf(buf + off, len - off, "%lld%c", n, units[i].unit);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	return buf;
}

/* "90%", "12.5%" of a share */
static const char *
share_text(const json_t *v, char *buf, size_t len)
{
	size_t n;

	if (!json_is_number(v))
		return NULL;
	/* one decimal, as the driver's pause reasons say it; "10%" not
	 * "10.0%" */
	snprintf(buf, len, "%.1f", 100.0 * json_number_value(v));
	n = strlen(buf);
	if (n > 2 && strcmp(buf + n - 2, ".0") == 0)
		buf[n - 2] = '\0';
	snprintf(buf + strlen(buf), len - strlen(buf), "%%");
	return buf;
}

/* The phases as typed: whole numbers, "all" last with --devices. So that
 * a typo is a usage error; the rules (increasing, last 100) are the
 * server's. 0 or -1. */
static int
phases_syntax_ok(const char *s, bool devices)
{
	const char *p = s;

	if (*p == '\0')
		return -1;
	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 3 && strncmp(p, "all", 3) == 0) {
			if (!devices || p[n] != '\0')
				return -1;
		} else if (n == 0 || strspn(p, "0123456789") != n) {
			return -1;
		}
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

/* A list of numbers (0..top) as ranges: "8-17", "22-23,0-5". */
static const char *
ranges_text(const json_t *arr, const char *const *names, char *buf, size_t len)
{
	bool on[32] = {false};
	size_t off = 0, i;
	json_t *v;
	int top = -1;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	json_array_foreach(arr, i, v)
	{
		json_int_t n = json_integer_value(v);

		if (json_is_integer(v) && n >= 0 && n < 32) {
			on[n] = true;
			if (n > top)
				top = (int)n;
		}
	}
	buf[0] = '\0';
	for (int a = 0; a <= top; a++) {
		int b = a;
		int w;

		if (!on[a])
			continue;
		while (b + 1 <= top && on[b + 1])
			b++;
		if (names != NULL && a == b)
			w = snprintf(buf + off, len - off, "%s%s",
				     off ? "," : "", names[a]);
		else if (names != NULL)
			w = snprintf(buf + off, len - off, "%s%s-%s",
				     off ? "," : "", names[a], names[b]);
		else if (a == b)
			w = snprintf(buf + off, len - off, "%s%d",
				     off ? "," : "", a);
		else
			w = snprintf(buf + off, len - off, "%s%d-%d",
				     off ? "," : "", a, b);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
		a = b;
	}
	return buf;
}

/* "hours 8-17, mon-fri (UTC)" or "always" from the stored window. */
static const char *
window_text(const json_t *def, char *buf, size_t len)
{
	static const char *const days[] = {"sun", "mon", "tue", "wed",
					   "thu", "fri", "sat"};
	const json_t *w = json_object_get(def, "window");
	char h[128], d[64];
	const char *hours =
		ranges_text(json_object_get(w, "hours"), NULL, h, sizeof(h));
	const char *wd = NULL;
	const json_t *wa = json_object_get(w, "weekdays");
	size_t i;
	json_t *v;
	bool ok = json_is_array(wa);

	/* ranges_text indexes days[] by the numbers: only 0..6 */
	json_array_foreach(wa, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 6)
			ok = false;
	}
	if (ok)
		wd = ranges_text(wa, days, d, sizeof(d));
	if (hours == NULL && wd == NULL)
		return "always";
	snprintf(buf, len, "%s%s%s%s (UTC)", hours ? "hours " : "",
		 hours ? hours : "", hours && wd ? ", " : "", wd ? wd : "");
	return buf;
}

/* The phase's target as defined: "10%", "50", "all". */
static const char *
phase_target(const json_t *def, size_t i, char *buf, size_t len)
{
	const json_t *v = json_array_get(json_object_get(def, "phases"), i);
	const char *unit = str_of(def, "unit");
	bool devices = unit != NULL && strcmp(unit, "devices") == 0;

	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_integer(v))
		return NULL;
	snprintf(buf, len, "%lld%s", (long long)json_integer_value(v),
		 devices ? "" : "%");
	return buf;
}

/* The terminal's width (80 when unknown). */
static size_t
term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* ---- show -------------------------------------------------------------- */

static const char *
target_text(const json_t *doc, char *buf, size_t len)
{
	const char *kind = str_of(doc, "kind");
	char v[32];

	if (kind == NULL)
		return NULL;
	if (strcmp(kind, "firmware") == 0) {
		snprintf(buf, len, "artifact %s",
			 str_of(doc, "artifact_id") ? str_of(doc, "artifact_id")
						    : "-");
	} else if (strcmp(kind, "config") == 0) {
		snprintf(buf, len, "profile %s version %s",
			 str_of(doc, "profile") ? str_of(doc, "profile") : "-",
			 ctl_text_or_dash(doc, "version", v, sizeof(v)));
	} else {
		snprintf(buf, len, "new device certificates");
	}
	return buf;
}

static const char *
status_text(const json_t *doc, char *buf, size_t len)
{
	const char *status = str_of(doc, "status");
	const char *reason = str_of(doc, "pause_reason");
	const char *by = str_of(doc, "paused_by");

	if (status == NULL)
		return NULL;
	if (strcmp(status, "paused") != 0 || (reason == NULL && by == NULL))
		return status;
	snprintf(buf, len, "paused%s%s%s%s", by ? " by " : "", by ? by : "",
		 reason ? ": " : "", reason ? reason : "");
	return buf;
}

static const char *
phase_text(const json_t *doc, char *buf, size_t len)
{
	const char *status = str_of(doc, "status");

	if (status != NULL && strcmp(status, "draft") == 0)
		snprintf(buf, len, "not started (%lld phases)",
			 num_of(doc, "phases"));
	else
		snprintf(buf, len, "%lld of %lld released",
			 num_of(doc, "phase"), num_of(doc, "phases"));
	return buf;
}

/* One row of the phase table from a counts object. */
static int
add_counts_row(struct ctl_table *t, const char *phase, const char *upto,
	       const json_t *c)
{
	static const char *const keys[] = {
		"devices",   "pending", "offered", "in_progress",
		"succeeded", "failed",	"silent",  "rolled_back"};
	char bufs[8][32], fs[32];
	const char *row[11];

	row[0] = phase;
	row[1] = upto;
	for (size_t i = 0; i < 8; i++)
		row[2 + i] =
			ctl_text_or_dash(c, keys[i], bufs[i], sizeof(bufs[i]));
	row[10] =
		share_text(json_object_get(c, "failure_share"), fs, sizeof(fs));
	return ctl_table_add(t, row);
}

static int
print_phase_table(const json_t *doc)
{
	static const char *const headers[] = {
		"PHASE",   "UP TO",	  "DEVICES",   "PENDING",
		"OFFERED", "IN PROGRESS", "SUCCEEDED", "FAILED",
		"SILENT",  "ROLLED BACK", "FAILURES"};
	const json_t *counts = json_object_get(doc, "counts");
	const json_t *def = json_object_get(doc, "definition");
	struct ctl_table *t = ctl_table_new(11, headers);
	size_t i;
	json_t *c;
	int rc = 0;

	if (t == NULL)
		return -1;
	json_array_foreach(counts, i, c)
	{
		char p[32], up[32];
		long long ph = num_of(c, "phase");

		snprintf(p, sizeof(p), "%lld", ph);
		rc |= add_counts_row(t, p,
				     ph >= 1 ? phase_target(def, (size_t)ph - 1,
							    up, sizeof(up))
					     : NULL,
				     c);
	}
	if (json_is_object(json_object_get(doc, "totals")))
		rc |= add_counts_row(t, "all", NULL,
				     json_object_get(doc, "totals"));
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	return rc;
}

static int
print_gate_table(const json_t *def)
{
	static const char *const headers[] = {"PHASE",	      "MIN SUCCESS",
					      "SOAK",	      "MAX FAILURE",
					      "MIN FINISHED", "HEALTH WINDOW"};
	const json_t *gates = json_object_get(def, "gates");
	struct ctl_table *t;
	size_t i;
	json_t *g;
	int rc = 0;

	if (!json_is_array(gates) || json_array_size(gates) == 0)
		return 0;
	t = ctl_table_new(6, headers);
	if (t == NULL)
		return -1;
	json_array_foreach(gates, i, g)
	{
		char b[6][32];
		const char *row[6];

		snprintf(b[0], sizeof(b[0]), "%zu", i + 1);
		row[0] = b[0];
		row[1] = share_text(json_object_get(g, "min_success"), b[1],
				    sizeof(b[1]));
		row[2] = json_is_integer(json_object_get(g, "soak_seconds"))
				 ? duration_text(num_of(g, "soak_seconds"),
						 b[2], sizeof(b[2]))
				 : NULL;
		row[3] = share_text(json_object_get(g, "max_failure"), b[3],
				    sizeof(b[3]));
		row[4] = ctl_text(g, "min_finished", b[4], sizeof(b[4]));
		row[5] = json_is_integer(
				 json_object_get(g, "health_window_seconds"))
				 ? duration_text(
					   num_of(g, "health_window_seconds"),
					   b[5], sizeof(b[5]))
				 : NULL;
		rc |= ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	return rc;
}

static int
print_campaign(const json_t *doc)
{
	const json_t *def = json_object_get(doc, "definition");
	const char *sel = str_of(doc, "selector");
	char b[512], by[256];
	long long cap = num_of(def, "max_concurrent");

	ctl_print_field("CAMPAIGN:", ctl_text_or_dash(doc, "id", b, sizeof(b)));
	ctl_print_field("NAME:", ctl_text_or_dash(doc, "name", b, sizeof(b)));
	ctl_print_field("KIND:", ctl_text_or_dash(doc, "kind", b, sizeof(b)));
	ctl_print_field("TARGET:", target_text(doc, b, sizeof(b)));
	if (str_of(doc, "deployment_id") != NULL)
		ctl_print_field("DEPLOYMENT:", str_of(doc, "deployment_id"));
	ctl_print_field("SELECTOR:", sel == NULL || sel[0] == '\0'
					     ? "(every active device)"
					     : sel);
	ctl_print_field("STATUS:", status_text(doc, b, sizeof(b)));
	ctl_print_field("PHASE:", phase_text(doc, b, sizeof(b)));
	ctl_print_field("MATCHED:",
			ctl_text_or_dash(doc, "matched", b, sizeof(b)));
	ctl_print_field("WINDOW:", window_text(def, b, sizeof(b)));
	if (cap > 0)
		snprintf(b, sizeof(b), "%lld offered or in progress at once",
			 cap);
	ctl_print_field("MAX CONCURRENT:", cap > 0 ? b : "no cap");
	snprintf(b, sizeof(b), "%s by %s",
		 str_of(doc, "created_at") ? str_of(doc, "created_at") : "-",
		 ctl_text_or_dash(doc, "created_by", by, sizeof(by)));
	ctl_print_field("CREATED:", b);
	ctl_print_field("STARTED:",
			ctl_text_or_dash(doc, "started_at", b, sizeof(b)));
	ctl_print_field("FINISHED:",
			ctl_text_or_dash(doc, "finished_at", b, sizeof(b)));
	ctl_print_field("REVISION:",
			ctl_text_or_dash(doc, "revision", b, sizeof(b)));
	printf("\nPHASES (devices by state):\n");
	if (print_phase_table(doc) != 0)
		return ctl_fail("out of memory");
	if (json_is_object(def)) {
		printf("\nGATES:\n");
		if (print_gate_table(def) != 0)
			return ctl_fail("out of memory");
	}
	return CTL_EXIT_OK;
}

/* Prints doc as JSON or with print_campaign. An exit code. */
static int
print_doc(struct ctl *ctl, const json_t *doc)
{
	if (ctl->output == CTL_OUT_JSON)
		return ctl_print_json(doc) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	return print_campaign(doc);
}

/* GET /api/v1/campaigns/ID into *doc. 0 or -1 (printed). */
static int
get_campaign(struct ctl *ctl, const char *path, json_t **doc)
{
	struct ctl_call call;

	memset(&call, 0, sizeof(call));
	call.on_404 = "no such campaign";
	return ctl_call(ctl, "GET", path, NULL, &call, doc);
}

static const struct ctl_help show_help = {
	"campaigns show", "ID",
	"Shows a campaign: what it rolls out to which selector, its status\n"
	"(with who paused it and why), the released phase, its time window\n"
	"and concurrency cap, then a table per phase of its devices by state\n"
	"(devices, pending, offered, in progress, succeeded, failed, silent,\n"
	"rolled back; the last row totals them) and the gates of each phase\n"
	"(docs/campaigns.md says what each does).\n"};

static int
campaigns_show(struct ctl *ctl, int argc, char **argv)
{
	char path[512];
	json_t *doc = NULL;
	int rc = ctl_parse(ctl, &show_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "campaigns", argv[optind], "") !=
		    0 ||
	    get_campaign(ctl, path, &doc) != 0)
		return CTL_EXIT_FAIL;
	rc = print_doc(ctl, doc);
	json_decref(doc);
	return rc;
}

/* ---- create ------------------------------------------------------------ */

static const struct ctl_help create_help = {
	"campaigns create",
	"--name N --kind firmware|config|rotation [--artifact ID | --profile P "
	"--version V] --phases LIST [--selector S] [options]",
	"Creates a campaign: a staged rollout of a firmware artifact, a\n"
	"configuration profile version or new device certificates to the\n"
	"active devices a selector matches (docs/selectors.md), in cumulative\n"
	"phases. Each device gets a stable random rank, so phase 1 of\n"
	"1,10,50,100 is the first 1% by rank; devices that match later join\n"
	"at their rank. A phase is released when the one before has at least\n"
	"--min-success of its devices succeeded and then soaked for --soak; "
	"if\n"
	"failures (failed, rolled back, or silent within --health-window of\n"
	"succeeding) exceed --max-failure of the finished devices of a phase,\n"
	"once --min-finished have finished, the campaign pauses itself.\n"
	"The campaign is a draft until started (--start, or 'fleetctl\n"
	"campaigns start ID'); --dry-run creates nothing and prints the\n"
	"devices per phase, how many are offline now and the earliest end.\n"
	"See docs/campaigns.md.\n"
	"\n"
	"Options:\n"
	"  --name N           a name for people (1 to 200 bytes)\n"
	"  --kind K           firmware, config or rotation\n"
	"  --artifact ID      firmware: the artifact (fleetctl artifacts)\n"
	"  --profile P        config: the profile every device gets\n"
	"  --version V        config: the profile's version (a number)\n"
	"  --selector S       the devices (default: every active device)\n"
	"  --phases LIST      cumulative percentages, the last 100 (1,10,100)\n"
	"  --devices          the phases are device counts (5,50,all)\n"
	"  --min-success X    share of a phase that must succeed (0.9, 90%)\n"
	"  --soak DUR         then wait this long (90, 90s, 10m, 2h; 0)\n"
	"  --max-failure X    pause above this share of failures (0.1)\n"
	"  --min-finished N   ... once N devices of the phase finished (1)\n"
	"  --health-window DUR  silent this soon after success: a failure "
	"(10m)\n"
	"  --hours H          UTC hours new offers may be made (8-17, 22-6)\n"
	"  --weekdays D       days new offers may be made (mon-fri, sat,sun)\n"
	"  --max-concurrent N  at most N devices offered or in progress\n"
	"  --start            start it at once\n"
	"  --dry-run          create nothing: the preflight counts only\n"
	"  --idempotency-key K  a key that makes a retried create safe (the\n"
	"                     server answers the first create again)\n"};

struct create_args {
	const char *name, *kind, *artifact, *profile, *selector, *phases;
	const char *hours, *weekdays, *idem_key;
	long version, max_concurrent;
	bool devices, start, dry_run;
	json_t *gate; /* the members given */
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;
	double share;
	long n;

	switch (c) {
	case OPT_NAME:
		a->name = val;
		break;
	case OPT_KIND:
		a->kind = val;
		break;
	case OPT_ARTIFACT:
		a->artifact = val;
		break;
	case OPT_PROFILE:
		a->profile = val;
		break;
	case OPT_VERSION:
		if (ctl_parse_long(val, 1, INT32_MAX, &a->version) != 0)
			return ctl_usage(&create_help,
					 "--version takes a profile version "
					 "number, not '%s'",
					 val);
		break;
	case OPT_SELECTOR:
		a->selector = val;
		break;
	case OPT_PHASES:
		a->phases = val;
		break;
	case OPT_DEVICES:
		a->devices = true;
		break;
	case OPT_MIN_SUCCESS:
	case OPT_MAX_FAILURE:
		if (parse_share(val, &share) != 0)
			return ctl_usage(&create_help,
					 "--%s takes a share from 0 to 1 (0.9) "
					 "or a percentage (90%%), not '%s'",
					 c == OPT_MIN_SUCCESS ? "min-success"
							      : "max-failure",
					 val);
		json_object_set_new(a->gate,
				    c == OPT_MIN_SUCCESS ? "min_success"
							 : "max_failure",
				    json_real(share));
		break;
	case OPT_SOAK:
	case OPT_HEALTH_WINDOW:
		if (parse_seconds(val, 0, MAX_SECONDS, &n) != 0)
			return ctl_usage(
				&create_help,
				"--%s takes a duration such as 90, "
				"90s, 10m or 2h (at most 366d), not "
				"'%s'",
				c == OPT_SOAK ? "soak" : "health-window", val);
		json_object_set_new(a->gate,
				    c == OPT_SOAK ? "soak_seconds"
						  : "health_window_seconds",
				    json_integer(n));
		break;
	case OPT_MIN_FINISHED:
		if (ctl_parse_long(val, 0, MAX_COUNT, &n) != 0)
			return ctl_usage(&create_help,
					 "--min-finished takes a count of "
					 "devices, not '%s'",
					 val);
		json_object_set_new(a->gate, "min_finished", json_integer(n));
		break;
	case OPT_HOURS:
		a->hours = val;
		break;
	case OPT_WEEKDAYS:
		a->weekdays = val;
		break;
	case OPT_MAX_CONCURRENT:
		if (ctl_parse_long(val, 1, MAX_COUNT, &a->max_concurrent) != 0)
			return ctl_usage(&create_help,
					 "--max-concurrent takes a count of "
					 "devices (1 or more), not '%s'",
					 val);
		break;
	case OPT_START:
		a->start = true;
		break;
	case OPT_IDEM_KEY:
		a->idem_key = val;
		break;
	default:
		a->dry_run = true;
		break;
	}
	return CTL_CONTINUE;
}

/* The usage rules the server would also refuse, said in fleetctl's
 * words. CTL_CONTINUE or 2. */
static int
create_check(const struct create_args *a)
{
	bool fw, cfg, rot;

	if (a->name == NULL || a->name[0] == '\0')
		return ctl_usage(&create_help, "--name is required");
	if (a->kind == NULL)
		return ctl_usage(&create_help, "--kind firmware, config or "
					       "rotation is required");
	fw = strcmp(a->kind, "firmware") == 0;
	cfg = strcmp(a->kind, "config") == 0;
	rot = strcmp(a->kind, "rotation") == 0;
	if (!fw && !cfg && !rot)
		return ctl_usage(&create_help,
				 "--kind must be firmware, config or "
				 "rotation, not '%s'",
				 a->kind);
	if (fw && a->artifact == NULL)
		return ctl_usage(&create_help,
				 "--kind firmware needs --artifact ID");
	if (cfg && (a->profile == NULL || a->version == 0))
		return ctl_usage(&create_help,
				 "--kind config needs --profile P and "
				 "--version V");
	if (!fw && a->artifact != NULL)
		return ctl_usage(&create_help,
				 "--artifact is for --kind firmware only");
	if (!cfg && (a->profile != NULL || a->version != 0))
		return ctl_usage(&create_help, "--profile and --version are "
					       "for --kind config only");
	if (a->phases == NULL)
		return ctl_usage(&create_help,
				 "--phases is required (e.g. 1,10,50,100)");
	if (phases_syntax_ok(a->phases, a->devices) != 0)
		return ctl_usage(&create_help,
				 "--phases takes whole numbers separated by "
				 "commas%s, not '%s'",
				 a->devices ? " ('all' last)" : "", a->phases);
	if (a->start && a->dry_run)
		return ctl_usage(&create_help,
				 "--start and --dry-run exclude each other");
	return CTL_CONTINUE;
}

static json_t *
create_body(const struct create_args *a)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "name",
				 a->name, "kind", a->kind, "phases", a->phases,
				 "unit", a->devices ? "devices" : "percent",
				 "start", a->start, "dry_run", a->dry_run);
	int rc = 0;

	if (body == NULL)
		return NULL;
	if (a->artifact != NULL)
		rc |= json_object_set_new(body, "artifact_id",
					  json_string(a->artifact));
	if (a->profile != NULL) {
		rc |= json_object_set_new(body, "profile",
					  json_string(a->profile));
		rc |= json_object_set_new(body, "version",
					  json_integer(a->version));
	}
	if (a->selector != NULL)
		rc |= json_object_set_new(body, "selector",
					  json_string(a->selector));
	if (json_object_size(a->gate) > 0)
		rc |= json_object_set(body, "gate", a->gate);
	if (a->hours != NULL || a->weekdays != NULL) {
		json_t *w = json_object();

		if (a->hours != NULL)
			rc |= json_object_set_new(w, "hours",
						  json_string(a->hours));
		if (a->weekdays != NULL)
			rc |= json_object_set_new(w, "weekdays",
						  json_string(a->weekdays));
		rc |= json_object_set_new(body, "window", w);
	}
	if (a->max_concurrent > 0)
		rc |= json_object_set_new(body, "max_concurrent",
					  json_integer(a->max_concurrent));
	if (rc != 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* The preflight: {dry_run, matched, offline, phases: [{phase, devices}],
 * min_duration_seconds, earliest_completion}. */
static int
print_preflight(const json_t *res)
{
	static const char *const headers[] = {"PHASE", "DEVICES", "CUMULATIVE"};
	const json_t *phases = json_object_get(res, "phases");
	struct ctl_table *t = ctl_table_new(3, headers);
	long long sum = 0;
	char b[256];
	size_t i;
	json_t *p;
	int rc = 0;

	if (t == NULL)
		return ctl_fail("out of memory");
	printf("dry run: nothing was created\n");
	ctl_print_field("MATCHED:",
			ctl_text_or_dash(res, "matched", b, sizeof(b)));
	ctl_print_field("OFFLINE NOW:",
			ctl_text_or_dash(res, "offline", b, sizeof(b)));
	if (json_is_integer(json_object_get(res, "min_duration_seconds")))
		ctl_print_field(
			"MIN DURATION:",
			duration_text(num_of(res, "min_duration_seconds"), b,
				      sizeof(b)));
	else
		ctl_print_field("MIN DURATION:", "-");
	ctl_print_field(
		"EARLIEST END:",
		ctl_text_or_dash(res, "earliest_completion", b, sizeof(b)));
	printf("\n");
	json_array_foreach(phases, i, p)
	{
		char c[3][32];
		const char *row[3];

		sum += num_of(p, "devices");
		row[0] = ctl_text_or_dash(p, "phase", c[0], sizeof(c[0]));
		row[1] = ctl_text_or_dash(p, "devices", c[1], sizeof(c[1]));
		snprintf(c[2], sizeof(c[2]), "%lld", sum);
		row[2] = c[2];
		rc |= ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	return rc == 0 ? CTL_EXIT_OK : ctl_fail("out of memory");
}

static int
campaigns_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, OPT_NAME},
		{"kind", required_argument, NULL, OPT_KIND},
		{"artifact", required_argument, NULL, OPT_ARTIFACT},
		{"profile", required_argument, NULL, OPT_PROFILE},
		{"version", required_argument, NULL, OPT_VERSION},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"phases", required_argument, NULL, OPT_PHASES},
		{"devices", no_argument, NULL, OPT_DEVICES},
		{"min-success", required_argument, NULL, OPT_MIN_SUCCESS},
		{"soak", required_argument, NULL, OPT_SOAK},
		{"max-failure", required_argument, NULL, OPT_MAX_FAILURE},
		{"min-finished", required_argument, NULL, OPT_MIN_FINISHED},
		{"health-window", required_argument, NULL, OPT_HEALTH_WINDOW},
		{"hours", required_argument, NULL, OPT_HOURS},
		{"weekdays", required_argument, NULL, OPT_WEEKDAYS},
		{"max-concurrent", required_argument, NULL, OPT_MAX_CONCURRENT},
		{"start", no_argument, NULL, OPT_START},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"idempotency-key", required_argument, NULL, OPT_IDEM_KEY},
		{0}};
	struct create_args a;
	struct ctl_optset local = {opts, create_opt, &a};
	struct ctl_call call;
	json_t *body = NULL, *res = NULL;
	char id[128];
	int rc;

	memset(&a, 0, sizeof(a));
	a.gate = json_object();
	if (a.gate == NULL)
		return ctl_fail("out of memory");
	rc = ctl_parse(ctl, &create_help, argc, argv, &local, 0);
	if (rc == CTL_CONTINUE)
		rc = create_check(&a);
	if (rc != CTL_CONTINUE)
		goto out;
	body = create_body(&a);
	if (body == NULL) {
		rc = ctl_fail("out of memory (or an argument that is not "
			      "UTF-8)");
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.idempotency_key = a.idem_key;
	rc = CTL_EXIT_FAIL;
	if (ctl_call(ctl, "POST", "/api/v1/campaigns", body, &call, &res) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON)
		rc = ctl_print_json(res) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	else if (a.dry_run)
		rc = print_preflight(res);
	else if ((rc = print_campaign(res)) == CTL_EXIT_OK) {
		snprintf(id, sizeof(id), "%s",
			 str_of(res, "id") ? str_of(res, "id") : "ID");
		ctl_sanitize(id);
		if (!a.start)
			printf("\nstart it with: fleetctl campaigns start "
			       "%s\n",
			       id);
		printf("%sfollow it with: fleetctl campaigns watch %s\n",
		       a.start ? "\n" : "", id);
	}
out:
	json_decref(a.gate);
	json_decref(body);
	json_decref(res);
	return rc;
}

/* ---- list -------------------------------------------------------------- */

static const struct ctl_help list_help = {
	"campaigns list", "[--status S]",
	"Lists campaigns, newest first, with what they roll out, their\n"
	"status and the released phase of all (show ID has the counts).\n"
	"\n"
	"Options:\n"
	"  --status S         only draft, running, paused, completed or "
	"aborted\n"};

static const char *
list_phase_cell(const json_t *item, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%lld/%lld", num_of(item, "phase"),
		 num_of(item, "phases"));
	return buf;
}

/* What it rolls out, short: "hvac@3", "artifact 7b0c2d4e",
 * "certificates". */
static const char *
list_target_cell(const json_t *item, char *buf, size_t buflen)
{
	const char *kind = str_of(item, "kind");
	const char *artifact = str_of(item, "artifact_id");
	char v[32];

	if (kind == NULL)
		return NULL;
	if (strcmp(kind, "firmware") == 0)
		snprintf(buf, buflen, "artifact %.8s",
			 artifact != NULL ? artifact : "-");
	else if (strcmp(kind, "config") == 0)
		snprintf(buf, buflen, "%s@%s",
			 str_of(item, "profile") ? str_of(item, "profile")
						 : "-",
			 ctl_text_or_dash(item, "version", v, sizeof(v)));
	else
		snprintf(buf, buflen, "certificates");
	return buf;
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_KEY("NAME", "name"),
	CTL_COL_KEY("KIND", "kind"),
	CTL_COL_KEY("STATUS", "status"),
	CTL_COL_CELL("PHASE", list_phase_cell),
	CTL_COL_CELL("TARGET", list_target_cell),
	CTL_COL_KEY("SELECTOR", "selector"),
	CTL_COL_KEY("CREATED", "created_at"),
};

static const struct ctl_list list = {&list_help, "/api/v1/campaigns", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

static int
string_opt(void *arg, int c, const char *val)
{
	(void)c;
	*(const char **)arg = val;
	return CTL_CONTINUE;
}

static int
campaigns_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"status", required_argument, NULL, OPT_STATUS}, {0}};
	static const char *const statuses[] = {"draft", "running", "paused",
					       "completed", "aborted"};
	const char *status = NULL;
	struct ctl_optset local = {opts, string_opt, &status};
	struct buf q;
	bool known = false;
	int rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	for (size_t i = 0; status != NULL && i < 5; i++)
		known = known || strcmp(status, statuses[i]) == 0;
	if (status != NULL && !known)
		return ctl_usage(&list_help,
				 "--status must be draft, running, paused, "
				 "completed or aborted, not '%s'",
				 status);
	buf_init(&q, 64);
	if (status != NULL && (buf_printf(&q, "status=") != 0 ||
			       ctl_urlencode(&q, status) != 0)) {
		buf_free(&q);
		return ctl_fail("out of memory");
	}
	rc = ctl_list_items(ctl, &list, q.data != NULL ? q.data : "", 0);
	buf_free(&q);
	return rc;
}

/* ---- devices ----------------------------------------------------------- */

static const struct ctl_help devices_help = {
	"campaigns devices", "ID [--state S] [--phase N]",
	"Lists the devices a campaign has admitted (every page) with their\n"
	"phase, state, the reason of a failure and when they were admitted\n"
	"and finished. Devices that match but are not admitted yet (pending)\n"
	"have no row; 'fleetctl campaigns show' counts them.\n"
	"\n"
	"Options:\n"
	"  --state S          only offered, in_progress, succeeded, failed,\n"
	"                     silent, rolled_back, excluded or reverted\n"
	"  --phase N          only phase N (1 is the first)\n"};

struct devices_args {
	const char *state;
	long phase;
};

static int
devices_opt(void *arg, int c, const char *val)
{
	struct devices_args *a = arg;

	if (c == OPT_STATE) {
		a->state = val;
		return CTL_CONTINUE;
	}
	if (ctl_parse_long(val, 1, 16, &a->phase) != 0)
		return ctl_usage(&devices_help,
				 "--phase takes a phase number from 1 to 16, "
				 "not '%s'",
				 val);
	return CTL_CONTINUE;
}

static const struct ctl_column device_cols[] = {
	CTL_COL_KEY("DEVICE", "device_id"),
	CTL_COL_KEY("PHASE", "phase"),
	CTL_COL_KEY("STATE", "state"),
	CTL_COL_KEY("REASON", "reason"),
	CTL_COL_KEY("RANK", "rank"),
	CTL_COL_KEY("ADMITTED", "admitted_at"),
	CTL_COL_KEY("FINISHED", "finished_at"),
};

static int
campaigns_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, OPT_STATE},
		{"phase", required_argument, NULL, OPT_PHASE},
		{0}};
	struct devices_args a = {NULL, 0};
	struct ctl_optset local = {opts, devices_opt, &a};
	struct buf q;
	json_t *items = NULL;
	char path[512];
	int rc = ctl_parse(ctl, &devices_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "campaigns", argv[optind],
			"/devices") != 0)
		return CTL_EXIT_FAIL;
	buf_init(&q, 128);
	if ((a.state != NULL && (buf_printf(&q, "state=") != 0 ||
				 ctl_urlencode(&q, a.state) != 0)) ||
	    (a.phase > 0 &&
	     buf_printf(&q, "%sphase=%ld", a.state ? "&" : "", a.phase) != 0)) {
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

/* ---- events ------------------------------------------------------------ */

static const struct ctl_help events_help = {
	"campaigns events", "ID",
	"Prints a campaign's log (every page): each transition with when,\n"
	"who (an operator's token name, or campaign-driver), what (created,\n"
	"started, phase_released, gate_met, paused, resumed,\n"
	"selector_changed, completed, aborted, reverted, cancelled_offers),\n"
	"the phase and why.\n"};

static const struct ctl_column event_cols[] = {
	CTL_COL_KEY("AT", "at"),	   CTL_COL_KEY("ACTOR", "actor"),
	CTL_COL_KEY("KIND", "kind"),	   CTL_COL_KEY("PHASE", "phase"),
	CTL_COL_KEY("MESSAGE", "message"),
};

static int
campaigns_events(struct ctl *ctl, int argc, char **argv)
{
	json_t *items = NULL;
	char path[512];
	int rc = ctl_parse(ctl, &events_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "campaigns", argv[optind],
			"/events") != 0 ||
	    ctl_api_list(ctl, path, "", 0, &items) != 0)
		return CTL_EXIT_FAIL;
	rc = ctl_print_items(ctl, items, event_cols,
			     sizeof(event_cols) / sizeof(event_cols[0]));
	json_decref(items);
	return rc;
}

/* ---- start, pause, resume, abort --------------------------------------- */

static const struct ctl_help start_help = {
	"campaigns start", "ID [--reason R]",
	"Starts a draft campaign: phase 1 is released at the driver's next\n"
	"pass (within about a second).\n"
	"\n"
	"Options:\n"
	"  --reason R         why, for the campaign's log and the audit log\n"};

static const struct ctl_help pause_help = {
	"campaigns pause", "ID [--reason R]",
	"Pauses a running campaign: nothing new is offered; devices already\n"
	"offered go on and are counted. Resume it with 'fleetctl campaigns\n"
	"resume ID'.\n"
	"\n"
	"Options:\n"
	"  --reason R         why, for the campaign's log and the audit log\n"};

static const struct ctl_help resume_help = {
	"campaigns resume", "ID [--selector S] [--reason R]",
	"Resumes a paused campaign (paused by an operator or by a gate). With\n"
	"--selector the campaign goes on with a fixed selector: admitted\n"
	"devices that no longer match and have not succeeded are excluded\n"
	"(no longer counted), so a failing cohort left out lets the gate\n"
	"pass. The current phase's gate and soak are judged afresh.\n"
	"\n"
	"Options:\n"
	"  --selector S       the campaign's new selector (docs/selectors.md)\n"
	"  --reason R         why, for the campaign's log and the audit log\n"};

static const struct ctl_help abort_help = {
	"campaigns abort", "ID [--reason R]",
	"Aborts a campaign for good. Firmware: no new offers, open offers not\n"
	"yet installing are withdrawn; devices that committed keep the new\n"
	"firmware (a rollback is a new, signed release). Config: the devices\n"
	"it changed get their previous assignment back. Rotation: pending\n"
	"rotations are withdrawn; certificates already renewed stay.\n"
	"\n"
	"Options:\n"
	"  --reason R         why, for the campaign's log and the audit log\n"};

struct transition_args {
	const char *reason, *selector;
};

static int
transition_opt(void *arg, int c, const char *val)
{
	struct transition_args *a = arg;

	if (c == OPT_REASON)
		a->reason = val;
	else
		a->selector = val;
	return CTL_CONTINUE;
}

static int
transition(struct ctl *ctl, const struct ctl_help *h, const char *verb,
	   const char *done, int argc, char **argv)
{
	static const struct option opts[] = {
		{"reason", required_argument, NULL, OPT_REASON}, {0}};
	static const struct option resume_opts[] = {
		{"reason", required_argument, NULL, OPT_REASON},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{0}};
	struct transition_args a = {NULL, NULL};
	struct ctl_optset local = {strcmp(verb, "resume") == 0 ? resume_opts
							       : opts,
				   transition_opt, &a};
	struct ctl_call call;
	json_t *body = NULL, *doc = NULL;
	char path[512], suffix[16], b[512];
	int rc = ctl_parse(ctl, h, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	snprintf(suffix, sizeof(suffix), "/%s", verb);
	if (ctl_path_id(path, sizeof(path), "campaigns", argv[optind],
			suffix) != 0)
		return CTL_EXIT_FAIL;
	body = json_object();
	if (body == NULL ||
	    (a.reason != NULL &&
	     json_object_set_new(body, "reason", json_string(a.reason)) != 0) ||
	    (a.selector != NULL &&
	     json_object_set_new(body, "selector", json_string(a.selector)) !=
		     0)) {
		json_decref(body);
		return ctl_fail("out of memory (or an argument that is not "
				"UTF-8)");
	}
	memset(&call, 0, sizeof(call));
	call.on_404 = "no such campaign";
	rc = CTL_EXIT_FAIL;
	if (ctl_call(ctl, "POST", path, body, &call, &doc) != 0)
		goto out;
	rc = CTL_EXIT_OK;
	if (ctl->output == CTL_OUT_JSON) {
		rc = ctl_print_json(doc) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
		goto out;
	}
	snprintf(b, sizeof(b), "%s", argv[optind]);
	printf("%s campaign %s\n", done, ctl_sanitize(b));
	ctl_print_field("STATUS:", status_text(doc, b, sizeof(b)));
	ctl_print_field("PHASE:", phase_text(doc, b, sizeof(b)));
	if (a.selector != NULL)
		ctl_print_field("SELECTOR:", str_of(doc, "selector"));
out:
	json_decref(body);
	json_decref(doc);
	return rc;
}

static int
campaigns_start(struct ctl *ctl, int argc, char **argv)
{
	return transition(ctl, &start_help, "start", "started", argc, argv);
}

static int
campaigns_pause(struct ctl *ctl, int argc, char **argv)
{
	return transition(ctl, &pause_help, "pause", "paused", argc, argv);
}

static int
campaigns_resume(struct ctl *ctl, int argc, char **argv)
{
	return transition(ctl, &resume_help, "resume", "resumed", argc, argv);
}

static int
campaigns_abort(struct ctl *ctl, int argc, char **argv)
{
	return transition(ctl, &abort_help, "abort", "aborted", argc, argv);
}

/* ---- watch ------------------------------------------------------------- */

static const struct ctl_help watch_help = {
	"campaigns watch", "ID [--interval DUR]",
	"Follows a campaign until it completes, pauses or is aborted (or\n"
	"Ctrl-C): on a terminal one progress bar per phase (its finished\n"
	"devices of all it has) redrawn in place, with the totals below;\n"
	"otherwise one plain line whenever the status or the counts change\n"
	"(with -o json: the campaign's document at the end). A draft is\n"
	"watched until it starts and then ends.\n"
	"\n"
	"Exit status: 0 the campaign completed, 3 it paused (by an operator\n"
	"or a gate: the reason is printed), 4 it was aborted, 1 an error,\n"
	"2 a usage error, 130 after Ctrl-C (the campaign goes on).\n"
	"\n"
	"Options:\n"
	"  --interval DUR     time between polls (1s to 1h, default 1s)\n"};

struct watch_poll {
	struct ctl *ctl;
	const char *path;
	json_t *doc;
	size_t drawn; /* lines drawn above the live line on the terminal */
};

static bool
status_is(const json_t *doc, const char *status)
{
	const char *s = str_of(doc, "status");

	return s != NULL && strcmp(s, status) == 0;
}

/* "12/20 succeeded, 1 failed, 0 silent, 0 rolled back, 3 in progress,
 * 2 offered, 2 pending" of a counts object. */
static void
counts_words(const json_t *c, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%lld/%lld succeeded, %lld failed, %lld silent, %lld rolled "
		 "back, %lld in progress, %lld offered, %lld pending",
		 num_of(c, "succeeded"), num_of(c, "devices"),
		 num_of(c, "failed"), num_of(c, "silent"),
		 num_of(c, "rolled_back"), num_of(c, "in_progress"),
		 num_of(c, "offered"), num_of(c, "pending"));
}

/* The short form for a terminal line: "47/108 ok, 2 failed, 1 silent,
 * 59 open, 0 pending" (silent and rolled back only when there are). */
static void
counts_short(const json_t *c, bool pending, char *buf, size_t len)
{
	size_t off;

	off = (size_t)snprintf(buf, len, "%lld/%lld ok, %lld failed",
			       num_of(c, "succeeded"), num_of(c, "devices"),
			       num_of(c, "failed"));
	if (off < len && num_of(c, "silent") > 0)
		off += (size_t)snprintf(buf + off, len - off, ", %lld silent",
					num_of(c, "silent"));
	if (off < len && num_of(c, "rolled_back") > 0)
		off += (size_t)snprintf(buf + off, len - off,
					", %lld rolled back",
					num_of(c, "rolled_back"));
	if (off < len)
		off += (size_t)snprintf(buf + off, len - off, ", %lld open",
					num_of(c, "offered") +
						num_of(c, "in_progress"));
	if (off < len && pending)
		snprintf(buf + off, len - off, ", %lld pending",
			 num_of(c, "pending"));
}

/* Cuts s to fit a terminal line of width columns (bytes: the text is
 * sanitized ASCII and numbers, names aside). */
static void
fit(char *s, size_t width)
{
	if (width > 1 && strlen(s) > width - 1)
		s[width - 1] = '\0';
}

/* The per-phase bars, redrawn in place above ctl_watch's live line. */
static void
draw_phases(struct watch_poll *p, const json_t *doc)
{
	const json_t *counts = json_object_get(doc, "counts");
	size_t width = term_width(), i;
	long long released = num_of(doc, "phase");
	char line[512], name[128];
	json_t *c;

	if (p->drawn > 0)
		printf("\r\033[%zuA", p->drawn);
	snprintf(name, sizeof(name), "%s",
		 str_of(doc, "name") ? str_of(doc, "name") : "-");
	snprintf(line, sizeof(line), "campaign %s (%s)", ctl_sanitize(name),
		 str_of(doc, "kind") ? str_of(doc, "kind") : "-");
	ctl_sanitize(line);
	fit(line, width);
	printf("%s\033[K\n", line);
	p->drawn = 1;
	json_array_foreach(counts, i, c)
	{
		long long ph = num_of(c, "phase"),
			  devices = num_of(c, "devices");
		long long finished = num_of(c, "succeeded") +
				     num_of(c, "failed") + num_of(c, "silent") +
				     num_of(c, "rolled_back");
		size_t off = (size_t)snprintf(line, sizeof(line),
					      "phase %-2lld ", ph);

		off += ctl_bar(line + off, sizeof(line) - off, finished,
			       devices);
		if (ph > released)
			snprintf(line + off, sizeof(line) - off,
				 "not released: %lld devices", devices);
		else
			counts_short(c, false, line + off, sizeof(line) - off);
		fit(line, width);
		printf("%s\033[K\n", line);
		p->drawn++;
	}
}

static int
watch_get(void *arg, bool bar, char *line, size_t len, bool *finished)
{
	struct watch_poll *p = arg;
	json_t *doc = NULL;
	char status[32], words[256];

	if (get_campaign(p->ctl, p->path, &doc) != 0)
		return -1;
	json_decref(p->doc);
	p->doc = doc;
	snprintf(status, sizeof(status), "%s",
		 str_of(doc, "status") ? str_of(doc, "status") : "-");
	ctl_sanitize(status);
	*finished = status_is(doc, "completed") || status_is(doc, "paused") ||
		    status_is(doc, "aborted");
	if (bar)
		counts_short(json_object_get(doc, "totals"), true, words,
			     sizeof(words));
	else
		counts_words(json_object_get(doc, "totals"), words,
			     sizeof(words));
	snprintf(line, len, "%s, phase %lld of %lld: %s", status,
		 num_of(doc, "phase"), num_of(doc, "phases"), words);
	if (bar) {
		draw_phases(p, doc);
		fit(line, term_width());
	}
	return 0;
}

static int
watch_opt(void *arg, int c, const char *val)
{
	(void)c;
	if (parse_seconds(val, 1, MAX_INTERVAL, arg) != 0)
		return ctl_usage(&watch_help,
				 "--interval takes a duration from 1s to 1h "
				 "(2, 5s, 1m), not '%s'",
				 val);
	return CTL_CONTINUE;
}

/* The end of a watch in words, and its exit code. */
static int
watch_end(struct ctl *ctl, const char *id, const json_t *doc)
{
	char b[512], i[128];
	int rc = CTL_EXIT_OK;

	if (status_is(doc, "paused"))
		rc = CAMPAIGNS_EXIT_PAUSED;
	else if (status_is(doc, "aborted"))
		rc = CAMPAIGNS_EXIT_ABORTED;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(doc);
		return rc;
	}
	snprintf(i, sizeof(i), "%s", id);
	ctl_sanitize(i);
	if (rc == CAMPAIGNS_EXIT_PAUSED) {
		printf("campaign %s %s\n", i, status_text(doc, b, sizeof(b)));
		printf("resume it with: fleetctl campaigns resume %s "
		       "[--selector S]\n",
		       i);
	} else if (rc == CAMPAIGNS_EXIT_ABORTED) {
		printf("campaign %s aborted\n", i);
	} else {
		const json_t *t = json_object_get(doc, "totals");

		printf("campaign %s completed: %lld/%lld succeeded, %lld "
		       "failed, %lld silent, %lld rolled back\n",
		       i, num_of(t, "succeeded"), num_of(t, "devices"),
		       num_of(t, "failed"), num_of(t, "silent"),
		       num_of(t, "rolled_back"));
	}
	return rc;
}

static int
campaigns_watch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, OPT_INTERVAL}, {0}};
	long interval = 1;
	struct ctl_optset local = {opts, watch_opt, &interval};
	struct watch_poll p = {ctl, NULL, NULL, 0};
	char path[512];
	int rc = ctl_parse(ctl, &watch_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "campaigns", argv[optind], "") != 0)
		return CTL_EXIT_FAIL;
	p.path = path;
	rc = ctl_watch(ctl->output != CTL_OUT_JSON, interval, watch_get, &p);
	if (rc == -1)
		rc = CTL_EXIT_FAIL;
	else if (rc == 130 && ctl->output != CTL_OUT_JSON)
		printf("stopped watching; the campaign goes on\n");
	else if (rc == 0)
		rc = watch_end(ctl, argv[optind], p.doc);
	json_decref(p.doc);
	return rc;
}

/* ---- the group --------------------------------------------------------- */

static const struct ctl_subcmd subs[] = {
	{"create", "a staged rollout; --dry-run counts devices per phase",
	 campaigns_create, NULL, NULL},
	{"list", "campaigns, their status and phase", campaigns_list, NULL,
	 NULL},
	{"show", "a campaign and its devices per phase and state",
	 campaigns_show, NULL, NULL},
	{"devices", "its admitted devices; --state and --phase filter",
	 campaigns_devices, NULL, NULL},
	{"events", "its log: every transition, who and why", campaigns_events,
	 NULL, NULL},
	{"start", "start a draft", campaigns_start, NULL, NULL},
	{"pause", "stop new offers until resumed", campaigns_pause, NULL, NULL},
	{"resume", "go on, optionally with a fixed selector", campaigns_resume,
	 NULL, NULL},
	{"abort", "stop for good (config: revert)", campaigns_abort, NULL,
	 NULL},
	{"watch", "per-phase progress until it completes, pauses or aborts",
	 campaigns_watch, NULL, NULL},
};

int
ctl_cmd_campaigns(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "campaigns",
			    "Campaigns: staged rollouts with gates "
			    "(docs/campaigns.md).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
