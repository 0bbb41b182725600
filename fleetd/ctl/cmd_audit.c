/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl audit: the audit log (GET /api/v1/audit), newest first, with
 * filters by actor, action, target and time. Every mutation the API
 * accepts leaves one entry: who, what, on what, details.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conffile.h"
#include "ctl.h"

static const struct ctl_help list_help = {
	"audit list",
	"[--actor A] [--action A] [--target T] [--since W] [--until W] "
	"[--limit N]",
	"Lists audit entries, newest first. ACTOR shows the admin token's "
	"name\n"
	"beside its id.\n"
	"\n"
	"Options:\n"
	"  --actor A         entries by A: an actor id (token:<uuid>,\n"
	"                    local:fleetd-cli) or an admin token's name\n"
	"  --action A        one action (device.update) or a family "
	"(device.*)\n"
	"  --target T        entries about T (a device or token id)\n"
	"  --since W         entries at or after W: a UTC time\n"
	"                    (2026-12-01T09:00:00Z) or a duration ago (90m, "
	"24h, 7d)\n"
	"  --until W         entries before W (same forms)\n"
	"  --limit N         at most N entries (default: all)\n"};

static const char *
details_cell(const json_t *e, char *buf, size_t buflen)
{
	/* Details are shown up to 80 bytes; "{}" says nothing. */
	const char *text = ctl_json_text(json_object_get(e, "details"), buf,
					 buflen < 81 ? buflen : 81);

	return text != NULL && strcmp(text, "{}") == 0 ? NULL : text;
}

/* "alice (token:<uuid>)" when the token has a name, else the actor. */
static const char *
actor_cell(const json_t *e, char *buf, size_t buflen)
{
	const char *actor = json_string_value(json_object_get(e, "actor"));
	const char *name = json_string_value(json_object_get(e, "actor_name"));

	if (actor == NULL)
		return NULL;
	if (name != NULL && name[0] != '\0')
		snprintf(buf, buflen, "%s (%s)", name, actor);
	else
		snprintf(buf, buflen, "%s", actor);
	return ctl_sanitize(buf);
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("AT", "at"),
	CTL_COL_CELL("ACTOR", actor_cell),
	CTL_COL_KEY("ACTION", "action"),
	CTL_COL_KEY("TARGET", "target"),
	CTL_COL_CELL("DETAILS", details_cell),
};

static const struct ctl_list list = {&list_help, "/api/v1/audit", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

enum {
	OPT_LIMIT = CTL_OPT_FIRST_LOCAL,
	OPT_ACTOR,
	OPT_ACTION,
	OPT_TARGET,
	OPT_SINCE,
	OPT_UNTIL,
};

struct list_args {
	long limit;
	const char *actor, *action, *target;
	char since[32], until[32];
};

/* A UTC time as the server writes them, or a duration ago, into out as
 * RFC 3339. 0 or -1. */
static int
when_parse(const char *val, char out[32])
{
	long ago;

	if (strlen(val) == 20 && val[4] == '-' && val[10] == 'T' &&
	    val[19] == 'Z') {
		snprintf(out, 32, "%s", val);
		return 0;
	}
	if (config_parse_duration(val, &ago) != 0 || ago <= 0)
		return -1;
	clock_format_rfc3339(time(NULL) - (time_t)ago, out, 32);
	return 0;
}

static int
list_opt(void *arg, int c, const char *val)
{
	struct list_args *a = arg;

	switch (c) {
	case OPT_LIMIT:
		if (ctl_parse_long(val, 1, 100000000, &a->limit) != 0)
			return ctl_usage(&list_help,
					 "--limit must be a positive number, "
					 "not '%s'",
					 val);
		break;
	case OPT_ACTOR:
		a->actor = val;
		break;
	case OPT_ACTION:
		a->action = val;
		break;
	case OPT_TARGET:
		a->target = val;
		break;
	default:
		if (when_parse(val, c == OPT_SINCE ? a->since : a->until) != 0)
			return ctl_usage(&list_help,
					 "--%s must be a UTC time such as "
					 "2026-12-01T09:00:00Z or a duration "
					 "such as 90m, 24h, 7d, not '%s'",
					 c == OPT_SINCE ? "since" : "until",
					 val);
	}
	return CTL_CONTINUE;
}

/* Appends "&name=value" (encoded) when value is set. 0 or -1. */
static int
query_add(struct buf *q, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return 0;
	if (buf_printf(q, "%s%s=", q->len > 0 ? "&" : "", name) != 0)
		return -1;
	return ctl_urlencode(q, value);
}

static int
audit_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, OPT_LIMIT},
		{"actor", required_argument, NULL, OPT_ACTOR},
		{"action", required_argument, NULL, OPT_ACTION},
		{"target", required_argument, NULL, OPT_TARGET},
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{0}};
	struct list_args a;
	struct ctl_optset local = {opts, list_opt, &a};
	struct buf query;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);
	if (rc != CTL_CONTINUE)
		return rc;
	buf_init(&query, 4096);
	if (query_add(&query, "actor", a.actor) != 0 ||
	    query_add(&query, "action", a.action) != 0 ||
	    query_add(&query, "target", a.target) != 0 ||
	    query_add(&query, "since", a.since) != 0 ||
	    query_add(&query, "until", a.until) != 0) {
		buf_free(&query);
		return ctl_usage(&list_help, "the filters are too long");
	}
	rc = ctl_list_items(ctl, &list, query.data != NULL ? query.data : "",
			    (size_t)a.limit);
	buf_free(&query);
	return rc;
}

static const struct ctl_subcmd subs[] = {
	{"list", "list audit entries, newest first", audit_list, NULL, NULL},
};

int
ctl_cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "audit",
			    "The audit log: one entry per accepted mutation "
			    "(viewer role).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
