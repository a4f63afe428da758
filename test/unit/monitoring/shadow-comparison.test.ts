// Given what the serving sidecars report about the shadow, the platform engineer sees this verdict and these numbers.
import { describe, expect, it } from "vitest";
import { mcnemarExact } from "../../../src/monitoring/paired-tests.js";
import { bucketQuantileMs, compareReverseShadow, compareShadow, type ShadowRules } from "../../../src/monitoring/shadow-comparison.js";
import { SHADOW_LATENCY_BOUNDS_MS, type ShadowSummary } from "../../../src/monitoring/shadow-summary.js";

const rules: ShadowRules = { minPairs: 500, minLabelledPairs: 200, confidence: 0.95, minImprovement: 0.01, maxErrorRateRise: 0.05, maxLatencyRatio: 1.5 };

/** Latency counts with every request in the bucket whose upper bound is `ms`. */
function latency(ms: number, count: number): number[] {
  const out = new Array<number>(SHADOW_LATENCY_BOUNDS_MS.length + 1).fill(0);
  const i = SHADOW_LATENCY_BOUNDS_MS.findIndex((b) => b >= ms);
  out[i < 0 ? out.length - 1 : i] = count;
  return out;
}

function classification(
  c: { bothRight: number; servingOnly: number; shadowOnly: number; bothWrong: number },
  over: Partial<ShadowSummary> = {},
): ShadowSummary {
  return {
    version: "v2",
    since: "2026-12-05T12:00:00Z",
    mirrored: 1000,
    dropped: 0,
    failed: 0,
    rows: 1000,
    agreedRows: 900,
    sumAbsDifference: 0,
    pairs: { task: "classification", ...c },
    servingLatency: latency(5, 1000),
    shadowLatency: latency(5, 1000),
    ...over,
  };
}

describe("shadow comparison of a classifier (McNemar's exact test on the labelled pairs)", () => {
  it("passes a candidate that wins more disagreements and improves accuracy by more than minImprovement", () => {
    const r = compareShadow(classification({ bothRight: 150, servingOnly: 10, shadowOnly: 30, bothWrong: 10 }), rules, 0);
    expect(r.verdict).toBe("Passed");
    expect(r.metric).toBe("accuracy");
    expect(r.serving).toBe(0.8);
    expect(r.shadow).toBe(0.9);
    expect(r.improvement).toBe(0.1);
    expect(r.test).toBe("McNemarExact");
    expect(r.pValue).toBeLessThan(0.01);
    expect(r.agreement).toBe(0.9);
    expect(r.message).toMatch(/✓ accuracy 0.9 vs serving 0.8 on 200 labelled pairs/);
  });

  it("rejects a candidate significantly worse on the same requests", () => {
    const r = compareShadow(classification({ bothRight: 150, servingOnly: 35, shadowOnly: 10, bothWrong: 5 }), rules, 0);
    expect(r.verdict).toBe("Rejected");
    expect(r.failedRule).toBe("SignificantlyWorse");
    expect(r.pValue).toBeLessThan(0.05);
  });

  it("rejects a candidate not significantly worse but not better by minImprovement", () => {
    const r = compareShadow(classification({ bothRight: 180, servingOnly: 6, shadowOnly: 6, bothWrong: 8 }), rules, 0);
    expect(r.verdict).toBe("Rejected");
    expect(r.failedRule).toBe("MinImprovement");
    expect(r.pValue).toBe(1);
  });

  it("stays Pending below minPairs or minLabelledPairs, whatever the numbers say so far", () => {
    const fewLabels = compareShadow(classification({ bothRight: 50, servingOnly: 40, shadowOnly: 0, bothWrong: 9 }), rules, 0);
    expect(fewLabels.verdict).toBe("Pending");
    expect(fewLabels.message).toMatch(/1000 of 500 pairs, 99 of 200 labelled/);
    const fewRows = compareShadow(classification({ bothRight: 190, servingOnly: 0, shadowOnly: 10, bothWrong: 0 }, { rows: 400, mirrored: 400 }), rules, 0);
    expect(fewRows.verdict).toBe("Pending");
  });

  it("rejects a candidate that fails requests as soon as minPairs were mirrored, before enough pairs", () => {
    const r = compareShadow(
      classification({ bothRight: 10, servingOnly: 0, shadowOnly: 0, bothWrong: 0 }, { mirrored: 600, failed: 300, rows: 300 }),
      rules,
      0.01,
    );
    expect(r.verdict).toBe("Rejected");
    expect(r.failedRule).toBe("ErrorRate");
    expect(r.shadowErrorRate).toBe(0.5);
    expect(r.servingErrorRate).toBe(0.01);
  });

  it("rejects a candidate whose p99 latency is certainly past maxLatencyRatio × the serving p99", () => {
    const good = { bothRight: 150, servingOnly: 10, shadowOnly: 30, bothWrong: 10 };
    const slow = compareShadow(classification(good, { shadowLatency: latency(100, 1000) }), rules, 0);
    expect(slow.verdict).toBe("Rejected");
    expect(slow.failedRule).toBe("MaxLatencyRatio");
    expect(slow.shadowP99Ms).toBe(100);
    expect(slow.servingP99Ms).toBe(5);
    // One bucket up is within the buckets' resolution: not proof of a slower model.
    expect(compareShadow(classification(good, { shadowLatency: latency(10, 1000) }), rules, 0).verdict).toBe("Passed");
  });

  it("does not judge p99 latency on fewer than 100 timed requests (a fresh shadow's cold first request is not its p99)", () => {
    const good = { bothRight: 150, servingOnly: 10, shadowOnly: 30, bothWrong: 10 };
    const r = compareShadow(classification(good, { mirrored: 24, servingLatency: latency(5, 24), shadowLatency: latency(50, 24) }), rules, 0);
    expect(r.verdict).toBe("Passed");
    expect(r.shadowP99Ms).toBe(50);
    expect(r.message).toMatch(/p99 ≤50 ms vs serving ≤5 ms \(promotion.maxLatencyRatio 1.5\): not judged on 24 timed requests \(fewer than 100\)/);
  });
});

describe("shadow comparison of a regressor (Wilcoxon signed-rank on |serving error| − |shadow error|)", () => {
  const regression = (diffs: number[], servingSum: number, shadowSum: number): ShadowSummary => ({
    ...classification({ bothRight: 0, servingOnly: 0, shadowOnly: 0, bothWrong: 0 }),
    pairs: { task: "regression", count: diffs.length, servingAbsErrorSum: servingSum, shadowAbsErrorSum: shadowSum, diffs },
  });
  const spread = (n: number, shift: number) => Array.from({ length: n }, (_, i) => ((i % 17) - 8) / 10 + shift);

  it("passes a candidate with a lower MAE on the same rows", () => {
    const diffs = spread(300, 0.2);
    const r = compareShadow(regression(diffs, 300, 240), rules, 0);
    expect(r.verdict).toBe("Passed");
    expect(r.metric).toBe("mae");
    expect(r.serving).toBe(1);
    expect(r.shadow).toBe(0.8);
    expect(r.improvement).toBe(0.2);
    expect(r.test).toBe("WilcoxonSignedRank");
  });

  it("rejects a candidate whose errors are significantly larger", () => {
    const r = compareShadow(regression(spread(300, -0.3), 300, 390), rules, 0);
    expect(r.verdict).toBe("Rejected");
    expect(r.failedRule).toBe("SignificantlyWorse");
  });

  it("does not call a candidate worse when every difference is zero (an identical model): it just does not improve", () => {
    const r = compareShadow(regression(new Array<number>(300).fill(0), 300, 300), rules, 0);
    expect(r.pValue).toBe(1);
    expect(r.failedRule).toBe("MinImprovement");
  });
});

describe("latency buckets", () => {
  it("finds the bucket holding the 99th percentile, past the last bound included", () => {
    expect(bucketQuantileMs(latency(5, 100), 0.99)).toEqual({ lower: 2, upper: 5 });
    expect(bucketQuantileMs(latency(60_000, 100), 0.99)).toEqual({ lower: 10000, upper: Infinity });
    expect(bucketQuantileMs(latency(5, 0), 0.99)).toBeUndefined();
  });
});

describe("reverse shadow: the previous version in the shadow while the promoted one serves", () => {
  // servingOnly: rows only the promoted (serving) version got right; shadowOnly: rows only the previous version did.
  const previousLeads = classification({ bothRight: 150, servingOnly: 8, shadowOnly: 18, bothWrong: 24 }, { version: "v1" });

  it("rolls back when the previous version is significantly better on the same labelled pairs, naming both numbers", () => {
    const r = compareReverseShadow(classification({ bothRight: 150, servingOnly: 5, shadowOnly: 30, bothWrong: 15 }, { version: "v1" }), rules, false);
    expect(r).toMatchObject({ verdict: "Rejected", failedRule: "PreviousVersionBetter", serving: 0.775, shadow: 0.9, test: "McNemarExact" });
    expect(r.pValue).toBeLessThan(0.001);
    expect(r.oneSided).toBeUndefined();
    expect(r.message).toMatch(/✗ previous v1 accuracy 0.9 vs promoted 0.775 on 200 labelled pairs \(McNemarExact p .*, significantly better below 0.05\)/);
  });

  it("the same look, two-sided, lets a lead that is not significant pass; an estimate that fixed the direction first makes it one-sided", () => {
    const twoSided = mcnemarExact(8, 18).pValue;
    expect(twoSided).toBeGreaterThan(0.05);
    expect(twoSided / 2).toBeLessThan(0.05);
    expect(compareReverseShadow(previousLeads, rules, false)).toMatchObject({ verdict: "Passed" });
    const directional = compareReverseShadow(previousLeads, rules, true);
    expect(directional).toMatchObject({ verdict: "Rejected", failedRule: "PreviousVersionBetter", oneSided: true });
    // status keeps the two-sided p-value; the message names the one-sided one that decided.
    expect(directional.pValue).toBe(Number(twoSided.toPrecision(4)));
    expect(directional.message).toMatch(/McNemarExact one-sided p 0.037/);
  });

  it("a promoted version ahead is never rolled back, one-sided or not (the p-value is not halved the wrong way)", () => {
    const promotedLeads = classification({ bothRight: 150, servingOnly: 30, shadowOnly: 5, bothWrong: 15 }, { version: "v1" });
    for (const directional of [false, true]) {
      const r = compareReverseShadow(promotedLeads, rules, directional);
      expect(r.verdict).toBe("Passed");
      expect(r.message).not.toMatch(/one-sided/);
    }
  });

  it("is Pending below minPairs or minLabelledPairs, whatever the numbers say so far", () => {
    const r = compareReverseShadow(classification({ bothRight: 10, servingOnly: 0, shadowOnly: 20, bothWrong: 0 }, { version: "v1", rows: 400 }), rules, true);
    expect(r.verdict).toBe("Pending");
    expect(r.failedRule).toBeUndefined();
    expect(r.message).toMatch(/^collecting: 400 of 500 pairs, 30 of 200 labelled; 1000 mirrored to the previous version/);
  });

  it("a regressor: the previous version's significantly smaller errors roll back (Wilcoxon signed-rank)", () => {
    const diffs = Array.from({ length: 300 }, (_, i) => ((i % 17) - 8) / 10 + 0.3);
    const r = compareReverseShadow(
      { ...previousLeads, pairs: { task: "regression", count: diffs.length, servingAbsErrorSum: 390, shadowAbsErrorSum: 300, diffs } },
      rules,
      false,
    );
    expect(r).toMatchObject({ verdict: "Rejected", failedRule: "PreviousVersionBetter", metric: "mae", serving: 1.3, shadow: 1, test: "WilcoxonSignedRank" });
  });
});
