// The serving part of status: how a Deployment reads (kstatus), and the conditions a user and `kubectl wait` see.
import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { classifyReconcileError, StalledError } from "../../../src/operator/reconcile-errors.js";
import { deploymentProgress, servingStatus } from "../../../src/operator/serving/status.js";
import { weatherModelDeployment as md } from "./fixtures.js";

const NOW = new Date("2026-11-26T12:00:00Z");
const LATER = new Date("2026-11-26T12:05:00Z");

function deployment(replicas: number, st: NonNullable<V1Deployment["status"]>, generation = 1): V1Deployment {
  return {
    metadata: { name: "weather-serving", generation },
    spec: { replicas, selector: {}, template: {} },
    status: { observedGeneration: generation, ...st },
  };
}

const cond = (s: ReturnType<typeof servingStatus>, type: string) => s.conditions!.find((c) => c.type === type);

describe("how a serving Deployment reads", () => {
  it("is progressing until it exists, its generation is observed, and every pod is updated and ready", () => {
    expect(deploymentProgress(undefined)).toMatchObject({ ready: false, stalled: false, reason: "Progressing" });
    expect(deploymentProgress(deployment(2, { observedGeneration: 1 }, 2))).toMatchObject({ ready: false, reason: "DeploymentProgressing" });
    expect(deploymentProgress(deployment(2, { replicas: 2, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2 })).message).toBe(
      "rolling out: 1 of 2 serving pods updated",
    );
    expect(deploymentProgress(deployment(2, { replicas: 3, updatedReplicas: 2, readyReplicas: 3, availableReplicas: 3 })).message).toBe(
      "rolling out: 1 old serving pods terminating",
    );
    expect(deploymentProgress(deployment(2, { replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1 }))).toMatchObject({
      ready: false,
      reason: "ServingNotReady",
      message: "1 of 2 serving pods ready",
    });
    expect(deploymentProgress(deployment(2, { replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 }))).toMatchObject({
      ready: true,
      reason: "DeploymentAvailable",
    });
    expect(deploymentProgress(deployment(0, {}))).toMatchObject({ ready: true, reason: "ScaledToZero" });
  });

  it("is stalled once its progress deadline passed", () => {
    const d = deployment(1, {
      conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "ReplicaSet has timed out progressing." }],
    });
    expect(deploymentProgress(d)).toMatchObject({ ready: false, stalled: true, reason: "DeploymentUnavailable" });
  });
});

describe("ModelDeployment status from the serving reconciler", () => {
  it("writes observedGeneration and Ready/Reconciling/Stalled from the first reconcile", () => {
    const s = servingStatus(md(), { ok: true, deployment: undefined }, NOW);
    expect(s.observedGeneration).toBe(2);
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "Progressing", observedGeneration: 2 });
    expect(cond(s, "Reconciling")).toMatchObject({ status: "True" });
    expect(cond(s, "Stalled")).toMatchObject({ status: "False" });
    expect(s.selector).toBe("ballast.dev/model-deployment=weather,app.kubernetes.io/component=serving");
  });

  it("turns Ready once the pods are, keeping the transition time when nothing flips", () => {
    const up = deployment(1, { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 });
    const first = servingStatus(md(), { ok: true, deployment: up }, NOW);
    expect(cond(first, "Ready")).toMatchObject({ status: "True", reason: "Reconciled", lastTransitionTime: "2026-11-26T12:00:00Z" });
    expect(cond(first, "Serving")).toMatchObject({ status: "True", reason: "DeploymentAvailable" });
    expect(cond(first, "Reconciling")!.status).toBe("False");
    expect(first.readyReplicas).toBe(1);
    const again = servingStatus(md(2, first), { ok: true, deployment: up }, LATER);
    expect(again).toEqual(first); // nothing to write: the reconciler skips the status update
  });

  it("reports a spec that can never work as Stalled with the error's reason", () => {
    const error = classifyReconcileError(new StalledError("ClaimNotFound", 'PersistentVolumeClaim "models" does not exist'));
    const s = servingStatus(md(), { ok: false, error, deployment: undefined }, NOW);
    expect(cond(s, "Stalled")).toMatchObject({ status: "True", reason: "ClaimNotFound" });
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "ClaimNotFound" });
    expect(cond(s, "Reconciling")!.status).toBe("False");
  });

  it("keeps fields other reconcilers own", () => {
    const s = servingStatus(md(2, { servingVersion: "v3", candidateVersion: "v4", history: [] }), { ok: true, deployment: undefined }, NOW);
    expect(s).toMatchObject({ servingVersion: "v3", candidateVersion: "v4", history: [] });
  });
});
