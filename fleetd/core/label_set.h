/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device's labels as a plain set of key/value strings: the label rules
 * (key and value syntax, how many) and the merge an enrollment applies.
 * Pure functions; used by core/enroll.c, core/token.c and the API.
 */
#ifndef FLEETD_CORE_LABEL_SET_H
#define FLEETD_CORE_LABEL_SET_H

#include <stddef.h>

#define LABELS_MAX 64
#define LABEL_VALUE_MAX 255

struct label {
	char *key; /* [A-Za-z0-9._/-]{1,63} (selector_key_valid) */
	char *value; /* 0..255 bytes, no control characters */
};

struct label_set {
	size_t n;
	struct label *items; /* malloc'd, keys unique */
};

enum label_rc {
	LABEL_OK = 0,
	LABEL_ERR_KEY, /* not a valid key */
	LABEL_ERR_VALUE, /* not a valid value */
	LABEL_ERR_TOO_MANY, /* more than LABELS_MAX */
	LABEL_ERR_NOMEM,
};

/* True if value is a valid label value (also used for short texts). */
int label_text_valid(const char *value, size_t max);

/* Sets key to value (copies both; replaces an existing key). */
enum label_rc label_set_put(struct label_set *set, const char *key,
			    const char *value);

/* The value of key, or NULL. Borrowed. */
const char *label_set_get(const struct label_set *set, const char *key);

/*
 * The labels a device enrolls with: the request's labels, overridden by
 * the token's (an operator's token decides, a device cannot choose its own
 * site). *out is new (release with label_set_clear); the merge may hold up
 * to 2 * LABELS_MAX labels. LABEL_OK or LABEL_ERR_NOMEM.
 */
enum label_rc label_set_merge(const struct label_set *request,
			      const struct label_set *token,
			      struct label_set *out);

/* Deep copy; LABEL_OK or LABEL_ERR_NOMEM. */
enum label_rc label_set_copy(const struct label_set *src,
			     struct label_set *out);

/* Frees the items; the set is empty afterwards. */
void label_set_clear(struct label_set *set);

#endif
