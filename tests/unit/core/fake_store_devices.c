/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory store and signer of fake_store_devices.h. Each function
 * is atomic trivially (one thread, no I/O) and keeps the contracts of the
 * port: out-parameters only on STORE_OK, audit rows with mutations.
 */
#include "fake_store_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/signer_port.h"

void
fake_store_init(struct store *st)
{
	memset(st, 0, sizeof(*st));
	st->now = 1700000000;
	st->generation = 1;
}

void
fake_store_clear(struct store *st)
{
	size_t i;

	for (i = 0; i < st->ndevices; i++)
		device_clear(&st->devices[i]);
	crl_cached_clear(&st->crl);
	memset(st, 0, sizeof(*st));
}

struct device *
fake_store_add(struct store *st, const char *id, const char *serial)
{
	struct device *d = &st->devices[st->ndevices++];

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->active = true;
	d->revision = 1;
	d->session_age_us = -1;
	d->created_at = st->now;
	if (serial != NULL) {
		struct fake_cert *c = &st->certs[st->ncerts++];

		memset(c, 0, sizeof(*c));
		snprintf(c->serial, sizeof(c->serial), "%s", serial);
		snprintf(c->device_id, sizeof(c->device_id), "%s", id);
		snprintf(d->cert.serial, sizeof(d->cert.serial), "%s", serial);
		snprintf(d->cert.status, sizeof(d->cert.status), "active");
	}
	return d;
}

void
fake_store_revoke(struct store *st, const char *device_id)
{
	size_t i;

	for (i = 0; i < st->ncerts; i++) {
		if (strcmp(st->certs[i].device_id, device_id) != 0 ||
		    st->certs[i].revoked)
			continue;
		st->certs[i].revoked = true;
		st->certs[i].revoked_at = st->now;
		st->certs[i].reason = 5;
	}
	st->generation++;
}

bool
store_unavailable(struct store *st)
{
	return st->unavailable;
}

static struct device *
find(struct store *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->ndevices; i++)
		if (strcmp(st->devices[i].id, id) == 0)
			return &st->devices[i];
	return NULL;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
copy_device(const struct device *src, struct device *out)
{
	*out = *src;
	out->labels.n = 0;
	out->labels.items = NULL;
	out->model = dup_or_null(src->model);
	out->serial = dup_or_null(src->serial);
	out->fw_version = dup_or_null(src->fw_version);
	out->agent_version = dup_or_null(src->agent_version);
	out->inventory_json = dup_or_null(src->inventory_json);
	out->address = dup_or_null(src->address);
	return label_set_copy(&src->labels, &out->labels) == LABEL_OK ? 0 : -1;
}

enum store_rc
store_device_get(struct store *st, const char *id, struct device *out)
{
	struct device *d;

	if (st->fail)
		return STORE_ERR;
	d = find(st, id);
	if (d == NULL)
		return STORE_NOTFOUND;
	return copy_device(d, out) == 0 ? STORE_OK : STORE_ERR;
}

enum store_rc
store_device_list(struct store *st, const struct selector *sel,
		  long heartbeat_timeout_s, const struct device_sort *sort,
		  const struct page *page, struct device **items, size_t *n,
		  char next[PAGE_CURSOR_MAX], int64_t count_max, int64_t *total)
{
	struct selector_target t;
	struct device *list;
	size_t i, count = 0;

	(void)page;
	(void)sort;
	(void)count_max; /* exact: the fake's fleets are small */
	if (st->fail)
		return STORE_ERR;
	list = calloc(st->ndevices + 1, sizeof(*list));
	if (list == NULL)
		return STORE_ERR;
	for (i = 0; i < st->ndevices; i++) {
		const struct device *d = &st->devices[i];

		t.id = d->id;
		t.model = d->model;
		t.fw_version = d->fw_version;
		t.status = d->active ? "active" : "decommissioned";
		t.online =
			device_online(d->session_age_us, heartbeat_timeout_s);
		t.labels = &d->labels;
		if (selector_match(sel, &t) &&
		    copy_device(d, &list[count]) == 0)
			count++;
	}
	next[0] = '\0';
	*items = list;
	*n = count;
	if (total != NULL)
		*total = (int64_t)count;
	return STORE_OK;
}

enum store_rc
store_device_ids_between(struct store *st, const char *lo, const char *hi,
			 size_t max, char (*ids)[DEVICE_ID_LEN], size_t *n,
			 bool *more)
{
	size_t i, k = 0;

	if (st->fail)
		return STORE_ERR;
	*more = false;
	/* The fake's ids are added in order in the tests. */
	for (i = 0; i < st->ndevices; i++) {
		if (strcmp(st->devices[i].id, lo) < 0 ||
		    strcmp(st->devices[i].id, hi) > 0)
			continue;
		if (k == max) {
			*more = true;
			break;
		}
		memcpy(ids[k++], st->devices[i].id, DEVICE_ID_LEN);
	}
	*n = k;
	return STORE_OK;
}

static void audit(struct store *st, const char *actor, const char *action);

/* The devices sel matches, as indexes into st->devices. */
static size_t
bulk_match(struct store *st, const struct selector *sel, long hb,
	   size_t idx[FAKE_MAX_DEVICES])
{
	struct selector_target t;
	size_t i, k = 0;

	for (i = 0; i < st->ndevices; i++) {
		const struct device *d = &st->devices[i];

		t.id = d->id;
		t.model = d->model;
		t.fw_version = d->fw_version;
		t.status = d->active ? "active" : "decommissioned";
		t.online = device_online(d->session_age_us, hb);
		t.labels = &d->labels;
		if (selector_match(sel, &t))
			idx[k++] = i;
	}
	return k;
}

static void
bulk_fill(struct store *st, const size_t *idx, size_t k,
	  struct device_bulk_result *out)
{
	size_t i;

	out->matched = (int64_t)k;
	for (i = 0; i < k && i < DEVICE_BULK_SAMPLE; i++)
		memcpy(out->sample[i], st->devices[idx[i]].id, DEVICE_ID_LEN);
	out->nsample = i;
}

enum store_rc
store_device_bulk_preview(struct store *st, const struct selector *sel,
			  long heartbeat_timeout_s,
			  struct device_bulk_result *out)
{
	size_t idx[FAKE_MAX_DEVICES];

	if (st->fail)
		return STORE_ERR;
	bulk_fill(st, idx, bulk_match(st, sel, heartbeat_timeout_s, idx), out);
	return STORE_OK;
}

enum store_rc
store_device_bulk_label(struct store *st, const struct selector *sel,
			long heartbeat_timeout_s, const char *selector_text,
			const struct label_patch *patch, size_t labels_max,
			const char *actor, struct device_bulk_result *out)
{
	size_t idx[FAKE_MAX_DEVICES], i, k;
	struct label_set next[FAKE_MAX_DEVICES];

	(void)selector_text;
	(void)labels_max; /* device_labels_apply holds the same rule */
	if (st->fail)
		return STORE_ERR;
	k = bulk_match(st, sel, heartbeat_timeout_s, idx);
	memset(next, 0, sizeof(next));
	for (i = 0; i < k; i++) {
		if (device_labels_apply(&st->devices[idx[i]].labels, patch,
					&next[i]) != LABEL_OK) {
			memcpy(out->blocked, st->devices[idx[i]].id,
			       DEVICE_ID_LEN);
			while (i-- > 0)
				label_set_clear(&next[i]);
			return STORE_CONFLICT;
		}
	}
	for (i = 0; i < k; i++) {
		label_set_clear(&st->devices[idx[i]].labels);
		st->devices[idx[i]].labels = next[i];
		st->devices[idx[i]].revision++;
	}
	bulk_fill(st, idx, k, out);
	audit(st, actor, "device.bulk_label");
	return STORE_OK;
}

enum store_rc
store_device_bulk_decommission(struct store *st, const struct selector *sel,
			       long heartbeat_timeout_s,
			       const char *selector_text, int reason,
			       const char *actor,
			       struct device_bulk_result *out)
{
	size_t idx[FAKE_MAX_DEVICES], i, j, k;

	(void)selector_text;
	if (st->fail)
		return STORE_ERR;
	k = bulk_match(st, sel, heartbeat_timeout_s, idx);
	for (i = 0; i < k; i++) {
		struct device *d = &st->devices[idx[i]];

		d->active = false;
		d->decommissioned_at = st->now;
		d->revision++;
		for (j = 0; j < st->ncerts; j++) {
			if (strcmp(st->certs[j].device_id, d->id) != 0 ||
			    st->certs[j].revoked)
				continue;
			st->certs[j].revoked = true;
			st->certs[j].revoked_at = st->now;
			st->certs[j].reason = reason;
			out->revoked++;
		}
	}
	st->generation++;
	bulk_fill(st, idx, k, out);
	audit(st, actor, "device.bulk_decommission");
	return STORE_OK;
}

static void
audit(struct store *st, const char *actor, const char *action)
{
	st->audits++;
	snprintf(st->last_action, sizeof(st->last_action), "%s", action);
	snprintf(st->last_actor, sizeof(st->last_actor), "%s", actor);
}

enum store_rc
store_device_set_labels(struct store *st, const char *id, int64_t revision,
			const struct label_set *labels,
			const struct label_patch *patch, const char *actor)
{
	struct device *d;
	struct label_set copy = {0, NULL};

	(void)patch;
	if (st->fail)
		return STORE_ERR;
	d = find(st, id);
	if (d == NULL)
		return STORE_NOTFOUND;
	if (st->concurrent_writes > 0) {
		st->concurrent_writes--;
		label_set_put(&d->labels, "writer", "other");
		d->revision++;
	}
	if (!d->active)
		return STORE_CONFLICT;
	if (d->revision != revision)
		return STORE_PRECONDITION;
	if (label_set_copy(labels, &copy) != LABEL_OK)
		return STORE_ERR;
	label_set_clear(&d->labels);
	d->labels = copy;
	d->revision++;
	audit(st, actor, "device.update");
	return STORE_OK;
}

enum store_rc
store_device_decommission(struct store *st, const char *id, int64_t if_match,
			  int reason, const char *actor)
{
	struct device *d;
	size_t i;

	if (st->fail)
		return STORE_ERR;
	d = find(st, id);
	if (d == NULL)
		return STORE_NOTFOUND;
	if (!d->active)
		return STORE_CONFLICT;
	if (if_match >= 0 && d->revision != if_match)
		return STORE_PRECONDITION;
	d->active = false;
	d->decommissioned_at = st->now;
	d->revision++;
	for (i = 0; i < st->ncerts; i++) {
		if (strcmp(st->certs[i].device_id, id) != 0 ||
		    st->certs[i].revoked)
			continue;
		st->certs[i].revoked = true;
		st->certs[i].revoked_at = st->now;
		st->certs[i].reason = reason;
		if (strcmp(d->cert.serial, st->certs[i].serial) == 0)
			snprintf(d->cert.status, sizeof(d->cert.status),
				 "revoked");
	}
	st->generation++;
	audit(st, actor, "device.decommission");
	return STORE_OK;
}

enum store_rc
store_crl_cached(struct store *st, struct crl_cached *out, int64_t *generation,
		 int64_t *now)
{
	struct crl_cached c = st->crl;

	if (st->fail)
		return STORE_ERR;
	if (c.der != NULL) {
		c.der = malloc(c.len);
		if (c.der == NULL)
			return STORE_ERR;
		memcpy(c.der, st->crl.der, c.len);
	}
	*out = c;
	*generation = st->generation;
	*now = st->now;
	return STORE_OK;
}

enum store_rc
store_crl_snapshot(struct store *st, struct crl_entry **entries, size_t *n,
		   int64_t *generation, uint64_t *number)
{
	struct crl_entry *list;
	size_t i, k = 0;
	void (*hook)(struct store *) = st->after_snapshot;

	if (st->fail)
		return STORE_ERR;
	list = calloc(st->ncerts + 1, sizeof(*list));
	if (list == NULL)
		return STORE_ERR;
	for (i = 0; i < st->ncerts; i++) {
		if (!st->certs[i].revoked)
			continue;
		snprintf(list[k].serial, sizeof(list[k].serial), "%s",
			 st->certs[i].serial);
		list[k].revoked_at = st->certs[i].revoked_at;
		list[k].reason = st->certs[i].reason;
		k++;
	}
	*entries = list;
	*n = k;
	*generation = st->generation;
	*number = ++st->last_number;
	st->after_snapshot = NULL;
	if (hook != NULL)
		hook(st);
	return STORE_OK;
}

enum store_rc
store_crl_save(struct store *st, uint64_t number, int64_t generation,
	       const unsigned char *der, size_t len, long validity_s)
{
	unsigned char *copy;

	if (st->fail)
		return STORE_ERR;
	if (st->crl.der != NULL && st->crl.number > number)
		return STORE_CONFLICT;
	copy = malloc(len);
	if (copy == NULL)
		return STORE_ERR;
	memcpy(copy, der, len);
	crl_cached_clear(&st->crl);
	st->crl.der = copy;
	st->crl.len = len;
	st->crl.number = number;
	st->crl.generation = generation;
	st->crl.next_update = st->now + validity_s;
	return STORE_OK;
}

enum store_rc
store_crl_lock(struct store *st)
{
	if (st->fail)
		return STORE_ERR;
	if (st->locked)
		return STORE_ERR; /* a second holder: a bug in core */
	st->locked = true;
	return STORE_OK;
}

void
store_crl_unlock(struct store *st)
{
	st->locked = false;
}

/* "CRL <number>:<serial>,<serial>," as the fake's DER. */
enum signer_status
signer_sign_crl(struct signer_client *sc, const struct signer_revoked *revoked,
		size_t n, uint64_t crl_number, long next_update_s,
		unsigned char **out_der, size_t *out_len, char *err,
		size_t errlen)
{
	char *text;
	size_t i, cap = 64 + n * (CERT_SERIAL_MAX + 1), len;

	(void)next_update_s;
	sc->crl_calls++;
	if (sc->down) {
		snprintf(err, errlen, "ca down");
		return SIGNER_UNAVAILABLE;
	}
	text = malloc(cap);
	if (text == NULL)
		return SIGNER_UNAVAILABLE;
	len = (size_t)snprintf(text, cap,
			       "CRL %llu:", (unsigned long long)crl_number);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s,",
					revoked[i].serial);
	*out_der = (unsigned char *)text;
	*out_len = len + 1; /* with the NUL, so tests can read it */
	return SIGNER_OK;
}

enum signer_status
signer_issue_device(struct signer_client *sc, const char *csr_pem,
		    size_t csr_len, const char *device_id, long validity_s,
		    struct signer_issued *out, char *err, size_t errlen)
{
	(void)sc;
	(void)csr_pem;
	(void)csr_len;
	(void)device_id;
	(void)validity_s;
	(void)out;
	snprintf(err, errlen, "not used by these tests");
	return SIGNER_UNAVAILABLE;
}

void
signer_issued_free(struct signer_issued *issued)
{
	(void)issued;
}
