// SPDX-License-Identifier: Apache-2.0
// Validates the answers an integration test received through api()
// (tests/lib/harness.sh) against the OpenAPI document fleetd was built
// with, in one node process (called by harness_done):
//
//   node oas_validate.js OPENAPI.json DIR
//
// DIR/calls.tsv has one line per answer: N, method, path (as sent, the
// query is dropped), status, content type; DIR/N.body is the body. For
// each answer: the path must match a path template of the document (else
// only a 404 or an HTTP-layer problem is allowed), the method one of its
// operations (else only 405), the status one of the operation's responses
// (else only a problem+json whose type is in x-fleet-any-route-problems),
// the content type one the response lists, and a JSON body the response's
// schema (ajv, JSON Schema 2020-12, formats checked). Non-JSON bodies are
// checked for route, status and content type only. Prints one line per
// failure, then a summary; exits 1 if anything failed.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const [docPath, dir] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(docPath, 'utf8'));
const DOC_ID = 'urn:fleet:openapi';
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addSchema(Object.assign({}, doc, { $id: DOC_ID }));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const anyRoute = new Set(doc['x-fleet-any-route-problems'] || []);

// Path templates, most literal segments first (as the server's router).
const templates = Object.keys(doc.paths || {}).map((tpl) => {
  const segs = tpl.split('/').slice(1);
  const score = segs.map((s) => (/^\{.*\}$/.test(s) ? '0' : '1')).join('');
  return { tpl, segs, score };
}).sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : 0));

function matchPath(p) {
  const segs = p.split('/').slice(1);
  for (const t of templates) {
    if (t.segs.length !== segs.length) continue;
    if (t.segs.every((s, i) => (/^\{.*\}$/.test(s) ? segs[i] !== '' : s === segs[i]))) return t.tpl;
  }
  return null;
}

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// Follows a local $ref; returns [object, its JSON pointer].
function deref(obj, ptr) {
  let guard = 0;
  while (obj && obj.$ref && guard++ < 10) {
    ptr = obj.$ref;
    obj = ptr.slice(2).split('/').reduce((o, k) => (o ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
  }
  return [obj, ptr];
}

const validators = new Map();
function validatorFor(ptr) {
  if (!validators.has(ptr)) validators.set(ptr, ajv.compile({ $ref: DOC_ID + ptr }));
  return validators.get(ptr);
}

const baseType = (ct) => (ct || '').split(';')[0].trim().toLowerCase();
const isJson = (ct) => { const b = baseType(ct); return b === 'application/json' || b.endsWith('+json'); };

function problemPtr() { return '#/components/schemas/Problem'; }

function check(call) {
  const { method, rawPath, status, ctype, body } = call;
  let parsed;
  if (isJson(ctype) && body.length > 0) {
    try { parsed = JSON.parse(body); } catch (e) { return `the body is not JSON (${e.message})`; }
  }
  const problemType = parsed && typeof parsed.type === 'string' ? parsed.type.replace(/^urn:fleet:problem:/, '') : null;
  const isProblem = baseType(ctype) === 'application/problem+json';
  const generic = () => {
    // Any route may get the HTTP layer's problems.
    if (!isProblem || !anyRoute.has(problemType)) return null;
    const v = validatorFor(problemPtr());
    return v(parsed) ? 'ok' : `problem body: ${ajv.errorsText(v.errors)}`;
  };
  const tpl = matchPath(rawPath);
  if (tpl === null) {
    const g = generic();
    if (g === 'ok') return null;
    return g || `${rawPath} matches no path of the document (answered ${status})`;
  }
  const item = doc.paths[tpl];
  const m = method.toLowerCase() === 'head' && !item.head ? 'get' : method.toLowerCase();
  const op = item[m];
  if (!op) {
    const g = generic();
    if (g === 'ok') return null;
    return g || `${tpl} has no ${method} operation (answered ${status})`;
  }
  const opPtr = `#/paths/${esc(tpl)}/${m}`;
  let resp = op.responses && (op.responses[String(status)] || op.responses[`${String(status)[0]}XX`]);
  let respPtr = `${opPtr}/responses/${status}`;
  if (!resp && op.responses && op.responses.default) { resp = op.responses.default; respPtr = `${opPtr}/responses/default`; }
  if (!resp) {
    const g = generic();
    if (g === 'ok') return null;
    return g || `${method} ${tpl} does not list status ${status}${problemType ? ` (${problemType})` : ''}`;
  }
  [resp, respPtr] = deref(resp, respPtr);
  const content = resp.content || {};
  const types = Object.keys(content);
  if (types.length === 0) {
    return body.length > 0 && method !== 'HEAD' ? `${method} ${tpl} ${status}: the document lists no body, got ${ctype}` : null;
  }
  const key = types.find((t) => baseType(t) === baseType(ctype));
  if (!key) return `${method} ${tpl} ${status}: content type ${ctype} is not one of ${types.join(', ')}`;
  if (parsed === undefined || !content[key].schema) return null;
  const v = validatorFor(`${respPtr}/content/${esc(key)}/schema`);
  if (!v(parsed)) return `${method} ${tpl} ${status}: ${ajv.errorsText(v.errors, { dataVar: 'body' })}`;
  return null;
}

const lines = fs.existsSync(path.join(dir, 'calls.tsv'))
  ? fs.readFileSync(path.join(dir, 'calls.tsv'), 'utf8').split('\n').filter(Boolean) : [];
let failed = 0;
let checked = 0;
const seen = new Map();
for (const line of lines) {
  const [n, method, rawUrl, status, ctype] = line.split('\t');
  if (status === '000') continue; // no answer (a test of a dead server)
  const bodyFile = path.join(dir, `${n}.body`);
  const body = fs.existsSync(bodyFile) ? fs.readFileSync(bodyFile, 'utf8') : '';
  const rawPath = rawUrl.split('?')[0].split('#')[0];
  checked++;
  let err;
  try {
    err = check({ method, rawPath, status: Number(status), ctype, body });
  } catch (e) {
    err = `validator error: ${e.message}`;
  }
  if (err) {
    failed++;
    // One line per kind of failure (ids folded), with a count and an example.
    const key = `${method} ${rawPath.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|[0-9A-F]{16,}/g, '{id}')} -> ${status}: ${err.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '{id}')}`;
    if (!seen.has(key)) seen.set(key, { n: 0, example: `${method} ${rawUrl}`, body });
    seen.get(key).n++;
  }
}
for (const [key, v] of seen) {
  console.log(`FAIL - openapi: ${key}${v.n > 1 ? ` (${v.n} answers)` : ''}`);
  console.log(`       e.g. ${v.example}${v.body.length > 0 ? `: ${v.body.slice(0, 240)}` : ''}`);
}
console.log(`openapi: ${checked} answers checked against the document, ${failed} not as documented`);
process.exit(failed > 0 ? 1 : 0);
