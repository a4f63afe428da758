// metadata.json of a model version: everything serving, the sidecar and the operator need besides the weights.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { METADATA_FILE, StoreError, type ModelStore } from "./store.js";

export const METADATA_FORMAT = "ballast.dev/model-version/v1";
export const MODEL_TOPOLOGY_FILE = "model.json";
export const MODEL_WEIGHTS_FILE = "weights.bin";

const NumericFeatureSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  type: Type.Literal("numeric"),
  mean: Type.Number(),
  std: Type.Number({ minimum: 0 }),
});

const CategoricalFeatureSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  type: Type.Literal("categorical"),
  categories: Type.Array(Type.String()),
});

export const ModelMetadataSchema = Type.Object({
  format: Type.Literal(METADATA_FORMAT),
  model: Type.String(),
  version: Type.String(),
  task: Type.Union([Type.Literal("classification"), Type.Literal("regression")]),
  /** Name of the label column in the training data and in feedback. */
  label: Type.String({ minLength: 1 }),
  /** Classification: class names in output order. */
  classes: Type.Optional(Type.Array(Type.String(), { minItems: 2 })),
  /** Regression: the target was standardised for training; outputs are scaled back. */
  target: Type.Optional(Type.Object({ mean: Type.Number(), std: Type.Number() })),
  features: Type.Array(Type.Union([NumericFeatureSchema, CategoricalFeatureSchema]), { minItems: 1 }),
  /** Serialized monitoring profiles of the training rows (features + prediction), see src/monitoring. */
  referenceProfile: Type.Unknown(),
  /** Metrics of this version on its holdout split, e.g. accuracy, f1Macro, mae, rmse. */
  holdoutMetrics: Type.Record(Type.String(), Type.Number()),
  /** The parent version's metrics on this version's holdout (fine-tuning only), for candidate-vs-serving comparison. */
  parentHoldoutMetrics: Type.Optional(Type.Record(Type.String(), Type.Number())),
  parentVersion: Type.Union([Type.String(), Type.Null()]),
  dataWindow: Type.Object({
    sources: Type.Array(Type.String()),
    rows: Type.Integer(),
    trainRows: Type.Integer(),
    validationRows: Type.Integer(),
    holdoutRows: Type.Integer(),
    /** Earliest / latest timestamp of sidecar-log rows used (absent for files without time). */
    from: Type.Optional(Type.String()),
    to: Type.Optional(Type.String()),
  }),
  createdAt: Type.String(),
  /** tfjs backend that trained the version (tensorflow, wasm, cpu). */
  backend: Type.String(),
  training: Type.Object({
    seed: Type.Integer(),
    epochs: Type.Integer(),
    epochsRun: Type.Integer(),
    bestEpoch: Type.Integer(),
    hiddenUnits: Type.Array(Type.Integer()),
    learningRate: Type.Number(),
    batchSize: Type.Integer(),
    l2: Type.Number(),
    patience: Type.Integer(),
    durationMs: Type.Number(),
  }),
});

export type ModelMetadata = Static<typeof ModelMetadataSchema>;

export async function readMetadata(store: ModelStore, model: string, version: string): Promise<ModelMetadata> {
  const raw = await store.readFile(model, version, METADATA_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new StoreError(`${model}/${version}/${METADATA_FILE}: invalid JSON: ${(err as Error).message}`, "io");
  }
  const firstError = Value.Errors(ModelMetadataSchema, parsed).First();
  if (firstError) {
    throw new StoreError(`${model}/${version}/${METADATA_FILE}: ${firstError.path || "/"} ${firstError.message}`, "io");
  }
  return parsed as ModelMetadata;
}

/** Output tensor names a version's infer endpoint produces. */
export function outputNames(meta: ModelMetadata): string[] {
  return meta.task === "classification" ? ["label", "probabilities"] : ["value"];
}
