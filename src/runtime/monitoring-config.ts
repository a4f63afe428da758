// The sidecar's monitoring settings from the operator's ConfigMap (monitoring.json): drift method and threshold,
// the features to judge, and an optional reference profile other than the served version's.
import fs from "node:fs/promises";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { DRIFT_METHODS, type CompareOptions, type DriftMethod } from "../monitoring/compare.js";
import type { ReferenceProfileJSON } from "../monitoring/summary.js";
import type { ModelMetadata } from "./metadata.js";
import { HttpModelStore, resolveStorePath, type StoreOptions } from "./store.js";

const MonitoringConfigSchema = Type.Object({
  features: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: true }))),
  labelField: Type.Optional(Type.String()),
  task: Type.Optional(Type.Union([Type.Literal("classification"), Type.Literal("regression")])),
  reference: Type.Optional(Type.Union([Type.Null(), Type.Object({ uri: Type.String() })])),
  drift: Type.Optional(
    Type.Object({
      method: Type.Optional(Type.String()),
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

/** compare() options for the window drift: method (auto by default), its threshold, and the features to judge. */
export function driftOptions(config: MonitoringConfig | undefined, meta: ModelMetadata): CompareOptions {
  const method = config?.drift?.method ?? "auto";
  if (method !== "auto" && !(DRIFT_METHODS as readonly string[]).includes(method)) {
    throw new MonitoringConfigError(`monitoring config drift.method: "${method}" is not one of auto, ${DRIFT_METHODS.join(", ")}`);
  }
  const threshold = config?.drift?.threshold ?? undefined;
  if (threshold !== undefined && method === "auto") throw new MonitoringConfigError("monitoring config drift.threshold needs an explicit drift.method");
  const names = meta.features.map((f) => f.name);
  const features = config?.features?.map((f) => f.name);
  const unknown = features?.filter((f) => !names.includes(f)) ?? [];
  if (unknown.length > 0) {
    throw new MonitoringConfigError(`monitoring config features: ${unknown.join(", ")} not among the model's inputs (${names.join(", ")})`);
  }
  if (config?.task && config.task !== meta.task) throw new MonitoringConfigError(`monitoring config task ${config.task} differs from the model version's ${meta.task}`);
  if (config?.labelField && config.labelField !== meta.label) {
    throw new MonitoringConfigError(`monitoring config labelField "${config.labelField}" differs from the model version's label "${meta.label}"`);
  }
  return {
    method: method as DriftMethod | "auto",
    ...(threshold !== undefined ? { thresholds: { [method]: threshold } } : {}),
    ...(features && features.length > 0 ? { features } : {}),
  };
}

/**
 * The reference profile: the config's `reference.uri` (a metadata.json, a `{features, predictions}` reference
 * profile, or a bare dataset profile of the features) or else the served version's own.
 */
export async function loadReference(config: MonitoringConfig | undefined, meta: ModelMetadata, storeOptions: StoreOptions): Promise<ReferenceProfileJSON> {
  const own = meta.referenceProfile as ReferenceProfileJSON;
  const uri = config?.reference?.uri;
  if (!uri) return own;
  let text: string;
  try {
    if (uri.startsWith("http://") || uri.startsWith("https://")) {
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
