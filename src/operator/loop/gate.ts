// The promotion gate: a candidate replaces the serving version only if, on the same rows, it is better by a
// margin on recent traffic, does not forget the original data, and is not slower. Pure.
import type { GateResult, ResolvedModelDeployment } from "../../api/index.js";

/** What a retraining Job reported for its candidate (from the pod's termination message). */
export interface CandidateReport {
  version: string;
  metric: string;
  higherIsBetter: boolean;
  /** Selection score on the validation split of the training rows (never a holdout). */
  validation?: number;
  recent: { rows: number; candidate: number | null; serving: number | null };
  original?: { rows: number; candidate: number | null; serving: number | null };
  latencyMsPerRow?: { candidate: number | null; serving: number | null };
}

/** Error metrics go down when a model gets better; everything else goes up. */
export function higherIsBetter(metric: string): boolean {
  return !["mae", "rmse", "mse"].includes(metric);
}

/** How much better `a` is than `b` (positive: better), whatever the metric's direction. */
export function improvement(a: number, b: number, metric: string): number {
  return higherIsBetter(metric) ? a - b : b - a;
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? "n/a" : String(Number(x.toPrecision(3)));
}

function round4(x: number | null | undefined): number | undefined {
  return x === null || x === undefined || !Number.isFinite(x) ? undefined : Number(x.toPrecision(4));
}

/** The best report by validation score (the Job's indexes each report their own best trial). */
export function bestCandidate(reports: readonly CandidateReport[]): CandidateReport | undefined {
  const score = (r: CandidateReport) => (r.validation === undefined ? -Infinity : r.higherIsBetter ? r.validation : -r.validation);
  return [...reports].sort((a, b) => score(b) - score(a) || a.version.localeCompare(b.version))[0];
}

export function evaluateGate(report: CandidateReport, md: ResolvedModelDeployment): GateResult {
  const p = md.spec.promotion;
  const metric = report.metric;
  const rules: string[] = [];
  let failedRule: GateResult["failedRule"];
  const fail = (rule: NonNullable<GateResult["failedRule"]>, text: string) => {
    failedRule ??= rule;
    rules.push(`✗ ${text}`);
  };
  const { candidate, serving, rows } = report.recent;
  if (candidate === null || rows === 0) fail("MinImprovement", `no recent holdout rows to compare on (${rows} rows)`);
  else if (serving === null) rules.push(`✓ ${metric} ${fmt(candidate)} on ${rows} recent holdout rows (no serving version to compare with)`);
  else {
    const gain = improvement(candidate, serving, metric);
    const text = `${metric} ${fmt(candidate)} vs serving ${fmt(serving)} on ${rows} recent holdout rows (improvement ${fmt(gain)}, promotion.minImprovement ${p.minImprovement})`;
    if (gain >= p.minImprovement) rules.push(`✓ ${text}`);
    else fail("MinImprovement", text);
  }
  const o = report.original;
  if (o && o.rows > 0 && o.candidate !== null && o.serving !== null) {
    const forgetting = -improvement(o.candidate, o.serving, metric);
    const text = `original holdout ${metric} ${fmt(o.candidate)} vs serving ${fmt(o.serving)} on ${o.rows} rows (forgetting ${fmt(Math.max(0, forgetting))}, promotion.maxForgetting ${p.maxForgetting})`;
    if (forgetting <= p.maxForgetting) rules.push(`✓ ${text}`);
    else fail("MaxForgetting", text);
  }
  const l = report.latencyMsPerRow;
  let latencyRatio: number | undefined;
  if (l && l.candidate !== null && l.serving !== null && l.serving > 0) {
    latencyRatio = l.candidate / l.serving;
    const text = `latency ${fmt(l.candidate)} vs ${fmt(l.serving)} ms/row (ratio ${fmt(latencyRatio)}, promotion.maxLatencyRatio ${p.maxLatencyRatio})`;
    if (latencyRatio <= p.maxLatencyRatio) rules.push(`✓ ${text}`);
    else fail("MaxLatencyRatio", text);
  }
  const result: GateResult = {
    passed: failedRule === undefined,
    metric,
    recent: { rows, ...optional("candidate", round4(candidate)), ...optional("serving", round4(serving)) },
    message: rules.join("; ").slice(0, 1024),
  };
  if (o) result.original = { rows: o.rows, ...optional("candidate", round4(o.candidate)), ...optional("serving", round4(o.serving)) };
  if (latencyRatio !== undefined) result.latencyRatio = round4(latencyRatio)!;
  if (failedRule) result.failedRule = failedRule;
  return result;
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}
