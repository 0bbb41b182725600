// SPDX-License-Identifier: Apache-2.0
/*
 * The EST re-enroll and grace-window rule (see est.h). Pure function of
 * its facts; the facts come from the TLS layer and the store.
 */
#include "core/est.h"

enum est_reenroll_verdict
est_reenroll_rule(enum est_client_cert state, int64_t not_after, int64_t now,
		  int64_t grace_s, bool newest)
{
	switch (state) {
	case EST_CERT_VERIFIED:
		return EST_REENROLL_OK;
	case EST_CERT_EXPIRED:
		break;
	case EST_CERT_NONE:
		return EST_REENROLL_NO_CERT;
	case EST_CERT_INVALID:
	default:
		return EST_REENROLL_CERT_INVALID;
	}
	if (not_after > now)
		return EST_REENROLL_OK; /* our clock disagrees with the TLS
					   check's by a second: not expired */
	if (grace_s <= 0)
		return EST_REENROLL_GRACE_DISABLED;
	/* not_after < now - grace, never now - not_after: not_after comes
	 * from a certificate (any value), grace is at most a year. */
	if (not_after < now - grace_s)
		return EST_REENROLL_PAST_GRACE;
	if (!newest)
		return EST_REENROLL_NOT_NEWEST;
	return EST_REENROLL_OK;
}

const char *
est_reenroll_verdict_code(enum est_reenroll_verdict v)
{
	switch (v) {
	case EST_REENROLL_OK:
		return "ok";
	case EST_REENROLL_NO_CERT:
		return "client-certificate-required";
	case EST_REENROLL_CERT_INVALID:
		return "client-certificate-invalid";
	case EST_REENROLL_GRACE_DISABLED:
		return "est-grace-disabled";
	case EST_REENROLL_PAST_GRACE:
		return "certificate-expired-past-grace";
	case EST_REENROLL_NOT_NEWEST:
		return "certificate-not-newest";
	}
	return "client-certificate-invalid";
}
