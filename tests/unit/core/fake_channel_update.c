/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stand-ins for fleetd/channel/update.c in test_report_dispatch: the
 * message table's update.status and keys.status lines must reach a
 * handler, which here applies the report through the report path
 * (acknowledged once), so that test stays about the table; a hello has
 * nothing to offer here.
 */

#include "channel/channel_int.h"
#include "channel/update.h"
#include "fake_channel_report.h"
#include "proto/proto.h"

void
channel_update_status(struct channel *ch, struct channel_session *s,
		      struct proto_msg *m)
{
	fake_channel_report(ch, s, m);
}

void
channel_keys_status(struct channel *ch, struct channel_session *s,
		    struct proto_msg *m)
{
	fake_channel_report(ch, s, m);
}

void
channel_upd_hello(struct channel *ch, struct channel_session *s,
		  int64_t keyset_version)
{
	(void)ch;
	(void)s;
	(void)keyset_version;
}
