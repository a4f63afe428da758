// Given a weather model with a multivariate reference and spec.monitoring.drift.multivariate, the operator's status
// reads as a user expects: every window shows its reconstruction error and band; a window whose temperatures stop
// moving together (each column's values unchanged) is drift and, without labels, a violation — named as such —
// while with the field off it is shown but never decides.
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { loadWeatherDays, splitWeather, WEATHER_FEATURES, type WeatherDay } from "../../../src/demo/weather-data.js";
import { compare, DatasetProfile } from "../../../src/monitoring/index.js";
import { PcaReconstruction, ReconstructionErrorSum } from "../../../src/monitoring/multivariate-drift.js";
import {
  classificationCounts,
  labelledMetrics,
  PREDICTION_COLUMN,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import { monitoringStatus } from "../../../src/operator/monitoring/health.js";
import { fitPcaReference } from "../../../src/training/pca-reference.js";

const ROWS = 150;
const split = splitWeather(loadWeatherDays(), 2 * ROWS, 0);
const schema = WEATHER_FEATURES.map((name) => ({ name, type: "numeric" as const }));
const reference = DatasetProfile.fromRows(schema, split.seattleTraining);
const pcaReference = fitPcaReference(schema.map((f) => ({ ...f, values: split.seattleTraining.map((d) => d[f.name]) })))!;
const pca = new PcaReconstruction(pcaReference);

/** A closed, unlabelled window of `days` as a sidecar summarises it. */
function window(days: readonly WeatherDay[], startMs: number): WindowSummary {
  const features = DatasetProfile.fromRows(schema, days);
  const predictions = DatasetProfile.fromRows(
    [{ name: PREDICTION_COLUMN, type: "categorical" }],
    days.map((d) => ({ prediction: d.weather })),
  );
  const reconstruction = new ReconstructionErrorSum(pcaReference.band);
  for (const d of days) reconstruction.add(pca.errorOf(WEATHER_FEATURES.map((f) => d[f])));
  const labelled = classificationCounts([], []);
  return {
    start: new Date(startMs).toISOString(),
    end: new Date(startMs + 60_000).toISOString(),
    closed: true,
    requests: days.length,
    failedRequests: 0,
    rejectedRequests: 0,
    rows: days.length,
    features: features.toJSON(),
    predictions: predictions.toJSON(),
    labelled,
    reconstruction: reconstruction.toJSON(),
    metrics: labelledMetrics(labelled),
    drift: compare(reference, features, { method: "ks" }),
  };
}

function md(multivariate: boolean, status?: ModelDeploymentStatus): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", generation: 3 },
    spec: applyModelDeploymentDefaults({
      model: { name: "weather", storageUri: "pvc://models/store" },
      monitoring: { features: schema, labelField: "weather", task: "classification", window: { size: ROWS }, drift: { method: "ks", multivariate } },
      policy: { minSamples: 100, consecutiveWindows: 1, minAccuracy: 0.7, cooldown: "1h" },
    } as ModelDeploymentSpec),
    status,
  };
}

const T0 = Date.parse("2026-12-05T12:00:00Z");
const NOW = new Date("2026-12-05T12:30:00Z");
const calm = split.seattleTraffic.slice(0, ROWS);
// temp_min moved to another day of the same window (stride coprime to 150): every column keeps its values.
const decorrelated = split.seattleTraffic.slice(ROWS, 2 * ROWS).map((d, i, all) => ({ ...d, temp_min: all[(i * 7 + 61) % ROWS]!.temp_min }));

function statuses(multivariate: boolean): ModelDeploymentStatus[] {
  const windows = [window(calm, T0), window(decorrelated, T0 + 60_000)];
  const out: ModelDeploymentStatus[] = [];
  let status: ModelDeploymentStatus | undefined;
  for (let i = 1; i <= windows.length; i++) {
    const summary: SidecarSummary = {
      format: SUMMARY_FORMAT,
      pod: "weather-serving-a",
      model: "weather",
      version: "v1",
      task: "classification",
      generatedAt: windows[i - 1]!.end,
      totals: { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0 },
      windows: windows.slice(0, i),
    };
    status = monitoringStatus(md(multivariate, status), [{ pod: "weather-serving-a", summary }], NOW);
    out.push(status);
  }
  return out;
}

const cond = (s: ModelDeploymentStatus, type: string) => s.conditions!.find((c) => c.type === type)!;

describe("multivariate drift in ModelDeployment status", () => {
  it("with drift.multivariate, the decorrelated window is drift and a violation decided by drift, though no feature drifted", () => {
    const [first, second] = statuses(true);
    expect(first!.lastMetrics!.multivariateDrift).toBe(false);
    expect(first!.lastMetrics!.reconstructionError).toBeGreaterThanOrEqual(first!.lastMetrics!.reconstructionErrorLower!);
    expect(first!.lastMetrics!.reconstructionError).toBeLessThanOrEqual(first!.lastMetrics!.reconstructionErrorUpper!);
    expect(cond(first!, "Degraded").status).toBe("False");

    const m = second!.lastMetrics!;
    expect(m.driftShare).toBe(0);
    expect(m.multivariateDrift).toBe(true);
    expect(m.reconstructionError).toBeGreaterThan(m.reconstructionErrorUpper!);
    expect(m.decidedBy).toBe("drift");
    expect(m.verdict).toBe("Violated");
    expect(second!.recentWindows!.at(-1)!.reconstructionError).toBe(m.reconstructionError);
    const degraded = cond(second!, "Degraded");
    expect(degraded).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(degraded.message).toMatch(/multivariate drift: mean PCA reconstruction error [\d.]+ > [\d.]+, the upper bound of the reference band/);
    const drift = cond(second!, "DriftDetected");
    expect(drift).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(drift.message).toMatch(/inputs drifted together; 0 of 4 features drifted/);
  });

  it("without it, the same window shows its reconstruction error but stays healthy", () => {
    const [, second] = statuses(false);
    expect(second!.lastMetrics!.multivariateDrift).toBe(true);
    expect(second!.lastMetrics!.verdict).toBe("Healthy");
    expect(cond(second!, "Degraded").status).toBe("False");
    expect(cond(second!, "DriftDetected").status).toBe("False");
  });
});
