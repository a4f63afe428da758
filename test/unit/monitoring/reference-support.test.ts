// When the label-free estimate stops being trusted: rows beyond the reference's range, significantly more often
// than a reference-like window would have them. Random windows of real data sets never trip it; Gentoo birds
// shown to an Adelie model do.
import { describe, expect, it } from "vitest";
import { loadPenguins, PENGUIN_FEATURES, splitPenguins } from "../../../src/demo/penguins-data.js";
import { DatasetProfile, type FeatureSchema } from "../../../src/monitoring/index.js";
import { betaBinomialUpperTail, mergeReferenceSupport, ReferenceSupport, supportShift } from "../../../src/monitoring/reference-support.js";
import { carsSet, flightsSet, seeded, shuffled, weatherSet, type Row } from "./real-data.js";

/** Σ scipy.stats.betabinom.pmf(j, n, a, b) for j ≥ k (scipy 1.x; the sum, since its sf loses digits below 1e-15). */
const SCIPY_BETABINOM_SF: [k: number, n: number, a: number, b: number, sf: number][] = [
  [18, 20, 2.0, 105.0, 1.267983062441364e-18],
  [3, 20, 2.0, 105.0, 0.012557041699449253],
  [1, 20, 2.0, 105.0, 0.2933333333333333],
  [12, 1000, 1.7, 400.0, 0.05340267270338735],
  [40, 100, 3.2, 55.5, 1.014789441385523e-7],
  [100, 100, 0.5, 0.5, 0.05634847900925642],
];

function windowsShifted(schema: readonly FeatureSchema[], reference: readonly Row[], rows: readonly Row[], size: number, windows: number, seed: number) {
  const names = schema.map((f) => f.name);
  const support = new ReferenceSupport(DatasetProfile.fromRows(schema, reference), names);
  const random = seeded(seed);
  let shifted = 0;
  for (let w = 0; w < windows; w++) {
    const sample = shuffled(rows, random).slice(0, size);
    const outside = sample.filter((r) => support.outside(names.map((n) => r[n]))).length;
    if (supportShift({ rows: sample.length, outside, expectedShare: support.expectedShare, expectedShareSd: support.expectedShareSd })!.shifted) shifted++;
  }
  return shifted / windows;
}

describe("reference support", () => {
  it("the beta-binomial tail matches scipy", () => {
    for (const [k, n, a, b, sf] of SCIPY_BETABINOM_SF) expect(Math.abs(betaBinomialUpperTail(k, n, a, b) - sf) / sf).toBeLessThan(1e-9);
    expect(betaBinomialUpperTail(0, 20, 2, 105)).toBe(1);
  });

  it("checks numeric features against the reference's range; the expected share is 2/(n + 1) per feature", () => {
    const schema: FeatureSchema[] = [
      { name: "x", type: "numeric" },
      { name: "city", type: "categorical" },
      { name: "y", type: "numeric" },
    ];
    const ref = DatasetProfile.fromRows(
      schema,
      Array.from({ length: 9 }, (_, i) => ({ x: i, city: "a", y: 10 * i })),
    );
    const support = new ReferenceSupport(ref, ["x", "city", "y"]);
    expect(support.expectedShare).toBeCloseTo(2 * (2 / 10), 12);
    // Beta(2, 8): sd √(2·8 / (10²·11)), twice.
    expect(support.expectedShareSd).toBeCloseTo(2 * Math.sqrt(16 / 1100), 12);
    expect(support.outside([0, "zzz", 80])).toBe(false);
    expect(support.outside([8.5, "a", 40])).toBe(true);
    expect(support.outside(["4", "a", "-1"])).toBe(true);
    // Missing and non-numeric values are not evidence of anything.
    expect(support.outside([null, "a", "n/a"])).toBe(false);
    const a = { rows: 20, outside: 3, expectedShare: 0.4, expectedShareSd: 0.2 };
    expect(mergeReferenceSupport(a, { ...a, rows: 30, outside: 1 })).toEqual({ rows: 50, outside: 4, expectedShare: 0.4, expectedShareSd: 0.2 });
    expect(supportShift({ ...a, rows: 0, outside: 0 })).toBeNull();
  });

  it.each([weatherSet, carsSet, flightsSet])("random windows of $name, reference = a random half: at most 1% flagged", (set) => {
    const rows = shuffled(set.rows, seeded(7));
    const half = Math.floor(rows.length / 2);
    for (const size of [20, 100]) expect(windowsShifted(set.schema, rows.slice(0, half), rows.slice(half), size, 300, size)).toBeLessThanOrEqual(0.01);
  });

  it("Adelie reference, Gentoo windows of 20: flagged every time; held-back Adelie windows: never", () => {
    const split = splitPenguins(loadPenguins(), 40);
    const schema: FeatureSchema[] = PENGUIN_FEATURES.map((name) => ({ name, type: "numeric" }));
    expect(windowsShifted(schema, split.training, split.gentoo, 20, 100, 1)).toBe(1);
    expect(windowsShifted(schema, split.training, split.familiar, 20, 100, 1)).toBe(0);
  });
});
