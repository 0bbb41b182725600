/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd's configuration: the file given with -c (optional), then the
 * environment (FLEETD_<KEY>). Loaded by the supervisor and the CLI
 * commands; the children inherit it.
 */
#ifndef FLEETD_CONFIG_H
#define FLEETD_CONFIG_H

#include <stddef.h>

struct fleetd_config {
	char *database; /* libpq connection string */
	long database_commit_timeout; /* s a COMMIT may wait; 0: for ever */
	char *pki_dir; /* from `fleetd pki init` */
	char *api_bind; /* address the api listener binds */
	long api_port;
	char *device_bind;
	long device_port;
	char *public_host; /* host name in URLs handed to devices */
	char *device_url; /* default wss://public_host:device_port/agent/v1 */
	char *crl_url; /* CRL distribution point in certificates */
	long workers; /* net workers; 0 = number of cores */
	long job_threads; /* per net worker */
	long max_body; /* bytes */
	long artifact_max_size; /* bytes of one artifact upload (streamed) */
	long cert_validity; /* seconds */
	long cert_grace; /* seconds after notAfter EST re-enroll accepts */
	long heartbeat_interval;
	long heartbeat_timeout;
	char *migrations_dir;
	char *log_level;
	int log_syslog;
	char *user; /* started as root: the children run as this user */
	long metrics_port; /* 127.0.0.1:port serves GET /metrics; 0: off */
	char *artifact_cache_dir; /* downloads: verified blob copies; "" off */
	char *artifact_url_base; /* offers: mirror base URL; "" device port */
	long campaign_interval_ms; /* campaign driver: lock tries, passes */
	long tls_ticket_lifetime; /* device listener tickets, s; 0: off */
	long tls_ticket_key_rotation; /* a new ticket key this often, s */
	long idempotency_retention; /* Idempotency-Key records live this, s */
};

/* 0, or -1 with "file:line: ..." in err. Free with fleetd_config_free(). */
int fleetd_config_load(const char *path, struct fleetd_config *cfg, char *err,
		       size_t errlen);
void fleetd_config_free(struct fleetd_config *cfg);

#endif
