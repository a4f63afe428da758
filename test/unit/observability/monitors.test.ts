// The prometheus-operator objects Ballast ships (deploy/components/prometheus-operator and the chart) select what the
// operator really runs: a renamed label or port would leave a user's Prometheus with no targets and no error.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import type { V1Deployment, V1Service } from "@kubernetes/client-node";
import { applyModelDeploymentDefaults, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { readManifests, SHIPPED_MONITORS_DIR, type Monitor } from "../../../src/devcluster/prometheus.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
let helm = "";

function chart(...set: string[]): (Monitor | V1Deployment | V1Service)[] {
  const res = spawnSync(helm, ["template", "ballast", `${repoRoot}charts/ballast`, "--namespace", "ballast-system", ...set.flatMap((s) => ["--set", s])], {
    encoding: "utf8",
  });
  if (res.status !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJSON() as Monitor | V1Deployment | V1Service | null)
    .filter((d) => d !== null);
}

const servingPod = () => {
  const md = {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", uid: "u1", generation: 1 },
    spec: applyModelDeploymentDefaults({
      model: { name: "weather", storageUri: "pvc://models/store" },
      monitoring: { task: "classification", labelField: "weather", features: [{ name: "wind", type: "numeric" }] },
    } as never),
  } as ResolvedModelDeployment;
  return desiredServingObjects(md, { defaultImage: "ghcr.io/ballast-dev/ballast:0.1.0" }).deployment.spec!.template;
};

const shippedMonitors = () => readManifests<Monitor>(SHIPPED_MONITORS_DIR, ["ServiceMonitor", "PodMonitor"]);

function expectSelectsServingPods(monitor: Monitor) {
  const pod = servingPod();
  expect(pod.metadata!.labels).toMatchObject(monitor.spec.selector.matchLabels);
  const ports = pod.spec!.containers.flatMap((c) => c.ports ?? []).map((p) => p.name);
  for (const ep of monitor.spec.podMetricsEndpoints!) expect(ports).toContain(ep.port);
  expect(monitor.spec.podMetricsEndpoints![0]!.relabelings).toContainEqual({
    sourceLabels: ["__meta_kubernetes_pod_label_ballast_dev_model_deployment"],
    targetLabel: "modeldeployment",
  });
}

function expectSelectsMetricsService(monitor: Monitor, service: V1Service) {
  expect(service.metadata!.labels).toMatchObject(monitor.spec.selector.matchLabels);
  expect(service.spec!.ports!.map((p) => p.name)).toContain(monitor.spec.endpoints![0]!.port);
  // The operator's per-ModelDeployment series keep the model's namespace label.
  expect(monitor.spec.endpoints![0]!.honorLabels).toBe(true);
}

describe("prometheus-operator objects", () => {
  beforeAll(() => {
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  }, 900_000);

  it("deploy/: the PodMonitor selects the operator's serving pods on the sidecar's named monitoring port, in every namespace", () => {
    const pod = shippedMonitors().find((m) => m.kind === "PodMonitor")!;
    expectSelectsServingPods(pod);
    expect(pod.spec.namespaceSelector).toEqual({ any: true });
  });

  it("deploy/: the ServiceMonitor selects the operator's metrics Service on its named port", () => {
    const service = parse(readFileSync(`${repoRoot}deploy/base/metrics-service.yaml`, "utf8")) as V1Service;
    const sm = shippedMonitors().find((m) => m.kind === "ServiceMonitor")!;
    expect(sm.metadata.namespace).toBe(service.metadata!.namespace);
    expectSelectsMetricsService(sm, service);
  });

  it("chart: no monitors by default; metrics.serviceMonitor.enabled and podMonitor.enabled add them with the labels a Prometheus selects by", () => {
    expect(chart().filter((d) => d.kind === "ServiceMonitor" || d.kind === "PodMonitor")).toEqual([]);
    const docs = chart(
      "metrics.serviceMonitor.enabled=true",
      "metrics.podMonitor.enabled=true",
      "metrics.serviceMonitor.labels.release=kps",
      "metrics.podMonitor.labels.release=kps",
    );
    const sm = docs.find((d) => d.kind === "ServiceMonitor") as Monitor;
    const pm = docs.find((d) => d.kind === "PodMonitor") as Monitor;
    expectSelectsMetricsService(sm, docs.find((d) => d.kind === "Service") as V1Service);
    expectSelectsServingPods(pm);
    expect((sm.metadata as { labels?: Record<string, string> }).labels).toMatchObject({ release: "kps" });
    expect((pm.metadata as { labels?: Record<string, string> }).labels).toMatchObject({ release: "kps" });
  });

  it("chart: watching listed namespaces limits the PodMonitor to them", () => {
    const pm = chart("metrics.podMonitor.enabled=true", "watchNamespaces={team-a,team-b}").find((d) => d.kind === "PodMonitor") as Monitor;
    expect(pm.spec.namespaceSelector).toEqual({ matchNames: ["team-a", "team-b"] });
  });

  it("the operator pod is annotated for a Prometheus without prometheus-operator, at its metrics port (deploy/ and chart)", () => {
    const deploy = parse(readFileSync(`${repoRoot}deploy/base/operator.yaml`, "utf8")) as V1Deployment;
    const fromChart = chart().find((d) => d.kind === "Deployment") as V1Deployment;
    for (const d of [deploy, fromChart]) {
      const annotations = d.spec!.template.metadata!.annotations!;
      expect(annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics" });
      const metricsPort = d.spec!.template.spec!.containers[0]!.ports!.find((p) => p.name === "metrics")!.containerPort;
      expect(annotations["prometheus.io/port"]).toBe(String(metricsPort));
    }
    const withoutAnnotations = chart("metrics.podAnnotations=false").find((d) => d.kind === "Deployment") as V1Deployment;
    expect(withoutAnnotations.spec!.template.metadata!.annotations).toBeUndefined();
  });
});
