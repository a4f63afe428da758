// Leader election on the real API server: a leader whose API server stops answering gives up leading by
// its renew deadline, before a standby can take the Lease, and writes nothing after; a graceful stop
// hands the Lease over at once.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeClient, WriteRefusedError, resourcePath } from "../../../src/kube/client.js";
import { LeaderElector, type StopReason } from "../../../src/kube/leader-election.js";
import { createTestNamespace, waitFor } from "../../support/cluster.js";
import { ApiProxy } from "./api-proxy.js";

const CONFIG_MAPS = { group: "", version: "v1", plural: "configmaps", namespaced: true };
// Short timings so that the story takes seconds; the algorithm is the same at 15/10/2 s.
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };

interface Candidate {
  elector: LeaderElector;
  client: KubeClient;
  stopped: { reason: StopReason; at: number }[];
  startedAt: number[];
  stop: () => Promise<void>;
}

describe("leader election against a real API server", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let admin: KubeClient;
  const proxies: ApiProxy[] = [];
  const candidates: Candidate[] = [];
  const dir = mkdtempSync(join(tmpdir(), "h3-le-"));

  const candidate = async (identity: string, lease: string, via?: ApiProxy, clock?: () => number): Promise<Candidate> => {
    const client = via ? await KubeClient.load(via.kubeconfig(dir)) : await KubeClient.load(inject("kubeconfig"));
    const stopped: Candidate["stopped"] = [];
    const startedAt: number[] = [];
    const elector = new LeaderElector(
      { client, namespace: ns.name, name: lease, identity, logger: pino({ enabled: false }), clock, ...TIMINGS },
      { onStartedLeading: () => startedAt.push(Date.now()), onStoppedLeading: (reason) => stopped.push({ reason, at: Date.now() }) },
    );
    const abort = new AbortController();
    const running = elector.run(abort.signal);
    const c = {
      elector,
      client,
      stopped,
      startedAt,
      stop: async () => {
        abort.abort();
        await running;
        await client.close();
      },
    };
    candidates.push(c);
    return c;
  };

  beforeAll(async () => {
    ns = await createTestNamespace("h3-le");
    admin = await KubeClient.load(inject("kubeconfig"));
  });

  afterAll(async () => {
    await Promise.all(candidates.map((c) => c.stop()));
    await Promise.all(proxies.map((p) => p.close()));
    await admin?.close();
    await ns?.remove();
  });

  it("a leader cut off from the API server stops leading by its renew deadline, before the standby takes over, and writes nothing after", async () => {
    const proxy = await ApiProxy.start();
    proxies.push(proxy);
    const a = await candidate("a", "cut-off", proxy);
    await waitFor("a to lead", async () => a.elector.isLeader, 10_000, 50);
    const b = await candidate("b", "cut-off");
    await new Promise((r) => setTimeout(r, 2 * TIMINGS.retryPeriodMs));
    expect(b.elector.isLeader).toBe(false);

    // The API server stops answering a: renewals hang (no error comes back), the watch goes quiet.
    const cutAt = Date.now();
    proxy.mode = "stall";
    proxy.silenceOpenExchanges();
    await waitFor("b to take over", async () => b.elector.isLeader, TIMINGS.leaseDurationMs + 3_000, 50);
    const tookOverAt = b.startedAt[0]!;

    // a gave up by its deadline (renewDeadline after its last renewal, so at most that after the cut) ...
    expect(a.stopped).toHaveLength(1);
    expect(a.stopped[0]!.reason).toBe("lost");
    expect(a.stopped[0]!.at - cutAt).toBeLessThanOrEqual(TIMINGS.renewDeadlineMs + 250);
    // ... and before b started: never two leaders at once.
    expect(a.stopped[0]!.at).toBeLessThan(tookOverAt);
    expect(a.elector.isLeader).toBe(false);
    expect(a.elector.problem()).toBe("lost leadership");

    // Its API server is back, but a lost: nothing it writes leaves the process, and it does not campaign again.
    proxy.mode = "pass";
    const resumedAt = Date.now();
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "from-a", namespace: ns.name }, data: { writer: "a" } };
    await expect(a.client.create(resourcePath(CONFIG_MAPS, ns.name), cm)).rejects.toBeInstanceOf(WriteRefusedError);
    await new Promise((r) => setTimeout(r, 3 * TIMINGS.retryPeriodMs));
    expect(proxy.writesSince(resumedAt)).toEqual([]);
    await expect(admin.get(resourcePath(CONFIG_MAPS, ns.name, "from-a"))).rejects.toMatchObject({ status: 404 });
    expect(a.elector.isLeader).toBe(false);
    expect(b.elector.isLeader).toBe(true);
    // Reads still work: a refused write is the lease's doing, not a broken client.
    await expect(a.client.get(resourcePath(CONFIG_MAPS, ns.name))).resolves.toBeTruthy();
  });

  it("a leader that stops gracefully releases the Lease: a candidate takes it at its next try, not after the lease duration", async () => {
    const a = await candidate("a", "handover");
    await waitFor("a to lead", async () => a.elector.isLeader, 10_000, 50);
    const b = await candidate("b", "handover");
    await a.stop();
    const stoppedAt = Date.now();
    expect(a.stopped.map((s) => s.reason)).toEqual(["shutdown"]);
    await waitFor("b to lead", async () => b.elector.isLeader, TIMINGS.leaseDurationMs, 50);
    expect(b.startedAt[0]! - stoppedAt).toBeLessThan(TIMINGS.retryPeriodMs * 1.2 + 1_000);
  });

  it("liveness names an elector whose round has hung past the bound, and clears once rounds finish again", async () => {
    const proxy = await ApiProxy.start();
    proxies.push(proxy);
    proxy.mode = "stall";
    // The elector's clock can jump: a round hanging for longer than any request deadline allows is what
    // only a bug (a promise that never settles) produces, so it is simulated rather than waited for.
    let jump = 0;
    const a = await candidate("a", "stalled", proxy, () => performance.now() + jump);
    await waitFor("a's first request to hang", async () => proxy.requests.length > 0, 5_000, 20);
    expect(a.elector.problem()).toBeUndefined();
    jump = 10_000;
    expect(a.elector.problem()).toMatch(/^leader election stalled: no round for 10 s \(bound 4\.8 s\)$/);
    // The hung GET ends at its deadline (renewDeadline for a candidate): the round finishes, liveness recovers.
    proxy.mode = "pass";
    await waitFor("the round to finish", async () => a.elector.problem() === undefined, TIMINGS.renewDeadlineMs + 2_000, 50);
  });
});
