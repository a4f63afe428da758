// Two `ballast operator` processes with leader election, each reaching the real API server through its
// own recording proxy, so every write either of them sends is on the record. The leader is frozen
// (SIGSTOP: a long GC pause, a throttled or migrated VM): the standby takes over within the lease
// duration; woken (SIGCONT), the old leader writes nothing and exits 1 for its Deployment to restart it.
// What a user would care about: one writer at a time.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  applyYaml,
  deleteModelDeploymentsWithoutOperator,
  installCrdAndRbac,
  kubectlJson,
  modelDeploymentYaml,
  startOperator,
  type OperatorProcess,
} from "../operator/operator-process.js";
import { ApiProxy, type ProxiedRequest } from "./api-proxy.js";

// Serving replicas 0: what is under test is who writes, not pods.
const store = "https://models.example.invalid/store";
// The operator's defaults (docs/operator.md): lease 15 s, renew deadline 10 s, retry 2 s (jittered ×1.2 for candidates).
const LEASE_MS = 15_000;
const RETRY_JITTERED_MS = 2_400;

interface MDList {
  items: { metadata: { generation: number }; status?: { observedGeneration?: number } }[];
}

async function reconciledCount(ns: string): Promise<number> {
  const list = await kubectlJson<MDList>(["get", "md", "-n", ns]);
  return list.items.filter((m) => m.status?.observedGeneration === m.metadata.generation).length;
}

const isLeader = async (op: OperatorProcess) => /leader_election_master_status\{name="[^"]+"\} 1/.test(await op.metrics());
const times = (writes: ProxiedRequest[]) => writes.map((w) => w.at);

describe("ballast operator: one writer at a time", () => {
  let ns: { name: string; remove: () => Promise<void> };
  const proxies: ApiProxy[] = [];
  const running: OperatorProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "h3-failover-"));

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("h3-failover");
  });

  afterAll(async () => {
    for (const op of running) if (op.proc.exitCode === null && op.proc.signalCode === null) op.proc.kill("SIGCONT");
    await Promise.all(running.map((op) => op.kill()));
    await Promise.all(proxies.map((p) => p.close()));
    if (ns) await deleteModelDeploymentsWithoutOperator(ns.name);
    await ns?.remove();
  });

  it("a frozen leader is replaced within the lease duration; woken, it exits 1 without writing anything", async () => {
    const leaseName = `h3-failover-${ns.name}`;
    const args = ["--namespaces", ns.name, "--leader-elect", "--leader-election-namespace", OPERATOR_NAMESPACE, "--leader-election-id", leaseName];
    const [proxyA, proxyB] = [await ApiProxy.start(), await ApiProxy.start()];
    proxies.push(proxyA, proxyB);
    const a = await startOperator({ kubeconfig: proxyA.kubeconfig(dir, OPERATOR_USER), args });
    running.push(a);
    await waitFor("a to lead", () => isLeader(a), 30_000);
    const b = await startOperator({ kubeconfig: proxyB.kubeconfig(dir, OPERATOR_USER), args });
    running.push(b);
    await applyYaml(modelDeploymentYaml(ns.name, "before-freeze", store, { replicas: 0 }));
    await waitFor("before-freeze reconciled by a", async () => (await reconciledCount(ns.name)) === 1, 30_000);
    expect(await isLeader(b)).toBe(false);
    expect(proxyB.writesSince(0), "the standby writes nothing, not even Events").toEqual([]);

    a.proc.kill("SIGSTOP");
    const frozenAt = Date.now();
    await waitFor("b to take over", () => isLeader(b), LEASE_MS + RETRY_JITTERED_MS + 10_000, 100);
    // Lease 15 s from the last renewal b saw (at most one retry period before the freeze), plus b's jittered retry.
    const takeoverMs = Date.now() - frozenAt;
    console.error(`[operator-failover] the standby led ${takeoverMs} ms after the leader froze`);
    expect(takeoverMs).toBeLessThan(LEASE_MS + RETRY_JITTERED_MS + 1_000);
    await applyYaml(modelDeploymentYaml(ns.name, "while-frozen", store, { replicas: 0 }));
    await waitFor("while-frozen reconciled by b", async () => (await reconciledCount(ns.name)) === 2, 30_000);

    // a wakes with a cache and a queue that say there is work (while-frozen is new to it) and a Lease it still thinks it holds.
    const wokenAt = Date.now();
    a.proc.kill("SIGCONT");
    await waitFor("a to exit", async () => a.proc.exitCode !== null || a.proc.signalCode !== null, 15_000, 50);
    console.error(`[operator-failover] the woken leader exited ${Date.now() - wokenAt} ms after SIGCONT`);
    expect(a.proc.exitCode, a.logs().slice(-2_000)).toBe(1);
    expect(proxyA.writesSince(wokenAt), "writes the woken leader sent").toEqual([]);
    expect(a.logLines().some((l) => l.msg === "leader election lost: exiting")).toBe(true);

    // Over the whole story, every write of a came before the first write of b.
    const aWrites = times(proxyA.writesSince(0));
    const bWrites = times(proxyB.writesSince(0));
    expect(aWrites.length).toBeGreaterThan(0);
    expect(bWrites.length).toBeGreaterThan(0);
    expect(Math.max(...aWrites)).toBeLessThan(Math.min(...bWrites));

    // b still leads and still works.
    const lease = await kubectlJson<{ spec: { holderIdentity?: string } }>(["get", "lease", leaseName, "-n", OPERATOR_NAMESPACE]);
    expect(b.logLines().some((l) => l.identity === lease.spec.holderIdentity && l.msg === "became leader")).toBe(true);
    await applyYaml(modelDeploymentYaml(ns.name, "after-exit", store, { replicas: 0 }));
    await waitFor("after-exit reconciled by b", async () => (await reconciledCount(ns.name)) === 3, 30_000);
    expect(await b.stop()).toBe(0);
    await kubectl(["delete", "lease", leaseName, "-n", OPERATOR_NAMESPACE]);
  });
});
