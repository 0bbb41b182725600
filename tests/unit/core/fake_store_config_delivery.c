/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory configuration delivery store (see the header). The report
 * window is fake_store_reports.c's store_report_apply, so a config.status
 * is applied once per seq exactly as other reports are; the rule is
 * core's config_report_check, as in db/config_delivery.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_reports.h"
#include "fake_store_config_delivery.h"

#define FAKE_CFG_DEVICES 16

struct fake_cfg {
	char id[37];
	int64_t desired_gen;
	char desired_sha[65];
	char *document;
	bool reported;
	int64_t gen;
	uint64_t seq;
	char sha[65];
	char status[16];
	char reason[1025];
	int64_t ignored;
};

static struct fake_cfg devices[FAKE_CFG_DEVICES];

static struct fake_cfg *
find(const char *id, bool create)
{
	for (int i = 0; i < FAKE_CFG_DEVICES; i++) {
		if (strcmp(devices[i].id, id) == 0)
			return &devices[i];
	}
	if (!create)
		return NULL;
	for (int i = 0; i < FAKE_CFG_DEVICES; i++) {
		if (devices[i].id[0] == '\0') {
			memcpy(devices[i].id, id, 36);
			return &devices[i];
		}
	}
	return NULL;
}

void
fake_cfg_reset(void)
{
	for (int i = 0; i < FAKE_CFG_DEVICES; i++)
		free(devices[i].document);
	memset(devices, 0, sizeof(devices));
}

void
fake_cfg_set_desired(const char *id, int64_t generation, const char *sha256,
		     const char *document)
{
	struct fake_cfg *d = find(id, true);

	if (d == NULL)
		return;
	d->desired_gen = generation;
	memcpy(d->desired_sha, sha256, 64);
	free(d->document);
	d->document = document != NULL ? strdup(document) : NULL;
}

bool
fake_cfg_reported(const char *id, int64_t *generation, const char **sha256,
		  const char **status, const char **reason)
{
	struct fake_cfg *d = find(id, false);

	if (d == NULL || !d->reported)
		return false;
	*generation = d->gen;
	*sha256 = d->sha;
	*status = d->status;
	*reason = d->reason;
	return true;
}

int64_t
fake_cfg_ignored(const char *id)
{
	struct fake_cfg *d = find(id, false);

	return d != NULL ? d->ignored : 0;
}

static int
by_id(const void *a, const void *b)
{
	return strcmp(((const struct config_pending *)a)->device_id,
		      ((const struct config_pending *)b)->device_id);
}

enum store_rc
store_config_pending(struct store *st, const char *const *ids, size_t n,
		     struct config_pending **out, size_t *nout)
{
	struct config_pending *list = calloc(n + 1, sizeof(*list));
	size_t count = 0;

	(void)st;
	if (list == NULL)
		return STORE_ERR;
	for (size_t i = 0; i < n; i++) {
		struct fake_cfg *d = find(ids[i], false);

		if (d == NULL || d->document == NULL || d->desired_gen <= 0)
			continue;
		if (d->reported && d->gen == d->desired_gen &&
		    strcmp(d->sha, d->desired_sha) == 0 &&
		    strcmp(d->status, "applied") == 0)
			continue;
		memcpy(list[count].device_id, d->id, 37);
		list[count].generation = d->desired_gen;
		memcpy(list[count].sha256, d->desired_sha, 65);
		list[count].document = strdup(d->document);
		count++;
	}
	qsort(list, count, sizeof(*list), by_id);
	if (count == 0) {
		free(list);
		list = NULL;
	}
	*out = list;
	*nout = count;
	return STORE_OK;
}

void
config_pending_free(struct config_pending *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].document);
	free(list);
}

enum store_rc
store_config_report_apply(struct store *st, const char *device_id,
			  const struct report *r,
			  const struct config_status *status,
			  enum report_verdict *verdict,
			  enum config_report_verdict *cv)
{
	struct config_desired_state des = {0, NULL};
	struct config_reported_state rep = {false, 0, 0};
	struct fake_cfg *d;
	enum store_rc rc;

	rc = store_report_apply(st, device_id, r, verdict);
	*cv = CONFIG_REPORT_ACCEPT;
	if (rc != STORE_OK || *verdict != REPORT_NEW)
		return rc;
	d = find(device_id, true);
	if (d == NULL)
		return STORE_ERR;
	des.generation = d->desired_gen;
	des.sha256 = d->desired_sha[0] != '\0' ? d->desired_sha : NULL;
	rep.present = d->reported;
	rep.generation = d->gen;
	rep.seq = d->seq;
	*cv = config_report_check(&des, &rep, status, r->seq);
	if (*cv != CONFIG_REPORT_ACCEPT) {
		d->ignored++;
		return STORE_OK;
	}
	d->reported = true;
	d->gen = status->generation;
	d->seq = r->seq;
	snprintf(d->sha, sizeof(d->sha), "%s", status->sha256);
	snprintf(d->status, sizeof(d->status), "%s", status->state);
	snprintf(d->reason, sizeof(d->reason), "%s",
		 status->reason != NULL ? status->reason : "");
	return STORE_OK;
}
