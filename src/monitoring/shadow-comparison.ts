// The shadow decision: the candidate against the serving version on the same live requests, from the merged
// ShadowSummary of the serving pods. One look, at the planned sample size (minPairs / minLabelledPairs): a test
// repeated on every scrape until it says "worse" or "better" would reject (or pass) by chance far more often than
// 1 − confidence. The reverse shadow (after a promotion, the previous version in the shadow) is judged on the same
// pairs by the same test, the other way round: is the previous version significantly better? Pure.
import { mcnemarExact, wilcoxonSignedRank } from "./paired-tests.js";
import { SHADOW_LATENCY_BOUNDS_MS, type ShadowSummary } from "./shadow-summary.js";

export interface ShadowRules {
  minPairs: number;
  minLabelledPairs: number;
  /** The candidate is significantly worse when p < 1 − confidence and it lost more pairs than it won. */
  confidence: number;
  /** promotion.minImprovement: absolute metric difference on the labelled pairs. */
  minImprovement: number;
  /** promotion.maxLiveRegression: how much higher the candidate's error rate may be. */
  maxErrorRateRise: number;
  /** promotion.maxLatencyRatio: candidate p99 ≤ this × serving p99. */
  maxLatencyRatio: number;
}

export type ShadowFailedRule = "SignificantlyWorse" | "ErrorRate" | "MinImprovement" | "MaxLatencyRatio" | "PreviousVersionBetter";

/** The summary's counts (the candidate, since when, mirrored, dropped, failed, pairs) with the comparison. */
export interface ShadowComparisonResult extends Pick<ShadowSummary, "version" | "since" | "mirrored" | "dropped" | "failed" | "rows"> {
  agreement?: number;
  labelledPairs: number;
  metric: "accuracy" | "mae";
  serving?: number;
  shadow?: number;
  improvement?: number;
  test?: "McNemarExact" | "WilcoxonSignedRank";
  pValue?: number;
  /** Reverse shadow: the direction was fixed in advance by the label-free estimate, and the one-sided p-value decided. */
  oneSided?: boolean;
  servingErrorRate?: number;
  shadowErrorRate?: number;
  /** Bucket upper bounds; absent when the 99th percentile lies past the last bound (or no request was timed). */
  servingP99Ms?: number;
  shadowP99Ms?: number;
  verdict: "Pending" | "Passed" | "Rejected";
  failedRule?: ShadowFailedRule;
  message: string;
}

const round4 = (x: number) => Number(x.toPrecision(4));

function fmt(x: number | undefined): string {
  return x === undefined ? "n/a" : String(Number(x.toPrecision(3)));
}

/** Timed requests of both models a p99 latency needs before the latency rule judges it. */
export const MIN_LATENCY_SAMPLES = 100;

const total = (counts: readonly number[]) => counts.reduce((a, b) => a + b, 0);

/** The bucket holding the q-quantile: its bounds in ms (upper Infinity past the last bound); undefined without counts. */
export function bucketQuantileMs(counts: readonly number[], q: number): { lower: number; upper: number } | undefined {
  const n = total(counts);
  if (n === 0) return undefined;
  const rank = Math.ceil(q * n);
  let seen = 0;
  let i = 0;
  for (; i < counts.length - 1; i++) {
    seen += counts[i]!;
    if (seen >= rank) break;
  }
  return { lower: SHADOW_LATENCY_BOUNDS_MS[i - 1] ?? 0, upper: SHADOW_LATENCY_BOUNDS_MS[i] ?? Infinity };
}

interface PairedMetric {
  metric: "accuracy" | "mae";
  labelled: number;
  serving?: number;
  shadow?: number;
  /** Positive: the candidate is better. */
  improvement?: number;
  test: "McNemarExact" | "WilcoxonSignedRank";
  pValue?: number;
  /** The candidate lost more of the informative pairs than it won. */
  shadowBehind: boolean;
  /** The candidate won more of the informative pairs than it lost. */
  shadowAhead: boolean;
}

function pairedMetric(pairs: ShadowSummary["pairs"]): PairedMetric {
  if (pairs.task === "classification") {
    const n = pairs.bothRight + pairs.servingOnly + pairs.shadowOnly + pairs.bothWrong;
    const test = mcnemarExact(pairs.servingOnly, pairs.shadowOnly);
    const serving = n ? (pairs.bothRight + pairs.servingOnly) / n : undefined;
    const shadow = n ? (pairs.bothRight + pairs.shadowOnly) / n : undefined;
    return {
      metric: "accuracy",
      labelled: n,
      serving,
      shadow,
      improvement: n ? (pairs.shadowOnly - pairs.servingOnly) / n : undefined,
      test: "McNemarExact",
      pValue: n ? test.pValue : undefined,
      shadowBehind: pairs.servingOnly > pairs.shadowOnly,
      shadowAhead: pairs.shadowOnly > pairs.servingOnly,
    };
  }
  const n = pairs.count;
  // diffs = |serving error| − |shadow error|: R− > R+ means the candidate's errors are larger.
  const test = wilcoxonSignedRank(pairs.diffs);
  const serving = n ? pairs.servingAbsErrorSum / n : undefined;
  const shadow = n ? pairs.shadowAbsErrorSum / n : undefined;
  return {
    metric: "mae",
    labelled: n,
    serving,
    shadow,
    improvement: serving !== undefined && shadow !== undefined ? serving - shadow : undefined,
    test: "WilcoxonSignedRank",
    // All differences zero: the models are equally close on every row, which is no evidence either way.
    pValue: n ? (Number.isNaN(test.pValue) ? 1 : test.pValue) : undefined,
    shadowBehind: test.rMinus > test.rPlus,
    shadowAhead: test.rPlus > test.rMinus,
  };
}

/** Both models' numbers on the pairs, verdict Pending: what either direction's judgement starts from. */
function pairedNumbers(summary: ShadowSummary, servingErrorRate: number | undefined) {
  const m = pairedMetric(summary.pairs);
  const shadowErrorRate = summary.mirrored > 0 ? summary.failed / summary.mirrored : undefined;
  const servingP99 = bucketQuantileMs(summary.servingLatency, 0.99);
  const shadowP99 = bucketQuantileMs(summary.shadowLatency, 0.99);
  const result: ShadowComparisonResult = {
    version: summary.version,
    since: summary.since,
    mirrored: summary.mirrored,
    dropped: summary.dropped,
    failed: summary.failed,
    rows: summary.rows,
    labelledPairs: m.labelled,
    metric: m.metric,
    verdict: "Pending",
    message: "",
  };
  if (summary.rows > 0) result.agreement = round4(summary.agreedRows / summary.rows);
  if (m.serving !== undefined) result.serving = round4(m.serving);
  if (m.shadow !== undefined) result.shadow = round4(m.shadow);
  if (m.improvement !== undefined) result.improvement = round4(m.improvement);
  if (m.pValue !== undefined) {
    result.test = m.test;
    result.pValue = round4(m.pValue);
  }
  if (servingErrorRate !== undefined) result.servingErrorRate = round4(servingErrorRate);
  if (shadowErrorRate !== undefined) result.shadowErrorRate = round4(shadowErrorRate);
  if (servingP99 && Number.isFinite(servingP99.upper)) result.servingP99Ms = servingP99.upper;
  if (shadowP99 && Number.isFinite(shadowP99.upper)) result.shadowP99Ms = shadowP99.upper;
  return { result, m, shadowErrorRate, servingP99, shadowP99 };
}

const pairCounts = (summary: ShadowSummary, m: PairedMetric, rules: Pick<ShadowRules, "minPairs" | "minLabelledPairs">) =>
  `${summary.rows} of ${rules.minPairs} pairs, ${m.labelled} of ${rules.minLabelledPairs} labelled`;

/**
 * Judges the shadow. Rejected for errors as soon as `minPairs` requests were mirrored (a candidate that fails
 * requests never makes pairs); every other rule waits for both minimums, then decides once.
 * `servingErrorRate`: the serving pods' failed / served requests over the same period.
 */
export function compareShadow(summary: ShadowSummary, rules: ShadowRules, servingErrorRate: number | undefined): ShadowComparisonResult {
  const { result, m, shadowErrorRate, servingP99, shadowP99 } = pairedNumbers(summary, servingErrorRate);
  const alpha = 1 - rules.confidence;

  const rules_: string[] = [];
  let failedRule: ShadowFailedRule | undefined;
  const check = (ok: boolean, rule: ShadowFailedRule, text: string) => {
    rules_.push(`${ok ? "✓" : "✗"} ${text}`);
    if (!ok) failedRule ??= rule;
  };
  const errorRise = (shadowErrorRate ?? 0) - (servingErrorRate ?? 0);
  const errorText = `error rate ${fmt(shadowErrorRate)} vs serving ${fmt(servingErrorRate)} (rise ${fmt(errorRise)}, promotion.maxLiveRegression ${rules.maxErrorRateRise})`;
  const counts = pairCounts(summary, m, rules);
  if (summary.mirrored >= rules.minPairs && errorRise > rules.maxErrorRateRise) {
    check(false, "ErrorRate", errorText);
  } else if (summary.rows < rules.minPairs || m.labelled < rules.minLabelledPairs) {
    result.message = `collecting: ${counts}; ${summary.mirrored} mirrored, ${summary.dropped} dropped, ${summary.failed} failed`;
    return result;
  } else {
    const worse = m.shadowBehind && m.pValue !== undefined && m.pValue < alpha;
    check(
      !worse,
      "SignificantlyWorse",
      `${m.metric} ${fmt(m.shadow)} vs serving ${fmt(m.serving)} on ${m.labelled} labelled pairs (${m.test} p ${fmt(m.pValue)}, significantly worse below ${fmt(alpha)})`,
    );
    check(errorRise <= rules.maxErrorRateRise, "ErrorRate", errorText);
    check(
      (m.improvement ?? -Infinity) >= rules.minImprovement,
      "MinImprovement",
      `improvement ${fmt(m.improvement)} (promotion.minImprovement ${rules.minImprovement})`,
    );
    const p99 = (b: { lower: number; upper: number } | undefined) => (b === undefined ? "n/a" : Number.isFinite(b.upper) ? `≤${b.upper} ms` : `>${b.lower} ms`);
    const latencyText = `p99 ${p99(shadowP99)} vs serving ${p99(servingP99)} (promotion.maxLatencyRatio ${rules.maxLatencyRatio})`;
    const timed = Math.min(total(summary.shadowLatency), total(summary.servingLatency));
    // Below 100 timed requests a "p99" is the slowest request — for a fresh shadow its cold first one.
    if (timed < MIN_LATENCY_SAMPLES) rules_.push(`– ${latencyText}: not judged on ${timed} timed requests (fewer than ${MIN_LATENCY_SAMPLES})`);
    else {
      // Buckets only bound a quantile: slower for sure when the candidate's bucket starts past ratio × the serving bucket's end.
      const latencyOk = !shadowP99 || !servingP99 || shadowP99.lower <= rules.maxLatencyRatio * servingP99.upper;
      check(latencyOk, "MaxLatencyRatio", latencyText);
    }
  }
  result.verdict = failedRule ? "Rejected" : "Passed";
  if (failedRule) result.failedRule = failedRule;
  result.message = `${counts}; ${rules_.join("; ")}`.slice(0, 1024);
  return result;
}

/**
 * Judges the reverse shadow: the serving pods run the promoted version, the shadow the one it replaced. Waits for
 * both minimums like the candidate's shadow, then: Rejected (PreviousVersionBetter) when the previous version won
 * more of the informative pairs and the paired test's p-value is below 1 − confidence, else Passed. With
 * `directional` (the label-free estimate said "worse" before the pairs were judged) the hypothesis' direction was
 * fixed in advance, so the one-sided p-value decides: half the two-sided one when the previous version leads (both
 * null distributions are symmetric). Error rate and latency are not judged here: Observing's own error-rate rule
 * watches the serving pods, and the previous version's latency was accepted when it served.
 */
export function compareReverseShadow(
  summary: ShadowSummary,
  rules: Pick<ShadowRules, "minPairs" | "minLabelledPairs" | "confidence">,
  directional: boolean,
): ShadowComparisonResult {
  const { result, m } = pairedNumbers(summary, undefined);
  const counts = pairCounts(summary, m, rules);
  if (summary.rows < rules.minPairs || m.labelled < rules.minLabelledPairs) {
    result.message = `collecting: ${counts}; ${summary.mirrored} mirrored to the previous version, ${summary.dropped} dropped, ${summary.failed} failed`;
    return result;
  }
  const alpha = 1 - rules.confidence;
  const halved = directional && m.shadowAhead && m.pValue !== undefined;
  const p = halved ? m.pValue! / 2 : m.pValue;
  const better = m.shadowAhead && p !== undefined && p < alpha;
  if (directional) result.oneSided = true;
  const pText = `${m.test} ${halved ? "one-sided " : ""}p ${fmt(p)}`;
  const text = `previous ${summary.version} ${m.metric} ${fmt(m.shadow)} vs promoted ${fmt(m.serving)} on ${m.labelled} labelled pairs (${pText}, significantly better below ${fmt(alpha)})`;
  result.verdict = better ? "Rejected" : "Passed";
  if (better) result.failedRule = "PreviousVersionBetter";
  result.message = `${counts}; ${better ? "✗" : "✓"} ${text}`.slice(0, 1024);
  return result;
}
