import type { V1Deployment } from "@kubernetes/client-node";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { KubeApiError } from "../../../src/kube/client.js";
import { parseBindAddress } from "../../../src/operator/bind-address.js";
import { Controller } from "../../../src/operator/controller.js";
import { controllingOwnerKey, metadataOnly, modelDeploymentChanged, slimDeployment } from "../../../src/operator/manager.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";
import { OperatorMetrics } from "../../../src/operator/metrics.js";
import { classifyReconcileError, ReconcileError, StalledError } from "../../../src/operator/reconcile-errors.js";
import { deploymentProgress, servingStatus } from "../../../src/operator/serving/status.js";

const NOW = new Date("2026-11-26T12:00:00Z");
const LATER = new Date("2026-11-26T12:05:00Z");

function md(generation = 2, status?: ResolvedModelDeployment["status"]): ResolvedModelDeployment {
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

function deployment(replicas: number, st: NonNullable<V1Deployment["status"]>, generation = 1): V1Deployment {
  return { metadata: { name: "weather-serving", generation }, spec: { replicas, selector: {}, template: {} }, status: { observedGeneration: generation, ...st } };
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
    const d = deployment(1, { conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "ReplicaSet has timed out progressing." }] });
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

describe("one place maps errors to reasons", () => {
  it("stalls on specs the API server rejects, retries transient failures with backoff", () => {
    expect(classifyReconcileError(new KubeApiError(422, "Invalid", "spec.template.spec.affinity: Invalid value", "PATCH", "/x"))).toMatchObject({
      reason: "InvalidSpec",
      stalled: true,
    });
    expect(classifyReconcileError(new KubeApiError(403, "Forbidden", "cannot patch deployments", "PATCH", "/x"))).toMatchObject({ reason: "Forbidden", stalled: false });
    expect(classifyReconcileError(new KubeApiError(0, "Unreachable", "ECONNREFUSED", "GET", "/x"))).toMatchObject({ reason: "ApplyFailed", stalled: false });
    expect(classifyReconcileError(new ReconcileError("ModelNotFound", "no versions"))).toEqual({ reason: "ModelNotFound", message: "no versions", stalled: false });
  });
});

describe("event routing", () => {
  it("maps an owned object to its controlling ModelDeployment and ignores others", () => {
    const owned = { metadata: { namespace: "ml", ownerReferences: [{ apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name: "weather", uid: "u1", controller: true }] } };
    expect(controllingOwnerKey(owned)).toBe("ml/weather");
    expect(controllingOwnerKey({ metadata: { namespace: "ml", ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "x", uid: "u", controller: true }] } })).toBeUndefined();
  });

  it("ignores our own status writes but not spec, annotation or deletion changes", () => {
    const a = md(2);
    expect(modelDeploymentChanged(a, { ...a, status: { observedGeneration: 2 } })).toBe(false);
    expect(modelDeploymentChanged(a, md(3))).toBe(true);
    expect(modelDeploymentChanged(a, { ...a, metadata: { ...a.metadata, deletionTimestamp: new Date() } })).toBe(true);
    expect(modelDeploymentChanged(a, { ...a, metadata: { ...a.metadata, annotations: { "ballast.dev/replicas-managed-by": "external" } } })).toBe(true);
  });
});

describe("what the caches keep of owned objects", () => {
  it("keeps every Deployment field the reconciler reads, drops the rest of the pod template", () => {
    const { deployment, configMap } = desiredServingObjects(md(), { defaultImage: "img:1" });
    const full = { ...deployment, metadata: { ...deployment.metadata!, generation: 4, managedFields: [{ manager: "x" }] }, status: { observedGeneration: 4, readyReplicas: 1 } };
    const slim = slimDeployment(full as never);
    expect(slim.metadata!.managedFields).toBeUndefined();
    expect(slim.metadata!.annotations).toEqual(deployment.metadata!.annotations);
    expect(slim.spec!.replicas).toBe(1);
    expect(slim.spec!.template.metadata!.annotations).toEqual(deployment.spec!.template.metadata!.annotations);
    expect(slim.spec!.template.spec!.containers.map((c) => c.args)).toEqual(deployment.spec!.template.spec!.containers.map((c) => c.args));
    expect(slim.spec!.template.spec!.volumes).toBeUndefined();
    expect(deploymentProgress(slim)).toEqual(deploymentProgress(full as never));
    const cm = metadataOnly(configMap as never) as typeof configMap;
    expect(cm.data).toBeUndefined();
    expect(cm.metadata!.ownerReferences).toEqual(configMap.metadata!.ownerReferences);
  });
});

describe("flags", () => {
  it("parses bind addresses like controller-runtime and names the flag when one is wrong", () => {
    expect(parseBindAddress("--metrics-bind-address", ":8080")).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(parseBindAddress("--metrics-bind-address", "127.0.0.1:9090")).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(parseBindAddress("--metrics-bind-address", "0")).toBeUndefined();
    expect(() => parseBindAddress("--metrics-bind-address", "8080")).toThrow(/--metrics-bind-address: "8080" must be host:port/);
  });

  it("refuses a controller without workers", () => {
    const reconciler = { reconcile: async () => ({}) };
    expect(() => new Controller({ name: "c", reconciler, workers: 0, metrics: new OperatorMetrics(), logger: pino({ enabled: false }) })).toThrow(/workers must be a positive integer/);
  });
});

describe("controller", () => {
  it("reconciles each key once per change with N workers, retries failures, and drains on shutdown", async () => {
    const seen: string[] = [];
    let failOnce = true;
    const reconciler = {
      reconcile: async (req: { namespace: string; name: string }) => {
        seen.push(`${req.namespace}/${req.name}`);
        await new Promise((r) => setTimeout(r, 5));
        if (req.name === "flaky" && failOnce) {
          failOnce = false;
          throw new Error("boom");
        }
        return {};
      },
    };
    const metrics = new OperatorMetrics();
    const c = new Controller({ name: "test", reconciler, workers: 3, metrics, logger: pino({ enabled: false }) });
    for (const k of ["ns/a", "ns/b", "ns/a", "ns/flaky"]) c.enqueue(k);
    c.start();
    await new Promise((r) => setTimeout(r, 100));
    await c.drain();
    expect(seen.filter((k) => k === "ns/a")).toHaveLength(1);
    expect(seen.filter((k) => k === "ns/flaky")).toHaveLength(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="success"} 3');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="test"} 1');
    expect(text).toContain('workqueue_retries_total{name="test",controller="test"} 1');
  });
});
