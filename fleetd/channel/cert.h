/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates over the device channel (issue 10, docs/pki.md "Renewal
 * and rotation"): cert.csr (renewal with a new key: core rules, the ca
 * signs, cert.issued answers), cert.installed (the second phase: older
 * certificates superseded), and cert.rotate (sent when a session opens
 * and on every fleet_certs notification to the sessions whose device has
 * a pending rotation). Runs on the net worker's loop; storage and the
 * signer on the channel's job threads.
 */
#ifndef FLEETD_CHANNEL_CERT_H
#define FLEETD_CHANNEL_CERT_H

struct channel;
struct channel_session;
struct proto_msg;

/* dispatch.c's handlers of cert.csr and cert.installed (reports). */
void cert_handle_csr(struct channel *ch, struct channel_session *s,
		     struct proto_msg *m);
void cert_handle_installed(struct channel *ch, struct channel_session *s,
			   struct proto_msg *m);

/* A session passed its check: refuse a superseded certificate, send a
 * pending rotation. */
void cert_session_opened(struct channel *ch, struct channel_session *s);

/* fleet_certs fired (or the listener listened again): ask the sessions
 * of this worker whose device has a pending rotation. */
void cert_poll_rotations(struct channel *ch);

#endif
