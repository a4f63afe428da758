import { describe, expect, it } from "vitest";
import { DatasetProfile, adjustPValues, compare, rejectedHypotheses, type FeatureSchema } from "../../../src/monitoring/index.js";

const numeric = (name: string): FeatureSchema => ({ name, type: "numeric" });
const categorical = (name: string): FeatureSchema => ({ name, type: "categorical" });

function profile(schema: FeatureSchema[], rows: Record<string, unknown>[]): DatasetProfile {
  return DatasetProfile.fromRows(schema, rows);
}

const spread = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => ({ x: ((i * 37) % 101) / 10 + offset }));

describe("auto method (Evidently's rule)", () => {
  it("small reference: KS for numeric, chi-squared for categorical and for numerics with ≤ 5 values", () => {
    const schema = [numeric("x"), categorical("c"), numeric("flag")];
    const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ x: (i * 37) % 101, c: ["a", "b"][i % 2], flag: i % 2 }));
    const report = compare(profile(schema, rows(500)), profile(schema, rows(300)));
    expect(report.features.map((f) => [f.name, f.method])).toEqual([
      ["x", "ks"],
      ["c", "chisquare"],
      ["flag", "chisquare"],
    ]);
  });

  it("large reference (> 1000 values): normed Wasserstein for numeric, Jensen–Shannon for categorical", () => {
    const schema = [numeric("x"), categorical("c")];
    const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ x: (i * 37) % 101, c: ["a", "b", "c"][i % 3] }));
    const report = compare(profile(schema, rows(1500)), profile(schema, rows(200)));
    expect(report.features.map((f) => f.method)).toEqual(["wasserstein", "jensenshannon"]);
    expect(report.drift).toBe(false);
  });
});

describe("defined results for awkward data", () => {
  it("a category unseen in the reference gives a finite chi-squared, an unseenShare and drift", () => {
    const schema = [categorical("c")];
    const ref = profile(
      schema,
      Array.from({ length: 200 }, (_, i) => ({ c: i % 2 ? "a" : "b" })),
    );
    const cur = profile(
      schema,
      Array.from({ length: 100 }, (_, i) => ({ c: i % 4 === 0 ? "new" : i % 2 ? "a" : "b" })),
    );
    for (const method of ["chisquare", "psi", "jensenshannon"] as const) {
      const [f] = compare(ref, cur, { method }).features;
      expect(Number.isFinite(f!.statistic), method).toBe(true);
      expect(f!.unseenShare).toBeCloseTo(0.25, 12);
      expect(f!.drift, method).toBe(true);
    }
  });

  it("NaN, Infinity and missing cells stay out of the statistics and show in currentMissingShare", () => {
    const schema = [numeric("x")];
    const ref = profile(schema, spread(300));
    const cur = profile(schema, [...spread(300), { x: Number.NaN }, { x: "Infinity" }, { x: null }, {}]);
    const [f] = compare(ref, cur, { method: "ks" }).features;
    expect(f!.statistic).toBe(0);
    expect(f!.pValue).toBe(1);
    expect(f!.currentMissingShare).toBeCloseTo(4 / 304, 12);
  });

  it("an empty or all-missing window is insufficient-data for every method, never NaN", () => {
    const schema = [numeric("x"), categorical("c")];
    const ref = profile(
      schema,
      spread(100).map((r) => ({ ...r, c: "a" })),
    );
    const empty = profile(schema, [{ x: null, c: "" }, { x: "NaN" }]);
    for (const method of ["auto", "psi", "ks", "jensenshannon", "chisquare"] as const) {
      const report = compare(ref, empty, { method: method === "ks" ? "auto" : method, methods: method === "ks" ? { x: "ks" } : {} });
      expect(report.status).toBe("insufficient-data");
      expect(report.drift).toBe(false);
      expect(report.driftShare).toBe(0);
      for (const f of report.features) {
        expect(f.status).toBe("insufficient-data");
        expect(f.statistic).toBeNull();
        expect(f.reason).toMatch(/current has no valid values \(all missing or non-finite\)/);
      }
    }
  });

  it("a window below minSamples is insufficient-data with the count in the reason", () => {
    const schema = [numeric("x")];
    const [f] = compare(profile(schema, spread(100)), profile(schema, spread(8)), { minSamples: 30 }).features;
    expect(f!.status).toBe("insufficient-data");
    expect(f!.reason).toBe("x: current has 8 valid values, fewer than the 30 needed");
  });

  it("constant columns compare without dividing by zero", () => {
    const schema = [numeric("x")];
    const constant = (v: number, n: number) => Array.from({ length: n }, () => ({ x: v }));
    for (const method of ["psi", "ks", "jensenshannon", "wasserstein", "chisquare"] as const) {
      const same = compare(profile(schema, constant(3, 50)), profile(schema, constant(3, 40)), { method }).features[0]!;
      expect(same.drift, method).toBe(false);
      expect(Number.isFinite(same.statistic), method).toBe(true);
      const moved = compare(profile(schema, constant(3, 50)), profile(schema, constant(4, 40)), { method }).features[0]!;
      expect(moved.drift, method).toBe(true);
    }
    // Wasserstein normed with a zero reference std uses Evidently's 0.001 floor: |4 − 3| / 0.001.
    expect(compare(profile(schema, constant(3, 50)), profile(schema, constant(4, 40)), { method: "wasserstein" }).features[0]!.statistic).toBeCloseTo(1000, 9);
  });

  it("rejects KS on a categorical feature with a message saying what to use", () => {
    const schema = [categorical("c")];
    const p = profile(schema, [{ c: "a" }]);
    expect(() => compare(p, p, { method: "ks" })).toThrow(/"c" is categorical; ks needs a numeric feature \(use chisquare, psi or jensenshannon\)/);
  });
});

describe("dataset drift share, prediction drift and multiple testing", () => {
  const schema = [numeric("a"), numeric("b"), numeric("c"), numeric("prediction")];
  const rows = (n: number, shift: Record<string, number>) =>
    Array.from({ length: n }, (_, i) => {
      const v = ((i * 37) % 101) / 10;
      return { a: v + (shift.a ?? 0), b: v + (shift.b ?? 0), c: v + (shift.c ?? 0), prediction: v + (shift.prediction ?? 0) };
    });

  it("drift share counts drifted features; prediction features are reported apart", () => {
    const report = compare(profile(schema, rows(400, {})), profile(schema, rows(400, { a: 3, b: 3, prediction: 3 })), { predictionFeatures: ["prediction"] });
    expect(report.features.map((f) => f.name)).toEqual(["a", "b", "c"]);
    expect(report.driftedFeatures).toBe(2);
    expect(report.driftShare).toBeCloseTo(2 / 3, 12);
    expect(report.drift).toBe(true);
    expect(report.predictionDrift).toBe(true);
    expect(report.prediction[0]!.name).toBe("prediction");
    const calm = compare(profile(schema, rows(400, {})), profile(schema, rows(400, { a: 3 })), { predictionFeatures: ["prediction"] });
    expect(calm.drift).toBe(false);
    expect(calm.features[0]!.reason).toMatch(/^a: ks p-value .* < 0.05 \(drift\)$/);
  });

  it("Bonferroni and Benjamini–Hochberg flag nothing for p = 0.01..0.05 at α = 0.05 (strict <)", () => {
    const p = [0.01, 0.02, 0.03, 0.04, 0.05];
    const alphas = p.map(() => 0.05);
    expect(rejectedHypotheses(p, alphas, "bonferroni")).toEqual([false, false, false, false, false]);
    expect(rejectedHypotheses(p, alphas, "benjamini-hochberg")).toEqual([false, false, false, false, false]);
    expect(rejectedHypotheses(p, alphas, "none")).toEqual([true, true, true, true, false]);
    // statsmodels multipletests(p, method="fdr_bh"): [0.05]*5; Bonferroni min(1, 5p)
    adjustPValues(p, "benjamini-hochberg").forEach((q) => expect(q).toBeCloseTo(0.05, 12));
    expect(adjustPValues([0.001, 0.04, 0.3], "bonferroni")).toEqual([0.003, 0.12, 0.8999999999999999]);
    expect(rejectedHypotheses([0.001, 0.012, 0.04, 0.3], [0.05, 0.05, 0.05, 0.05], "benjamini-hochberg")).toEqual([true, true, false, false]);
  });

  it("a correction in compare() changes which features count as drifted and says so", () => {
    const ref = profile(schema, rows(60, {}));
    const cur = profile(schema, rows(60, { a: 2.5 }));
    const plain = compare(ref, cur);
    const corrected = compare(ref, cur, { correction: "bonferroni" });
    const a = plain.features[0]!;
    expect(a.pValue!).toBeLessThan(0.05);
    expect(a.pValue! * 3).toBeGreaterThanOrEqual(0.05);
    expect(a.drift).toBe(true);
    expect(corrected.features[0]!.drift).toBe(false);
    expect(corrected.features[0]!.reason).toMatch(/not significant at α=0.05 after bonferroni/);
  });
});
