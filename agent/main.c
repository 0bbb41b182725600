/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet-agent: the device daemon. Reads its config file (env overrides
 * FLEET_AGENT_<KEY>), enrolls on first start, then keeps its channel to
 * fleetd in one lws context with one agent until SIGTERM. `fleet-agent
 * status` reads the identity and the status file the daemon keeps;
 * `fleet-agent report JSON` queues a report (hooks and scripts use it; the
 * running daemon sends it, or the next one after a restart).
 * The config file is trusted (root-owned on a device). Exit codes
 * (docs/agent.md): 0 done (status: connected), 1 a failure at run time,
 * 2 a usage or configuration error (named on stderr; the daemon does not
 * retry what cannot work, such as a CA file without a certificate), 3
 * status: not connected, not running or not enrolled.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "backoff.h"
#include "clock.h"
#include "conffile.h"
#include "fleetagent.h"
#include "log.h"
#include "update.h"

#define AGENT_CONF_DEFAULT "/etc/fleet-agent.conf"

struct agent_conf {
	char *api_url;
	char *device_url;
	char *ca_file;
	char *state_dir;
	char *token;
	char *token_file;
	char *model;
	char *fw_version;
	char *fw_version_file;
	char *labels;
	char *log_level;
	/* configuration delivery (docs/agent.md) */
	char *config_path;
	char *config_validate;
	char *config_reload;
	long config_drift_interval;
	int config_restore;
	/* certificate renewal (docs/agent.md) */
	char *renew_at;
	char *renew_jitter;
	long refused_backoff;
	int reenroll;
	/* signed updates (docs/agent.md "Updates") */
	char *update_keys;
	long update_threshold;
	char *update_modules_dir;
	long update_download_deadline;
	long update_stall_timeout;
	char *update_reboot_command;
	char *update_health_command;
	long update_health_deadline;
	long fw_version_num;
};

#define K(name) #name, CONFIG_STRING, offsetof(struct agent_conf, name), 0, 0
static const struct config_key conf_keys[] = {
	{K(api_url), NULL},
	{K(device_url), NULL},
	{K(ca_file), NULL},
	{K(state_dir), "/var/lib/fleet-agent"},
	{K(token), NULL},
	{K(token_file), NULL},
	{K(model), NULL},
	{K(fw_version), NULL},
	{K(fw_version_file), NULL},
	{K(labels), NULL},
	{K(log_level), "info"},
	{K(config_path), NULL},
	{K(config_validate), NULL},
	{K(config_reload), NULL},
	{K(renew_at), "0.6667"},
	{K(renew_jitter), "0.05"},
	{"config_drift_interval", CONFIG_DURATION,
	 offsetof(struct agent_conf, config_drift_interval), 1, 86400, "60"},
	{"config_restore", CONFIG_BOOL,
	 offsetof(struct agent_conf, config_restore), 0, 0, "false"},
	{"refused_backoff", CONFIG_DURATION,
	 offsetof(struct agent_conf, refused_backoff), 1, 30L * 86400, "1h"},
	{"reenroll", CONFIG_BOOL, offsetof(struct agent_conf, reenroll), 0, 0,
	 "false"},
	{K(update_keys), NULL},
	{"update_threshold", CONFIG_INT,
	 offsetof(struct agent_conf, update_threshold), 1, 16, "1"},
	{K(update_modules_dir), NULL},
	{"update_download_deadline", CONFIG_DURATION,
	 offsetof(struct agent_conf, update_download_deadline), 1, 30L * 86400,
	 "1h"},
	{"update_stall_timeout", CONFIG_DURATION,
	 offsetof(struct agent_conf, update_stall_timeout), 1, 86400, "60"},
	{K(update_reboot_command), NULL},
	{K(update_health_command), NULL},
	{"update_health_deadline", CONFIG_DURATION,
	 offsetof(struct agent_conf, update_health_deadline), 1, 86400, "5m"},
	{"fw_version_num", CONFIG_INT,
	 offsetof(struct agent_conf, fw_version_num), 0, 9007199254740991L,
	 "0"},
};
#undef K
#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* Frees the configuration; the token is wiped first, on every path. */
static void
conf_free(struct agent_conf *c)
{
	if (c->token != NULL)
		OPENSSL_cleanse(c->token, strlen(c->token));
	config_free(conf_keys, NKEYS, c);
}

/* The signal handler's view of the process: main is the one owner. */
static volatile sig_atomic_t stop_requested;
static struct lws_context *volatile running_ctx;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	if (running_ctx != NULL)
		lws_cancel_service(running_ctx);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: fleet-agent [-c FILE]          run the agent\n"
		"       fleet-agent status [-c FILE]   show identity and "
		"connection\n"
		"       fleet-agent report [-c FILE] JSON|-  queue a report "
		"(docs/protocol.md)\n"
		"       fleet-agent --help | --version\n"
		"\n"
		"Config keys (key = value; env FLEET_AGENT_<KEY> overrides):\n"
		"  api_url          https://host:port of fleetd's api "
		"listener\n"
		"  device_url       wss://host:port/agent/v1 (default: from "
		"enrollment)\n"
		"  ca_file          CA bundle that signs fleetd's "
		"certificates\n"
		"  state_dir        identity, queue and status "
		"(/var/lib/fleet-agent)\n"
		"  token, token_file  enrollment token (first start only)\n"
		"  model            hardware model\n"
		"  fw_version, fw_version_file  firmware version (or a file "
		"holding it)\n"
		"  labels           k=v,k=v asked for at enrollment\n"
		"  log_level        error, warn, info, debug\n"
		"  config_path      the file config.apply writes (none: "
		"configuration refused)\n"
		"  config_validate, config_reload  hooks before and after "
		"the switch\n"
		"  config_drift_interval  re-hash the file this often "
		"(60s)\n"
		"  config_restore   put the desired file back on drift "
		"(false)\n"
		"  renew_at, renew_jitter  renew at this fraction of the "
		"lifetime (0.6667),\n"
		"                   up to renew_jitter (0.05) earlier\n"
		"  refused_backoff  wait between attempts once refused for "
		"good (1h)\n"
		"  reenroll         enroll again with the token when "
		"refused (false)\n"
		"  update_keys, update_threshold  release public keys (PEM "
		"files, comma-\n"
		"                   separated) and how many must sign (1)\n"
		"  update_modules_dir  installers (/usr/share/fleet-agent/"
		"modules)\n"
		"  update_download_deadline, update_stall_timeout  (1h, "
		"60s)\n"
		"  update_reboot_command  after an install that asks for it "
		"(reexec:\n"
		"                   the agent executes itself again)\n"
		"  update_health_command, update_health_deadline  must pass "
		"after the\n"
		"                   reboot, else rollback (5m)\n"
		"  fw_version_num   installed release version (until "
		"firmware.json)\n");
}

/*
 * A CA file the agent can verify fleetd with: readable and holding at
 * least one PEM certificate. Checked before the first connection, since
 * no retry can make a wrong file right. 0, or -1 with a message.
 */
static int
ca_file_check(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int n = 0;

	if (f == NULL) {
		snprintf(err, errlen, "ca_file %s: %s", path, strerror(errno));
		return -1;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		n++;
		X509_free(x);
	}
	ERR_clear_error();
	fclose(f);
	if (n == 0) {
		snprintf(err, errlen,
			 "ca_file %s holds no PEM certificate (expected the "
			 "bundle of GET /pki/v1/ca.pem)",
			 path);
		return -1;
	}
	return 0;
}

static void
sleep_interruptible(uint32_t ms)
{
	struct timespec ts = {0, 100 * 1000 * 1000};
	uint32_t i;

	for (i = 0; i < ms / 100 + 1 && !stop_requested; i++)
		nanosleep(&ts, NULL);
}

/* A fraction in [min, max) written as a decimal ("0.6667"); 0 or -1. */
static int
parse_fraction(const char *s, double min, double max, double *out)
{
	char *end = NULL;
	double f;

	if (s == NULL || s[0] == '\0')
		return -1;
	f = strtod(s, &end);
	if (end == s || *end != '\0' || !(f >= min && f < max))
		return -1;
	*out = f;
	return 0;
}

static int
run(const struct agent_conf *c)
{
	struct fleet_agent_config ac;
	struct agent_update_opts uo;
	struct fleet_agent *a = NULL;
	struct lws_context *ctx = NULL;
	char err[FLEET_AGENT_ERR_MAX];
	struct backoff bo;
	bool permanent;
	int rc = 1, n = 0;

	agent_process_init(on_signal, LLL_ERR | LLL_WARN);

	memset(&ac, 0, sizeof(ac));
	ac.api_url = c->api_url;
	ac.device_url = c->device_url;
	ac.ca_file = c->ca_file;
	ac.state_dir = c->state_dir;
	ac.token = c->token;
	ac.token_file = c->token_file;
	ac.model = c->model;
	ac.fw_version = c->fw_version;
	ac.fw_version_file = c->fw_version_file;
	ac.labels = c->labels;
	ac.write_status = true;
	ac.config_path = c->config_path;
	ac.config_validate = c->config_validate;
	ac.config_reload = c->config_reload;
	ac.config_drift_interval = c->config_drift_interval;
	ac.config_restore_on_drift = c->config_restore != 0;
	ac.refused_backoff = c->refused_backoff;
	ac.reenroll = c->reenroll != 0;
	memset(&uo, 0, sizeof(uo));
	uo.keys = c->update_keys;
	uo.threshold = c->update_threshold;
	uo.modules_dir = c->update_modules_dir;
	uo.download_deadline_s = c->update_download_deadline;
	uo.stall_s = c->update_stall_timeout;
	uo.reboot_command = c->update_reboot_command;
	uo.health_command = c->update_health_command;
	uo.health_deadline_s = c->update_health_deadline;
	uo.fw_version_num = c->fw_version_num;
	uo.fw_version = c->fw_version;
	ac.update = &uo;
	if (parse_fraction(c->renew_at, 0.0, 1.0, &ac.renew_at) != 0 ||
	    ac.renew_at == 0.0 ||
	    parse_fraction(c->renew_jitter, 0.0, 0.5, &ac.renew_jitter) != 0) {
		log_error("renew_at is a fraction of the certificate's "
			  "lifetime (0 < f < 1), renew_jitter one under 0.5");
		return 2;
	}
	a = fleet_agent_new(&ac, err, sizeof(err));
	if (a == NULL) {
		log_error("%s", err);
		return 1;
	}
	/* Enrollment before the loop: nothing else to serve until then. */
	backoff_init(&bo, 1000, 5 * 60 * 1000, 0);
	while (!fleet_agent_enrolled(a) && !stop_requested) {
		uint32_t ms;

		if (fleet_agent_enroll(a, &permanent, err, sizeof(err)) == 0)
			break;
		ms = backoff_next(&bo);
		/* A refused token will not work sooner by asking often. */
		if (permanent && ms < 60000)
			ms = 60000;
		log_error("enrollment failed: %s; retrying in %u s", err,
			  ms / 1000);
		sleep_interruptible(ms);
	}
	if (stop_requested) {
		rc = 0;
		goto out;
	}
	ctx = fleet_agent_context_new(0, err, sizeof(err));
	if (ctx == NULL) {
		log_error("%s", err);
		goto out;
	}
	if (fleet_agent_start(a, ctx, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	running_ctx = ctx;
	log_info("fleet-agent %s running, device %s", FLEET_AGENT_VERSION,
		 fleet_agent_device_id(a));
	while (n >= 0 && !stop_requested)
		n = lws_service(ctx, 0);
	rc = 0;
	log_info("stopping");
out:
	running_ctx = NULL;
	fleet_agent_stop(a);
	if (ctx != NULL)
		fleet_agent_context_free(ctx);
	fleet_agent_free(a);
	return rc;
}

/* The update lines of `fleet-agent status`: what runs (firmware.json,
 * else the configuration) and the journal's last update. */
static void
status_update(const struct agent_conf *c)
{
	char dir[AGENT_PATH_MAX], err[256], ver[129];
	struct upd_journal j;
	int64_t num;

	snprintf(ver, sizeof(ver), "%s",
		 c->fw_version != NULL ? c->fw_version : "");
	num = agent_update_fw_version_num(c->state_dir, c->fw_version_num, ver,
					  sizeof(ver));
	printf("firmware:     %s (version %" PRId64 ")\n",
	       ver[0] != '\0' ? ver : "unknown", num);
	if (agent_path(dir, sizeof(dir), c->state_dir, AGENT_UPDATE_DIR) != 0)
		return;
	switch (upd_journal_load(dir, &j, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		if (j.step == UPD_DONE)
			printf("last update:  %s (version %" PRId64
			       ") %s%s%s%s\n",
			       j.version, j.version_int, j.outcome,
			       j.reason[0] != '\0' ? " (" : "", j.reason,
			       j.reason[0] != '\0' ? ")" : "");
		else
			printf("update:       %s (version %" PRId64
			       ") in progress: %s\n",
			       j.version, j.version_int, upd_step_name(j.step));
		if (j.error[0] != '\0')
			printf("update error: %s\n", j.error);
		break;
	default:
		printf("update:       journal unreadable: %s\n", err);
		break;
	}
	upd_journal_clear(&j);
}

static int
status(const struct agent_conf *c)
{
	char path[AGENT_PATH_MAX], err[512], exp[32], *text = NULL;
	struct agent_identity id;
	json_t *st = NULL;
	size_t len;
	json_int_t pid;
	bool alive = false, connected;
	int found;

	found = agent_identity_load(c->state_dir, &id, err, sizeof(err));
	if (found <= 0) {
		printf("device id:    (not enrolled: %s)\n", err);
		return found < 0 ? 1 : 3;
	}
	clock_format_rfc3339((time_t)id.not_after, exp, sizeof(exp));
	printf("device id:    %s\n", id.device_id);
	printf("certificate:  serial %s, expires %s\n", id.cert_serial, exp);
	printf("device url:   %s\n",
	       c->device_url != NULL ? c->device_url : id.device_server);
	if (agent_path(path, sizeof(path), c->state_dir, "status.json") == 0 &&
	    read_file_bounded(path, 64 * 1024, &text, &len, err, sizeof(err)) ==
		    0)
		st = json_loadb(text, len, 0, NULL);
	free(text);
	if (st == NULL) {
		printf("connected:    no (no status file: agent never ran)\n");
		status_update(c);
		return 3;
	}
	pid = json_integer_value(json_object_get(st, "pid"));
	alive = pid > 0 && kill((pid_t)pid, 0) == 0;
	connected = alive && json_is_true(json_object_get(st, "connected"));
	printf("connected:    %s%s\n", connected ? "yes" : "no",
	       alive ? "" : " (agent not running)");
	printf("attempts:     %" JSON_INTEGER_FORMAT "\n",
	       json_integer_value(json_object_get(st, "attempts")));
	printf("queued:       %" JSON_INTEGER_FORMAT "\n",
	       json_integer_value(json_object_get(st, "queued")));
	if (json_string_length(json_object_get(st, "last_error")) > 0)
		printf("last error:   %s\n",
		       json_string_value(json_object_get(st, "last_error")));
	printf("updated at:   %s\n",
	       json_string_value(json_object_get(st, "updated_at")) != NULL
		       ? json_string_value(json_object_get(st, "updated_at"))
		       : "");
	json_decref(st);
	status_update(c);
	return connected ? 0 : 3;
}

/* Queues one report (JSON text, or "-": read from stdin). */
static int
report(const struct agent_conf *c, const char *arg)
{
	char err[FLEET_AGENT_ERR_MAX], *text = NULL;
	json_error_t jerr;
	json_t *msg;
	uint64_t seq;
	size_t len = 0;
	int rc = 1;

	if (strcmp(arg, "-") == 0) {
		text = malloc(AGENT_REPORT_MAX + 1);
		if (text == NULL)
			return 1;
		len = fread(text, 1, AGENT_REPORT_MAX + 1, stdin);
		if (len > AGENT_REPORT_MAX) {
			fprintf(stderr, "fleet-agent: report too large\n");
			free(text);
			return 2;
		}
		msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		free(text);
	} else {
		msg = json_loads(arg, JSON_REJECT_DUPLICATES, &jerr);
	}
	if (msg == NULL) {
		fprintf(stderr, "fleet-agent: report is not JSON: %s\n",
			jerr.text);
		return 2;
	}
	if (agent_report_enqueue(c->state_dir, msg, &seq, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "fleet-agent: %s\n", err);
		rc = 2;
	} else {
		printf("queued report seq %" PRIu64 "\n", seq);
		rc = 0;
	}
	json_decref(msg);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	const char *conf_path = AGENT_CONF_DEFAULT, *cmd = "run";
	const char *report_arg = NULL;
	char err[CONFIG_ERR_MAX];
	struct agent_conf c;
	enum log_level lvl;
	bool conf_given = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			conf_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("fleet-agent %s\n", FLEET_AGENT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "report") != 0) {
		fprintf(stderr,
			"fleet-agent: unknown command '%s' (run, status, "
			"report; see fleet-agent --help)\n",
			cmd);
		return 2;
	}
	if (strcmp(cmd, "report") == 0 && optind < argc)
		report_arg = argv[optind++];
	/* glibc's getopt permutes argv: "status -c FILE" works too. */
	if (optind < argc) {
		fprintf(stderr,
			"fleet-agent: %s: unexpected argument '%s' (see "
			"fleet-agent --help)\n",
			cmd, argv[optind]);
		return 2;
	}
	if (strcmp(cmd, "report") == 0 && report_arg == NULL) {
		fprintf(stderr, "fleet-agent: report: give the report as JSON "
				"text, or - to read it from stdin\n");
		return 2;
	}
	/* Without -c, a missing default file means defaults and the
	 * environment (FLEET_AGENT_<KEY>); a file named with -c must
	 * exist. */
	if (!conf_given && access(conf_path, F_OK) != 0 && errno == ENOENT)
		conf_path = NULL;
	memset(&c, 0, sizeof(c));
	if (config_load(conf_path, conf_keys, NKEYS, "FLEET_AGENT_", &c, err,
			sizeof(err)) != 0) {
		fprintf(stderr, "fleet-agent: %s\n", err);
		/* status: 1 on an error (docs/agent.md) */
		return strcmp(cmd, "status") == 0 ? 1 : 2;
	}
	if (log_level_parse(c.log_level, &lvl) != 0) {
		fprintf(stderr, "fleet-agent: unknown log_level '%s'\n",
			c.log_level);
		conf_free(&c);
		return 2;
	}
	log_setup("fleet-agent", lvl, false);
	if (strcmp(cmd, "status") == 0) {
		rc = status(&c);
	} else if (strcmp(cmd, "report") == 0) {
		rc = report(&c, report_arg);
	} else if (c.api_url == NULL || c.ca_file == NULL) {
		fprintf(stderr,
			"fleet-agent: api_url and ca_file are required (in %s "
			"or as FLEET_AGENT_API_URL, FLEET_AGENT_CA_FILE)\n",
			conf_path != NULL ? conf_path : AGENT_CONF_DEFAULT);
		rc = 2;
	} else if (ca_file_check(c.ca_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "fleet-agent: %s\n", err);
		rc = 2;
	} else {
		rc = run(&c);
	}
	conf_free(&c);
	return rc;
}
