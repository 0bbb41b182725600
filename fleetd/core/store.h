/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port: how fleetd/core reaches durable state without knowing
 * PostgreSQL. A port is a set of plain C functions declared here and in
 * core/store_<resource>.h; fleetd/db implements them (the adapter), and
 * the core unit tests link an in-memory fake instead (tests/unit/core).
 * Every store function is one atomic unit of work: it commits everything
 * it writes (including the audit row of a mutation) or nothing.
 *
 * A struct store belongs to one thread (a job thread of a net worker, the
 * channel's listener, a CLI command); it is never shared.
 */
#ifndef FLEETD_CORE_STORE_H
#define FLEETD_CORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

/* What every store function returns. */
enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1, /* storage failed; see store_unavailable() */
	STORE_NOTFOUND = 1, /* no such record */
	STORE_CONFLICT = 2, /* the record's state forbids it */
	STORE_PRECONDITION = 3, /* the If-Match revision differs */
};

/* After STORE_ERR: true when storage is unreachable (a 503, retry later)
 * rather than a failed statement (a 500). */
bool store_unavailable(struct store *st);

/* After STORE_ERR: true when the write was not confirmed in time (no
 * synchronous standby answered, docs/ha.md). It may have been made; it
 * was not acknowledged. store_unavailable() is true then too. */
bool store_write_unconfirmed(struct store *st);

/*
 * The storage session the last call ran on. It changes whenever the
 * connection is made again (a restart, a failover), so a caller can tell
 * whether what it wrote earlier was written through the same session:
 * an asynchronous commit survives a failover only as far as it had been
 * replicated.
 */
uint64_t store_session(const struct store *st);

#endif
