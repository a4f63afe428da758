// A user trains on a CSV whose column names a ModelDeployment could never list: `ballast train` refuses it at once,
// naming the column, instead of writing a model whose serving and monitoring break later.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { openStore } from "../../../src/runtime/store.js";
import { DataError } from "../../../src/training/data.js";
import { checkColumnName, FEATURE_NAME_PATTERN } from "../../../src/training/preprocess.js";
import { train } from "../../../src/training/trainer.js";
import { ballastBin } from "../runtime/local-processes.js";

let dir: string;
const csv = (header: string[]): string => {
  const file = path.join(dir, `${fs.readdirSync(dir).length}.csv`);
  const rows = Array.from({ length: 40 }, (_, i) => [String(i % 7), ["red", "green", "blue"][i % 3]!, i % 2 ? "yes" : "no"]);
  fs.writeFileSync(file, [header, ...rows].map((r) => r.map((c) => JSON.stringify(c)).join(",")).join("\n") + "\n");
  return file;
};
const trainOn = (file: string, label: string, features?: string[]) =>
  train({
    data: [file],
    store: openStore(path.join(dir, "store")),
    model: "shop",
    label,
    task: "classification",
    epochs: 1,
    seed: 1,
    maxTrials: 1,
    holdout: 0.2,
    validation: 0.1,
    batchSize: 16,
    learningRate: 0.01,
    hiddenUnits: [4],
    l2: 1e-4,
    patience: 2,
    backend: "auto",
    ...(features ? { features } : {}),
  });

beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-feature-names-"))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("feature names at train time", () => {
  it("uses the CRD's feature-name pattern", () => {
    type Node = { pattern?: string; items?: Node; properties?: Record<string, Node> };
    const crd = parse(fs.readFileSync(new URL("../../../crds/ballast.dev_modeldeployments.yaml", import.meta.url), "utf8")) as {
      spec: { versions: { schema: { openAPIV3Schema: Node } }[] };
    };
    const monitoring = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!["spec"]!.properties!["monitoring"]!.properties!;
    expect(FEATURE_NAME_PATTERN).toBe(monitoring["features"]!.items!.properties!["name"]!.pattern);
    expect(FEATURE_NAME_PATTERN).toBe(monitoring["labelField"]!.pattern);
  });

  it("accepts what a ModelDeployment can list and refuses the rest, naming the column", () => {
    for (const ok of ["size", "_x", "temp_max", "a.b-c", `a${"b".repeat(127)}`]) expect(() => checkColumnName(ok, "feature")).not.toThrow();
    for (const bad of ["temp max", "1st", "größe", "", "a/b", `a${"b".repeat(128)}`]) expect(() => checkColumnName(bad, "feature")).toThrow(DataError);
    expect(() => checkColumnName("temp max", "feature")).toThrow(
      /^feature column "temp max" is not a valid ModelDeployment feature name: names must match \^\[A-Za-z_\]/,
    );
    // A huge header is named, not repeated whole.
    expect(() => checkColumnName("x y".repeat(10_000), "feature")).toThrow(/^feature column "x yx y.{50,70}…" is not a valid/);
  });

  it("refuses a bad feature column, a bad label column, and passes once --features leaves it out", async () => {
    await expect(trainOn(csv(["size (cm)", "color", "label"]), "label")).rejects.toThrow(
      'feature column "size (cm)" is not a valid ModelDeployment feature name',
    );
    await expect(trainOn(csv(["size", "color", "is good?"]), "is good?")).rejects.toThrow(
      'label column "is good?" is not a valid ModelDeployment feature name',
    );
    await expect(trainOn(csv(["size", "color (v2)", "label"]), "label", ["size", "color (v2)"])).rejects.toThrow('feature column "color (v2)" is not a valid');
    const ok = await trainOn(csv(["size (cm)", "color", "label"]), "label", ["color"]);
    expect(ok.metadata.features.map((f) => f.name)).toEqual(["color"]);
  });

  it("ballast train exits 2 and names the column", async () => {
    const res = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        ballastBin,
        ["train", "--data", csv(["size", "colour name", "label"]), "--label", "label", "--store", path.join(dir, "cli"), "--model", "shop", "--epochs", "1"],
        (err, _out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('feature column "colour name" is not a valid ModelDeployment feature name');
  });
});
