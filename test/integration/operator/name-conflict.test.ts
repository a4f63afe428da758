// Given the local cluster, a team's own Service `payments` and a ConfigMap, and a user who may only create
// ModelDeployments: a ModelDeployment named `payments` must not take them over (selector, owner reference,
// later garbage collection). The operator stops with Stalled=True / NameConflict and touches nothing.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { applyYaml, installCrdAndRbac, kubectlJson, modelDeploymentYaml, operatorKubeconfig, startOperator, type OperatorProcess } from "./operator-process.js";

interface Obj {
  metadata: { resourceVersion: string; uid: string; ownerReferences?: unknown[]; labels?: Record<string, string> };
  spec?: { selector?: Record<string, string> };
  data?: Record<string, string>;
}
interface MD {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);
// The pods never start (replicas 0), so the store need not exist.
const STORE = "file:///nonexistent/ballast-name-conflict";

describe("ballast operator: a ModelDeployment never takes over an object it does not control", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  const get = (kind: string, name: string) => kubectlJson<Obj>(["get", kind, name, "-n", ns.name]);
  const exists = async (kind: string, name: string) => (await kubectl(["get", kind, name, "-n", ns.name])).code === 0;
  /** The first Stalled condition the operator writes: with the conflict found, it is the first thing it says. */
  const stalled = async (name: string) => {
    const c = await waitFor(`md/${name}'s first status`, async () => condition(await kubectlJson<MD>(["get", "md", name, "-n", ns.name]), "Stalled"));
    expect(c).toMatchObject({ status: "True", reason: "NameConflict" });
    return c;
  };

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-conflict");
    // The team's own objects, made by hand before anyone thought of Ballast.
    for (const args of [
      ["create", "service", "clusterip", "payments", "--tcp=80:8443"],
      ["create", "configmap", "payments-monitoring", "--from-literal=owner=payments-team"],
      ["create", "configmap", "ledger-monitoring", "--from-literal=owner=ledger-team"],
    ]) {
      const res = await kubectl([...args, "-n", ns.name]);
      if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    }
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "op-kc-"))), args: ["--namespaces", ns.name] });
  });

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    const code = await operator?.stop();
    await ns?.remove();
    expect(code).toBe(0);
  });

  it("leaves an existing Service and ConfigMap as they were, says so in Stalled, and leaves them when the ModelDeployment goes", async () => {
    const serviceBefore = await get("service", "payments");
    const configMapBefore = await get("configmap", "payments-monitoring");

    await applyYaml(modelDeploymentYaml(ns.name, "payments", STORE, { replicas: 0 }));
    const c = await stalled("payments");
    expect(c.message).toMatch(
      /^(Service|ConfigMap) op-conflict-\w+\/payments(-monitoring)? already exists .*changed nothing\. Give the ModelDeployment another name, or delete the (Service|ConfigMap)/,
    );
    const events = await kubectl(["get", "events.events.k8s.io", "-n", ns.name, "--field-selector", "reason=NameConflict", "-o", "name"]);
    expect(events.stdout.trim()).not.toBe("");

    // Untouched: same resourceVersion (no write at all), no owner reference, the team's selector.
    expect(await get("service", "payments")).toEqual(serviceBefore);
    expect(await get("configmap", "payments-monitoring")).toEqual(configMapBefore);
    expect(serviceBefore.metadata.ownerReferences).toBeUndefined();
    expect(await exists("deployment", "payments-serving")).toBe(false);

    const del = await kubectl(["delete", "md", "payments", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    expect(del.code).toBe(0);
    // Past the garbage collector's next pass: still there, still unchanged.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await get("service", "payments")).toEqual(serviceBefore);
    expect(await get("configmap", "payments-monitoring")).toEqual(configMapBefore);
  });

  it("applies nothing while any one of its objects conflicts, and serves once the user removes the conflict", async () => {
    const before = await get("configmap", "ledger-monitoring");
    await applyYaml(modelDeploymentYaml(ns.name, "ledger", STORE, { replicas: 0 }));
    const c = await stalled("ledger");
    expect(c.message).toContain(`ConfigMap ${ns.name}/ledger-monitoring already exists and is not created by this ModelDeployment`);
    // The Service and Deployment had no conflict, yet were not created either.
    expect(await exists("service", "ledger")).toBe(false);
    expect(await exists("deployment", "ledger-serving")).toBe(false);
    expect(await get("configmap", "ledger-monitoring")).toEqual(before);

    // The ledger team decides the ConfigMap can go; a spec change makes the operator look again at once.
    await kubectl(["delete", "configmap", "ledger-monitoring", "-n", ns.name]);
    await kubectl(["annotate", "md", "ledger", "-n", ns.name, "example.com/retry=1"]);
    const md = await kubectlJson<{ metadata: { uid: string } }>(["get", "md", "ledger", "-n", ns.name]);
    const cm = await waitFor("Ballast's own ConfigMap ledger-monitoring", async () => {
      const res = await kubectl(["get", "configmap", "ledger-monitoring", "-n", ns.name, "-o", "json"]);
      const obj = res.code === 0 ? (JSON.parse(res.stdout) as Obj) : undefined;
      return obj?.metadata.ownerReferences ? obj : undefined;
    });
    expect(cm.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: "ModelDeployment", name: "ledger", uid: md.metadata.uid, controller: true })]);
    await waitFor("Stalled to clear", async () => condition(await kubectlJson<MD>(["get", "md", "ledger", "-n", ns.name]), "Stalled")?.status === "False");
  });
});
