/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaign definitions and counts as JSON: see campaign_json.h. The
 * phases go through campaign_phases_parse and the window through
 * campaign_window_parse, so the API, the stored form and fleetctl's
 * flags obey one set of rules.
 */
#include "core/campaign_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECONDS (366L * 86400) /* a soak or window of a year at most */
#define MAX_MIN_FINISHED 10000000
#define MAX_CONCURRENT 10000000

static const struct campaign_gate default_gate = {
	.min_success = 0.9,
	.soak_s = 0,
	.max_failure = 0.1,
	.min_finished = 1,
	.health_window_s = 600,
};

static int
fail(char *err, size_t errlen, const char *what, const char *why)
{
	snprintf(err, errlen, "%s: %s", what, why);
	return -1;
}

static int
read_share(const json_t *v, const char *what, double *out, char *err,
	   size_t errlen)
{
	double d;

	if (!json_is_number(v))
		return fail(err, errlen, what, "a number from 0 to 1");
	d = json_number_value(v);
	if (!(d >= 0.0 && d <= 1.0))
		return fail(err, errlen, what, "a number from 0 to 1");
	*out = d;
	return 0;
}

static int
read_count(const json_t *v, const char *what, json_int_t max, json_int_t *out,
	   char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > max) {
		snprintf(err, errlen, "%s: a whole number from 0 to %lld", what,
			 (long long)max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* Members of a gate object over *g; what names it in messages. */
static int
read_gate(json_t *obj, const char *what, struct campaign_gate *g, char *err,
	  size_t errlen)
{
	const char *key;
	json_t *v;
	json_int_t n;
	char name[96];

	if (!json_is_object(obj))
		return fail(err, errlen, what, "an object");
	json_object_foreach(obj, key, v)
	{
		snprintf(name, sizeof(name), "%s.%s", what, key);
		if (strcmp(key, "min_success") == 0) {
			if (read_share(v, name, &g->min_success, err, errlen))
				return -1;
		} else if (strcmp(key, "max_failure") == 0) {
			if (read_share(v, name, &g->max_failure, err, errlen))
				return -1;
		} else if (strcmp(key, "soak_seconds") == 0) {
			if (read_count(v, name, MAX_SECONDS, &n, err, errlen))
				return -1;
			g->soak_s = n;
		} else if (strcmp(key, "health_window_seconds") == 0) {
			if (read_count(v, name, MAX_SECONDS, &n, err, errlen))
				return -1;
			g->health_window_s = n;
		} else if (strcmp(key, "min_finished") == 0) {
			if (read_count(v, name, MAX_MIN_FINISHED, &n, err,
				       errlen))
				return -1;
			g->min_finished = (uint32_t)n;
		} else {
			return fail(err, errlen, name, "unknown member");
		}
	}
	return 0;
}

/* The phases as campaign_phases_parse's text: a string as it is, or an
 * array of numbers ("all" allowed) joined by commas. */
static int
phases_text(const json_t *v, char *text, size_t cap, char *err, size_t errlen)
{
	size_t i, len = 0;
	json_t *e;
	int n;

	if (json_is_string(v)) {
		if (json_string_length(v) >= cap)
			return fail(err, errlen, "phases", "too long");
		snprintf(text, cap, "%s", json_string_value(v));
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > CAMPAIGN_MAX_PHASES)
		return fail(err, errlen, "phases",
			    "an array of 1 to 16 cumulative values");
	text[0] = '\0';
	json_array_foreach(v, i, e)
	{
		if (json_is_integer(e) && json_integer_value(e) >= 0 &&
		    json_integer_value(e) <= 100000000)
			n = snprintf(text + len, cap - len, "%s%lld",
				     i ? "," : "",
				     (long long)json_integer_value(e));
		else if (json_is_string(e) &&
			 strcmp(json_string_value(e), "all") == 0)
			n = snprintf(text + len, cap - len, "%sall",
				     i ? "," : "");
		else
			return fail(err, errlen, "phases",
				    "whole numbers (or \"all\" last)");
		if (n < 0 || (size_t)n >= cap - len)
			return fail(err, errlen, "phases", "too long");
		len += (size_t)n;
	}
	return 0;
}

/* "8-17" as it is, or [8, 9, ..., 17] as a mask. */
static int
read_hours(const json_t *v, struct campaign_window *w, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (!json_is_integer(e) || json_integer_value(e) < 0 ||
			    json_integer_value(e) > 23)
				return fail(err, errlen, "window.hours",
					    "hours from 0 to 23");
			w->hours |= 1u << json_integer_value(e);
		}
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, errlen, "window.hours",
			    "\"H-H\" or an array of hours");
	{
		struct campaign_window tmp;

		if (campaign_window_parse(json_string_value(v), NULL, &tmp, err,
					  errlen) != 0)
			return -1;
		w->hours = tmp.hours;
	}
	return 0;
}

/* "mon-fri" as it is, or [1, ..., 5] (0 = Sunday) as a mask. */
static int
read_weekdays(const json_t *v, struct campaign_window *w, char *err,
	      size_t errlen)
{
	size_t i;
	json_t *e;

	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (!json_is_integer(e) || json_integer_value(e) < 0 ||
			    json_integer_value(e) > 6)
				return fail(err, errlen, "window.weekdays",
					    "days from 0 (Sunday) to 6");
			w->weekdays |= (uint8_t)(1u << json_integer_value(e));
		}
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, errlen, "window.weekdays",
			    "\"mon-fri\" or an array of days");
	{
		struct campaign_window tmp;

		if (campaign_window_parse(NULL, json_string_value(v), &tmp, err,
					  errlen) != 0)
			return -1;
		w->weekdays = tmp.weekdays;
	}
	return 0;
}

static int
read_window(json_t *obj, struct campaign_window *w, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	memset(w, 0, sizeof(*w));
	if (json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return fail(err, errlen, "window", "an object");
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "hours") == 0) {
			if (read_hours(v, w, err, errlen) != 0)
				return -1;
		} else if (strcmp(key, "weekdays") == 0) {
			if (read_weekdays(v, w, err, errlen) != 0)
				return -1;
		} else {
			snprintf(err, errlen, "window.%s: unknown member", key);
			return -1;
		}
	}
	return 0;
}

int
campaign_def_from_json(const json_t *body, struct campaign_def *def, char *err,
		       size_t errlen)
{
	struct campaign_gate gate = default_gate;
	json_t *v, *gates;
	char text[16 * 12];
	bool absolute = false;
	json_int_t n;
	size_t i;

	memset(def, 0, sizeof(*def));
	if (!json_is_object(body))
		return fail(err, errlen, "definition", "an object");
	v = json_object_get(body, "unit");
	if (v != NULL) {
		if (!json_is_string(v) ||
		    (strcmp(json_string_value(v), "percent") != 0 &&
		     strcmp(json_string_value(v), "devices") != 0))
			return fail(err, errlen, "unit",
				    "\"percent\" or \"devices\"");
		absolute = strcmp(json_string_value(v), "devices") == 0;
	}
	v = json_object_get(body, "gate");
	if (v != NULL && read_gate(v, "gate", &gate, err, errlen) != 0)
		return -1;
	v = json_object_get(body, "phases");
	if (v == NULL)
		return fail(err, errlen, "phases", "required");
	if (phases_text(v, text, sizeof(text), err, errlen) != 0 ||
	    campaign_phases_parse(text, absolute, &gate, def, err, errlen) != 0)
		return -1;
	gates = json_object_get(body, "gates");
	if (gates != NULL) {
		if (!json_is_array(gates) ||
		    json_array_size(gates) != def->n_phases)
			return fail(err, errlen, "gates",
				    "an array of one object per phase");
		for (i = 0; i < def->n_phases; i++) {
			char what[32];

			snprintf(what, sizeof(what), "gates[%zu]", i);
			if (read_gate(json_array_get(gates, i), what,
				      &def->phases[i].gate, err, errlen) != 0)
				return -1;
		}
	}
	v = json_object_get(body, "window");
	if (v != NULL && read_window(v, &def->window, err, errlen) != 0)
		return -1;
	v = json_object_get(body, "max_concurrent");
	if (v != NULL) {
		if (read_count(v, "max_concurrent", MAX_CONCURRENT, &n, err,
			       errlen) != 0)
			return -1;
		def->max_concurrent = (uint32_t)n;
	}
	return campaign_def_check(def, err, errlen);
}

static json_t *
mask_array(uint32_t mask, int top)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a != NULL && i <= top; i++)
		if (mask & (1u << i))
			json_array_append_new(a, json_integer(i));
	return a;
}

static json_t *
gate_json(const struct campaign_gate *g)
{
	return json_pack("{s:f, s:I, s:f, s:I, s:I}", "min_success",
			 g->min_success, "soak_seconds", (json_int_t)g->soak_s,
			 "max_failure", g->max_failure, "min_finished",
			 (json_int_t)g->min_finished, "health_window_seconds",
			 (json_int_t)g->health_window_s);
}

char *
campaign_def_to_json(const struct campaign_def *def)
{
	json_t *doc, *phases, *gates;
	char *text = NULL;
	size_t i;

	doc = json_object();
	phases = json_array();
	gates = json_array();
	if (doc == NULL || phases == NULL || gates == NULL)
		goto out;
	for (i = 0; i < def->n_phases; i++) {
		const struct campaign_phase *ph = &def->phases[i];

		json_array_append_new(phases,
				      ph->value == CAMPAIGN_ALL && ph->absolute
					      ? json_string("all")
					      : json_integer(ph->value));
		json_array_append_new(gates, gate_json(&ph->gate));
	}
	json_object_set(doc, "phases", phases);
	json_object_set(doc, "gates", gates);
	json_object_set_new(
		doc, "unit",
		json_string(def->n_phases > 0 && def->phases[0].absolute
				    ? "devices"
				    : "percent"));
	json_object_set_new(doc, "window",
			    json_pack("{s:o, s:o}", "hours",
				      mask_array(def->window.hours, 23),
				      "weekdays",
				      mask_array(def->window.weekdays, 6)));
	json_object_set_new(doc, "max_concurrent",
			    json_integer(def->max_concurrent));
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(phases);
	json_decref(gates);
	json_decref(doc);
	return text;
}

static uint32_t
admitted(const struct campaign_counts *c)
{
	return c->offered + c->in_progress + c->succeeded + c->failed +
	       c->silent + c->rolled_back;
}

void
campaign_counts_fill(const struct campaign_def *def,
		     struct campaign_counts *counts)
{
	size_t p;

	for (p = 0; p < def->n_phases; p++)
		counts[p].total = counts[p].pending + admitted(&counts[p]);
}

json_t *
campaign_counts_to_json(size_t phase, const struct campaign_counts *c)
{
	uint32_t failures = c->failed + c->silent + c->rolled_back;
	uint32_t finished = failures + c->succeeded;
	json_t *o;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
		      "devices", (json_int_t)c->total, "pending",
		      (json_int_t)c->pending, "offered", (json_int_t)c->offered,
		      "in_progress", (json_int_t)c->in_progress, "succeeded",
		      (json_int_t)c->succeeded, "failed", (json_int_t)c->failed,
		      "silent", (json_int_t)c->silent, "rolled_back",
		      (json_int_t)c->rolled_back, "finished",
		      (json_int_t)finished, "failure_share",
		      finished ? (double)failures / finished : 0.0);
	if (o != NULL && phase != SIZE_MAX)
		json_object_set_new(o, "phase", json_integer(phase + 1));
	return o;
}
