// Applies the schema's defaults the way the API server does, from the same schema, so code that
// builds specs in memory (tests, `ballast demo`) sees exactly what a cluster would store.
import { FIXED_DRIFT_THRESHOLDS, type DriftMethod } from "../vocabulary/drift.js";
import { ModelDeploymentSpecSchema, type ModelDeploymentSpec, type ResolvedModelDeploymentSpec } from "./v1alpha1.js";

interface DefaultingSchema {
  default?: unknown;
  properties?: Record<string, DefaultingSchema>;
  items?: DefaultingSchema;
  additionalProperties?: DefaultingSchema | boolean;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// Kubernetes semantics (unlike TypeBox's Value.Default): a default replaces only an absent value,
// never merges into a present object; then defaulting descends into properties, items and map values.
function defaultValue(schema: DefaultingSchema, value: unknown): unknown {
  const current = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value;
  if (Array.isArray(current) && schema.items) return current.map((item) => defaultValue(schema.items!, item));
  if (!isPlainObject(current)) return current;
  const out: Record<string, unknown> = { ...current };
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const next = defaultValue(child, out[key]);
    if (next !== undefined) out[key] = next;
  }
  if (typeof schema.additionalProperties === "object") {
    const mapValues = schema.additionalProperties;
    for (const [key, item] of Object.entries(out)) if (!(key in (schema.properties ?? {}))) out[key] = defaultValue(mapValues, item);
  }
  return out;
}

/** Returns a defaulted copy of `spec`; the input is not modified. */
export function applyModelDeploymentDefaults(spec: ModelDeploymentSpec): ResolvedModelDeploymentSpec {
  return defaultValue(ModelDeploymentSpecSchema as DefaultingSchema, structuredClone(spec)) as ResolvedModelDeploymentSpec;
}

/** Default fixed drift threshold by method: p-value methods flag p < 0.05, distance methods flag ≥ 0.1 (Evidently's defaults). */
export function defaultDriftThreshold(method: DriftMethod): number {
  return FIXED_DRIFT_THRESHOLDS[method];
}

/** Default live quality metric for a task when monitoring.accuracyMetric is unset. */
export function defaultAccuracyMetric(task: "classification" | "regression"): "accuracy" | "rmse" {
  return task === "classification" ? "accuracy" : "rmse";
}
