// Fits the multivariate drift reference on the training rows (src/monitoring/multivariate-drift.ts): frequency-encode
// categoricals, standardise, eigendecompose the covariance (ml-matrix) and keep the components explaining
// PCA_VARIANCE_TARGET of the variance, as scikit-learn's PCA(n_components=0.65) does; then measure how much the
// mean error of reference windows varies, the band a live window is judged by.
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { CALIBRATION_WINDOW_SIZES, DEFAULT_CALIBRATION_SEED } from "../monitoring/calibration.js";
import {
  BAND_STDS,
  MAX_FREQUENCY_CATEGORIES,
  MAX_PCA_FEATURES,
  PCA_VARIANCE_TARGET,
  PcaReconstruction,
  encodeValue,
  type EncodedFeature,
  type PcaReferenceJSON,
} from "../monitoring/multivariate-drift.js";
import { seededRandom } from "../monitoring/seeded-random.js";
import type { ReferenceColumn } from "./reference.js";

/** Reference windows drawn per window size for the band's std (its relative error is about 1/√(2·draws), 2 %). */
export const BAND_DRAWS = 1000;

export interface PcaFitOptions {
  varianceTarget?: number;
  windowSizes?: readonly number[];
  seed?: number;
}

function isMissingValue(v: unknown): boolean {
  return v === undefined || v === null || v === "";
}

/** Frequency encoding of one categorical column: each of its most frequent categories' share of all rows. */
function frequencyEncoder(column: ReferenceColumn): EncodedFeature {
  const counts = new Map<string, number>();
  for (const v of column.values) if (!isMissingValue(v)) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
  const kept = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, MAX_FREQUENCY_CATEGORIES);
  const rows = column.values.length;
  const frequencies: Record<string, number> = {};
  for (const [c, n] of kept) frequencies[c] = n / rows;
  return { name: column.name, type: "categorical", frequencies, missing: kept.length > 0 ? kept[0]![1] / rows : 0 };
}

/**
 * Components for the smallest k whose cumulative explained variance exceeds `target` (scikit-learn's rule for a
 * fractional n_components), from the eigendecomposition of the scaled rows' covariance.
 */
function principalComponents(scaled: Float64Array, rows: number, d: number, target: number, keep?: number): { components: number[][]; explained: number } {
  const cov = new Matrix(d, d);
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += scaled[r * d + a]! * scaled[r * d + b]!;
      cov.set(a, b, s / (rows - 1));
      cov.set(b, a, s / (rows - 1));
    }
  const evd = new EigenvalueDecomposition(cov, { assumeSymmetric: true });
  const values = evd.realEigenvalues.map((v) => Math.max(0, v));
  const order = values.map((_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const total = values.reduce((s, v) => s + v, 0);
  if (!(total > 0)) return { components: [Array.from({ length: d }, (_, j) => (j === 0 ? 1 : 0))], explained: 1 };
  let k = 0;
  let cumulative = 0;
  while (k < d && (keep === undefined ? cumulative <= target : k < keep)) cumulative += values[order[k++]!]! / total;
  const vectors = evd.eigenvectorMatrix;
  return { components: order.slice(0, k).map((i) => vectors.getColumn(i)), explained: Math.min(1, cumulative) };
}

/**
 * Std (ddof 0, as NannyML's) of the mean error of `draws` windows of `size` rows drawn with replacement: live
 * windows come from the population, not from this finite reference (drawing without replacement from a reference
 * of 2·size rows understated the std by 30% and cars' calm windows left the band).
 */
function windowMeanStd(errors: Float64Array, size: number, draws: number, random: () => number): number {
  const means: number[] = [];
  for (let k = 0; k < draws; k++) {
    let s = 0;
    for (let i = 0; i < size; i++) s += errors[Math.floor(random() * errors.length)]!;
    means.push(s / size);
  }
  const mean = means.reduce((s, m) => s + m, 0) / means.length;
  return Math.sqrt(means.reduce((s, m) => s + (m - mean) ** 2, 0) / means.length);
}

/**
 * The encoder, scaler and components fitted on `columns` (no band yet); `keep` fixes the number of components and
 * `encoders` the categorical frequencies.
 */
function fitReconstruction(
  columns: readonly ReferenceColumn[],
  varianceTarget: number,
  keep?: number,
  encoders?: readonly EncodedFeature[],
): PcaReconstruction {
  const rows = columns[0]!.values.length;
  const d = columns.length;
  const features: EncodedFeature[] = encoders
    ? [...encoders]
    : columns.map((c) => (c.type === "numeric" ? { name: c.name, type: "numeric" } : frequencyEncoder(c)));
  // Missing numerics are imputed with the mean of the present values, so the mean is taken before encoding.
  const center = columns.map((c, j) => {
    if (c.type === "categorical") return 0;
    let [sum, n] = [0, 0];
    for (const v of c.values) {
      const x = encodeValue(features[j]!, v, NaN);
      if (!Number.isNaN(x)) [sum, n] = [sum + x, n + 1];
    }
    return n > 0 ? sum / n : 0;
  });
  const encoded = new Float64Array(rows * d);
  columns.forEach((c, j) => c.values.forEach((v, r) => (encoded[r * d + j] = encodeValue(features[j]!, v, center[j]!))));
  const scale = new Array<number>(d);
  for (let j = 0; j < d; j++) {
    let [sum, sq] = [0, 0];
    for (let r = 0; r < rows; r++) sum += encoded[r * d + j]!;
    center[j] = sum / rows;
    for (let r = 0; r < rows; r++) sq += (encoded[r * d + j]! - center[j]!) ** 2;
    const std = Math.sqrt(sq / rows);
    // StandardScaler's rule: a constant column is centred, not divided by zero.
    scale[j] = std > 1e-12 * Math.max(1, Math.abs(center[j]!)) ? std : 1;
  }
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) encoded[r * d + j] = (encoded[r * d + j]! - center[j]!) / scale[j]!;
  const { components, explained } = principalComponents(encoded, rows, d, varianceTarget, keep);
  return new PcaReconstruction({
    method: "pca-reconstruction",
    features,
    center,
    scale,
    components,
    varianceTarget,
    explainedVariance: explained,
    rows,
    band: { mean: 0, windowSizes: [1], std: [0], stds: BAND_STDS },
  });
}

/**
 * The multivariate reference of the training rows' raw values, or undefined when it cannot say anything: under
 * two features (nothing to correlate), more than MAX_PCA_FEATURES, or under 20 rows.
 *
 * The stored PCA is fitted on every row; the band comes from errors of rows a PCA did not see (two-fold: each
 * random half measured by the PCA of the other half). In-sample errors are smaller than live ones (the components
 * fit those very rows): cars' 200-row reference put calm windows above an in-sample band. The halves keep the
 * whole reference's encoder and number of components, so only the PCA is measured out of sample.
 */
export function fitPcaReference(columns: readonly ReferenceColumn[], options: PcaFitOptions = {}): PcaReferenceJSON | undefined {
  const rows = columns[0]?.values.length ?? 0;
  const d = columns.length;
  if (d < 2 || d > MAX_PCA_FEATURES || rows < 20) return undefined;
  const varianceTarget = options.varianceTarget ?? PCA_VARIANCE_TARGET;
  const fitted = fitReconstruction(columns, varianceTarget);
  const random = seededRandom(options.seed ?? DEFAULT_CALIBRATION_SEED);
  const order = Array.from({ length: rows }, (_, i) => i);
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const halves = [order.slice(0, rows >> 1), order.slice(rows >> 1)];
  const errors = new Float64Array(rows);
  halves.forEach((held, k) => {
    const fold = fitReconstruction(
      columns.map((c) => ({ ...c, values: halves[1 - k]!.map((r) => c.values[r]) })),
      varianceTarget,
      // As many components as the stored PCA: near the 65 % cut a half may pick one more, and fit better than it.
      fitted.json.components.length,
      // And its category frequencies: a half's encoder misses the rarer categories the whole reference has, and
      // flights' 195 airports then put the band above calm windows.
      fitted.features,
    );
    for (const r of held) errors[r] = fold.errorOf(columns.map((c) => c.values[r]));
  });
  const mean = errors.reduce((s, e) => s + e, 0) / rows;
  const requested = options.windowSizes ?? CALIBRATION_WINDOW_SIZES;
  const windowSizes = requested.length > 0 ? [...requested] : [Math.max(1, rows >> 1)];
  const std = windowSizes.map((n) => windowMeanStd(errors, n, BAND_DRAWS, random));
  return { ...fitted.json, band: { mean, windowSizes, std, stds: BAND_STDS } };
}
