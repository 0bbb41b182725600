/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the configuration handlers (api/profiles.c, api/config.c) share:
 * the mapping of core's config_rc to problem+json, document checks, the
 * Idempotency-Key begin step, and stored canonical texts as JSON. Runs on
 * job threads.
 */
#ifndef FLEETD_API_CONFIG_INT_H
#define FLEETD_API_CONFIG_INT_H

#include <jansson.h>

#include "api/api_int.h"
#include "core/config.h"
#include "core/idempotency.h"

/* The problem+json answer of a config_rc other than CONFIG_OK (detail
 * may be NULL for the default text). */
void api_config_refused(struct api_call *c, enum config_rc rc,
			const char *detail);

/* A stored canonical text as a new JSON value; JSON null for NULL. */
json_t *api_config_text_json(const char *text);

/*
 * Checks doc as a configuration document (config_document_check, 256 KiB)
 * and canonicalises it into *out (config_doc_clear it). Answers 400
 * (invalid-field when absent, invalid-document) or 413 and returns -1.
 */
int api_config_document(struct api_call *c, const json_t *doc,
			const char *field, struct config_doc *out);

#endif
