/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's device configuration commands (docs/profiles.md):
 *   devices config show ID     desired, reported and what differs
 *   devices config set ID      profile (pinned or latest) and overrides,
 *                              sent with If-Match of the state it read
 *   config clone               one device's config (or a profile version)
 *                              to every device a selector matches; dry-run
 *   config drift               devices whose reported hash is not desired
 *   config status CHANGE       a change's progress; --watch follows it
 * Runs in fleetctl; answers are untrusted (sanitized before printing).
 */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "watch.h"

enum {
	OPT_PROFILE = CTL_OPT_FIRST_LOCAL,
	OPT_NO_PROFILE,
	OPT_OVERRIDE,
	OPT_NO_OVERRIDE,
	OPT_FROM_DEVICE,
	OPT_FROM_PROFILE,
	OPT_SELECTOR,
	OPT_MODE,
	OPT_DRY_RUN,
	OPT_IDEMPOTENCY_KEY,
	OPT_WATCH,
	OPT_INTERVAL,
};

#define DIFF_LINES 40

/* "base@3 (pinned)", "base@latest (now version 4)", or NULL. */
static const char *
profile_text(const json_t *cfg, char *buf, size_t buflen)
{
	const char *name = json_string_value(json_object_get(cfg, "profile"));
	const json_t *pin = json_object_get(cfg, "version");
	const json_t *res = json_object_get(cfg, "resolved_version");

	if (name == NULL)
		return NULL;
	if (json_is_integer(pin))
		snprintf(buf, buflen, "%s@%" JSON_INTEGER_FORMAT " (pinned)",
			 name, json_integer_value(pin));
	else if (json_is_integer(res))
		snprintf(buf, buflen,
			 "%s@latest (now version %" JSON_INTEGER_FORMAT ")",
			 name, json_integer_value(res));
	else
		snprintf(buf, buflen, "%s@latest", name);
	return buf;
}

/* What the state means, for people. */
static const char *
state_text(const json_t *cfg, char *buf, size_t buflen)
{
	const char *state = json_string_value(json_object_get(cfg, "state"));
	const json_t *rep = json_object_get(cfg, "reported");
	char reason[256];

	if (state == NULL)
		return NULL;
	if (strcmp(state, "none") == 0)
		return "none: no configuration";
	if (strcmp(state, "in_sync") == 0)
		return "in_sync: the device applied the desired document";
	if (strcmp(state, "pending") == 0)
		return "pending: the device is online; the desired document "
		       "is on its way";
	if (strcmp(state, "offline") == 0)
		return "offline: the device gets the desired document when it "
		       "reconnects";
	if (strcmp(state, "failed") == 0) {
		snprintf(buf, buflen,
			 "failed: the device refused the desired document "
			 "(%s); it keeps its previous one",
			 ctl_text_or_dash(rep, "reason", reason,
					  sizeof(reason)));
		return buf;
	}
	if (strcmp(state, "drifted") == 0)
		return "drifted: the file on the device was changed there";
	return state;
}

/* Desired beside reported: generation, hash, status, time. */
static void
print_compare(const json_t *desired, const json_t *reported)
{
	static const char *const headers[] = {"", "DESIRED", "REPORTED"};
	static const struct {
		const char *label, *dkey, *rkey;
	} rows[] = {
		{"GENERATION", "generation", "generation"},
		{"SHA256", "sha256", "sha256"},
		{"STATUS", NULL, "status"},
		{"SINCE", "updated_at", "reported_at"},
	};
	struct ctl_table *t = ctl_table_new(3, headers);

	if (t == NULL)
		return;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char d[128], r[128];
		const char *cells[3] = {rows[i].label, NULL, NULL};

		if (rows[i].dkey != NULL)
			cells[1] =
				ctl_text(desired, rows[i].dkey, d, sizeof(d));
		cells[2] = ctl_text(reported, rows[i].rkey, r, sizeof(r));
		/* 16 hex digits tell hashes apart at a glance; -o json has
		 * them whole. */
		for (int k = 1; k < 3 && strcmp(rows[i].label, "SHA256") == 0;
		     k++)
			cells[k] = cfg_short_hash(cells[k], k == 1 ? d : r, 17);
		if (ctl_table_add(t, cells) != 0)
			break;
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

/*
 * The overrides as what they change in the profile version the device
 * has (one more GET, for the version's document); without a profile the
 * overrides are the whole document.
 */
static void
print_overrides(struct ctl *ctl, json_t *cfg)
{
	json_t *ovr = json_object_get(cfg, "overrides");
	const char *profile =
		json_string_value(json_object_get(cfg, "profile"));
	const json_t *res = json_object_get(cfg, "resolved_version");
	json_t *v = NULL;
	char path[512], suffix[64];

	if (!json_is_object(ovr))
		return;
	if (profile != NULL && json_is_integer(res)) {
		snprintf(suffix, sizeof(suffix),
			 "/versions/%" JSON_INTEGER_FORMAT,
			 json_integer_value(res));
		if (ctl_path_id(path, sizeof(path), "profiles", profile,
				suffix) != 0 ||
		    cfg_get_quiet(ctl, path, &v) != 0)
			v = NULL;
		printf("\nOVERRIDES (what they change in "
		       "%s@%" JSON_INTEGER_FORMAT "):\n",
		       profile, json_integer_value(res));
	} else {
		printf("\nOVERRIDES (no profile: they are the document):\n");
	}
	if (cfg_patch_print(stdout, json_object_get(v, "document"), ovr, "  ",
			    DIFF_LINES) == 0)
		printf("  (nothing: the version as it is)\n");
	json_decref(v);
}

static void
print_device_config(struct ctl *ctl, json_t *cfg)
{
	const json_t *desired = json_object_get(cfg, "desired");
	const json_t *reported = json_object_get(cfg, "reported");
	const char *state = json_string_value(json_object_get(cfg, "state"));
	char b[512];

	ctl_print_field("DEVICE:", ctl_text(cfg, "device_id", b, sizeof(b)));
	ctl_print_field("PROFILE:", profile_text(cfg, b, sizeof(b)));
	ctl_print_field(
		"OVERRIDES:",
		ctl_json_text(json_object_get(cfg, "overrides"), b, sizeof(b)));
	ctl_print_field("REVISION:", ctl_text(cfg, "revision", b, sizeof(b)));
	ctl_print_field("ONLINE:", ctl_text(cfg, "online", b, sizeof(b)));
	ctl_print_field("STATE:", state_text(cfg, b, sizeof(b)));
	ctl_print_field("CHANGE:",
			ctl_text(desired, "change_id", b, sizeof(b)));
	/* The reason of a report that still stands (failed, drifted). */
	if (json_is_object(reported) &&
	    json_is_string(json_object_get(reported, "reason")) &&
	    state != NULL &&
	    (strcmp(state, "failed") == 0 || strcmp(state, "drifted") == 0))
		ctl_print_field("REASON:",
				ctl_text(reported, "reason", b, sizeof(b)));
	printf("\n");
	print_compare(desired, reported);
	print_overrides(ctl, cfg);
	if (json_is_object(json_object_get(desired, "document"))) {
		printf("\nDESIRED DOCUMENT:\n");
		ctl_print_json(json_object_get(desired, "document"));
	}
}

/* ---- devices config show ------------------------------------------------ */

static const struct ctl_help show_help = {
	"devices config show", "ID",
	"Shows a device's configuration: its profile (pinned or latest), its\n"
	"overrides, the desired state (generation and hash of the effective\n"
	"document, and the document), what the device reported last, and "
	"what\n"
	"differs.\n"};

/* "no device ID" for 404s. */
static const char *
no_such(char *buf, size_t buflen, const char *what, const char *id)
{
	snprintf(buf, buflen, "no %s %s", what, id);
	return buf;
}

static int
config_show(struct ctl *ctl, int argc, char **argv)
{
	char path[512], what[128];
	json_t *cfg = NULL;
	int rc = ctl_parse(ctl, &show_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "devices", argv[optind],
			"/config") != 0 ||
	    cfg_get(ctl, path,
		    no_such(what, sizeof(what), "device", argv[optind]),
		    &cfg) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(cfg);
	else
		print_device_config(ctl, cfg);
	json_decref(cfg);
	return CTL_EXIT_OK;
}

/* ---- devices config set ------------------------------------------------- */

static const struct ctl_help set_help = {
	"devices config set",
	"ID [--profile P[@V] | --no-profile] [--override FILE | "
	"--no-override]",
	"Changes a device's profile assignment or overrides; what the options\n"
	"do not name is kept. fleetctl reads the device's configuration\n"
	"first and sends the change with If-Match of what it read (before\n"
	"reading FILE): if someone changed it in between, nothing is written\n"
	"and the command fails (412).\n"
	"\n"
	"Options:\n"
	"  --profile P        follow the latest version of profile P\n"
	"  --profile P@V      pin version V of profile P\n"
	"  --no-profile       remove the profile (overrides alone remain)\n"
	"  --override FILE    per-device overrides: a JSON merge patch (RFC\n"
	"                     7386) applied to the profile version; '-' reads\n"
	"                     standard input; at most 256 KiB\n"
	"  --no-override      remove the overrides\n"};

struct set_args {
	const char *profile, *override;
	bool no_profile, no_override;
};

static int
set_opt(void *arg, int c, const char *val)
{
	struct set_args *a = arg;

	switch (c) {
	case OPT_PROFILE:
		a->profile = val;
		break;
	case OPT_NO_PROFILE:
		a->no_profile = true;
		break;
	case OPT_OVERRIDE:
		a->override = val;
		break;
	default:
		a->no_override = true;
		break;
	}
	return CTL_CONTINUE;
}

/* The PATCH of the assignment: only the members the options name (the
 * server keeps the others). */
static json_t *
set_body(const struct set_args *a, json_t *overrides)
{
	json_t *body = json_object();
	char name[256];
	long v;
	bool pinned;
	int rc = 0;

	if (body == NULL)
		return NULL;
	if (a->profile != NULL) {
		if (cfg_parse_profile_ref(a->profile, name, sizeof(name), &v,
					  &pinned) != 0)
			goto fail;
		rc |= json_object_set_new(body, "profile", json_string(name));
		rc |= json_object_set_new(body, "version",
					  pinned ? json_integer(v)
						 : json_string("latest"));
	}
	if (a->no_profile)
		rc |= json_object_set_new(body, "profile", json_null());
	if (overrides != NULL)
		rc |= json_object_set(body, "overrides", overrides);
	if (a->no_override)
		rc |= json_object_set_new(body, "overrides", json_null());
	if (rc == 0)
		return body;
fail:
	json_decref(body);
	return NULL;
}

static int
config_set(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"profile", required_argument, NULL, OPT_PROFILE},
		{"no-profile", no_argument, NULL, OPT_NO_PROFILE},
		{"override", required_argument, NULL, OPT_OVERRIDE},
		{"no-override", no_argument, NULL, OPT_NO_OVERRIDE},
		{0}};
	struct set_args a;
	struct ctl_optset local = {opts, set_opt, &a};
	struct ctl_call get, patch;
	char path[512], name[256], etag[CTL_ETAG_MAX], what[128];
	json_t *cfg = NULL, *overrides = NULL, *body = NULL, *res = NULL;
	long version;
	bool pinned;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = ctl_parse(ctl, &set_help, argc, argv, &local, 1);
	if (rc != CTL_CONTINUE)
		return rc;
	if (a.profile == NULL && a.override == NULL && !a.no_profile &&
	    !a.no_override)
		return ctl_usage(&set_help,
				 "nothing to change: give --profile, "
				 "--override, --no-profile or "
				 "--no-override");
	if ((a.profile != NULL && a.no_profile) ||
	    (a.override != NULL && a.no_override))
		return ctl_usage(
			&set_help, "--%s and --no-%s contradict each other",
			a.no_profile && a.profile != NULL ? "profile"
							  : "override",
			a.no_profile && a.profile != NULL ? "profile"
							  : "override");
	if (a.profile != NULL &&
	    cfg_parse_profile_ref(a.profile, name, sizeof(name), &version,
				  &pinned) != 0)
		return ctl_usage(&set_help,
				 "--profile takes P or P@V (V a version number "
				 "or 'latest'), not '%s'",
				 a.profile);
	rc = CTL_EXIT_FAIL;
	/* Read the state first, then the file: what is written is what the
	 * operator had when the state was read (If-Match below). */
	memset(&get, 0, sizeof(get));
	get.on_404 = no_such(what, sizeof(what), "device", argv[optind]);
	if (ctl_path_id(path, sizeof(path), "devices", argv[optind],
			"/config") != 0 ||
	    ctl_call(ctl, "GET", path, NULL, &get, &cfg) != 0)
		goto out;
	if (a.override != NULL) {
		overrides = cfg_read_doc(a.override, "--override");
		if (overrides == NULL)
			goto out;
	}
	body = set_body(&a, overrides);
	if (body == NULL) {
		rc = ctl_fail("out of memory");
		goto out;
	}
	memcpy(etag, get.etag, sizeof(etag));
	memset(&patch, 0, sizeof(patch));
	patch.if_match = etag[0] != '\0' ? etag : NULL;
	patch.on_404 = what;
	patch.on_412 = "the device's configuration changed since this command "
		       "read it: nothing written; look at it again "
		       "('fleetctl devices config show') and retry";
	/* PATCH: the members given replace the assignment's (docs/api.md). */
	if (ctl_call(ctl, "PATCH", path, body, &patch, &res) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(res);
	} else {
		printf("updated configuration of device %s\n",
		       ctl_sanitize(argv[optind]));
		print_device_config(ctl, res);
		if (json_is_string(json_object_get(res, "change_id")))
			printf("\nfollow it with: fleetctl config status %s "
			       "--watch\n",
			       json_string_value(
				       json_object_get(res, "change_id")));
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(cfg);
	json_decref(overrides);
	json_decref(body);
	json_decref(res);
	return rc;
}

static const struct ctl_subcmd device_subs[] = {
	{"show", "desired and reported configuration, and the diff",
	 config_show, NULL, NULL},
	{"set", "set the profile (pinned or latest) or overrides", config_set,
	 NULL, NULL},
};

int
ctl_cmd_devices_config(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "devices config",
			    "A device's configuration: profile, overrides, "
			    "desired and reported state\n(docs/profiles.md).",
			    device_subs,
			    sizeof(device_subs) / sizeof(device_subs[0]), argc,
			    argv);
}

/* ---- config clone -------------------------------------------------------- */

static const struct ctl_help clone_help = {
	"config clone",
	"(--from-device ID | --from-profile P@V) --selector S [--mode "
	"assign|copy] [--dry-run]",
	"Gives every device that S matches the configuration of one device or\n"
	"a profile version, in one transaction. Run it with --dry-run first:\n"
	"it shows how many devices match, would change, are unchanged or\n"
	"offline, and the diff of the source against a sample of them, and\n"
	"writes nothing. Without --dry-run it prints the change id; follow it\n"
	"with 'fleetctl config status ID --watch'.\n"
	"\n"
	"Options:\n"
	"  --from-device ID      the source: this device's configuration\n"
	"  --from-profile P@V    the source: version V of profile P ('latest'\n"
	"                        or no @V: follow the latest version)\n"
	"  --selector S          the target devices (docs/selectors.md)\n"
	"  --mode assign|copy    assign (default): every target gets the\n"
	"                        source's profile and version (pinned or\n"
	"                        latest) and keeps its own overrides; copy:\n"
	"                        every target keeps its profile and gets\n"
	"                        overrides that make its effective config\n"
	"                        equal to the source's\n"
	"  --dry-run             show what would change; write nothing\n"
	"  --idempotency-key K   a key that makes a retried clone safe (the\n"
	"                        server answers the first clone again)\n"};

struct clone_args {
	const char *device, *profile, *selector, *mode, *key;
	bool dry_run;
};

static int
clone_opt(void *arg, int c, const char *val)
{
	struct clone_args *a = arg;

	switch (c) {
	case OPT_FROM_DEVICE:
		a->device = val;
		break;
	case OPT_FROM_PROFILE:
		a->profile = val;
		break;
	case OPT_SELECTOR:
		a->selector = val;
		break;
	case OPT_MODE:
		if (strcmp(val, "assign") != 0 && strcmp(val, "copy") != 0)
			return ctl_usage(&clone_help,
					 "--mode is assign or copy, not '%s'",
					 val);
		a->mode = val;
		break;
	case OPT_IDEMPOTENCY_KEY:
		a->key = val;
		break;
	default:
		a->dry_run = true;
		break;
	}
	return CTL_CONTINUE;
}

static void
print_count(const json_t *counts, const char *key, const char *label)
{
	char b[32];

	ctl_print_field(label, ctl_text_or_dash(counts, key, b, sizeof(b)));
}

/* A sample's diff (a merge patch from the device's desired document to
 * the new one) as changes, against that document when it can be read. */
static void
print_sample(struct ctl *ctl, const json_t *sample)
{
	const char *id =
		json_string_value(json_object_get(sample, "device_id"));
	json_t *cfg = NULL, *doc;
	char path[512], line[128];

	if (id == NULL)
		return;
	if (ctl_path_id(path, sizeof(path), "devices", id, "/config") != 0 ||
	    cfg_get_quiet(ctl, path, &cfg) != 0)
		cfg = NULL;
	doc = json_object_get(json_object_get(cfg, "desired"), "document");
	snprintf(line, sizeof(line), "device %s:", id);
	printf("%s\n", ctl_sanitize(line));
	if (cfg_patch_print(stdout, json_is_object(doc) ? doc : NULL,
			    json_object_get(sample, "diff"), "  ",
			    DIFF_LINES) == 0)
		printf("  (no difference)\n");
	json_decref(cfg);
}

static void
print_clone(struct ctl *ctl, const json_t *res, bool dry_run)
{
	const json_t *counts = json_object_get(res, "counts");
	const json_t *assign = json_object_get(res, "assign");
	const json_t *samples = json_object_get(res, "samples");
	char b[256], p[128], v[32], r[32];

	if (!dry_run)
		ctl_print_field("CHANGE:",
				ctl_text(res, "change_id", b, sizeof(b)));
	if (json_is_object(assign)) {
		snprintf(b, sizeof(b), "%s@%s (version %s)",
			 ctl_text_or_dash(assign, "profile", p, sizeof(p)),
			 ctl_text_or_dash(assign, "version", v, sizeof(v)),
			 ctl_text_or_dash(assign, "resolved_version", r,
					  sizeof(r)));
		ctl_print_field("ASSIGN:", b);
	} else {
		ctl_print_field("COPY:", "the source's effective document "
					 "(as overrides)");
	}
	ctl_print_field("SHA256:", ctl_text(res, "sha256", b, sizeof(b)));
	print_count(counts, "matched", "MATCHED:");
	print_count(counts, "would_change",
		    dry_run ? "WOULD CHANGE:" : "CHANGED:");
	print_count(counts, "unchanged", "UNCHANGED:");
	print_count(counts, "offline", "OFFLINE:");
	if (!json_is_array(samples) || json_array_size(samples) == 0)
		return;
	printf("\nDIFF for a sample of %zu device%s (what each would get):\n",
	       json_array_size(samples),
	       json_array_size(samples) == 1 ? "" : "s");
	for (size_t i = 0; i < json_array_size(samples); i++)
		print_sample(ctl, json_array_get(samples, i));
}

static int
config_clone(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"from-device", required_argument, NULL, OPT_FROM_DEVICE},
		{"from-profile", required_argument, NULL, OPT_FROM_PROFILE},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"mode", required_argument, NULL, OPT_MODE},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"idempotency-key", required_argument, NULL,
		 OPT_IDEMPOTENCY_KEY},
		{0}};
	struct clone_args a;
	struct ctl_optset local = {opts, clone_opt, &a};
	struct ctl_call call;
	char name[256];
	json_t *body = NULL, *source = NULL, *res = NULL;
	long version;
	bool pinned;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = ctl_parse(ctl, &clone_help, argc, argv, &local, 0);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((a.device == NULL) == (a.profile == NULL))
		return ctl_usage(&clone_help, "give one source: --from-device "
					      "ID or --from-profile P@V");
	if (a.selector == NULL || a.selector[0] == '\0')
		return ctl_usage(&clone_help, "--selector S is required");
	if (a.device != NULL) {
		source = json_pack("{s:s}", "device", a.device);
	} else {
		if (cfg_parse_profile_ref(a.profile, name, sizeof(name),
					  &version, &pinned) != 0)
			return ctl_usage(&clone_help,
					 "--from-profile takes P or P@V, not "
					 "'%s'",
					 a.profile);
		source = json_pack("{s:s, s:o}", "profile", name, "version",
				   pinned ? json_integer(version)
					  : json_string("latest"));
	}
	body = json_pack("{s:O, s:s, s:s, s:b}", "source", source, "selector",
			 a.selector, "mode", a.mode != NULL ? a.mode : "assign",
			 "dry_run", a.dry_run);
	if (source == NULL || body == NULL) {
		rc = ctl_fail("out of memory (or an argument that is not "
			      "UTF-8)");
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.idempotency_key = a.key;
	rc = CTL_EXIT_FAIL;
	if (ctl_call(ctl, "POST", "/api/v1/config/clone", body, &call, &res) !=
	    0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(res);
	} else {
		char b[128];

		if (a.dry_run)
			printf("dry run: nothing was changed\n");
		print_clone(ctl, res, a.dry_run);
		if (!a.dry_run)
			printf("\nfollow it with: fleetctl config status %s "
			       "--watch\n",
			       ctl_text_or_dash(res, "change_id", b,
						sizeof(b)));
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(source);
	json_decref(body);
	json_decref(res);
	return rc;
}

/* ---- config drift ---------------------------------------------------- */

static const struct ctl_help drift_help = {
	"config drift", "[--selector S]",
	"Lists devices whose reported configuration is not the desired one,\n"
	"with the reason: pending (not applied yet, e.g. offline), failed "
	"(the\n"
	"device's hook refused it) or drifted (the file was changed on the\n"
	"device).\n"
	"\n"
	"Options:\n"
	"  --selector S   only devices matching S (docs/selectors.md)\n"};

/* "7 3f2a9c01d4e5" of a desired or reported state, or NULL. */
static const char *
gen_hash(const json_t *st, char *buf, size_t buflen)
{
	char g[32], h[13];
	const char *hash = json_string_value(json_object_get(st, "sha256"));

	if (!json_is_object(st))
		return NULL;
	snprintf(buf, buflen, "%s %s",
		 ctl_text_or_dash(st, "generation", g, sizeof(g)),
		 hash != NULL ? cfg_short_hash(hash, h, sizeof(h)) : "-");
	return buf;
}

static const char *
desired_cell(const json_t *item, char *buf, size_t buflen)
{
	return gen_hash(json_object_get(item, "desired"), buf, buflen);
}

static const char *
reported_cell(const json_t *item, char *buf, size_t buflen)
{
	const json_t *r = json_object_get(item, "reported");
	char gh[64], st[32];

	if (!json_is_object(r))
		return "nothing yet";
	snprintf(buf, buflen, "%s %s", gen_hash(r, gh, sizeof(gh)),
		 ctl_text_or_dash(r, "status", st, sizeof(st)));
	return buf;
}

static const char *
reason_cell(const json_t *item, char *buf, size_t buflen)
{
	const char *state = json_string_value(json_object_get(item, "state"));
	const json_t *r = json_object_get(item, "reported");

	if (state != NULL &&
	    (strcmp(state, "failed") == 0 || strcmp(state, "drifted") == 0))
		return ctl_text(r, "reason", buf, buflen);
	if (state != NULL && strcmp(state, "offline") == 0)
		return "gets it when it reconnects";
	if (state != NULL && strcmp(state, "pending") == 0)
		return "on its way";
	return NULL;
}

static const struct ctl_column drift_cols[] = {
	CTL_COL_KEY("DEVICE", "device_id"),
	CTL_COL_KEY("STATE", "state"),
	CTL_COL_KEY("PROFILE", "profile"),
	CTL_COL_CELL("DESIRED", desired_cell),
	CTL_COL_CELL("REPORTED", reported_cell),
	CTL_COL_CELL("REASON", reason_cell),
};

static int
selector_opt(void *arg, int c, const char *val)
{
	(void)c;
	*(const char **)arg = val;
	return CTL_CONTINUE;
}

static int
config_drift(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"selector", required_argument, NULL, OPT_SELECTOR}, {0}};
	const char *selector = NULL;
	struct ctl_optset local = {opts, selector_opt, &selector};
	json_t *items = NULL;
	struct buf query;
	int rc = ctl_parse(ctl, &drift_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	buf_init(&query, 16384);
	if (selector != NULL && (buf_printf(&query, "selector=") != 0 ||
				 ctl_urlencode(&query, selector) != 0)) {
		buf_free(&query);
		return ctl_usage(&drift_help, "--selector is too long");
	}
	rc = CTL_EXIT_FAIL;
	if (ctl_api_list(ctl, "/api/v1/config/drift",
			 query.data != NULL ? query.data : "", 0, &items) == 0)
		rc = ctl_print_items(ctl, items, drift_cols,
				     sizeof(drift_cols) /
					     sizeof(drift_cols[0]));
	json_decref(items);
	buf_free(&query);
	return rc;
}

/* ---- config status ------------------------------------------------------ */

static const struct ctl_help status_help = {
	"config status", "CHANGE [--watch] [--interval SECONDS]",
	"Shows the progress of a configuration change (a clone, a set, a\n"
	"publish followed by devices on 'latest'): how many devices applied\n"
	"it, failed (and why), are offline or still pending.\n"
	"\n"
	"With --watch it follows the change until nothing is pending (or\n"
	"Ctrl-C): a live progress bar on a terminal, one line per change of\n"
	"the counts otherwise (with -o json: nothing until the end, then the\n"
	"change). It then exits 0 if no device failed, 1 if some did, 130\n"
	"after Ctrl-C (the change goes on; devices offline are not waited\n"
	"for: they get it when they reconnect).\n"
	"\n"
	"Options:\n"
	"  --watch            follow the change until nothing is pending\n"
	"  --interval S       seconds between polls (1..60, default 1)\n"};

struct status_args {
	bool watch;
	long interval;
};

static int
status_opt(void *arg, int c, const char *val)
{
	struct status_args *a = arg;

	if (c == OPT_WATCH) {
		a->watch = true;
		return CTL_CONTINUE;
	}
	if (ctl_parse_long(val, 1, 60, &a->interval) != 0)
		return ctl_usage(&status_help,
				 "--interval takes 1 to 60 seconds, not '%s'",
				 val);
	return CTL_CONTINUE;
}

static const struct ctl_column failed_cols[] = {
	CTL_COL_KEY("DEVICE", "device_id"),
	CTL_COL_KEY("REASON", "reason"),
	CTL_COL_KEY("REPORTED", "reported_at"),
};

static void
print_failures(struct ctl *ctl, const json_t *ch)
{
	const json_t *failures = json_object_get(ch, "failures");

	if (!json_is_array(failures) || json_array_size(failures) == 0)
		return;
	printf("\nFAILED:\n");
	ctl_print_items(ctl, failures, failed_cols,
			sizeof(failed_cols) / sizeof(failed_cols[0]));
	if (json_is_true(json_object_get(ch, "failures_truncated")))
		printf("(more failed than are listed here)\n");
}

static void
print_change(struct ctl *ctl, const json_t *ch, const struct cfg_counts *c)
{
	const json_t *counts = json_object_get(ch, "counts");
	char b[256], line[256], m[32], n[32];

	ctl_print_field("CHANGE:", ctl_text(ch, "id", b, sizeof(b)));
	ctl_print_field("KIND:", ctl_text(ch, "kind", b, sizeof(b)));
	ctl_print_field("SOURCE:", ctl_json_text(json_object_get(ch, "source"),
						 b, sizeof(b)));
	ctl_print_field("SELECTOR:", ctl_text(ch, "selector", b, sizeof(b)));
	ctl_print_field("BY:", ctl_text(ch, "actor", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(ch, "created_at", b, sizeof(b)));
	snprintf(b, sizeof(b), "%s matched, %s changed",
		 ctl_text_or_dash(counts, "matched", m, sizeof(m)),
		 ctl_text_or_dash(counts, "changed", n, sizeof(n)));
	ctl_print_field("DEVICES:", b);
	cfg_progress_text(c, false, line, sizeof(line));
	ctl_print_field("PROGRESS:", line);
	print_failures(ctl, ch);
}

/* One GET of the change into *ch and *c; 0, or -1 (printed). */
static int
change_get(struct ctl *ctl, const char *path, const char *id, json_t **ch,
	   struct cfg_counts *c)
{
	json_t *doc = NULL;
	char what[128];

	if (cfg_get(ctl, path, no_such(what, sizeof(what), "change", id),
		    &doc) != 0)
		return -1;
	if (cfg_counts_read(doc, c) != 0) {
		json_decref(doc);
		ctl_fail("change %s: the answer has no counts", id);
		return -1;
	}
	json_decref(*ch);
	*ch = doc;
	return 0;
}

/* One poll of --watch (watch.c's loop): the change and its line. */
struct watch_poll {
	struct ctl *ctl;
	const char *path, *id;
	json_t **ch;
	struct cfg_counts *c;
};

static int
watch_get(void *arg, bool bar, char *line, size_t len, bool *finished)
{
	struct watch_poll *p = arg;

	if (change_get(p->ctl, p->path, p->id, p->ch, p->c) != 0)
		return -1;
	cfg_progress_text(p->c, bar, line, len);
	*finished = p->c->pending == 0;
	return 0;
}

/*
 * --watch: polls until nothing is pending or Ctrl-C (SIGINT, SIGTERM).
 * Table output shows progress as it goes: one live line with a bar on a
 * terminal, a plain line per change of the counts otherwise (ctl_watch).
 * *ch and *c are the last answer. 0, 130 after Ctrl-C, or -1 (printed).
 */
static int
watch(struct ctl *ctl, const char *path, const char *id, long interval,
      json_t **ch, struct cfg_counts *c)
{
	struct watch_poll p = {ctl, path, id, ch, c};
	bool show = ctl->output != CTL_OUT_JSON;
	int rc = ctl_watch(show, interval, watch_get, &p);

	if (show && rc == 130)
		printf("stopped watching; the change goes on (%lld pending)\n",
		       c->pending);
	return rc;
}

static int
config_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"watch", no_argument, NULL, OPT_WATCH},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{0}};
	struct status_args a = {false, 1};
	struct ctl_optset local = {opts, status_opt, &a};
	struct cfg_counts c;
	char path[512];
	const char *id;
	json_t *ch = NULL;
	int rc = ctl_parse(ctl, &status_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	id = argv[optind];
	if (ctl_path_id(path, sizeof(path), "config/changes", id, "") != 0)
		return CTL_EXIT_FAIL;
	memset(&c, 0, sizeof(c));
	if (a.watch)
		rc = watch(ctl, path, id, a.interval, &ch, &c);
	else
		rc = change_get(ctl, path, id, &ch, &c);
	if (rc == -1) {
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(ch);
	else if (!a.watch)
		print_change(ctl, ch, &c);
	else if (rc == 0)
		print_failures(ctl, ch);
	/* A watch that saw the end tells a script whether it went well. */
	if (a.watch && rc == 0 && c.failed > 0)
		rc = ctl_fail("change %s: %lld device%s failed", id, c.failed,
			      c.failed == 1 ? "" : "s");
out:
	json_decref(ch);
	return rc;
}

static const struct ctl_subcmd config_subs[] = {
	{"clone", "give one device's config to every device a selector matches",
	 config_clone, NULL, NULL},
	{"drift", "devices whose reported config is not the desired one",
	 config_drift, NULL, NULL},
	{"status", "progress of a change; --watch follows it", config_status,
	 NULL, NULL},
};

int
ctl_cmd_config(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "config",
			    "Configuration across devices: clone, drift, "
			    "change status (docs/profiles.md).",
			    config_subs,
			    sizeof(config_subs) / sizeof(config_subs[0]), argc,
			    argv);
}
