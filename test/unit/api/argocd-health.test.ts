// The Argo CD health check shipped in docs/gitops.md, run in a Lua VM on the statuses the operator writes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  argoHealth,
  computeKstatus,
  setCondition,
  type Condition,
  type ConditionReasonName,
  type ConditionTypeName,
  type HealthInput,
} from "../../../src/api/index.js";
import { healthCheckLuaFromDocs, runHealthCheck } from "./argocd-lua.js";

const lua = healthCheckLuaFromDocs();
const now = new Date("2026-11-26T12:00:00Z");

/** A ModelDeployment at `generation` whose operator wrote `conditions` after observing `observed`. */
function modelDeployment(opts: {
  generation: number;
  observed?: number;
  conditions?: [type: ConditionTypeName, status: "True" | "False" | "Unknown", reason: ConditionReasonName, message: string][];
  paused?: boolean;
  deleting?: boolean;
}) {
  let conditions: Condition[] = [];
  for (const [type, status, reason, message] of opts.conditions ?? []) {
    conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: opts.observed }, now);
  }
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: {
      name: "weather",
      namespace: "models",
      generation: opts.generation,
      ...(opts.deleting ? { deletionTimestamp: "2026-11-26T12:01:00Z", finalizers: ["foregroundDeletion"] } : {}),
    },
    spec: { model: { name: "weather", storageUri: "pvc://models/store" }, policy: { paused: opts.paused ?? false } },
    ...(opts.observed === undefined ? {} : { status: { observedGeneration: opts.observed, conditions, servingVersion: "v1" } }),
  };
}

const readyConditions: [ConditionTypeName, "True" | "False", ConditionReasonName, string][] = [
  ["Ready", "True", "Reconciled", "serving weather v1 (1/1 replicas ready)"],
  ["Reconciling", "False", "Reconciled", ""],
  ["Stalled", "False", "Reconciled", ""],
];

describe("Argo CD health check (docs/gitops.md)", () => {
  it("a ModelDeployment the operator has not seen yet is Progressing", () => {
    expect(runHealthCheck(lua, modelDeployment({ generation: 1 }))).toEqual({
      status: "Progressing",
      message: "Waiting for the operator to observe generation 1",
    });
  });

  it("while the serving Deployment rolls out it is Progressing with the operator's message", () => {
    const md = modelDeployment({
      generation: 1,
      observed: 1,
      conditions: [
        ["Ready", "False", "ServingNotReady", "0/1 serving replicas ready"],
        ["Reconciling", "True", "Progressing", "rolling out Deployment weather-serving"],
      ],
    });
    expect(runHealthCheck(lua, md)).toEqual({ status: "Progressing", message: "rolling out Deployment weather-serving" });
  });

  it("a spec that can never work (missing PVC) is Degraded with the reason", () => {
    const md = modelDeployment({
      generation: 1,
      observed: 1,
      conditions: [
        ["Ready", "False", "ClaimNotFound", "PersistentVolumeClaim models not found"],
        ["Stalled", "True", "ClaimNotFound", "PersistentVolumeClaim models/models not found: create it or fix spec.model.storageUri"],
      ],
    });
    expect(runHealthCheck(lua, md)).toEqual({
      status: "Degraded",
      message: "PersistentVolumeClaim models/models not found: create it or fix spec.model.storageUri",
    });
  });

  it("a ready ModelDeployment is Healthy, even while its model drifts (the operator handles that)", () => {
    const md = modelDeployment({
      generation: 3,
      observed: 3,
      conditions: [...readyConditions, ["DriftDetected", "True", "DriftAboveThreshold", "3 of 4 features drifted"]],
    });
    expect(runHealthCheck(lua, md)).toEqual({ status: "Healthy", message: "serving weather v1 (1/1 replicas ready)" });
  });

  it("a ready ModelDeployment with policy paused is Suspended; paused never hides a failure", () => {
    expect(runHealthCheck(lua, modelDeployment({ generation: 1, observed: 1, conditions: readyConditions, paused: true }))).toEqual({
      status: "Suspended",
      message: "Retraining and promotion paused (spec.policy.paused): serving weather v1 (1/1 replicas ready)",
    });
    const stalled = modelDeployment({
      generation: 1,
      observed: 1,
      paused: true,
      conditions: [["Stalled", "True", "ModelNotFound", "no versions under pvc://models/store/weather"]],
    });
    expect(runHealthCheck(lua, stalled).status).toBe("Degraded");
  });

  it("after a spec change it is Progressing until the operator observes the new generation", () => {
    const md = modelDeployment({ generation: 4, observed: 3, conditions: readyConditions });
    expect(runHealthCheck(lua, md)).toEqual({ status: "Progressing", message: "Waiting for the operator to observe generation 4" });
  });

  it("while a finalizer holds its deletion it is Progressing", () => {
    const md = modelDeployment({ generation: 2, observed: 2, conditions: readyConditions, deleting: true });
    expect(runHealthCheck(lua, md)).toEqual({
      status: "Progressing",
      message: "Deleting: waiting for finalizers (foreground deletion of the serving objects, or another controller's)",
    });
  });

  it("agrees with computeKstatus/argoHealth on every combination of generation, conditions, pause and deletion", () => {
    const condition = fc.record({
      type: fc.constantFrom<ConditionTypeName[]>("Ready", "Reconciling", "Stalled", "Serving", "DriftDetected"),
      status: fc.constantFrom("True" as const, "False" as const, "Unknown" as const),
      reason: fc.constantFrom<ConditionReasonName[]>("Reconciled", "Progressing", "ClaimNotFound"),
      message: fc.constantFrom("", "rolling out", "claim missing", "ok"),
    });
    const resource = fc.record({
      generation: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      observed: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      conditions: fc.option(fc.array(condition, { maxLength: 6 }), { nil: undefined }),
      paused: fc.option(fc.boolean(), { nil: undefined }),
      deleting: fc.boolean(),
    });
    fc.assert(
      fc.property(resource, (r) => {
        let conditions: Condition[] | undefined;
        for (const c of r.conditions ?? []) conditions = setCondition(conditions, c, now);
        const obj: HealthInput = {
          metadata: { generation: r.generation, ...(r.deleting ? { deletionTimestamp: "2026-11-26T12:01:00Z" } : {}) },
          spec: r.paused === undefined ? {} : { policy: { paused: r.paused } },
          status: r.observed === undefined && conditions === undefined ? undefined : { observedGeneration: r.observed, conditions },
        };
        const expected = argoHealth(obj);
        expect(runHealthCheck(lua, obj)).toEqual(expected);
        // The Argo CD reading never contradicts Flux's: Degraded exactly when kstatus is Failed.
        expect(expected.status === "Degraded").toBe(computeKstatus(obj).status === "Failed");
      }),
      { numRuns: 2000 },
    );
  });
});
