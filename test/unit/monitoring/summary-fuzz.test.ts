// Property tests over what a pod's sidecar answers (untrusted input to the operator): the summary parser accepts
// or refuses with a SummaryFormatError, and whatever it accepts goes through merging and the operator's status
// computation without an exception and without a non-finite number in status.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { compare, DatasetProfile, type FeatureSchema } from "../../../src/monitoring/index.js";
import {
  classificationCounts,
  labelledMetrics,
  PREDICTION_COLUMN,
  regressionCounts,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import { parseSidecarSummary, SummaryFormatError } from "../../../src/monitoring/summary-schema.js";
import { monitoringStatus } from "../../../src/operator/monitoring/health.js";
import { anyJson, edgeValue, mutateAt } from "../../support/json-mutation.js";

const NOW = new Date("2026-11-26T12:30:00Z");
const T0 = Date.parse("2026-11-26T12:00:00Z");
const schema: FeatureSchema[] = [
  { name: "size", type: "numeric" },
  { name: "color", type: "categorical" },
];
const rowsAt = (shift: number, n: number) => Array.from({ length: n }, (_, i) => ({ size: (i % 10) + shift, color: ["red", "green", "blue"][i % 3] }));

type Task = "classification" | "regression";

function windowOf(task: Task, k: number, shift: number, closed: boolean): WindowSummary {
  const rows = rowsAt(shift, 60);
  const features = DatasetProfile.fromRows(schema, rows);
  const labelled =
    task === "classification"
      ? classificationCounts(
          rows.map((_, i) => (i % 4 ? "yes" : "no")),
          rows.map(() => "yes"),
        )
      : regressionCounts(
          rows.map((_, i) => 20 + (i % 7)),
          rows.map(() => 22),
        );
  const prediction = task === "classification" ? "yes" : 22;
  return {
    start: new Date(T0 + k * 60_000).toISOString(),
    end: new Date(T0 + (k + 1) * 60_000).toISOString(),
    closed,
    requests: 60,
    failedRequests: k,
    rejectedRequests: 0,
    rows: 60,
    features: features.toJSON(),
    predictions: DatasetProfile.fromRows(
      [{ name: PREDICTION_COLUMN, type: task === "classification" ? "categorical" : "numeric" }],
      rows.map(() => ({ [PREDICTION_COLUMN]: prediction })),
    ).toJSON(),
    labelled,
    metrics: labelledMetrics(labelled),
    drift: closed ? compare(DatasetProfile.fromRows(schema, rowsAt(0, 60)), features) : null,
  };
}

function summaryOf(task: Task, pod: string): SidecarSummary {
  return {
    format: SUMMARY_FORMAT,
    pod,
    model: "shop",
    version: "v1",
    task,
    generatedAt: new Date(T0 + 180_000).toISOString(),
    totals: { requests: 180, failedRequests: 3, rejectedRequests: 0, rows: 180, feedback: 180, feedbackRejected: 1 },
    windows: [windowOf(task, 0, 0, true), windowOf(task, 1, 50, true), windowOf(task, 2, 0, false)],
  };
}

const mdFor = (task: Task): ResolvedModelDeployment => ({
  apiVersion: "ballast.dev/v1alpha1",
  kind: "ModelDeployment",
  metadata: { name: "shop", namespace: "ml", generation: 1 },
  spec: applyModelDeploymentDefaults({
    model: { name: "shop", storageUri: "pvc://models/store" },
    monitoring: { features: schema, labelField: "label", task, window: { size: 50 } },
    policy: { minSamples: 10, consecutiveWindows: 1, cooldown: "1h" },
  } as ModelDeploymentSpec),
  status: { observedGeneration: 1 },
});

/** Paths of numbers in `value` that are not finite (JSON would write them as null). */
function nonFinite(value: unknown, path = "status"): string[] {
  if (typeof value === "number") return Number.isFinite(value) ? [] : [`${path} = ${value}`];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinite(v, `${path}[${i}]`));
  if (typeof value === "object" && value !== null) return Object.entries(value).flatMap(([k, v]) => nonFinite(v, `${path}.${k}`));
  return [];
}

/** Parses like the operator, then computes status from this pod's summary next to a good one of `task`. */
function throughTheOperator(body: unknown, task: Task): "refused" | "admitted" {
  let parsed: SidecarSummary;
  try {
    parsed = parseSidecarSummary(body);
  } catch (err) {
    if (!(err instanceof SummaryFormatError)) throw err;
    expect(err.message.length).toBeLessThan(1000);
    return "refused";
  }
  const status = monitoringStatus(
    mdFor(task),
    [
      { pod: "shop-serving-a", summary: summaryOf(task, "shop-serving-a") },
      { pod: "shop-serving-b", summary: parsed },
    ],
    NOW,
  );
  expect(nonFinite(status)).toEqual([]);
  return "admitted";
}

describe.each(["classification", "regression"] as const)("%s sidecar summaries under arbitrary answers", (task) => {
  const good = summaryOf(task, "shop-serving-b");

  it("the unmutated summary is admitted", () => {
    expect(throughTheOperator(structuredClone(good), task)).toBe("admitted");
  });

  it("any JSON is refused with a SummaryFormatError or admitted", () => {
    fc.assert(
      fc.property(anyJson, (body) => void throughTheOperator(body, task)),
      { numRuns: 300 },
    );
  });

  it("a good summary with one value replaced (or removed) anywhere is refused, or goes through the operator's status computation", () => {
    const outcomes = { refused: 0, admitted: 0 };
    fc.assert(
      fc.property(fc.nat(), fc.oneof(edgeValue, anyJson, fc.constant(undefined)), (pick, value) => {
        outcomes[throughTheOperator(mutateAt(good, pick, value), task)]++;
      }),
      { numRuns: 600 },
    );
    // Both sides are reached: the generator is not just breaking the top level.
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.admitted).toBeGreaterThan(0);
  });
});

describe("regression summaries from a pod whose sums are at the edge of what a number holds", () => {
  it("are refused, or merge with a good pod's into finite status metrics", () => {
    const sums = ["sumAbsError", "sumSquaredError", "meanActual", "m2Actual"];
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), fc.constantFrom(...sums), fc.constantFrom(1e308, -1e308, 1e300, Number.MAX_VALUE, 1e154), (w, key, value) => {
        const doc = structuredClone(summaryOf("regression", "shop-serving-b")) as unknown as {
          windows: { labelled: { regression: Record<string, number> } }[];
        };
        doc.windows[w]!.labelled.regression[key] = value;
        throughTheOperator(doc, "regression");
      }),
      { numRuns: 60 },
    );
  });
});
