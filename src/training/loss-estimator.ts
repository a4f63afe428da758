// Fits the regression loss estimator (direct loss estimation, src/monitoring/loss-estimate.ts) on rows the model
// did not train on: a one-hidden-layer network from the model's encoded inputs and its standardised prediction to
// the row's |error| and error² (in units of the target's std), so the sidecar can estimate a window's MAE and RMSE
// before any label arrives. Small on purpose: it is fitted on a few hundred rows and must not memorise them.
import type { TfModule } from "../runtime/backend.js";
import { LossEstimator, lossEstimatorInput, type LossEstimatorJSON } from "../monitoring/loss-estimate.js";

export const LOSS_ESTIMATOR_HIDDEN = 16;
const EPOCHS = 300;
const LEARNING_RATE = 0.01;
const L2 = 1e-3;
/** Below this many rows the estimator would fit noise: no estimate is stored. */
export const MIN_LOSS_ESTIMATOR_ROWS = 20;

export interface LossEstimatorRows {
  /** The model's encoded inputs, row-major [rows, width]. */
  x: Float32Array;
  width: number;
  /** The model's predictions and the true values, in the label's units. */
  predicted: readonly number[];
  truth: readonly number[];
  target: { mean: number; std: number };
  seed: number;
}

export async function fitLossEstimator(tf: TfModule, data: LossEstimatorRows): Promise<LossEstimatorJSON | undefined> {
  const rows = data.truth.length;
  if (rows < MIN_LOSS_ESTIMATOR_ROWS) return undefined;
  const inputs = data.width + 1;
  const std = data.target.std;
  const features = new Float32Array(rows * inputs);
  const targets = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    features.set(lossEstimatorInput(data.x.subarray(r * data.width, (r + 1) * data.width), data.predicted[r]!, data.target), r * inputs);
    const e = Math.abs(data.truth[r]! - data.predicted[r]!) / std;
    targets[r * 2] = e;
    targets[r * 2 + 1] = e * e;
  }
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      units: LOSS_ESTIMATOR_HIDDEN,
      activation: "relu",
      inputShape: [inputs],
      kernelInitializer: tf.initializers.glorotUniform({ seed: data.seed }),
      kernelRegularizer: tf.regularizers.l2({ l2: L2 }),
    }),
  );
  // Softplus: predicted errors are positive.
  model.add(tf.layers.dense({ units: 2, activation: "softplus", kernelInitializer: tf.initializers.glorotUniform({ seed: data.seed + 1 }) }));
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: "meanSquaredError" });
  const xs = tf.tensor2d(features, [rows, inputs]);
  const ys = tf.tensor2d(targets, [rows, 2]);
  try {
    await model.fit(xs, ys, { epochs: EPOCHS, batchSize: rows, shuffle: false, verbose: 0 });
    const [k1, b1, k2, b2] = model.getWeights().map((w) => w.arraySync());
    const json: LossEstimatorJSON = {
      method: "dle-mlp",
      inputs,
      hidden: { weights: k1 as number[][], bias: b1 as number[] },
      output: { weights: k2 as number[][], bias: b2 as number[] },
      scale: std,
      rows,
      realisedMae: 0,
      estimatedMae: 0,
    };
    const estimator = new LossEstimator(json);
    let [realised, estimated] = [0, 0];
    for (let r = 0; r < rows; r++) {
      realised += Math.abs(data.truth[r]! - data.predicted[r]!);
      estimated += estimator.predict(features.subarray(r * inputs, (r + 1) * inputs)).absError;
    }
    return { ...json, realisedMae: realised / rows, estimatedMae: estimated / rows };
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}
