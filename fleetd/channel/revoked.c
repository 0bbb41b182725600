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

static int
serial_sort_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
revoked_set_replace_merged(struct revoked_set *set, char **a, size_t na,
			   char **b, size_t nb)
{
	char **all;

	if (nb == 0) {
		free(b);
		revoked_set_replace(set, a, na);
		return;
	}
	all = realloc(a, (na + nb + 1) * sizeof(*all));
	if (all == NULL) {
		/* Keep what is refused already rather than refuse less. */
		serials_free(a, na);
		serials_free(b, nb);
		return;
	}
	memcpy(all + na, b, nb * sizeof(*b));
	free(b);
	qsort(all, na + nb, sizeof(*all), serial_sort_cmp);
	revoked_set_replace(set, all, na + nb);
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
