/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet-sim: N virtual devices in one process, for tests and benchmarks.
 * Each device is a struct fleet_agent with its own key, certificate, client
 * vhost and session in DIR/<n>/, so a second run reuses the identities.
 * Devices without an identity enroll first on a bounded thread pool; then
 * they connect in --shards lws contexts (default: one per core), each a
 * slice of the devices on its own libev loop (epoll) turned by its own
 * thread; the main thread sums the shards' figures
 * (docs/internals/agent-scale.md, docs/internals/fleet-sim.md). Prints
 * "fleet-sim: all N devices online in S s" when every device has had its
 * welcome, and a progress line when the online count changes.
 *
 * Configuration delivery (issue 9): every device applies config.apply in
 * memory (the document is checked against its hash; no file, no hooks)
 * and reports config.status; --config-fail SHARE makes that share of the
 * applies fail on purpose ("simulated failure"), so campaigns and change
 * counts can be exercised at scale.
 *
 * Firmware updates (issue 12, sim_update.c, docs/internals/fleet-sim.md):
 * with --update-keys, every device verifies update.offer like fleet-agent,
 * downloads the artifact over the device listener on a pool of
 * --download-threads threads (its bytes hashed, not stored), reports
 * every state, "reboots" (reconnects) and commits; --update-fail,
 * --update-rollback and --update-silent pick cohorts that fail at
 * install, roll back after the reboot, or go offline for good after
 * committing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <libwebsockets.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "clock.h"
#include "fleetagent.h"
#include "keyset.h"
#include "log.h"
#include "sim_update.h"

#define SIM_MAX_DEVICES 100000
#define SIM_MAX_THREADS 64
#define SIM_MAX_SHARDS 16
#define SIM_ENROLL_TRIES 8
#define SIM_TICK_MS 200

/*
 * A shard: a slice of the devices in their own lws context, serviced by
 * its own thread (lws 4.1 is built with one service thread per context).
 * Everything of a device runs on its shard's thread; the shard publishes
 * its counts for the main thread under its lock. Sharding cuts the
 * length of lws's per-context timer list and lets the simulator use
 * every core (docs/internals/agent-scale.md).
 *
 * The context runs on a libev loop of the shard's own with the epoll
 * backend, as fleetd's net workers do (docs/internals/event-loop.md):
 * lws 4.1's own loop poll()s every descriptor of the context on each
 * turn, O(devices) per event, which starved the simulators of the
 * 100,000-device run (docs/internals/fleet-sim.md, "The loop").
 */
struct sim_shard {
	struct sim *s;
	unsigned index;
	unsigned first; /* its first device's number (DIR/<n>) */
	unsigned range; /* devices made for it, before enrollment */
	struct fleet_agent **agents; /* its slice of sim.agents */
	unsigned count; /* enrolled devices in the slice */
	struct lws_context *ctx;
	struct ev_loop *loop; /* the context's, turned by tid */
	pthread_t tid;
	bool running;
	lws_sorted_usec_list_t sul_tick;
	unsigned started; /* devices started so far */
	unsigned start_per_tick; /* of --start-rate; all at once when 0 */
	struct sim_update *update; /* NULL: no --update-keys */
	pthread_mutex_t lock; /* the published figures below */
	unsigned online;
	uint64_t attempts, renewals;
	struct sim_update_counts updates;
};

struct sim {
	struct fleet_agent **agents;
	unsigned made; /* devices made (the size of agents) */
	unsigned count; /* then the enrolled ones */
	unsigned next; /* next device to enroll (under lock) */
	unsigned enroll_failed;
	pthread_mutex_t lock;
	struct sim_shard shard[SIM_MAX_SHARDS];
	unsigned shards;
	uint64_t start_ms;
	unsigned last_online;
	bool all_online_reported;
	bool exit_when_online;
	const char *status_file;
	bool updates; /* --update-keys */
	struct sim_update_counts last_updates;
	uint64_t online_changed_ms; /* when the online count last moved */
	bool trim_due; /* it moved: trim the heap once it holds still */
};

/* How long the online count must hold still before the heap is trimmed. */
#define SIM_TRIM_QUIET_MS 1000

static volatile sig_atomic_t stop_requested;
static struct lws_context *volatile running_ctx[SIM_MAX_SHARDS];

/* Every shard's loop looks at stop_requested again. */
static void
sim_wake_all(void)
{
	unsigned i;

	for (i = 0; i < SIM_MAX_SHARDS; i++)
		if (running_ctx[i] != NULL)
			lws_cancel_service(running_ctx[i]);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	sim_wake_all();
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: fleet-sim --count N --token T --api URL --ca FILE "
		   "--state DIR\n"
		   "                 [--model M] [--fw V] [--device-url URL] "
		   "[--labels k=v,..]\n"
		   "                 [--threads K] [--shards K] "
		   "[--status-file FILE] [--exit-when-online]\n"
		   "                 [--log-level L] [--config-fail SHARE] "
		   "[--start-rate N]\n"
		   "                 [--update-keys FILE].. "
		   "[--update-threshold K] [--download-threads N]\n"
		   "                 [--update-fail SHARE] "
		   "[--update-rollback SHARE] [--update-silent SHARE]\n"
		   "Runs N virtual devices (state in DIR/<n>/; a second run "
		   "reuses them).\n");
}

static bool
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* A share from 0 to 1 ("0.25"). */
static bool
parse_share(const char *s, double *out)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0) || v > 1.0)
		return false;
	*out = v;
	return true;
}

/* Appends a key file to the comma-separated list the agent takes. */
static bool
add_key_file(char *list, size_t cap, const char *path)
{
	size_t len = strlen(list);
	int n;

	if (path[0] == '\0' || strchr(path, ',') != NULL)
		return false;
	n = snprintf(list + len, cap - len, "%s%s", len > 0 ? "," : "", path);
	return n > 0 && (size_t)n < cap - len;
}

static void *
enroll_worker(void *arg)
{
	struct sim *s = arg;
	char err[FLEET_AGENT_ERR_MAX];
	struct timespec ts;
	bool permanent;
	unsigned i, t;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		i = s->next < s->count ? s->next++ : s->count;
		pthread_mutex_unlock(&s->lock);
		if (i >= s->count || stop_requested)
			return NULL;
		for (t = 0; t < SIM_ENROLL_TRIES && !stop_requested; t++) {
			if (fleet_agent_enroll(s->agents[i], &permanent, err,
					       sizeof(err)) == 0)
				break;
			log_warn("device %u: enrollment failed: %s", i, err);
			if (permanent) {
				t = SIM_ENROLL_TRIES;
				break;
			}
			ts.tv_sec = (time_t)(1u << (t < 4 ? t : 4));
			ts.tv_nsec = 0;
			nanosleep(&ts, NULL);
		}
		if (t >= SIM_ENROLL_TRIES) {
			pthread_mutex_lock(&s->lock);
			s->enroll_failed++;
			pthread_mutex_unlock(&s->lock);
		}
	}
}

static void
sim_write_status(struct sim *s, unsigned online, uint64_t attempts,
		 uint64_t renewals, const struct sim_update_counts *up)
{
	char text[512], err[256];
	struct sim_update_counts u = *up;
	int n;

	if (s->status_file == NULL)
		return;
	n = snprintf(text, sizeof(text),
		     "{\"count\": %u, \"online\": %u, \"attempts\": %" PRIu64
		     ", \"renewals\": %" PRIu64 ", \"pid\": %d, "
		     "\"updates\": {\"active\": %u, \"committed\": %u, "
		     "\"failed\": %u, \"rolled_back\": %u, \"refused\": %u, "
		     "\"silent\": %u, \"superseded\": %u}}\n",
		     s->count, online, attempts, renewals, (int)getpid(),
		     u.active, u.committed, u.failed, u.rolled_back, u.refused,
		     u.silent, u.superseded);
	if (atomic_write_file(s->status_file, text, (size_t)n, 0644, err,
			      sizeof(err)) != 0)
		log_warn("%s", err);
}

/* Starts the shard's next start_per_tick devices. */
static int
sim_start_some(struct sim_shard *sh, char *err, size_t errlen)
{
	unsigned end = sh->started + sh->start_per_tick;

	if (end > sh->count || end < sh->started)
		end = sh->count;
	for (; sh->started < end; sh->started++) {
		if (fleet_agent_start(sh->agents[sh->started], sh->ctx, err,
				      errlen) != 0) {
			fprintf(stderr, "fleet-sim: device %u: %s\n",
				sh->first + sh->started, err);
			return -1;
		}
	}
	return 0;
}

/* On the shard's thread: starts devices and publishes its figures. */
static void
sim_shard_tick(lws_sorted_usec_list_t *sul)
{
	struct sim_shard *sh =
		lws_container_of(sul, struct sim_shard, sul_tick);
	uint64_t attempts = 0, renewals = 0;
	unsigned i, online = 0;
	struct sim_update_counts u;
	char err[FLEET_AGENT_ERR_MAX];

	if (sh->started < sh->count &&
	    sim_start_some(sh, err, sizeof(err)) != 0) {
		stop_requested = 1;
		sim_wake_all();
	}
	for (i = 0; i < sh->started; i++) {
		online += fleet_agent_online(sh->agents[i]);
		attempts += fleet_agent_attempts(sh->agents[i]);
		renewals += fleet_agent_renewals(sh->agents[i]);
	}
	memset(&u, 0, sizeof(u));
	if (sh->update != NULL)
		sim_update_get_counts(sh->update, &u);
	pthread_mutex_lock(&sh->lock);
	sh->online = online;
	sh->attempts = attempts;
	sh->renewals = renewals;
	sh->updates = u;
	pthread_mutex_unlock(&sh->lock);
	lws_sul_schedule(sh->ctx, 0, &sh->sul_tick, sim_shard_tick,
			 (lws_usec_t)SIM_TICK_MS * LWS_US_PER_MS);
}

/*
 * The shard's thread turns its loop, one libev iteration at a time (wait
 * for at least one event or the next timer), and looks at stop_requested
 * between them; sim_wake_all's lws_cancel_service ends a wait. lws arms
 * its libev timer only from a serviced event or from that timer, so the
 * first turn is woken on purpose: the ticks and connect timers scheduled
 * before it would otherwise wait for a first event that may never come.
 * The plugin re-arms an active timer without moving it, so a timer
 * scheduled from an event for earlier than the armed one can run up to
 * one wheel turn (100 ms, agent.c) late on an idle shard.
 */
static void *
sim_shard_run(void *arg)
{
	struct sim_shard *sh = arg;

	lws_cancel_service(sh->ctx);
	while (!stop_requested)
		ev_run(sh->loop, EVRUN_ONCE);
	stop_requested = 1;
	sim_wake_all();
	return NULL;
}

/* On the main thread: the shards' figures summed, progress printed,
 * the status file written, the heap trimmed once the count holds still. */
static void
sim_report(struct sim *s)
{
	uint64_t attempts = 0, renewals = 0;
	struct sim_update_counts u;
	unsigned i, online = 0;

	memset(&u, 0, sizeof(u));
	for (i = 0; i < s->shards; i++) {
		struct sim_shard *sh = &s->shard[i];

		pthread_mutex_lock(&sh->lock);
		online += sh->online;
		attempts += sh->attempts;
		renewals += sh->renewals;
		u.active += sh->updates.active;
		u.committed += sh->updates.committed;
		u.failed += sh->updates.failed;
		u.rolled_back += sh->updates.rolled_back;
		u.refused += sh->updates.refused;
		u.silent += sh->updates.silent;
		u.superseded += sh->updates.superseded;
		pthread_mutex_unlock(&sh->lock);
	}
	if (online != s->last_online) {
		printf("fleet-sim: online %u/%u attempts %" PRIu64 "\n", online,
		       s->count, attempts);
		fflush(stdout);
		s->last_online = online;
		s->online_changed_ms = clock_mono_ms();
		s->trim_due = true;
	}
	/* Every TLS handshake allocates and frees tens of KiB between the
	 * connections' long-lived objects; once the devices are connected
	 * the heap keeps those holes (whole free pages) unless told. */
	if (s->trim_due &&
	    clock_mono_ms() - s->online_changed_ms >= SIM_TRIM_QUIET_MS) {
		s->trim_due = false;
		malloc_trim(0);
	}
	if (online == s->count && !s->all_online_reported) {
		uint64_t ms = clock_mono_ms() - s->start_ms;

		printf("fleet-sim: all %u devices online in %" PRIu64
		       ".%03" PRIu64 " s (attempts %" PRIu64 ")\n",
		       s->count, ms / 1000u, ms % 1000u, attempts);
		fflush(stdout);
		s->all_online_reported = true;
		if (s->exit_when_online) {
			stop_requested = 1;
			sim_wake_all();
		}
	}
	if (online < s->count)
		s->all_online_reported = false;
	if (s->updates && memcmp(&u, &s->last_updates, sizeof(u)) != 0) {
		printf("fleet-sim: updates active %u committed %u "
		       "failed %u rolled_back %u refused %u silent "
		       "%u superseded %u\n",
		       u.active, u.committed, u.failed, u.rolled_back,
		       u.refused, u.silent, u.superseded);
		fflush(stdout);
		s->last_updates = u;
	}
	sim_write_status(s, online, attempts, renewals, &u);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"token", required_argument, NULL, 't'},
		{"api", required_argument, NULL, 'a'},
		{"ca", required_argument, NULL, 'C'},
		{"state", required_argument, NULL, 's'},
		{"model", required_argument, NULL, 'm'},
		{"fw", required_argument, NULL, 'f'},
		{"device-url", required_argument, NULL, 'd'},
		{"labels", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 'j'},
		{"shards", required_argument, NULL, 'P'},
		{"status-file", required_argument, NULL, 'S'},
		{"exit-when-online", no_argument, NULL, 'x'},
		{"log-level", required_argument, NULL, 'L'},
		{"config-fail", required_argument, NULL, 'F'},
		{"start-rate", required_argument, NULL, 'R'},
		{"update-keys", required_argument, NULL, 'k'},
		{"update-threshold", required_argument, NULL, 'K'},
		{"update-fail", required_argument, NULL, 'U'},
		{"update-rollback", required_argument, NULL, 'B'},
		{"update-silent", required_argument, NULL, 'Q'},
		{"download-threads", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	const char *token = NULL, *api = NULL, *ca = NULL, *state = NULL;
	const char *model = "sim", *fw = "1.0.0", *device_url = NULL;
	const char *labels = NULL, *log_level = "warn";
	unsigned threads = 8, i, k, fail_permille = 0, start_rate = 0;
	unsigned shards = 0; /* 0: one per core */
	long ncpu;
	char err[FLEET_AGENT_ERR_MAX], dir[AGENT_PATH_MAX], name[32];
	char boot_id[SECRET_UUID_LEN];
	pthread_t tids[SIM_MAX_THREADS];
	struct fleet_agent_config ac;
	struct rlimit rl;
	enum log_level lvl;
	struct sim_update_opts uo;
	char update_keys[4096] = "";
	unsigned threshold = 1;
	bool update_opts = false;
	struct sim s;
	int ch, rc = 1, n = 0;

	memset(&s, 0, sizeof(s));
	memset(&uo, 0, sizeof(uo));
	uo.download_threads = 8;
	pthread_mutex_init(&s.lock, NULL);
	while ((ch = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (!parse_uint(optarg, 1, SIM_MAX_DEVICES, &s.count)) {
				fprintf(stderr, "fleet-sim: --count 1..%d\n",
					SIM_MAX_DEVICES);
				return 2;
			}
			break;
		case 't':
			token = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'C':
			ca = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'f':
			fw = optarg;
			break;
		case 'd':
			device_url = optarg;
			break;
		case 'l':
			labels = optarg;
			break;
		case 'j':
			if (!parse_uint(optarg, 1, SIM_MAX_THREADS, &threads)) {
				fprintf(stderr, "fleet-sim: --threads 1..%d\n",
					SIM_MAX_THREADS);
				return 2;
			}
			break;
		case 'P':
			if (!parse_uint(optarg, 1, SIM_MAX_SHARDS, &shards)) {
				fprintf(stderr, "fleet-sim: --shards 1..%d\n",
					SIM_MAX_SHARDS);
				return 2;
			}
			break;
		case 'S':
			s.status_file = optarg;
			break;
		case 'x':
			s.exit_when_online = true;
			break;
		case 'L':
			log_level = optarg;
			break;
		case 'R':
			if (!parse_uint(optarg, 0, 1000000, &start_rate)) {
				fprintf(stderr, "fleet-sim: --start-rate N\n");
				return 2;
			}
			break;
		case 'F': {
			char *end = NULL;
			double share = strtod(optarg, &end);

			if (end == optarg || *end != '\0' || !(share >= 0.0) ||
			    share > 1.0) {
				fprintf(stderr,
					"fleet-sim: --config-fail 0..1\n");
				return 2;
			}
			fail_permille = (unsigned)(share * 1000.0 + 0.5);
			break;
		}
		case 'k':
			if (!add_key_file(update_keys, sizeof(update_keys),
					  optarg)) {
				fprintf(stderr, "fleet-sim: --update-keys: a "
						"file name without commas, "
						"the list under 4 KiB\n");
				return 2;
			}
			break;
		case 'K':
			if (!parse_uint(optarg, 1, 16, &threshold)) {
				fprintf(stderr, "fleet-sim: --update-threshold "
						"1..16\n");
				return 2;
			}
			break;
		case 'U':
		case 'B':
		case 'Q':
			if (!parse_share(optarg, ch == 'U'   ? &uo.fail
						 : ch == 'B' ? &uo.rollback
							     : &uo.silent)) {
				fprintf(stderr,
					"fleet-sim: --update-%s takes a share "
					"from 0 to 1\n",
					ch == 'U'   ? "fail"
					: ch == 'B' ? "rollback"
						    : "silent");
				return 2;
			}
			update_opts = true;
			break;
		case 'D':
			if (!parse_uint(optarg, 1, SIM_UPDATE_MAX_THREADS,
					&uo.download_threads)) {
				fprintf(stderr,
					"fleet-sim: --download-threads 1..%d\n",
					SIM_UPDATE_MAX_THREADS);
				return 2;
			}
			update_opts = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("fleet-sim %s\n", FLEET_AGENT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (s.count == 0 || api == NULL || ca == NULL || state == NULL ||
	    optind < argc || log_level_parse(log_level, &lvl) != 0) {
		usage(stderr);
		return 2;
	}
	if (update_opts && update_keys[0] == '\0') {
		fprintf(stderr, "fleet-sim: the --update-* options and "
				"--download-threads need --update-keys\n");
		return 2;
	}
	log_setup("fleet-sim", lvl, false);
	agent_process_init(on_signal,
			   LLL_ERR | (lvl >= LOG_LEVEL_DEBUG ? LLL_WARN : 0));
	/* One socket per device: take all the descriptors we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "fleet-sim: %s: %s\n", state, strerror(errno));
		return 1;
	}
	s.agents = calloc(s.count, sizeof(*s.agents));
	if (s.agents == NULL)
		goto out;
	s.made = s.count;
	/* The shards: consecutive slices of the devices. */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (shards == 0)
		shards = ncpu > 0 && ncpu < SIM_MAX_SHARDS ? (unsigned)ncpu
							   : SIM_MAX_SHARDS;
	if (shards > s.count)
		shards = s.count;
	s.shards = shards;
	for (k = 0; k < shards; k++) {
		struct sim_shard *sh = &s.shard[k];

		sh->s = &s;
		sh->index = k;
		sh->first = (unsigned)((uint64_t)s.count * k / shards);
		sh->range = (unsigned)((uint64_t)s.count * (k + 1) / shards) -
			    sh->first;
		sh->agents = s.agents + sh->first;
		pthread_mutex_init(&sh->lock, NULL);
	}
	if (update_keys[0] != '\0') {
		struct pki_keyset ks;

		/* The key files and threshold are read for each offer (a
		 * rotated set may replace them): refuse bad ones now. */
		memset(&ks, 0, sizeof(ks));
		if (agent_keyset_load(state, update_keys, threshold, &ks, err,
				      sizeof(err)) != 1) {
			fprintf(stderr, "fleet-sim: --update-keys: %s\n", err);
			goto out;
		}
		pki_keyset_clear(&ks);
		uo.keys = update_keys;
		uo.threshold = threshold;
		uo.ca_file = ca;
		uo.model = model;
		uo.fw_version = fw;
		/* Each shard its own (its hooks run on its thread), the
		 * download threads shared out. */
		uo.download_threads =
			(uo.download_threads + shards - 1) / shards;
		for (k = 0; k < shards; k++) {
			s.shard[k].update = sim_update_new(
				&uo, s.shard[k].range, err, sizeof(err));
			if (s.shard[k].update == NULL) {
				fprintf(stderr, "fleet-sim: %s\n", err);
				goto out;
			}
		}
		s.updates = true;
	}
	for (i = 0, k = 0; i < s.count; i++) {
		if (i >= s.shard[k].first + s.shard[k].range)
			k++;
		snprintf(dir, sizeof(dir), "%s/%u", state, i);
		snprintf(name, sizeof(name), "sim-%u", i);
		/* A virtual device boots when the simulator starts. */
		if (secret_uuid_v4(boot_id) != 0)
			goto out;
		memset(&ac, 0, sizeof(ac));
		ac.name = name;
		ac.api_url = api;
		ac.device_url = device_url;
		ac.ca_file = ca;
		ac.state_dir = dir;
		ac.token = token;
		ac.model = model;
		ac.fw_version = fw;
		ac.labels = labels;
		ac.boot_id = boot_id;
		ac.virtual_uptime = true;
		ac.config_memory = true;
		ac.config_fail_permille = fail_permille;
		/* cert.rotate: new key, CSR, reconnect, cert.installed, all
		 * in memory (issue 10). */
		ac.cert_memory = true;
		/* update.offer: verified, downloaded and applied in memory
		 * (sim_update.c). */
		sim_update_config(s.shard[k].update, i - s.shard[k].first, &ac);
		s.agents[i] = fleet_agent_new(&ac, err, sizeof(err));
		if (s.agents[i] == NULL) {
			fprintf(stderr, "fleet-sim: device %u: %s\n", i, err);
			goto out;
		}
	}
	s.start_ms = clock_mono_ms();
	if (threads > s.count)
		threads = s.count;
	for (i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, enroll_worker, &s) != 0)
			break;
	threads = i;
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	if (stop_requested) {
		rc = 0;
		goto out;
	}
	/* The enrollment threads' arenas: keys, CSRs and HTTPS connections
	 * of every device, all freed now. */
	malloc_trim(0);
	printf("fleet-sim: %u devices enrolled or reused in %.3f s, %u "
	       "failed\n",
	       s.count - s.enroll_failed,
	       (double)(clock_mono_ms() - s.start_ms) / 1000.0,
	       s.enroll_failed);
	fflush(stdout);
	if (s.enroll_failed == s.count)
		goto out;
	/* Devices that failed to enroll are dropped, not waited for. */
	s.count = 0;
	for (k = 0; k < shards; k++) {
		struct sim_shard *sh = &s.shard[k];

		for (i = 0, n = 0; i < sh->range; i++) {
			if (fleet_agent_enrolled(sh->agents[i])) {
				sh->agents[n++] = sh->agents[i];
			} else {
				fleet_agent_free(sh->agents[i]);
			}
			if ((unsigned)n <= i)
				sh->agents[i] = NULL;
		}
		sh->count = (unsigned)n;
		s.count += sh->count;
		/* epoll only: with flags 0 libev may pick poll() or
		 * select(), the O(N) scan this loop is here to avoid. */
		sh->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
		if (sh->loop == NULL) {
			fprintf(stderr,
				"fleet-sim: cannot create an epoll loop: %s\n",
				strerror(errno));
			goto out;
		}
		sh->ctx = agent_context_new_ev(sh->count, sh->loop, err,
					       sizeof(err));
		if (sh->ctx == NULL) {
			fprintf(stderr, "fleet-sim: %s\n", err);
			goto out;
		}
		if (sh->update != NULL &&
		    sim_update_start(sh->update, sh->ctx, err, sizeof(err)) !=
			    0) {
			fprintf(stderr, "fleet-sim: %s\n", err);
			goto out;
		}
		/* --start-rate: devices start in steps from the tick, so
		 * that thousands of TLS handshakes do not all time out at
		 * once. */
		sh->start_per_tick =
			start_rate > 0 ? (start_rate / shards * SIM_TICK_MS +
					  999) / 1000
				       : sh->count;
		if (sh->start_per_tick == 0)
			sh->start_per_tick = 1;
	}
	s.start_ms = clock_mono_ms();
	for (k = 0; k < shards; k++) {
		struct sim_shard *sh = &s.shard[k];

		if (sim_start_some(sh, err, sizeof(err)) != 0)
			goto out;
		lws_sul_schedule(sh->ctx, 0, &sh->sul_tick, sim_shard_tick, 1);
		running_ctx[k] = sh->ctx;
		if (pthread_create(&sh->tid, NULL, sim_shard_run, sh) != 0) {
			fprintf(stderr, "fleet-sim: no thread for shard %u\n",
				k);
			stop_requested = 1;
			break;
		}
		sh->running = true;
	}
	while (!stop_requested) {
		struct timespec ts = {0, SIM_TICK_MS * 1000000L};

		nanosleep(&ts, NULL);
		sim_report(&s);
	}
	sim_wake_all();
	rc = s.enroll_failed > 0 ? 1 : 0;
out:
	stop_requested = 1;
	sim_wake_all();
	for (k = 0; k < s.shards; k++) {
		struct sim_shard *sh = &s.shard[k];

		if (sh->running)
			pthread_join(sh->tid, NULL);
		sh->running = false;
		running_ctx[k] = NULL;
	}
	for (k = 0; k < s.shards; k++) {
		struct sim_shard *sh = &s.shard[k];

		if (sh->ctx != NULL) {
			lws_sul_cancel(&sh->sul_tick);
			/* The download threads end before the devices go. */
			sim_update_stop(sh->update);
			for (i = 0; i < sh->count; i++)
				fleet_agent_stop(sh->agents[i]);
			/* Outside ev_run: lws closes every connection and
			 * stops its watchers within this call. */
			fleet_agent_context_free(sh->ctx);
			sh->ctx = NULL;
		}
		if (sh->loop != NULL)
			ev_loop_destroy(sh->loop);
		sh->loop = NULL;
	}
	if (s.agents != NULL) {
		for (i = 0; i < s.made; i++)
			fleet_agent_free(s.agents[i]);
	}
	free(s.agents);
	for (k = 0; k < s.shards; k++) {
		sim_update_free(s.shard[k].update);
		pthread_mutex_destroy(&s.shard[k].lock);
	}
	pthread_mutex_destroy(&s.lock);
	return rc;
}
