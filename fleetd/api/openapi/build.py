#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Assembles the OpenAPI 3.1 document of fleetd from its fragments.

Run by the build (fleetd/CMakeLists.txt), never by hand:

    build.py OUT_JSON OUT_C base.json fragment.json...

base.json holds the document's frame (openapi, info, servers, security,
tags, shared components); every other fragment holds only "paths" and
"components" ({"schemas", "parameters", "responses", "headers",
"requestBodies", "examples"}). The build fails, naming the files, when:

- a file is not JSON, or repeats a member name inside one object;
- two fragments define the same path, or the same component name in the
  same section (components are global: prefix their names, e.g.
  "ConfigProfile");
- a fragment other than base.json has other top-level members;
- a "$ref" points at nothing in the assembled document.

OUT_JSON is the document (for the linter and the response validator of
the integration tests); OUT_C is a C file that embeds the same bytes as
api_openapi_doc[] (fleetd/api/openapi.h), served at /api/v1/openapi.json.
"""
import json
import os
import sys

SECTIONS = ("schemas", "parameters", "responses", "headers", "requestBodies",
            "examples", "securitySchemes", "x-problem-types")
PROBLEM_URN = "urn:fleet:problem:"


def fail(msg):
    sys.stderr.write("openapi: %s\n" % msg)
    sys.exit(1)


def load(path):
    def no_dups(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                fail("%s: member %r appears twice in one object" % (path, k))
            seen[k] = v
        return seen

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=no_dups)
    except (OSError, ValueError) as e:
        fail("%s: %s" % (path, e))


def refs(node, where, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append((v, where))
            else:
                refs(v, where, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, where, out)


def resolve(doc, ref):
    if not ref.startswith("#/"):
        return False
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def main():
    if len(sys.argv) < 4:
        fail("usage: build.py OUT_JSON OUT_C base.json [fragment.json...]")
    out_json, out_c, base_path = sys.argv[1:4]
    fragments = sorted(set(sys.argv[4:]) - {base_path},
                       key=os.path.basename)
    doc = load(base_path)
    doc.setdefault("paths", {})
    comps = doc.setdefault("components", {})
    owner = {}
    for p in doc["paths"]:
        owner[("path", p)] = base_path
    for sec, items in comps.items():
        for name in items:
            owner[(sec, name)] = base_path
    for frag_path in fragments:
        frag = load(frag_path)
        if not isinstance(frag, dict):
            fail("%s: a fragment is a JSON object" % frag_path)
        extra = set(frag) - {"paths", "components"}
        if extra:
            fail("%s: only \"paths\" and \"components\" belong in a "
                 "fragment (found %s)" % (frag_path, ", ".join(sorted(extra))))
        for p, item in frag.get("paths", {}).items():
            if ("path", p) in owner:
                fail("path %s is in both %s and %s" %
                     (p, owner[("path", p)], frag_path))
            owner[("path", p)] = frag_path
            doc["paths"][p] = item
        for sec, items in frag.get("components", {}).items():
            if sec not in SECTIONS:
                fail("%s: unknown components section %r" % (frag_path, sec))
            dst = comps.setdefault(sec, {})
            for name, item in items.items():
                if (sec, name) in owner:
                    fail("components/%s/%s is in both %s and %s (prefix "
                         "component names)" %
                         (sec, name, owner[(sec, name)], frag_path))
                owner[(sec, name)] = frag_path
                dst[name] = item
    # The problem types: each fragment lists the slugs it emits under
    # components/x-problem-types ({"slug": "when it is sent"}); the schema
    # every problem's "type" must match is made from all of them.
    types = comps.get("x-problem-types", {})
    for slug, text in types.items():
        if not isinstance(text, str) or not text:
            fail("x-problem-types/%s: describe when it is sent" % slug)
    for slug in doc.get("x-fleet-any-route-problems", []):
        if slug not in types:
            fail("x-fleet-any-route-problems: %s is not a problem type" % slug)
    if ("schemas", "ProblemType") in owner:
        fail("%s: ProblemType is made from x-problem-types" %
             owner[("schemas", "ProblemType")])
    comps.setdefault("schemas", {})["ProblemType"] = {
        "type": "string",
        "description": "urn:fleet:problem:<slug>; the stable type of a "
                       "problem (components/x-problem-types).",
        "anyOf": [{"const": PROBLEM_URN + slug, "description": types[slug]}
                  for slug in sorted(types)],
    }
    found = []
    refs(doc, "", found)
    for ref, _ in found:
        if not resolve(doc, ref):
            fail("$ref %s points at nothing" % ref)
    doc["paths"] = dict(sorted(doc["paths"].items()))
    for sec in comps:
        comps[sec] = dict(sorted(comps[sec].items()))
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    data = text.encode("utf-8")
    with open(out_json + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out_json + ".tmp", out_json)
    lines = [
        "/* Generated by fleetd/api/openapi/build.py from "
        "the fragments in fleetd/api/openapi. */",
        "#include <stddef.h>",
        "",
        "#include \"api/openapi.h\"",
        "",
        "const unsigned char api_openapi_doc[] = {",
    ]
    for i in range(0, len(data), 16):
        lines.append("\t" + ", ".join("0x%02x" % b for b in data[i:i + 16])
                     + ",")
    lines.append("\t0x00,")
    lines.append("};")
    lines.append("const size_t api_openapi_doc_len = %d;" % len(data))
    with open(out_c + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(out_c + ".tmp", out_c)


if __name__ == "__main__":
    main()
