/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stand-ins for fleetd/channel/cert.c in test_report_dispatch: the message
 * table's cert.csr and cert.installed lines must reach a handler, which
 * here applies the report through the report path (acknowledged once), so
 * that test stays about the table. cert.c itself needs the ca signer and
 * PostgreSQL: tests/integration/test_renewal.sh drives it end to end, and
 * its rules are unit-tested in test_cert_lifecycle.
 */

#include "channel/cert.h"
#include "channel/channel_int.h"
#include "fake_channel_report.h"
#include "proto/proto.h"

void
cert_handle_csr(struct channel *ch, struct channel_session *s,
		struct proto_msg *m)
{
	fake_channel_report(ch, s, m);
}

void
cert_handle_installed(struct channel *ch, struct channel_session *s,
		      struct proto_msg *m)
{
	fake_channel_report(ch, s, m);
}
