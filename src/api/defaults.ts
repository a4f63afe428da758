// Applies the schema's defaults the way the API server does, from the same schema, so code that
// builds specs in memory (tests, `ballast demo`) sees exactly what a cluster would store.
import { Value } from "@sinclair/typebox/value";
import { ModelDeploymentSpecSchema, type ModelDeploymentSpec, type ResolvedModelDeploymentSpec } from "./v1alpha1.js";

/** Returns a defaulted copy of `spec`; the input is not modified. */
export function applyModelDeploymentDefaults(spec: ModelDeploymentSpec): ResolvedModelDeploymentSpec {
  return Value.Default(ModelDeploymentSpecSchema, structuredClone(spec)) as ResolvedModelDeploymentSpec;
}

/** Default drift threshold by method: p-value methods flag p < 0.05, distance methods flag ≥ 0.1 (Evidently's defaults). */
export function defaultDriftThreshold(method: "psi" | "ks" | "jensenshannon" | "wasserstein" | "chisquare"): number {
  return method === "ks" || method === "chisquare" ? 0.05 : 0.1;
}

/** Default live quality metric for a task when monitoring.accuracyMetric is unset. */
export function defaultAccuracyMetric(task: "classification" | "regression"): "accuracy" | "rmse" {
  return task === "classification" ? "accuracy" : "rmse";
}
