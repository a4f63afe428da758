// Probability calibration at train time: temperature scaling fitted on labelled rows the model was not chosen on
// (the trainer passes the holdout), so the sidecar can estimate accuracy from confidence (CBPE) on rows nobody
// labels. One parameter: it cannot overfit a few hundred rows, it treats binary and multiclass alike, and it keeps
// every row's argmax (labels, accuracy and F1 do not change).
import {
  ECE_BINS,
  PROBABILITY_FLOOR,
  expectedCalibrationError,
  temperatureScaled,
  type ProbabilityCalibrationJSON,
} from "../monitoring/confidence-estimate.js";

/** Temperatures searched: beyond them a model is either uniform or one-hot, and the fit is degenerate. */
export const MIN_TEMPERATURE = 0.05;
export const MAX_TEMPERATURE = 20;
const GOLDEN_STEPS = 120;

/** Mean negative log-likelihood of the true classes after scaling by `temperature`. */
export function temperatureLogLoss(probabilities: ArrayLike<number>, classes: number, labels: ArrayLike<number>, temperature: number): number {
  const rows = labels.length;
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const row = Array.prototype.slice.call(probabilities, r * classes, (r + 1) * classes) as number[];
    loss -= Math.log(Math.max(temperatureScaled(row, temperature)[labels[r]!]!, PROBABILITY_FLOOR));
  }
  return loss / Math.max(1, rows);
}

/**
 * The temperature minimising the log-loss of `labels`, by golden-section search over log T in
 * [MIN_TEMPERATURE, MAX_TEMPERATURE] (the loss is convex in 1/T, so unimodal in log T).
 */
export function fitTemperature(probabilities: ArrayLike<number>, classes: number, labels: ArrayLike<number>): number {
  if (labels.length === 0) return 1;
  const loss = (logT: number) => temperatureLogLoss(probabilities, classes, labels, Math.exp(logT));
  const ratio = (Math.sqrt(5) - 1) / 2;
  let [a, b] = [Math.log(MIN_TEMPERATURE), Math.log(MAX_TEMPERATURE)];
  let c = b - ratio * (b - a);
  let d = a + ratio * (b - a);
  let [fc, fd] = [loss(c), loss(d)];
  for (let i = 0; i < GOLDEN_STEPS && b - a > 1e-10; i++) {
    if (fc <= fd) {
      [b, d, fd] = [d, c, fc];
      c = b - ratio * (b - a);
      fc = loss(c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + ratio * (b - a);
      fd = loss(d);
    }
  }
  return Math.exp((a + b) / 2);
}

/** The calibration stored in metadata.json: the fitted temperature and the ECE of the rows before and after it. */
export function calibrateProbabilities(probabilities: ArrayLike<number>, classes: number, labels: ArrayLike<number>): ProbabilityCalibrationJSON {
  const temperature = fitTemperature(probabilities, classes, labels);
  const calibrated = new Float64Array(labels.length * classes);
  for (let r = 0; r < labels.length; r++) {
    const row = Array.prototype.slice.call(probabilities, r * classes, (r + 1) * classes) as number[];
    calibrated.set(temperatureScaled(row, temperature), r * classes);
  }
  return {
    method: "temperature",
    temperature,
    rows: labels.length,
    bins: ECE_BINS,
    eceBefore: expectedCalibrationError(probabilities, classes, labels),
    eceAfter: expectedCalibrationError(calibrated, classes, labels),
  };
}
