// The names of drift methods, corrections and threshold modes: the one list the API schema (src/api), the
// monitoring engine (src/monitoring) and the CLI all build from. Constants only, so both leaves may import it.

/** Per-feature drift statistics. */
export const DRIFT_METHODS = ["psi", "ks", "jensenshannon", "wasserstein", "chisquare"] as const;
export type DriftMethod = (typeof DRIFT_METHODS)[number];

/** Fixed thresholds (Evidently's): p-value methods drift when p < 0.05, distances when ≥ 0.1. */
export const FIXED_DRIFT_THRESHOLDS: Readonly<Record<DriftMethod, number>> = {
  ks: 0.05,
  chisquare: 0.05,
  psi: 0.1,
  jensenshannon: 0.1,
  wasserstein: 0.1,
};

/** What a user may ask for: a method, or `auto` (chosen per feature by type and reference size). */
export const DRIFT_METHOD_CHOICES = ["auto", ...DRIFT_METHODS] as const;
export type DriftMethodChoice = (typeof DRIFT_METHOD_CHOICES)[number];

/** Multiple-testing corrections across the features tested with p-values under fixed thresholds. */
export const CORRECTIONS = ["none", "bonferroni", "benjamini-hochberg"] as const;
export type Correction = (typeof CORRECTIONS)[number];

/**
 * calibrated: a feature drifts when its statistic exceeds the reference's own no-drift quantile at the
 * window's size; fixed: Evidently-style constant thresholds (0.05 for p-values, 0.1 for distances).
 */
export const THRESHOLD_MODES = ["calibrated", "fixed"] as const;
export type ThresholdMode = (typeof THRESHOLD_MODES)[number];
