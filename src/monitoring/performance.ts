// Labelled performance per window: mergeable accumulators for classification and regression feedback.
// Empty accumulators give null metrics, never NaN.

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Actual occurrences of the label. */
  support: number;
}

export interface ClassificationMetrics {
  count: number;
  accuracy: number | null;
  macro: { precision: number; recall: number; f1: number } | null;
  weighted: { precision: number; recall: number; f1: number } | null;
  perClass: ClassMetrics[];
  /** matrix[i][j] = rows whose actual label is labels[i] and predicted label labels[j]. */
  confusion: { labels: string[]; matrix: number[][] };
}

export interface ConfusionMatrixJSON {
  /** "actual\u0000predicted" → count. */
  cells: Record<string, number>;
}

const SEP = "\u0000";

/** Counts (actual, predicted) label pairs; merges by adding counts. */
export class ConfusionMatrix {
  private readonly cells = new Map<string, number>();
  count = 0;

  add(actual: string, predicted: string, times = 1): void {
    const key = `${actual}${SEP}${predicted}`;
    this.cells.set(key, (this.cells.get(key) ?? 0) + times);
    this.count += times;
  }

  merge(other: ConfusionMatrix): ConfusionMatrix {
    const out = new ConfusionMatrix();
    for (const m of [this, other]) {
      for (const [key, n] of m.cells) {
        const [a, p] = key.split(SEP) as [string, string];
        out.add(a, p, n);
      }
    }
    return out;
  }

  /**
   * sklearn's definitions over the labels seen as actual or predicted; a label never predicted has
   * precision 0 (zero_division=0), a label never actual has recall 0 and support 0.
   */
  metrics(): ClassificationMetrics {
    const labels = new Set<string>();
    for (const key of this.cells.keys()) for (const l of key.split(SEP)) labels.add(l);
    const sorted = [...labels].sort();
    const index = new Map(sorted.map((l, i) => [l, i]));
    const matrix = sorted.map(() => sorted.map(() => 0));
    for (const [key, n] of this.cells) {
      const [a, p] = key.split(SEP) as [string, string];
      matrix[index.get(a)!]![index.get(p)!]! += n;
    }
    const confusion = { labels: sorted, matrix };
    if (this.count === 0) return { count: 0, accuracy: null, macro: null, weighted: null, perClass: [], confusion };
    let correct = 0;
    const perClass = sorted.map((label, i) => {
      const tp = matrix[i]![i]!;
      correct += tp;
      const support = matrix[i]!.reduce((s, v) => s + v, 0);
      const predicted = matrix.reduce((s, row) => s + row[i]!, 0);
      const precision = predicted > 0 ? tp / predicted : 0;
      const recall = support > 0 ? tp / support : 0;
      const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
      return { label, precision, recall, f1, support };
    });
    const average = (weight: (c: ClassMetrics) => number) => {
      const total = perClass.reduce((s, c) => s + weight(c), 0);
      const avg = (pick: (c: ClassMetrics) => number) => (total > 0 ? perClass.reduce((s, c) => s + weight(c) * pick(c), 0) / total : 0);
      return { precision: avg((c) => c.precision), recall: avg((c) => c.recall), f1: avg((c) => c.f1) };
    };
    return { count: this.count, accuracy: correct / this.count, macro: average(() => 1), weighted: average((c) => c.support), perClass, confusion };
  }

  toJSON(): ConfusionMatrixJSON {
    return { cells: Object.fromEntries(this.cells) };
  }

  static fromJSON(json: ConfusionMatrixJSON): ConfusionMatrix {
    const out = new ConfusionMatrix();
    for (const [key, n] of Object.entries(json.cells)) {
      const [a, p] = key.split(SEP);
      if (a === undefined || p === undefined || !Number.isInteger(n) || n < 0) throw new RangeError(`confusion matrix cell "${key}" is malformed`);
      out.add(a, p, n);
    }
    return out;
  }
}

export interface RegressionMetrics {
  count: number;
  mae: number | null;
  rmse: number | null;
  /** 1 − SSE/SST; null below two rows or when the actual values are constant (SST at float-noise level). */
  r2: number | null;
}

export interface RegressionAccumulatorJSON {
  count: number;
  sumAbsError: number;
  sumSquaredError: number;
  meanActual: number;
  m2Actual: number;
}

/** MAE / RMSE / R² from running sums (Chan's merge for the actuals' variance). */
export class RegressionAccumulator {
  count = 0;
  sumAbsError = 0;
  sumSquaredError = 0;
  meanActual = 0;
  m2Actual = 0;

  add(actual: number, predicted: number): void {
    if (!Number.isFinite(actual) || !Number.isFinite(predicted)) return;
    const error = predicted - actual;
    this.count++;
    this.sumAbsError += Math.abs(error);
    this.sumSquaredError += error * error;
    const delta = actual - this.meanActual;
    this.meanActual += delta / this.count;
    this.m2Actual += delta * (actual - this.meanActual);
  }

  merge(other: RegressionAccumulator): RegressionAccumulator {
    const out = new RegressionAccumulator();
    out.count = this.count + other.count;
    out.sumAbsError = this.sumAbsError + other.sumAbsError;
    out.sumSquaredError = this.sumSquaredError + other.sumSquaredError;
    if (out.count > 0) {
      const delta = other.meanActual - this.meanActual;
      out.meanActual = this.meanActual + (delta * other.count) / out.count;
      out.m2Actual = this.m2Actual + other.m2Actual + (delta * delta * this.count * other.count) / out.count;
    }
    return out;
  }

  metrics(): RegressionMetrics {
    if (this.count === 0) return { count: 0, mae: null, rmse: null, r2: null };
    // Actuals equal up to rounding leave an SST of float noise (a late label merged into a window can do it):
    // R² is undefined there, not a huge negative number or −∞.
    const sstNoise = this.count * Number.EPSILON * Math.max(1, this.meanActual * this.meanActual);
    const r2 = this.count >= 2 && this.m2Actual > sstNoise ? 1 - this.sumSquaredError / this.m2Actual : null;
    return { count: this.count, mae: this.sumAbsError / this.count, rmse: Math.sqrt(this.sumSquaredError / this.count), r2 };
  }

  toJSON(): RegressionAccumulatorJSON {
    return { count: this.count, sumAbsError: this.sumAbsError, sumSquaredError: this.sumSquaredError, meanActual: this.meanActual, m2Actual: this.m2Actual };
  }

  static fromJSON(json: RegressionAccumulatorJSON): RegressionAccumulator {
    const out = new RegressionAccumulator();
    Object.assign(out, json);
    return out;
  }
}
