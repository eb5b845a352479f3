// Check HTTP responses against the OpenAPI document: the operation exists,
// the status is documented, every required header is present and every
// documented header's value matches its schema, the media type is
// documented, and the body matches its schema.
//
//   node check-responses.mjs [--doc FILE] RECORDS.jsonl
//
// One JSON record a line: {method, path, status, headers: {name: value},
// body, where}. A path is matched to the documented path it ends with
// (/hs/visits is /visits: the suite mounts the handlers under several
// Locations); records for other paths are counted and not checked.
// Prints "checked N responses (M for other paths)" and one "FAIL" line per
// mismatch; exit 0 when none failed, 1 otherwise.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadDocument, compileDocument } from "./lib.mjs";

const args = process.argv.slice(2);
let docFile = fileURLToPath(new URL("clinic.yaml", import.meta.url));
if (args[0] === "--doc") { docFile = args[1]; args.splice(0, 2); }
const compiled = compileDocument(loadDocument(docFile));
const paths = Object.keys(compiled).sort((a, b) => b.length - a.length);

const ajvErrors = (v) => v.errors.map((e) => `${e.instancePath || "/"} ${e.message}` +
  (e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "")).join("; ");

function check(rec) {
  const path = rec.path.split("?")[0];
  const docPath = paths.find((p) => path === p || path.endsWith(p));
  if (!docPath) return null;
  const what = `${rec.method} ${rec.path.slice(0, 120)} -> ${rec.status}`;
  const op = compiled[docPath][rec.method.toLowerCase()];
  if (!op) return [`${what}: method ${rec.method} of ${docPath} is not in the document`];
  const resp = op[String(rec.status)] ?? op[`${String(rec.status)[0]}XX`] ?? op.default;
  if (!resp) return [`${what}: status ${rec.status} is not documented for ${rec.method} ${docPath}`];
  const fails = [];
  const headers = Object.fromEntries(Object.entries(rec.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  for (const [lc, h] of Object.entries(resp.headers)) {
    if (!(lc in headers)) {
      if (h.required) fails.push(`${what}: required header ${h.name} is missing`);
    } else if (!h.validate(headers[lc])) {
      fails.push(`${what}: header ${h.name}: ${JSON.stringify(headers[lc])}: ${ajvErrors(h.validate)}`);
    }
  }
  const body = rec.body ?? "";
  const types = Object.keys(resp.content);
  if (types.length === 0) {
    if (body !== "") fails.push(`${what}: a body where the document has none`);
    return fails;
  }
  const type = (headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  const validate = resp.content[type];
  if (!validate) {
    fails.push(`${what}: Content-Type ${JSON.stringify(headers["content-type"] ?? null)} is not one of ${types.join(", ")}`);
    return fails;
  }
  if (rec.method === "HEAD") {
    if (body !== "") fails.push(`${what}: a body on a HEAD answer`);
    return fails;
  }
  let value;
  try { value = JSON.parse(body); } catch (e) {
    fails.push(`${what}: the body is not JSON: ${body.slice(0, 80)}`);
    return fails;
  }
  if (!validate(value)) fails.push(`${what}: body ${body.slice(0, 160)}: ${ajvErrors(validate)}`);
  return fails;
}

let checked = 0, other = 0, failed = 0;
for (const file of args) {
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line);
    const fails = check(rec);
    if (fails === null) { other++; continue; }
    checked++;
    for (const f of fails) {
      failed++;
      console.log(`FAIL ${rec.where ? rec.where + ": " : ""}${f}`);
    }
  }
}
console.log(`checked ${checked} responses (${other} for other paths), ${failed} mismatches`);
process.exit(failed ? 1 : 0);
