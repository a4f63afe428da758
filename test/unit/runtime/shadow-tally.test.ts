// The serving sidecar's shadow bookkeeping without processes: answers compared row by row, labels paired into the
// cells the operator's paired test reads (also when they come back before the shadow answered), bounds, the send
// queue's limits, the PUT body.
import { describe, expect, it } from "vitest";
import { MAX_SHADOW_DIFFS, SHADOW_LATENCY_BOUNDS_MS, ShadowSummarySchema } from "../../../src/monitoring/shadow-summary.js";
import { Value } from "@sinclair/typebox/value";
import { Refusal } from "../../../src/runtime/refusal.js";
import { parseMirrorConfig } from "../../../src/runtime/sidecar/mirror-config.js";
import { idFraction } from "../../../src/runtime/sidecar/mirror.js";
import { SendQueue } from "../../../src/runtime/sidecar/send-queue.js";
import { ShadowTally, answersPair, latencyBucket } from "../../../src/runtime/sidecar/shadow-tally.js";

const SINCE = "2026-12-05T12:00:00.000Z";

describe("a classifier's shadow tally", () => {
  it("counts agreement per row and each labelled row in exactly one cell of the 2×2", () => {
    const tally = new ShadowTally("v2", SINCE, "classification");
    tally.sent("a", "http://10.0.0.9:8080");
    tally.sent("b", "http://10.0.0.9:8080");
    expect(tally.answered("a", ["sun", "rain", "fog"], ["sun", "sun", "fog"], 3, 30)).toBeUndefined();
    tally.answered("b", ["rain"], ["rain"], 7, 700);
    const forwarded = tally.labelled([
      { id: "a", row: 0, label: "sun" }, // both right
      { id: "a", row: 1, label: "sun" }, // shadow only
      { id: "a", row: 2, label: "rain" }, // both wrong
      { id: "b", row: 0, label: "snow" }, // both wrong
      { id: "unmirrored", row: 0, label: "sun" },
    ]);
    expect(forwarded).toEqual([{ target: "http://10.0.0.9:8080", labels: expect.arrayContaining([{ id: "a", row: 1, label: "sun" }]) as unknown }]);
    expect(forwarded[0]!.labels).toHaveLength(4);
    // A label counts once, even if it came again.
    expect(tally.labelled([{ id: "a", row: 0, label: "sun" }])).toEqual([]);
    const s = tally.summary();
    expect(s).toMatchObject({ version: "v2", since: SINCE, mirrored: 2, dropped: 0, failed: 0, rows: 4, agreedRows: 3, sumAbsDifference: 0 });
    expect(s.pairs).toEqual({ task: "classification", bothRight: 1, servingOnly: 0, shadowOnly: 1, bothWrong: 2 });
    expect(s.servingLatency.reduce((a, b) => a + b)).toBe(2);
    const bucketOf = (bound: (typeof SHADOW_LATENCY_BOUNDS_MS)[number]) => SHADOW_LATENCY_BOUNDS_MS.indexOf(bound);
    // Serving 3 ms and 7 ms, shadow 30 ms and 700 ms.
    expect([s.servingLatency[bucketOf(5)], s.servingLatency[bucketOf(10)]]).toEqual([1, 1]);
    expect([s.shadowLatency[bucketOf(50)], s.shadowLatency[bucketOf(1000)]]).toEqual([1, 1]);
    expect(Value.Check(ShadowSummarySchema, s)).toBe(true);
  });

  it("holds labels that come back before the shadow answered, then counts and forwards them with the answer", () => {
    const tally = new ShadowTally("v2", SINCE, "classification");
    tally.sent("early", "http://10.0.0.9:8080");
    expect(tally.labelled([{ id: "early", row: 0, label: "sun" }])).toEqual([]);
    expect(tally.summary().pairs).toMatchObject({ bothRight: 0, servingOnly: 0 });
    const forward = tally.answered("early", ["sun"], ["rain"], 1, 1);
    expect(forward).toEqual({ target: "http://10.0.0.9:8080", labels: [{ id: "early", row: 0, label: "sun" }] });
    expect(tally.summary().pairs).toEqual({ task: "classification", bothRight: 0, servingOnly: 1, shadowOnly: 0, bothWrong: 0 });
  });

  it("drops a failed request's pair: its labels are neither counted nor forwarded", () => {
    const tally = new ShadowTally("v2", SINCE, "classification");
    tally.sent("x", "http://10.0.0.9:8080");
    tally.countFailed("x");
    tally.countDropped();
    expect(tally.labelled([{ id: "x", row: 0, label: "sun" }])).toEqual([]);
    expect(tally.summary()).toMatchObject({ mirrored: 1, failed: 1, dropped: 1, rows: 0 });
  });

  it("forgets the oldest requests past its row bound", () => {
    const tally = new ShadowTally("v2", SINCE, "classification", 10);
    for (let i = 0; i < 5; i++) {
      tally.sent(`r${i}`, "http://t:1");
      tally.answered(`r${i}`, ["a", "b", "c"], ["a", "b", "c"], 1, 1);
    }
    // 3 rows each, 10 rows kept: the three newest.
    expect(tally.trackedRequests).toBe(3);
    expect(tally.labelled([{ id: "r1", row: 0, label: "a" }])).toEqual([]);
    expect(tally.labelled([{ id: "r4", row: 0, label: "a" }])).toHaveLength(1);
  });

  it("refuses to pair answers with different rows", () => {
    expect(answersPair(["a"], ["a", "b"])).toBe(false);
    expect(answersPair([], [])).toBe(false);
    const tally = new ShadowTally("v2", SINCE, "classification");
    expect(() => tally.answered("x", ["a"], ["a", "b"], 1, 1)).toThrow(RangeError);
  });
});

describe("a regressor's shadow tally", () => {
  it("sums |serving − shadow| and pairs |serving error| − |shadow error| per labelled row", () => {
    const tally = new ShadowTally("v2", SINCE, "regression");
    tally.sent("a", "http://t:1");
    tally.answered("a", [10, 20, 30], [10 + 1e-12, 25, 28], 1, 2);
    tally.labelled([
      { id: "a", row: 1, label: 24 },
      { id: "a", row: 2, label: 30 },
    ]);
    const s = tally.summary();
    expect(s.rows).toBe(3);
    expect(s.agreedRows).toBe(1); // 1e-12 apart is the same answer
    expect(s.sumAbsDifference).toBeCloseTo(7, 9);
    expect(s.pairs).toEqual({ task: "regression", count: 2, servingAbsErrorSum: 4, shadowAbsErrorSum: 3, diffs: [4 - 1, 0 - 2] });
  });

  it("keeps the newest MAX_SHADOW_DIFFS differences", () => {
    const tally = new ShadowTally("v2", SINCE, "regression");
    const n = MAX_SHADOW_DIFFS + 2500;
    for (let i = 0; i < n; i++) {
      tally.sent(`r${i}`, "http://t:1");
      tally.answered(`r${i}`, [i], [0], 1, 1);
      tally.labelled([{ id: `r${i}`, row: 0, label: 0 }]);
    }
    const { pairs } = tally.summary();
    if (pairs.task !== "regression") throw new Error("regression expected");
    expect(pairs.count).toBe(n);
    expect(pairs.diffs).toHaveLength(MAX_SHADOW_DIFFS);
    expect(pairs.diffs.at(-1)).toBe(n - 1);
    expect(pairs.diffs[0]).toBe(n - MAX_SHADOW_DIFFS);
  });
});

describe("latency buckets and sampling", () => {
  it("puts a latency in the first bucket whose bound is not below it, +Inf last", () => {
    expect(latencyBucket(0.2)).toBe(0);
    expect(latencyBucket(1)).toBe(0);
    expect(latencyBucket(1.01)).toBe(1);
    expect(latencyBucket(10_000)).toBe(SHADOW_LATENCY_BOUNDS_MS.length - 1);
    expect(latencyBucket(60_000)).toBe(SHADOW_LATENCY_BOUNDS_MS.length);
  });

  it("samples by request id: the same id always lands alike, and the share sampled is close to the rate", () => {
    expect(idFraction("req-42")).toBe(idFraction("req-42"));
    const ids = Array.from({ length: 20_000 }, (_, i) => `req-${i}`);
    const share = ids.filter((id) => idFraction(id) < 0.25).length / ids.length;
    expect(share).toBeGreaterThan(0.24);
    expect(share).toBeLessThan(0.26);
  });
});

describe("the send queue", () => {
  it("runs at most `concurrency` jobs, refuses past its count or byte bound, and frees both as jobs finish", async () => {
    const bugs: unknown[] = [];
    const queue = new SendQueue({ maxQueued: 3, maxQueuedBytes: 100, concurrency: 2 }, (err) => bugs.push(err));
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const job = (n: number) => () => {
      started.push(n);
      return new Promise<void>((resolve) => finish.push(resolve));
    };
    expect(queue.push(job(1), 10)).toBe(true);
    expect(queue.push(job(2), 10)).toBe(true);
    expect(queue.push(job(3), 90)).toBe(false); // 110 bytes
    expect(queue.push(job(3), 10)).toBe(true);
    expect(queue.push(job(4), 10)).toBe(false); // 4 jobs
    expect(started).toEqual([1, 2]);
    finish[0]!();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    expect(queue.push(job(4), 70)).toBe(true); // 1 finished: 30 + 70 bytes, 3 jobs
    for (const f of finish.slice(1)) f();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3, 4]);
    finish.at(-1)!();
    await new Promise((r) => setImmediate(r));
    // A job that throws is reported, and the queue goes on.
    expect(queue.push(() => Promise.reject(new Error("bug")), 0)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(bugs).toHaveLength(1);
    expect(queue.push(job(5), 100)).toBe(true);
    expect(started).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("the PUT /v1/mirror body", () => {
  const now = Date.parse("2026-12-05T12:00:00Z");
  const good = { version: "v2", targets: ["http://10.1.0.7:8080"], sampleRate: 0.5, expiresAt: "2026-12-05T12:02:00Z" };
  const problem = (body: unknown): string => {
    try {
      parseMirrorConfig(body, now);
    } catch (err) {
      expect(err).toBeInstanceOf(Refusal);
      return (err as Error).message;
    }
    throw new Error("accepted");
  };

  it("accepts the operator's setting", () => {
    expect(parseMirrorConfig(good, now)).toEqual({ version: "v2", targets: ["http://10.1.0.7:8080"], sampleRate: 0.5, expiresAt: now + 120_000 });
  });

  it("names the field that does not fit", () => {
    expect(problem({ ...good, version: "../v2" })).toMatch(/"version" must be the candidate's store version/);
    expect(problem({ ...good, targets: [] })).toMatch(/"targets" must be an array of 1 to 16/);
    expect(problem({ ...good, targets: Array(17).fill("http://10.1.0.7:8080") })).toMatch(/"targets" must be an array of 1 to 16/);
    expect(problem({ ...good, targets: ["https://10.1.0.7:8080"] })).toMatch(/targets\[0\]: must use http:\/\//);
    expect(problem({ ...good, targets: ["http://10.1.0.7:8080/v2"] })).toMatch(/targets\[0\]: must be a base URL/);
    expect(problem({ ...good, targets: ["not a url"] })).toMatch(/targets\[0\]: "not a url" is not a URL/);
    expect(problem({ ...good, sampleRate: 0 })).toMatch(/"sampleRate" must be a number greater than 0 and at most 1/);
    expect(problem({ ...good, sampleRate: 1.5 })).toMatch(/"sampleRate"/);
    expect(problem({ ...good, expiresAt: "tomorrow" })).toMatch(/"expiresAt" must be an RFC 3339 time/);
    expect(problem({ ...good, expiresAt: "2026-12-05T11:59:00Z" })).toMatch(/"expiresAt" .* is in the past/);
    expect(problem({ ...good, expiresAt: "2026-12-06T12:00:00Z" })).toMatch(/"expiresAt" .* more than 60 minutes ahead/);
    expect(problem({ ...good, extra: 1 })).toMatch(/"extra" is not a field here/);
    const { sampleRate: _omitted, ...noRate } = good;
    expect(problem(noRate)).toMatch(/"sampleRate"/);
  });
});
