/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading a campaigns row into the driver's struct campaign_row
 * (core/store_campaigns.h), shared by both halves of the campaign store
 * (db/campaigns.c, db/campaign_drive.c) so the columns and their parsing
 * exist once. Runs on job threads and the driver thread; the row comes
 * from our own database, but its definition is parsed and checked again
 * (campaign_def_from_json) like any stored document.
 */
#ifndef FLEETD_DB_CAMPAIGN_ROW_H
#define FLEETD_DB_CAMPAIGN_ROW_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/store_campaigns.h"
#include "db/selector_sql.h"

/*
 * The store port's campaign calls have no heartbeat parameter, yet a
 * selector may name the built-in `online`: it is judged with fleetd's
 * default heartbeat_timeout (fleetd/config.c).
 */
#define DB_CAMPAIGN_HEARTBEAT_S "90"

/* The SQL mirror of device_online() (core/device.c), as in db/devices.c,
 * over devices d LEFT JOIN device_sessions s; hb names the parameter
 * holding the heartbeat timeout in seconds. */
#define DB_CAMPAIGN_ONLINE_SQL(hb)                                   \
	"coalesce(s.last_seen > now() - " hb "::double precision * " \
	"interval '1 second', false)"

/* Selector columns over devices d LEFT JOIN device_sessions s, the
 * heartbeat timeout in $1 (db/campaigns.c). */
extern const struct selector_columns db_campaign_columns;

/* The cutoffs of def's phases as a bigint[] literal ("{4,20,41}") for
 * DB_CAMPAIGN_PHASES_CTE; out holds DB_CAMPAIGN_CUTOFFS_MAX bytes. */
#define DB_CAMPAIGN_CUTOFFS_MAX (CAMPAIGN_MAX_PHASES * 24 + 4)
void db_campaign_cutoffs_text(const struct campaign_def *def,
			      const uint64_t *cutoffs, char *out, size_t cap);

/* campaign_rank() in SQL (docs/internals/campaigns.md): the first 8
 * bytes of SHA-256("<campaign id>:<device id>") in hex, which sorts as
 * the number does. */
#define DB_CAMPAIGN_RANK_SQL(cid, did)                                \
	"substr(encode(sha256(convert_to(" cid " || ':' || " did ", " \
	"'UTF8')), 'hex'), 1, 16)"

/*
 * The matched set of a campaign with each device's phase, as CTEs for
 * counting pending devices and for admitting them: d0 the active
 * devices the selector matches (its WHERE is the %s; $1 the heartbeat),
 * m those plus the admitted devices that no longer match (not excluded
 * or reverted), each with its rank (stored, or computed for devices
 * without a row: fresh), p each with its phase: width_bucket of its
 * position by rank over the cutoffs array (campaign_phase_cutoff for
 * the size of m). cid and cutoffs name the parameters. Ranks sort
 * bytewise (hex sorts as the number; a locale's collation is slower).
 */
/* clang-format off */
#define DB_CAMPAIGN_PHASES_CTE(cid, cutoffs)                                 \
	"WITH d0 AS (SELECT d.id FROM devices d LEFT JOIN device_sessions s " \
	"ON s.device_id = d.id WHERE d.status = 'active' AND "               \
	"$1::double precision IS NOT NULL AND (%s)), "                       \
	"m AS (SELECT d0.id, coalesce(cd.rank, "                             \
	DB_CAMPAIGN_RANK_SQL(cid "::uuid::text", "d0.id::text") ") AS rank, " \
	"cd.device_id IS NULL AS fresh FROM d0 LEFT JOIN campaign_devices "  \
	"cd ON cd.campaign_id = " cid "::uuid AND cd.device_id = d0.id "     \
	"UNION ALL SELECT cd.device_id, cd.rank, false FROM campaign_devices " \
	"cd WHERE cd.campaign_id = " cid "::uuid AND cd.state NOT IN "       \
	"('excluded', 'reverted') AND NOT EXISTS (SELECT 1 FROM d0 WHERE "   \
	"d0.id = cd.device_id)), "                                           \
	"p AS (SELECT m.id, m.rank, m.fresh, width_bucket(row_number() OVER " \
	"(ORDER BY m.rank COLLATE \"C\", m.id) - 1, " cutoffs "::bigint[]) "  \
	"AS phase FROM m) "
/* clang-format on */

/*
 * The columns db_campaign_row_read expects, in this order, of the table
 * campaigns under the alias c: id, kind, status, definition, phase,
 * gate_met_at (epoch s, 0 when NULL), selector, abort_done,
 * artifact_id, deployment_id, profile_id ("" when NULL), profile_version
 * (0 when NULL), revision. Use it as
 * "SELECT " DB_CAMPAIGN_ROW_COLS " FROM campaigns c WHERE ...";
 * further columns may follow (from index DB_CAMPAIGN_ROW_NCOLS on).
 */
#define DB_CAMPAIGN_ROW_COLS                                                 \
	"c.id::text, c.kind, c.status, c.definition::text, c.phase, "        \
	"coalesce(floor(extract(epoch FROM c.gate_met_at))::bigint, 0), "    \
	"c.selector, c.abort_done, coalesce(c.artifact_id::text, ''), "      \
	"coalesce(c.deployment_id::text, ''), "                              \
	"coalesce(c.profile_id::text, ''), coalesce(c.profile_version, 0), " \
	"c.revision"
#define DB_CAMPAIGN_ROW_NCOLS 13

/*
 * Fills *out from row `row` of res (columns DB_CAMPAIGN_ROW_COLS from
 * index 0). Returns 0; or -1 with a message in err (an unknown kind or
 * status, a definition campaign_def_from_json refuses, out of memory),
 * *out left cleared. The caller owns out->selector (campaign_row_clear).
 */
int db_campaign_row_read(const PGresult *res, int row, struct campaign_row *out,
			 char *err, size_t errlen);

/* campaign_status_name's inverse: 0 with *out, or -1. */
int db_campaign_status_parse(const char *s, enum campaign_status *out);

#endif
