// One forward pass over encoded rows, decoded into what callers see: labels + probabilities, or values.
import type { LayersModel, Tensor } from "@tensorflow/tfjs";
import type { TfModule } from "./backend.js";

export interface PredictionHead {
  task: "classification" | "regression";
  classes?: string[];
  target?: { mean: number; std: number };
}

export interface Predictions {
  rows: number;
  /** Classification: predicted class per row. */
  labels?: string[];
  /** Classification: row-major [rows, classes] softmax output. */
  probabilities?: Float32Array;
  /** Regression: predicted value per row, in the label's units. */
  values?: number[];
}

export function predict(tf: TfModule, model: LayersModel, head: PredictionHead, encoded: Float32Array, rows: number): Predictions {
  const width = rows === 0 ? 0 : encoded.length / rows;
  const output = tf.tidy(() => (model.predict(tf.tensor2d(encoded, [rows, width])) as Tensor).dataSync() as Float32Array);
  if (head.task === "classification") {
    const classes = head.classes!;
    const k = classes.length;
    const labels: string[] = new Array<string>(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (output[r * k + c]! > output[r * k + best]!) best = c;
      labels[r] = classes[best]!;
    }
    return { rows, labels, probabilities: output };
  }
  const { mean, std } = head.target ?? { mean: 0, std: 1 };
  return { rows, values: Array.from(output, (v) => v * std + mean) };
}

/** The prediction of one row as the request log and feedback join store it. */
export function predictionAt(p: Predictions, row: number): string | number {
  return p.labels ? p.labels[row]! : p.values![row]!;
}
