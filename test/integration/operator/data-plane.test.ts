// Given the local cluster and the operator, a user serves a model whose feedback needs a token and sees: the
// summary and metrics are not behind the Service (the operator still reads them, on each pod's monitoring port),
// a NetworkPolicy that says who may connect, feedback refused without the token and accepted with it, and a
// rollout under steady traffic through the Service that loses no request.
import type { V1NetworkPolicy, V1Pod, V1Service } from "@kubernetes/client-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { SIDECAR_MONITORING_PORT } from "../../../src/api/index.js";
import { waitForService } from "../../../src/demo/traffic.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  applyYaml,
  installCrdAndRbac,
  kubectlJson,
  modelDeploymentYaml,
  operatorKubeconfig,
  startOperator,
  trainedModelStore,
  type OperatorProcess,
} from "./operator-process.js";

const TOKEN = "feedback-token-for-the-data-plane-test";
/** The serving pods (a retraining Job's pods carry the ModelDeployment's label too). */
const SERVING_PODS = "ballast.dev/model-deployment=weather,app.kubernetes.io/component=serving";
const FEATURES = ["precipitation", "temp_max", "temp_min", "wind"];
const row = { precipitation: 0, temp_max: 12.8, temp_min: 5, wind: 4.7 };
const inferBody = (id?: string, rows = 1) =>
  JSON.stringify({
    ...(id ? { id } : {}),
    inputs: FEATURES.map((name) => ({ name, shape: [rows], datatype: "FP32", data: Array.from({ length: rows }, () => row[name as keyof typeof row]) })),
  });

interface MD {
  metadata: { uid: string; generation: number };
  status?: { observedGeneration?: number; lastMetrics?: { windowEnd?: string }; conditions?: { type: string; status: string }[] };
}

describe("ballast operator: the serving pods' data plane", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let serviceUrl: string;
  const get = () => kubectlJson<MD>(["get", "md", "weather", "-n", ns.name]);
  const readyPods = async () =>
    (await kubectlJson<{ items: V1Pod[] }>(["get", "pods", "-n", ns.name, "-l", SERVING_PODS])).items.filter(
      (p) => !p.metadata!.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
  const infer = (id?: string, rows = 1) =>
    fetch(`${serviceUrl}/v2/models/weather/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: inferBody(id, rows),
      signal: AbortSignal.timeout(30_000),
    });
  const feedback = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${serviceUrl}/v1/feedback`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-dataplane");
    const store = trainedModelStore();
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "h1-dataplane-kc-"))), args: ["--namespaces", ns.name] });
    const secret = await kubectl(["create", "secret", "generic", "feedback", "-n", ns.name, `--from-literal=token=${TOKEN}`]);
    expect(secret.stderr).toBe("");
    // The suites' usual weather ModelDeployment (window of 100 rows), scraped every 2 s, feedback behind the token.
    const md = parse(modelDeploymentYaml(ns.name, "weather", store)) as { spec: { monitoring: Record<string, unknown> } };
    md.spec.monitoring.scrapeInterval = "2s";
    md.spec.monitoring.feedbackAuth = { secretRef: { name: "feedback", key: "token" } };
    // The test's repeated row drifts: no retraining Job or promotion should take CPU or roll the pods meanwhile.
    (md.spec as Record<string, unknown>).policy = { paused: true };
    await applyYaml(stringify(md));
    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather", "-n", ns.name, "--timeout=180s"]);
    expect(wait.stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "weather", "-n", ns.name]);
    serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v2/health/ready`, 60_000);
  });

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=90s"]);
    const code = await operator?.stop();
    await ns?.remove();
    expect(code).toBe(0);
  });

  it("creates a NetworkPolicy owned by the ModelDeployment: the serving port for anyone, nothing else", async () => {
    const md = await get();
    const policy = await kubectlJson<V1NetworkPolicy>(["get", "networkpolicy", "weather-serving", "-n", ns.name]);
    expect(policy.metadata!.ownerReferences).toEqual([
      { apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name: "weather", uid: md.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(policy.metadata!.labels!["app.kubernetes.io/managed-by"]).toBe("ballast-operator");
    expect(policy.spec!.podSelector!.matchLabels).toEqual({ "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "serving" });
    // This operator runs outside the cluster (no pods to admit): the monitoring port is open to nobody.
    expect(policy.spec!.ingress).toEqual([{ ports: [{ port: 8080, protocol: "TCP" }] }]);
  });

  it("keeps the summary, metrics and mirror switch off the Service; the operator reads them on each pod's monitoring port and fills lastMetrics", async () => {
    for (const path of ["/v1/monitoring/summary", "/metrics", "/v1/mirror"]) expect((await fetch(`${serviceUrl}${path}`)).status).toBe(404);
    expect((await fetch(`${serviceUrl}/v1/mirror`, { method: "PUT", body: "{}" })).status).toBe(404);
    const [pod] = await readyPods();
    const direct = await fetch(`http://${pod!.status!.podIP}:${SIDECAR_MONITORING_PORT}/v1/monitoring/summary`);
    expect(direct.status).toBe(200);
    // The switch is there, for the operator only: no mirror until it sets one.
    const mirror = await fetch(`http://${pod!.status!.podIP}:${SIDECAR_MONITORING_PORT}/v1/mirror`);
    expect(await mirror.json()).toEqual({ mirror: null });
    // One window of 100 rows closes; the operator scrapes it into status.
    for (let i = 0; i < 10; i++) expect((await infer(undefined, 10)).status).toBe(200);
    const md = await waitFor(
      "status.lastMetrics from the scrape",
      async () => {
        const m = await get();
        return m.status?.lastMetrics?.windowEnd ? m : undefined;
      },
      60_000,
    );
    expect(md.status!.lastMetrics!.windowEnd).toBeTruthy();
  });

  it("refuses feedback without the token (401, Bearer challenge) or with another, and takes it with the token", async () => {
    const res = await infer("dp-feedback-1");
    expect(res.status).toBe(200);
    const label = ((await res.json()) as { outputs: { name: string; data: string[] }[] }).outputs.find((o) => o.name === "label")!.data[0]!;
    const none = await feedback({ id: "dp-feedback-1", label });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await feedback({ id: "dp-feedback-1", label }, { authorization: "Bearer wrong" })).status).toBe(401);
    const ok = await feedback({ id: "dp-feedback-1", label }, { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ accepted: 1 });
  });

  it("rolls the pods under steady traffic through the Service without losing a request", async () => {
    const [oldPod] = await readyPods();
    let stop = false;
    const outcomes = { ok: 0, failed: [] as string[] };
    const client = async () => {
      while (!stop) {
        try {
          const res = await infer();
          await res.arrayBuffer();
          if (res.status === 200) outcomes.ok++;
          else outcomes.failed.push(`HTTP ${res.status}`);
        } catch (err) {
          outcomes.failed.push(`${(err as Error).message} ${String((err as Error).cause ?? "")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await new Promise((r) => setTimeout(r, 1000));
    // A new pod template: the monitoring config changes, so the pods roll.
    const patch = await kubectl(["patch", "md", "weather", "-n", ns.name, "--type", "merge", "-p", '{"spec":{"monitoring":{"window":{"size":120}}}}']);
    expect(patch.stderr).toBe("");
    // What the pods looked like at the last look, for the failure message.
    let seen = "";
    await waitFor(
      "the old pod gone and a new one serving",
      async () => {
        const pods = (await kubectlJson<{ items: V1Pod[] }>(["get", "pods", "-n", ns.name, "-l", SERVING_PODS])).items;
        seen = JSON.stringify(
          pods.map((p) => ({
            name: p.metadata!.name,
            deleting: !!p.metadata!.deletionTimestamp,
            phase: p.status?.phase,
            containers: p.status?.containerStatuses?.map((c) => [c.name, c.ready, c.restartCount, Object.keys(c.state ?? {})]),
          })),
        );
        return (
          pods.length === 1 &&
          pods[0]!.metadata!.name !== oldPod!.metadata!.name &&
          !pods[0]!.metadata!.deletionTimestamp &&
          pods[0]!.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
        );
      },
      200_000,
      500,
    ).catch((err: Error) => {
      stop = true;
      throw new Error(`${err.message}; pods: ${seen}; answered ${outcomes.ok}, failed ${outcomes.failed.length}: ${outcomes.failed.slice(0, 5).join(" | ")}`);
    });
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(clients);
    console.info(
      `rollout under traffic: ${outcomes.ok} answered 200, ${outcomes.failed.length} failed${outcomes.failed.length ? `: ${outcomes.failed.slice(0, 5).join(" | ")}` : ""}`,
    );
    expect(outcomes.failed).toEqual([]);
    expect(outcomes.ok).toBeGreaterThan(100);
  }, 300_000);
});
