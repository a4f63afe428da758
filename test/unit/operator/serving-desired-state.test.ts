import type { V1Container, V1Deployment } from "@kubernetes/client-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readMonitoringConfig } from "../../../src/runtime/monitoring-config.js";
import { applyModelDeploymentDefaults, SIDECAR_PATHS, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";
import {
  ANNOTATION_APPLIED_HASH,
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_REPLICAS_MANAGED_BY,
  desiredServingObjects,
  selectorString,
  servingNames,
} from "../../../src/operator/serving/desired-state.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:0.1.0";

function modelDeployment(spec: Partial<ModelDeploymentSpec> = {}, annotations?: Record<string, string>): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", uid: "1111-2222", generation: 3, annotations },
    spec: applyModelDeploymentDefaults({
      model: { name: "weather-mlp", storageUri: "pvc://models/store" },
      monitoring: {
        features: [
          { name: "temp_max", type: "numeric" },
          { name: "wind", type: "numeric" },
        ],
        labelField: "weather",
        task: "classification",
      },
      ...spec,
    } as ModelDeploymentSpec),
  };
}

const container = (d: V1Deployment, name: string): V1Container => d.spec!.template.spec!.containers.find((c) => c.name === name)!;

describe("serving objects for a ModelDeployment", () => {
  it("names them after the owner, owned by it as controller, selected by stable labels", () => {
    const { deployment, service, configMap, networkPolicy } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    expect(servingNames("weather")).toEqual({
      deployment: "weather-serving",
      service: "weather",
      configMap: "weather-monitoring",
      networkPolicy: "weather-serving",
    });
    for (const obj of [deployment, service, configMap, networkPolicy]) {
      expect(obj.metadata!.namespace).toBe("ml");
      expect(obj.metadata!.ownerReferences).toEqual([
        { apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name: "weather", uid: "1111-2222", controller: true, blockOwnerDeletion: true },
      ]);
      expect(obj.metadata!.labels!["app.kubernetes.io/managed-by"]).toBe("ballast-operator");
    }
    expect(deployment.spec!.selector.matchLabels).toEqual({ "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "serving" });
    expect(service.spec!.selector).toEqual(deployment.spec!.selector.matchLabels);
    expect(selectorString("weather")).toBe("ballast.dev/model-deployment=weather,app.kubernetes.io/component=serving");
  });

  it("runs `ballast serve` behind `ballast sidecar` in one pod, the sidecar on the Service port", () => {
    const { deployment, service } = desiredServingObjects(modelDeployment({ serving: { port: 8085 } as never }), { defaultImage: IMAGE });
    const server = container(deployment, "server");
    const sidecar = container(deployment, "sidecar");
    expect(server.image).toBe(IMAGE);
    expect(server.args!.slice(0, 5)).toEqual(["serve", "--store", "pvc://models/store", "--model", "weather-mlp"]);
    expect(sidecar.args![0]).toBe("sidecar");
    // Its metrics name the ModelDeployment (the model's name may be shared) and, from the downward API, its namespace.
    expect(sidecar.args!.join(" ")).toContain("--model weather-mlp --modeldeployment weather");
    expect(sidecar.env).toContainEqual({ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } });
    expect(sidecar.ports).toEqual([
      { name: "http", containerPort: 8085, protocol: "TCP" },
      { name: "monitoring", containerPort: 9090, protocol: "TCP" },
    ]);
    // The Service exposes the public port only: never the summary and metrics.
    expect(service.spec!.ports).toEqual([{ name: "http", port: 8085, targetPort: "http", protocol: "TCP" }]);
    expect(server.readinessProbe!.httpGet!.path).toBe("/v2/health/ready");
    expect(server.livenessProbe!.httpGet!.path).toBe("/v2/health/live");
    // The paths the sidecar answers (src/api/sidecar-paths.ts, imported by src/runtime/sidecar.ts).
    expect(sidecar.readinessProbe!.httpGet).toEqual({ path: SIDECAR_PATHS.ready, port: "http" });
    expect(sidecar.livenessProbe!.httpGet).toEqual({ path: SIDECAR_PATHS.live, port: "http" });
  });

  it("puts the server's API on a Unix socket in an emptyDir only the two containers mount; its TCP port is for probes", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const server = container(deployment, "server");
    const sidecar = container(deployment, "sidecar");
    const arg = (c: typeof server, flag: string) => c.args![c.args!.indexOf(flag) + 1];
    expect(arg(server, "--socket")).toBe("/run/ballast/server/model.sock");
    expect(server.args).not.toContain("--port");
    expect(arg(server, "--health-port")).toBe("9000");
    expect(server.ports).toEqual([{ name: "health", containerPort: 9000, protocol: "TCP" }]);
    expect([server.startupProbe, server.readinessProbe, server.livenessProbe].map((p) => p!.httpGet!.port)).toEqual(["health", "health", "health"]);
    expect(arg(sidecar, "--upstream")).toBe("unix:/run/ballast/server/model.sock");
    expect(arg(sidecar, "--monitoring-port")).toBe("9090");
    const pod = deployment.spec!.template.spec!;
    expect(pod.volumes).toContainEqual({ name: "server-socket", emptyDir: {} });
    for (const c of pod.containers) expect(c.volumeMounts).toContainEqual({ name: "server-socket", mountPath: "/run/ballast/server" });
  });

  it("orders shutdown: the sidecar drains first, the server serves on past it, all within the grace period", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const seconds = (c: string, flag: string) => Number.parseInt(container(deployment, c).args![container(deployment, c).args!.indexOf(flag) + 1]!, 10);
    const sidecarDone = seconds("sidecar", "--shutdown-delay") + seconds("sidecar", "--drain-timeout");
    expect(seconds("sidecar", "--shutdown-delay")).toBeGreaterThan(0);
    expect(seconds("server", "--shutdown-delay")).toBeGreaterThanOrEqual(sidecarDone);
    expect(seconds("server", "--shutdown-delay") + seconds("server", "--drain-timeout")).toBeLessThan(
      deployment.spec!.template.spec!.terminationGracePeriodSeconds!,
    );
  });

  it("mounts the feedback token Secret as a file into the sidecar only, when spec.monitoring.feedbackAuth names one", () => {
    const md = modelDeployment();
    const plain = desiredServingObjects(md, { defaultImage: IMAGE }).deployment;
    expect(container(plain, "sidecar").args).not.toContain("--feedback-token-file");
    md.spec.monitoring.feedbackAuth = { secretRef: { name: "feedback", key: "token" } };
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const sidecar = container(deployment, "sidecar");
    expect(sidecar.args![sidecar.args!.indexOf("--feedback-token-file") + 1]).toBe("/etc/ballast-feedback/token");
    expect(sidecar.volumeMounts).toContainEqual({ name: "feedback-token", mountPath: "/etc/ballast-feedback", readOnly: true });
    expect(container(deployment, "server").volumeMounts!.map((m) => m.name)).not.toContain("feedback-token");
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({
      name: "feedback-token",
      secret: { secretName: "feedback", items: [{ key: "token", path: "token" }], defaultMode: 0o440 },
    });
    // Never through the environment, where it would show in `kubectl describe` and crash dumps.
    for (const c of deployment.spec!.template.spec!.containers) expect(JSON.stringify(c.env ?? [])).not.toContain("feedback");
  });

  it("admits anyone to the serving port and only the operator's pods to the monitoring port", () => {
    const md = modelDeployment({ serving: { port: 8085 } as never });
    const { networkPolicy } = desiredServingObjects(md, { defaultImage: IMAGE, operatorNamespace: "ballast-system" });
    expect(networkPolicy.spec!.podSelector).toEqual({ matchLabels: { "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "serving" } });
    expect(networkPolicy.spec!.policyTypes).toEqual(["Ingress"]);
    expect(networkPolicy.spec!.ingress).toEqual([
      { ports: [{ port: 8085, protocol: "TCP" }] },
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ballast-system" } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "ballast", "app.kubernetes.io/component": "operator" } },
          },
        ],
        ports: [{ port: 9090, protocol: "TCP" }],
      },
    ]);
    // An operator outside the cluster has no pods to admit: the monitoring port stays closed.
    expect(desiredServingObjects(md, { defaultImage: IMAGE }).networkPolicy.spec!.ingress).toEqual([{ ports: [{ port: 8085, protocol: "TCP" }] }]);
  });

  it("tells the sidecar the monitoring window and where to keep its request log, outside /tmp", () => {
    const md = modelDeployment({
      monitoring: { features: [{ name: "x", type: "numeric" }], labelField: "y", task: "classification", window: { size: 500, duration: "1h30m" } } as never,
    });
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const args = container(deployment, "sidecar").args!;
    expect(args.slice(args.indexOf("--window-size"), args.indexOf("--window-size") + 4)).toEqual(["--window-size", "500", "--window-duration", "5400000ms"]);
    const mounts = deployment.spec!.template.spec!.containers.flatMap((c) => c.volumeMounts!.map((m) => m.mountPath));
    expect(mounts.every((p) => !p.startsWith("/tmp"))).toBe(true);
  });

  it("points the sidecar at the mounted monitoring.json, and the sidecar's own parser accepts what the ConfigMap holds", async () => {
    const md = modelDeployment({
      monitoring: {
        features: [{ name: "x", type: "numeric" }],
        labelField: "y",
        task: "classification",
        drift: { method: "psi", thresholdMode: "fixed", threshold: 0.2 },
      } as never,
    });
    const { deployment, configMap } = desiredServingObjects(md, { defaultImage: IMAGE });
    const sidecar = container(deployment, "sidecar");
    const file = sidecar.args![sidecar.args!.indexOf("--monitoring-config") + 1]!;
    const mount = sidecar.volumeMounts!.find((m) => m.name === "monitoring-config")!;
    expect(path.dirname(file)).toBe(mount.mountPath);
    const volume = deployment.spec!.template.spec!.volumes!.find((v) => v.name === "monitoring-config")!;
    expect(volume.configMap!.name).toBe(configMap.metadata!.name);
    const dir = mkdtempSync(path.join(tmpdir(), "monitoring-config-"));
    try {
      const copy = path.join(dir, path.basename(file));
      writeFileSync(copy, configMap.data![path.basename(file)]!);
      const config = await readMonitoringConfig(copy);
      expect(config.drift).toMatchObject({ method: "psi", thresholdMode: "fixed", threshold: 0.2 });
      expect(config.features?.map((f) => f.name)).toEqual(["x"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("passes a pinned version to the server and the spec's image over the default", () => {
    const md = modelDeployment({
      model: { name: "weather-mlp", storageUri: "https://models.example/store", version: "v7" } as never,
      serving: { image: "registry.local/ballast:dev" } as never,
    });
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const server = container(deployment, "server");
    expect(server.image).toBe("registry.local/ballast:dev");
    expect(server.args).toEqual(expect.arrayContaining(["--version", "v7"]));
    expect(deployment.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain("model-store");
  });

  it("mounts a pvc:// store where `ballast serve` resolves it, read-only for the server, and never uses hostPath", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const pod = deployment.spec!.template.spec!;
    expect(pod.volumes).toContainEqual({ name: "model-store", persistentVolumeClaim: { claimName: "models", readOnly: false } });
    expect(container(deployment, "server").volumeMounts).toContainEqual({ name: "model-store", mountPath: "/mnt/models/models", readOnly: true });
    const fileBacked = desiredServingObjects(modelDeployment({ model: { name: "m", storageUri: "file:///srv/models" } as never }), { defaultImage: IMAGE });
    expect(fileBacked.deployment.spec!.template.spec!.volumes!.some((v) => v.hostPath)).toBe(false);
    expect(container(fileBacked.deployment, "server").args).toEqual(expect.arrayContaining(["--store", "file:///srv/models"]));
  });

  it("keeps the request log in a writable store, where it outlives the pod: the sidecar alone mounts the claim read-write", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const pod = deployment.spec!.template.spec!;
    const sidecar = container(deployment, "sidecar");
    expect(sidecar.args).toContain("--log-to-store");
    expect(sidecar.args).not.toContain("--data-dir");
    expect(sidecar.volumeMounts).toContainEqual({ name: "model-store", mountPath: "/mnt/models/models", readOnly: false });
    expect(pod.volumes!.map((v) => v.name)).not.toContain("request-log");
    const fileBacked = desiredServingObjects(modelDeployment({ model: { name: "m", storageUri: "file:///srv/models" } as never }), { defaultImage: IMAGE });
    expect(container(fileBacked.deployment, "sidecar").args).toContain("--log-to-store");
  });

  it("keeps the request log on the pod's emptyDir for a read-only http(s) store", () => {
    const md = modelDeployment({ model: { name: "weather-mlp", storageUri: "https://models.example/store" } as never });
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const args = container(deployment, "sidecar").args!;
    expect(args.slice(args.indexOf("--data-dir"), args.indexOf("--data-dir") + 2)).toEqual(["--data-dir", "/run/ballast/requests"]);
    expect(args).not.toContain("--log-to-store");
    expect(container(deployment, "sidecar").volumeMounts).toContainEqual({ name: "request-log", mountPath: "/run/ballast/requests" });
    // 1 GiB (the sidecar's default bound) + two 64 MiB segments: the sidecar's bound acts before the kubelet evicts.
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({ name: "request-log", emptyDir: { sizeLimit: String(1024 ** 3 + 128 * 1024 ** 2) } });
  });

  it("is a restricted pod: non-root, read-only root filesystem, no escalation, no capabilities, RuntimeDefault seccomp", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const pod = deployment.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.securityContext!.runAsUser).toBeGreaterThan(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const c of pod.containers)
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
  });

  it("gives both containers POD_IP, POD_NAME and POD_NAMESPACE from the downward API", () => {
    const { deployment } = desiredServingObjects(modelDeployment({ serving: { env: [{ name: "EXTRA", value: "1" }] } as never }), { defaultImage: IMAGE });
    for (const name of ["server", "sidecar"]) {
      const env = container(deployment, name).env!;
      expect(env.find((e) => e.name === "POD_IP")!.valueFrom!.fieldRef!.fieldPath).toBe("status.podIP");
      expect(env.find((e) => e.name === "POD_NAME")!.valueFrom!.fieldRef!.fieldPath).toBe("metadata.name");
      expect(env.find((e) => e.name === "POD_NAMESPACE")!.valueFrom!.fieldRef!.fieldPath).toBe("metadata.namespace");
    }
    expect(container(deployment, "server").env).toContainEqual({ name: "EXTRA", value: "1" });
  });

  it("puts the resolved monitoring config in the ConfigMap and rolls the pods when it changes", () => {
    const a = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const config = JSON.parse(a.configMap.data!["monitoring.json"]!);
    expect(config).toMatchObject({
      labelField: "weather",
      task: "classification",
      accuracyMetric: "accuracy",
      drift: { method: "auto" },
      window: { size: 1000 },
    });
    const b = desiredServingObjects(
      modelDeployment({ monitoring: { features: [{ name: "temp_max", type: "numeric" }], labelField: "weather", task: "classification" } as never }),
      { defaultImage: IMAGE },
    );
    const hashA = a.deployment.spec!.template.metadata!.annotations![ANNOTATION_CONFIG_HASH];
    const hashB = b.deployment.spec!.template.metadata!.annotations![ANNOTATION_CONFIG_HASH];
    expect(hashA).toMatch(/^[0-9a-f]{16}$/);
    expect(hashB).not.toBe(hashA);
  });

  it("annotates serving pods so a Prometheus without prometheus-operator scrapes the sidecar's named monitoring port", () => {
    const { deployment } = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const annotations = deployment.spec!.template.metadata!.annotations!;
    expect(annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": SIDECAR_PATHS.metrics });
    // The PodMonitor selects the port by name; the annotation's number must be that port.
    const sidecar = deployment.spec!.template.spec!.containers.find((c) => c.name === "sidecar")!;
    expect(sidecar.ports).toContainEqual({ name: "monitoring", containerPort: Number(annotations["prometheus.io/port"]), protocol: "TCP" });
  });

  it("is deterministic: the same spec gives byte-identical objects and applied hashes", () => {
    const a = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    const b = desiredServingObjects(modelDeployment(), { defaultImage: IMAGE });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.deployment.metadata!.annotations![ANNOTATION_APPLIED_HASH]).toMatch(/^[0-9a-f]{16}$/);
    const scaled = desiredServingObjects(modelDeployment({ serving: { replicas: 3 } as never }), { defaultImage: IMAGE });
    expect(scaled.deployment.metadata!.annotations![ANNOTATION_APPLIED_HASH]).not.toBe(a.deployment.metadata!.annotations![ANNOTATION_APPLIED_HASH]);
  });

  it("leaves replicas out when scale is delegated, so an HPA's value is not fought over", () => {
    const own = desiredServingObjects(modelDeployment({ serving: { replicas: 2 } as never }), { defaultImage: IMAGE });
    expect(own.deployment.spec!.replicas).toBe(2);
    const delegated = desiredServingObjects(modelDeployment({}, { [ANNOTATION_REPLICAS_MANAGED_BY]: "external" }), { defaultImage: IMAGE });
    expect(delegated.deployment.spec).not.toHaveProperty("replicas");
  });

  it("carries placement and resources through to the pod", () => {
    const md = modelDeployment({
      serving: {
        resources: { requests: { cpu: "250m", memory: "256Mi" } },
        nodeSelector: { pool: "serving" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "ml", effect: "NoSchedule" }],
      } as never,
    });
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const pod = deployment.spec!.template.spec!;
    expect(pod.nodeSelector).toEqual({ pool: "serving" });
    expect(pod.tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "ml", effect: "NoSchedule" }]);
    expect(container(deployment, "server").resources).toEqual({ requests: { cpu: "250m", memory: "256Mi" } });
  });
});
