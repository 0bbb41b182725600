/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffers with a hard maximum. Every buffer that holds input
 * from the network has one, so a peer cannot make us allocate without end.
 * What a buffer held is wiped when it grows and when it is freed (tokens,
 * keys and request bodies pass through them); buf_detach hands that duty
 * to the caller.
 */
#ifndef FLEET_COMMON_BUF_H
#define FLEET_COMMON_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* len never exceeds max */
};

void buf_init(struct buf *b, size_t max);

/* Returns 0, or -1 when len would exceed max or memory runs out. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void buf_reset(struct buf *b);

/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_detach(struct buf *b, size_t *len);

/* Frees the data; the buffer can be used again. Accepts a zeroed struct. */
void buf_free(struct buf *b);

#endif
