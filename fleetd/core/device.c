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
	free(d->address);
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

/* The UUID layout: dashes at 8, 13, 18, 23; hex digits elsewhere. */
static bool
uuid_dash_at(size_t i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

int
device_ref_parse(const char *text, char lo[DEVICE_ID_LEN],
		 char hi[DEVICE_ID_LEN], bool *full)
{
	size_t i, n = strlen(text);
	char c;

	if (n < DEVICE_ID_PREFIX_MIN || n > DEVICE_ID_LEN - 1)
		return -1;
	for (i = 0; i < DEVICE_ID_LEN - 1; i++) {
		if (i < n) {
			c = text[i];
			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (uuid_dash_at(i) ? c != '-'
					    : !((c >= '0' && c <= '9') ||
						(c >= 'a' && c <= 'f')))
				return -1;
			lo[i] = hi[i] = c;
		} else {
			lo[i] = uuid_dash_at(i) ? '-' : '0';
			hi[i] = uuid_dash_at(i) ? '-' : 'f';
		}
	}
	lo[DEVICE_ID_LEN - 1] = hi[DEVICE_ID_LEN - 1] = '\0';
	*full = n == DEVICE_ID_LEN - 1;
	return 0;
}

int
device_sort_parse(const char *text, struct device_sort *out)
{
	static const struct {
		const char *name;
		enum device_sort_key key;
	} keys[] = {
		{"created", DEVICE_SORT_CREATED},
		{"last_seen", DEVICE_SORT_LAST_SEEN},
		{"cert_expiry", DEVICE_SORT_CERT_EXPIRY},
	};
	bool desc = text[0] == '-';
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(text + (desc ? 1 : 0), keys[i].name) == 0) {
			out->key = keys[i].key;
			out->desc = desc;
			return 0;
		}
	}
	return -1;
}
