// Given a regression ModelDeployment with policy.maxError and windows nobody labelled, the operator judges each
// window on the sidecar's label-free error estimate (DLE): status shows it beside the realised metric, says what
// decided, and a window estimated above the bound is a violation before any label arrives.
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { DatasetProfile } from "../../../src/monitoring/index.js";
import { LossEstimate, estimatedLossMetrics } from "../../../src/monitoring/loss-estimate.js";
import {
  labelledMetrics,
  PREDICTION_COLUMN,
  regressionCounts,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import { parseSidecarSummary } from "../../../src/monitoring/summary-schema.js";
import { monitoringStatus } from "../../../src/operator/monitoring/health.js";
import { cars } from "../monitoring/real-data.js";

const schema = [{ name: "Weight_in_lbs", type: "numeric" as const }];
const rows = cars.slice(0, 120);

/** An unlabelled window of 120 cars whose rows' predicted |error| is `absError` mpg. */
function window(startMs: number, absError: number): WindowSummary {
  const estimate = new LossEstimate();
  for (const _ of rows) estimate.add({ absError, squaredError: absError * absError * 1.5 });
  const labelled = regressionCounts([], []);
  return {
    start: new Date(startMs).toISOString(),
    end: new Date(startMs + 60_000).toISOString(),
    closed: true,
    requests: rows.length,
    failedRequests: 0,
    rejectedRequests: 0,
    rows: rows.length,
    features: DatasetProfile.fromRows(schema, rows).toJSON(),
    predictions: DatasetProfile.fromRows(
      [{ name: PREDICTION_COLUMN, type: "numeric" }],
      rows.map((c) => ({ prediction: c.Miles_per_Gallon })),
    ).toJSON(),
    labelled,
    lossEstimate: estimate.toJSON(),
    metrics: { ...labelledMetrics(labelled), ...estimatedLossMetrics(estimate.toJSON()) },
    drift: null,
  };
}

function summary(windows: WindowSummary[]): SidecarSummary {
  return {
    format: SUMMARY_FORMAT,
    pod: "cars-serving-a",
    model: "cars",
    version: "v1",
    task: "regression",
    generatedAt: windows.at(-1)!.end,
    totals: { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0 },
    windows,
  };
}

function md(triggerOn: string, status?: ModelDeploymentStatus): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "cars", namespace: "ml", generation: 1 },
    spec: applyModelDeploymentDefaults({
      model: { name: "cars", storageUri: "pvc://models/store" },
      monitoring: { features: schema, labelField: "mpg", task: "regression", accuracyMetric: "mae", window: { size: 120 } },
      policy: { minSamples: 100, consecutiveWindows: 1, maxError: 3, cooldown: "1h", triggerOn },
    } as ModelDeploymentSpec),
    status,
  };
}

const T0 = Date.parse("2026-12-05T12:00:00Z");
const NOW = new Date("2026-12-05T12:30:00Z");

function statuses(triggerOn: string): ModelDeploymentStatus[] {
  const windows = [window(T0, 2), window(T0 + 60_000, 4)];
  const out: ModelDeploymentStatus[] = [];
  let status: ModelDeploymentStatus | undefined;
  for (let i = 1; i <= windows.length; i++) {
    status = monitoringStatus(md(triggerOn, status), [{ pod: "cars-serving-a", summary: parseSidecarSummary(summary(windows.slice(0, i))) }], NOW);
    out.push(status);
  }
  return out;
}

describe("regression windows without labels, judged on the estimated error", () => {
  it.each(["auto", "performance"])("triggerOn %s: the estimated MAE decides against maxError", (triggerOn) => {
    const [calm, degraded] = statuses(triggerOn);
    expect(calm!.lastMetrics).toMatchObject({
      labelledSamples: 0,
      metric: "mae",
      estimatedAccuracy: 2,
      estimatedMae: 2,
      verdict: "Healthy",
      decidedBy: "estimate",
    });
    expect(degraded!.lastMetrics).toMatchObject({ estimatedAccuracy: 4, estimatedMae: 4, verdict: "Violated", decidedBy: "estimate" });
    const condition = degraded!.conditions!.find((c) => c.type === "Degraded")!;
    expect(condition).toMatchObject({ status: "True", reason: "ErrorAboveThreshold" });
    expect(condition.message).toMatch(/decided by estimate \(0 labelled rows < 50; estimated from 120 rows' predicted errors\): estimated mae 4 > maximum 3/);
    expect(degraded!.recentWindows!.map((w) => w.estimatedAccuracy)).toEqual([2, 4]);
  });

  it("estimates RMSE too, from the predicted squared errors", () => {
    expect(estimatedLossMetrics(window(T0, 2).lossEstimate)).toEqual({ estimatedSamples: 120, estimatedMae: 2, estimatedRmse: Math.sqrt(6) });
  });

  it("refuses a loss estimate in a classification summary, naming the field", () => {
    const bad = { ...summary([window(T0, 2)]), task: "classification" };
    bad.windows = [{ ...bad.windows[0]!, labelled: { task: "classification", confusion: { cells: {} } } }];
    expect(() => parseSidecarSummary(bad)).toThrow(/windows\.0\.lossEstimate: only a regression summary has one/);
  });
});
