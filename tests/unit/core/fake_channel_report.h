/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The generic stand-in handler of test_report_dispatch: applies a report
 * through the report path (core/report.h, acknowledged once) on a job,
 * so the stand-ins of handlers that need PostgreSQL or the ca
 * (fake_channel_cert.c, fake_channel_update.c) keep that test about the
 * message table.
 */
#ifndef FLEET_TEST_FAKE_CHANNEL_REPORT_H
#define FLEET_TEST_FAKE_CHANNEL_REPORT_H

struct channel;
struct channel_session;
struct proto_msg;

void fake_channel_report(struct channel *ch, struct channel_session *s,
			 struct proto_msg *m);

#endif
