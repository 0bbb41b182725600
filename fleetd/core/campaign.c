/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaign rules: see campaign.h. No I/O, no clock: the caller passes now.
 */
#include "core/campaign.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canon.h"
#include "clock.h"

static const char *const kind_names[] = {"firmware", "config", "rotation"};
static const char *const status_names[CAMPAIGN_STATUS_COUNT] = {
	"draft", "running", "paused", "completed", "aborted"};
static const char *const day_names[7] = {"sun", "mon", "tue", "wed",
					 "thu", "fri", "sat"};

const char *
campaign_kind_name(enum campaign_kind k)
{
	if ((unsigned)k >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "unknown";
	return kind_names[k];
}

int
campaign_kind_parse(const char *s, enum campaign_kind *out)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(kind_names) / sizeof(kind_names[0]);
	     i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum campaign_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *
campaign_status_name(enum campaign_status s)
{
	if ((unsigned)s >= CAMPAIGN_STATUS_COUNT)
		return "unknown";
	return status_names[s];
}

/* ---- definitions ------------------------------------------------------ */

/* A decimal number in [lo, hi] spanning [s, end). */
static int
parse_uint(const char *s, const char *end, unsigned long lo, unsigned long hi,
	   unsigned long *out)
{
	char buf[16];
	char *e;
	size_t n = (size_t)(end - s);
	unsigned long v;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(buf, &e, 10);
	if (errno != 0 || *e != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
campaign_phases_parse(const char *text, bool absolute,
		      const struct campaign_gate *gate,
		      struct campaign_def *def, char *err, size_t errlen)
{
	const char *p = text, *comma;
	unsigned long v;
	size_t n = 0;

	if (text == NULL || *text == '\0') {
		snprintf(err, errlen, "phases: empty");
		return -1;
	}
	for (;;) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (n == CAMPAIGN_MAX_PHASES) {
			snprintf(err, errlen, "phases: at most %d",
				 CAMPAIGN_MAX_PHASES);
			return -1;
		}
		def->phases[n].absolute = absolute;
		def->phases[n].gate = *gate;
		if (absolute && comma - p == 3 && strncmp(p, "all", 3) == 0) {
			def->phases[n].value = CAMPAIGN_ALL;
		} else if (parse_uint(p, comma, 1, absolute ? 10000000 : 100,
				      &v) == 0) {
			def->phases[n].value = (uint32_t)v;
		} else {
			snprintf(err, errlen, "phases: \"%.*s\" is not %s",
				 (int)(comma - p), p,
				 absolute ? "a device count (1 or more, or "
					    "\"all\")"
					  : "a percentage from 1 to 100");
			return -1;
		}
		n++;
		if (*comma == '\0')
			break;
		p = comma + 1;
	}
	def->n_phases = n;
	return campaign_def_check(def, err, errlen);
}

static bool
share_ok(double d)
{
	return d >= 0.0 && d <= 1.0;
}

int
campaign_def_check(const struct campaign_def *def, char *err, size_t errlen)
{
	size_t i;

	if (def->n_phases == 0 || def->n_phases > CAMPAIGN_MAX_PHASES) {
		snprintf(err, errlen, "phases: 1 to %d", CAMPAIGN_MAX_PHASES);
		return -1;
	}
	for (i = 0; i < def->n_phases; i++) {
		const struct campaign_phase *ph = &def->phases[i];

		if (ph->absolute != def->phases[0].absolute) {
			snprintf(err, errlen,
				 "phases: all percentages or all counts");
			return -1;
		}
		if (ph->value == 0 || (!ph->absolute && ph->value > 100)) {
			snprintf(err, errlen, "phase %zu: value out of range",
				 i + 1);
			return -1;
		}
		if (i > 0 && ph->value <= def->phases[i - 1].value) {
			snprintf(err, errlen,
				 "phase %zu: phases are cumulative and must "
				 "grow",
				 i + 1);
			return -1;
		}
		if (ph->absolute && ph->value == CAMPAIGN_ALL &&
		    i + 1 != def->n_phases) {
			snprintf(err, errlen,
				 "phase %zu: \"all\" must be the last phase",
				 i + 1);
			return -1;
		}
		if (!share_ok(ph->gate.min_success) ||
		    !share_ok(ph->gate.max_failure)) {
			snprintf(err, errlen,
				 "phase %zu: min_success and max_failure are "
				 "shares from 0 to 1",
				 i + 1);
			return -1;
		}
		if (ph->gate.soak_s < 0 || ph->gate.health_window_s < 0) {
			snprintf(err, errlen,
				 "phase %zu: soak and health window are not "
				 "negative",
				 i + 1);
			return -1;
		}
	}
	if (!def->phases[0].absolute &&
	    def->phases[def->n_phases - 1].value != 100) {
		snprintf(err, errlen, "phases: the last percentage is 100");
		return -1;
	}
	return 0;
}

/* Day name to its index, or -1. */
static int
day_index(const char *s, size_t n)
{
	int i;

	for (i = 0; i < 7; i++)
		if (n == 3 && strncmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

/* Sets bits lo..hi (wrapping past top) in *mask. */
static void
set_range(uint32_t *mask, int lo, int hi, int top)
{
	int i = lo;

	for (;;) {
		*mask |= 1u << i;
		if (i == hi)
			break;
		i = (i + 1) % (top + 1);
	}
}

int
campaign_window_parse(const char *hours, const char *weekdays,
		      struct campaign_window *w, char *err, size_t errlen)
{
	const char *p, *dash, *comma;
	unsigned long lo, hi;
	uint32_t days = 0;

	memset(w, 0, sizeof(*w));
	if (hours != NULL && *hours != '\0') {
		dash = strchr(hours, '-');
		if (dash == NULL || parse_uint(hours, dash, 0, 23, &lo) != 0 ||
		    parse_uint(dash + 1, dash + 1 + strlen(dash + 1), 0, 23,
			       &hi) != 0) {
			snprintf(err, errlen,
				 "window hours: \"%s\" is not H-H (UTC, 0-23, "
				 "e.g. 22-6)",
				 hours);
			return -1;
		}
		set_range(&w->hours, (int)lo, (int)hi, 23);
	}
	for (p = weekdays; p != NULL && *p != '\0';) {
		int a, b;

		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		dash = memchr(p, '-', (size_t)(comma - p));
		a = day_index(p, (size_t)((dash ? dash : comma) - p));
		b = dash ? day_index(dash + 1, (size_t)(comma - dash - 1)) : a;
		if (a < 0 || b < 0) {
			snprintf(err, errlen,
				 "window weekdays: \"%s\" is not a list of "
				 "days or ranges (mon-fri,sun)",
				 weekdays);
			return -1;
		}
		set_range(&days, a, b, 6);
		p = *comma == ',' ? comma + 1 : comma;
	}
	w->weekdays = (uint8_t)days;
	return 0;
}

/* ---- cohorts ---------------------------------------------------------- */

uint64_t
campaign_rank(const char *campaign_id, const char *device_id)
{
	char buf[160], hex[65];
	uint64_t r = 0;
	int n = snprintf(buf, sizeof(buf), "%s:%s", campaign_id, device_id);
	int i;

	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    canon_sha256_hex_bytes(buf, (size_t)n, hex) != 0)
		return UINT64_MAX;
	for (i = 0; i < 16; i++) {
		char c = hex[i];

		r = (r << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return r;
}

uint64_t
campaign_phase_cutoff(const struct campaign_def *def, size_t p, uint64_t total)
{
	const struct campaign_phase *ph;
	uint64_t n;

	if (p >= def->n_phases)
		return total;
	ph = &def->phases[p];
	if (ph->absolute)
		n = ph->value == CAMPAIGN_ALL ? total : ph->value;
	else /* round up: a 1% canary of 30 devices is one device */
		n = (total * ph->value + 99) / 100;
	return n < total ? n : total;
}

size_t
campaign_phase_of(const struct campaign_def *def, uint64_t pos, uint64_t total)
{
	size_t p;

	for (p = 0; p < def->n_phases; p++)
		if (pos < campaign_phase_cutoff(def, p, total))
			return p;
	return def->n_phases;
}

void
campaign_phase_sizes(const struct campaign_def *def, uint64_t total,
		     uint64_t *sizes)
{
	uint64_t prev = 0, cut;
	size_t p;

	for (p = 0; p < def->n_phases; p++) {
		cut = campaign_phase_cutoff(def, p, total);
		sizes[p] = cut - prev;
		prev = cut;
	}
}

int64_t
campaign_min_duration(const struct campaign_def *def)
{
	int64_t d = 0;
	size_t p;

	for (p = 0; p < def->n_phases; p++)
		d += def->phases[p].gate.soak_s;
	return d;
}

/* ---- time window ------------------------------------------------------ */

bool
campaign_in_window(const struct campaign_window *w, int64_t now)
{
	time_t t = (time_t)now;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return false;
	if (w->hours != 0 && (w->hours & (1u << tm.tm_hour)) == 0)
		return false;
	if (w->weekdays != 0 && (w->weekdays & (1u << tm.tm_wday)) == 0)
		return false;
	return true;
}

int64_t
campaign_window_next(const struct campaign_window *w, int64_t now)
{
	int64_t t;
	int i;

	if (campaign_in_window(w, now))
		return now;
	t = now - now % 3600; /* windows open on the hour */
	for (i = 0; i < 8 * 24; i++) {
		t += 3600;
		if (campaign_in_window(w, t))
			return t;
	}
	return -1;
}

uint32_t
campaign_offer_budget(const struct campaign_def *def,
		      uint32_t offered_or_in_progress)
{
	if (def->max_concurrent == 0)
		return UINT32_MAX;
	if (offered_or_in_progress >= def->max_concurrent)
		return 0;
	return def->max_concurrent - offered_or_in_progress;
}

/* ---- the driver's rule ------------------------------------------------ */

static void
decide(struct campaign_decision *out, enum campaign_action a, size_t phase,
       int64_t wake_at)
{
	out->action = a;
	out->phase = phase;
	out->wake_at = wake_at;
}

/* True (with the reason) when phase p's failures trip its gate. */
static bool
failure_gate(const struct campaign_gate *g, const struct campaign_counts *c,
	     size_t p, char *reason, size_t len)
{
	uint64_t failures = (uint64_t)c->failed + c->silent + c->rolled_back;
	uint64_t finished = failures + c->succeeded;

	if (finished == 0 || finished < g->min_finished)
		return false;
	if ((double)failures <= g->max_failure * (double)finished)
		return false;
	snprintf(reason, len,
		 "phase %zu: %" PRIu64 " of %" PRIu64
		 " finished devices failed (%.1f%%; limit %.1f%%): %u failed, "
		 "%u silent, %u rolled back",
		 p + 1, failures, finished,
		 100.0 * (double)failures / (double)finished,
		 100.0 * g->max_failure, c->failed, c->silent, c->rolled_back);
	return true;
}

/*
 * True (with the reason) when the phase can no longer reach min_success:
 * even if every device still open succeeded, too many have failed
 * (failures > (1 - min_success) * total). Judged whatever min_finished
 * says: waiting would be forever.
 */
static bool
success_unreachable(const struct campaign_gate *g,
		    const struct campaign_counts *c, size_t p, char *reason,
		    size_t len)
{
	uint64_t failures = (uint64_t)c->failed + c->silent + c->rolled_back;
	uint64_t best = failures < c->total ? c->total - failures : 0;
	double need = g->min_success * (double)c->total;

	if (failures == 0 || (double)best >= need)
		return false;
	snprintf(
		reason, len,
		"phase %zu: %" PRIu64
		" of %u devices failed (%.1f%%), so at most %" PRIu64
		" can succeed, below min_success %.1f%%: %u failed, %u silent, "
		"%u rolled back",
		p + 1, failures, c->total,
		c->total > 0 ? 100.0 * (double)failures / (double)c->total
			     : 100.0,
		best, 100.0 * g->min_success, c->failed, c->silent,
		c->rolled_back);
	return true;
}

void
campaign_step(const struct campaign_def *def, const struct campaign_state *st,
	      const struct campaign_counts *counts, int64_t now,
	      struct campaign_decision *out)
{
	const struct campaign_phase *ph;
	const struct campaign_counts *cur;
	size_t p;
	int64_t open;

	memset(out, 0, sizeof(*out));
	if (st->status != CAMPAIGN_RUNNING || st->phase >= def->n_phases)
		return;
	for (p = 0; p <= st->phase; p++) {
		if (failure_gate(&def->phases[p].gate, &counts[p], p,
				 out->reason, sizeof(out->reason))) {
			decide(out, CAMPAIGN_ACT_PAUSE, p, 0);
			return;
		}
	}
	ph = &def->phases[st->phase];
	cur = &counts[st->phase];
	if ((double)cur->succeeded <
	    ph->gate.min_success * (double)cur->total) {
		if (success_unreachable(&ph->gate, cur, st->phase, out->reason,
					sizeof(out->reason)))
			decide(out, CAMPAIGN_ACT_PAUSE, st->phase, 0);
		return; /* else waiting for devices */
	}
	if (st->gate_met_at == 0) {
		decide(out, CAMPAIGN_ACT_GATE_MET, st->phase,
		       now + ph->gate.soak_s);
		snprintf(out->reason, sizeof(out->reason),
			 "phase %zu: %u of %u devices succeeded; soak %" PRId64
			 " s",
			 st->phase + 1, cur->succeeded, cur->total,
			 ph->gate.soak_s);
		return;
	}
	if (now < st->gate_met_at + ph->gate.soak_s) {
		decide(out, CAMPAIGN_ACT_WAIT, st->phase,
		       st->gate_met_at + ph->gate.soak_s);
		return;
	}
	if (st->phase + 1 == def->n_phases) {
		decide(out, CAMPAIGN_ACT_COMPLETE, st->phase, 0);
		snprintf(out->reason, sizeof(out->reason),
			 "last phase passed: %u of %u devices succeeded",
			 cur->succeeded, cur->total);
		return;
	}
	open = campaign_window_next(&def->window, now);
	if (open != now) {
		decide(out, CAMPAIGN_ACT_WAIT, st->phase, open);
		snprintf(out->reason, sizeof(out->reason),
			 "outside the allowed time window");
		return;
	}
	decide(out, CAMPAIGN_ACT_RELEASE, st->phase + 1, 0);
	snprintf(out->reason, sizeof(out->reason),
		 "phase %zu of %zu released: %u more devices", st->phase + 2,
		 def->n_phases, counts[st->phase + 1].total);
}

int
campaign_transition(enum campaign_status from, enum campaign_event ev,
		    enum campaign_status *to)
{
	enum campaign_status next;

	switch (ev) {
	case CAMPAIGN_EV_START:
		if (from != CAMPAIGN_DRAFT)
			return -1;
		next = CAMPAIGN_RUNNING;
		break;
	case CAMPAIGN_EV_PAUSE:
		if (from != CAMPAIGN_RUNNING)
			return -1;
		next = CAMPAIGN_PAUSED;
		break;
	case CAMPAIGN_EV_RESUME:
		if (from != CAMPAIGN_PAUSED)
			return -1;
		next = CAMPAIGN_RUNNING;
		break;
	case CAMPAIGN_EV_ABORT:
		if (from != CAMPAIGN_DRAFT && from != CAMPAIGN_RUNNING &&
		    from != CAMPAIGN_PAUSED)
			return -1;
		next = CAMPAIGN_ABORTED;
		break;
	case CAMPAIGN_EV_COMPLETE:
		if (from != CAMPAIGN_RUNNING)
			return -1;
		next = CAMPAIGN_COMPLETED;
		break;
	default:
		return -1;
	}
	*to = next;
	return 0;
}

bool
campaign_artifact_expired(int64_t expires_at, const char *artifact,
			  size_t phase, int64_t now,
			  struct campaign_decision *out)
{
	char when[40];

	if (expires_at <= 0 || now < expires_at)
		return false;
	clock_format_rfc3339((time_t)expires_at, when, sizeof(when));
	memset(out, 0, sizeof(*out));
	out->action = CAMPAIGN_ACT_PAUSE;
	out->phase = phase;
	snprintf(out->reason, sizeof(out->reason),
		 "artifact expired: %s expired at %s; agents refuse an "
		 "expired release, so nothing more is offered (upload a "
		 "newer release and start a new campaign)",
		 artifact != NULL ? artifact : "the campaign's artifact", when);
	return true;
}
