// Two-sample Kolmogorov–Smirnov test, two-sided, as scipy.stats.ks_2samp (scipy 1.14): same statistic,
// same exact path-counting p-value (Hodges / Viehmann recursion) and the same asymptotic fallback.
import type { WeightedPoints } from "../kll-sketch.js";
import { kolmogorovSf } from "./kolmogorov.js";

export type KsMethod = "auto" | "exact" | "asymp";

export interface KsResult {
  statistic: number;
  pValue: number;
  /** The p-value method actually used ("exact" falls back to "asymp" when exact is infeasible, as scipy does). */
  method: "exact" | "asymp";
}

/** scipy's MAX_AUTO_N: `auto` is exact while both samples have at most this many values. */
export const KS_MAX_AUTO_N = 10000;
const INT32_MAX = 2147483647;

/** numpy's round: halves go to the even neighbour (np.round(2.5) = 2). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** sup_x |F1(x) − F2(x)| between two weighted empirical distributions (exact samples or sketches). */
export function ksStatistic(a: WeightedPoints, b: WeightedPoints): number {
  if (a.total === 0 || b.total === 0) return Number.NaN;
  let i = 0;
  let j = 0;
  let d = 0;
  const na = a.values.length;
  const nb = b.values.length;
  while (i < na || j < nb) {
    // Step past every point equal to the smaller current value in both samples (ties move together).
    const x = j >= nb || (i < na && a.values[i]! <= b.values[j]!) ? a.values[i]! : b.values[j]!;
    while (i < na && a.values[i]! <= x) i++;
    while (j < nb && b.values[j]! <= x) j++;
    const fa = i > 0 ? a.cumulative[i - 1]! / a.total : 0;
    const fb = j > 0 ? b.cumulative[j - 1]! / b.total : 0;
    const diff = Math.abs(fa - fb);
    if (diff > d) d = diff;
  }
  return d;
}

// Pr(D_{n,n} >= h/n), Horner-like alternating sum (scipy `_compute_prob_outside_square`).
function probOutsideSquare(n: number, h: number): number {
  let P = 0;
  let k = Math.floor(n / h);
  while (k >= 0) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = ((n - k * h - j) * p1) / (n + k * h + j + 1);
    P = p1 * (1 - P);
    k--;
  }
  return 2 * P;
}

// 1 − proportion of lattice paths staying strictly inside |x/m − y/n| < h/lcm (scipy `_compute_outer_prob_inside_method`).
function outerProbInside(m: number, n: number, g: number, h: number): number {
  if (m < n) [m, n] = [n, m];
  const mg = Math.floor(m / g);
  const ng = Math.floor(n / g);
  let minj = 0;
  let maxj = Math.min(Math.ceil(h / mg), n + 1);
  let curlen = maxj - minj;
  const lenA = Math.min(2 * maxj + 2, n + 1);
  const A = new Float64Array(lenA).fill(1);
  for (let j = minj; j < maxj; j++) A[j] = 0;
  for (let i = 1; i <= m; i++) {
    const lastminj = minj;
    const lastlen = curlen;
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxj <= minj) return 1;
    let val = minj === 0 ? 0 : 1;
    for (let jj = 0; jj < maxj - minj; jj++) {
      const j = jj + minj;
      val = (A[jj + minj - lastminj]! * i + val * j) / (i + j);
      A[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) A.fill(1, maxj - minj, maxj - minj + (lastlen - curlen));
  }
  return A[maxj - minj - 1]!;
}

/** The p-value for statistic d between samples of sizes n1 and n2 (two-sided), as scipy picks and computes it. */
export function ksPValue(d: number, n1: number, n2: number, method: KsMethod = "auto"): { pValue: number; statistic: number; method: "exact" | "asymp" } {
  const g = gcd(n1, n2);
  const n1g = n1 / g;
  const n2g = n2 / g;
  let mode: KsMethod = method;
  if (mode === "auto") mode = Math.max(n1, n2) <= KS_MAX_AUTO_N ? "exact" : "asymp";
  else if (mode === "exact" && n1g >= INT32_MAX / n2g) mode = "asymp";
  if (mode === "exact") {
    const lcm = n1g * n2;
    const h = roundHalfEven(d * lcm);
    const snapped = h / lcm;
    if (h === 0) return { pValue: 1, statistic: snapped, method: "exact" };
    const prob = n1 === n2 ? probOutsideSquare(n1, h) : outerProbInside(n1, n2, g, h);
    if (Number.isFinite(prob) && prob >= 0 && prob <= 1) return { pValue: prob, statistic: snapped, method: "exact" };
    d = snapped;
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  const en = (m * n) / (m + n);
  return { pValue: Math.min(1, Math.max(0, kolmogorovSf(roundHalfEven(en), d))), statistic: d, method: "asymp" };
}

/** ks_2samp on two samples of finite values (any order). Throws on an empty sample, like scipy. */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>, method: KsMethod = "auto"): KsResult {
  if (a.length === 0 || b.length === 0) throw new RangeError("ks_2samp needs two non-empty samples");
  const pa = sortedPoints(a);
  const pb = sortedPoints(b);
  return ksPValue(ksStatistic(pa, pb), a.length, b.length, method);
}

/** Unit-weight points of a sample, sorted. */
export function sortedPoints(sample: ArrayLike<number>): WeightedPoints {
  const values = Float64Array.from(sample).sort();
  const cumulative = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) cumulative[i] = i + 1;
  return { values, cumulative, total: values.length };
}
