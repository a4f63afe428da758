// A ModelDeployment as the operator's caches hand it over: defaulted spec, the generation and status given.
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";

export function weatherModelDeployment(generation = 2, status?: ResolvedModelDeployment["status"]): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", uid: "u1", generation },
    spec: applyModelDeploymentDefaults({
      model: { name: "m", storageUri: "file:///srv/models" },
      monitoring: { features: [{ name: "x", type: "numeric" }], labelField: "y", task: "regression" },
    } as ModelDeploymentSpec),
    status,
  };
}
