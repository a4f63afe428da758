// Multiple-testing corrections across features, as adjusted p-values (compare them with α using `<`).

import type { Correction } from "../vocabulary/drift.js";

/**
 * Bonferroni: min(1, p·m). Benjamini–Hochberg: q_(i) = min_{j ≥ i} p_(j)·m/j (statsmodels' "fdr_bh").
 * `q < α` rejects exactly the hypotheses the step-up procedure rejects with strict inequality.
 */
export function adjustPValues(pValues: readonly number[], correction: Correction): number[] {
  const m = pValues.length;
  if (correction === "none" || m === 0) return [...pValues];
  if (correction === "bonferroni") return pValues.map((p) => Math.min(1, p * m));
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = 1;
  for (let rank = m; rank >= 1; rank--) {
    const [p, index] = order[rank - 1]!;
    running = Math.min(running, (p * m) / rank);
    adjusted[index] = running;
  }
  return adjusted;
}

/**
 * Which hypotheses the correction rejects at level α (per hypothesis, usually all equal), decided with the
 * procedure's own strict comparisons — p < α/m (Bonferroni), p_(k) < k·α/m step-up (BH) — with a 1e-12
 * relative tie margin, since rounding (0.01·5 = 0.049999…) would otherwise flip exact boundary cases.
 */
/** p < t, with p within 1e-12 relative of t counted as equal: 0.01·5 must not beat 0.05 by rounding. */
export function strictlyBelow(p: number, t: number): boolean {
  return p < t * (1 - 1e-12);
}

export function rejectedHypotheses(pValues: readonly number[], alphas: readonly number[], correction: Correction): boolean[] {
  const m = pValues.length;
  if (correction === "none") return pValues.map((p, i) => strictlyBelow(p, alphas[i]!));
  if (correction === "bonferroni") return pValues.map((p, i) => strictlyBelow(p, alphas[i]! / m));
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  let cutoff = 0;
  order.forEach(([p, index], k) => {
    if (strictlyBelow(p, ((k + 1) * alphas[index]!) / m)) cutoff = k + 1;
  });
  const rejected = new Array<boolean>(m).fill(false);
  for (let k = 0; k < cutoff; k++) rejected[order[k]![1]] = true;
  return rejected;
}
