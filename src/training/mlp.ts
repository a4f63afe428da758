// The model family Ballast trains: a small dense network for tabular features (wasm has no conv backprop).
import type { LayersModel, Sequential } from "@tensorflow/tfjs";
import type { TfModule } from "../runtime/backend.js";
import type { Task } from "./preprocess.js";

export interface MlpShape {
  inputWidth: number;
  hiddenUnits: readonly number[];
  /** Classes for classification; 1 for regression. */
  outputs: number;
  task: Task;
  /** L2 penalty on every kernel: regularisation against overfitting small feedback sets. */
  l2: number;
  seed: number;
}

export function buildMlp(tf: TfModule, shape: MlpShape): Sequential {
  const model = tf.sequential();
  shape.hiddenUnits.forEach((units, i) => {
    model.add(
      tf.layers.dense({
        units,
        activation: "relu",
        ...(i === 0 ? { inputShape: [shape.inputWidth] } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: shape.seed + i }),
        kernelRegularizer: tf.regularizers.l2({ l2: shape.l2 }),
      }),
    );
  });
  model.add(
    tf.layers.dense({
      units: shape.outputs,
      activation: shape.task === "classification" ? "softmax" : "linear",
      ...(shape.hiddenUnits.length === 0 ? { inputShape: [shape.inputWidth] } : {}),
      kernelInitializer: tf.initializers.glorotUniform({ seed: shape.seed + shape.hiddenUnits.length }),
      kernelRegularizer: tf.regularizers.l2({ l2: shape.l2 }),
    }),
  );
  return model;
}

export function compileForTask(tf: TfModule, model: LayersModel, task: Task, learningRate: number): void {
  model.compile({
    optimizer: tf.train.adam(learningRate),
    loss: task === "classification" ? "sparseCategoricalCrossentropy" : "meanSquaredError",
  });
}
