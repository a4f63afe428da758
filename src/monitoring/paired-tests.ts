// Paired tests of two models on the same rows, as scipy computes them: McNemar's exact test (a two-sided binomial
// test on the discordant pairs, scipy.stats.binomtest(k, n, 0.5)) for classifiers, and the Wilcoxon signed-rank
// test (scipy.stats.wilcoxon defaults: zero_method "wilcox", no continuity correction, method "auto") on the
// per-row differences of absolute errors for regressors. Pure; checked against scipy fixtures in test/oracle.
import { gammainc } from "./stats/special-functions.js";

export interface PairedTestResult {
  /** Two-sided p-value. */
  pValue: number;
  /** McNemar: the smaller discordant count; Wilcoxon: min(R+, R−), as scipy reports them. */
  statistic: number;
  /** Pairs that carried information: discordant pairs (McNemar), non-zero differences (Wilcoxon). */
  informative: number;
}

/** P(X ≤ k) for X ~ Binomial(n, ½), summed outwards from the largest term so nothing underflows first. */
function binomialHalfCdf(k: number, n: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  // log C(n, k) − n ln 2, as a sum of logs (no log-gamma in the standard library).
  let logPmf = -n * Math.LN2;
  for (let j = 1; j <= k; j++) logPmf += Math.log((n - k + j) / j);
  // Terms below k relative to the k-th: t(j−1) = t(j) · j / (n − j + 1); they shrink fast for k < n/2.
  let sum = 1;
  let term = 1;
  for (let j = k; j > 0; j--) {
    term *= j / (n - j + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.min(1, Math.exp(logPmf) * sum);
}

/**
 * McNemar's exact test: of the pairs where exactly one model is right, does each model win half? `servingOnly`:
 * rows only the serving model got right; `shadowOnly`: rows only the candidate got right.
 */
export function mcnemarExact(servingOnly: number, shadowOnly: number): PairedTestResult {
  const n = servingOnly + shadowOnly;
  const k = Math.min(servingOnly, shadowOnly);
  // binomtest's two-sided p for p = ½ is symmetric: twice the smaller tail, at most 1.
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(k, n));
  return { pValue, statistic: k, informative: n };
}

/** Average ranks of `values` (1-based), ties sharing the mean rank, and the tie correction Σ(t³ − t). */
function averageRanks(values: readonly number[]): { ranks: number[]; tieCorrection: number } {
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Array<number>(values.length);
  let tieCorrection = 0;
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    const rank = (start + 1 + end) / 2;
    for (let i = start; i < end; i++) ranks[order[i]!] = rank;
    const t = end - start;
    tieCorrection += t * t * t - t;
    start = end;
  }
  return { ranks, tieCorrection };
}

/** Counts of subsets of {1..n} by rank sum: the exact null distribution of R+ (2^n subsets; exact in doubles for n ≤ 50). */
function signedRankCounts(n: number): number[] {
  const counts = new Array<number>((n * (n + 1)) / 2 + 1).fill(0);
  counts[0] = 1;
  for (let r = 1; r <= n; r++) for (let s = (r * (r + 1)) / 2; s >= r; s--) counts[s]! += counts[s - r]!;
  return counts;
}

/** P(|Z| ≥ |z|) for a standard normal Z: erfc(|z|/√2) = Q(½, z²/2). */
function normalTwoSided(z: number): number {
  if (!Number.isFinite(z)) return Number.isNaN(z) ? Number.NaN : 0;
  return Math.min(1, gammainc((z * z) / 2, 0.5, true, true));
}

/** scipy uses the exact distribution up to this many differences when none is zero, else the normal approximation. */
export const WILCOXON_EXACT_MAX = 50;

/**
 * Wilcoxon signed-rank test that the differences are symmetric about 0. Zeros are dropped (Wilcoxon's method);
 * ties share average ranks, with the tie correction in the normal approximation; with ties and no zeros up to
 * 50 rows, the exact distribution with the statistic rounded conservatively (scipy gh-19872).
 * `rPlus`: rank sum of the positive differences (positive: the second model is better, for |err₁| − |err₂|).
 */
export function wilcoxonSignedRank(differences: readonly number[]): PairedTestResult & { rPlus: number; rMinus: number } {
  const nonZero = differences.filter((d) => d !== 0 && !Number.isNaN(d));
  const n = nonZero.length;
  if (n === 0) return { pValue: Number.NaN, statistic: Number.NaN, informative: 0, rPlus: 0, rMinus: 0 };
  const { ranks, tieCorrection } = averageRanks(nonZero.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  nonZero.forEach((d, i) => (d > 0 ? (rPlus += ranks[i]!) : (rMinus += ranks[i]!)));
  const statistic = Math.min(rPlus, rMinus);
  let pValue: number;
  if (differences.length <= WILCOXON_EXACT_MAX && n === differences.length) {
    const counts = signedRankCounts(n);
    const total = 2 ** n;
    // P(R+ ≤ k).
    const cdf = (k: number) => counts.slice(0, Math.max(0, k) + 1).reduce((a, b) => a + b, 0) / total;
    // P(R+ ≥ k), as scipy's WilcoxonDistribution.sf.
    const sf = (k: number) => counts.slice(Math.max(0, k)).reduce((a, b) => a + b, 0) / total;
    pValue = Math.min(1, 2 * Math.min(sf(Math.floor(rPlus)), cdf(Math.ceil(rPlus))));
  } else {
    const mean = (n * (n + 1)) / 4;
    const se = Math.sqrt((n * (n + 1) * (2 * n + 1) - tieCorrection / 2) / 24);
    pValue = normalTwoSided((rPlus - mean) / se);
  }
  return { pValue, statistic, informative: n, rPlus, rMinus };
}
