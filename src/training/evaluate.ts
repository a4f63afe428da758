// Holdout metrics of a trained model, named as the ModelDeployment's accuracyMetric values.
import { classificationCounts, regressionCounts, labelledMetrics } from "../monitoring/summary.js";
import { DataError } from "./data.js";

export type EvaluationInput =
  | { task: "classification"; truth: readonly string[]; predicted: readonly string[] }
  | { task: "regression"; truth: readonly number[]; predicted: readonly number[] };

/** accuracy, precision, recall, f1 (macro), f1Weighted for classification; mae, rmse, r2 for regression; plus `samples`. */
export function evaluatePredictions(input: EvaluationInput): Record<string, number> {
  const counts = input.task === "classification" ? classificationCounts(input.truth, input.predicted) : regressionCounts(input.truth, input.predicted);
  return labelledMetrics(counts);
}

/** The metrics a candidate can be selected and gated on, per task, and which way is better. */
export const SELECTION_METRICS = {
  classification: { accuracy: true, precision: true, recall: true, f1: true, f1Weighted: true },
  regression: { rmse: false, mae: false, r2: true },
} as const satisfies Record<"classification" | "regression", Record<string, boolean>>;

export function defaultMetric(task: "classification" | "regression"): string {
  return task === "classification" ? "accuracy" : "rmse";
}

/** Whether a larger value of `metric` is better; throws naming the task's metrics when it is not one of them. */
export function metricHigherIsBetter(task: "classification" | "regression", metric: string): boolean {
  const known: Record<string, boolean> = SELECTION_METRICS[task];
  const higher = known[metric];
  if (higher === undefined) throw new DataError(`--metric ${metric} is not a ${task} metric (use ${Object.keys(known).join(", ")})`);
  return higher;
}

/** True when `a` is strictly better than `b`; a missing score is worse than any score. */
export function isBetter(a: number | null, b: number | null, higherIsBetter: boolean): boolean {
  if (a === null || !Number.isFinite(a)) return false;
  if (b === null || !Number.isFinite(b)) return true;
  return higherIsBetter ? a > b : a < b;
}
