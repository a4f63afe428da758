// Confidence-based performance estimation (CBPE): a classifier's quality on rows nobody labelled, from its own
// calibrated class probabilities. If p is calibrated, the row's true class is i with probability p[i], so the
// expected confusion matrix of a window is the sum of each row's probabilities in its predicted column; expected
// accuracy is its trace over the rows (the mean of the top probability). Pure sums: windows and replicas merge exactly.

/** Probabilities below this are taken as this before the log: a float32 softmax underflows to 0 for a confident row. */
export const PROBABILITY_FLOOR = 1e-12;
/** Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15). */
export const ECE_BINS = 15;

/** What `ballast train` stores in metadata.json: the fitted map and how calibrated the validation rows were before and after. */
export interface ProbabilityCalibrationJSON {
  method: "temperature";
  /** Probabilities are rescaled as softmax(log p / temperature); > 1 softens over-confident outputs. */
  temperature: number;
  /** Labelled rows the temperature was fitted and the errors measured on. */
  rows: number;
  bins: number;
  /** Expected calibration error (top-label, `bins` equal-width bins) of the raw and the calibrated probabilities. */
  eceBefore: number;
  eceAfter: number;
}

/** softmax(log p / T) of one row: temperature scaling applied to probabilities (log p equals the logits up to a constant). */
export function temperatureScaled(probabilities: ArrayLike<number>, temperature: number): Float64Array {
  const k = probabilities.length;
  const out = new Float64Array(k);
  let max = -Infinity;
  for (let c = 0; c < k; c++) {
    out[c] = Math.log(Math.max(probabilities[c]!, PROBABILITY_FLOOR)) / temperature;
    if (out[c]! > max) max = out[c]!;
  }
  let sum = 0;
  for (let c = 0; c < k; c++) {
    out[c] = Math.exp(out[c]! - max);
    sum += out[c]!;
  }
  for (let c = 0; c < k; c++) out[c] = out[c]! / sum;
  return out;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
  return best;
}

/**
 * Top-label expected calibration error: rows binned by their top probability into `bins` equal-width bins
 * ((b/M, (b+1)/M]), then Σ (rows in bin / rows) · |accuracy in bin − mean confidence in bin|.
 * `probabilities` is row-major [rows, classes]; `labels` the true class index per row.
 */
export function expectedCalibrationError(probabilities: ArrayLike<number>, classes: number, labels: ArrayLike<number>, bins = ECE_BINS): number {
  const rows = labels.length;
  if (rows === 0) return 0;
  const count = new Float64Array(bins);
  const correct = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  for (let r = 0; r < rows; r++) {
    const row = Array.prototype.slice.call(probabilities, r * classes, (r + 1) * classes) as number[];
    const top = argmax(row);
    const conf = row[top]!;
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    count[b]!++;
    confidence[b]! += conf;
    if (top === labels[r]) correct[b]!++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]! > 0) ece += Math.abs(correct[b]! - confidence[b]!) / rows;
  return ece;
}

export interface ConfidenceEstimateJSON {
  /** Class names in the model's output order. */
  classes: string[];
  /** Rows whose probabilities were seen. */
  rows: number;
  /** expected[i][j]: Σ over rows predicted classes[j] of their calibrated probability of classes[i] (the expected confusion matrix). */
  expected: number[][];
}

/** Estimated metrics of a window: accuracy and macro F1 from the expected confusion matrix. */
export interface EstimatedMetrics {
  rows: number;
  accuracy: number;
  f1: number;
}

/** Accumulates calibrated probabilities into the expected confusion matrix of a window. */
export class ConfidenceEstimate {
  rows = 0;
  private readonly expected: Float64Array[];

  constructor(readonly classes: readonly string[]) {
    this.expected = classes.map(() => new Float64Array(classes.length));
  }

  /** One row's calibrated probabilities (in class order); its prediction is their argmax, as the server's. */
  add(calibrated: ArrayLike<number>): void {
    if (calibrated.length !== this.classes.length) throw new RangeError(`expected ${this.classes.length} probabilities, got ${calibrated.length}`);
    const predicted = argmax(calibrated);
    for (let i = 0; i < calibrated.length; i++) this.expected[i]![predicted]! += calibrated[i]!;
    this.rows++;
  }

  merge(other: ConfidenceEstimate): ConfidenceEstimate {
    if (other.classes.join("\u0000") !== this.classes.join("\u0000")) throw new RangeError("cannot merge estimates over different classes");
    const out = new ConfidenceEstimate(this.classes);
    out.rows = this.rows + other.rows;
    out.expected.forEach((row, i) => row.forEach((_, j) => (row[j] = this.expected[i]![j]! + other.expected[i]![j]!)));
    return out;
  }

  /**
   * Expected accuracy (trace / rows) and macro F1 over the classes with expected support or predictions, with
   * sklearn's zero-division 0; null before any row.
   */
  metrics(): EstimatedMetrics | null {
    if (this.rows === 0) return null;
    const k = this.classes.length;
    let trace = 0;
    let f1Sum = 0;
    let counted = 0;
    for (let c = 0; c < k; c++) {
      const tp = this.expected[c]![c]!;
      trace += tp;
      const actual = this.expected[c]!.reduce((s, v) => s + v, 0);
      let predicted = 0;
      for (let i = 0; i < k; i++) predicted += this.expected[i]![c]!;
      if (actual <= 0 && predicted <= 0) continue;
      const precision = predicted > 0 ? tp / predicted : 0;
      const recall = actual > 0 ? tp / actual : 0;
      f1Sum += precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
      counted++;
    }
    return { rows: this.rows, accuracy: trace / this.rows, f1: counted > 0 ? f1Sum / counted : 0 };
  }

  toJSON(): ConfidenceEstimateJSON {
    return { classes: [...this.classes], rows: this.rows, expected: this.expected.map((row) => Array.from(row)) };
  }

  static fromJSON(json: ConfidenceEstimateJSON): ConfidenceEstimate {
    const k = json.classes.length;
    if (json.expected.length !== k || json.expected.some((row) => row.length !== k))
      throw new RangeError(`expected must be a ${k}×${k} matrix, one row and column per class`);
    const out = new ConfidenceEstimate(json.classes);
    out.rows = json.rows;
    json.expected.forEach((row, i) => row.forEach((v, j) => (out.expected[i]![j] = v)));
    return out;
  }
}
