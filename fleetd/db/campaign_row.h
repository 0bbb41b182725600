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
