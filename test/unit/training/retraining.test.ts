// Retraining as the operator's Job runs it: feedback from every serving pod's log, a recent holdout stratified over
// time, the original holdout carried forward generation after generation, a bounded search split across the
// indexes of a Job, and the result the operator reads from the termination message.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOLDOUT_FILE, readMetadata } from "../../../src/runtime/metadata.js";
import { openStore, resolveVersion } from "../../../src/runtime/store.js";
import { DataError } from "../../../src/training/data.js";
import { loadFeedback } from "../../../src/training/feedback.js";
import { planSplit, stratifiedHoldout, type SplitExample } from "../../../src/training/holdout.js";
import {
  MAX_TERMINATION_MESSAGE_BYTES,
  TRAIN_RESULT_FORMAT,
  encodeTrainFailure,
  encodeTrainResult,
  isTrainFailure,
  parseTrainResult,
  type TrainSuccess,
} from "../../../src/training/result.js";
import { seededRandom } from "../../../src/training/split.js";
import { train, type TrainOptions } from "../../../src/training/trainer.js";
import { shardTrials, trialPlan } from "../../../src/training/trials.js";
import { ballastBin } from "../runtime/local-processes.js";
import { WEATHER_FEATURES, loadWeather, type WeatherRow } from "../runtime/weather-fixture.js";
import { writeServedTraffic } from "./sidecar-logs.js";

const HOUR = 3_600_000;
/** v1 goes live at T1 (feedback before it is an older regime); r1 at T2. */
const T0 = Date.parse("2026-01-01T00:00:00Z");
const T1 = T0 + 24 * HOUR;
const T2 = T1 + 24 * HOUR;

let dir: string;
let storeDir: string;
let logRoot: string;
let seattleCsv: string;
let seattle: WeatherRow[];
let v1Original: string[];
const traffic = { before: 0, gen1: 0, gen2: 0 };
let gen1Keys: Set<string>;
let gen2Keys: Set<string>;

const keyOf = (features: Record<string, unknown>, label: unknown): string => JSON.stringify([...WEATHER_FEATURES.map((f) => Number(features[f])), label]);
const rowKey = (r: WeatherRow): string => keyOf(r, r.weather);

const options = (overrides: Partial<TrainOptions> = {}): TrainOptions => ({
  data: [seattleCsv],
  store: openStore(storeDir),
  model: "weather",
  label: "weather",
  task: "classification",
  features: [...WEATHER_FEATURES],
  epochs: 3,
  holdout: 0.2,
  validation: 0.1,
  seed: 5,
  batchSize: 64,
  learningRate: 0.01,
  hiddenUnits: [8],
  l2: 1e-4,
  patience: 5,
  backend: "auto",
  ...overrides,
});

const holdoutLines = (version: string, set: "recent" | "original"): string[] =>
  fs
    .readFileSync(path.join(storeDir, "weather", version, HOLDOUT_FILE), "utf8")
    .split("\n")
    .filter((l) => l !== "" && (JSON.parse(l) as { set: string }).set === set);

const lineKey = (line: string): string => {
  const r = JSON.parse(line) as { features: Record<string, unknown>; label: unknown };
  return keyOf(r.features, r.label);
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-retrain-"));
  storeDir = path.join(dir, "store");
  logRoot = path.join(storeDir, "weather", "_log");
  const rows = loadWeather();
  seattle = rows.filter((r) => r.location === "Seattle");
  const newYork = rows.filter((r) => r.location === "New York");
  const cols = ["date", ...WEATHER_FEATURES, "weather"] as const;
  seattleCsv = path.join(dir, "seattle.csv");
  fs.writeFileSync(seattleCsv, cols.join(",") + "\n" + seattle.map((r) => cols.map((c) => r[c]).join(",")).join("\n") + "\n");
  // New York traffic: some before v1 went live, then v1's regime (pods a, b), then r1's (pods c, d).
  traffic.before = writeServedTraffic(logRoot, "v0", newYork.slice(0, 150), T0, "old", ["pod-old-a", "pod-old-b"]).labelled;
  traffic.gen1 = writeServedTraffic(logRoot, "v1", newYork.slice(150, 750), T1, "g1").labelled;
  traffic.gen2 = writeServedTraffic(logRoot, "r1", newYork.slice(750, 1200), T2, "g2", ["pod-c", "pod-d"]).labelled;
  gen1Keys = new Set(newYork.slice(150, 750).map(rowKey));
  gen2Keys = new Set(newYork.slice(750, 1200).map(rowKey));
  await train(options({ maxTrials: 1 }));
  v1Original = holdoutLines("v1", "original");
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("feedback from serving pods' logs", () => {
  it("reads every pod's log under _log/, keeps the rows predicted since the serving version went live, and counts a row reachable twice once", async () => {
    const all = await loadFeedback([logRoot, path.join(logRoot, "pod-a"), `sidecar-log://${logRoot}`]);
    expect(all.directories.filter((d) => d.endsWith("pod-a"))).toHaveLength(1);
    expect(all.rows).toHaveLength(traffic.before + traffic.gen1 + traffic.gen2);
    expect(new Set(all.rows.map((r) => `${r.id}/${r.row}`)).size).toBe(all.rows.length);
    expect(all.rows.map((r) => r.ts)).toEqual(all.rows.map((r) => r.ts).sort((a, b) => a - b));
    expect(all).toMatchObject({ label: "weather", task: "classification" });

    const since = await loadFeedback([logRoot], { since: T1 });
    expect(since.rows).toHaveLength(traffic.gen1 + traffic.gen2);
    expect(since.rows.every((r) => r.ts >= T1)).toBe(true);
    const newest = await loadFeedback([`file://${logRoot}`], { since: T1, maxRows: 50 });
    expect(newest.rows).toEqual(since.rows.slice(-50));

    await expect(loadFeedback([path.join(dir, "no-such-log")])).rejects.toThrow(DataError);
    await expect(loadFeedback([path.join(dir, "no-such-log")])).rejects.toThrow(/--feedback .*no-such-log: no such directory/);
  });
});

describe("holdout hygiene", () => {
  const examples = (dataRows: number, feedbackRows: number, carried: string[] = []): SplitExample[] => [
    ...Array.from({ length: dataRows }, (_, i) => ({ source: "data" as const, key: `d${i % 400}` })),
    ...Array.from({ length: feedbackRows }, (_, i) => ({ source: "feedback" as const, key: `f${i}`, ts: T1 + ((i * 7919) % feedbackRows) * 1000 })),
    ...carried.map((key) => ({ source: "carried" as const, key })),
  ];

  it("never trains on a holdout row, in every mode (initial, fine-tune on new data, feedback, feedback with a carried holdout)", () => {
    const cases: [string, SplitExample[]][] = [
      ["initial", examples(500, 0)],
      ["new data, carried holdout", examples(500, 0, ["d1", "d2", "d3"])],
      ["feedback", examples(500, 300)],
      ["feedback, carried holdout", examples(500, 300, ["d7", "d8"])],
    ];
    for (const [name, ex] of cases) {
      const plan = planSplit(ex, { holdout: 0.2, validation: 0.1, random: seededRandom(3) });
      const held = new Set([...plan.recent, ...plan.original]);
      const trained = [...plan.train, ...plan.validation];
      expect({ name, overlap: trained.filter((i) => held.has(i)) }).toEqual({ name, overlap: [] });
      expect({ name, size: new Set([...trained, ...held]).size }).toEqual({ name, size: ex.length - plan.droppedAsOriginal });
      const carriedKeys = new Set(ex.filter((e) => e.source === "carried").map((e) => e.key));
      expect(trained.some((i) => carriedKeys.has(ex[i]!.key))).toBe(false);
      if (ex.some((e) => e.source === "feedback")) expect(plan.recent.every((i) => ex[i]!.source === "feedback")).toBe(true);
    }
    // Data keys repeat every 400 rows: "d7" and "d8" each stand for two data rows, all four dropped.
    expect(planSplit(cases[3]![1], { holdout: 0.2, validation: 0.1, random: seededRandom(3) }).droppedAsOriginal).toBe(4);
  });

  it("takes the recent holdout from every time stratum", () => {
    const ts = Array.from({ length: 1000 }, (_, i) => T1 + ((i * 389) % 1000) * 60_000);
    const { holdout, strata } = stratifiedHoldout(ts, 0.2, seededRandom(1));
    expect(strata).toHaveLength(10);
    expect(holdout).toHaveLength(200);
    for (const s of strata) {
      const inStratum = holdout.filter((i) => ts[i]! >= s.from && ts[i]! <= s.to);
      expect(inStratum).toHaveLength(s.held);
      expect(s).toMatchObject({ rows: 100, held: 20 });
    }
    // Few rows: fewer strata, never one without a held-out row.
    const few = stratifiedHoldout(ts.slice(0, 14), 0.2, seededRandom(1));
    expect(few.strata.map((s) => s.held)).toEqual([1, 1, 1]);
    expect(few.holdout).toHaveLength(3);
    expect(stratifiedHoldout(ts.slice(0, 2), 0.2, seededRandom(1)).holdout).toEqual([]);
  });

  it("holds out a stratified share of recent feedback and carries the original holdout forward across two generations", async () => {
    const r1 = await train(options({ fromVersion: "v1", version: "r1", candidate: true, feedback: [logRoot], feedbackSince: new Date(T1).toISOString() }));
    const m = r1.metadata;
    expect(v1Original).toHaveLength(292);
    expect(holdoutLines("r1", "original")).toEqual(v1Original);
    const recent = holdoutLines("r1", "recent");
    expect(recent).toHaveLength(m.dataWindow.recentHoldoutRows!);
    // Only feedback from v1's regime on (labelled rows at or after T1), a fifth of it.
    const feedbackRows = traffic.gen1 + traffic.gen2;
    expect(m.dataWindow).toMatchObject({
      feedbackRows,
      rows: seattle.length + feedbackRows,
      originalHoldoutRows: 292,
      feedbackSince: new Date(T1).toISOString(),
    });
    expect(recent.length).toBeGreaterThanOrEqual(Math.round(feedbackRows * 0.2));
    expect(recent.length).toBeLessThanOrEqual(Math.round(feedbackRows * 0.2) + 10);
    expect(recent.every((l) => gen1Keys.has(lineKey(l)) || gen2Keys.has(lineKey(l)))).toBe(true);
    // Every Seattle row equal to an original holdout row is left out of training.
    const originalKeys = new Set(v1Original.map(lineKey));
    const recentFeedback = (await loadFeedback([logRoot], { since: T1 })).rows.filter(
      (r) => !recent.includes(JSON.stringify({ set: "recent", features: r.features, label: r.label })),
    );
    const dropped =
      seattle.filter((r) => originalKeys.has(rowKey(r))).length + recentFeedback.filter((r) => originalKeys.has(keyOf(r.features, r.label))).length;
    expect(dropped).toBeGreaterThanOrEqual(292);
    expect(m.dataWindow.trainRows + m.dataWindow.validationRows).toBe(m.dataWindow.rows - recent.length - dropped);

    expect(m.evaluation).toMatchObject({ metric: "accuracy", higherIsBetter: true, recent: { rows: recent.length }, original: { rows: 292 } });
    for (const set of [m.evaluation!.recent, m.evaluation!.original]) {
      expect(set.candidate).toBeGreaterThan(0.2);
      expect(set.serving).toBeGreaterThan(0.2);
      expect(set.servingMetrics!.samples).toBe(set.rows);
    }
    expect(m.evaluation!.latencyMsPerRow.candidate).toBeGreaterThan(0);
    expect(m.evaluation!.latencyMsPerRow.serving).toBeGreaterThan(0);
    expect(m.holdoutMetrics.samples).toBe(recent.length);

    expect(m.trials!.map((t) => [t.name, t.fromParent, t.hiddenUnits])).toEqual([
      ["fine-tune", true, [8]],
      ["scratch", false, [8]],
      ["wider", false, [16]],
      ["stronger-l2", false, [8]],
    ]);
    expect(m.trials![0]!.learningRate).toBeCloseTo(0.001, 12);
    expect(m.trials![3]!.l2).toBeCloseTo(1e-3, 12);
    const selected = m.trials!.filter((t) => t.selected);
    expect(selected).toHaveLength(1);
    expect(selected[0]!.validation).toBe(Math.max(...m.trials!.map((t) => t.validation!)));
    expect(m.training.hiddenUnits).toEqual(selected[0]!.hiddenUnits);

    // A candidate is never "the latest" an unpinned server picks, until named.
    expect(m.candidate).toBe(true);
    const store = openStore(storeDir);
    expect(await resolveVersion(store, "weather")).toBe("v1");
    expect(await resolveVersion(store, "weather", "r1")).toBe("r1");
    expect(await readMetadata(store, "weather", "r1")).toEqual(m);

    // The next generation, fine-tuned from r1 on r1's regime, still carries v1's original holdout.
    const r2 = await train(
      options({
        data: [],
        dataFromParent: true,
        fromVersion: "r1",
        version: "r2",
        candidate: true,
        feedback: [logRoot],
        feedbackSince: new Date(T2).toISOString(),
        maxTrials: 2,
      }),
    );
    expect(holdoutLines("r2", "original")).toEqual(v1Original);
    expect(r2.metadata.dataWindow).toMatchObject({ sources: [seattleCsv], feedbackSources: [logRoot] });
    expect(r2.metadata.dataWindow.feedbackRows).toBe(traffic.gen2);
    expect(holdoutLines("r2", "recent").every((l) => gen2Keys.has(lineKey(l)))).toBe(true);
    expect(r2.metadata.trials!.map((t) => t.name)).toEqual(["fine-tune", "scratch"]);
  });
});

describe("a parent written before holdout.jsonl existed", () => {
  it("still loads, and the original holdout is drawn from --data", async () => {
    const store = openStore(storeDir);
    const meta = await readMetadata(store, "weather", "v1");
    const legacy: Record<string, unknown> = { ...meta, version: "legacy", createdAt: "2025-01-01T00:00:00Z", dataWindow: { ...meta.dataWindow } };
    for (const field of ["candidate", "trials", "shard", "evaluation"]) delete legacy[field];
    for (const field of ["feedbackSources", "feedbackRows", "feedbackSince", "recentHoldoutRows", "originalHoldoutRows"])
      delete (legacy.dataWindow as Record<string, unknown>)[field];
    const files = new Map<string, Uint8Array | string>([["metadata.json", JSON.stringify(legacy)]]);
    for (const f of ["model.json", "weights.bin"]) files.set(f, await store.readFile("weather", "v1", f));
    await store.writeVersion("weather", "legacy", files);
    expect((await readMetadata(store, "weather", "legacy")).version).toBe("legacy");

    const child = await train(
      options({ fromVersion: "legacy", version: "from-legacy", feedback: [logRoot], feedbackSince: new Date(T1).toISOString(), maxTrials: 1 }),
    );
    const original = holdoutLines("from-legacy", "original");
    expect(original).toHaveLength(Math.round(seattle.length * 0.2));
    const seattleKeys = new Set(seattle.map(rowKey));
    expect(original.every((l) => seattleKeys.has(lineKey(l)))).toBe(true);
    expect(child.metadata.evaluation!.original).toMatchObject({ rows: original.length, serving: expect.any(Number) });
  });
});

describe("bounded search", () => {
  it("orders the trials, skips fine-tune without a parent, and splits them across shards", () => {
    const base = { hiddenUnits: [32, 16], learningRate: 0.01, l2: 1e-4, maxTrials: 4 };
    expect(trialPlan(base).map((t) => t.name)).toEqual(["scratch", "wider", "stronger-l2"]);
    const withParent = trialPlan({ ...base, parent: { hiddenUnits: [8, 4], l2: 1e-3 } });
    expect(withParent.map((t) => [t.name, t.hiddenUnits, t.l2])).toEqual([
      ["fine-tune", [8, 4], 1e-3],
      ["scratch", [8, 4], 1e-4],
      ["wider", [16, 8], 1e-4],
      ["stronger-l2", [8, 4], 1e-3],
    ]);
    expect(trialPlan({ ...base, maxTrials: 2 }).map((t) => t.name)).toEqual(["scratch", "wider"]);
    for (const shards of [1, 2, 3, 4]) {
      const parts = Array.from({ length: shards }, (_, k) => shardTrials(withParent, { index: k, count: shards }).map((t) => t.name));
      expect(parts.flat().sort()).toEqual(withParent.map((t) => t.name).sort());
    }
    expect(shardTrials(withParent, { index: 1, count: 2 }).map((t) => t.name)).toEqual(["scratch", "stronger-l2"]);
    expect(() => shardTrials(trialPlan({ ...base, maxTrials: 2 }), { index: 2, count: 3 })).toThrow(/shard 2 of 3 has no trials/);
  });

  it("runs each shard's share of the trials on the same split and writes <version>-<shard>", async () => {
    const shard = (index: number) =>
      train(
        options({
          fromVersion: "v1",
          version: "s",
          candidate: true,
          feedback: [logRoot],
          feedbackSince: new Date(T1).toISOString(),
          epochs: 2,
          trialShard: { index, count: 2 },
        }),
      );
    const [s0, s1] = [await shard(0), await shard(1)];
    expect([s0.metadata.version, s1.metadata.version]).toEqual(["s-0", "s-1"]);
    expect(s0.metadata.trials!.map((t) => t.name)).toEqual(["fine-tune", "wider"]);
    expect(s1.metadata.trials!.map((t) => t.name)).toEqual(["scratch", "stronger-l2"]);
    expect(s1.metadata.shard).toEqual({ index: 1, count: 2 });
    expect(holdoutLines("s-0", "recent")).toEqual(holdoutLines("s-1", "recent"));
    expect(holdoutLines("s-1", "original")).toEqual(v1Original);
    await expect(train(options({ fromVersion: "v1", feedback: [logRoot], trialShard: { index: 0, count: 2 } }))).rejects.toThrow(
      /--version is required with --trial-shards 2/,
    );
  });
});

describe("the result the operator reads", () => {
  const run = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(ballastBin, ["train", ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it("writes a termination message of at most 4096 bytes that parses, for an index of an Indexed Job", async () => {
    const file = path.join(dir, "termination-ok");
    const res = await run(
      [
        ...["--data", seattleCsv, "--from-version", "v1", "--feedback", logRoot, "--feedback-since", new Date(T1).toISOString()],
        ...["--store", storeDir, "--model", "weather", "--version", "c1", "--candidate", "--max-trials", "2", "--trial-shards", "2", "--epochs", "2"],
        ...["--termination-message-path", file],
      ],
      { JOB_COMPLETION_INDEX: "1" },
    );
    expect(res.code).toBe(0);
    const text = fs.readFileSync(file, "utf8");
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_TERMINATION_MESSAGE_BYTES);
    const result = parseTrainResult(text);
    if (isTrainFailure(result)) throw new Error(result.error);
    expect(result).toMatchObject({
      format: TRAIN_RESULT_FORMAT,
      version: "c1-1",
      parentVersion: "v1",
      model: "weather",
      metric: "accuracy",
      higherIsBetter: true,
      original: { rows: 292 },
      feedbackRows: traffic.gen1 + traffic.gen2,
      trials: [{ name: "scratch" }],
    });
    expect(result.recent.rows).toBeGreaterThan(0);
    for (const x of [result.recent.candidate, result.recent.serving, result.original.serving, result.latencyMsPerRow.serving, result.validation]) {
      expect(typeof x).toBe("number");
      expect(Number((x as number).toPrecision(4))).toBe(x);
    }
    expect(result.validation).toBe(result.trials[0]!.validation);
    // The stdout line stays.
    expect(JSON.parse(res.stdout)).toMatchObject({ version: "c1-1", parentVersion: "v1", candidate: true, selectedTrial: "scratch" });
    // With the calibration error at training time, for the estimate the sidecar will make.
    expect(JSON.parse(res.stdout).probabilityCalibration).toMatchObject({ method: "temperature", set: "holdout", bins: 15 });
  });

  it("writes the error as the termination message and exits non-zero when training fails, also for a bad flag", async () => {
    const file = path.join(dir, "termination-failed");
    const res = await run([
      "--data-from-parent",
      "--from-version",
      "v1",
      "--feedback",
      path.join(dir, "missing-log"),
      "--store",
      storeDir,
      "--model",
      "weather",
      "--termination-message-path",
      file,
    ]);
    expect(res.code).toBe(2);
    const result = parseTrainResult(fs.readFileSync(file, "utf8"));
    expect(result).toEqual({ format: TRAIN_RESULT_FORMAT, error: expect.stringMatching(/--feedback .*missing-log: no such directory/) });

    const usage = path.join(dir, "termination-usage");
    const bad = await run(["--data", seattleCsv, "--store", storeDir, "--model", "weather", "--epochs", "0", "--termination-message-path", usage]);
    expect(bad.code).toBe(2);
    expect(parseTrainResult(fs.readFileSync(usage, "utf8"))).toEqual({
      format: TRAIN_RESULT_FORMAT,
      error: expect.stringContaining("--epochs must be an integer from 1 to 10000"),
    });
  });

  it("shortens what does not fit 4096 bytes and rejects what is not a result", () => {
    const success: TrainSuccess = {
      format: TRAIN_RESULT_FORMAT,
      version: "r1",
      parentVersion: "v1",
      model: "weather",
      metric: "accuracy",
      higherIsBetter: true,
      backend: "wasm",
      recent: { rows: 80, candidate: 0.8125, serving: 0.6 },
      original: { rows: 292, candidate: 0.7, serving: 0.71 },
      latencyMsPerRow: { candidate: 0.0012, serving: 0.0011 },
      validation: 0.8,
      trainRows: 1000,
      feedbackRows: 400,
      trials: Array.from({ length: 200 }, (_, i) => ({ name: `trial-${i}`, validation: 0.5 })),
    };
    const text = encodeTrainResult(success);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_TERMINATION_MESSAGE_BYTES);
    const parsed = parseTrainResult(text) as TrainSuccess;
    expect(parsed.trials.length).toBeGreaterThan(10);
    expect(parsed.trials.length).toBeLessThan(200);
    expect({ ...parsed, trials: [] }).toEqual({ ...success, trials: [] });

    const long = 'é\n"'.repeat(5000);
    const failure = encodeTrainFailure(long);
    expect(Buffer.byteLength(failure)).toBeLessThanOrEqual(MAX_TERMINATION_MESSAGE_BYTES);
    expect(Buffer.byteLength(failure)).toBeGreaterThan(MAX_TERMINATION_MESSAGE_BYTES - 8);
    const error = (parseTrainResult(failure) as { error: string }).error;
    expect(error.endsWith("…")).toBe(true);
    expect(long.startsWith(error.slice(0, -1))).toBe(true);

    expect(() => parseTrainResult("{")).toThrow(/not JSON/);
    expect(() => parseTrainResult(JSON.stringify({ ...success, recent: { rows: 1 } }))).toThrow(/\/recent\/candidate/);
    expect(() => parseTrainResult(JSON.stringify({ format: "other", error: "x" }))).toThrow(/\/format/);
  });
});
