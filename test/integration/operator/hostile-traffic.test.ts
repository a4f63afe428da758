// Given the local cluster, the operator running as deployed (its ServiceAccount, a 160 MiB V8 heap) and a model with
// a categorical feature, one client sends 100 requests through the Service, each with a distinct 2 MB value in that
// feature. The sidecar's summary stays small, the operator stays up, and it keeps writing status: the hostile windows
// read as drift in the categorical feature, and the next calm window is judged too.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { waitForService } from "../../../src/demo/traffic.js";
import { MAX_CATEGORY_LENGTH } from "../../../src/monitoring/index.js";
import { SIDECAR_MONITORING_PORT } from "../../../src/api/index.js";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  applyYaml,
  createLocalClaim,
  installCrdAndRbac,
  kubectlJson,
  operatorKubeconfig,
  startOperator,
  trainInto,
  type OperatorProcess,
} from "./operator-process.js";

const WINDOW = 20;
const HOSTILE_REQUESTS = 100;
const HUGE = 2 * 1024 * 1024;
const COLORS = ["red", "green", "blue"];
/** deploy/base/operator.yaml's NODE_OPTIONS: what the operator's heap is in a real cluster. */
const DEPLOYED_NODE_OPTIONS = "--max-old-space-size=160 --max-semi-space-size=2";

interface MD {
  status?: ModelDeploymentStatus;
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);

describe("ballast operator under hostile traffic", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess | undefined;
  let serviceUrl: string;
  const get = () => kubectlJson<MD>(["get", "md", "shop", "-n", ns.name]);

  const infer = async (i: number, color: string): Promise<number> => {
    const body = {
      id: `req-${i}`,
      inputs: [
        { name: "size", shape: [1], datatype: "FP32", data: [i % 7] },
        { name: "color", shape: [1], datatype: "BYTES", data: [color] },
      ],
    };
    const res = await fetch(`${serviceUrl}/v2/models/shop/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const calmWindow = async (from: number) => {
    for (let i = from; i < from + WINDOW; i++) expect(await infer(i, COLORS[i % 3]!)).toBe(200);
  };

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-hostile");
    const csv = join(mkdtempSync(join(tmpdir(), "op-hostile-")), "shop.csv");
    const rows = Array.from({ length: 60 }, (_, i) => `${i % 7},${COLORS[i % 3]},${i % 3 === 0 || i % 7 > 4 ? "yes" : "no"}`);
    writeFileSync(csv, `size,color,label\n${rows.join("\n")}\n`);
    trainInto(join(await createLocalClaim(ns.name, "models"), "store"), csv, [
      "--model",
      "shop",
      "--version",
      "v1",
      "--label",
      "label",
      "--features",
      "size,color",
      "--epochs",
      "1",
      "--max-trials",
      "1",
    ]);
    operator = await startOperator({
      kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "op-hostile-kc-"))),
      args: ["--namespaces", ns.name],
      env: { NODE_OPTIONS: DEPLOYED_NODE_OPTIONS },
    });
  });

  afterAll(async () => {
    if (operator) {
      // Deleted while the operator runs, so it releases its finalizer.
      await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
      expect(await operator.stop()).toBe(0);
    }
    await ns?.remove();
  });

  it("keeps writing status while one client sends 100 distinct 2 MB categorical values", async () => {
    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "shop", namespace: ns.name },
        spec: {
          model: { name: "shop", storageUri: "pvc://models/store", version: "v1" },
          serving: { replicas: 1, port: 8080 },
          monitoring: {
            task: "classification",
            labelField: "label",
            features: [
              { name: "size", type: "numeric" },
              { name: "color", type: "categorical" },
            ],
            window: { size: WINDOW },
            scrapeInterval: "1s",
          },
          // Monitoring only: no retraining Job is wanted here.
          policy: { minSamples: 10, minLabelledSamples: 10, consecutiveWindows: 1, cooldown: "1h", triggerOn: "drift", paused: true },
        },
      }),
    );
    const ready = await kubectl(["wait", "--for=condition=Ready", "md/shop", "-n", ns.name, "--timeout=90s"]);
    expect(ready.stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "shop", "-n", ns.name]);
    serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);

    await calmWindow(0);
    const calm = await waitFor(
      "the calm window in status",
      async () => {
        const m = await get();
        return m.status?.lastMetrics?.samples === WINDOW ? m : undefined;
      },
      20_000,
    );

    // The attack: every request a new 2 MB category (the sidecar's body limit is 4 MiB).
    const started = Date.now();
    let next = WINDOW;
    const worker = async () => {
      while (next < WINDOW + HOSTILE_REQUESTS) {
        const i = next++;
        expect(await infer(i, `${String(i).padStart(8, "0")}${"z".repeat(HUGE - 8)}`)).toBe(200);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    console.error(`[hostile-traffic] ${HOSTILE_REQUESTS} requests of 2 MB in ${Date.now() - started} ms`);

    // The operator judged the hostile windows: drift in color, named in a bounded message.
    const drifted = await waitFor(
      "the hostile windows judged as drift",
      async () => {
        const m = await get();
        const w = m.status?.lastMetrics?.windowEnd;
        return w && w > calm.status!.lastMetrics!.windowEnd && condition(m, "DriftDetected")?.status === "True" ? m : undefined;
      },
      20_000,
    );
    const drift = condition(drifted, "DriftDetected")!;
    expect(drift.message).toContain("color:");
    expect(drift.message.length).toBeLessThanOrEqual(4096);
    expect(drifted.status!.lastMetrics!.driftedFeatures).toContain("color");

    // Still up, still ready, still writing: the next calm window is judged too.
    expect(operator!.proc.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${operator!.port}/readyz`)).status).toBe(200);
    await calmWindow(WINDOW + HOSTILE_REQUESTS);
    await waitFor(
      "the next window in status",
      async () => {
        const m = await get();
        const w = m.status?.lastMetrics?.windowEnd;
        return w && w > drifted.status!.lastMetrics!.windowEnd ? m : undefined;
      },
      20_000,
    );
    expect(operator!.proc.exitCode).toBeNull();

    // What the sidecar keeps of the values is bounded: the summary is small, every category short.
    // The summary is on each pod's monitoring port, not behind the Service.
    const pods = await kubectlJson<{ items: { status: { podIP: string } }[] }>([
      "get",
      "pods",
      "-n",
      ns.name,
      "-l",
      "ballast.dev/model-deployment=shop,app.kubernetes.io/component=serving",
    ]);
    const res = await fetch(`http://${pods.items[0]!.status.podIP}:${SIDECAR_MONITORING_PORT}/v1/monitoring/summary`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    expect(text.length).toBeLessThan(1024 * 1024);
    const summary = JSON.parse(text) as SidecarSummary;
    const categories = summary.windows.flatMap((w) => Object.keys((w.features.features["color"] as { counts: Record<string, number> }).counts));
    expect(categories.length).toBeGreaterThanOrEqual(HOSTILE_REQUESTS);
    for (const c of categories) expect(c.length).toBeLessThanOrEqual(MAX_CATEGORY_LENGTH);
  });
});
