// The sidecar's monitoring settings from the operator's ConfigMap (monitoring.json): drift method, threshold mode
// (calibrated by default) and fixed threshold, correction, the features to judge, and an optional reference
// profile other than the served version's.
import fs from "node:fs/promises";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { calibrateDrift } from "../monitoring/calibration.js";
import type { CompareOptions } from "../monitoring/compare.js";
import { DatasetProfile } from "../monitoring/dataset-profile.js";
import type { ReferenceProfileJSON } from "../monitoring/summary.js";
import { CORRECTIONS, DRIFT_METHOD_CHOICES, THRESHOLD_MODES, type ThresholdMode } from "../vocabulary/drift.js";
import type { ModelMetadata } from "./metadata.js";
import { readS3Object } from "./s3-store.js";
import { HttpModelStore, resolveStorePath, type StoreOptions } from "./store.js";

const MonitoringConfigSchema = Type.Object({
  features: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: true }))),
  labelField: Type.Optional(Type.String()),
  task: Type.Optional(Type.Union([Type.Literal("classification"), Type.Literal("regression")])),
  reference: Type.Optional(Type.Union([Type.Null(), Type.Object({ uri: Type.String() })])),
  drift: Type.Optional(
    Type.Object({
      method: Type.Optional(Type.Union(DRIFT_METHOD_CHOICES.map((m) => Type.Literal(m)))),
      thresholdMode: Type.Optional(Type.Union(THRESHOLD_MODES.map((m) => Type.Literal(m)))),
      correction: Type.Optional(Type.Union(CORRECTIONS.map((c) => Type.Literal(c)))),
      threshold: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()])),
    }),
  ),
});

export type MonitoringConfig = Static<typeof MonitoringConfigSchema>;

export class MonitoringConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MonitoringConfigError";
  }
}

export async function readMonitoringConfig(file: string): Promise<MonitoringConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (err) {
    throw new MonitoringConfigError(`monitoring config ${file}: ${(err as Error).message}`);
  }
  const first = Value.Errors(MonitoringConfigSchema, parsed).First();
  if (first) throw new MonitoringConfigError(`monitoring config ${file}: ${first.path || "/"} ${first.message}`);
  return parsed as MonitoringConfig;
}

/** The operator's default: thresholds from the reference's no-drift calibration. */
export const DEFAULT_THRESHOLD_MODE: ThresholdMode = "calibrated";

/** A config that names a threshold but no mode (written before modes) meant a fixed threshold. */
function thresholdModeOf(config: MonitoringConfig | undefined): ThresholdMode {
  return config?.drift?.thresholdMode ?? (config?.drift?.threshold != null ? "fixed" : DEFAULT_THRESHOLD_MODE);
}

/** compare() options for the window drift: method (auto by default), threshold mode, fixed threshold, correction, features. */
export function driftOptions(config: MonitoringConfig | undefined, meta: ModelMetadata): CompareOptions {
  const method = config?.drift?.method ?? "auto";
  const threshold = config?.drift?.threshold ?? undefined;
  const thresholdMode = thresholdModeOf(config);
  if (threshold !== undefined && method === "auto") throw new MonitoringConfigError("monitoring config drift.threshold needs an explicit drift.method");
  if (threshold !== undefined && thresholdMode !== "fixed")
    throw new MonitoringConfigError("monitoring config drift.threshold is a fixed threshold: it needs drift.thresholdMode fixed");
  const names = meta.features.map((f) => f.name);
  const features = config?.features?.map((f) => f.name);
  const unknown = features?.filter((f) => !names.includes(f)) ?? [];
  if (unknown.length > 0) {
    throw new MonitoringConfigError(`monitoring config features: ${unknown.join(", ")} not among the model's inputs (${names.join(", ")})`);
  }
  if (config?.task && config.task !== meta.task)
    throw new MonitoringConfigError(`monitoring config task ${config.task} differs from the model version's ${meta.task}`);
  if (config?.labelField && config.labelField !== meta.label) {
    throw new MonitoringConfigError(`monitoring config labelField "${config.labelField}" differs from the model version's label "${meta.label}"`);
  }
  return {
    method,
    thresholdMode,
    ...(config?.drift?.correction ? { correction: config.drift.correction } : {}),
    ...(threshold !== undefined ? { thresholds: { [method]: threshold } } : {}),
    ...(features && features.length > 0 ? { features } : {}),
  };
}

/**
 * The reference profile: the config's `reference.uri` (a metadata.json, a `{features, predictions}` reference
 * profile, or a bare dataset profile of the features) or else the served version's own.
 */
export async function loadReference(config: MonitoringConfig | undefined, meta: ModelMetadata, storeOptions: StoreOptions): Promise<ReferenceProfileJSON> {
  const reference = await readReference(config, meta, storeOptions);
  if (thresholdModeOf(config) !== "calibrated" || reference.calibration) return reference;
  return withCalibration(reference);
}

/**
 * A reference without a stored calibration (a version trained before it, or a profile from reference.uri) is
 * calibrated once here, at start-up, off the request path; the cost is bounded as `ballast train`'s
 * (docs/monitoring.md), and the result is the same, since calibration is seeded.
 */
export function withCalibration(reference: ReferenceProfileJSON): ReferenceProfileJSON {
  let features: DatasetProfile;
  let predictions: DatasetProfile;
  try {
    features = DatasetProfile.fromJSON(reference.features);
    predictions = DatasetProfile.fromJSON(reference.predictions);
  } catch (err) {
    throw new MonitoringConfigError(`reference profile: ${(err as Error).message}`);
  }
  return { ...reference, calibration: { features: calibrateDrift(features).toJSON(), predictions: calibrateDrift(predictions).toJSON() } };
}

async function readReference(config: MonitoringConfig | undefined, meta: ModelMetadata, storeOptions: StoreOptions): Promise<ReferenceProfileJSON> {
  const own = meta.referenceProfile as ReferenceProfileJSON;
  const uri = config?.reference?.uri;
  if (!uri) return own;
  let text: string;
  try {
    if (uri.startsWith("s3://")) {
      text = (await readS3Object(uri, storeOptions.s3)).toString("utf8");
    } else if (uri.startsWith("http://") || uri.startsWith("https://")) {
      const url = new URL(uri);
      const slash = url.pathname.lastIndexOf("/");
      // Reuse the HTTP store's fetch (timeouts, 404 messages) by treating the parent as a store root.
      const store = new HttpModelStore(`${url.origin}${url.pathname.slice(0, slash + 1)}`);
      text = (await store.fetchFile(url.pathname.slice(slash + 1))).toString("utf8");
    } else {
      text = await fs.readFile(resolveStorePath(uri, storeOptions), "utf8");
    }
  } catch (err) {
    throw new MonitoringConfigError(`monitoring config reference.uri ${uri}: ${(err as Error).message}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new MonitoringConfigError(`monitoring config reference.uri ${uri}: invalid JSON: ${(err as Error).message}`);
  }
  if (json.referenceProfile) return json.referenceProfile as ReferenceProfileJSON;
  if (json.features && json.predictions) return json as unknown as ReferenceProfileJSON;
  return { features: json as unknown as ReferenceProfileJSON["features"], predictions: own.predictions };
}
