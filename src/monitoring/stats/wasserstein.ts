// Wasserstein-1 (earth mover's) distance between two 1-D distributions, as scipy.stats.wasserstein_distance.
import type { WeightedPoints } from "../kll-sketch.js";

/** ∫ |F_u(x) − F_v(x)| dx over the merged support; works on exact samples and on sketches alike. */
export function wassersteinDistance(u: WeightedPoints, v: WeightedPoints): number {
  if (u.total === 0 || v.total === 0) return Number.NaN;
  let i = 0;
  let j = 0;
  let distance = 0;
  let prev = Math.min(u.values[0]!, v.values[0]!);
  let fu = 0;
  let fv = 0;
  while (i < u.values.length || j < v.values.length) {
    const x = j >= v.values.length || (i < u.values.length && u.values[i]! <= v.values[j]!) ? u.values[i]! : v.values[j]!;
    distance += Math.abs(fu - fv) * (x - prev);
    while (i < u.values.length && u.values[i]! <= x) i++;
    while (j < v.values.length && v.values[j]! <= x) j++;
    fu = i > 0 ? u.cumulative[i - 1]! / u.total : 0;
    fv = j > 0 ? v.cumulative[j - 1]! / v.total : 0;
    prev = x;
  }
  return distance;
}

/** Evidently's normed Wasserstein: distance / max(std_ref (ddof 0), 0.001), comparable across feature scales. */
export function normedWasserstein(distance: number, referenceStd: number): number {
  return distance / Math.max(referenceStd, 0.001);
}
