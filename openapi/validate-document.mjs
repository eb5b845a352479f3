// Validate an OpenAPI document (default: clinic.yaml beside this file) as
// OpenAPI 3.1 with @seriousme/openapi-schema-validator (the official OAS
// schemas and JSON Schema 2020-12 through Ajv), then compile every schema it
// holds with Ajv2020 so that a broken `pattern` or `$ref` is caught too.
//   node validate-document.mjs [FILE]      exit 0 valid, 1 invalid
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { loadDocument, compileDocument } from "./lib.mjs";

const file = process.argv[2] ?? fileURLToPath(new URL("clinic.yaml", import.meta.url));
const validator = new Validator();
const res = await validator.validate(readFileSync(file, "utf8"));
if (!res.valid || validator.version !== "3.1") {
  console.log(`${file}: not a valid OpenAPI 3.1 document (version ${validator.version})`);
  console.log(JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
let compiled;
try {
  compiled = compileDocument(loadDocument(file), { eager: true });
} catch (e) {
  console.log(`${file}: a schema does not compile: ${e.message}`);
  process.exit(1);
}
// Every example must match its own schema.
let bad = 0, examples = 0;
for (const [path, ops] of Object.entries(compiled))
  for (const [method, parts] of Object.entries(ops))
    for (const [part, r] of Object.entries(parts))
      for (const [type, name, value] of r.examples) {
        examples++;
        const v = r.content[type];
        if (!v(value)) {
          bad++;
          console.log(`${file}: ${method} ${path} ${part} example ${name} does not match its schema: ` +
                      JSON.stringify(v.errors));
        }
      }
if (bad) process.exit(1);
console.log(`${file}: valid OpenAPI ${validator.version}, ${examples} examples match their schemas`);
