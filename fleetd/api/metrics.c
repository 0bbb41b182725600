/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /metrics (viewer or better; api.c checks the token): the registry of
 * every net worker of this host (core/metrics.c) in the Prometheus text
 * format, then the gauges computed on scrape (scrape_gauges[] below). Also
 * the API's own recording, api_metrics_request. Job threads.
 *
 * A gauge computed on scrape (config drift, campaign states, ...) is a
 * function of the store, not a figure a worker keeps: add a function
 * `static int scrape_x(struct api_call *c, struct buf *out)` that writes
 * its family with metrics_write_family/metrics_write_sample (no worker
 * label: it is the fleet's, read from PostgreSQL), and a line in
 * scrape_gauges[]. Keep it to one cheap query; a scrape must stay fast.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/metrics.h"
#include "api/openapi.h"
#include "buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/store_config.h"
#include "core/store_health.h"

#define METRICS_BODY_MAX (8u * 1024u * 1024u)

/* fleetd_database_up: whether this worker's store answers now. */
static int
scrape_database_up(struct api_call *c, struct buf *out)
{
	bool up = store_ping(c->ctx->store) == STORE_OK;

	return metrics_write_family(out, "fleetd_database_up", "gauge",
				    "1 while PostgreSQL answers the scraped "
				    "worker.") |
	       metrics_write_sample(out, "fleetd_database_up", NULL, up);
}

/* fleetd_config_devices{state}: active devices by configuration state
 * (core/config.h config_classify): drift is never left unseen. */
static int
scrape_config_devices(struct api_call *c, struct buf *out)
{
	int64_t counts[CONFIG_STATE_COUNT];
	char labels[64];
	int rc;

	if (store_config_state_counts(c->ctx->store,
				      c->ctx->env->heartbeat_timeout_s,
				      counts) != CONFIG_OK)
		return 0; /* fleetd_database_up says why */
	rc = metrics_write_family(out, "fleetd_config_devices", "gauge",
				  "Active devices by configuration state "
				  "(none, in_sync, pending, offline, failed, "
				  "drifted).");
	for (int s = 0; rc == 0 && s < CONFIG_STATE_COUNT; s++) {
		snprintf(labels, sizeof(labels), "state=\"%s\"",
			 config_state_name((enum config_state)s));
		rc = metrics_write_sample(out, "fleetd_config_devices", labels,
					  (double)counts[s]);
	}
	return rc;
}

static int (*const scrape_gauges[])(struct api_call *c, struct buf *out) = {
	scrape_database_up,
	scrape_config_devices,
};

void
api_metrics(struct api_call *c)
{
	struct buf out;
	size_t len = 0;
	char *body;
	int rc;

	buf_init(&out, METRICS_BODY_MAX);
	rc = metrics_render(&out);
	for (size_t i = 0;
	     rc == 0 && i < sizeof(scrape_gauges) / sizeof(scrape_gauges[0]);
	     i++)
		rc = scrape_gauges[i](c, &out) != 0 ? -1 : 0;
	body = rc == 0 ? buf_detach(&out, &len) : NULL;
	buf_free(&out);
	if (body == NULL) {
		api_problem(c->resp, 500, "internal-error",
			    "the metrics do not fit the answer");
		return;
	}
	api_response_free(c->resp);
	c->resp->body = body;
	c->resp->body_len = len;
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static const char *
metrics_method(const char *method)
{
	static const char *const known[] = {"GET",   "HEAD",   "POST",	 "PUT",
					    "PATCH", "DELETE", "OPTIONS"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (method != NULL && strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

void
api_metrics_request(const char *method, const char *path, int status,
		    uint64_t us)
{
	const char *route = api_openapi_template(path);
	const char *m = metrics_method(method);
	char code[8];

	/* Not a template of the document: one series for all of them, so a
	 * scan of random paths cannot grow the registry. */
	if (route == NULL)
		route = "unmatched";
	snprintf(code, sizeof(code), "%d",
		 status >= 100 && status < 600 ? status : 0);
	metrics_add(METRIC_API_REQUESTS, 1, "route", route, "method", m,
		    "status", code, NULL);
	metrics_observe_us(METRIC_API_REQUEST_SECONDS, us, "route", route,
			   "method", m, NULL);
}
