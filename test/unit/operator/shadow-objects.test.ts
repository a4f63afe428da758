// The shadow candidate's Deployment and NetworkPolicy, and status.shadow from a scrape: what a platform engineer
// finds in the namespace and in status while a candidate is shadowed. No cluster.
import type { V1Container, V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { SHADOW_LATENCY_BOUNDS_MS, type ShadowSummary } from "../../../src/monitoring/shadow-summary.js";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { desiredShadowDeployment, desiredShadowNetworkPolicy, mirrorTargets, pinnedVersionOf, shadowNames } from "../../../src/operator/loop/shadow.js";
import { slimPod } from "../../../src/operator/monitoring/reconciler.js";
import { withShadowStatus } from "../../../src/operator/monitoring/shadow-status.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:0.1.0";

function md(spec: Partial<ModelDeploymentSpec> = {}): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", uid: "1111-2222", generation: 3 },
    spec: applyModelDeploymentDefaults({
      model: { name: "weather-mlp", storageUri: "pvc://models/store" },
      serving: { replicas: 2, resources: { limits: { cpu: "1", memory: "512Mi" } } },
      monitoring: { features: [{ name: "temp_max", type: "numeric" }], labelField: "weather", task: "classification" },
      promotion: { shadow: { enabled: true, replicas: 1 } },
      ...spec,
    } as ModelDeploymentSpec),
    status: { servingVersion: "v1", targetVersion: "v1" },
  };
}

const container = (d: V1Deployment, name: string): V1Container => d.spec!.template.spec!.containers.find((c) => c.name === name)!;

describe("the shadow Deployment", () => {
  const m = md();
  const serving = desiredServingObjects(m, { defaultImage: IMAGE, operatorNamespace: "ballast-system" });
  const shadow = desiredShadowDeployment(m, "r1-abc", 1, { defaultImage: IMAGE, operatorNamespace: "ballast-system" });

  it("is <md>-shadow, owned by the ModelDeployment (garbage-collected with it), pinned to the candidate", () => {
    expect(shadow.metadata?.name).toBe(shadowNames("weather").deployment);
    expect(shadow.metadata?.ownerReferences).toEqual(serving.deployment.metadata?.ownerReferences);
    expect(shadow.spec?.replicas).toBe(1);
    expect(pinnedVersionOf(shadow)).toBe("r1-abc");
    expect(container(shadow, "sidecar").args).toContain("r1-abc");
  });

  it("is never behind the user Service: its pods' labels do not match the Service's selector", () => {
    const labels = shadow.spec!.template.metadata!.labels!;
    const selector = serving.service.spec!.selector!;
    expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(false);
    expect(labels["app.kubernetes.io/component"]).toBe("shadow");
    expect(shadow.spec!.selector!.matchLabels).toEqual({ "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "shadow" });
  });

  it("runs the serving pods' template: same image, resources and security context; its log off the model store", () => {
    for (const name of ["server", "sidecar"]) {
      expect(container(shadow, name).image).toBe(container(serving.deployment, name).image);
      expect(container(shadow, name).resources).toEqual(container(serving.deployment, name).resources);
      expect(container(shadow, name).securityContext).toEqual(container(serving.deployment, name).securityContext);
    }
    expect(container(shadow, "server").resources).toEqual({ limits: { cpu: "1", memory: "512Mi" } });
    expect(shadow.spec!.template.spec!.securityContext).toEqual(serving.deployment.spec!.template.spec!.securityContext);
    expect(shadow.spec!.template.spec!.automountServiceAccountToken).toBe(false);
    // Mirrored rows are already in the serving pods' log: the shadow's stays on an emptyDir, and the store is read-only to it.
    expect(container(shadow, "sidecar").args).not.toContain("--log-to-store");
    expect(shadow.spec!.template.spec!.volumes).toContainEqual({ name: "model-store", persistentVolumeClaim: { claimName: "models", readOnly: true } });
  });

  it("has a NetworkPolicy: the serving port from the serving pods only, the monitoring port from the operator only", () => {
    const np = desiredShadowNetworkPolicy(m, { operatorNamespace: "ballast-system" }) as unknown as {
      spec: Record<string, unknown>;
      metadata: { name: string };
    };
    expect(np.metadata.name).toBe("weather-shadow");
    expect(np.spec).toEqual({
      podSelector: { matchLabels: { "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "shadow" } },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "serving" } } }],
          ports: [{ port: 8080, protocol: "TCP" }],
        },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ballast-system" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "ballast", "app.kubernetes.io/component": "operator" } },
            },
          ],
          ports: [{ port: 9090, protocol: "TCP" }],
        },
      ],
    });
  });
});

describe("where the serving pods mirror to", () => {
  const m = md();
  /** A ready shadow pod as the API returns it (from the shadow Deployment's template), then as the operator's cache keeps it. */
  const cachedShadowPod = (name: string, ip: string, version: string) => {
    const template = desiredShadowDeployment(m, version, 1, { defaultImage: IMAGE }).spec!.template;
    return slimPod({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { ...template.metadata, name, namespace: "ml", uid: name },
      spec: template.spec!,
      status: { podIP: ip, conditions: [{ type: "Ready", status: "True" }] },
    });
  };

  it("only to ready shadow pods of the version asked for, even from the operator's slimmed pod cache", () => {
    // While the shadow switches from the candidate r1-abc to the previous version v1, both may be Ready for a moment.
    const pods = [cachedShadowPod("weather-shadow-a", "10.0.0.7", "r1-abc"), cachedShadowPod("weather-shadow-b", "10.0.0.8", "v1")];
    expect(mirrorTargets(pods, m, "v1")).toEqual(["http://10.0.0.8:8080"]);
    expect(mirrorTargets(pods, m, "r1-abc")).toEqual(["http://10.0.0.7:8080"]);
    expect(mirrorTargets(pods, m, "v0")).toEqual([]);
  });
});

describe("status.shadow from the serving pods' summaries", () => {
  const buckets = (i: number, n: number) => SHADOW_LATENCY_BOUNDS_MS.map((_, k) => (k === i ? n : 0)).concat([0]);
  const block = (over: Partial<ShadowSummary>): ShadowSummary => ({
    version: "r1-abc",
    since: "2026-12-05T12:00:00.123Z",
    mirrored: 400,
    dropped: 2,
    failed: 0,
    rows: 400,
    agreedRows: 380,
    sumAbsDifference: 0,
    pairs: { task: "classification", bothRight: 100, servingOnly: 5, shadowOnly: 25, bothWrong: 20 },
    servingLatency: buckets(3, 400),
    shadowLatency: buckets(3, 400),
    ...over,
  });
  const summary = (pod: string, shadow?: ShadowSummary): SidecarSummary =>
    ({
      format: 1,
      pod,
      model: "weather-mlp",
      version: "v1",
      task: "classification",
      generatedAt: "2026-12-05T12:10:00Z",
      totals: { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0 },
      windows: [{ start: "2026-12-05T12:00:00Z", end: "2026-12-05T12:10:00Z", requests: 400, failedRequests: 4, closed: false }],
      ...(shadow ? { shadow } : {}),
    }) as unknown as SidecarSummary;
  const now = new Date("2026-12-05T12:10:05Z");

  it("merges the replicas' pairs and judges them once both minimums are met", () => {
    const out = withShadowStatus(
      md(),
      { servingVersion: "v1" },
      [
        { pod: "a", summary: summary("a", block({})) },
        { pod: "b", summary: summary("b", block({})) },
      ],
      now,
    );
    expect(out.shadow).toMatchObject({
      version: "r1-abc",
      since: "2026-12-05T12:00:00Z",
      updateTime: "2026-12-05T12:10:05Z",
      mirrored: 800,
      dropped: 4,
      rows: 800,
      labelledPairs: 300,
      agreement: 0.95,
      servingErrorRate: 0.01,
      shadowErrorRate: 0,
      verdict: "Passed",
      test: "McNemarExact",
    });
    expect(out.servingVersion).toBe("v1");
  });

  it("drops status.shadow when no serving pod mirrors any more, keeps it when no pod answered", () => {
    const prior = { shadow: withShadowStatus(md(), {}, [{ pod: "a", summary: summary("a", block({})) }], now).shadow };
    expect(withShadowStatus(md(), prior, [{ pod: "a", summary: summary("a") }], now).shadow).toBeUndefined();
    expect(withShadowStatus(md(), prior, [{ pod: "a", error: "GET: no answer" }], now).shadow).toEqual(prior.shadow);
  });

  it("while a promotion is observed and the pods mirror to the version it replaced, the numbers are the reverse shadow's, judged the other way", () => {
    const observing = (status: ModelDeploymentStatus): ResolvedModelDeployment => ({
      ...md(),
      status: {
        servingVersion: "v1",
        loop: { phase: "Observing", attempt: 1, since: "2026-12-05T12:00:00Z", message: "" },
        observation: { version: "v1", previousVersion: "r1-abc", since: "2026-12-05T12:00:00Z", reverseShadow: "Running", message: "" },
        ...status,
      },
    });
    const scrapes = ["a", "b"].map((pod) => ({ pod, summary: summary(pod, block({})) }));
    // On each pod the previous version r1-abc was right alone on 25 labelled rows, the promoted v1 on 5.
    const out = withShadowStatus(observing({}), {}, scrapes, now).shadow!;
    expect(out).toMatchObject({ role: "previous", version: "r1-abc", verdict: "Rejected", failedRule: "PreviousVersionBetter", serving: 0.7, shadow: 0.8333 });
    expect(out.oneSided).toBeUndefined();
    const warned = observing({
      observation: {
        version: "v1",
        previousVersion: "r1-abc",
        since: "2026-12-05T12:00:00Z",
        reverseShadow: "Running",
        message: "",
        estimateWarning: { windowEnd: "2026-12-05T12:05:00Z", labelledSamples: 2, metric: "accuracy", estimated: 0.6, message: "" },
      },
    });
    expect(withShadowStatus(warned, {}, scrapes, now).shadow).toMatchObject({ role: "previous", oneSided: true });
    // Before the promotion (or about another version) it is the candidate's shadow, as before.
    expect(withShadowStatus(md(), {}, scrapes, now).shadow).toMatchObject({ role: "candidate", verdict: "Passed" });
    expect(withShadowStatus(observing({ servingVersion: "v0" }), {}, scrapes, now).shadow?.role).toBe("candidate");
  });
});
