// Distances between binned distributions: Jensen–Shannon (scipy.spatial.distance.jensenshannon) and PSI.

function relEntr(x: number, y: number): number {
  if (x > 0 && y > 0) return x * Math.log(x / y);
  if (x === 0 && y >= 0) return 0;
  return Infinity;
}

/** Jensen–Shannon distance (the square root of the divergence), base 2 by default: 0 = same, 1 = disjoint. */
export function jensenShannonDistance(p: readonly number[], q: readonly number[], base = 2): number {
  if (p.length !== q.length) throw new RangeError(`jensenShannonDistance: ${p.length} vs ${q.length} bins`);
  const sp = p.reduce((a, b) => a + b, 0);
  const sq = q.reduce((a, b) => a + b, 0);
  if (!(sp > 0) || !(sq > 0)) return Number.NaN;
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]! / sp;
    const qi = q[i]! / sq;
    const m = (pi + qi) / 2;
    left += relEntr(pi, m);
    right += relEntr(qi, m);
  }
  const js = (left + right) / Math.log(base);
  return Math.sqrt(Math.max(js, 0) / 2);
}

/**
 * Evidently's zero fill for PSI: empty bins get 1e-4, or min(non-zero share)/1e6 when the smallest non-zero
 * share is already ≤ 1e-4, so the log ratio stays finite without dominating.
 */
function fillZeroShares(shares: number[]): number[] {
  const nonZero = shares.filter((s) => s !== 0);
  if (nonZero.length === 0) return shares;
  const smallest = Math.min(...nonZero);
  const fill = smallest <= 0.0001 ? smallest / 1e6 : 0.0001;
  return shares.map((s) => (s === 0 ? fill : s));
}

/** Population Stability Index Σ (r − c)·ln(r / c) over shares of bins (counts are normalised first). */
export function populationStabilityIndex(reference: readonly number[], current: readonly number[]): number {
  if (reference.length !== current.length) throw new RangeError(`populationStabilityIndex: ${reference.length} vs ${current.length} bins`);
  const sr = reference.reduce((a, b) => a + b, 0);
  const sc = current.reduce((a, b) => a + b, 0);
  if (!(sr > 0) || !(sc > 0)) return Number.NaN;
  const r = fillZeroShares(reference.map((v) => v / sr));
  const c = fillZeroShares(current.map((v) => v / sc));
  let psi = 0;
  for (let i = 0; i < r.length; i++) psi += (r[i]! - c[i]!) * Math.log(r[i]! / c[i]!);
  return psi;
}
