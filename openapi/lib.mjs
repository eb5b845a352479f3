// Shared by validate-document.mjs and check-responses.mjs: load the YAML
// document and compile its response schemas with Ajv (JSON Schema 2020-12,
// the dialect of OpenAPI 3.1), formats included.
import { readFileSync } from "node:fs";
import YAML from "yaml";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

export function loadDocument(file) {
  return YAML.parse(readFileSync(file, "utf8"), { maxAliasCount: -1 });
}

function deref(doc, v) {
  while (v && typeof v === "object" && typeof v.$ref === "string" && v.$ref.startsWith("#/")) {
    v = v.$ref.slice(2).split("/").reduce((o, k) => o?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return v;
}

// [[media type, name, value], ...] of a content map's examples.
function examplesOf(content) {
  const out = [];
  for (const [type, media] of Object.entries(content ?? {})) {
    if ("example" in media) out.push([type, "example", media.example]);
    for (const [name, ex] of Object.entries(media.examples ?? {})) out.push([type, name, ex.value]);
  }
  return out;
}

// { "/visits": { post: { "200": { headers: {lowercase: {required, validate}},
//   content: { "application/json": validate } } } } }
// eager: compile every schema now (to find broken ones); else each on first use.
export function compileDocument(doc, { eager = false } = {}) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const compile = (schema) => {
    if (eager) return ajv.compile(schema);
    let fn;
    const v = (data) => { fn ??= ajv.compile(schema); const ok = fn(data); v.errors = fn.errors; return ok; };
    return v;
  };
  addFormats(ajv);
  ajv.addSchema({ $id: "doc", components: doc.components ?? {} });
  const fix = (s) => JSON.parse(JSON.stringify(s).replace(/"#\/components\//g, '"doc#/components/'));
  const compiled = {};
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    compiled[path] = {};
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const rs = (compiled[path][m] = {});
      for (const [status, r0] of Object.entries(op.responses ?? {})) {
        if (status === "request") throw new Error(`${path} ${m}: a status named "request"`);
        const r = deref(doc, r0);
        const headers = {};
        for (const [name, h0] of Object.entries(r.headers ?? {})) {
          const h = deref(doc, h0);
          headers[name.toLowerCase()] = { name, required: !!h.required,
            validate: compile(fix(h.schema ?? {})) };
        }
        const content = {};
        for (const [type, media] of Object.entries(r.content ?? {}))
          content[type] = compile(fix(media.schema ?? {}));
        rs[status] = { headers, content, examples: examplesOf(r.content) };
      }
      const body = deref(doc, op.requestBody);
      rs.request = { content: {}, examples: examplesOf(body?.content) };
      for (const [type, media] of Object.entries(body?.content ?? {}))
        rs.request.content[type] = compile(fix(media.schema ?? {}));
    }
  }
  return compiled;
}
