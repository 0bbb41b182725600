/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory store port for the report use cases (see fake_store_reports.h).
 * Single-threaded; bounded tables; follows the same contract as
 * db/reports.c: the window rule from core, the effect and the marked window
 * written together or not at all.
 */
#include "fake_store_reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_DEVICES 8
#define FAKE_KINDS 8

struct fake_report {
	char kind[32];
	uint64_t seq;
	char *body;
	int64_t applied;
};

struct fake_device {
	char id[40];
	bool active;
	bool hello_seen;
	struct device_hello hello; /* strings point into hello_text */
	char hello_text[7][256];
	struct report_window w;
	struct fake_report reports[FAKE_KINDS];
};

struct store {
	struct fake_device dev[FAKE_DEVICES];
	int ndev;
	int fail;
	bool failed;
};

struct store *
fake_store_new(void)
{
	return calloc(1, sizeof(struct store));
}

void
fake_store_free(struct store *st)
{
	int i, k;

	if (st == NULL)
		return;
	for (i = 0; i < st->ndev; i++)
		for (k = 0; k < FAKE_KINDS; k++)
			free(st->dev[i].reports[k].body);
	free(st);
}

void
fake_store_add_device(struct store *st, const char *id, bool active)
{
	struct fake_device *d = &st->dev[st->ndev++];

	strncpy(d->id, id, sizeof(d->id) - 1);
	d->active = active;
}

void
fake_store_fail_next(struct store *st, int n)
{
	st->fail = n;
}

bool
store_unavailable(struct store *st)
{
	return st->failed;
}

static struct fake_device *
find(struct store *st, const char *id)
{
	int i;

	for (i = 0; i < st->ndev; i++)
		if (strcmp(st->dev[i].id, id) == 0)
			return &st->dev[i];
	return NULL;
}

static struct fake_report *
find_kind(struct fake_device *d, const char *kind, bool create)
{
	int k;

	for (k = 0; k < FAKE_KINDS; k++)
		if (strcmp(d->reports[k].kind, kind) == 0)
			return &d->reports[k];
	if (!create)
		return NULL;
	for (k = 0; k < FAKE_KINDS; k++) {
		if (d->reports[k].kind[0] == '\0') {
			strncpy(d->reports[k].kind, kind,
				sizeof(d->reports[k].kind) - 1);
			return &d->reports[k];
		}
	}
	return NULL;
}

static bool
failing(struct store *st)
{
	st->failed = st->fail > 0;
	if (st->fail > 0)
		st->fail--;
	return st->failed;
}

enum store_rc
store_report_apply(struct store *st, const char *device_id,
		   const struct report *r, enum report_verdict *verdict)
{
	struct fake_device *d;
	struct fake_report *fr;
	enum report_verdict v;

	if (failing(st))
		return STORE_ERR;
	d = find(st, device_id);
	if (d == NULL || !d->active)
		return STORE_NOTFOUND;
	v = report_window_check(&d->w, r->seq);
	if (v == REPORT_NEW) {
		fr = find_kind(d, r->kind, true);
		if (fr == NULL)
			return STORE_ERR;
		fr->applied++;
		if (r->seq > fr->seq) {
			free(fr->body);
			fr->body = strdup(r->body);
			fr->seq = r->seq;
		}
		report_window_mark(&d->w, r->seq);
	}
	*verdict = v;
	return STORE_OK;
}

enum store_rc
store_device_hello(struct store *st, const char *device_id,
		   const struct device_hello *h)
{
	struct fake_device *d;

	if (failing(st))
		return STORE_ERR;
	d = find(st, device_id);
	if (d != NULL && d->active) {
		const char *in[7] = {h->agent_version, h->fw_version,
				     h->model,	       h->boot_id,
				     h->addresses,     h->config_hash,
				     h->inventory};
		const char *out[7];

		/* keep copies: the caller's strings go after the call */
		for (int i = 0; i < 7; i++) {
			out[i] = NULL;
			if (in[i] != NULL) {
				snprintf(d->hello_text[i],
					 sizeof(d->hello_text[i]), "%s", in[i]);
				out[i] = d->hello_text[i];
			}
		}
		d->hello = *h;
		d->hello.agent_version = out[0];
		d->hello.fw_version = out[1];
		d->hello.model = out[2];
		d->hello.boot_id = out[3];
		d->hello.addresses = out[4];
		d->hello.config_hash = out[5];
		d->hello.inventory = out[6];
		d->hello_seen = true;
	}
	return STORE_OK;
}

int64_t
fake_store_applied(struct store *st, const char *id, const char *kind,
		   uint64_t *seq, const char **body)
{
	struct fake_device *d = find(st, id);
	struct fake_report *fr = d != NULL ? find_kind(d, kind, false) : NULL;

	if (fr == NULL)
		return 0;
	if (seq != NULL)
		*seq = fr->seq;
	if (body != NULL)
		*body = fr->body;
	return fr->applied;
}

const struct device_hello *
fake_store_hello(struct store *st, const char *id)
{
	struct fake_device *d = find(st, id);

	return d != NULL && d->hello_seen ? &d->hello : NULL;
}
