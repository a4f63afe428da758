// What a serving sidecar reports about the shadow it mirrors to: both models' answers on the same requests, paired
// row by row with the labels that came back. Counts add across replicas; the regression differences are a bounded
// sample (the newest) so a summary stays small. The operator merges these and runs the paired test.
import { Type } from "@sinclair/typebox";

/** Regression differences a sidecar keeps (the newest), and a merged summary keeps. */
export const MAX_SHADOW_DIFFS = 10_000;

/** Upper bounds (ms) of the latency buckets both models' mirrored requests are counted in; the last bucket is +Inf. */
export const SHADOW_LATENCY_BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

/** Labelled pairs of a classifier: which of the two models was right on each labelled row. */
export interface ClassificationPairs {
  task: "classification";
  bothRight: number;
  servingOnly: number;
  shadowOnly: number;
  bothWrong: number;
}

/** Labelled pairs of a regressor: per labelled row |serving error| − |shadow error| (positive: the shadow is closer). */
export interface RegressionPairs {
  task: "regression";
  count: number;
  servingAbsErrorSum: number;
  shadowAbsErrorSum: number;
  /** The newest differences, at most MAX_SHADOW_DIFFS. */
  diffs: number[];
}

export interface ShadowSummary {
  /** The candidate version the sidecar mirrors to. */
  version: string;
  /** When mirroring to this version began (RFC 3339). */
  since: string;
  /** Requests sent to the shadow. */
  mirrored: number;
  /** Requests not mirrored because the bounded queue was full (never delays the user's request). */
  dropped: number;
  /** Mirrored requests the shadow refused (non-2xx) or did not answer. */
  failed: number;
  /** Rows both models answered. */
  rows: number;
  /** Of those, rows where the predicted class is the same (classification) or predictions within 1e-9 relative (regression). */
  agreedRows: number;
  /** Sum over rows of |serving prediction − shadow prediction| (regression; 0 for classification). */
  sumAbsDifference: number;
  pairs: ClassificationPairs | RegressionPairs;
  /** Counts per SHADOW_LATENCY_BOUNDS_MS bucket (+Inf last) of the mirrored requests: the serving model's own latency and the shadow's. */
  servingLatency: number[];
  shadowLatency: number[];
}

const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Buckets = Type.Array(Count, { minItems: SHADOW_LATENCY_BOUNDS_MS.length + 1, maxItems: SHADOW_LATENCY_BOUNDS_MS.length + 1 });

export const ShadowSummarySchema = Type.Object({
  version: Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$" }),
  since: Type.String({ maxLength: 40 }),
  mirrored: Count,
  dropped: Count,
  failed: Count,
  rows: Count,
  agreedRows: Count,
  sumAbsDifference: Type.Number({ minimum: 0 }),
  pairs: Type.Union([
    Type.Object({ task: Type.Literal("classification"), bothRight: Count, servingOnly: Count, shadowOnly: Count, bothWrong: Count }),
    Type.Object({
      task: Type.Literal("regression"),
      count: Count,
      servingAbsErrorSum: Type.Number({ minimum: 0 }),
      shadowAbsErrorSum: Type.Number({ minimum: 0 }),
      diffs: Type.Array(Type.Number(), { maxItems: MAX_SHADOW_DIFFS }),
    }),
  ]),
  servingLatency: Buckets,
  shadowLatency: Buckets,
});

const addBuckets = (a: readonly number[], b: readonly number[]) => a.map((x, i) => x + (b[i] ?? 0));

/**
 * Merges the shadow reports of several replicas. Only reports about the same candidate merge: a replica still
 * mirroring to an older candidate is left out (returns the reports of the newest `since`'s version).
 */
export function mergeShadowSummaries(reports: readonly ShadowSummary[]): ShadowSummary | undefined {
  if (reports.length === 0) return undefined;
  const newest = reports.reduce((a, b) => (b.since > a.since ? b : a));
  const same = reports.filter((r) => r.version === newest.version && r.pairs.task === newest.pairs.task);
  return same.slice(1).reduce(
    (a, b) => ({
      version: a.version,
      since: a.since < b.since ? a.since : b.since,
      mirrored: a.mirrored + b.mirrored,
      dropped: a.dropped + b.dropped,
      failed: a.failed + b.failed,
      rows: a.rows + b.rows,
      agreedRows: a.agreedRows + b.agreedRows,
      sumAbsDifference: a.sumAbsDifference + b.sumAbsDifference,
      pairs: mergePairs(a.pairs, b.pairs),
      servingLatency: addBuckets(a.servingLatency, b.servingLatency),
      shadowLatency: addBuckets(a.shadowLatency, b.shadowLatency),
    }),
    same[0]!,
  );
}

function mergePairs(a: ClassificationPairs | RegressionPairs, b: ClassificationPairs | RegressionPairs): ClassificationPairs | RegressionPairs {
  if (a.task === "classification" && b.task === "classification")
    return {
      task: "classification",
      bothRight: a.bothRight + b.bothRight,
      servingOnly: a.servingOnly + b.servingOnly,
      shadowOnly: a.shadowOnly + b.shadowOnly,
      bothWrong: a.bothWrong + b.bothWrong,
    };
  if (a.task === "regression" && b.task === "regression")
    return {
      task: "regression",
      count: a.count + b.count,
      servingAbsErrorSum: a.servingAbsErrorSum + b.servingAbsErrorSum,
      shadowAbsErrorSum: a.shadowAbsErrorSum + b.shadowAbsErrorSum,
      diffs: [...a.diffs, ...b.diffs].slice(-MAX_SHADOW_DIFFS),
    };
  throw new RangeError(`cannot merge ${a.task} pairs with ${b.task} pairs`);
}
