// The operator under stress a user would notice: a crash mid-reconcile, two replicas with leader
// election, and an API server that goes away for a while. Serving replicas are 0 here: what is tested
// is the operator's own behaviour, not pods (serving.test.ts covers Ready pods).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restartComponent, stopComponent } from "../../../src/devcluster/cluster.js";
import { clusterDir, createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  OPERATOR_NAMESPACE,
  applyYaml,
  deleteModelDeploymentsWithoutOperator,
  installCrdAndRbac,
  kubectlJson,
  modelDeploymentYaml,
  operatorKubeconfig,
  startOperator,
  type OperatorProcess,
} from "./operator-process.js";

interface MDList {
  items: { metadata: { name: string; generation: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] } }[];
}

async function allReconciled(ns: string, count: number): Promise<boolean> {
  const list = await kubectlJson<MDList>(["get", "md", "-n", ns]);
  return (
    list.items.length === count &&
    list.items.every(
      (m) => m.status?.observedGeneration === m.metadata.generation && m.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    )
  );
}

async function countOwned(ns: string): Promise<Record<string, number>> {
  const res = await kubectl(["get", "deployment,service,configmap,replicaset", "-n", ns, "-l", "app.kubernetes.io/managed-by=ballast-operator", "-o", "name"]);
  const counts: Record<string, number> = {};
  for (const line of res.stdout.split("\n").filter(Boolean)) {
    const kind = line.split("/")[0]!;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

const store = "https://models.example.invalid/store";

describe("ballast operator: crashes, failover and an unreachable API server", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let kubeconfig: string;
  const running: OperatorProcess[] = [];
  const start = async (args: string[] = []) => {
    const op = await startOperator({ kubeconfig, args: ["--namespaces", ns.name, ...args] });
    running.push(op);
    return op;
  };

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-resilience");
    kubeconfig = operatorKubeconfig(mkdtempSync(join(tmpdir(), "op-kc-")));
  });

  afterAll(async () => {
    await Promise.all(running.map((op) => op.kill()));
    if (ns) await deleteModelDeploymentsWithoutOperator(ns.name);
    await ns?.remove();
  });

  it("killed mid-reconcile and restarted, it converges to the same objects with no duplicates", async () => {
    const n = 20;
    for (let i = 0; i < n; i++) await applyYaml(modelDeploymentYaml(ns.name, `crash-${i}`, store, { replicas: 0 }));
    const first = await start(["--workers", "2"]);
    await waitFor("some reconciles to have happened", async () => /controller_runtime_reconcile_total\{[^}]*\} [1-9]/.test(await first.metrics()), 30_000, 20);
    await first.kill();
    const midway = await countOwned(ns.name);
    expect(midway["deployment.apps"] ?? 0).toBeLessThanOrEqual(n);
    const second = await start(["--workers", "2"]);
    await waitFor(`all ${n} ModelDeployments reconciled after the restart`, () => allReconciled(ns.name, n), 90_000);
    const owned = await countOwned(ns.name);
    expect(owned["deployment.apps"]).toBe(n);
    expect(owned.service).toBe(n);
    expect(owned.configmap).toBe(n);
    // One ReplicaSet each: no Deployment was rolled by a second, different apply.
    expect(owned["replicaset.apps"]).toBe(n);
    await second.stop();
  });

  it("with two replicas one leads; when it dies the other takes over within the lease duration", async () => {
    const id = `ballast-test-${ns.name}`;
    const le = ["--leader-elect", "--leader-election-namespace", OPERATOR_NAMESPACE, "--leader-election-id", id];
    const a = await start(le);
    const b = await start(le);
    const leaderOf = async () => {
      const lease = await kubectlJson<{ spec: { holderIdentity?: string } }>(["get", "lease", id, "-n", OPERATOR_NAMESPACE]);
      return lease.spec.holderIdentity;
    };
    const isLeader = async (op: OperatorProcess) => /leader_election_master_status\{name="[^"]+"\} 1/.test(await op.metrics());
    await waitFor("a leader", async () => (await isLeader(a)) || (await isLeader(b)), 30_000);
    const [leader, follower] = (await isLeader(a)) ? [a, b] : [b, a];
    expect(await isLeader(follower)).toBe(false);
    const holder = await leaderOf();
    expect(leader.logLines().some((l) => l.identity === holder && l.msg === "became leader")).toBe(true);

    await applyYaml(modelDeploymentYaml(ns.name, "led-1", store, { replicas: 0 }));
    await waitFor("led-1 reconciled by the leader", () => allReconciled(ns.name, 21), 30_000);
    expect(follower.logLines().some((l) => l.name === "led-1")).toBe(false);

    const killedAt = Date.now();
    await leader.kill();
    await waitFor("the follower to take over", () => isLeader(follower), 25_000, 100);
    const takeoverMs = Date.now() - killedAt;
    // Lease 15 s, measured from the last renewal the follower saw, plus one jittered retry period.
    expect(takeoverMs).toBeLessThan(15_000 + 2_400 + 1_000);
    expect(await leaderOf()).not.toBe(holder);
    await applyYaml(modelDeploymentYaml(ns.name, "led-2", store, { replicas: 0 }));
    await waitFor("led-2 reconciled by the new leader", () => allReconciled(ns.name, 22), 30_000);

    // A graceful stop releases the Lease: a fresh candidate takes it at its first try.
    const c = await start(le);
    const stoppedAt = Date.now();
    expect(await follower.stop()).toBe(0);
    await waitFor("the new candidate to lead after the release", () => isLeader(c), 10_000, 100);
    expect(Date.now() - stoppedAt).toBeLessThan(6_000);
    await c.stop();
  });

  it("keeps running while the API server is down and converges once it is back", async () => {
    const dir = clusterDir();
    expect(dir, "this test needs a `ballast dev` cluster it can stop the API server of").not.toBe("");
    const op = await start();
    await waitFor("the existing ModelDeployments reconciled", () => allReconciled(ns.name, 22), 30_000);
    await stopComponent(dir, "kube-apiserver");
    try {
      await new Promise((r) => setTimeout(r, 8_000));
      expect(op.proc.exitCode).toBeNull();
      expect((await fetch(`http://127.0.0.1:${op.port}/healthz`)).status).toBe(200);
    } finally {
      await restartComponent(dir, "kube-apiserver");
    }
    await waitFor("the API server to answer again", async () => (await kubectl(["get", "--raw", "/readyz"])).stdout === "ok", 60_000, 500);
    await applyYaml(modelDeploymentYaml(ns.name, "after-outage", store, { replicas: 0 }));
    await waitFor("a ModelDeployment created after the outage reconciled", () => allReconciled(ns.name, 23), 90_000);
    expect(op.logLines().some((l) => l.msg === "list/watch failed; retrying")).toBe(true);
    expect(await op.stop()).toBe(0);
  });
});
