// The sidecar summary: what `GET /v1/monitoring/summary` returns and the operator merges across replicas.
// Pure types and arithmetic; everything in it is additive so replicas merge exactly (profiles within their sketch bound).
import type { DriftReport } from "./compare.js";
import { DatasetProfile, type DatasetProfileJSON } from "./dataset-profile.js";

export const SUMMARY_FORMAT = "ballast.dev/sidecar-summary/v1";
/** Column name of the single feature in `predictions` profiles. */
export const PREDICTION_COLUMN = "prediction";

/** Labelled outcomes of a window in additive form: a confusion matrix, or error sums. */
export type LabelledCounts =
  | {
      task: "classification";
      classes: string[];
      /** confusion[t][p]: rows with true class `classes[t]` predicted as `classes[p]`. */
      confusion: number[][];
      /** Feedback labels that are not among `classes` (counted, excluded from the matrix). */
      unknownLabels: number;
    }
  | {
      task: "regression";
      count: number;
      sumAbsError: number;
      sumSquaredError: number;
      sumTruth: number;
      sumTruthSquared: number;
    };

/** Reference profile written by `ballast train` into metadata.json: the training rows' features and predictions. */
export interface ReferenceProfileJSON {
  features: DatasetProfileJSON;
  predictions: DatasetProfileJSON;
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
  /** Metrics derived from `labelled` (accuracy, precision, recall, f1 / mae, rmse, r2, samples). */
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
  };
  /** Closed windows, oldest first, followed by the open window (closed: false). */
  windows: WindowSummary[];
}

export function emptyLabelledCounts(task: "classification" | "regression", classes: readonly string[] = []): LabelledCounts {
  return task === "classification"
    ? { task, classes: [...classes], confusion: classes.map(() => classes.map(() => 0)), unknownLabels: 0 }
    : { task, count: 0, sumAbsError: 0, sumSquaredError: 0, sumTruth: 0, sumTruthSquared: 0 };
}

/** Adds one labelled outcome; returns false when a classification label is not a known class. */
export function addLabelledOutcome(counts: LabelledCounts, truth: string | number, predicted: string | number): boolean {
  if (counts.task === "classification") {
    const t = counts.classes.indexOf(String(truth));
    const p = counts.classes.indexOf(String(predicted));
    if (t < 0 || p < 0) {
      counts.unknownLabels++;
      return false;
    }
    counts.confusion[t]![p]!++;
    return true;
  }
  const y = Number(truth);
  const e = Number(predicted) - y;
  counts.count++;
  counts.sumAbsError += Math.abs(e);
  counts.sumSquaredError += e * e;
  counts.sumTruth += y;
  counts.sumTruthSquared += y * y;
  return true;
}

export function classificationCounts(classes: readonly string[], truth: readonly string[], predicted: readonly string[]): LabelledCounts {
  const counts = emptyLabelledCounts("classification", classes);
  truth.forEach((t, i) => addLabelledOutcome(counts, t, predicted[i]!));
  return counts;
}

export function regressionCounts(truth: readonly number[], predicted: readonly number[]): LabelledCounts {
  const counts = emptyLabelledCounts("regression");
  truth.forEach((t, i) => addLabelledOutcome(counts, t, predicted[i]!));
  return counts;
}

export function mergeLabelledCounts(a: LabelledCounts, b: LabelledCounts): LabelledCounts {
  if (a.task === "classification" && b.task === "classification") {
    const classes = [...a.classes, ...b.classes.filter((c) => !a.classes.includes(c))];
    const out = emptyLabelledCounts("classification", classes) as Extract<LabelledCounts, { task: "classification" }>;
    for (const src of [a, b]) {
      src.confusion.forEach((row, t) =>
        row.forEach((n, p) => {
          out.confusion[classes.indexOf(src.classes[t]!)]![classes.indexOf(src.classes[p]!)]! += n;
        }),
      );
    }
    out.unknownLabels = a.unknownLabels + b.unknownLabels;
    return out;
  }
  if (a.task === "regression" && b.task === "regression") {
    return {
      task: "regression",
      count: a.count + b.count,
      sumAbsError: a.sumAbsError + b.sumAbsError,
      sumSquaredError: a.sumSquaredError + b.sumSquaredError,
      sumTruth: a.sumTruth + b.sumTruth,
      sumTruthSquared: a.sumTruthSquared + b.sumTruthSquared,
    };
  }
  throw new RangeError(`cannot merge ${a.task} and ${b.task} outcomes`);
}

/**
 * Metrics from labelled counts. Classification: accuracy and macro precision / recall / f1 over classes
 * that occur (as truth or prediction); regression: mae, rmse, r2. `samples` is the number of outcomes.
 * A window without outcomes has only `samples: 0`, never NaN.
 */
export function labelledMetrics(counts: LabelledCounts): Record<string, number> {
  if (counts.task === "regression") {
    const n = counts.count;
    if (n === 0) return { samples: 0 };
    const variance = counts.sumTruthSquared - (counts.sumTruth * counts.sumTruth) / n;
    return {
      samples: n,
      mae: counts.sumAbsError / n,
      rmse: Math.sqrt(counts.sumSquaredError / n),
      ...(variance > 0 ? { r2: 1 - counts.sumSquaredError / variance } : {}),
    };
  }
  const k = counts.classes.length;
  let total = 0;
  let correct = 0;
  const precision: number[] = [];
  const recall: number[] = [];
  const f1: number[] = [];
  for (let c = 0; c < k; c++) {
    let truthC = 0;
    let predC = 0;
    for (let j = 0; j < k; j++) {
      truthC += counts.confusion[c]![j]!;
      predC += counts.confusion[j]![c]!;
    }
    const tp = counts.confusion[c]![c]!;
    total += truthC;
    correct += tp;
    if (truthC === 0 && predC === 0) continue;
    const p = predC > 0 ? tp / predC : 0;
    const r = truthC > 0 ? tp / truthC : 0;
    precision.push(p);
    recall.push(r);
    f1.push(p + r > 0 ? (2 * p * r) / (p + r) : 0);
  }
  if (total === 0) return { samples: 0 };
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { samples: total, accuracy: correct / total, precision: mean(precision), recall: mean(recall), f1: mean(f1) };
}

function mergeProfiles(a: DatasetProfileJSON, b: DatasetProfileJSON): DatasetProfileJSON {
  return DatasetProfile.fromJSON(a).merge(DatasetProfile.fromJSON(b)).toJSON();
}

export function mergeWindows(a: WindowSummary, b: WindowSummary): WindowSummary {
  const labelled = mergeLabelledCounts(a.labelled, b.labelled);
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
    metrics: labelledMetrics(labelled),
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
  for (const s of rest) for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += s.totals[key];
  return {
    format: SUMMARY_FORMAT,
    pod: summaries.map((s) => s.pod).join(","),
    model: first.model,
    version: first.version,
    task: first.task,
    generatedAt: summaries.map((s) => s.generatedAt).reduce((a, b) => (a > b ? a : b)),
    totals,
    windows,
  };
}
