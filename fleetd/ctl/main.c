/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl: the admin CLI, a client of the fleetd JSON API (docs/api.md,
 * docs/fleetctl.md). This file holds the entry point, the global options
 * (--server, --token, --ca, -o) with their environment fallbacks, command
 * dispatch and the option helpers every command uses.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fleet_version.h"

static const char main_usage[] =
	"usage: fleetctl [global options] <command> [<args>]\n"
	"\n"
	"Commands:\n"
	"  tokens        enrollment tokens: create, list, revoke\n"
	"  admin-tokens  admin API tokens: create, list, revoke\n"
	"  devices       devices: list, show, label, decommission, config,\n"
	"                certificates, rotate\n"
	"  audit         the audit log: list\n"
	"  enroll        enroll this host: CSR from a key, certificate back\n"
	"  keys          update-signing keys: gen (offline)\n"
	"  completion    shell completion script: bash, zsh or fish\n"
	"  profiles      configuration profiles: create, list, show, publish, "
	"versions\n"
	"  config        configuration across devices: clone, drift, status\n"
	"  certificates  device certificates: revoke\n"
	"  release       signed releases: sign, verify, keys (offline)\n"
	"  campaigns     staged rollouts: create, list, show, devices,\n"
	"                events, start, pause, resume, abort, watch\n"
	"\n"
	"Global options (also accepted after the command):\n"
	"  --server URL     API base URL, https://host:port[/prefix]\n"
	"                   (env FLEET_SERVER; default " CTL_DEFAULT_SERVER
	")\n"
	"  --token TOKEN    admin token (env FLEET_TOKEN; prefer the env:\n"
	"                   arguments are visible to other local users)\n"
	"  --ca FILE        CA bundle to verify the server with (env "
	"FLEET_CA;\n"
	"                   default: the system store)\n"
	"  -o, --output F   table (default) or json\n"
	"  -h, --help       help for fleetctl or any command\n"
	"  -V, --version    print fleetctl's version\n"
	"\n"
	"Run 'fleetctl <command> --help' for the options of a command.\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n"
	"('campaigns watch' also exits 3 when the campaign pauses, 4 when it\n"
	"is aborted.)\n";

int
ctl_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fleetctl: %s\n", ctl_sanitize(msg));
	return CTL_EXIT_FAIL;
}

int
ctl_usage(const struct ctl_help *h, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fleetctl: %s: %s (see 'fleetctl %s --help')\n", h->cmd,
		ctl_sanitize(msg), h->cmd);
	return CTL_EXIT_USAGE;
}

void
ctl_print_help(const struct ctl_help *h)
{
	printf("usage: fleetctl %s %s\n\n%s", h->cmd, h->usage, h->text);
	printf("\nGlobal options: --server URL, --token TOKEN, --ca FILE, "
	       "-o table|json\n(see 'fleetctl --help').\n");
}

static int
set_output(struct ctl *ctl, const char *arg)
{
	if (strcmp(arg, "table") == 0)
		ctl->output = CTL_OUT_TABLE;
	else if (strcmp(arg, "json") == 0)
		ctl->output = CTL_OUT_JSON;
	else
		return -1;
	return 0;
}

int
ctl_opt_common(struct ctl *ctl, int c, const struct ctl_help *h, char **argv)
{
	switch (c) {
	case CTL_OPT_SERVER:
		ctl->server = optarg;
		return CTL_CONTINUE;
	case CTL_OPT_TOKEN:
		ctl->token = optarg;
		return CTL_CONTINUE;
	case CTL_OPT_CA:
		ctl->ca = optarg;
		return CTL_CONTINUE;
	case 'o':
		if (set_output(ctl, optarg) != 0)
			return ctl_usage(h,
					 "-o must be table or json, not '%s'",
					 optarg);
		return CTL_CONTINUE;
	case 'h':
		if (ctl->probe != NULL) /* fleetctl completion */
			return ctl_probe_help(ctl, h);
		ctl_print_help(h);
		return CTL_EXIT_OK;
	case ':':
		return ctl_usage(h, "option '%s' needs a value",
				 argv[optind - 1]);
	default:
		if (optopt != 0 && optopt < 256)
			return ctl_usage(h, "unknown option '-%c'", optopt);
		return ctl_usage(h, "unknown option '%s'", argv[optind - 1]);
	}
}

int
ctl_want_args(const struct ctl_help *h, int argc, char **argv, int n)
{
	int have = argc - optind;

	if (have < n)
		return ctl_usage(h, "missing argument (usage: fleetctl %s %s)",
				 h->cmd, h->usage);
	if (have > n)
		return ctl_usage(h, "unexpected argument '%s'",
				 argv[optind + n]);
	return 0;
}

int
ctl_parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
ctl_parse_label(json_t *labels, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[256];
	size_t klen;

	if (eq == NULL || eq == kv)
		return -1;
	klen = (size_t)(eq - kv);
	if (klen >= sizeof(key))
		return -1;
	memcpy(key, kv, klen);
	key[klen] = '\0';
	return json_object_set_new(labels, key, json_string(eq + 1));
}

int
ctl_dispatch(struct ctl *ctl, const char *group, const char *summary,
	     const struct ctl_subcmd *subs, size_t n, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	bool help = sub != NULL &&
		    (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
		     strcmp(sub, "help") == 0);

	if (ctl->probe != NULL) /* fleetctl completion */
		return ctl_probe_group(ctl, group, summary, subs, n);
	if (sub != NULL && !help) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(sub, subs[i].name) != 0)
				continue;
			if (subs[i].list != NULL)
				return ctl_run_list(ctl, subs[i].list, argc - 1,
						    argv + 1);
			if (subs[i].action != NULL)
				return ctl_run_action(ctl, subs[i].action,
						      argc - 1, argv + 1);
			return subs[i].run(ctl, argc - 1, argv + 1);
		}
	}
	if (sub != NULL && !help) {
		fprintf(stderr,
			"fleetctl: %s: unknown command '%s' (see 'fleetctl "
			"%s --help')\n",
			group, ctl_sanitize(argv[1]), group);
		return CTL_EXIT_USAGE;
	}
	if (!help) {
		fprintf(stderr,
			"fleetctl: %s: missing command (see 'fleetctl %s "
			"--help')\n",
			group, group);
		return CTL_EXIT_USAGE;
	}
	printf("usage: fleetctl %s <command> [<args>]\n\n%s\n\nCommands:\n",
	       group, summary);
	for (size_t i = 0; i < n; i++)
		printf("  %-14s %s\n", subs[i].name, subs[i].summary);
	printf("\nRun 'fleetctl %s <command> --help' for details.\n", group);
	return CTL_EXIT_OK;
}

static const struct {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
} commands[] = {
	{"tokens", ctl_cmd_tokens},
	{"admin-tokens", ctl_cmd_admin_tokens},
	{"devices", ctl_cmd_devices},
	{"audit", ctl_cmd_audit},
	{"enroll", ctl_cmd_enroll},
	{"keys", ctl_cmd_keys},
	{"completion", ctl_cmd_completion},
	{"config", ctl_cmd_config},
	{"profiles", ctl_cmd_profiles},
	{"certificates", ctl_cmd_certificates},
	{"release", ctl_cmd_release},
	{"deployments", ctl_cmd_deployments},
	{"artifacts", ctl_cmd_artifacts},
	{"campaigns", ctl_cmd_campaigns},
};

int
ctl_command_at(size_t i, const char **name,
	       int (**run)(struct ctl *ctl, int argc, char **argv))
{
	if (i >= sizeof(commands) / sizeof(commands[0]))
		return -1;
	*name = commands[i].name;
	*run = commands[i].run;
	return 0;
}

static const struct ctl_help main_help = {"", "", ""};

/* Global options before the command; returns CTL_CONTINUE or an exit. */
static int
parse_leading(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_LONGOPTS_GLOBAL, {"version", no_argument, NULL, 'V'}, {0}};
	int c;

	opterr = 0;
	optind = 0;
	/* '+': stop at the command; its options are parsed by it. */
	while ((c = getopt_long(argc, argv, "+:ho:V", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(main_usage, stdout);
			return CTL_EXIT_OK;
		}
		if (c == 'V') {
			printf("fleetctl %s\n", FLEET_PROJECT_VERSION);
			return CTL_EXIT_OK;
		}
		if (c == ':' || c == '?') {
			fprintf(stderr,
				"fleetctl: %s option '%s' (see 'fleetctl "
				"--help')\n",
				c == ':' ? "missing value for" : "unknown",
				ctl_sanitize(argv[optind - 1]));
			return CTL_EXIT_USAGE;
		}
		if (c == 'o' && set_output(ctl, optarg) != 0) {
			fprintf(stderr,
				"fleetctl: -o must be table or json, not "
				"'%s'\n",
				ctl_sanitize(optarg));
			return CTL_EXIT_USAGE;
		}
		if (c != 'o')
			(void)ctl_opt_common(ctl, c, &main_help, argv);
	}
	return CTL_CONTINUE;
}

int
main(int argc, char **argv)
{
	struct ctl ctl;
	const char *cmd;
	int rc;

	/* Before jansson or OpenSSL allocates anything. */
	ctl_secmem_init();
	/* A server that closes early must give an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	memset(&ctl, 0, sizeof(ctl));
	ctl.server = getenv("FLEET_SERVER");
	if (ctl.server == NULL || ctl.server[0] == '\0')
		ctl.server = CTL_DEFAULT_SERVER;
	ctl.token = getenv("FLEET_TOKEN");
	ctl.ca = getenv("FLEET_CA");
	if (ctl.ca != NULL && ctl.ca[0] == '\0')
		ctl.ca = NULL;
	rc = parse_leading(&ctl, argc, argv);
	if (rc != CTL_CONTINUE)
		return rc;
	if (optind >= argc) {
		fputs(main_usage, stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		fputs(main_usage, stdout);
		return CTL_EXIT_OK;
	}
	rc = -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) == 0) {
			rc = commands[i].run(&ctl, argc - optind,
					     argv + optind);
			break;
		}
	}
	if (rc == -1) {
		fprintf(stderr,
			"fleetctl: unknown command '%s' (see 'fleetctl "
			"--help')\n",
			ctl_sanitize(argv[optind]));
		rc = CTL_EXIT_USAGE;
	}
	ctl_disconnect(&ctl);
	fflush(stdout);
	if (ferror(stdout) && rc == CTL_EXIT_OK)
		rc = ctl_fail("cannot write to standard output");
	return rc;
}
