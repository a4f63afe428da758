// metadata.json of a model version: everything serving, the sidecar and the operator need besides the weights.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { LossEstimatorSchema } from "../monitoring/loss-estimate.js";
import { PcaReferenceSchema } from "../monitoring/multivariate-drift.js";
import { METADATA_FILE, StoreError, type ModelStore } from "./store.js";

export const METADATA_FORMAT = "ballast.dev/model-version/v1";
export const MODEL_TOPOLOGY_FILE = "model.json";
export const MODEL_WEIGHTS_FILE = "weights.bin";
/** The version's holdout rows, one JSON object a line: `{"set": "recent" | "original", "features": {...}, "label": ...}`. */
export const HOLDOUT_FILE = "holdout.jsonl";

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

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

/** One holdout set scored by the candidate and the serving (parent) version, with the selection metric. */
const HoldoutEvaluationSchema = Type.Object({
  rows: Type.Integer({ minimum: 0 }),
  /** The metric of `evaluation.metric`; null when the set is empty (or, for serving, without a parent). */
  candidate: NullableNumber,
  serving: NullableNumber,
  candidateMetrics: Type.Record(Type.String(), Type.Number()),
  servingMetrics: Type.Optional(Type.Record(Type.String(), Type.Number())),
});

/** The candidate against the version it would replace, on the same rows, for the operator's promotion gate. */
export const EvaluationSchema = Type.Object({
  metric: Type.String(),
  higherIsBetter: Type.Boolean(),
  /** Labelled feedback of the newest regime, stratified over time, never trained on. */
  recent: HoldoutEvaluationSchema,
  /** The first version's holdout, carried forward unchanged: the forgetting check. */
  original: HoldoutEvaluationSchema,
  /** Median per-row predict time over `runs` timed runs of one batch of `batchRows` rows, same backend. */
  latencyMsPerRow: Type.Object({ candidate: Type.Number(), serving: NullableNumber, batchRows: Type.Integer(), runs: Type.Integer() }),
});

/** One configuration of the bounded search and how it scored on the validation split. */
export const TrialSchema = Type.Object({
  name: Type.String(),
  hiddenUnits: Type.Array(Type.Integer()),
  learningRate: Type.Number(),
  l2: Type.Number(),
  /** Started from the parent version's weights (fine-tune) rather than fresh ones. */
  fromParent: Type.Boolean(),
  epochsRun: Type.Integer(),
  bestEpoch: Type.Integer(),
  /** The selection metric on the validation split of the training rows (never a holdout). */
  validation: NullableNumber,
  selected: Type.Boolean(),
});

/** Temperature scaling of the class probabilities (src/training/calibration.ts), and the calibration error it leaves. */
export const ProbabilityCalibrationSchema = Type.Object({
  method: Type.Literal("temperature"),
  temperature: Type.Number({ exclusiveMinimum: 0 }),
  /** Rows fitted on: the holdout (never selected on), or the validation rows when the holdout has under 20 rows. */
  set: Type.Union([Type.Literal("holdout"), Type.Literal("validation")]),
  rows: Type.Integer({ minimum: 0 }),
  bins: Type.Integer({ minimum: 1 }),
  eceBefore: Type.Number({ minimum: 0, maximum: 1 }),
  eceAfter: Type.Number({ minimum: 0, maximum: 1 }),
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
  /** Classification: how the sidecar calibrates probabilities before estimating accuracy without labels (absent: no estimate). */
  probabilityCalibration: Type.Optional(ProbabilityCalibrationSchema),
  /**
   * Multivariate drift: the training rows' PCA (encoder, scaler, components for ~65 % of the variance) and the
   * band of their windows' mean reconstruction error; absent for versions trained before it or with one feature.
   */
  multivariateReference: Type.Optional(PcaReferenceSchema),
  /** Regression: the target was standardised for training; outputs are scaled back. */
  target: Type.Optional(Type.Object({ mean: Type.Number(), std: Type.Number() })),
  /** Regression: how the sidecar estimates a window's MAE and RMSE without labels (absent: no estimate). */
  lossEstimator: Type.Optional(LossEstimatorSchema),
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
    /** Sidecar log roots read with --feedback, and the labelled rows they gave (after --feedback-since / --max-feedback-rows). */
    feedbackSources: Type.Optional(Type.Array(Type.String())),
    feedbackRows: Type.Optional(Type.Integer()),
    feedbackSince: Type.Optional(Type.String()),
    /** holdoutRows split into the recent (feedback) and original (forgetting check) holdouts. */
    recentHoldoutRows: Type.Optional(Type.Integer()),
    originalHoldoutRows: Type.Optional(Type.Integer()),
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
  /** Written by a retraining Job for the operator to gate: never the "latest" version until promoted. */
  candidate: Type.Optional(Type.Boolean()),
  /** Every trial this process ran (one shard of the search when sharded); `training` describes the selected one. */
  trials: Type.Optional(Type.Array(TrialSchema)),
  /** Which share of the trials this version's process ran (`--trial-shards` > 1). */
  shard: Type.Optional(Type.Object({ index: Type.Integer({ minimum: 0 }), count: Type.Integer({ minimum: 1 }) })),
  evaluation: Type.Optional(EvaluationSchema),
});

export type ModelMetadata = Static<typeof ModelMetadataSchema>;
export type Evaluation = Static<typeof EvaluationSchema>;
export type Trial = Static<typeof TrialSchema>;
export type ProbabilityCalibration = Static<typeof ProbabilityCalibrationSchema>;

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
