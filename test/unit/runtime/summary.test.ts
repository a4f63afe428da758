// The sidecar summary the operator reads: labelled metrics from additive counts, and exact merges across replicas.
import { describe, expect, it } from "vitest";
import { DatasetProfile } from "../../../src/monitoring/dataset-profile.js";
import {
  SUMMARY_FORMAT,
  classificationCounts,
  labelledMetrics,
  mergeLabelledCounts,
  mergeSummaries,
  regressionCounts,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";

describe("labelled metrics", () => {
  it("computes accuracy and macro precision / recall / f1 from a confusion matrix", () => {
    const m = labelledMetrics(classificationCounts(["a", "a", "a", "b", "b", "c"], ["a", "a", "b", "b", "c", "c"]));
    expect(m.samples).toBe(6);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    expect(m.precision).toBeCloseTo((1 + 0.5 + 0.5) / 3, 12);
    expect(m.recall).toBeCloseTo((2 / 3 + 0.5 + 1) / 3, 12);
    expect(m.f1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
    expect(m.f1Weighted).toBeCloseTo((3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6, 12);
  });

  it("computes mae, rmse and r2 for regression, and nothing but samples: 0 for an empty window", () => {
    const m = labelledMetrics(regressionCounts([1, 2, 3], [1, 2, 5]));
    expect(m).toEqual({ samples: 3, mae: 2 / 3, rmse: Math.sqrt(4 / 3), r2: -1 });
    expect(labelledMetrics(regressionCounts([], []))).toEqual({ samples: 0 });
    expect(labelledMetrics(classificationCounts([], []))).toEqual({ samples: 0 });
  });

  it("merges outcomes of windows that saw different classes", () => {
    const merged = mergeLabelledCounts(classificationCounts(["x", "y"], ["x", "x"]), classificationCounts(["z"], ["y"]));
    expect(labelledMetrics(merged)).toMatchObject({ samples: 3, accuracy: 1 / 3 });
    expect(() => mergeLabelledCounts(merged, regressionCounts([1], [1]))).toThrow(/cannot merge classification and regression/);
  });
});

function window(rows: Record<string, unknown>[], labelled: { truth: string[]; predicted: string[] }, start: string, closed: boolean): WindowSummary {
  const counts = classificationCounts(labelled.truth, labelled.predicted);
  return {
    start,
    end: start.replace(":00Z", ":59Z"),
    closed,
    requests: rows.length,
    failedRequests: 1,
    rejectedRequests: 0,
    rows: rows.length,
    features: DatasetProfile.fromRows([{ name: "temp", type: "numeric" }], rows).toJSON(),
    predictions: DatasetProfile.fromRows(
      [{ name: "prediction", type: "categorical" }],
      labelled.predicted.map((p) => ({ prediction: p })),
    ).toJSON(),
    labelled: counts,
    metrics: labelledMetrics(counts),
    drift: null,
  };
}

function replica(pod: string, temps: number[][]): SidecarSummary {
  const windows = temps.map((t, i) =>
    window(
      t.map((temp) => ({ temp })),
      { truth: t.map((x) => (x > 10 ? "sun" : "rain")), predicted: t.map(() => "sun") },
      `2026-01-01T00:0${i}:00Z`,
      i < temps.length - 1,
    ),
  );
  const rows = temps.flat().length;
  return {
    format: SUMMARY_FORMAT,
    pod,
    model: "weather",
    version: "v1",
    task: "classification",
    generatedAt: "2026-01-01T00:10:00Z",
    totals: { requests: rows, failedRequests: windows.length, rejectedRequests: 0, rows, feedback: rows, feedbackRejected: 0 },
    windows,
  };
}

describe("mergeSummaries", () => {
  it("adds counts and merges profiles of windows of the same age across replicas", () => {
    const a = replica("pod-a", [
      [1, 2, 30],
      [5, 50],
    ]);
    const b = replica("pod-b", [[7], [8, 9, 40], [11]]);
    const merged = mergeSummaries([a, b]);
    expect(merged.pod).toBe("pod-a,pod-b");
    expect(merged.totals).toEqual({ requests: 10, failedRequests: 5, rejectedRequests: 0, rows: 10, feedback: 10, feedbackRejected: 0 });
    // Closed windows align from the newest: a[0] with b[1], b[0] alone; open windows merge together.
    expect(merged.windows.map((w) => [w.closed, w.rows])).toEqual([
      [true, 1],
      [true, 6],
      [false, 3],
    ]);
    const newestClosed = merged.windows[1]!;
    expect(DatasetProfile.fromJSON(newestClosed.features).rows).toBe(6);
    const temp = DatasetProfile.fromJSON(newestClosed.features).feature("temp")!;
    expect(temp.type === "numeric" && [temp.min, temp.max, temp.count]).toEqual([1, 40, 6]);
    expect(newestClosed.metrics.samples).toBe(6);
    expect(newestClosed.metrics.accuracy).toBeCloseTo(2 / 6, 12);
    expect(newestClosed.drift).toBeNull();
  });

  it("refuses to merge different model versions", () => {
    const other = { ...replica("pod-c", [[1]]), version: "v2" };
    expect(() => mergeSummaries([replica("pod-a", [[1]]), other])).toThrow(/weather\/v1 and weather\/v2/);
    expect(() => mergeSummaries([])).toThrow(/at least one/);
  });
});
