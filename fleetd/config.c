/* SPDX-License-Identifier: Apache-2.0 */
/* fleetd's configuration keys, their defaults and bounds. */
#include "config.h"

#include "conffile.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY(n, t, f, lo, hi, d)                                    \
	{                                                          \
		n, t, offsetof(struct fleetd_config, f), lo, hi, d \
	}

static const struct config_key fleetd_keys[] = {
	KEY("database", CONFIG_STRING, database, 0, 0, ""),
	/* a COMMIT waiting for a synchronous standby fails after this
	 * (docs/ha.md); 0 = waits for ever */
	KEY("database_commit_timeout", CONFIG_DURATION, database_commit_timeout,
	    0, 3600, "10s"),
	KEY("pki_dir", CONFIG_STRING, pki_dir, 0, 0, "/var/lib/fleetd/pki"),
	KEY("api_bind", CONFIG_STRING, api_bind, 0, 0, "127.0.0.1"),
	KEY("api_port", CONFIG_INT, api_port, 1, 65535, "8443"),
	KEY("device_bind", CONFIG_STRING, device_bind, 0, 0, "127.0.0.1"),
	KEY("device_port", CONFIG_INT, device_port, 1, 65535, "8444"),
	KEY("public_host", CONFIG_STRING, public_host, 0, 0, "localhost"),
	KEY("device_url", CONFIG_STRING, device_url, 0, 0, ""),
	KEY("crl_url", CONFIG_STRING, crl_url, 0, 0, ""),
	KEY("workers", CONFIG_INT, workers, 0, 64, "0"),
	KEY("job_threads", CONFIG_INT, job_threads, 1, 64, "4"),
	KEY("max_body", CONFIG_INT, max_body, 1024, 64 * 1024 * 1024,
	    "1048576"),
	/* PUT /api/v1/artifacts/{id}/file streams; this bounds the file */
	KEY("artifact_max_size", CONFIG_INT, artifact_max_size, 1048576,
	    1099511627776L, "4294967296"),
	KEY("cert_validity", CONFIG_DURATION, cert_validity, 3600,
	    10L * 365 * 86400, "90d"),
	/* EST re-enroll with an expired certificate (docs/pki.md); 0 = off */
	KEY("cert_grace", CONFIG_DURATION, cert_grace, 0, 365L * 86400, "30d"),
	KEY("heartbeat_interval", CONFIG_DURATION, heartbeat_interval, 1, 3600,
	    "30s"),
	KEY("heartbeat_timeout", CONFIG_DURATION, heartbeat_timeout, 2, 7200,
	    "90s"),
	KEY("migrations_dir", CONFIG_STRING, migrations_dir, 0, 0,
	    FLEET_MIGRATIONS_DIR),
	KEY("log_level", CONFIG_STRING, log_level, 0, 0, "info"),
	KEY("log_syslog", CONFIG_BOOL, log_syslog, 0, 0, "false"),
	KEY("user", CONFIG_STRING, user, 0, 0, "fleetd"),
	KEY("metrics_port", CONFIG_INT, metrics_port, 0, 65535, "0"),
	/* verified local copies of artifacts (channel/download.c); "": off */
	KEY("artifact_cache_dir", CONFIG_STRING, artifact_cache_dir, 0, 0, ""),
	/* update.offer artifact_url: https mirror base; "": device listener */
	KEY("artifact_url_base", CONFIG_STRING, artifact_url_base, 0, 0, ""),
	/* campaign driver: lock attempts and passes (docs/campaigns.md) */
	KEY("campaign_interval_ms", CONFIG_INT, campaign_interval_ms, 50, 60000,
	    "1000"),
	/* device listener TLS 1.3 session tickets (docs/pki.md); 0 = off */
	KEY("tls_ticket_lifetime", CONFIG_DURATION, tls_ticket_lifetime, 0,
	    86400, "4h"),
	/* a new ticket key this often (at most the lifetime) */
	KEY("tls_ticket_key_rotation", CONFIG_DURATION, tls_ticket_key_rotation,
	    60, 86400, "1h"),
	/* Idempotency-Key records: replayed this long, then swept */
	KEY("idempotency_retention", CONFIG_DURATION, idempotency_retention, 1,
	    365L * 86400, "24h"),
};

#define NKEYS (sizeof(fleetd_keys) / sizeof(fleetd_keys[0]))

/* Derived values and checks that span keys. */
static int
fleetd_config_finish(const char *path, struct fleetd_config *cfg, char *err,
		     size_t errlen)
{
	enum log_level level;
	char url[512];

	if (log_level_parse(cfg->log_level, &level) != 0) {
		snprintf(err, errlen,
			 "%s: bad value '%s' for 'log_level': expected error, "
			 "warn, info or debug",
			 path != NULL ? path : "environment", cfg->log_level);
		return -1;
	}
	if (cfg->user[0] == '\0') {
		snprintf(err, errlen,
			 "%s: 'user' must name the unprivileged user fleetd's "
			 "children run as when it is started as root",
			 path != NULL ? path : "environment");
		return -1;
	}
	if (cfg->heartbeat_timeout <= cfg->heartbeat_interval) {
		snprintf(err, errlen,
			 "%s: heartbeat_timeout (%lds) must be longer than "
			 "heartbeat_interval (%lds)",
			 path != NULL ? path : "environment",
			 cfg->heartbeat_timeout, cfg->heartbeat_interval);
		return -1;
	}
	if (cfg->tls_ticket_lifetime != 0 &&
	    (cfg->tls_ticket_lifetime < 60 ||
	     cfg->tls_ticket_key_rotation > cfg->tls_ticket_lifetime)) {
		snprintf(err, errlen,
			 "%s: tls_ticket_lifetime (%lds) must be 0 (off) or at "
			 "least 60s and not shorter than "
			 "tls_ticket_key_rotation "
			 "(%lds)",
			 path != NULL ? path : "environment",
			 cfg->tls_ticket_lifetime,
			 cfg->tls_ticket_key_rotation);
		return -1;
	}
	if (cfg->device_url[0] == '\0') {
		snprintf(url, sizeof(url), "wss://%s:%ld/agent/v1",
			 cfg->public_host, cfg->device_port);
		free(cfg->device_url);
		cfg->device_url = strdup(url);
	}
	if (cfg->crl_url[0] == '\0') {
		snprintf(url, sizeof(url), "https://%s:%ld/pki/v1/crl",
			 cfg->public_host, cfg->api_port);
		free(cfg->crl_url);
		cfg->crl_url = strdup(url);
	}
	if (cfg->device_url == NULL || cfg->crl_url == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
fleetd_config_load(const char *path, struct fleetd_config *cfg, char *err,
		   size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (config_load(path, fleetd_keys, NKEYS, "FLEETD_", cfg, err,
			errlen) != 0)
		return -1;
	if (fleetd_config_finish(path, cfg, err, errlen) != 0) {
		fleetd_config_free(cfg);
		return -1;
	}
	return 0;
}

void
fleetd_config_free(struct fleetd_config *cfg)
{
	config_free(fleetd_keys, NKEYS, cfg);
}
