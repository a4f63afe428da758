// Given the local cluster, the operator as its own ServiceAccount and a regression model (miles per gallon of
// American cars) in a PVC, a user sends traffic nobody labels and sees the window judged on its label-free
// estimated error: status.lastMetrics.estimatedMae and estimatedAccuracy (the estimate of the configured metric),
// decidedBy estimate, and Degraded ErrorAboveThreshold when the estimate is above policy.maxError.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { waitForService } from "../../../src/demo/traffic.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { cars, seeded, shuffled, type Row } from "../../unit/monitoring/real-data.js";
import { applyYaml, createLocalClaim, installCrdAndRbac, kubectlJson, startNamespacedOperator, trainInto, type OperatorProcess } from "./operator-process.js";

const WINDOW = 60;
const INPUTS = ["Displacement", "Horsepower", "Weight_in_lbs", "Acceleration", "Cylinders"] as const;

interface MD {
  status?: ModelDeploymentStatus;
}

describe("ballast operator: a regression window without labels, judged on its estimated error", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let stop: (() => Promise<number | null>) | undefined;
  const usa = shuffled(
    cars.filter((c) => c.Origin === "USA" && c.Miles_per_Gallon !== null && c.Horsepower !== null),
    seeded(3),
  );
  const get = () => kubectlJson<MD>(["get", "md", "cars", "-n", ns.name]);

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-dle");
    const csv = join(mkdtempSync(join(tmpdir(), "op-dle-")), "usa.csv");
    const line = (c: Row) => [c.Miles_per_Gallon, ...INPUTS.map((f) => c[f])].join(",");
    writeFileSync(csv, [["mpg", ...INPUTS].join(","), ...usa.slice(WINDOW).map(line)].join("\n") + "\n");
    trainInto(join(await createLocalClaim(ns.name, "models"), "store"), csv, [
      "--model",
      "cars",
      "--version",
      "v1",
      "--label",
      "mpg",
      "--task",
      "regression",
      "--features",
      INPUTS.join(","),
      "--epochs",
      "30",
    ]);
    ({ operator, stop } = await startNamespacedOperator(ns));
  });

  afterAll(async () => {
    if (stop) expect(await stop()).toBe(0);
    else await ns?.remove();
  });

  it("shows estimatedMae, decides by the estimate and reports ErrorAboveThreshold when it exceeds maxError", async () => {
    expect(operator).toBeDefined();
    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "cars", namespace: ns.name },
        spec: {
          model: { name: "cars", storageUri: "pvc://models/store" },
          serving: { replicas: 1, port: 8080 },
          monitoring: {
            task: "regression",
            labelField: "mpg",
            accuracyMetric: "mae",
            features: INPUTS.map((f) => ({ name: f, type: "numeric" })),
            window: { size: WINDOW },
            scrapeInterval: "1s",
          },
          // An MAE of 1 mpg is beyond this model (about 1.5–2 on unseen American cars): the estimate must say so.
          policy: { minSamples: 50, consecutiveWindows: 1, cooldown: "1h", triggerOn: "auto", minLabelledSamples: 50, maxError: 1 },
        },
      }),
    );
    expect((await kubectl(["wait", "--for=condition=Ready", "md/cars", "-n", ns.name, "--timeout=120s"])).stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "cars", "-n", ns.name]);
    const serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    const rows = usa.slice(0, WINDOW);
    for (let i = 0; i < rows.length; i += 20) {
      const batch = rows.slice(i, i + 20);
      const res = await fetch(`${serviceUrl}/v2/models/cars/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs: INPUTS.map((f) => ({ name: f, shape: [batch.length], datatype: "FP32", data: batch.map((c) => Number(c[f])) })) }),
      });
      expect(res.status).toBe(200);
    }
    const judged = await waitFor(
      "the unlabelled window judged",
      async () => {
        const m = await get();
        return m.status?.lastMetrics?.samples === WINDOW && m.status.lastMetrics.verdict ? m : undefined;
      },
      60_000,
    );
    const last = judged.status!.lastMetrics!;
    expect(last).toMatchObject({ labelledSamples: 0, metric: "mae", decidedBy: "estimate", verdict: "Violated" });
    expect(last.estimatedMae).toBeGreaterThan(1);
    expect(last.estimatedAccuracy).toBe(last.estimatedMae);
    const degraded = judged.status!.conditions!.find((c) => c.type === "Degraded")!;
    expect(degraded).toMatchObject({ status: "True", reason: "ErrorAboveThreshold" });
    expect(degraded.message).toMatch(
      /decided by estimate \(0 labelled rows < 50; estimated from 60 rows' predicted errors\): estimated mae [\d.]+ > maximum 1/,
    );
  });
});
