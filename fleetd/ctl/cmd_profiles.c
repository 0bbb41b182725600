/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl profiles: configuration profiles (docs/profiles.md). A profile
 * is a named JSON document with immutable, numbered versions; create makes
 * one (and publishes its version 1 when -f is given), publish adds a
 * version (conditional on the latest one, If-Match), show prints a
 * version's document, versions lists them. Documents are
 * read from files with the 256 KiB limit and a strict parser, so a bad
 * file is refused here, before anything is sent.
 */
#include <string.h>

#include "cfg.h"

enum { OPT_FILE = CTL_OPT_FIRST_LOCAL, OPT_DESCRIPTION, OPT_EXPECT, OPT_NOTE };

static void
print_profile(const json_t *p)
{
	char b[256];

	ctl_print_field("NAME:", ctl_text(p, "name", b, sizeof(b)));
	ctl_print_field("DESCRIPTION:",
			ctl_text(p, "description", b, sizeof(b)));
	ctl_print_field("LATEST VERSION:",
			ctl_text(p, "latest_version", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(p, "created_at", b, sizeof(b)));
	ctl_print_field("CREATED BY:", ctl_text(p, "created_by", b, sizeof(b)));
	ctl_print_field("UPDATED:", ctl_text(p, "updated_at", b, sizeof(b)));
}

static void
print_version(const json_t *v, bool document)
{
	char b[256];

	ctl_print_field("VERSION:", ctl_text(v, "version", b, sizeof(b)));
	ctl_print_field("SHA256:", ctl_text(v, "sha256", b, sizeof(b)));
	ctl_print_field("NOTE:", ctl_text(v, "note", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(v, "created_at", b, sizeof(b)));
	ctl_print_field("CREATED BY:", ctl_text(v, "created_by", b, sizeof(b)));
	if (document && json_object_get(v, "document") != NULL) {
		printf("DOCUMENT:\n");
		ctl_print_json(json_object_get(v, "document"));
	}
}

/* Reads a version's document from path and checks what the server
 * would refuse (a null member), so a bad file writes nothing. */
static json_t *
read_version_doc(const char *path)
{
	json_t *doc = cfg_read_doc(path, "-f");
	char where[256];

	if (doc != NULL && cfg_doc_nulls(doc, where, sizeof(where)) != 0) {
		ctl_fail("-f %s: member %s is null: a profile document may "
			 "not hold null in an object (null deletes in a merge "
			 "patch)",
			 path, where);
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

/*
 * POST /api/v1/profiles/NAME/versions with If-Match etag (NULL: none).
 * *v (owned by the caller) is the answer. 0 or -1 (printed).
 */
static int
post_version(struct ctl *ctl, const char *name, json_t *doc, const char *note,
	     const char *etag, const char *on_412, json_t **v)
{
	struct ctl_call call;
	char path[512], what[320];
	json_t *body = json_pack("{s:O}", "document", doc);
	int rc = -1;

	if (body == NULL ||
	    (note != NULL &&
	     json_object_set_new(body, "note", json_string(note)) != 0)) {
		ctl_fail("out of memory (or a note that is not UTF-8)");
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.if_match = etag;
	call.on_412 = on_412;
	snprintf(what, sizeof(what), "no profile %s", name);
	call.on_404 = what;
	if (ctl_path_id(path, sizeof(path), "profiles", name, "/versions") ==
		    0 &&
	    ctl_call(ctl, "POST", path, body, &call, v) == 0)
		rc = 0;
out:
	json_decref(body);
	return rc;
}

/* What a publish changed: its version, and the devices that follow. */
static void
print_published(const char *name, const json_t *v)
{
	const json_t *change = json_object_get(v, "change");
	char b[64], f[32], c[32];

	printf("published profile %s version %s\n", name,
	       ctl_text_or_dash(v, "version", b, sizeof(b)));
	print_version(v, false);
	if (!json_is_object(change)) {
		ctl_print_field("FOLLOWERS:", "0 (no device follows latest)");
		return;
	}
	snprintf(b, sizeof(b), "%s, %s of them changed",
		 ctl_text_or_dash(change, "followers", f, sizeof(f)),
		 ctl_text_or_dash(change, "changed", c, sizeof(c)));
	ctl_print_field("FOLLOWERS:", b);
	ctl_print_field("CHANGE:", ctl_text(change, "change_id", b, sizeof(b)));
	printf("\nfollow it with: fleetctl config status %s --watch\n",
	       ctl_text_or_dash(change, "change_id", b, sizeof(b)));
}

/* ---- create ------------------------------------------------------------ */

static const struct ctl_help create_help = {
	"profiles create", "NAME [-f FILE] [--description TEXT] [--note TEXT]",
	"Creates a configuration profile. NAME: lowercase letters, digits and\n"
	"'.', '_', '-' (at most 63). With -f, FILE (a JSON object, at most "
	"256\n"
	"KiB; '-' reads standard input) is published as its version 1.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE      the first version's document\n"
	"  --description TEXT   what the profile is for\n"
	"  --note TEXT          a note on version 1 (with -f)\n"};

struct create_args {
	const char *file, *description, *note;
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;

	if (c == OPT_FILE)
		a->file = val;
	else if (c == OPT_NOTE)
		a->note = val;
	else
		a->description = val;
	return CTL_CONTINUE;
}

static int
profiles_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, OPT_FILE},
		{"description", required_argument, NULL, OPT_DESCRIPTION},
		{"note", required_argument, NULL, OPT_NOTE},
		{0}};
	struct create_args a = {NULL, NULL, NULL};
	struct ctl_optset local = {opts, create_opt, &a};
	struct ctl_call call;
	json_t *body = NULL, *doc = NULL, *p = NULL, *v = NULL, *out = NULL;
	char name[256], etag[CTL_ETAG_MAX];
	int rc = ctl_parse(ctl, &create_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.note != NULL && a.file == NULL)
		return ctl_usage(&create_help, "--note needs -f FILE");
	snprintf(name, sizeof(name), "%s", argv[optind]);
	rc = CTL_EXIT_FAIL;
	/* The file first: a bad one must not leave an empty profile. */
	if (a.file != NULL) {
		doc = read_version_doc(a.file);
		if (doc == NULL)
			goto out;
	}
	body = json_pack("{s:s}", "name", name);
	if (body == NULL ||
	    (a.description != NULL &&
	     json_object_set_new(body, "description",
				 json_string(a.description)) != 0)) {
		rc = ctl_fail("out of memory (or a name or description that "
			      "is not UTF-8)");
		goto out;
	}
	memset(&call, 0, sizeof(call));
	if (ctl_call(ctl, "POST", "/api/v1/profiles", body, &call, &p) != 0)
		goto out;
	/* Version 1 only if nobody published one in between. */
	snprintf(etag, sizeof(etag), "%s", call.etag[0] ? call.etag : "\"0\"");
	if (doc != NULL &&
	    post_version(ctl, name, doc, a.note, etag,
			 "a version was published since the profile was "
			 "created: nothing published",
			 &v) != 0) {
		ctl_fail("profile %s was created without a version; publish "
			 "one with 'fleetctl profiles publish %s -f FILE'",
			 name, name);
		goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		out = json_pack("{s:O, s:O}", "profile", p, "version",
				v != NULL ? v : json_null());
		if (out == NULL || ctl_print_json(out) != 0)
			goto out;
	} else {
		printf("created profile %s\n", ctl_sanitize(name));
		print_profile(p);
		if (v != NULL) {
			printf("\n");
			print_published(name, v);
		}
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(body);
	json_decref(doc);
	json_decref(p);
	json_decref(v);
	json_decref(out);
	return rc;
}

/* ---- list, versions ------------------------------------------------------ */

static const struct ctl_help list_help = {
	"profiles list", "", "Lists configuration profiles (all pages).\n"};

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("NAME", "name"),
	CTL_COL_KEY("LATEST", "latest_version"),
	CTL_COL_KEY("UPDATED", "updated_at"),
	CTL_COL_KEY("DESCRIPTION", "description"),
};

static const struct ctl_list list = {&list_help, "/api/v1/profiles", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

static const char *
hash_cell(const json_t *item, char *buf, size_t buflen)
{
	return cfg_short_hash(
		json_string_value(json_object_get(item, "sha256")), buf,
		buflen < 17 ? buflen : 17);
}

static const struct ctl_help versions_help = {
	"profiles versions", "NAME",
	"Lists the versions of a profile (all pages), newest first.\n"};

static const struct ctl_column versions_cols[] = {
	CTL_COL_KEY("VERSION", "version"),    CTL_COL_CELL("SHA256", hash_cell),
	CTL_COL_KEY("CREATED", "created_at"), CTL_COL_KEY("BY", "created_by"),
	CTL_COL_KEY("NOTE", "note"),
};

static int
profiles_versions(struct ctl *ctl, int argc, char **argv)
{
	char path[512];
	json_t *items = NULL;
	int rc = ctl_parse(ctl, &versions_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "profiles", argv[optind],
			"/versions") != 0 ||
	    ctl_api_list(ctl, path, "", 0, &items) != 0)
		return CTL_EXIT_FAIL;
	rc = ctl_print_items(ctl, items, versions_cols,
			     sizeof(versions_cols) / sizeof(versions_cols[0]));
	json_decref(items);
	return rc;
}

/* ---- show -------------------------------------------------------------- */

static const struct ctl_help show_help = {
	"profiles show", "NAME[@VERSION]",
	"Shows a profile and the document of its latest version, or of\n"
	"VERSION (a number, or 'latest').\n"};

static int
profiles_show(struct ctl *ctl, int argc, char **argv)
{
	char name[256], path[512], suffix[64], what[320];
	json_t *p = NULL, *v = NULL, *out = NULL;
	json_t *shown;
	bool pinned;
	long version;
	int rc = ctl_parse(ctl, &show_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (cfg_parse_profile_ref(argv[optind], name, sizeof(name), &version,
				  &pinned) != 0)
		return ctl_usage(&show_help,
				 "'%s' is not NAME or NAME@VERSION (a "
				 "version is a number or 'latest')",
				 argv[optind]);
	rc = CTL_EXIT_FAIL;
	snprintf(what, sizeof(what), "no profile %s", name);
	if (ctl_path_id(path, sizeof(path), "profiles", name, "") != 0 ||
	    cfg_get(ctl, path, what, &p) != 0)
		goto out;
	if (pinned) {
		snprintf(suffix, sizeof(suffix), "/versions/%ld", version);
		snprintf(what, sizeof(what), "profile %s has no version %ld",
			 name, version);
		if (ctl_path_id(path, sizeof(path), "profiles", name, suffix) !=
			    0 ||
		    cfg_get(ctl, path, what, &v) != 0)
			goto out;
	}
	shown = v != NULL ? v : json_object_get(p, "latest");
	if (ctl->output == CTL_OUT_JSON) {
		out = json_pack("{s:O, s:O}", "profile", p, "version",
				json_is_object(shown) ? shown : json_null());
		if (out == NULL || ctl_print_json(out) != 0)
			goto out;
	} else {
		print_profile(p);
		printf("\n");
		if (json_is_object(shown))
			print_version(shown, true);
		else
			printf("(no version published yet)\n");
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(p);
	json_decref(v);
	json_decref(out);
	return rc;
}

/* ---- publish ------------------------------------------------------------ */

static const struct ctl_help publish_help = {
	"profiles publish", "NAME -f FILE [--expect-latest N] [--note TEXT]",
	"Publishes FILE (a JSON object, at most 256 KiB; '-' reads standard\n"
	"input) as the next version of profile NAME. Versions are immutable;\n"
	"devices that follow 'latest' move to it (one change: follow it with\n"
	"'fleetctl config status'), devices pinned to a version keep theirs.\n"
	"\n"
	"The publish is conditional (If-Match): on the latest version as\n"
	"fleetctl read it before reading FILE, or on N with --expect-latest.\n"
	"If another version was published in between, nothing is published\n"
	"and the command fails (412).\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE      the new version's document (required)\n"
	"  --expect-latest N    publish only if the latest version is still N\n"
	"                       (the one you reviewed; 0: none yet)\n"
	"  --note TEXT          what changed in this version\n"};

struct publish_args {
	const char *file, *note;
	long expect;
};

static int
publish_opt(void *arg, int c, const char *val)
{
	struct publish_args *a = arg;

	if (c == OPT_FILE) {
		a->file = val;
		return CTL_CONTINUE;
	}
	if (c == OPT_NOTE) {
		a->note = val;
		return CTL_CONTINUE;
	}
	if (ctl_parse_long(val, 0, 2147483647L, &a->expect) != 0)
		return ctl_usage(&publish_help,
				 "--expect-latest takes a version number, not "
				 "'%s'",
				 val);
	return CTL_CONTINUE;
}

static int
profiles_publish(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, OPT_FILE},
		{"expect-latest", required_argument, NULL, OPT_EXPECT},
		{"note", required_argument, NULL, OPT_NOTE},
		{0}};
	struct publish_args a = {NULL, NULL, -1};
	struct ctl_optset local = {opts, publish_opt, &a};
	struct ctl_call get;
	char path[512], etag[CTL_ETAG_MAX], hint[256], what[320];
	json_t *doc = NULL, *p = NULL, *v = NULL;
	int rc = ctl_parse(ctl, &publish_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.file == NULL)
		return ctl_usage(&publish_help, "-f FILE is required");
	rc = CTL_EXIT_FAIL;
	if (a.expect >= 0) {
		snprintf(etag, sizeof(etag), "\"%ld\"", a.expect);
		snprintf(hint, sizeof(hint),
			 "the latest version is not %ld: nothing published",
			 a.expect);
	} else {
		/* Read the profile, then the file: a version published while
		 * the file is read (or typed, with -f -) is caught. */
		memset(&get, 0, sizeof(get));
		snprintf(what, sizeof(what), "no profile %s", argv[optind]);
		get.on_404 = what;
		if (ctl_path_id(path, sizeof(path), "profiles", argv[optind],
				"") != 0 ||
		    ctl_call(ctl, "GET", path, NULL, &get, &p) != 0)
			goto out;
		snprintf(etag, sizeof(etag), "%s", get.etag);
		snprintf(hint, sizeof(hint),
			 "another version was published since this command "
			 "read the profile: nothing published; review it and "
			 "run the command again");
	}
	doc = read_version_doc(a.file);
	if (doc == NULL)
		goto out;
	if (post_version(ctl, argv[optind], doc, a.note,
			 etag[0] != '\0' ? etag : NULL, hint, &v) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(v);
	else
		print_published(ctl_sanitize(argv[optind]), v);
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	json_decref(p);
	json_decref(v);
	return rc;
}

static const struct ctl_subcmd subs[] = {
	{"create", "create a profile (and its version 1 with -f)",
	 profiles_create, NULL, NULL},
	{"list", "list profiles", NULL, &list, NULL},
	{"show", "show a profile and a version's document", profiles_show, NULL,
	 NULL},
	{"publish", "publish a new version from a file", profiles_publish, NULL,
	 NULL},
	{"versions", "list the versions of a profile", profiles_versions, NULL,
	 NULL},
};

int
ctl_cmd_profiles(struct ctl *ctl, int argc, char **argv)
{
	char **args = cfg_argv_file(argc, argv);
	int rc;

	if (args == NULL)
		return ctl_fail("out of memory");
	rc = ctl_dispatch(ctl, "profiles",
			  "Configuration profiles: named JSON documents with "
			  "immutable, numbered versions\n(viewer reads, "
			  "operator writes; docs/profiles.md).",
			  subs, sizeof(subs) / sizeof(subs[0]), argc, args);
	cfg_argv_free(argc, args);
	return rc;
}
