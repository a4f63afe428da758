// `ballast train` end to end: load data, fit or inherit preprocessing, train with early stopping,
// evaluate on a holdout (and the parent on the same holdout), write an immutable model version.
import type { LayersModel, Scalar, Tensor } from "@tensorflow/tfjs";
import { loadBackend, type BackendPreference, type TfModule } from "../runtime/backend.js";
import { encodeColumns, encodedWidth, type FeatureSpec } from "../runtime/features.js";
import { METADATA_FORMAT, readMetadata, type ModelMetadata } from "../runtime/metadata.js";
import { loadModel, serializeModel } from "../runtime/model-files.js";
import { predict, predictionAt, type PredictionHead } from "../runtime/predict.js";
import { METADATA_FILE, checkName, nextVersionName, resolveVersion, type ModelStore } from "../runtime/store.js";
import { DataError, loadTable } from "./data.js";
import { evaluatePredictions } from "./evaluate.js";
import { buildMlp, compileForTask } from "./mlp.js";
import { chooseFeatures, encodeLabels, fitFeatures, fitLabel, labelledRows, type LabelEncoding, type Task } from "./preprocess.js";
import { buildReferenceProfile } from "./reference.js";
import { permutation, seededRandom, splitIndices } from "./split.js";

export interface TrainOptions {
  data: string[];
  store: ModelStore;
  model: string;
  label?: string;
  task?: Task;
  features?: string[];
  /** Name of the new version; default the next `v<N>`. */
  version?: string;
  fromVersion?: string;
  epochs: number;
  holdout: number;
  validation: number;
  seed: number;
  batchSize: number;
  learningRate: number;
  hiddenUnits: number[];
  l2: number;
  patience: number;
  backend: BackendPreference;
  pvcMountRoot?: string;
  maxFeedbackRows?: number;
  dataFormat?: "csv" | "jsonl" | "json";
  onEpoch?: (p: EpochProgress) => void;
  /** Told which tfjs backend was chosen (and why others were skipped), before any data is read. */
  onBackend?: (b: { backend: string; provider: string; skipped: string[] }) => void;
}

export const DEFAULT_TRAIN_OPTIONS = {
  epochs: 30,
  holdout: 0.2,
  validation: 0.1,
  seed: 42,
  batchSize: 64,
  learningRate: 0.01,
  hiddenUnits: [32, 16],
  l2: 1e-4,
  patience: 5,
} as const;

/** Rows below which a holdout / validation split says nothing. */
const MIN_ROWS = 20;

export interface EpochProgress {
  epoch: number;
  epochs: number;
  loss: number;
  valLoss: number;
  best: boolean;
  ms: number;
}

export interface TrainResult {
  metadata: ModelMetadata;
  backend: string;
  stoppedEarly: boolean;
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = Date.now();
  checkName("model", options.model);
  if (options.version !== undefined) checkName("version", options.version);
  if (options.store.readOnly) throw new DataError(`store ${options.store.uri} is read-only; train needs a file:// or pvc:// store`);
  const { tf, backend, provider, skipped } = await loadBackend(options.backend);
  options.onBackend?.({ backend, provider, skipped });

  const table = await loadTable(options.data, { pvcMountRoot: options.pvcMountRoot, maxFeedbackRows: options.maxFeedbackRows, format: options.dataFormat });
  let parent: { meta: ModelMetadata; version: string } | undefined;
  if (options.fromVersion !== undefined) {
    const version = await resolveVersion(options.store, options.model, options.fromVersion);
    parent = { meta: await readMetadata(options.store, options.model, version), version };
  }
  const labelName = options.label ?? parent?.meta.label ?? table.logLabel;
  if (!labelName) throw new DataError("--label is required (no parent version or sidecar log names the label column)");
  const task: Task = options.task ?? parent?.meta.task ?? table.logTask ?? "classification";
  if (parent && parent.meta.task !== task) throw new DataError(`--task ${task} differs from parent version's task ${parent.meta.task}`);

  let features: FeatureSpec[];
  let labels: LabelEncoding;
  if (parent) {
    // Fine-tuning keeps the parent's preprocessing so the input layer and class order stay the same.
    features = parent.meta.features;
    for (const f of features) chooseFeatures(table, labelName, [f.name]);
    labels = { task, name: labelName, classes: parent.meta.classes, target: parent.meta.target };
  } else {
    const rowsForFit = { ...table, rows: labelledRows(table, labelName) };
    features = fitFeatures(rowsForFit, chooseFeatures(table, labelName, options.features));
    labels = fitLabel(rowsForFit, labelName, task);
  }
  const rows = labelledRows(table, labelName);
  if (rows.length < MIN_ROWS) throw new DataError(`only ${rows.length} labelled rows in ${options.data.join(", ")}; need at least ${MIN_ROWS}`);

  const columns = features.map((f) => rows.map((r) => r[f.name]));
  const x = encodeColumns(features, columns, rows.length, (f, r) => `row ${r + 1} column "${f}"`);
  const y = encodeLabels(rows, labels);
  const width = encodedWidth(features);
  const random = seededRandom(options.seed);
  const split = splitIndices(rows.length, options.holdout, options.validation, random);
  if (split.train.length === 0) throw new DataError(`no training rows left after holdout ${options.holdout} and validation ${options.validation}`);
  const head: PredictionHead = { task, classes: labels.classes, target: labels.target };

  const holdoutX = gather(x, width, split.holdout);
  const holdoutY = gather(y, 1, split.holdout);
  let parentHoldoutMetrics: Record<string, number> | undefined;
  let model: LayersModel;
  if (parent) {
    model = await loadModel(tf, options.store, options.model, parent.version);
    if (split.holdout.length > 0) parentHoldoutMetrics = evaluateOn(tf, model, head, holdoutX, holdoutY, split.holdout.length);
  } else {
    model = buildMlp(tf, {
      inputWidth: width,
      hiddenUnits: options.hiddenUnits,
      outputs: task === "classification" ? labels.classes!.length : 1,
      task,
      l2: options.l2,
      seed: options.seed,
    });
  }
  compileForTask(tf, model, task, options.learningRate);

  const fit = await fitWithEarlyStopping(tf, model, x, y, width, split.train, split.validation, options, random);
  const holdoutMetrics =
    split.holdout.length > 0 ? evaluateOn(tf, model, head, holdoutX, holdoutY, split.holdout.length) : {};

  const trainX = gather(x, width, split.train);
  const trainPredictions = predict(tf, model, head, trainX, split.train.length);
  const referenceProfile = buildReferenceProfile(
    features.map((f) => ({ name: f.name, type: f.type, values: split.train.map((i) => rows[i]![f.name]) })),
    { task, values: split.train.map((_, i) => predictionAt(trainPredictions, i)) },
  );

  const version = options.version ?? (await nextVersionName(options.store, options.model));
  const metadata: ModelMetadata = {
    format: METADATA_FORMAT,
    model: options.model,
    version,
    task,
    label: labelName,
    ...(labels.classes ? { classes: labels.classes } : {}),
    ...(labels.target ? { target: labels.target } : {}),
    features,
    referenceProfile,
    holdoutMetrics,
    ...(parentHoldoutMetrics ? { parentHoldoutMetrics } : {}),
    parentVersion: parent?.version ?? null,
    dataWindow: {
      sources: table.sources,
      rows: rows.length,
      trainRows: split.train.length,
      validationRows: split.validation.length,
      holdoutRows: split.holdout.length,
      ...(table.from ? { from: table.from } : {}),
      ...(table.to ? { to: table.to } : {}),
    },
    createdAt: new Date().toISOString(),
    backend,
    training: {
      seed: options.seed,
      epochs: options.epochs,
      epochsRun: fit.epochsRun,
      bestEpoch: fit.bestEpoch,
      hiddenUnits: parent ? parent.meta.training.hiddenUnits : options.hiddenUnits,
      learningRate: options.learningRate,
      batchSize: options.batchSize,
      l2: options.l2,
      patience: options.patience,
      durationMs: Date.now() - started,
    },
  };
  const files = await serializeModel(tf, model);
  files.set(METADATA_FILE, JSON.stringify(metadata, null, 2) + "\n");
  await options.store.writeVersion(options.model, version, files);
  model.dispose();
  return { metadata, backend, stoppedEarly: fit.epochsRun < options.epochs };
}

function evaluateOn(tf: TfModule, model: LayersModel, head: PredictionHead, x: Float32Array, y: Float32Array, n: number): Record<string, number> {
  const p = predict(tf, model, head, x, n);
  if (head.task === "classification") {
    const truth = Array.from(y, (k) => head.classes![k]!);
    return evaluatePredictions({ task: "classification", truth, predicted: p.labels! });
  }
  const { mean, std } = head.target!;
  return evaluatePredictions({ task: "regression", truth: Array.from(y, (v) => v * std + mean), predicted: p.values! });
}

async function fitWithEarlyStopping(
  tf: TfModule,
  model: LayersModel,
  x: Float32Array,
  y: Float32Array,
  width: number,
  trainIdx: number[],
  valIdx: number[],
  options: TrainOptions,
  random: () => number,
): Promise<{ epochsRun: number; bestEpoch: number }> {
  const valX = tf.tensor2d(gather(x, width, valIdx), [valIdx.length, width]);
  const valY = tf.tensor1d(gather(y, 1, valIdx));
  let best = Infinity;
  let bestEpoch = 0;
  let bestWeights: Tensor[] | undefined;
  let epoch = 0;
  try {
    while (epoch < options.epochs) {
      epoch++;
      const t0 = Date.now();
      const order = permutation(trainIdx.length, random);
      let lossSum = 0;
      let batches = 0;
      for (let start = 0; start < order.length; start += options.batchSize) {
        const batch = Array.from(order.subarray(start, start + options.batchSize), (k) => trainIdx[k]!);
        const bx = tf.tensor2d(gather(x, width, batch), [batch.length, width]);
        const by = tf.tensor1d(gather(y, 1, batch));
        lossSum += Number(await model.trainOnBatch(bx, by));
        batches++;
        tf.dispose([bx, by]);
      }
      const valLossTensor = model.evaluate(valX, valY, { batchSize: 1024 }) as Scalar;
      const valLoss = (await valLossTensor.data())[0]!;
      valLossTensor.dispose();
      const improved = valLoss < best - 1e-6;
      if (improved) {
        best = valLoss;
        bestEpoch = epoch;
        tf.dispose(bestWeights);
        bestWeights = model.getWeights().map((w) => w.clone());
      }
      options.onEpoch?.({ epoch, epochs: options.epochs, loss: lossSum / batches, valLoss, best: improved, ms: Date.now() - t0 });
      if (epoch - bestEpoch >= options.patience) break;
    }
    // Early stopping restores the weights of the best validation epoch, not the last one.
    if (bestWeights) model.setWeights(bestWeights);
  } finally {
    tf.dispose([valX, valY, ...(bestWeights ?? [])]);
  }
  return { epochsRun: epoch, bestEpoch };
}

function gather(source: Float32Array, width: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * width);
  indices.forEach((i, k) => out.set(source.subarray(i * width, (i + 1) * width), k * width));
  return out;
}
