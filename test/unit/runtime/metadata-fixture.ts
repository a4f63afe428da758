// metadata.json of a one-feature model version ("x", numeric), for tests of the traffic monitor: no weights needed.
import { METADATA_FORMAT, type ModelMetadata } from "../../../src/runtime/metadata.js";
import { buildReferenceProfile } from "../../../src/training/reference.js";

export type OneFeatureModel = { task: "classification"; classes: string[] } | { task: "regression"; target?: { mean: number; std: number } };

export function oneFeatureMetadata(model: OneFeatureModel, createdAt: number): ModelMetadata {
  const n = 200;
  const predictions =
    model.task === "classification"
      ? Array.from({ length: n }, (_, i) => model.classes[i % model.classes.length]!)
      : Array.from({ length: n }, (_, i) => 15 + (i % 10));
  return {
    format: METADATA_FORMAT,
    model: "m",
    version: "v1",
    task: model.task,
    label: "y",
    ...(model.task === "classification" ? { classes: model.classes } : model.target ? { target: model.target } : {}),
    features: [{ name: "x", type: "numeric", mean: 0, std: 1 }],
    referenceProfile: buildReferenceProfile([{ name: "x", type: "numeric", values: Array.from({ length: n }, (_, i) => (i % 20) / 10) }], {
      task: model.task,
      values: predictions,
    }),
    holdoutMetrics: {},
    parentVersion: null,
    dataWindow: { sources: [], rows: n, trainRows: n, validationRows: 0, holdoutRows: 0 },
    createdAt: new Date(createdAt).toISOString(),
    backend: "cpu",
    training: { seed: 1, epochs: 1, epochsRun: 1, bestEpoch: 1, hiddenUnits: [], learningRate: 0.1, batchSize: 1, l2: 0, patience: 1, durationMs: 1 },
  };
}
