// Given the local cluster and the operator, a user creates one ModelDeployment: the operator writes what
// the result needs and nothing more — one apply per serving object, one status write once the Deployment
// controller has seen the Deployment (carrying the loop's and the monitoring controller's first status too, so
// the three controllers do not race for the fresh object), one Event, no finalizer — counted by the API server itself
// (apiserver_request_total), so a regression in writes per object, the operator's cost at scale, is caught.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { applyYaml, installCrdAndRbac, kubectlJson, modelDeploymentYaml, startNamespacedOperator, type OperatorProcess } from "./operator-process.js";

// The pods never start (replicas 0), so the store need not exist; pods coming up would add status writes.
const STORE = "file:///nonexistent/ballast-write-count";

interface Obj {
  metadata: { generation: number; finalizers?: string[] };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[]; loop?: { phase?: string } };
}

/**
 * Write requests the API server has answered, by "VERB group/resource[/subresource]", for the writes only
 * the operator makes in this file's namespace: ModelDeployment updates (users create and delete them), applies of the serving kinds (the
 * Deployment controller PUTs, never applies) and events.k8s.io Events (kube-controller-manager records core/v1 ones).
 */
async function operatorWriteCounts(): Promise<Map<string, number>> {
  const res = await kubectl(["get", "--raw", "/metrics"]);
  if (res.code !== 0) throw new Error(`kubectl get --raw /metrics: ${res.stderr}`);
  const counts = new Map<string, number>();
  for (const m of res.stdout.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const resource = [labels.group ? `${labels.group}/${labels.resource}` : labels.resource, labels.subresource].filter(Boolean).join("/");
    // A refused write (409 Conflict) is kept apart: it cost a round trip but wrote nothing.
    const key = `${labels.verb} ${resource}${labels.code?.startsWith("2") ? "" : ` (${labels.code})`}`;
    const ours =
      (resource.startsWith("ballast.dev/modeldeployments") && ["PUT", "PATCH", "APPLY"].includes(labels.verb!)) ||
      (labels.verb === "APPLY" && /^(configmaps|services|apps\/deployments|networking\.k8s\.io\/networkpolicies)$/.test(resource)) ||
      (resource === "events.k8s.io/events" && ["POST", "PATCH"].includes(labels.verb!));
    if (ours) counts.set(key, (counts.get(key) ?? 0) + Number(m[2]));
  }
  return counts;
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of after) if (n > (before.get(key) ?? 0)) out[key] = n - (before.get(key) ?? 0);
  return out;
}

describe("ballast operator: writes per ModelDeployment", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let stop: (() => Promise<number | null>) | undefined;
  let operator: OperatorProcess;

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-writes");
    ({ operator, stop } = await startNamespacedOperator(ns));
  });

  afterAll(async () => {
    expect(await stop?.()).toBe(0);
  });

  /** The counts, once two reads a second apart agree: the last write in flight has landed. */
  const settledWriteCounts = () =>
    waitFor("the operator's writes to settle", async () => {
      const first = await operatorWriteCounts();
      await new Promise((r) => setTimeout(r, 1000));
      const second = await operatorWriteCounts();
      return [...second].every(([k, n]) => first.get(k) === n) ? second : undefined;
    });

  /** Reconciles `controller` has finished, whatever their result (the operator's own metrics). */
  const reconciles = async (controller: string) => {
    let n = 0;
    for (const m of (await operator.metrics()).matchAll(new RegExp(`^controller_runtime_reconcile_total\\{controller="${controller}",[^}]*\\} (\\S+)$`, "gm")))
      n += Number(m[1]);
    return n;
  };

  it("creating one ModelDeployment costs 4 applies, 1 status write (serving's, with the loop's and monitoring's first parts) and 1 Event, and deleting it is not blocked by a finalizer", async () => {
    const before = await operatorWriteCounts();
    // Scraped every 2 s (30 s by default), so that the monitoring controller looks again soon after the first status.
    const counted = parse(modelDeploymentYaml(ns.name, "counted", STORE, { replicas: 0 })) as { spec: { monitoring: Record<string, unknown> } };
    counted.spec.monitoring.scrapeInterval = "2s";
    await applyYaml(stringify(counted));
    const md = await waitFor("every controller's first status: serving (Ready, scaled to zero), loop (Stable), monitoring (Unknown)", async () => {
      const m = await kubectlJson<Obj>(["get", "md", "counted", "-n", ns.name]);
      const has = (type: string, status: string) => m.status?.conditions?.some((c) => c.type === type && c.status === status);
      return m.status?.observedGeneration === 1 && has("Ready", "True") && m.status.loop?.phase && has("DriftDetected", "Unknown") ? m : undefined;
    });
    // The loop and monitoring controllers each look twice more after that write, and find nothing to write.
    const [monitoring, loop] = [await reconciles("monitoring"), await reconciles("loop")];
    await waitFor(
      "the loop and monitoring controllers to look again",
      async () => (await reconciles("monitoring")) >= monitoring + 2 && (await reconciles("loop")) >= loop + 2,
    );
    const writes = delta(before, await settledWriteCounts());
    expect(writes).toEqual({
      "APPLY configmaps": 1,
      "APPLY services": 1,
      "APPLY apps/deployments": 1,
      "APPLY networking.k8s.io/networkpolicies": 1,
      // 1: the first serving reconcile sees a Deployment not yet observed and writes no status; the Deployment
      // controller's status update wakes the second, which writes Ready, the loop's phase Stable and monitoring's
      // DriftDetected/Degraded Unknown (no ready pod to read). The loop and monitoring, looking after it, find
      // their part current and write nothing; no write is refused with 409.
      "PUT ballast.dev/modeldeployments/status": 1,
      "POST events.k8s.io/events": 1,
    });
    expect(md.metadata.finalizers ?? []).toEqual([]);

    const del = await kubectl(["delete", "md", "counted", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    expect(del.code).toBe(0);
    const afterDelete = delta(before, await operatorWriteCounts());
    expect(Object.keys(afterDelete).filter((k) => k.includes("modeldeployments") && !k.includes("/status"))).toEqual([]);
  });

  it("a ModelDeployment to which an earlier Ballast added its finalizer is still deleted: the operator releases it", async () => {
    // Created, not applied: kubectl's client-side apply annotation would make the server-side apply below migrate it.
    const created = await kubectl(["create", "-f", "-"], modelDeploymentYaml(ns.name, "legacy", STORE, { replicas: 0 }));
    expect(created.stderr).toBe("");
    // As Ballast did before: the finalizer declared by server-side apply under its own field manager.
    const legacy = {
      apiVersion: "ballast.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: { name: "legacy", namespace: ns.name, finalizers: ["ballast.dev/serving-cleanup"] },
    };
    const applied = await kubectl(["apply", "--server-side", "--field-manager=ballast-operator-finalizer", "-f", "-"], JSON.stringify(legacy));
    expect(applied.stderr).toBe("");
    expect((await kubectlJson<Obj>(["get", "md", "legacy", "-n", ns.name])).metadata.finalizers).toEqual(["ballast.dev/serving-cleanup"]);
    const del = await kubectl(["delete", "md", "legacy", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    expect(del.code).toBe(0);
    expect((await kubectl(["get", "md", "legacy", "-n", ns.name])).stderr).toContain("NotFound");
  });
});
