// `node dist/api/generate-crd.js [repo root]`: writes the generated CRD to crds/ and the Helm chart.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CRD_FILES, renderCrdYaml } from "./crd.js";

const root = resolve(process.argv[2] ?? ".");
const yaml = renderCrdYaml();
for (const file of CRD_FILES) {
  const path = resolve(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, yaml);
  console.log(`wrote ${file}`);
}
