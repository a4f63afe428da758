// The sidecar's label-free error of a regressor, row by row: each served row goes through the version's error
// model (the model's encoding of its inputs, then its prediction standardised), and the window reports the sums;
// an error model that does not fit the model's encoding is not used at all.
import { describe, expect, it } from "vitest";
import type { LossEstimatorJSON } from "../../../src/monitoring/loss-estimate.js";
import { RequestLog } from "../../../src/runtime/request-log.js";
import { TrafficMonitor } from "../../../src/runtime/traffic-monitor.js";
import { oneFeatureMetadata } from "./metadata-fixture.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-loss-estimate-");
const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);
const target = { mean: 15, std: 2 };

/** |error| = 2·softplus(relu(x + (prediction − 15)/2)); error² = 4·softplus(0). */
const estimator = (inputs: number): LossEstimatorJSON => ({
  method: "dle-mlp",
  inputs,
  hidden: { weights: Array.from({ length: inputs }, () => [1]), bias: [0] },
  output: { weights: [[1, 0]], bias: [0, 0] },
  scale: target.std,
  rows: 100,
  realisedMae: 1,
  estimatedMae: 1,
});

async function served(inputs: number, xs: number[], values: number[]) {
  const meta = { ...oneFeatureMetadata({ task: "regression", target }, T0), lossEstimator: estimator(inputs) };
  const log = await RequestLog.open(tempDir(), { model: "m", version: "v1", task: "regression", label: "y", features: ["x"] });
  const monitor = new TrafficMonitor({ meta, windowRows: 0, windowMs: 0, windowsKept: 12, maxTracked: 100, pod: "p", requestLog: log, now: () => T0 });
  monitor.enqueue({
    ts: T0,
    status: 200,
    requestBody: Buffer.from(JSON.stringify({ id: "r1", instances: xs.map((x) => ({ x })) })),
    responseBody: Buffer.from(JSON.stringify({ id: "r1", outputs: [{ name: "value", shape: [values.length], datatype: "FP32", data: values }] })),
  });
  const window = monitor.summary().windows.at(-1)!;
  await log.close();
  return window;
}

const softplus = (x: number) => Math.log1p(Math.exp(x));

describe("the sidecar's estimated error (DLE)", () => {
  it("sums each row's predicted |error| and error² from the model's encoded input and its prediction", async () => {
    const xs = [0, 1, -3];
    const values = [15, 19, 13];
    const window = await served(2, xs, values);
    const abs = xs.map((x, i) => 2 * softplus(Math.max(0, x + (values[i]! - 15) / 2)));
    expect(window.lossEstimate!.rows).toBe(3);
    expect(window.lossEstimate!.sumAbsError).toBeCloseTo(abs[0]! + abs[1]! + abs[2]!, 9);
    expect(window.lossEstimate!.sumSquaredError).toBeCloseTo(3 * 4 * Math.LN2, 9);
    expect(window.metrics["estimatedMae"]).toBeCloseTo((abs[0]! + abs[1]! + abs[2]!) / 3, 9);
    expect(window.metrics["estimatedSamples"]).toBe(3);
  });

  it("uses no error model whose inputs do not match the model's encoding (one feature + the prediction)", async () => {
    const window = await served(3, [0, 1], [15, 16]);
    expect(window.lossEstimate).toBeUndefined();
    expect(window.metrics["estimatedMae"]).toBeUndefined();
    expect(window.rows).toBe(2);
  });
});
