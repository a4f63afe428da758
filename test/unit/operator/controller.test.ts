// One controller: a work queue of keys and N workers, with controller-runtime's retry rules and metrics.
import pino from "pino";
import { describe, expect, it } from "vitest";
import { Controller } from "../../../src/operator/controller.js";
import { OperatorMetrics } from "../../../src/operator/metrics.js";

describe("controller", () => {
  it("refuses a controller without workers", () => {
    const reconciler = { reconcile: async () => ({}) };
    expect(() => new Controller({ name: "c", reconciler, workers: 0, metrics: new OperatorMetrics(), logger: pino({ enabled: false }) })).toThrow(
      /workers must be a positive integer/,
    );
  });

  it("reconciles each key once per change with N workers, retries failures (telling onError), and drains on shutdown", async () => {
    const seen: string[] = [];
    let failOnce = true;
    const reconciler = {
      reconcile: async (req: { namespace: string; name: string }) => {
        seen.push(`${req.namespace}/${req.name}`);
        await new Promise((r) => setTimeout(r, 5));
        if (req.name === "flaky" && failOnce) {
          failOnce = false;
          throw new Error("boom");
        }
        return {};
      },
    };
    const metrics = new OperatorMetrics();
    const failed: string[] = [];
    const onError = (req: { namespace: string; name: string }, err: unknown) => failed.push(`${req.namespace}/${req.name}: ${String(err)}`);
    const c = new Controller({ name: "test", reconciler, workers: 3, metrics, logger: pino({ enabled: false }), onError });
    for (const k of ["ns/a", "ns/b", "ns/a", "ns/flaky"]) c.enqueue(k);
    c.start();
    await new Promise((r) => setTimeout(r, 100));
    await c.drain();
    expect(seen.filter((k) => k === "ns/a")).toHaveLength(1);
    expect(seen.filter((k) => k === "ns/flaky")).toHaveLength(2);
    expect(failed).toEqual(["ns/flaky: Error: boom"]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="success"} 3');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="test"} 1');
    expect(text).toContain('workqueue_retries_total{name="test",controller="test"} 1');
  });
});
