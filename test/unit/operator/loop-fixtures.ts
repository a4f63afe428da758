// The loop's unit-test world: a penguin classifier ModelDeployment on a fixed clock, and a step applied to status
// the way the loop reconciler merges it.
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { LOOP_OWNED_FIELDS, type stepLoop } from "../../../src/operator/loop/state-machine.js";

export const T0 = new Date("2026-12-04T10:00:00Z");
export const at = (s: number) => new Date(T0.getTime() + s * 1000);
export const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export function penguinsModelDeployment(
  spec: Partial<ModelDeploymentSpec> = {},
  status: ModelDeploymentStatus = {},
  extra: { generation?: number; annotations?: Record<string, string> } = {},
): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "penguins", namespace: "ml", uid: "u-1", generation: extra.generation ?? 1, creationTimestamp: T0, annotations: extra.annotations },
    spec: applyModelDeploymentDefaults({
      model: { name: "penguin-sex", storageUri: "pvc://models/store" },
      monitoring: { features: [{ name: "mass", type: "numeric" }], labelField: "sex", task: "classification" },
      policy: { minAccuracy: 0.75, cooldown: "1m" },
      retraining: { tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }], resources: { limits: { "nvidia.com/gpu": "1" } } },
      ...spec,
    } as ModelDeploymentSpec),
    status: { observedGeneration: 1, servingVersion: "v1", ...status },
  };
}

/** Applies a step's status the way the reconciler merges it. */
export function applyStep(m: ResolvedModelDeployment, step: ReturnType<typeof stepLoop>, more: ModelDeploymentStatus = {}): ResolvedModelDeployment {
  const status: ModelDeploymentStatus = { ...m.status };
  for (const k of LOOP_OWNED_FIELDS) {
    if (step.status[k] === undefined) delete status[k];
    else Object.assign(status, { [k]: step.status[k] });
  }
  status.conditions = step.status.conditions;
  return { ...m, status: { ...status, ...more } };
}
