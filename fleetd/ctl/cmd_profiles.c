/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl profiles: configuration profiles (docs/profiles.md). A profile
 * is a named JSON document with immutable, numbered versions; create makes
 * one (with its first version when -f is given), publish adds a version,
 * show prints a version's document, versions lists them. Documents are
 * read from files with the 256 KiB limit and a strict parser, so a bad
 * file is refused here, before anything is sent.
 */
#include <string.h>

#include "cfg.h"

enum { OPT_FILE = CTL_OPT_FIRST_LOCAL, OPT_DESCRIPTION, OPT_EXPECT };

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
	ctl_print_field("UPDATED:", ctl_text(p, "updated_at", b, sizeof(b)));
}

static void
print_version(const json_t *v, bool document)
{
	char b[256];

	ctl_print_field("PROFILE:", ctl_text(v, "profile", b, sizeof(b)));
	ctl_print_field("VERSION:", ctl_text(v, "version", b, sizeof(b)));
	ctl_print_field("HASH:", ctl_text(v, "hash", b, sizeof(b)));
	ctl_print_field("SIZE:", ctl_text(v, "size", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(v, "created_at", b, sizeof(b)));
	ctl_print_field("CREATED BY:", ctl_text(v, "created_by", b, sizeof(b)));
	if (document && json_object_get(v, "document") != NULL) {
		printf("DOCUMENT:\n");
		ctl_print_json(json_object_get(v, "document"));
	}
}

/* ---- create ------------------------------------------------------------ */

static const struct ctl_help create_help = {
	"profiles create", "NAME [-f FILE] [--description TEXT]",
	"Creates a configuration profile. With -f, FILE (a JSON object, at\n"
	"most 256 KiB; '-' reads standard input) is published as its version "
	"1.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE      the first version's document\n"
	"  --description TEXT   what the profile is for\n"};

struct create_args {
	const char *file, *description;
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;

	if (c == OPT_FILE)
		a->file = val;
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
		{0}};
	struct create_args a = {NULL, NULL};
	struct ctl_optset local = {opts, create_opt, &a};
	json_t *body = NULL, *doc = NULL, *p = NULL;
	int rc = ctl_parse(ctl, &create_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	rc = CTL_EXIT_FAIL;
	if (a.file != NULL) {
		doc = cfg_read_doc(a.file, "-f");
		if (doc == NULL)
			goto out;
	}
	body = json_pack("{s:s}", "name", argv[optind]);
	if (body == NULL ||
	    (a.description != NULL &&
	     json_object_set_new(body, "description",
				 json_string(a.description)) != 0) ||
	    (doc != NULL && json_object_set(body, "document", doc) != 0)) {
		rc = ctl_fail("out of memory (or a description that is not "
			      "UTF-8)");
		goto out;
	}
	if (cfg_api(ctl, "POST", "/api/v1/profiles", body, NULL, &p) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(p);
	} else {
		printf("created profile %s\n", ctl_sanitize(argv[optind]));
		print_profile(p);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(body);
	json_decref(doc);
	json_decref(p);
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
	return cfg_short_hash(json_string_value(json_object_get(item, "hash")),
			      buf, buflen);
}

static const struct ctl_help versions_help = {
	"profiles versions", "NAME",
	"Lists the versions of a profile (all pages), newest first.\n"};

static const struct ctl_column versions_cols[] = {
	CTL_COL_KEY("VERSION", "version"), CTL_COL_CELL("HASH", hash_cell),
	CTL_COL_KEY("SIZE", "size"),	   CTL_COL_KEY("CREATED", "created_at"),
	CTL_COL_KEY("BY", "created_by"),
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
	char name[256], path[512], suffix[64];
	json_t *p = NULL, *v = NULL, *out = NULL;
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
	if (ctl_path_id(path, sizeof(path), "profiles", name, "") != 0 ||
	    cfg_api(ctl, "GET", path, NULL, NULL, &p) != 0)
		goto out;
	if (!pinned) {
		const json_t *latest = json_object_get(p, "latest_version");

		version = json_is_integer(latest)
				  ? (long)json_integer_value(latest)
				  : 0;
	}
	if (version > 0) {
		snprintf(suffix, sizeof(suffix), "/versions/%ld", version);
		if (ctl_path_id(path, sizeof(path), "profiles", name, suffix) !=
			    0 ||
		    cfg_api(ctl, "GET", path, NULL, NULL, &v) != 0)
			goto out;
	}
	if (ctl->output == CTL_OUT_JSON) {
		out = json_pack("{s:O, s:O}", "profile", p, "version",
				v != NULL ? v : json_null());
		if (out == NULL || ctl_print_json(out) != 0)
			goto out;
	} else {
		print_profile(p);
		if (v != NULL) {
			printf("\n");
			print_version(v, true);
		}
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
	"profiles publish", "NAME -f FILE [--expect-latest N]",
	"Publishes FILE (a JSON object, at most 256 KiB; '-' reads standard\n"
	"input) as the next version of profile NAME. Versions are immutable;\n"
	"devices that follow 'latest' get it, devices pinned to a version "
	"keep\n"
	"theirs. The publish is sent with If-Match of the profile as read, "
	"so\n"
	"a version published by someone else in between is reported (412),\n"
	"never silently followed by this one.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE      the new version's document (required)\n"
	"  --expect-latest N    publish only if the latest version is N (the\n"
	"                       one you reviewed); 0 for a profile without "
	"one\n"};

struct publish_args {
	const char *file;
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
		{0}};
	struct publish_args a = {NULL, -1};
	struct ctl_optset local = {opts, publish_opt, &a};
	struct cfg_call get, post;
	char path[512], etag[CFG_ETAG_MAX];
	json_t *doc = NULL, *p = NULL, *body = NULL, *v = NULL;
	const json_t *latest;
	int rc = ctl_parse(ctl, &publish_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.file == NULL)
		return ctl_usage(&publish_help, "-f FILE is required");
	rc = CTL_EXIT_FAIL;
	memset(&get, 0, sizeof(get));
	if (ctl_path_id(path, sizeof(path), "profiles", argv[optind], "") !=
		    0 ||
	    cfg_api(ctl, "GET", path, NULL, &get, &p) != 0)
		goto out;
	latest = json_object_get(p, "latest_version");
	if (a.expect >= 0 &&
	    (json_is_integer(latest) ? json_integer_value(latest) : 0) !=
		    a.expect) {
		char b[32];

		ctl_fail("profile %s: the latest version is %s, not %ld: "
			 "nothing published",
			 argv[optind],
			 ctl_text_or_dash(p, "latest_version", b, sizeof(b)),
			 a.expect);
		goto out;
	}
	/* The file is read after the profile: a version published while it
	 * is read (or written, with -f -) is caught by If-Match. */
	doc = cfg_read_doc(a.file, "-f");
	if (doc == NULL)
		goto out;
	memcpy(etag, get.etag, sizeof(etag));
	memset(&post, 0, sizeof(post));
	post.if_match = etag[0] != '\0' ? etag : NULL;
	post.on_412 = "another version was published since this command "
		      "read the profile: nothing published; review it and "
		      "run the command again";
	body = json_pack("{s:O}", "document", doc);
	if (body == NULL) {
		rc = ctl_fail("out of memory");
		goto out;
	}
	if (ctl_path_id(path, sizeof(path), "profiles", argv[optind],
			"/versions") != 0 ||
	    cfg_api(ctl, "POST", path, body, &post, &v) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(v);
	} else {
		char b[32];

		printf("published profile %s version %s\n",
		       ctl_sanitize(argv[optind]),
		       ctl_text_or_dash(v, "version", b, sizeof(b)));
		print_version(v, false);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	json_decref(p);
	json_decref(body);
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
