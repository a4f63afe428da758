// The sidecar summary: what `GET /v1/monitoring/summary` returns and the operator merges across replicas.
// Pure types and arithmetic; everything in it is additive so replicas merge exactly (profiles within their sketch bound).
import { mergeShadowSummaries, type ShadowSummary } from "./shadow-summary.js";
import type { DriftCalibrationJSON } from "./calibration.js";
import type { DriftReport } from "./compare.js";
import { ConfidenceEstimate, type ConfidenceEstimateJSON } from "./confidence-estimate.js";
import { DatasetProfile, type DatasetProfileJSON } from "./dataset-profile.js";
import { estimatedLossMetrics, mergeLossEstimates, type LossEstimateJSON } from "./loss-estimate.js";
import { mergeReconstruction, type ReconstructionWindowJSON } from "./multivariate-drift.js";
import { mergeReferenceSupport, type ReferenceSupportJSON } from "./reference-support.js";
import { ConfusionMatrix, RegressionAccumulator, type ConfusionMatrixJSON, type RegressionAccumulatorJSON } from "./performance.js";

export const SUMMARY_FORMAT = "ballast.dev/sidecar-summary/v1";
/** Column name of the single feature in `predictions` profiles. */
export const PREDICTION_COLUMN = "prediction";

/** Labelled outcomes of a window in additive form (monitoring's confusion matrix or regression sums). */
export type LabelledCounts = { task: "classification"; confusion: ConfusionMatrixJSON } | { task: "regression"; regression: RegressionAccumulatorJSON };

/** Reference profile written by `ballast train` into metadata.json: the training rows' features and predictions. */
export interface ReferenceProfileJSON {
  features: DatasetProfileJSON;
  predictions: DatasetProfileJSON;
  /** No-drift quantiles of each profile's statistics (calibrateDrift); absent in versions trained before them. */
  calibration?: { features: DriftCalibrationJSON; predictions: DriftCalibrationJSON };
}

export interface WindowSummary {
  /** Window bounds, ISO 8601; `end` is when it closed (or now, for the open window). */
  start: string;
  end: string;
  closed: boolean;
  /** Inference requests answered through the sidecar (any status). */
  requests: number;
  /** Requests that failed on the server side: upstream unreachable, timeout, or a 5xx (robustness failures). */
  failedRequests: number;
  /** Requests the caller got wrong (4xx): not failures of the model, reported apart. */
  rejectedRequests: number;
  /** Inference rows profiled (a request may carry many rows). */
  rows: number;
  features: DatasetProfileJSON;
  predictions: DatasetProfileJSON;
  /** Feedback joined to predictions made in this window. */
  labelled: LabelledCounts;
  /**
   * Classification with a calibrated version: the expected confusion matrix of the rows whose probabilities the
   * server answered with (CBPE); absent otherwise and from older sidecars.
   */
  estimate?: ConfidenceEstimateJSON;
  /** Regression with a loss estimator: the sums of the rows' predicted |error| and error² (DLE); absent otherwise. */
  lossEstimate?: LossEstimateJSON;
  /**
   * Versions with a multivariate reference: the sum of the window's rows' PCA reconstruction errors, with the band
   * to judge its mean by (multivariateDrift); absent otherwise and from older sidecars.
   */
  reconstruction?: ReconstructionWindowJSON;
  /**
   * Versions with a label-free estimate: rows checked against the reference's range and those outside it, which
   * decides whether the estimate is trusted (reference-support.ts); absent otherwise and from older sidecars.
   */
  support?: ReferenceSupportJSON;
  /**
   * Metrics derived from `labelled` (samples, accuracy, precision, recall, f1, f1Weighted / samples, mae, rmse, r2)
   * and from `estimate` (estimatedSamples, estimatedAccuracy, estimatedF1) or `lossEstimate` (estimatedSamples,
   * estimatedMae, estimatedRmse).
   */
  metrics: Record<string, number>;
  /**
   * Drift of this window's features (and predictions, in `prediction`) against the reference, as the sidecar
   * computed it with `compare` (method auto; histograms left out). null for a window without rows and for merged
   * windows: drift is not additive, so the operator recomputes it from the merged profiles.
   */
  drift: DriftReport | null;
}

export interface SidecarSummary {
  format: typeof SUMMARY_FORMAT;
  /** POD_NAME of the replica (several merged replicas: comma-separated). */
  pod: string;
  model: string;
  version: string;
  task: "classification" | "regression";
  generatedAt: string;
  /** Counters since the sidecar started (or merged: summed). */
  totals: {
    requests: number;
    failedRequests: number;
    rejectedRequests: number;
    rows: number;
    feedback: number;
    feedbackRejected: number;
    /** Labels accepted for requests whose window the sidecar no longer keeps (or lost in a restart): logged, in no window's metrics. */
    feedbackOutsideWindows?: number;
    /** What the request log's size/age bounds deleted (sidecars that keep their log in the model store). */
    logDroppedSegments?: number;
    logDroppedBytes?: number;
    logDroppedFeedback?: number;
    /** Sidecars that ship their log to an s3:// store: bytes waiting on the pod's disk, failed uploads, and 1 per pod whose spool is full. */
    logSpoolBytes?: number;
    logShipFailures?: number;
    logSpoolFull?: number;
  };
  /** Closed windows, oldest first, followed by the open window (closed: false). */
  windows: WindowSummary[];
  /** While the operator has this sidecar mirror to a shadow candidate: both models on the same requests. */
  shadow?: ShadowSummary;
}

/** Live accumulator of one window's labelled outcomes; `toJSON` gives the summary's additive form. */
export class LabelledOutcomes {
  private readonly confusion = new ConfusionMatrix();
  private readonly regression = new RegressionAccumulator();

  constructor(readonly task: "classification" | "regression") {}

  add(truth: string | number, predicted: string | number): void {
    if (this.task === "classification") this.confusion.add(String(truth), String(predicted));
    else this.regression.add(Number(truth), Number(predicted));
  }

  get samples(): number {
    return this.task === "classification" ? this.confusion.count : this.regression.count;
  }

  toJSON(): LabelledCounts {
    return this.task === "classification"
      ? { task: "classification", confusion: this.confusion.toJSON() }
      : { task: "regression", regression: this.regression.toJSON() };
  }
}

export function classificationCounts(truth: readonly string[], predicted: readonly string[]): LabelledCounts {
  const outcomes = new LabelledOutcomes("classification");
  truth.forEach((t, i) => outcomes.add(t, predicted[i]!));
  return outcomes.toJSON();
}

export function regressionCounts(truth: readonly number[], predicted: readonly number[]): LabelledCounts {
  const outcomes = new LabelledOutcomes("regression");
  truth.forEach((t, i) => outcomes.add(t, predicted[i]!));
  return outcomes.toJSON();
}

export function mergeLabelledCounts(a: LabelledCounts, b: LabelledCounts): LabelledCounts {
  if (a.task === "classification" && b.task === "classification") {
    return { task: "classification", confusion: ConfusionMatrix.fromJSON(a.confusion).merge(ConfusionMatrix.fromJSON(b.confusion)).toJSON() };
  }
  if (a.task === "regression" && b.task === "regression") {
    return { task: "regression", regression: RegressionAccumulator.fromJSON(a.regression).merge(RegressionAccumulator.fromJSON(b.regression)).toJSON() };
  }
  throw new RangeError(`cannot merge ${a.task} and ${b.task} outcomes`);
}

/**
 * Flat metrics from labelled counts (monitoring's ConfusionMatrix / RegressionAccumulator definitions):
 * classification: samples, accuracy, precision / recall / f1 (macro) and f1Weighted; regression: samples,
 * mae, rmse, r2 (when defined). A window without outcomes has only `samples: 0`, never NaN.
 */
export function labelledMetrics(counts: LabelledCounts): Record<string, number> {
  if (counts.task === "regression") {
    const m = RegressionAccumulator.fromJSON(counts.regression).metrics();
    if (m.count === 0) return { samples: 0 };
    return { samples: m.count, mae: m.mae!, rmse: m.rmse!, ...(m.r2 !== null ? { r2: m.r2 } : {}) };
  }
  const m = ConfusionMatrix.fromJSON(counts.confusion).metrics();
  if (m.count === 0 || !m.macro || !m.weighted) return { samples: 0 };
  return { samples: m.count, accuracy: m.accuracy!, precision: m.macro.precision, recall: m.macro.recall, f1: m.macro.f1, f1Weighted: m.weighted.f1 };
}

/** Label-free metric names, by the labelled metric they estimate. */
export const ESTIMATED_METRICS: Readonly<Record<string, string>> = {
  accuracy: "estimatedAccuracy",
  f1: "estimatedF1",
  mae: "estimatedMae",
  rmse: "estimatedRmse",
};

/** Flat metrics of an estimate: estimatedSamples, estimatedAccuracy, estimatedF1 (macro); nothing without rows. */
export function estimatedMetrics(estimate: ConfidenceEstimateJSON | undefined): Record<string, number> {
  const m = estimate ? ConfidenceEstimate.fromJSON(estimate).metrics() : null;
  return m ? { estimatedSamples: m.rows, estimatedAccuracy: m.accuracy, estimatedF1: m.f1 } : {};
}

/** Both windows' estimates summed; a window without one (an older sidecar, unlabelled outputs) adds nothing. */
function mergeEstimates(a: ConfidenceEstimateJSON | undefined, b: ConfidenceEstimateJSON | undefined): ConfidenceEstimateJSON | undefined {
  if (!a || !b) return a ?? b;
  return ConfidenceEstimate.fromJSON(a).merge(ConfidenceEstimate.fromJSON(b)).toJSON();
}

function mergeProfiles(a: DatasetProfileJSON, b: DatasetProfileJSON): DatasetProfileJSON {
  return DatasetProfile.fromJSON(a).merge(DatasetProfile.fromJSON(b)).toJSON();
}

export function mergeWindows(a: WindowSummary, b: WindowSummary): WindowSummary {
  const labelled = mergeLabelledCounts(a.labelled, b.labelled);
  const estimate = mergeEstimates(a.estimate, b.estimate);
  const reconstruction = mergeReconstruction(a.reconstruction, b.reconstruction);
  const lossEstimate = mergeLossEstimates(a.lossEstimate, b.lossEstimate);
  const support = mergeReferenceSupport(a.support, b.support);
  return {
    start: a.start < b.start ? a.start : b.start,
    end: a.end > b.end ? a.end : b.end,
    closed: a.closed && b.closed,
    requests: a.requests + b.requests,
    failedRequests: a.failedRequests + b.failedRequests,
    rejectedRequests: a.rejectedRequests + b.rejectedRequests,
    rows: a.rows + b.rows,
    features: mergeProfiles(a.features, b.features),
    predictions: mergeProfiles(a.predictions, b.predictions),
    labelled,
    ...(estimate ? { estimate } : {}),
    ...(lossEstimate ? { lossEstimate } : {}),
    ...(reconstruction ? { reconstruction } : {}),
    ...(support ? { support } : {}),
    metrics: { ...labelledMetrics(labelled), ...estimatedMetrics(estimate), ...estimatedLossMetrics(lossEstimate) },
    // Drift is not additive; the merged window's drift must be recomputed from the merged profiles.
    drift: null,
  };
}

/**
 * Merges the summaries of the replicas of one model version. Closed windows are aligned from the newest
 * (the k-th newest closed window of every replica merge together); the open windows merge together.
 */
export function mergeSummaries(summaries: readonly SidecarSummary[]): SidecarSummary {
  const [first, ...rest] = summaries;
  if (!first) throw new RangeError("mergeSummaries needs at least one summary");
  for (const s of rest) {
    if (s.model !== first.model || s.version !== first.version) {
      throw new RangeError(`cannot merge summaries of ${first.model}/${first.version} and ${s.model}/${s.version}`);
    }
  }
  const closedByAge: WindowSummary[][] = [];
  const open: WindowSummary[] = [];
  for (const s of summaries) {
    const closed = s.windows.filter((w) => w.closed);
    closed.reverse().forEach((w, age) => (closedByAge[age] ??= []).push(w));
    open.push(...s.windows.filter((w) => !w.closed));
  }
  const mergeAll = (ws: WindowSummary[]): WindowSummary => ws.slice(1).reduce(mergeWindows, ws[0]!);
  const windows = closedByAge.map(mergeAll).reverse();
  if (open.length > 0) windows.push(mergeAll(open));
  const totals = { ...first.totals };
  // A counter one replica lacks (an older sidecar during a rollout) counts as 0 there, never NaN.
  for (const s of rest)
    for (const key of new Set([...Object.keys(totals), ...Object.keys(s.totals)]) as Set<keyof typeof totals>)
      totals[key] = (totals[key] ?? 0) + (s.totals[key] ?? 0);
  return {
    format: SUMMARY_FORMAT,
    pod: summaries.map((s) => s.pod).join(","),
    model: first.model,
    version: first.version,
    task: first.task,
    generatedAt: summaries.map((s) => s.generatedAt).reduce((a, b) => (a > b ? a : b)),
    totals,
    windows,
    ...optional("shadow", mergeShadowSummaries(summaries.flatMap((s) => (s.shadow ? [s.shadow] : [])))),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
