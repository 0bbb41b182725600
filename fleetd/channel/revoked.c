/* SPDX-License-Identifier: Apache-2.0 */
/* The revoked-serial set of a net worker; see revoked.h. */
#include "channel/revoked.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct revoked_set {
	pthread_mutex_t lock;
	char **serials;
	size_t n;
	bool loaded;
};

static void
serials_free(char **serials, size_t n)
{
	if (serials == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(serials[i]);
	free(serials);
}

struct revoked_set *
revoked_set_new(void)
{
	struct revoked_set *set = calloc(1, sizeof(*set));

	if (set != NULL)
		pthread_mutex_init(&set->lock, NULL);
	return set;
}

void
revoked_set_free(struct revoked_set *set)
{
	if (set == NULL)
		return;
	serials_free(set->serials, set->n);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

void
revoked_set_replace(struct revoked_set *set, char **serials, size_t n)
{
	char **old;
	size_t oldn;

	pthread_mutex_lock(&set->lock);
	old = set->serials;
	oldn = set->n;
	set->serials = serials;
	set->n = n;
	set->loaded = true;
	pthread_mutex_unlock(&set->lock);
	serials_free(old, oldn);
}

void
revoked_serials_free(char **serials, size_t n)
{
	serials_free(serials, n);
}

void
revoked_set_add(struct revoked_set *set, char **more, size_t nmore)
{
	char **all, **old;
	size_t i = 0, j = 0, k = 0;

	pthread_mutex_lock(&set->lock);
	all = malloc((set->n + nmore + 1) * sizeof(*all));
	if (all == NULL) {
		/* Keep what is refused already; the next full load adds the
		 * rest. */
		pthread_mutex_unlock(&set->lock);
		serials_free(more, nmore);
		return;
	}
	/* Two sorted lists into one; a serial in both is kept once. */
	while (i < set->n || j < nmore) {
		int c = i == set->n  ? 1
			: j == nmore ? -1
				     : strcmp(set->serials[i], more[j]);

		if (c <= 0)
			all[k++] = set->serials[i++];
		if (c == 0)
			free(more[j++]);
		else if (c > 0)
			all[k++] = more[j++];
	}
	old = set->serials; /* its strings moved to all */
	set->serials = all;
	set->n = k;
	pthread_mutex_unlock(&set->lock);
	free(old);
	free(more);
}

static int
serial_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

bool
revoked_set_contains(struct revoked_set *set, const char *serial)
{
	bool found;

	pthread_mutex_lock(&set->lock);
	found = set->n > 0 &&
		bsearch(serial, set->serials, set->n, sizeof(*set->serials),
			serial_cmp) != NULL;
	pthread_mutex_unlock(&set->lock);
	return found;
}

bool
revoked_set_loaded(struct revoked_set *set)
{
	bool loaded;

	pthread_mutex_lock(&set->lock);
	loaded = set->loaded;
	pthread_mutex_unlock(&set->lock);
	return loaded;
}
