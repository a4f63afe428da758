// TrafficMonitor without processes: window bounds, eviction of old ids, feedback joins and restarts from the log.
import { describe, expect, it } from "vitest";
import { RequestLog, readLog } from "../../../src/runtime/request-log.js";
import { TrafficMonitor, type CapturedExchange } from "../../../src/runtime/traffic-monitor.js";
import { oneFeatureMetadata } from "./metadata-fixture.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-monitor-");
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

const meta = oneFeatureMetadata({ task: "classification", classes: ["a", "b"] }, T0);

function exchange(id: string, xs: number[], labels: string[], ts: number): CapturedExchange {
  return {
    ts,
    status: 200,
    requestBody: Buffer.from(JSON.stringify({ id, instances: xs.map((x) => ({ x })) })),
    responseBody: Buffer.from(JSON.stringify({ id, outputs: [{ name: "label", shape: [labels.length], datatype: "BYTES", data: labels }] })),
  };
}

async function monitorAt(
  clock: { now: number },
  options: { windowRows?: number; windowMs?: number; windowsKept?: number; maxTracked?: number; maxTrackedBytes?: number } = {},
  dir = tempDir(),
) {
  const log = await RequestLog.open(dir, { model: "m", version: "v1", task: "classification", label: "y", features: ["x"] });
  const monitor = new TrafficMonitor({
    meta,
    windowRows: options.windowRows ?? 0,
    windowMs: options.windowMs ?? 0,
    windowsKept: options.windowsKept ?? 12,
    maxTracked: options.maxTracked ?? 1000,
    ...(options.maxTrackedBytes !== undefined ? { maxTrackedBytes: options.maxTrackedBytes } : {}),
    pod: "p",
    requestLog: log,
    now: () => clock.now,
  });
  return { monitor, log, dir };
}

describe("TrafficMonitor windows", () => {
  it("closes time windows at multiples of the duration, even without traffic", async () => {
    const clock = { now: T0 + 10_000 };
    const { monitor, log } = await monitorAt(clock, { windowMs: 60_000 });
    monitor.enqueue(exchange("r1", [0.1], ["a"], T0 + 10_000));
    monitor.enqueue(exchange("r2", [0.2, 0.3], ["b", "a"], T0 + 50_000));
    monitor.drain();
    clock.now = T0 + 61_000;
    monitor.tick();
    const s = monitor.summary();
    expect(s.windows.map((w) => [w.start, w.end, w.closed, w.rows])).toEqual([
      [new Date(T0 + 10_000).toISOString(), new Date(T0 + 60_000).toISOString(), true, 3],
      [new Date(T0 + 60_000).toISOString(), new Date(T0 + 61_000).toISOString(), false, 0],
    ]);
    await log.close();
  });

  it("closes on whichever bound comes first and keeps only the newest windows", async () => {
    const clock = { now: T0 };
    const { monitor, log } = await monitorAt(clock, { windowRows: 2, windowMs: 3_600_000, windowsKept: 2 });
    for (let i = 0; i < 7; i++) monitor.enqueue(exchange(`r${i}`, [i / 10], ["a"], T0 + i));
    monitor.drain();
    const s = monitor.summary();
    expect(s.windows.map((w) => [w.closed, w.rows])).toEqual([
      [true, 2],
      [true, 2],
      [false, 1],
    ]);
    expect(s.totals.rows).toBe(7);
    await log.close();
  });
});

describe("TrafficMonitor feedback", () => {
  it("forgets the oldest ids past maxTracked; a label whose window is no longer kept counts in no window", async () => {
    const clock = { now: T0 };
    const { monitor, log } = await monitorAt(clock, { windowRows: 2, windowsKept: 1, maxTracked: 5 });
    for (let i = 0; i < 7; i++) monitor.enqueue(exchange(`r${i}`, [i / 10], ["a"], T0 + i));
    await expect(monitor.applyFeedback({ id: "r0", label: "a" })).rejects.toMatchObject({ kind: "unknown-id" });
    // Windows: [r0 r1] [r2 r3] [r4 r5] closed, r6 open; only [r4 r5] is kept, so r2's label is logged but scores no window.
    expect(
      await monitor.applyFeedback([
        { id: "r2", label: "b" },
        { id: "r6", label: "a" },
      ]),
    ).toEqual({ accepted: 2 });
    const s = monitor.summary();
    expect(s.windows.at(-1)!.metrics).toMatchObject({ samples: 1, accuracy: 1 });
    expect(s.windows[0]!.metrics).toEqual({ samples: 0 });
    expect(s.totals).toMatchObject({ feedback: 2, feedbackOutsideWindows: 1 });
    await log.close();
  });

  it("joins a late label to the closed window its request was served in, while that window is kept", async () => {
    const clock = { now: T0 };
    const { monitor, log } = await monitorAt(clock, { windowRows: 2, windowsKept: 3 });
    for (let i = 0; i < 7; i++) monitor.enqueue(exchange(`r${i}`, [i / 10], ["a"], T0 + i));
    // [r0 r1] [r2 r3] [r4 r5] closed, r6 open: labels for r0..r3 arrive after their windows closed.
    expect(
      await monitor.applyFeedback([
        { id: "r0", label: "a" },
        { id: "r1", label: "b" },
        { id: "r3", label: "a" },
      ]),
    ).toEqual({ accepted: 3 });
    const windows = monitor.summary().windows;
    expect(windows.map((w) => [w.closed, w.metrics["samples"], w.metrics["accuracy"]])).toEqual([
      [true, 2, 0.5],
      [true, 1, 1],
      [true, 0, undefined],
      [false, 0, undefined],
    ]);
    expect(monitor.totals.feedbackOutsideWindows).toBe(0);
    await log.close();
  });

  it("after a restart, rebuilds which requests exist and which rows already have feedback from the log", async () => {
    const clock = { now: T0 };
    const first = await monitorAt(clock);
    first.monitor.enqueue(exchange("r1", [0.1, 0.2], ["a", "b"], T0));
    first.monitor.enqueue(exchange("r2", [0.3], ["b"], T0));
    expect(await first.monitor.applyFeedback({ id: "r1", row: 1, label: "b" })).toEqual({ accepted: 1 });
    await first.log.close();

    const second = await monitorAt(clock, {}, first.dir);
    for await (const record of readLog(first.dir)) second.monitor.restore(record);
    expect(second.monitor.trackedRequests).toBe(2);
    await expect(second.monitor.applyFeedback({ id: "r1", row: 1, label: "a" })).rejects.toMatchObject({ kind: "duplicate" });
    expect(await second.monitor.applyFeedback({ id: "r1", row: 0, label: "a" })).toEqual({ accepted: 1 });
    expect(await second.monitor.applyFeedback({ id: "r2", label: "b" })).toEqual({ accepted: 1 });
    // Their window was lost with the restart: the labels are logged for retraining, not scored in the new window.
    expect(second.monitor.summary().windows.at(-1)!.metrics).toEqual({ samples: 0 });
    expect(second.monitor.totals.feedbackOutsideWindows).toBe(2);
    await second.log.close();
  });
});

describe("TrafficMonitor request ids", () => {
  it("bounds the feedback index by bytes too: big batches push out the oldest ids long before maxTracked", async () => {
    const clock = { now: T0 };
    const { monitor, log } = await monitorAt(clock, { maxTracked: 1000, maxTrackedBytes: 64 * 1024 });
    const rows = Array.from({ length: 500 }, (_, i) => i / 500);
    for (let i = 0; i < 20; i++)
      monitor.enqueue(
        exchange(
          `big-${i}`,
          rows,
          rows.map(() => "a"),
          T0 + i,
        ),
      );
    monitor.drain();
    expect(monitor.trackedRequests).toBeLessThan(20);
    expect(monitor.trackedRequestBytes).toBeLessThanOrEqual(64 * 1024);
    await expect(monitor.applyFeedback({ id: "big-0", row: 0, label: "a" })).rejects.toMatchObject({ kind: "unknown-id" });
    expect(await monitor.applyFeedback({ id: "big-19", row: 0, label: "a" })).toEqual({ accepted: 1 });
    await log.close();
  });

  it("refuses to claim an id that is in flight or tracked, and frees it when its request is not recorded", async () => {
    const clock = { now: T0 };
    const { monitor, log } = await monitorAt(clock);
    expect(monitor.claimRequestId("r1")).toBe(true);
    expect(monitor.claimRequestId("r1")).toBe(false);
    monitor.enqueue({ ...exchange("r1", [0.1], ["a"], T0), id: "r1" });
    monitor.drain();
    expect(monitor.claimRequestId("r1")).toBe(false);

    expect(monitor.claimRequestId("r2")).toBe(true);
    monitor.releaseRequestId("r2"); // e.g. the model server answered 400
    expect(monitor.claimRequestId("r2")).toBe(true);
    await log.close();
  });
});

describe("TrafficMonitor drift with a numeric-only method", () => {
  it("judges a classifier's inputs with ks and its predicted classes with a test for categories, instead of throwing at every window", async () => {
    const clock = { now: T0 };
    const log = await RequestLog.open(tempDir(), { model: "m", version: "v1", task: "classification", label: "y", features: ["x"] });
    // spec.monitoring.drift.method ks, as examples/penguin-sex-classifier.yaml sets it.
    const monitor = new TrafficMonitor({
      meta,
      windowRows: 4,
      windowMs: 0,
      windowsKept: 12,
      maxTracked: 1000,
      pod: "p",
      requestLog: log,
      now: () => clock.now,
      drift: { method: "ks" },
    });
    for (let i = 0; i < 4; i++) monitor.enqueue(exchange(`r${i}`, [i / 10], [i % 2 ? "a" : "b"], T0 + i));
    monitor.drain();
    const closed = monitor.summary().windows.find((w) => w.closed)!;
    expect(closed.drift?.features.map((f) => [f.name, f.method])).toEqual([["x", "ks"]]);
    expect(closed.drift?.prediction).toHaveLength(1);
    expect(closed.drift?.prediction[0]!.method).not.toBe("ks");
    await log.close();
  });
});
