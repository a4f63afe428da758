// Ground truth a client sends as feedback: labels that would poison window metrics or retraining data are refused
// whole, naming the item, and the refusal reaches the client as a 4xx JSON error.
import { describe, expect, it } from "vitest";
import { errorReply } from "../../../src/runtime/http-errors.js";
import { RequestError } from "../../../src/runtime/http-json.js";
import type { ModelMetadata } from "../../../src/runtime/metadata.js";
import { Refusal } from "../../../src/runtime/refusal.js";
import { RequestLog, readLog } from "../../../src/runtime/request-log.js";
import { TrafficMonitor } from "../../../src/runtime/traffic-monitor.js";
import { oneFeatureMetadata } from "./metadata-fixture.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-feedback-labels-");
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A regression model trained on targets with mean 20 and standard deviation 5 (°C, say), or without target statistics. */
const regressionMeta = (target?: { mean: number; std: number }) => oneFeatureMetadata({ task: "regression", ...(target ? { target } : {}) }, T0);

/** A monitor that served requests r0..r4 (one row each, predicted 20) and r5 (three rows). */
async function servedMonitor(meta: ModelMetadata) {
  const dir = tempDir();
  const log = await RequestLog.open(dir, { model: "m", version: "v1", task: meta.task, label: meta.label, features: ["x"] });
  const monitor = new TrafficMonitor({ meta, windowRows: 0, windowMs: 0, windowsKept: 4, maxTracked: 100, pod: "p", requestLog: log, now: () => T0 });
  const serve = (id: string, rows: number): void =>
    monitor.enqueue({
      ts: T0,
      status: 200,
      requestBody: Buffer.from(JSON.stringify({ id, instances: Array.from({ length: rows }, () => ({ x: 1 })) })),
      responseBody: Buffer.from(
        JSON.stringify({ id, outputs: [{ name: "value", shape: [rows], datatype: "FP32", data: Array.from({ length: rows }, () => 20) }] }),
      ),
    });
  for (let i = 0; i < 5; i++) serve(`r${i}`, 1);
  serve("r5", 3);
  monitor.drain();
  return { monitor, log, dir };
}

async function feedbackRecords(dir: string): Promise<number> {
  let n = 0;
  for await (const r of readLog(dir)) if (r.kind === "feedback") n++;
  return n;
}

describe("regression feedback labels", () => {
  it("refuses 1e308 (which made rmse Infinity) naming the item, and keeps the window's metrics finite", async () => {
    const { monitor, log, dir } = await servedMonitor(regressionMeta({ mean: 20, std: 5 }));
    const refusal = await monitor
      .applyFeedback([
        { id: "r0", label: 21 },
        { id: "r1", label: 1e308 },
      ])
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(Refusal);
    expect((refusal as Refusal).kind).toBe("invalid");
    expect((refusal as Refusal).message).toBe(
      "feedback[1].label: 1e+308 is outside the labels this model takes, [-480, 520] (the training mean ± 100 standard deviations); check the units",
    );
    expect(errorReply(refusal)).toEqual({ status: 400, body: { error: (refusal as Refusal).message }, unexpected: false });

    expect(
      await monitor.applyFeedback([
        { id: "r0", label: 21 },
        { id: "r1", label: 519 },
        { id: "r2", label: "-479.5" },
      ]),
    ).toEqual({ accepted: 3 });
    const metrics = monitor.summary().windows.at(-1)!.metrics;
    expect(metrics.samples).toBe(3);
    expect(Number.isFinite(metrics.rmse)).toBe(true);
    await log.close();
    expect(await feedbackRecords(dir)).toBe(3);
  });

  it("refuses labels that are not numbers or are empty, naming the row of a multi-row request", async () => {
    const { monitor, log } = await servedMonitor(regressionMeta({ mean: 20, std: 5 }));
    const cases: [unknown, string][] = [
      [{ id: "r0", label: "warm" }, 'feedback.label: "warm" is not a number; this model predicts a number'],
      [{ id: "r0", label: true }, "feedback.label: true is not a number"],
      [{ id: "r0", label: "" }, "feedback.label: is empty; give the ground truth"],
      [{ id: "r0", label: null }, 'feedback: "label" must be a class name or a number'],
      [{ id: "r5", labels: [20, 21, -1e6] }, "feedback.labels[2]: -1000000 is outside the labels this model takes"],
    ];
    for (const [body, message] of cases) {
      await expect(monitor.applyFeedback(body), JSON.stringify(body)).rejects.toMatchObject({ kind: "invalid", message: expect.stringContaining(message) });
    }
    expect(monitor.totals).toMatchObject({ feedback: 0, feedbackRejected: cases.length });
    await log.close();
  });

  it("bounds labels absolutely when the metadata has no target statistics", async () => {
    const { monitor, log } = await servedMonitor(regressionMeta());
    await expect(monitor.applyFeedback({ id: "r0", label: 2e12 })).rejects.toMatchObject({
      kind: "invalid",
      message: expect.stringContaining("at most 1000000000000 in magnitude"),
    });
    expect(await monitor.applyFeedback({ id: "r0", label: 1e11 })).toEqual({ accepted: 1 });
    await log.close();
  });
});

describe("a feedback batch with some bad items", () => {
  it("stores nothing (all or nothing), names the first bad item, and takes the corrected batch afterwards", async () => {
    const { monitor, log, dir } = await servedMonitor(regressionMeta({ mean: 20, std: 5 }));
    const batch = [
      { id: "r0", label: 20 },
      { id: "r1", label: 22 },
      { id: "r2", label: Number.MAX_VALUE },
      { id: "r3", label: 19 },
    ];
    await expect(monitor.applyFeedback({ feedback: batch })).rejects.toMatchObject({
      kind: "invalid",
      message: expect.stringMatching(/^feedback\[2\]\.label: /),
    });
    expect(monitor.totals.feedback).toBe(0);
    expect(monitor.summary().windows.at(-1)!.labelled).toMatchObject({ regression: { count: 0 } });

    // None of r0, r1, r3 was half-accepted: the fixed batch is not a duplicate.
    batch[2]!.label = 23;
    expect(await monitor.applyFeedback({ feedback: batch })).toEqual({ accepted: 4 });
    await log.close();
    expect(await feedbackRecords(dir)).toBe(4);
  });

  it("names unknown fields, a missing label and a wrong kind of id before looking anything up", async () => {
    const { monitor, log } = await servedMonitor(regressionMeta({ mean: 20, std: 5 }));
    const cases: [unknown, string][] = [
      [[{ id: "r0", label: 20, lable: 21 }], 'feedback[0]: "lable" is not a field here; the fields are id, label, row, labels'],
      [[{ id: "r0", label: 20 }, { id: "r1" }], 'feedback[1]: "label" is required (the ground truth of request "r1")'],
      [[{ id: 7, label: 20 }], 'feedback[0]: "id" must be the non-empty request id of an inference'],
      [[{ id: "x".repeat(129), label: 20 }], 'feedback[0]: "id" must be the non-empty request id'],
      [{ id: "r5", row: 1.5, label: 20 }, 'feedback: "row" must be a row number of the request (an integer from 0)'],
      [{ id: "r5", labels: [20], label: 20 }, 'feedback: give either "labels" (one per row) or "label" (+ "row"), not both'],
      [{ feedback: { id: "r0" } }, '"feedback" must be an array of {"id": ..., "label": ...}'],
      [{ feedback: [], extra: 1 }, '"extra" is not a field here; the fields are feedback'],
      [Array.from({ length: 10_001 }, () => ({ id: "r0", label: 1 })), "feedback batch of 10001 items exceeds 10000"],
      ["rain", "feedback: must be an object"],
    ];
    for (const [body, message] of cases) {
      await expect(monitor.applyFeedback(body), message).rejects.toMatchObject({ kind: "invalid", message: expect.stringContaining(message) });
    }
    await log.close();
  });
});

describe("errorReply: the one mapping from what a handler threw to an HTTP answer", () => {
  it("maps each refusal kind to its status, keeps RequestError's status, and hides anything else behind a 500", () => {
    const statuses = (["invalid", "too-large", "unknown-id", "duplicate", "not-recorded"] as const).map((kind) => errorReply(new Refusal(kind, "m")).status);
    expect(statuses).toEqual([400, 413, 404, 409, 503]);
    expect(errorReply(new RequestError(415, 'content-type "text/csv" is not supported'))).toEqual({
      status: 415,
      body: { error: 'content-type "text/csv" is not supported' },
      unexpected: false,
    });
    expect(errorReply(new TypeError("Cannot read properties of undefined (reading 'x') at /srv/app.js"))).toEqual({
      status: 500,
      body: { error: "internal error; the server logged the details" },
      unexpected: true,
    });
  });
});
