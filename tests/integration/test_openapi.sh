#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The API contract (issue 13): the OpenAPI 3.1 document assembled from
# fleetd/api/openapi/*.json
# - is served at /api/v1/openapi.json without a token, byte for byte the
#   one the build made (which the linter and the response validator use);
# - passes `@redocly/cli lint` (pinned, installed under the build tree);
# - documents every problem type the code can send (the slugs are read
#   from the sources);
# - is assembled by a build step that refuses a path or component defined
#   by two fragments, a member repeated in one object, and a dangling $ref;
# and the response validator of harness_done refuses answers the document
# does not describe (it can fail).
# Every integration test validates the answers it gets through api()
# against this document when it ends (tests/lib/harness.sh).
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

DOC=$FLEET_BUILD_DIR/fleetd/openapi.json
SRC=$FLEET_SOURCE_DIR/fleetd/api/openapi

harness_init
pki_init
fleetd_start 1

# ---- served, public, the built bytes ------------------------------------
TOKEN= api GET /api/v1/openapi.json
assert_eq "$STATUS" 200 "GET /api/v1/openapi.json needs no token"
assert_eq "$CTYPE" application/json "served as application/json"
printf '%s\n' "$BODY" >"$T/served.json"
check "the served document is the built one" cmp -s "$T/served.json" "$DOC"
assert_eq "$(jq -r .openapi "$T/served.json")" 3.1.0 "OpenAPI 3.1"
TOKEN= api POST /api/v1/openapi.json
assert_eq "$STATUS" 405 "POST /api/v1/openapi.json: 405"

# ---- redocly lint ---------------------------------------------------------
oas_tools_install lint >"$T/npm-lint.log" 2>&1 || cat "$T/npm-lint.log"
if oas_redocly lint --format=stylish "$DOC" >"$T/lint.log" 2>&1; then
	ok "@redocly/cli $OAS_REDOCLY_VERSION lint passes ($(grep -c 'warning' "$T/lint.log" || true) warnings)"
else
	fail "@redocly/cli lint"
	cat "$T/lint.log"
fi

# ---- every problem type the code sends is documented -------------------
# The first string literal of a call that answers a problem is its slug:
# api_problem(resp, 4xx, "slug", ...), http_problem(...), raw_refuse(...),
# h1_fail(err, 4xx, "slug", ...); api_problem_field and
# api_method_not_allowed send invalid-field and method-not-allowed.
python3 - "$FLEET_SOURCE_DIR/fleetd" >"$T/slugs.txt" <<'PY'
import re, sys, pathlib
calls = re.compile(r'\b(?:api_problem|http_problem|raw_refuse|h1_fail)\s*\([^;"]*?"([a-z][a-z0-9-]*)"', re.S)
slugs = {"invalid-field", "method-not-allowed"}
for f in pathlib.Path(sys.argv[1]).rglob("*.c"):
    slugs.update(calls.findall(f.read_text()))
print("\n".join(sorted(slugs)))
PY
jq -r '.components["x-problem-types"] | keys[]' "$DOC" | sort >"$T/documented.txt"
missing=$(comm -23 "$T/slugs.txt" "$T/documented.txt" | tr '\n' ' ')
check "every problem type the code sends is documented ($(wc -l <"$T/slugs.txt") slugs${missing:+; missing: $missing})" \
	[ -z "$missing" ]
check "the problem types are the ProblemType schema" \
	[ "$(jq '.components.schemas.ProblemType.anyOf | length' "$DOC")" = "$(wc -l <"$T/documented.txt")" ]

# ---- the build refuses what would make the document ambiguous -----------
mkdir -p "$T/frag"
build() { python3 "$SRC/build.py" "$T/out.json" "$T/out.c" "$SRC/base.json" "$@" 2>"$T/build.err"; }
cat >"$T/frag/a.json" <<'EOF'
{"paths": {"/x": {"get": {"responses": {"200": {"description": "x"}}}}},
 "components": {"schemas": {"XThing": {"type": "string"}}}}
EOF
cat >"$T/frag/b.json" <<'EOF'
{"paths": {"/x": {"post": {"responses": {"200": {"description": "x"}}}}}}
EOF
cat >"$T/frag/c.json" <<'EOF'
{"components": {"schemas": {"XThing": {"type": "integer"}}}}
EOF
cat >"$T/frag/d.json" <<'EOF'
{"paths": {"/y": {"get": {"responses": {"200": {"description": "a", "description": "b"}}}}}}
EOF
cat >"$T/frag/e.json" <<'EOF'
{"paths": {"/z": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}}
EOF
cat >"$T/frag/f.json" <<'EOF'
{"info": {"title": "mine"}}
EOF
check "the build assembles a good fragment" build "$T/frag/a.json"
check "the assembled test document has the fragment's path" \
	[ "$(jq -r '.paths["/x"].get.responses["200"].description' "$T/out.json")" = x ]
check "a path in two fragments fails the build" not build "$T/frag/a.json" "$T/frag/b.json"
check "... naming both fragments" grep -q 'a.json and .*b.json' "$T/build.err"
check "a component name in two fragments fails the build" not build "$T/frag/a.json" "$T/frag/c.json"
check "... naming the component" grep -q 'schemas/XThing' "$T/build.err"
check "a member twice in one object fails the build" not build "$T/frag/d.json"
check "a dangling \$ref fails the build" not build "$T/frag/e.json"
check "top-level members other than paths/components fail the build" not build "$T/frag/f.json"

# ---- the response validator can fail --------------------------------------
oas_tools_install validate >"$T/npm-validate.log" 2>&1 || cat "$T/npm-validate.log"
mkdir -p "$T/bad"
vcall() { # vcall METHOD PATH STATUS CTYPE BODY: validates one made-up answer
	printf '1\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >"$T/bad/calls.tsv"
	printf '%s' "$5" >"$T/bad/1.body"
	oas_validate_calls "$T/bad" >"$T/bad/out.txt"
}
check "validator: a documented answer passes" \
	vcall GET /healthz 200 application/json '{"status":"ok"}'
check "validator: a body off its schema fails" \
	not vcall GET /healthz 200 application/json '{"status":"fine"}'
check "validator: an extra member fails (additionalProperties)" \
	not vcall GET /readyz 200 application/json \
	'{"status":"ready","checks":{"database":{"ok":true},"schema":{"ok":true},"ca":{"ok":true}},"x":1}'
check "validator: an undocumented status fails" \
	not vcall GET /healthz 201 application/json '{"status":"ok"}'
check "validator: an undocumented path fails" \
	not vcall GET /nowhere 200 application/json '{}'
check "validator: an undocumented problem type fails" \
	not vcall GET /healthz 503 application/problem+json \
	'{"type":"urn:fleet:problem:made-up","title":"x","status":503}'
check "validator: an HTTP-layer problem is allowed on any path" \
	vcall GET /nowhere 414 application/problem+json \
	'{"type":"urn:fleet:problem:uri-too-long","title":"URI too long","status":414}'
check "validator: a wrong content type fails" \
	not vcall GET /pki/v1/crl 200 text/html '<html>'

fleetd_stop
harness_done
