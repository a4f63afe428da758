import { describe, expect, it } from "vitest";
import { ConfusionMatrix, DatasetProfile, RegressionAccumulator, RunCounter, TumblingWindows, robustness, stability } from "../../../src/monitoring/index.js";

describe("classification metrics", () => {
  // sklearn: y_true = [a,a,a,b,b,c], y_pred = [a,a,b,b,c,c]
  const pairs: [string, string][] = [
    ["a", "a"],
    ["a", "a"],
    ["a", "b"],
    ["b", "b"],
    ["b", "c"],
    ["c", "c"],
  ];
  it("match sklearn's accuracy, per-class, macro and weighted precision/recall/F1 and confusion matrix", () => {
    const m = new ConfusionMatrix();
    for (const [a, p] of pairs) m.add(a, p);
    const r = m.metrics();
    expect(r.accuracy).toBeCloseTo(4 / 6, 12);
    expect(r.confusion).toEqual({
      labels: ["a", "b", "c"],
      matrix: [
        [2, 1, 0],
        [0, 1, 1],
        [0, 0, 1],
      ],
    });
    // precision a=1, b=0.5, c=0.5; recall a=2/3, b=0.5, c=1
    expect(r.macro!.precision).toBeCloseTo(2 / 3, 12);
    expect(r.macro!.recall).toBeCloseTo((2 / 3 + 0.5 + 1) / 3, 12);
    expect(r.macro!.f1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
    expect(r.weighted!.f1).toBeCloseTo((3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6, 12);
  });

  it("merge equals adding all pairs to one matrix, and survives JSON", () => {
    const left = new ConfusionMatrix();
    const right = new ConfusionMatrix();
    const whole = new ConfusionMatrix();
    pairs.forEach(([a, p], i) => {
      (i % 2 ? left : right).add(a, p);
      whole.add(a, p);
    });
    expect(left.merge(right).metrics()).toEqual(whole.metrics());
    expect(ConfusionMatrix.fromJSON(JSON.parse(JSON.stringify(whole.toJSON()))).metrics()).toEqual(whole.metrics());
  });

  it("an empty window has null metrics, never NaN", () => {
    expect(new ConfusionMatrix().metrics()).toMatchObject({ count: 0, accuracy: null, macro: null, weighted: null });
  });
});

describe("regression metrics", () => {
  it("MAE, RMSE and R² as sklearn defines them, mergeable", () => {
    const actual = [3, -0.5, 2, 7];
    const predicted = [2.5, 0.0, 2, 8];
    const acc = new RegressionAccumulator();
    actual.forEach((y, i) => acc.add(y, predicted[i]!));
    const m = acc.metrics();
    expect(m.mae).toBeCloseTo(0.5, 12);
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.375), 12);
    expect(m.r2).toBeCloseTo(0.9486081370449679, 12); // sklearn.metrics.r2_score docs example
    const a = new RegressionAccumulator();
    const b = new RegressionAccumulator();
    a.add(3, 2.5);
    a.add(-0.5, 0);
    b.add(2, 2);
    b.add(7, 8);
    expect(a.merge(b).metrics().r2).toBeCloseTo(0.9486081370449679, 12);
  });

  it("constant actuals give a null R², an empty window null everything", () => {
    const acc = new RegressionAccumulator();
    acc.add(1, 1.5);
    acc.add(1, 0.5);
    expect(acc.metrics()).toEqual({ count: 2, mae: 0.5, rmse: 0.5, r2: null });
    expect(new RegressionAccumulator().metrics()).toEqual({ count: 0, mae: null, rmse: null, r2: null });
  });

  it("actuals equal up to rounding give a null R², not −∞ (a late label merged into a window)", () => {
    const a = new RegressionAccumulator();
    const b = new RegressionAccumulator();
    a.add(20, 25);
    b.add(20 + 2 * Number.EPSILON * 16, 25); // 20 and the next double but one
    const merged = a.merge(b);
    expect(merged.m2Actual).toBeGreaterThan(0);
    expect(merged.metrics().r2).toBeNull();
    a.add(30, 25); // a real spread is still scored
    expect(a.merge(b).metrics().r2).toBeLessThan(0);
  });
});

describe("seed metrics", () => {
  it("stability = 1 − std/mean over the last K windows", () => {
    // accuracies 0.9, 0.8, 0.85, 0.95 → last 3: mean 0.8667, population std 0.0624
    const s = stability([0.9, 0.8, 0.85, 0.95], 3)!;
    const mean = (0.8 + 0.85 + 0.95) / 3;
    const std = Math.sqrt(((0.8 - mean) ** 2 + (0.85 - mean) ** 2 + (0.95 - mean) ** 2) / 3);
    expect(s).toBeCloseTo(1 - std / mean, 12);
    expect(stability([0.9, 0.9, 0.9])).toBe(1);
    expect(stability([0, 0])).toBe(1);
    expect(stability([])).toBeNull();
    expect(stability([null, Number.NaN])).toBeNull();
    expect(stability([-1, 1])).toBeNull();
  });

  it("robustness = 1 − failures/runs, null without runs", () => {
    expect(robustness(3, 200)).toBeCloseTo(0.985, 12);
    expect(robustness(0, 0)).toBeNull();
    const counter = new RunCounter();
    for (let i = 0; i < 10; i++) counter.record(i === 3);
    expect(counter.merge(new RunCounter()).robustness).toBeCloseTo(0.9, 12);
    expect(RunCounter.fromJSON(JSON.parse(JSON.stringify(counter))).robustness).toBeCloseTo(0.9, 12);
    expect(() => RunCounter.fromJSON({ runs: 1, failures: 2 })).toThrow(/malformed/);
  });
});

describe("tumbling windows", () => {
  it("count windows close every N events", () => {
    const windows = new TumblingWindows<number[], number>(
      { kind: "count", size: 3 },
      () => [],
      (s, e) => s.push(e),
    );
    const closed = [1, 2, 3, 4, 5, 6, 7].flatMap((e) => windows.add(e, e * 10));
    expect(closed.map((w) => w.state)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(closed[0]).toMatchObject({ start: 10, end: 30, events: 3 });
    expect(windows.peek()?.state).toEqual([7]);
  });

  it("time windows align to the duration and emit empty windows across gaps", () => {
    const windows = new TumblingWindows<number[], number>(
      { kind: "time", durationMs: 60_000 },
      () => [],
      (s, e) => s.push(e),
    );
    expect(windows.add(1, 5_000)).toEqual([]);
    expect(windows.add(2, 59_999)).toEqual([]);
    const closed = windows.add(3, 185_000);
    expect(closed.map((w) => [w.start, w.end, w.events])).toEqual([
      [0, 60_000, 2],
      [60_000, 120_000, 0],
      [120_000, 180_000, 0],
    ]);
    expect(windows.flush(300_000).map((w) => [w.start, w.events])).toEqual([
      [180_000, 1],
      [240_000, 0],
    ]);
  });

  it("windows of dataset profiles merge back into the profile of all rows", () => {
    const schema = [{ name: "latency", type: "numeric" as const }];
    const windows = new TumblingWindows<DatasetProfile, Record<string, unknown>>(
      { kind: "time", durationMs: 1000 },
      () => new DatasetProfile(schema),
      (p, row) => p.addRow(row),
    );
    const rows = Array.from({ length: 50 }, (_, i) => ({ latency: (i * 13) % 17 }));
    const closed = rows.flatMap((row, i) => windows.add(row, i * 100));
    closed.push(...windows.flush(5000));
    expect(closed.map((w) => w.events)).toEqual([10, 10, 10, 10, 10]);
    const merged = closed
      .map((w) => w.state)
      .reduce((a, b) => a.merge(b))
      .feature("latency")!;
    const whole = DatasetProfile.fromRows(schema, rows).feature("latency")!;
    if (merged.type !== "numeric" || whole.type !== "numeric") throw new Error("numeric expected");
    expect([...merged.exactValues()!].sort()).toEqual([...whole.exactValues()!].sort());
    expect(merged.std).toBeCloseTo(whole.std, 12);
  });

  it("rejects a non-positive window size", () => {
    expect(
      () =>
        new TumblingWindows(
          { kind: "count", size: 0 },
          () => 0,
          () => undefined,
        ),
    ).toThrow(/window size must be a positive number, got 0/);
  });
});
