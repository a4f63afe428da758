// Chi-squared test of homogeneity (scipy.stats.chi2_contingency, correction=False) and the chi-squared tail.
import { gammainc } from "./special-functions.js";

/** P(X > x) for X ~ χ²(dof): the regularized upper incomplete gamma Q(dof/2, x/2), as scipy.stats.chi2.sf. */
export function chiSquaredSf(x: number, dof: number): number {
  if (Number.isNaN(x) || !(dof > 0)) return Number.NaN;
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return gammainc(x / 2, dof / 2, true, true);
}

export interface ChiSquaredResult {
  statistic: number;
  pValue: number;
  dof: number;
}

/**
 * Pearson's chi-squared test that the rows of a contingency table (e.g. reference counts and current counts
 * per category) come from one distribution. Expected counts come from the pooled margins, so a category
 * unseen in the reference is a finite, meaningful contribution instead of a division by zero. Columns that
 * are zero in every row are dropped (they carry no information). No Yates correction, so the 2×2 case equals
 * the two-proportion z-test Evidently uses for binary columns (χ² = z²).
 */
export function chiSquaredContingency(table: readonly (readonly number[])[]): ChiSquaredResult {
  const width = table[0]?.length ?? 0;
  const keep: number[] = [];
  for (let c = 0; c < width; c++) if (table.some((row) => row[c]! > 0)) keep.push(c);
  const rows = table.map((row) => keep.map((c) => row[c]!)).filter((row) => row.some((v) => v > 0));
  const rowSums = rows.map((row) => row.reduce((a, b) => a + b, 0));
  const colSums = keep.map((_, c) => rows.reduce((a, row) => a + row[c]!, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const dof = rows.length * keep.length - rows.length - keep.length + 1;
  if (dof <= 0 || total === 0) return { statistic: 0, pValue: 1, dof: Math.max(dof, 0) };
  let statistic = 0;
  for (let r = 0; r < rows.length; r++) {
    for (let c = 0; c < keep.length; c++) {
      const expected = (rowSums[r]! * colSums[c]!) / total;
      const diff = rows[r]![c]! - expected;
      statistic += (diff * diff) / expected;
    }
  }
  return { statistic, pValue: chiSquaredSf(statistic, dof), dof };
}
