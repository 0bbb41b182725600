/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Label sets: syntax rules and the enrollment merge. Pure code, no I/O;
 * runs wherever core runs. Input is untrusted (request bodies).
 */
#include "core/label_set.h"

#include <stdlib.h>
#include <string.h>

#include "core/selector.h"

int
label_text_valid(const char *value, size_t max)
{
	size_t i, n = strlen(value);

	if (n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return 0;
	return 1;
}

const char *
label_set_get(const struct label_set *set, const char *key)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->items[i].key, key) == 0)
			return set->items[i].value;
	return NULL;
}

/* Adds without checks (the merge adds already valid labels). */
static enum label_rc
label_set_put_raw(struct label_set *set, const char *key, const char *value,
		  size_t max)
{
	struct label *items;
	char *v;
	size_t i;

	v = strdup(value);
	if (v == NULL)
		return LABEL_ERR_NOMEM;
	for (i = 0; i < set->n; i++) {
		if (strcmp(set->items[i].key, key) == 0) {
			free(set->items[i].value);
			set->items[i].value = v;
			return LABEL_OK;
		}
	}
	if (set->n >= max) {
		free(v);
		return LABEL_ERR_TOO_MANY;
	}
	items = realloc(set->items, (set->n + 1) * sizeof(*items));
	if (items == NULL) {
		free(v);
		return LABEL_ERR_NOMEM;
	}
	set->items = items;
	items[set->n].value = v;
	items[set->n].key = strdup(key);
	if (items[set->n].key == NULL) {
		free(v);
		return LABEL_ERR_NOMEM;
	}
	set->n++;
	return LABEL_OK;
}

enum label_rc
label_set_put(struct label_set *set, const char *key, const char *value)
{
	if (!selector_key_valid(key, strlen(key)))
		return LABEL_ERR_KEY;
	if (!label_text_valid(value, LABEL_VALUE_MAX))
		return LABEL_ERR_VALUE;
	return label_set_put_raw(set, key, value, LABELS_MAX);
}

enum label_rc
label_set_copy(const struct label_set *src, struct label_set *out)
{
	struct label_set tmp = {0, NULL};
	size_t i;

	for (i = 0; i < src->n; i++) {
		if (label_set_put_raw(&tmp, src->items[i].key,
				      src->items[i].value,
				      src->n) != LABEL_OK) {
			label_set_clear(&tmp);
			return LABEL_ERR_NOMEM;
		}
	}
	*out = tmp;
	return LABEL_OK;
}

enum label_rc
label_set_merge(const struct label_set *request, const struct label_set *token,
		struct label_set *out)
{
	struct label_set tmp = {0, NULL};
	size_t i, max = request->n + token->n;
	enum label_rc rc = LABEL_OK;

	for (i = 0; rc == LABEL_OK && i < request->n; i++)
		rc = label_set_put_raw(&tmp, request->items[i].key,
				       request->items[i].value, max);
	/* The token's labels win: they are the operator's. */
	for (i = 0; rc == LABEL_OK && i < token->n; i++)
		rc = label_set_put_raw(&tmp, token->items[i].key,
				       token->items[i].value, max);
	if (rc != LABEL_OK) {
		label_set_clear(&tmp);
		return LABEL_ERR_NOMEM;
	}
	*out = tmp;
	return LABEL_OK;
}

void
label_set_clear(struct label_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		free(set->items[i].key);
		free(set->items[i].value);
	}
	free(set->items);
	set->items = NULL;
	set->n = 0;
}
