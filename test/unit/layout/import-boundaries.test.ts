// `npx eslint` (make lint, CI) refuses an import that points against the arrows of docs/architecture.md.
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint({ cwd: new URL("../../../", import.meta.url).pathname });

/** The boundary messages eslint gives `code` as if it were the file at `filePath` (which need not exist). */
async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

describe("import boundaries between src/ folders", () => {
  it.each([
    ["src/monitoring/policy.ts", 'import { ModelStore } from "../runtime/store.js";', "src/monitoring may import only src/vocabulary"],
    ["src/monitoring/stats/ks.ts", 'import { KIND } from "../../api/index.js";', "src/monitoring may import only src/vocabulary"],
    ["src/api/v1alpha1.ts", 'import { ksTwoSample } from "../monitoring/index.js";', "src/api may import only src/vocabulary"],
    ["src/vocabulary/drift.ts", 'import { KIND } from "../api/index.js";', "src/vocabulary may import nothing of Ballast's"],
    ["src/kube/client.ts", 'import { Manager } from "../operator/manager.js";', "src/kube may import only src/api"],
    ["src/runtime/sidecar.ts", 'import { loadData } from "../training/data.js";', "src/runtime may import only src/api, src/kube, src/monitoring"],
    ["src/operator/loop/reconciler.ts", 'import { SidecarServer } from "../../runtime/sidecar.js";', "src/operator may import only"],
    ["src/operator/manager.ts", 'import type { ModelStore } from "../runtime/store.js";', "src/operator may import only"],
    ["src/training/trainer.ts", 'export { runDemo } from "../demo/run-demo.js";', "src/training may import only"],
    ["src/demo/run-demo.ts", 'import { program } from "../cli/main.js";', "src/demo may import only"],
  ])("%s: %s is refused", async (file, code, message) => {
    const errors = await boundaryErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(message);
    expect(errors[0]).toContain("docs/architecture.md");
  });

  it.each([
    ["src/monitoring/stats/ks.ts", 'import { KllSketch } from "../kll-sketch.js";'],
    ["src/kube/apply.ts", 'import { KIND } from "../api/index.js";'],
    ["src/operator/loop/reconciler.ts", 'import { admitSummaries } from "../monitoring/health.js";'],
    ["src/operator/serving/status.ts", 'import { mergeSummaries } from "../../monitoring/summary.js";'],
    ["src/training/data.ts", 'import { ModelStore } from "../runtime/store.js";'],
    ["src/cli/operator.ts", 'import { runOperator } from "../operator/run.js";'],
  ])("%s: %s is allowed", async (file, code) => {
    expect(await boundaryErrors(file, code)).toEqual([]);
  });
});
