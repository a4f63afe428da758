// `node dist/api/generate-crd.js [repo root]` (make manifests): writes the generated CRD to crds/ and
// the Helm chart, and the field reference into docs/api.md.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CRD_FILES, renderCrdYaml } from "./crd.js";
import { updateApiReference } from "./reference.js";

const root = resolve(process.argv[2] ?? ".");
const yaml = renderCrdYaml();
for (const file of CRD_FILES) {
  const path = resolve(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, yaml);
  console.log(`wrote ${file}`);
}
const apiDoc = resolve(root, "docs/api.md");
writeFileSync(apiDoc, updateApiReference(readFileSync(apiDoc, "utf8")));
console.log("wrote docs/api.md (field reference)");
