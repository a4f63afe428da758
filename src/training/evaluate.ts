// Holdout metrics of a trained model, named as the ModelDeployment's accuracyMetric values.
import { classificationCounts, regressionCounts, labelledMetrics } from "../monitoring/summary.js";

export type EvaluationInput =
  | { task: "classification"; truth: readonly string[]; predicted: readonly string[] }
  | { task: "regression"; truth: readonly number[]; predicted: readonly number[] };

/** accuracy, precision, recall, f1 (macro), f1Weighted for classification; mae, rmse, r2 for regression; plus `samples`. */
export function evaluatePredictions(input: EvaluationInput): Record<string, number> {
  const counts =
    input.task === "classification"
      ? classificationCounts(input.truth, input.predicted)
      : regressionCounts(input.truth, input.predicted);
  return labelledMetrics(counts);
}
