// Golden values from scipy/numpy (test/oracle/generate.py, versions pinned in test/oracle/requirements.txt).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DatasetProfile,
  chiSquaredContingency,
  chiSquaredSf,
  compare,
  jensenShannonDistance,
  kolmogorovSf,
  ksTwoSample,
  normedWasserstein,
  sortedPoints,
  wassersteinDistance,
  type DriftMethod,
  type FeatureSchema,
  type KsMethod,
} from "../../../src/monitoring/index.js";

function fixture<T>(name: string): T[] {
  const text = readFileSync(new URL(`../../oracle/fixtures/${name}`, import.meta.url), "utf8");
  return (JSON.parse(text) as { cases: T[] }).cases;
}

/** |actual − expected| ≤ 1e-9, relative for values above 1 (chi-squared statistics). */
function expectClose(actual: number | null | undefined, expected: number, label: string): void {
  expect(actual, label).not.toBeNull();
  const tolerance = 1e-9 * Math.max(1, Math.abs(expected));
  expect(Math.abs((actual as number) - expected), `${label}: got ${actual}, scipy ${expected}`).toBeLessThanOrEqual(tolerance);
}

describe("ks_2samp (scipy)", () => {
  const cases = fixture<{ name: string; a: number[]; b: number[]; method: KsMethod; statistic: number; pValue: number }>("ks_2samp.json");
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const result = ksTwoSample(c.a, c.b, c.method);
    expectClose(result.statistic, c.statistic, "statistic");
    expectClose(result.pValue, c.pValue, "p-value");
  });
});

describe("kstwo.sf (scipy)", () => {
  const cases = fixture<{ n: number; x: number; sf: number }>("kstwo_sf.json");
  it.each(cases.map((c) => [`n=${c.n} x=${c.x}`, c] as const))("%s", (_name, c) => {
    expectClose(kolmogorovSf(c.n, c.x), c.sf, "sf");
  });
});

describe("chi-squared (scipy chi2_contingency, correction=False; chi2.sf)", () => {
  const { contingency, sf } = fixture<never>("chi2.json") as unknown as {
    contingency: { name: string; table: number[][]; statistic: number; pValue: number; dof: number }[];
    sf: { x: number; dof: number; sf: number }[];
  };
  it.each(contingency.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const result = chiSquaredContingency(c.table);
    expectClose(result.statistic, c.statistic, "statistic");
    expectClose(result.pValue, c.pValue, "p-value");
    expect(result.dof).toBe(c.dof);
  });
  it("chi2.sf over a range of tails", () => {
    for (const c of sf) expectClose(chiSquaredSf(c.x, c.dof), c.sf, `sf(${c.x}, ${c.dof})`);
  });
});

describe("jensenshannon (scipy)", () => {
  const cases = fixture<{ name: string; p: number[]; q: number[]; base: 2 | "e"; distance: number }>("jensenshannon.json");
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expectClose(jensenShannonDistance(c.p, c.q, c.base === "e" ? Math.E : 2), c.distance, "distance");
  });
});

describe("wasserstein_distance (scipy), raw and normed by reference std", () => {
  const cases = fixture<{ name: string; u: number[]; v: number[]; distance: number; normed: number }>("wasserstein.json");
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const raw = wassersteinDistance(sortedPoints(c.u), sortedPoints(c.v));
    expectClose(raw, c.distance, "distance");
    const mean = c.u.reduce((a, b) => a + b, 0) / c.u.length;
    const std = Math.sqrt(c.u.reduce((a, b) => a + (b - mean) ** 2, 0) / c.u.length);
    expectClose(normedWasserstein(raw, std), c.normed, "normed");
  });
});

interface DriftCase {
  name: string;
  type: "numeric" | "categorical";
  reference: (number | string)[];
  current: (number | string)[];
  psi: number;
  jensenshannon: number;
  wassersteinRaw?: number;
  wasserstein?: number;
  ks?: { statistic: number; pValue: number };
  chisquare?: { statistic: number; pValue: number };
}

describe("compare() on exact profiles equals the scipy / Evidently formulas", () => {
  const cases = fixture<DriftCase>("drift.json");
  it.each(cases.map((c) => [`${c.type}: ${c.name}`, c] as const))("%s", (_name, c) => {
    const schema: FeatureSchema[] = [{ name: "x", type: c.type }];
    const profile = (values: (number | string)[]): DatasetProfile =>
      DatasetProfile.fromRows(
        schema,
        values.map((x) => ({ x })),
        { exactLimit: Infinity },
      );
    const ref = profile(c.reference);
    const cur = profile(c.current);
    const run = (method: DriftMethod) => compare(ref, cur, { method }).features[0]!;
    expectClose(run("psi").statistic, c.psi, "psi");
    expectClose(run("jensenshannon").statistic, c.jensenshannon, "jensenshannon");
    if (c.type === "numeric") {
      const w = run("wasserstein");
      expectClose(w.statistic, c.wasserstein!, "wasserstein normed");
      expectClose(w.wassersteinRaw, c.wassersteinRaw!, "wasserstein raw");
      const ks = run("ks");
      expectClose(ks.statistic, c.ks!.statistic, "ks statistic");
      expectClose(ks.pValue, c.ks!.pValue, "ks p-value");
    } else {
      const chi = run("chisquare");
      expectClose(chi.statistic, c.chisquare!.statistic, "chisquare statistic");
      expectClose(chi.pValue, c.chisquare!.pValue, "chisquare p-value");
    }
  });
});
