// The paired tests against scipy 1.14 (test/oracle/generate.py): what the shadow decision's p-values rest on.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mcnemarExact, wilcoxonSignedRank } from "../../../src/monitoring/paired-tests.js";

function fixture<T>(name: string): T[] {
  const text = readFileSync(new URL(`../../oracle/fixtures/${name}`, import.meta.url), "utf8");
  return (JSON.parse(text) as { cases: T[] }).cases;
}

describe("McNemar's exact test equals scipy.stats.binomtest on the discordant pairs", () => {
  for (const c of fixture<{ servingOnly: number; shadowOnly: number; pValue: number }>("mcnemar_exact.json")) {
    it(`servingOnly ${c.servingOnly}, shadowOnly ${c.shadowOnly}: p = ${c.pValue.toPrecision(6)}`, () => {
      const r = mcnemarExact(c.servingOnly, c.shadowOnly);
      // Relative: the log-sum over up to 250 000 terms costs a few digits at the largest n.
      expect(Math.abs(r.pValue - c.pValue) / c.pValue).toBeLessThan(1e-8);
      expect(r.informative).toBe(c.servingOnly + c.shadowOnly);
    });
  }
  it("is symmetric: swapping the models gives the same p-value", () => {
    expect(mcnemarExact(60, 40).pValue).toBe(mcnemarExact(40, 60).pValue);
  });
});

describe("Wilcoxon signed-rank equals scipy.stats.wilcoxon (zeros dropped, ties averaged, exact up to 50 rows)", () => {
  for (const c of fixture<{ name: string; d: number[]; statistic: number; pValue: number }>("wilcoxon.json")) {
    it(`${c.name}: W = ${c.statistic}, p = ${c.pValue.toPrecision(6)}`, () => {
      const r = wilcoxonSignedRank(c.d);
      expect(r.statistic).toBe(c.statistic);
      expect(Math.abs(r.pValue - c.pValue) / c.pValue).toBeLessThan(1e-8);
    });
  }
  it("says which side won: positive differences (the second model closer) give R+ > R−", () => {
    const r = wilcoxonSignedRank([1, 2, 3, 4, 5, -0.5]);
    expect(r.rPlus).toBeGreaterThan(r.rMinus);
  });
  it("has no p-value when every difference is zero (both models equally close everywhere)", () => {
    const r = wilcoxonSignedRank([0, 0, 0]);
    expect(r.informative).toBe(0);
    expect(Number.isNaN(r.pValue)).toBe(true);
  });
});
