// Given the local cluster, the operator running as its own ServiceAccount and a weather model trained on Seattle
// in a PVC, a user sends Seattle then New York traffic with feedback and sees the operator report it:
// status.lastMetrics, DriftDetected False then True naming the features, the Drift and Accuracy columns, an Event.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { sendTrafficWithFeedback, waitForService } from "../../../src/demo/traffic.js";
import { loadWeatherDays, splitWeather, weatherCsv, WEATHER_FEATURES } from "../../../src/demo/weather-data.js";
import { clusterDir, createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { BALLAST, applyYaml, installCrdAndRbac, kubectlJson, startNamespacedOperator, type OperatorProcess } from "./operator-process.js";

const WINDOW = 100;
const CLAIM = "models";

interface MD {
  metadata: { generation: number };
  status?: ModelDeploymentStatus;
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);

describe("ballast operator: monitoring what the sidecars see", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let stop: (() => Promise<number | null>) | undefined;
  let serviceUrl: string;
  const split = splitWeather(loadWeatherDays(), 300, 300);
  const get = () => kubectlJson<MD>(["get", "md", "weather", "-n", ns.name]);

  beforeAll(async () => {
    const dir = clusterDir();
    if (!dir) throw new Error("this test writes the model into a PVC's directory on the local cluster: run it against `ballast dev` (clusterDir is unknown)");
    await installCrdAndRbac();
    ns = await createTestNamespace("op-monitor");
    await applyYaml(
      stringify({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: CLAIM, namespace: ns.name }, spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } } }),
    );
    const bound = await kubectl(["wait", "--for=jsonpath={.status.phase}=Bound", `pvc/${CLAIM}`, "-n", ns.name, "--timeout=60s"]);
    expect(bound.code).toBe(0);
    // The local nodes keep a claim's data here; the serving pods read it through pvc://models/store.
    const storeDir = join(dir, "volumes", ns.name, CLAIM, "store");
    mkdirSync(storeDir, { recursive: true });
    const csv = join(mkdtempSync(join(tmpdir(), "op-monitor-")), "seattle.csv");
    writeFileSync(csv, weatherCsv(split.seattleTraining));
    const trained = spawnSync(
      BALLAST,
      ["train", "--data", csv, "--store", `file://${storeDir}`, "--model", "weather", "--version", "v1", "--label", "weather", "--features", WEATHER_FEATURES.join(","), "--epochs", "3"],
      { encoding: "utf8" },
    );
    if (trained.status !== 0) throw new Error(`ballast train failed (${trained.status}): ${trained.stderr}`);
    ({ operator, stop } = await startNamespacedOperator(ns));
  });

  afterAll(async () => {
    if (stop) expect(await stop()).toBe(0);
    else await ns?.remove();
  });

  it("serves, then reports Seattle traffic as calm: lastMetrics filled, DriftDetected False", async () => {
    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "weather", namespace: ns.name },
        spec: {
          model: { name: "weather", storageUri: `pvc://${CLAIM}/store`, version: "v1" },
          serving: { replicas: 1, port: 8080 },
          monitoring: {
            task: "classification",
            labelField: "weather",
            features: WEATHER_FEATURES.map((f) => ({ name: f, type: "numeric" })),
            window: { size: WINDOW },
            drift: { method: "ks" },
            scrapeInterval: "1s",
          },
          policy: { minSamples: 50, consecutiveWindows: 1, cooldown: "1h" },
        },
      }),
    );
    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather", "-n", ns.name, "--timeout=120s"]);
    expect(wait.stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "weather", "-n", ns.name]);
    serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    // Before any window closes the operator says why it cannot judge yet.
    const early = await waitFor("DriftDetected Unknown", async () => {
      const m = await get();
      return condition(m, "DriftDetected")?.status === "Unknown" ? m : undefined;
    });
    expect(condition(early, "DriftDetected")!.reason).toBe("InsufficientData");

    const seattle = await sendTrafficWithFeedback({ serviceUrl, feedbackUrl: serviceUrl, model: "weather", days: split.seattleTraffic.slice(0, WINDOW), rowsPerRequest: 10, idPrefix: "seattle" });
    expect(seattle.feedbackAccepted).toBe(WINDOW);
    const calm = await waitFor("the Seattle window in status", async () => {
      const m = await get();
      return m.status?.lastMetrics?.samples === WINDOW && condition(m, "DriftDetected")?.status !== "Unknown" ? m : undefined;
    }, 30_000);
    const metrics = calm.status!.lastMetrics!;
    expect(metrics).toMatchObject({ samples: WINDOW, labelledSamples: WINDOW, metric: "accuracy", robustness: 1, verdict: "Healthy", driftedFeatures: [] });
    expect(metrics.accuracy).toBeCloseTo(seattle.correct / WINDOW, 6);
    expect(metrics.driftShare).toBe(0);
    expect(condition(calm, "DriftDetected")).toMatchObject({ status: "False", reason: "NoDrift", observedGeneration: 1 });
    expect(calm.status!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
    // The serving reconciler's fields survive the monitoring writes, and vice versa.
    expect(condition(calm, "Ready")?.status).toBe("True");
  });

  it("reports New York traffic as drift naming the features, shows Drift and Accuracy columns, and records an Event", async () => {
    const ny = await sendTrafficWithFeedback({ serviceUrl, feedbackUrl: serviceUrl, model: "weather", days: split.newYorkTraffic.slice(0, WINDOW), rowsPerRequest: 10, idPrefix: "new-york" });
    expect(ny.feedbackAccepted).toBe(WINDOW);
    const drifted = await waitFor("DriftDetected True", async () => {
      const m = await get();
      return condition(m, "DriftDetected")?.status === "True" ? m : undefined;
    }, 30_000);
    const drift = condition(drifted, "DriftDetected")!;
    expect(drift.reason).toBe("DriftAboveThreshold");
    expect(drift.message).toMatch(/features drifted \(share [\d.]+ ≥ policy.maxDriftShare 0.5\)/);
    expect(drifted.status!.lastMetrics!.driftedFeatures!.length).toBeGreaterThanOrEqual(2);
    for (const f of drifted.status!.lastMetrics!.driftedFeatures!) expect(drift.message).toContain(`${f}: ks p-value`);
    expect(drifted.status!.lastMetrics!.accuracy).toBeCloseTo(ny.correct / WINDOW, 6);
    expect(condition(drifted, "Degraded")).toMatchObject({ status: "True" });

    const table = (await kubectl(["get", "md", "weather", "-n", ns.name])).stdout.split("\n");
    expect(table[0]).toMatch(/DRIFT\s+ACCURACY/);
    const [, , , , drift_, accuracy] = table[1]!.split(/\s+/);
    expect(Number(drift_)).toBeCloseTo(drifted.status!.lastMetrics!.driftShare!, 2);
    expect(Number(accuracy)).toBeCloseTo(drifted.status!.lastMetrics!.accuracy!, 2);

    const events = await waitFor("the drift Event", async () => {
      const res = await kubectl(["get", "events.events.k8s.io", "-n", ns.name, "--field-selector", "reportingController=ballast.dev/operator,reason=DriftAboveThreshold", "-o", "json"]);
      const items = (JSON.parse(res.stdout) as { items: { type: string; note: string; regarding: { name: string } }[] }).items;
      return items.length > 0 ? items : undefined;
    });
    expect(events[0]).toMatchObject({ type: "Warning", regarding: { name: "weather" } });
    expect(events[0]!.note).toContain("features drifted");
    expect(await operator.metrics()).toMatch(/controller_runtime_reconcile_total\{controller="monitoring",result="requeue_after"\} [1-9]/);
  });
});
