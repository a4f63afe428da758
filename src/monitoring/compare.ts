// Drift between a reference and a current dataset profile: per-feature statistics, multiple-testing
// correction, dataset drift share and prediction drift. Every outcome is defined: empty or all-missing
// features are "insufficient-data", never NaN.
import { alignCategoricalCounts, type CategoricalProfile } from "./categorical-profile.js";
import type { DatasetProfile, FeatureProfile } from "./dataset-profile.js";
import type { WeightedPoints } from "./kll-sketch.js";
import type { DriftCalibration } from "./calibration.js";
import { adjustPValues, rejectedHypotheses, strictlyBelow } from "./multiple-testing.js";
import type { NumericProfile } from "./numeric-profile.js";
import type { FeatureType } from "./schema.js";
import { chiSquaredContingency } from "./stats/chi-squared.js";
import { jensenShannonDistance, populationStabilityIndex } from "./stats/divergence.js";
import { binWeights, sturgesEdges } from "./stats/histogram.js";
import { ksPValue, ksStatistic, type KsMethod } from "./stats/ks.js";
import { normedWasserstein, wassersteinDistance } from "./stats/wasserstein.js";
import { FIXED_DRIFT_THRESHOLDS, type Correction, type DriftMethod, type DriftMethodChoice, type ThresholdMode } from "../vocabulary/drift.js";

export {
  CORRECTIONS,
  DRIFT_METHOD_CHOICES,
  DRIFT_METHODS,
  FIXED_DRIFT_THRESHOLDS,
  THRESHOLD_MODES,
  type Correction,
  type DriftMethod,
  type DriftMethodChoice,
  type ThresholdMode,
} from "../vocabulary/drift.js";

/** p-value methods flag drift when p < threshold; distance methods when statistic ≥ threshold. */
export const P_VALUE_METHODS: ReadonlySet<DriftMethod> = new Set(["ks", "chisquare"]);

/** `auto` uses p-value tests up to this many reference values, distances above (Evidently's rule). */
export const AUTO_SMALL_REFERENCE = 1000;
/** Numeric features with at most this many distinct values are tested as categories under `auto`. */
export const AUTO_MAX_DISCRETE_VALUES = 5;
/** PSI and JS bin numeric features with more distinct reference values than this; fewer are counted per value. */
export const BINNING_MIN_DISTINCT = 20;

export interface CompareOptions {
  /** One method for all features, or `auto` (default). */
  method?: DriftMethodChoice;
  /** Per-feature method overrides. */
  methods?: Record<string, DriftMethod>;
  /**
   * calibrated: drift when the statistic exceeds `calibration`'s no-drift quantile at the current profile's
   * size (needs `calibration`); fixed (default here): `thresholds`. Features or methods the calibration
   * lacks fall back to fixed, and say so in their reason.
   */
  thresholdMode?: ThresholdMode;
  /** The reference's no-drift quantiles (`calibrateDrift`), for thresholdMode calibrated. */
  calibration?: DriftCalibration;
  /** Per-method fixed thresholds (default FIXED_DRIFT_THRESHOLDS). */
  thresholds?: Partial<Record<DriftMethod, number>>;
  /** Dataset drift when drifted / evaluated features ≥ this (default 0.5). */
  driftShareThreshold?: number;
  /** Multiple-testing correction across the p-value features judged by fixed thresholds (default none). */
  correction?: Correction;
  /** Features to compare (default: every feature present in both profiles, prediction features excluded). */
  features?: readonly string[];
  /** Features holding model outputs: compared the same way, reported apart, left out of the drift share. */
  predictionFeatures?: readonly string[];
  /** A feature needs at least this many valid values on each side to be evaluated (default 1). */
  minSamples?: number;
  /** KS p-value computation (default auto: exact up to 10 000 values per side, as scipy). */
  ksMethod?: KsMethod;
}

export interface Histogram {
  /** Bin labels: "[a, b)" ranges for binned numerics, values otherwise. */
  labels: string[];
  /** Numeric edges when binned. */
  edges?: number[];
  reference: number[];
  current: number[];
}

export interface FeatureDrift {
  name: string;
  type: FeatureType;
  method: DriftMethod;
  /** The value compared with the threshold; null when the feature could not be evaluated. */
  statistic: number | null;
  /** calibrated: statistic > threshold (the no-drift quantile); fixed: the method's constant rule. */
  thresholdMode: ThresholdMode;
  /** Raw p-value for ks / chisquare, else null. */
  pValue: number | null;
  /** p-value after the multiple-testing correction (equals pValue without one). */
  adjustedPValue: number | null;
  threshold: number;
  drift: boolean;
  status: "evaluated" | "insufficient-data";
  /** One sentence a person can act on: which statistic, its value vs the threshold. */
  reason: string;
  referenceCount: number;
  currentCount: number;
  /** Missing, non-finite or invalid cells in the current window, as a share of its rows. */
  currentMissingShare: number;
  /** Categorical: share of current values in categories the reference never saw. */
  unseenShare?: number;
  /** Wasserstein: the raw (un-normed) distance. */
  wassersteinRaw?: number;
  /** True when a sketch (not exact values) produced the statistic; its rank error is `rankErrorBound`. */
  approximate: boolean;
  rankErrorBound: number;
  histogram?: Histogram;
}

export interface DriftReport {
  drift: boolean;
  /** Drifted / evaluated features (prediction features excluded); 0 when none could be evaluated. */
  driftShare: number;
  driftShareThreshold: number;
  driftedFeatures: number;
  evaluatedFeatures: number;
  status: "evaluated" | "insufficient-data";
  correction: Correction;
  features: FeatureDrift[];
  prediction: FeatureDrift[];
  predictionDrift: boolean;
}

interface Evaluation {
  statistic: number;
  pValue: number | null;
  wassersteinRaw?: number;
}

function missingCells(profile: FeatureProfile): number {
  return profile.type === "numeric" ? profile.missing + profile.nonFinite + profile.invalid : profile.missing + profile.invalid;
}

/** Counts per distinct value of a numeric distribution (weights summed over equal values). */
function valueCounts(points: WeightedPoints): Map<string, number> {
  const counts = new Map<string, number>();
  let prevCumulative = 0;
  for (let i = 0; i < points.values.length; i++) {
    const key = String(points.values[i]);
    counts.set(key, (counts.get(key) ?? 0) + points.cumulative[i]! - prevCumulative);
    prevCumulative = points.cumulative[i]!;
  }
  return counts;
}

function alignCounts(reference: Map<string, number>, current: Map<string, number>): { labels: string[]; reference: number[]; current: number[] } {
  const labels = [...reference.keys()];
  for (const key of current.keys()) if (!reference.has(key)) labels.push(key);
  return { labels, reference: labels.map((l) => reference.get(l) ?? 0), current: labels.map((l) => current.get(l) ?? 0) };
}

function formatEdge(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

/** Bins for PSI/JS and for the report's histogram: Sturges equal-width bins, or per-value counts for discrete data. */
function numericHistogram(ref: NumericProfile, cur: NumericProfile): Histogram {
  const rp = ref.points();
  const cp = cur.points();
  if (ref.distinctCount() <= BINNING_MIN_DISTINCT) {
    const aligned = alignCounts(valueCounts(rp), valueCounts(cp));
    return { labels: aligned.labels, reference: aligned.reference, current: aligned.current };
  }
  const edges = sturgesEdges(Math.min(ref.min, cur.min), Math.max(ref.max, cur.max), ref.count + cur.count);
  const labels = edges.slice(0, -1).map((e, i) => `[${formatEdge(e)}, ${formatEdge(edges[i + 1]!)}${i === edges.length - 2 ? "]" : ")"}`);
  return { labels, edges, reference: binWeights(rp, edges), current: binWeights(cp, edges) };
}

function categoricalHistogram(ref: CategoricalProfile, cur: CategoricalProfile): Histogram {
  return alignCategoricalCounts(ref, cur);
}

function chooseAutoMethod(ref: FeatureProfile): DriftMethod {
  const small = ref.count <= AUTO_SMALL_REFERENCE;
  if (ref.type === "categorical") return small ? "chisquare" : "jensenshannon";
  if (!small) return "wasserstein";
  return ref.distinctCount() > AUTO_MAX_DISCRETE_VALUES ? "ks" : "chisquare";
}

function evaluate(method: DriftMethod, ref: FeatureProfile, cur: FeatureProfile, histogram: Histogram, ksMethod: KsMethod): Evaluation {
  switch (method) {
    case "psi":
      return { statistic: populationStabilityIndex(histogram.reference, histogram.current), pValue: null };
    case "jensenshannon":
      return { statistic: jensenShannonDistance(histogram.reference, histogram.current, 2), pValue: null };
    case "chisquare": {
      // Numeric features under chisquare are compared per distinct value.
      const counts = ref.type === "numeric" && cur.type === "numeric" ? alignCounts(valueCounts(ref.points()), valueCounts(cur.points())) : histogram;
      const result = chiSquaredContingency([counts.reference, counts.current]);
      return { statistic: result.statistic, pValue: result.pValue };
    }
    case "ks":
    case "wasserstein": {
      if (ref.type !== "numeric" || cur.type !== "numeric") throw new RangeError(`${method} needs a numeric feature`);
      if (method === "ks") {
        const d = ksStatistic(ref.points(), cur.points());
        if (ref.mode === "exact" && cur.mode === "exact") {
          const result = ksPValue(d, ref.count, cur.count, ksMethod);
          return { statistic: result.statistic, pValue: result.pValue };
        }
        // A sketch's D is within the two rank-error bounds of the true D; the p-value uses the lower end so
        // sketch noise alone never reads as drift on large samples (exact mode keeps the full power).
        const lower = Math.max(0, d - ref.rankErrorBound - cur.rankErrorBound);
        return { statistic: d, pValue: ksPValue(lower, ref.count, cur.count, "asymp").pValue };
      }
      const raw = wassersteinDistance(ref.points(), cur.points());
      return { statistic: normedWasserstein(raw, ref.std), pValue: null, wassersteinRaw: raw };
    }
  }
}

/**
 * The statistic `compare` judges for one feature pair: what calibration resamples too, so the calibrated
 * quantile and the live value are the same computation. null when undefined for these values.
 */
export function featureStatistic(method: DriftMethod, ref: FeatureProfile, cur: FeatureProfile, ksMethod: KsMethod = "auto"): number | null {
  // D alone: its p-value (exact up to 10 000 values a side) is not needed to rank resamples.
  if (method === "ks" && ref.type === "numeric" && cur.type === "numeric") return ksStatistic(ref.points(), cur.points());
  const histogram =
    ref.type === "numeric" && cur.type === "numeric" ? numericHistogram(ref, cur) : categoricalHistogram(ref as CategoricalProfile, cur as CategoricalProfile);
  const { statistic } = evaluate(method, ref, cur, histogram, ksMethod);
  return Number.isNaN(statistic) ? null : statistic;
}

/** The method `auto` picks for a feature of this reference profile (Evidently's rule). */
function resolveMethod(requested: DriftMethodChoice, ref: FeatureProfile): DriftMethod {
  return requested === "auto" ? chooseAutoMethod(ref) : requested;
}

function calibrationNote(options: CompareOptions, mode: ThresholdMode, rows: number): string {
  if (mode === "calibrated") return ` (no-drift ${options.calibration!.level * 100}% quantile at ${rows} rows)`;
  return options.thresholdMode === "calibrated" ? " (fixed threshold: no calibration for this feature and method)" : "";
}

type Rule = "p-value" | "fixed-distance" | "calibrated";

function describe(name: string, method: DriftMethod, value: number, threshold: number, drift: boolean, rule: Rule, note: string): string {
  const shown = Number.isFinite(value) ? value.toPrecision(4) : String(value);
  const [label, above, below, limit] =
    rule === "p-value"
      ? [`${method} p-value`, "<", "≥", String(threshold)]
      : rule === "calibrated"
        ? [method, ">", "≤", threshold.toPrecision(4)]
        : [method, "≥", "<", String(threshold)];
  return `${name}: ${label} ${shown} ${drift ? above : below} ${limit}${note}${drift ? " (drift)" : ""}`;
}

function compareFeature(name: string, ref: FeatureProfile, cur: FeatureProfile, options: CompareOptions): FeatureDrift {
  if (ref.type !== cur.type) throw new RangeError(`feature "${name}" is ${ref.type} in the reference and ${cur.type} in the current profile`);
  const method = resolveMethod(options.methods?.[name] ?? options.method ?? "auto", ref);
  if ((method === "ks" || method === "wasserstein") && ref.type !== "numeric") {
    throw new RangeError(`feature "${name}" is categorical; ${method} needs a numeric feature (use chisquare, psi or jensenshannon)`);
  }
  const calibrated = options.thresholdMode === "calibrated" ? options.calibration?.threshold(name, method, cur.count) : undefined;
  const thresholdMode: ThresholdMode = calibrated !== undefined ? "calibrated" : "fixed";
  const threshold = calibrated ?? options.thresholds?.[method] ?? FIXED_DRIFT_THRESHOLDS[method];
  const currentRows = cur.count + missingCells(cur);
  const approximate = (ref.type === "numeric" && ref.mode === "sketch") || (cur.type === "numeric" && cur.mode === "sketch");
  const base = {
    name,
    type: ref.type,
    method,
    threshold,
    thresholdMode,
    referenceCount: ref.count,
    currentCount: cur.count,
    currentMissingShare: currentRows > 0 ? missingCells(cur) / currentRows : 0,
    approximate,
    rankErrorBound: approximate ? Math.max(ref.type === "numeric" ? ref.rankErrorBound : 0, cur.type === "numeric" ? cur.rankErrorBound : 0) : 0,
  };
  const minSamples = Math.max(1, options.minSamples ?? 1);
  if (ref.count < minSamples || cur.count < minSamples) {
    const [label, count] = ref.count < minSamples ? ["reference", ref.count] : ["current", cur.count];
    const detail =
      count === 0 ? `${label} has no valid values (all missing or non-finite)` : `${label} has ${count} valid values, fewer than the ${minSamples} needed`;
    return {
      ...base,
      statistic: null,
      pValue: null,
      adjustedPValue: null,
      drift: false,
      status: "insufficient-data",
      reason: `${name}: ${detail}`,
    };
  }
  const histogram =
    ref.type === "numeric" && cur.type === "numeric" ? numericHistogram(ref, cur) : categoricalHistogram(ref as CategoricalProfile, cur as CategoricalProfile);
  const result = evaluate(method, ref, cur, histogram, options.ksMethod ?? "auto");
  const pValueSide = thresholdMode === "fixed" && P_VALUE_METHODS.has(method);
  if (Number.isNaN(result.statistic) || (pValueSide && Number.isNaN(result.pValue))) {
    // Defensive: a statistic that cannot be computed is reported, never turned into a NaN verdict.
    return {
      ...base,
      statistic: null,
      pValue: null,
      adjustedPValue: null,
      drift: false,
      status: "insufficient-data",
      reason: `${name}: ${method} is undefined for these values`,
    };
  }
  // Calibrated: strictly above the no-drift quantile, so a statistic that ties the null's own values is no drift.
  const drift = pValueSide
    ? strictlyBelow(result.pValue!, threshold)
    : thresholdMode === "calibrated"
      ? result.statistic > threshold
      : result.statistic >= threshold;
  const out: FeatureDrift = {
    ...base,
    statistic: result.statistic,
    pValue: result.pValue,
    adjustedPValue: result.pValue,
    drift,
    status: "evaluated",
    reason: describe(
      name,
      method,
      pValueSide ? result.pValue! : result.statistic,
      threshold,
      drift,
      pValueSide ? "p-value" : thresholdMode === "calibrated" ? "calibrated" : "fixed-distance",
      calibrationNote(options, thresholdMode, cur.count),
    ),
    histogram,
  };
  if (result.wassersteinRaw !== undefined) out.wassersteinRaw = result.wassersteinRaw;
  if (ref.type === "categorical" && cur.type === "categorical") {
    // Cells of the shared partition the reference never saw (a hash bucket counts as one cell).
    const unseen = histogram.current.reduce((s, n, i) => (histogram.reference[i] === 0 ? s + n : s), 0);
    out.unseenShare = cur.count > 0 ? unseen / cur.count : 0;
  }
  return out;
}

function applyCorrection(results: FeatureDrift[], correction: Correction): void {
  if (correction === "none") return;
  // Calibrated features are judged by their quantile; the correction is for fixed p-value thresholds.
  const tested = results.filter((r) => r.status === "evaluated" && r.pValue !== null && r.thresholdMode === "fixed");
  const pValues = tested.map((r) => r.pValue!);
  const adjusted = adjustPValues(pValues, correction);
  const rejected = rejectedHypotheses(
    pValues,
    tested.map((r) => r.threshold),
    correction,
  );
  tested.forEach((r, i) => {
    r.adjustedPValue = adjusted[i]!;
    r.drift = rejected[i]!;
    const verdict = r.drift ? "significant (drift)" : "not significant";
    r.reason = `${r.name}: ${r.method} p-value ${r.pValue!.toPrecision(4)} ${verdict} at α=${r.threshold} after ${correction} (adjusted p ${r.adjustedPValue.toPrecision(4)})`;
  });
}

/** Compares two dataset profiles feature by feature and decides dataset drift. */
export function compare(reference: DatasetProfile, current: DatasetProfile, options: CompareOptions = {}): DriftReport {
  const predictionNames = new Set(options.predictionFeatures ?? []);
  const shared = reference.schema.map((f) => f.name).filter((n) => current.features.has(n));
  const names = (options.features ?? shared.filter((n) => !predictionNames.has(n))).filter((n) => !predictionNames.has(n));
  for (const name of [...names, ...predictionNames]) {
    if (!reference.features.has(name)) throw new RangeError(`feature "${name}" is not in the reference profile`);
    if (!current.features.has(name)) throw new RangeError(`feature "${name}" is not in the current profile`);
  }
  const correction = options.correction ?? "none";
  const features = names.map((n) => compareFeature(n, reference.features.get(n)!, current.features.get(n)!, options));
  applyCorrection(features, correction);
  const prediction = [...predictionNames].map((n) => compareFeature(n, reference.features.get(n)!, current.features.get(n)!, options));
  const evaluated = features.filter((f) => f.status === "evaluated");
  const drifted = evaluated.filter((f) => f.drift).length;
  const driftShare = evaluated.length > 0 ? drifted / evaluated.length : 0;
  const driftShareThreshold = options.driftShareThreshold ?? 0.5;
  return {
    drift: evaluated.length > 0 && driftShare >= driftShareThreshold,
    driftShare,
    driftShareThreshold,
    driftedFeatures: drifted,
    evaluatedFeatures: evaluated.length,
    status: evaluated.length > 0 || prediction.some((p) => p.status === "evaluated") ? "evaluated" : "insufficient-data",
    correction,
    features,
    prediction,
    predictionDrift: prediction.some((p) => p.drift),
  };
}
