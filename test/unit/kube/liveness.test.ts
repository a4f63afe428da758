// Liveness that means something: /healthz fails when a worker has been stuck in one reconcile past the
// bound, and only then; a key that is merely queued, or finished, does not count.
import pino from "pino";
import { describe, expect, it } from "vitest";
import { KubeClient } from "../../../src/kube/client.js";
import { WorkQueue } from "../../../src/kube/workqueue.js";
import { Manager } from "../../../src/operator/manager.js";

describe("how long the longest reconcile has run", () => {
  it("counts from the worker's get to its done, for the oldest key in processing", async () => {
    let now = 1_000;
    const q = new WorkQueue<string>({ clock: () => now });
    q.add("a");
    q.add("b");
    now += 5_000;
    expect(q.longestProcessingMs()).toBe(0);
    await q.get();
    now += 2_000;
    await q.get();
    now += 1_000;
    expect(q.longestProcessingMs()).toBe(3_000);
    q.done("a");
    expect(q.longestProcessingMs()).toBe(1_000);
    q.done("b");
    expect(q.longestProcessingMs()).toBe(0);
  });
});

describe("the operator's liveness", () => {
  // The manager talks to no API server until started; liveness reads only its queues.
  const manager = async (stuckReconcileMs: number) =>
    new Manager({
      client: await KubeClient.fromAccess({ server: "https://127.0.0.1:9", user: "test" }),
      logger: pino({ enabled: false }),
      workers: 1,
      metricsBindAddress: "0",
      healthProbeBindAddress: "0",
      image: "ballast:test",
      stuckReconcileMs,
    });

  it("is healthy with work queued and none stuck, and names the controller whose reconcile runs past the bound", async () => {
    const m = await manager(200);
    m.monitoring.enqueue("ns/queued");
    expect(m.livenessProblems()).toEqual([]);
    await m.monitoring.queue.get();
    await new Promise((r) => setTimeout(r, 50));
    expect(m.livenessProblems()).toEqual([]);
    await new Promise((r) => setTimeout(r, 250));
    const problems = m.livenessProblems();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^controller monitoring: a reconcile has run for 0\.[3-9] s \(bound 0\.2 s\)$/);
    m.monitoring.queue.done("ns/queued");
    expect(m.livenessProblems()).toEqual([]);
  });
});
