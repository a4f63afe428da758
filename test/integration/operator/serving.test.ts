// Given the local cluster and the operator running as its own ServiceAccount, a user applies a
// ModelDeployment and sees real serving pods become Ready; changes roll; deletion cleans up.
import type { V1ConfigMap, V1Deployment, V1Service } from "@kubernetes/client-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  OPERATOR_USER,
  applyYaml,
  installCrdAndRbac,
  kubectlJson,
  modelDeploymentYaml,
  operatorKubeconfig,
  startOperator,
  trainedModelStore,
  type OperatorProcess,
} from "./operator-process.js";

interface MD {
  metadata: { generation: number; finalizers?: string[]; uid: string };
  status?: { observedGeneration?: number; readyReplicas?: number; conditions?: { type: string; status: string; reason: string }[] };
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);

describe("ballast operator: serving a ModelDeployment", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let store: string;

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-serving");
    store = trainedModelStore();
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "op-kc-"))), args: ["--namespaces", ns.name] });
  });

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    const code = await operator?.stop();
    await ns?.remove();
    expect(code).toBe(0);
  });

  it("runs as the operator's ServiceAccount, which may do what deploy/ grants and nothing more", async () => {
    expect(operator.logLines().find((l) => l.msg === "operator starting")?.user).toBe(OPERATOR_USER);
    // `resource/name` would name an object called "status": the subresource needs --subresource.
    for (const args of [
      ["patch", "deployments.apps"],
      ["update", "modeldeployments.ballast.dev", "--subresource=status"],
      ["create", "events.events.k8s.io"],
      ["get", "persistentvolumeclaims"],
    ])
      expect((await kubectl(["auth", "can-i", ...args, "-n", ns.name, "--as", OPERATOR_USER])).stdout.trim()).toBe("yes");
    expect((await kubectl(["auth", "can-i", "delete", "modeldeployments.ballast.dev", "-n", ns.name, "--as", OPERATOR_USER])).stdout.trim()).toBe("no");
    expect((await kubectl(["auth", "can-i", "get", "secrets", "-n", ns.name, "--as", OPERATOR_USER])).stdout.trim()).toBe("no");
  });

  it("creates the Deployment, Service and ConfigMap owned by the ModelDeployment, and the real pods become Ready", async () => {
    await applyYaml(modelDeploymentYaml(ns.name, "weather", store));
    const md = await waitFor("a first status", async () => {
      const m = await kubectlJson<MD>(["get", "md", "weather", "-n", ns.name]);
      return m.status?.observedGeneration === 1 && condition(m, "Ready") ? m : undefined;
    });
    // Owner references and the garbage collector clean up: no finalizer to block a deletion.
    expect(md.metadata.finalizers ?? []).toEqual([]);
    const dep = await kubectlJson<V1Deployment>(["get", "deployment", "weather-serving", "-n", ns.name, "--show-managed-fields"]);
    const svc = await kubectlJson<V1Service>(["get", "service", "weather", "-n", ns.name]);
    const cm = await kubectlJson<V1ConfigMap>(["get", "configmap", "weather-monitoring", "-n", ns.name]);
    for (const obj of [dep, svc, cm])
      expect(obj.metadata!.ownerReferences).toEqual([
        { apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name: "weather", uid: md.metadata.uid, controller: true, blockOwnerDeletion: true },
      ]);
    expect(dep.spec!.template.spec!.containers.map((c) => [c.name, c.args![0]])).toEqual([
      ["server", "serve"],
      ["sidecar", "sidecar"],
    ]);
    expect(svc.spec!.ports![0]).toMatchObject({ port: 8080, targetPort: "http" });
    expect(JSON.parse(cm.data!["monitoring.json"]!)).toMatchObject({ labelField: "weather", task: "classification" });
    expect(dep.metadata!.managedFields!.some((f) => f.manager === "ballast-operator" && f.operation === "Apply")).toBe(true);

    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather", "-n", ns.name, "--timeout=120s"]);
    expect(wait.stderr).toBe("");
    expect(wait.stdout).toContain("condition met");
    const pods = await kubectlJson<{ items: { status: { containerStatuses: { ready: boolean }[] } }[] }>([
      "get",
      "pods",
      "-n",
      ns.name,
      "-l",
      "ballast.dev/model-deployment=weather",
    ]);
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]!.status.containerStatuses.every((c) => c.ready)).toBe(true);
    const table = await kubectl(["get", "md", "weather", "-n", ns.name]);
    expect(table.stdout).toMatch(/weather\s+weather\s+.*True/);
    const events = await kubectl([
      "get",
      "events.events.k8s.io",
      "-n",
      ns.name,
      "--field-selector",
      "reportingController=ballast.dev/operator",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    expect(events.stdout.split(" ")).toContain("Created");
  });

  it("observes a spec change: new generation, Deployment scaled and rolled, Events say so", async () => {
    const before = await kubectlJson<V1Deployment>(["get", "deployment", "weather-serving", "-n", ns.name]);
    const patch = await kubectl([
      "patch",
      "md",
      "weather",
      "-n",
      ns.name,
      "--type",
      "merge",
      "-p",
      '{"spec":{"serving":{"replicas":2},"monitoring":{"window":{"size":200}}}}',
    ]);
    expect(patch.stderr).toBe("");
    await waitFor(
      "generation 2 observed and Ready again",
      async () => {
        const m = await kubectlJson<MD>(["get", "md", "weather", "-n", ns.name]);
        return m.metadata.generation === 2 && m.status?.observedGeneration === 2 && condition(m, "Ready")?.status === "True" && m.status.readyReplicas === 2;
      },
      120_000,
    );
    const after = await kubectlJson<V1Deployment>(["get", "deployment", "weather-serving", "-n", ns.name]);
    expect(after.spec!.replicas).toBe(2);
    expect(after.metadata!.generation).toBeGreaterThan(before.metadata!.generation!);
    expect(after.spec!.template.metadata!.annotations!["ballast.dev/monitoring-config-hash"]).not.toBe(
      before.spec!.template.metadata!.annotations!["ballast.dev/monitoring-config-hash"],
    );
    const events = await kubectl([
      "get",
      "events.events.k8s.io",
      "-n",
      ns.name,
      "--field-selector",
      "reportingController=ballast.dev/operator",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    expect(events.stdout.split(" ")).toEqual(expect.arrayContaining(["Scaled", "Rolled"]));
  });

  it("reports a missing PVC as Stalled with a reason that names it, and creates no pods for it", async () => {
    await applyYaml(modelDeploymentYaml(ns.name, "no-claim", "pvc://does-not-exist/models"));
    const stalled = await waitFor("Stalled=True", async () => {
      const m = await kubectlJson<MD>(["get", "md", "no-claim", "-n", ns.name]);
      return condition(m, "Stalled")?.status === "True" ? m : undefined;
    });
    expect(condition(stalled, "Stalled")!.reason).toBe("ClaimNotFound");
    expect(condition(stalled, "Ready")!.status).toBe("False");
    expect((await kubectl(["get", "deployment", "no-claim-serving", "-n", ns.name])).code).not.toBe(0);
    await kubectl(["delete", "md", "no-claim", "-n", ns.name, "--wait=true", "--timeout=60s"]);
  });

  it("on delete, the garbage collector removes the owned objects", async () => {
    const del = await kubectl(["delete", "md", "weather", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    expect(del.code).toBe(0);
    expect((await kubectl(["get", "md", "weather", "-n", ns.name])).stderr).toContain("NotFound");
    await waitFor(
      "owned objects garbage-collected",
      async () => {
        const left = await kubectl(["get", "deployment,service,configmap", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather", "-o", "name"]);
        return left.code === 0 && left.stdout.trim() === "";
      },
      60_000,
    );
  });
});
