// `ballast train` as a user sees it: reproducible versions, fine-tuning, regression, data errors with exit code 2.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMetadata } from "../../../src/runtime/metadata.js";
import { openStore } from "../../../src/runtime/store.js";
import { DataError, loadTable } from "../../../src/training/data.js";
import { train, type TrainOptions } from "../../../src/training/trainer.js";
import { ballastBin } from "../runtime/local-processes.js";
import { WEATHER_FEATURES, loadWeather, weatherCsvPath } from "../runtime/weather-fixture.js";

let dir: string;
let seattleCsv: string;
let newYorkJsonl: string;

const options = (storeDir: string, overrides: Partial<TrainOptions> = {}): TrainOptions => ({
  data: [seattleCsv],
  store: openStore(storeDir),
  model: "weather",
  label: "weather",
  task: "classification",
  features: [...WEATHER_FEATURES],
  epochs: 3,
  holdout: 0.2,
  validation: 0.1,
  seed: 11,
  batchSize: 64,
  learningRate: 0.01,
  hiddenUnits: [8],
  l2: 1e-4,
  patience: 5,
  backend: "auto",
  ...overrides,
});

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-train-"));
  const rows = loadWeather();
  const cols = ["date", ...WEATHER_FEATURES, "weather"] as const;
  seattleCsv = path.join(dir, "seattle.csv");
  fs.writeFileSync(
    seattleCsv,
    cols.join(",") +
      "\n" +
      rows
        .filter((r) => r.location === "Seattle")
        .map((r) => cols.map((c) => r[c]).join(","))
        .join("\n") +
      "\n",
  );
  newYorkJsonl = path.join(dir, "new-york.jsonl");
  fs.writeFileSync(
    newYorkJsonl,
    rows
      .filter((r) => r.location === "New York")
      .map((r) => JSON.stringify(Object.fromEntries(cols.map((c) => [c, r[c]]))))
      .join("\n") + "\n",
  );
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("train", () => {
  it("writes a version with preprocessing, reference profile and holdout metrics, reproducibly for a seed", async () => {
    const epochs: string[] = [];
    const a = await train(options(path.join(dir, "a"), { onEpoch: (p) => epochs.push(`${p.trial} ${p.epoch}`) }));
    const b = await train(options(path.join(dir, "b")));
    await train(options(path.join(dir, "c"), { seed: 12 }));
    // Without a parent the search has no fine-tune trial: three trials of 3 epochs.
    expect(epochs).toEqual(["scratch", "wider", "stronger-l2"].flatMap((t) => [1, 2, 3].map((e) => `${t} ${e}`)));
    const meta = a.metadata;
    expect(meta).toMatchObject({
      model: "weather",
      version: "v1",
      task: "classification",
      label: "weather",
      parentVersion: null,
      classes: ["drizzle", "fog", "rain", "snow", "sun"],
    });
    expect(meta.features.map((f) => [f.name, f.type])).toEqual(WEATHER_FEATURES.map((f) => [f, "numeric"]));
    expect(meta.dataWindow).toMatchObject({ rows: 1461, holdoutRows: 292 });
    expect(meta.holdoutMetrics.samples).toBe(292);
    expect(meta.holdoutMetrics.accuracy).toBeGreaterThan(0.4);
    expect(["wasm", "cpu", "tensorflow"]).toContain(meta.backend);
    expect((meta.referenceProfile as { features: { rows: number } }).features.rows).toBe(meta.dataWindow.trainRows);
    const weights = (d: string): Buffer => fs.readFileSync(path.join(dir, d, "weather", "v1", "weights.bin"));
    expect(weights("a").equals(weights("b"))).toBe(true);
    expect(b.metadata.holdoutMetrics).toEqual(meta.holdoutMetrics);
    expect(weights("a").equals(weights("c"))).toBe(false);
    expect(await readMetadata(openStore(path.join(dir, "a")), "weather", "v1")).toEqual(meta);
  });

  it("fine-tunes a version on new data, keeping its preprocessing and reporting the parent on the same holdout", async () => {
    const storeDir = path.join(dir, "finetune");
    const parent = await train(options(storeDir));
    const child = await train(
      options(storeDir, { data: [newYorkJsonl], fromVersion: "v1", label: undefined, task: undefined, features: undefined, learningRate: 0.005 }),
    );
    expect(child.metadata.version).toBe("v2");
    expect(child.metadata.parentVersion).toBe("v1");
    expect(child.metadata.features).toEqual(parent.metadata.features);
    expect(child.metadata.classes).toEqual(parent.metadata.classes);
    expect(child.metadata.parentHoldoutMetrics!.samples).toBe(child.metadata.holdoutMetrics.samples);
    expect(child.metadata.dataWindow.sources).toEqual([newYorkJsonl]);
  });

  it("trains regression, reporting mae and rmse in the label's units", async () => {
    const result = await train(
      options(path.join(dir, "regression"), { label: "temp_max", task: "regression", features: ["precipitation", "temp_min", "wind"], epochs: 5 }),
    );
    const m = result.metadata.holdoutMetrics;
    expect(result.metadata.target!.std).toBeGreaterThan(1);
    expect(m.mae).toBeGreaterThan(0);
    expect(m.mae).toBeLessThan(result.metadata.target!.std);
    expect(m.rmse).toBeGreaterThanOrEqual(m.mae!);
    // Selection by rmse: lower is better.
    const e = result.metadata.evaluation!;
    expect(e).toMatchObject({ metric: "rmse", higherIsBetter: false, original: { rows: m.samples, candidate: m.rmse, serving: null } });
    const trials = result.metadata.trials!;
    expect(trials.find((t) => t.selected)!.validation).toBe(Math.min(...trials.map((t) => t.validation!)));
  });
});

describe("training data", () => {
  it("reads CSV, JSON Lines and JSON arrays, and names the file and line of a bad row", async () => {
    const jsonArray = path.join(dir, "rows.json");
    fs.writeFileSync(
      jsonArray,
      JSON.stringify([
        { a: 1, y: "p" },
        { a: 2, y: "q", b: "new" },
      ]),
    );
    const table = await loadTable([jsonArray]);
    expect(table.columns).toEqual(["a", "y", "b"]);
    expect(table.rows).toHaveLength(2);
    const bad = path.join(dir, "bad.jsonl");
    fs.writeFileSync(bad, '{"a": 1}\n{"a": 2}\n{"a": \n');
    await expect(loadTable([bad])).rejects.toThrow(new RegExp(`${bad}:3: invalid JSON`));
    await expect(loadTable([path.join(dir, "missing.csv")])).rejects.toThrow(/missing.csv: no such file or directory/);
    await expect(loadTable([weatherCsvPath().replace(".csv", ".parquet")])).rejects.toThrow(DataError);
    // A source without a telling extension (e.g. an object-store key) needs --data-format.
    const bare = path.join(dir, "export-0001");
    fs.copyFileSync(seattleCsv, bare);
    await expect(loadTable([bare])).rejects.toThrow(/unknown file type "" .*--data-format/);
    expect((await loadTable([bare], { format: "csv" })).rows).toHaveLength(1461);
  });
});

describe("bin/ballast train", () => {
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      // Without the caller's AWS_* variables, so the s3:// case sees no credentials wherever it runs.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AWS_")));
      execFile(ballastBin, ["train", ...args], { env }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it("prints the new version and metrics as JSON and logs one line per epoch", async () => {
    const res = await run([
      "--data",
      seattleCsv,
      "--features",
      WEATHER_FEATURES.join(","),
      "--label",
      "weather",
      "--store",
      path.join(dir, "cli"),
      "--model",
      "weather",
      "--epochs",
      "2",
      "--hidden",
      "8",
      "--max-trials",
      "1",
    ]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { version: string; holdoutMetrics: { accuracy: number }; backend: string };
    expect(out.version).toBe("v1");
    expect(out.holdoutMetrics.accuracy).toBeGreaterThan(0);
    const epochs = res.stderr.split("\n").filter((l) => l.includes('"event":"epoch"'));
    expect(epochs).toHaveLength(2);
    expect(JSON.parse(epochs[0]!)).toMatchObject({ component: "train", trial: "scratch", epoch: 1, epochs: 2 });
  });

  it.each([
    [["--label", "nope"], 'label column "nope" is not in the data'],
    [["--label", "weather"], 'feature "date" looks like an identifier (1461 distinct values'],
    [["--label", "weather", "--features", "wind,humidity"], "feature column(s) humidity not in the data"],
    [["--label", "weather", "--holdout", "1.5"], "--holdout must be a number in [0, 1)"],
    [["--label", "weather", "--store", "gs://bucket"], 'store: "gs://bucket" must be pvc://'],
    [["--label", "weather", "--store", "s3://bucket"], "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"],
  ])("exits 2 for bad input %j naming the problem", async (args, message) => {
    const res = await run(["--data", seattleCsv, "--store", path.join(dir, "bad"), "--model", "weather", ...args]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  });
});
