/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device rules on plain structs (see device.h): presence and label
 * patches. Pure code, no I/O; runs wherever core runs. The operations
 * that go through the store are in device_ops.c.
 */
#include "core/device.h"

#include <stdlib.h>
#include <string.h>

#include "core/selector.h"

void
device_clear(struct device *d)
{
	if (d == NULL)
		return;
	label_set_clear(&d->labels);
	free(d->model);
	free(d->serial);
	free(d->fw_version);
	free(d->agent_version);
	free(d->inventory_json);
	memset(d, 0, sizeof(*d));
}

void
devices_free(struct device *d, size_t n)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < n; i++)
		device_clear(&d[i]);
	free(d);
}

bool
device_online(int64_t session_age_us, long heartbeat_timeout_s)
{
	/* Must agree with DB_DEVICE_ONLINE_SQL in db/devices.c:
	 * last_seen > now() - timeout  <=>  now() - last_seen < timeout. */
	return session_age_us >= 0 &&
	       session_age_us < (int64_t)heartbeat_timeout_s * 1000000;
}

enum label_rc
label_patch_remove(struct label_patch *p, const char *key)
{
	char **r, *k;

	if (!selector_key_valid(key, strlen(key)))
		return LABEL_ERR_KEY;
	if (p->nremove >= LABELS_MAX)
		return LABEL_ERR_TOO_MANY;
	k = strdup(key);
	if (k == NULL)
		return LABEL_ERR_NOMEM;
	r = realloc(p->remove, (p->nremove + 1) * sizeof(*r));
	if (r == NULL) {
		free(k);
		return LABEL_ERR_NOMEM;
	}
	p->remove = r;
	p->remove[p->nremove++] = k;
	return LABEL_OK;
}

void
label_patch_clear(struct label_patch *p)
{
	size_t i;

	if (p == NULL)
		return;
	label_set_clear(&p->set);
	for (i = 0; i < p->nremove; i++)
		free(p->remove[i]);
	free(p->remove);
	p->remove = NULL;
	p->nremove = 0;
}

static bool
removed(const struct label_patch *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->nremove; i++)
		if (strcmp(p->remove[i], key) == 0)
			return true;
	return false;
}

/* Appends key=value to set, which has room (no checks, no lookup). */
static enum label_rc
append(struct label_set *set, const char *key, const char *value)
{
	struct label *l = &set->items[set->n];

	l->key = strdup(key);
	l->value = strdup(value);
	if (l->key == NULL || l->value == NULL) {
		free(l->key);
		free(l->value);
		return LABEL_ERR_NOMEM;
	}
	set->n++;
	return LABEL_OK;
}

enum label_rc
device_labels_apply(const struct label_set *cur, const struct label_patch *p,
		    struct label_set *out)
{
	struct label_set next = {0, NULL};
	enum label_rc rc = LABEL_OK;
	size_t i, j, limit;

	/* An enrollment may have merged more than LABELS_MAX labels (token
	 * and request); a patch may not grow such a set, nor any set past
	 * LABELS_MAX. */
	limit = cur->n > LABELS_MAX ? cur->n : LABELS_MAX;
	next.items = calloc(cur->n + p->set.n + 1, sizeof(*next.items));
	if (next.items == NULL)
		return LABEL_ERR_NOMEM;
	for (i = 0; rc == LABEL_OK && i < cur->n; i++) {
		if (removed(p, cur->items[i].key) ||
		    label_set_get(&p->set, cur->items[i].key) != NULL)
			continue;
		rc = append(&next, cur->items[i].key, cur->items[i].value);
	}
	for (j = 0; rc == LABEL_OK && j < p->set.n; j++)
		rc = append(&next, p->set.items[j].key, p->set.items[j].value);
	if (rc == LABEL_OK && next.n > limit)
		rc = LABEL_ERR_TOO_MANY;
	if (rc != LABEL_OK) {
		label_set_clear(&next);
		return rc;
	}
	*out = next;
	return LABEL_OK;
}
