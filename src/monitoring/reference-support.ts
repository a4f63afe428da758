// Whether a window's rows lie where the model was trained: the share of rows with a numeric feature outside the
// reference's [min, max], against the share expected when nothing changed. A label-free estimate (CBPE's calibrated
// confidence, DLE's error model) was fitted on rows like the reference: on rows beyond its range the model
// extrapolates, its confidence is untested there, and the estimate can stay high while the model is wrong. The
// policy stops trusting the estimate when significantly more rows than expected lie outside.
//
// The expected share is itself random: n reference values cover a share Beta(n − 1, 2) of their distribution, so
// the share outside one feature's range is Beta(2, n − 1) (mean 2/(n + 1), standard deviation about as large), and
// a window's count outside is beta-binomial, not binomial — a binomial test on the mean flags 2–3 % of random
// windows of real data sets whose reference half happened to miss the extremes. Over several features the share
// outside any is at most the sum; its distribution is taken as the Beta with the sum's mean and, conservatively,
// the standard deviation of perfectly correlated features (the sum of theirs).
import { betaln } from "./stats/special-functions.js";
import type { DatasetProfile } from "./dataset-profile.js";

/** A window's count, summed exactly across replicas (expectedShare is the version's, the same on every replica). */
export interface ReferenceSupportJSON {
  /** Rows checked. */
  rows: number;
  /** Rows with at least one numeric feature below the reference's minimum or above its maximum. */
  outside: number;
  /**
   * The share of rows expected outside when they come from the reference's distribution: for n exchangeable values
   * a new one falls outside their [min, max] with probability 2/(n + 1); summed over the numeric features (a union
   * bound, so never below the true share).
   */
  expectedShare: number;
  /** How much that share varies with the reference drawn: Σ over the features of the Beta(2, n − 1) standard deviation. */
  expectedShareSd: number;
}

/** Rows outside the reference are judged significant at this level (the drift calibration's 99 % quantile, alike). */
export const SUPPORT_ALPHA = 0.01;

/** The reference's range per numeric feature, to check rows against. */
export class ReferenceSupport {
  readonly expectedShare: number;
  readonly expectedShareSd: number;
  private readonly bounds: { column: number; min: number; max: number }[];

  /** `features`: the model's feature names in row order; features without numeric reference values are not checked. */
  constructor(reference: DatasetProfile, features: readonly string[]) {
    this.bounds = [];
    let expected = 0;
    let sd = 0;
    features.forEach((name, column) => {
      const p = reference.features.get(name);
      if (p?.type !== "numeric" || p.count < 2) return;
      this.bounds.push({ column, min: p.min, max: p.max });
      const n = p.count;
      expected += 2 / (n + 1);
      sd += Math.sqrt((2 * (n - 1)) / ((n + 1) ** 2 * (n + 2)));
    });
    this.expectedShare = Math.min(1, expected);
    this.expectedShareSd = sd;
  }

  /** Whether a row (values in feature order) has a finite numeric value outside the reference's range. */
  outside(values: readonly unknown[]): boolean {
    for (const b of this.bounds) {
      const v = values[b.column];
      const x = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
      if (Number.isFinite(x) && (x < b.min || x > b.max)) return true;
    }
    return false;
  }
}

export function mergeReferenceSupport(a: ReferenceSupportJSON | undefined, b: ReferenceSupportJSON | undefined): ReferenceSupportJSON | undefined {
  if (!a || !b) return a ?? b;
  return {
    rows: a.rows + b.rows,
    outside: a.outside + b.outside,
    expectedShare: Math.max(a.expectedShare, b.expectedShare),
    expectedShareSd: Math.max(a.expectedShareSd, b.expectedShareSd),
  };
}

export interface SupportShift {
  /** More rows outside than the reference explains, at SUPPORT_ALPHA. */
  shifted: boolean;
  share: number;
  expectedShare: number;
  /** One-sided beta-binomial p-value of at least this many rows outside. */
  pValue: number;
  text: string;
}

/**
 * P(K ≥ k) for K ~ BetaBinomial(n, a, b): the first term from log-beta functions, the next ones by the ratio
 * P(j + 1)/P(j) = (n − j)(j + a) / ((j + 1)(n − j − 1 + b)), stopped once past the mode they no longer count.
 */
export function betaBinomialUpperTail(k: number, n: number, a: number, b: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // ln C(n, k) = −ln(n + 1) − ln B(n − k + 1, k + 1)
  let term = Math.exp(-Math.log(n + 1) - betaln(n - k + 1, k + 1) + betaln(k + a, n - k + b) - betaln(a, b));
  let sum = term;
  const mode = (n * (a - 1)) / (a + b - 2);
  for (let j = k; j < n; j++) {
    term *= ((n - j) * (j + a)) / ((j + 1) * (n - j - 1 + b));
    sum += term;
    if (j > mode && term < sum * 1e-17) break;
  }
  return Math.min(1, sum);
}

/** The Beta with this mean and standard deviation (method of moments), its variance capped below the largest a Beta can have. */
function betaOfMoments(mean: number, sd: number): [a: number, b: number] {
  const m = Math.min(Math.max(mean, 1e-12), 1 - 1e-12);
  const variance = Math.min(sd * sd, m * (1 - m) * 0.999);
  const common = (m * (1 - m)) / variance - 1;
  return [m * common, (1 - m) * common];
}

/** Whether the window's rows left the reference's range more often than chance; null without rows checked. */
export function supportShift(s: ReferenceSupportJSON | undefined): SupportShift | null {
  if (!s || s.rows === 0) return null;
  const [a, b] = betaOfMoments(s.expectedShare, s.expectedShareSd);
  const pValue = betaBinomialUpperTail(s.outside, s.rows, a, b);
  const share = s.outside / s.rows;
  const pct = (x: number) => `${Number((100 * x).toPrecision(2))}%`;
  return {
    shifted: pValue < SUPPORT_ALPHA,
    share,
    expectedShare: s.expectedShare,
    pValue,
    text: `${s.outside} of ${s.rows} rows outside the reference's range (${pct(s.expectedShare)} expected, p ${Number(pValue.toPrecision(2))})`,
  };
}
