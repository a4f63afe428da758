// numpy-compatible equal-width binning (np.histogram_bin_edges(..., bins="sturges") and np.histogram).
import type { WeightedPoints } from "../kll-sketch.js";

/** Sturges edges over [min, max] for `size` values, computed as numpy does (a constant column gets [x−0.5, x+0.5]). */
export function sturgesEdges(min: number, max: number, size: number): number[] {
  let first = min;
  let last = max;
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  const width = (max - min) / (Math.log2(size) + 1);
  const bins = width ? Math.ceil((last - first) / width) : 1;
  return linspace(first, last, bins + 1);
}

/** np.linspace(start, stop, num) with endpoint: start + i·step, the last edge exactly `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(step === 0 ? (i / (num - 1)) * (stop - start) + start : i * step + start);
  out[num - 1] = stop;
  return out;
}

/** Weight in each bin [e_i, e_{i+1}) (the last bin closed), values outside the edges ignored, as np.histogram. */
export function binWeights(points: WeightedPoints, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length - 1).fill(0);
  const below = (x: number, inclusive: boolean): number => {
    // Total weight of points < x (or ≤ x when inclusive).
    let lo = 0;
    let hi = points.values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const v = points.values[mid]!;
      if (v < x || (inclusive && v === x)) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? points.cumulative[lo - 1]! : 0;
  };
  for (let i = 0; i < counts.length; i++) {
    const last = i === counts.length - 1;
    counts[i] = below(edges[i + 1]!, last) - below(edges[i]!, false);
  }
  return counts;
}
