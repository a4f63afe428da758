// The monitoring part of ModelDeployment status, as a pure function of the sidecars' summaries, the status
// as last written and the spec: status.lastMetrics, status.policy, and the DriftDetected / Degraded conditions.
import {
  ConditionReason,
  ConditionType,
  defaultAccuracyMetric,
  findCondition,
  setCondition,
  type Condition,
  type MetricsSnapshot,
  type ModelDeploymentStatus,
  type ResolvedModelDeployment,
} from "../../api/index.js";
import type { EventRecord } from "../../kube/events.js";
import {
  evaluatePolicy,
  robustness,
  stability,
  type DriftReport,
  type FeatureDrift,
  type MetricBound,
  type PolicyConfig,
  type PolicyDecision,
  type Verdict,
} from "../../monitoring/index.js";
import { mergeSummaries, type SidecarSummary, type WindowSummary } from "../../monitoring/summary.js";
import { goDurationMs } from "../serving/desired-state.js";

/** What one ready serving pod's sidecar answered: its summary, or why there is none. */
export type PodScrape = { pod: string; summary: SidecarSummary } | { pod: string; error: string };

/** Windows the stability metric looks back over (the sidecar keeps 12 by default). */
const STABILITY_WINDOWS = 12;

type ConditionStatus = Condition["status"];
interface ConditionVerdict {
  status: ConditionStatus;
  reason: string;
  message: string;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

function finiteOrUndefined(x: number | null | undefined): number | undefined {
  return x !== null && x !== undefined && Number.isFinite(x) ? x : undefined;
}

/** The policy spec as monitoring's PolicyConfig. */
export function policyConfig(md: ResolvedModelDeployment): PolicyConfig {
  const p = md.spec.policy;
  const metric = md.spec.monitoring.accuracyMetric ?? defaultAccuracyMetric(md.spec.monitoring.task);
  const metrics: MetricBound[] = [];
  if (p.minAccuracy !== undefined) metrics.push({ metric, min: p.minAccuracy });
  if (p.maxError !== undefined) metrics.push({ metric, max: p.maxError });
  return {
    minSamples: p.minSamples,
    consecutiveWindows: p.consecutiveWindows,
    cooldownMs: goDurationMs(p.cooldown),
    datasetDrift: true,
    predictionDrift: p.predictionDrift,
    metrics,
    minStability: p.minStability,
    minRobustness: p.minRobustness,
  };
}

/**
 * Drift is not additive, so replicas' per-window reports are combined feature by feature: a feature drifted
 * when replicas holding more than half of its evaluated rows say so; the reason shown is the largest such
 * replica's. One replica: its report as is. The share is judged against policy.maxDriftShare.
 */
export function combineDrift(reports: readonly { rows: number; report: DriftReport }[], maxDriftShare: number): DriftReport | null {
  const usable = reports.filter((r) => r.report !== null);
  if (usable.length === 0) return null;
  const combine = (pick: (r: DriftReport) => FeatureDrift[]): FeatureDrift[] => {
    const names = [...new Set(usable.flatMap((r) => pick(r.report).map((f) => f.name)))];
    return names.map((name) => {
      const votes = usable.flatMap((r) => pick(r.report).filter((f) => f.name === name).map((f) => ({ f, rows: r.rows })));
      const evaluated = votes.filter((v) => v.f.status === "evaluated");
      if (evaluated.length === 0) return votes[0]!.f;
      const drifting = evaluated.filter((v) => v.f.drift).reduce((a, v) => a + v.rows, 0);
      const total = evaluated.reduce((a, v) => a + v.rows, 0);
      const drift = total > 0 ? drifting > total / 2 : evaluated.some((v) => v.f.drift);
      const agreeing = evaluated.filter((v) => v.f.drift === drift).sort((a, b) => b.rows - a.rows);
      return agreeing[0]!.f;
    });
  };
  const features = combine((r) => r.features);
  const prediction = combine((r) => r.prediction);
  const evaluated = features.filter((f) => f.status === "evaluated");
  const drifted = evaluated.filter((f) => f.drift).length;
  const driftShare = evaluated.length > 0 ? drifted / evaluated.length : 0;
  return {
    drift: evaluated.length > 0 && driftShare >= maxDriftShare,
    driftShare,
    driftShareThreshold: maxDriftShare,
    driftedFeatures: drifted,
    evaluatedFeatures: evaluated.length,
    status: evaluated.length > 0 || prediction.some((p) => p.status === "evaluated") ? "evaluated" : "insufficient-data",
    correction: usable[0]!.report.correction,
    features,
    prediction,
    predictionDrift: prediction.some((p) => p.drift),
  };
}

/** The replicas of the version most pods serve (during a rollout, old and new versions do not merge). */
export function servingGroup(summaries: readonly SidecarSummary[]): SidecarSummary[] {
  const byVersion = new Map<string, SidecarSummary[]>();
  for (const s of summaries) byVersion.set(s.version, [...(byVersion.get(s.version) ?? []), s]);
  const newest = (g: SidecarSummary[]) => g.map((s) => s.generatedAt).reduce((a, b) => (a > b ? a : b));
  return [...byVersion.values()].sort((a, b) => b.length - a.length || (newest(b) > newest(a) ? 1 : -1))[0] ?? [];
}

export interface WindowEvaluation {
  snapshot: MetricsSnapshot;
  drift: DriftReport | null;
  observation: { samples: number; metrics: Record<string, number | null>; stability: number | null; robustness: number | null };
}

/** lastMetrics for the newest closed window merged over `group`; undefined when no window has closed. */
export function evaluateNewestWindow(group: readonly SidecarSummary[], md: ResolvedModelDeployment): WindowEvaluation | undefined {
  const merged = mergeSummaries(group);
  const closed = merged.windows.filter((w) => w.closed);
  const newest = closed.at(-1);
  if (!newest) return undefined;
  const metric = md.spec.monitoring.accuracyMetric ?? defaultAccuracyMetric(md.spec.monitoring.task);
  const perPod = group
    .map((s) => s.windows.filter((w) => w.closed).at(-1))
    .filter((w): w is WindowSummary => w !== undefined && w.drift !== null)
    .map((w) => ({ rows: w.rows, report: w.drift! }));
  const drift = combineDrift(perPod, md.spec.policy.maxDriftShare);
  const labelled = newest.metrics["samples"] ?? 0;
  const value = labelled > 0 ? finiteOrUndefined(newest.metrics[metric]) : undefined;
  const history = closed.slice(-STABILITY_WINDOWS).map((w) => ((w.metrics["samples"] ?? 0) > 0 ? (w.metrics[metric] ?? null) : null));
  const stab = history.some((v) => v !== null) ? stability(history) : null;
  const rob = robustness(newest.failedRequests, newest.requests);
  const predictionStat = drift?.prediction.find((p) => p.status === "evaluated")?.statistic;
  const snapshot: MetricsSnapshot = {
    windowStart: newest.start,
    windowEnd: newest.end,
    samples: newest.rows,
    labelledSamples: labelled,
    metric,
  };
  if (drift && drift.evaluatedFeatures > 0) {
    snapshot.driftShare = drift.driftShare;
    snapshot.driftedFeatures = drift.features.filter((f) => f.drift).map((f) => f.name);
  }
  if (finiteOrUndefined(predictionStat) !== undefined) snapshot.predictionDrift = predictionStat!;
  if (value !== undefined) snapshot.accuracy = value;
  if (finiteOrUndefined(stab) !== undefined) snapshot.stability = stab!;
  if (finiteOrUndefined(rob) !== undefined) {
    snapshot.robustness = rob!;
    snapshot.errorRate = 1 - rob!;
  }
  return {
    snapshot,
    drift,
    observation: { samples: newest.rows, metrics: { [metric]: value ?? null }, stability: stab, robustness: rob },
  };
}

const VERDICT_NAMES: Record<Verdict, NonNullable<MetricsSnapshot["verdict"]>> = {
  healthy: "Healthy",
  violated: "Violated",
  "insufficient-data": "InsufficientData",
};

function windowLabel(s: MetricsSnapshot): string {
  return `window ${s.windowStart ?? "?"} – ${s.windowEnd} (${s.samples} rows)`;
}

/** DriftDetected for one window: the drift share against policy.maxDriftShare, naming the drifted features. */
export function driftCondition(snapshot: MetricsSnapshot, drift: DriftReport | null, md: ResolvedModelDeployment): ConditionVerdict {
  const p = md.spec.policy;
  if (snapshot.samples < p.minSamples)
    return { status: "Unknown", reason: ConditionReason.InsufficientData, message: `${windowLabel(snapshot)} has fewer rows than policy.minSamples (${p.minSamples})` };
  if (!drift || drift.status !== "evaluated")
    return { status: "Unknown", reason: ConditionReason.InsufficientData, message: `${windowLabel(snapshot)}: no feature could be compared with the reference` };
  const drifted = drift.features.filter((f) => f.drift);
  const share = `${drift.driftedFeatures} of ${drift.evaluatedFeatures} features drifted (share ${fmt(drift.driftShare)}`;
  const predictionDrifted = p.predictionDrift && drift.predictionDrift;
  if (drift.drift || predictionDrifted) {
    const why = [...drifted.map((f) => f.reason), ...(predictionDrifted ? drift.prediction.filter((f) => f.drift).map((f) => `predictions: ${f.reason}`) : [])];
    const shareText = drift.drift ? `${share} ≥ policy.maxDriftShare ${p.maxDriftShare})` : `predictions drifted; ${share})`;
    return { status: "True", reason: ConditionReason.DriftAboveThreshold, message: `${shareText} in ${windowLabel(snapshot)}: ${why.join("; ")}` };
  }
  const detail = drifted.length > 0 ? `: ${drifted.map((f) => f.reason).join("; ")}` : "";
  return { status: "False", reason: ConditionReason.NoDrift, message: `${share} < policy.maxDriftShare ${p.maxDriftShare}) in ${windowLabel(snapshot)}${detail}` };
}

/** The reason of a violated policy: the first rule broken, in the order a user fixes them. */
function violationReason(snapshot: MetricsSnapshot, drift: DriftReport | null, md: ResolvedModelDeployment): string {
  const p = md.spec.policy;
  if (snapshot.accuracy !== undefined && p.minAccuracy !== undefined && snapshot.accuracy < p.minAccuracy) return ConditionReason.AccuracyBelowThreshold;
  if (snapshot.accuracy !== undefined && p.maxError !== undefined && snapshot.accuracy > p.maxError) return ConditionReason.ErrorAboveThreshold;
  if (snapshot.robustness !== undefined && snapshot.robustness < p.minRobustness) return ConditionReason.RobustnessBelowThreshold;
  if (snapshot.stability !== undefined && snapshot.stability < p.minStability) return ConditionReason.StabilityBelowThreshold;
  if (drift?.drift || (p.predictionDrift && drift?.predictionDrift)) return ConditionReason.DriftAboveThreshold;
  // The streak can outlive the window that started it: the latest window may be healthy-but-insufficient.
  return ConditionReason.DriftAboveThreshold;
}

/** Degraded: the policy's debounced verdict (consecutive windows, min samples, cooldown). */
export function degradedCondition(decision: PolicyDecision, snapshot: MetricsSnapshot, drift: DriftReport | null, md: ResolvedModelDeployment): ConditionVerdict {
  const paused = md.spec.policy.paused ? " (policy.paused: no retraining will start)" : "";
  const reasons = decision.reasons.join("; ");
  if (decision.verdict === "violated")
    return { status: "True", reason: violationReason(snapshot, drift, md), message: `${reasons} in ${windowLabel(snapshot)}${paused}` };
  if (decision.verdict === "insufficient-data")
    return { status: "Unknown", reason: ConditionReason.InsufficientData, message: `${reasons || "not enough data"} in ${windowLabel(snapshot)}` };
  const checked: string[] = [];
  if (snapshot.accuracy !== undefined) checked.push(`${snapshot.metric} ${fmt(snapshot.accuracy)}`);
  if (snapshot.robustness !== undefined) checked.push(`robustness ${fmt(snapshot.robustness)}`);
  if (snapshot.stability !== undefined) checked.push(`stability ${fmt(snapshot.stability)}`);
  if (snapshot.driftShare !== undefined) checked.push(`drift share ${fmt(snapshot.driftShare)}`);
  const pending = reasons ? `; ${reasons}` : "";
  return { status: "False", reason: ConditionReason.Healthy, message: `within policy: ${checked.join(", ")} in ${windowLabel(snapshot)}${pending}` };
}

function withConditions(prior: ModelDeploymentStatus, md: ResolvedModelDeployment, now: Date, drift: ConditionVerdict, degraded: ConditionVerdict): Condition[] {
  const generation = md.metadata.generation ?? 0;
  let conditions = prior.conditions ?? [];
  conditions = setCondition(conditions, { type: ConditionType.DriftDetected, ...drift, observedGeneration: generation }, now);
  conditions = setCondition(conditions, { type: ConditionType.Degraded, ...degraded, observedGeneration: generation }, now);
  return conditions;
}

/** Both conditions Unknown with the same why; metrics and policy state are kept as they were. */
function unknownStatus(prior: ModelDeploymentStatus, md: ResolvedModelDeployment, now: Date, message: string): ModelDeploymentStatus {
  const v: ConditionVerdict = { status: "Unknown", reason: ConditionReason.InsufficientData, message };
  return { ...prior, conditions: withConditions(prior, md, now, v, v) };
}

/**
 * The next status from this scrape: fields owned by the monitoring reconciler (lastMetrics, policy,
 * DriftDetected, Degraded) are recomputed, every other field is kept. A window is evaluated once: while
 * the newest closed window is the one in lastMetrics, the policy does not advance.
 */
export function monitoringStatus(md: ResolvedModelDeployment, scrapes: readonly PodScrape[], now: Date): ModelDeploymentStatus {
  const prior = md.status ?? {};
  if (scrapes.length === 0) return unknownStatus(prior, md, now, "no ready serving pod to read monitoring from");
  const answered = scrapes.flatMap((s) => ("summary" in s ? [s.summary] : []));
  if (answered.length === 0)
    return unknownStatus(prior, md, now, `no sidecar answered: ${scrapes.map((s) => `${s.pod}: ${"error" in s ? s.error : "?"}`).join("; ")}`);
  const group = servingGroup(answered);
  const evaluation = evaluateNewestWindow(group, md);
  if (!evaluation) {
    const open = group.reduce((a, s) => a + (s.windows.find((w) => !w.closed)?.rows ?? 0), 0);
    const size = md.spec.monitoring.window.size;
    const bounds = [size !== undefined ? `${size} rows` : "", md.spec.monitoring.window.duration ?? ""].filter(Boolean).join(" or ");
    return unknownStatus(prior, md, now, `no monitoring window has closed yet: the open window has ${open} rows (a window closes at ${bounds})`);
  }
  const { snapshot, drift, observation } = evaluation;
  const generation = md.metadata.generation ?? 0;
  const sameWindow = prior.lastMetrics?.windowEnd === snapshot.windowEnd && prior.lastMetrics?.windowStart === snapshot.windowStart;
  if (sameWindow) {
    // Already judged: only the conditions' observedGeneration follows the spec (new thresholds apply from the next window).
    const conditions = (prior.conditions ?? []).map((c) =>
      c.type === ConditionType.DriftDetected || c.type === ConditionType.Degraded ? { ...c, observedGeneration: generation } : c,
    );
    return { ...prior, conditions };
  }
  const endMs = Date.parse(snapshot.windowEnd);
  const priorPolicy = prior.policy;
  const priorTrigger = priorPolicy?.lastTriggerTime ? Date.parse(priorPolicy.lastTriggerTime) : null;
  const config = policyConfig(md);
  const { state, decision } = evaluatePolicy(
    { consecutiveViolations: priorPolicy?.consecutiveViolations ?? 0, lastTriggerMs: priorTrigger },
    { endMs, samples: observation.samples, ...(drift ? { drift } : {}), metrics: observation.metrics, stability: observation.stability, robustness: observation.robustness },
    config,
  );
  snapshot.verdict = VERDICT_NAMES[decision.windowVerdict];
  // Paused: nothing will be retrained, so no trigger is recorded and no cooldown starts.
  const lastTriggerMs = md.spec.policy.paused ? priorTrigger : state.lastTriggerMs;
  const policy: NonNullable<ModelDeploymentStatus["policy"]> = {
    verdict: VERDICT_NAMES[decision.verdict],
    consecutiveViolations: state.consecutiveViolations,
    lastEvaluationTime: isoSeconds(now),
  };
  if (lastTriggerMs !== null) {
    policy.lastTriggerTime = isoSeconds(new Date(lastTriggerMs));
    policy.cooldownUntil = isoSeconds(new Date(lastTriggerMs + config.cooldownMs));
  }
  const conditions = withConditions(prior, md, now, driftCondition(snapshot, drift, md), degradedCondition(decision, snapshot, drift, md));
  return { ...prior, lastMetrics: snapshot, policy, conditions };
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Events for what changed between two statuses: drift or degradation appearing (Warning) and clearing (Normal). */
export function healthTransitionEvents(before: ModelDeploymentStatus | undefined, after: ModelDeploymentStatus | undefined): EventRecord[] {
  const events: EventRecord[] = [];
  const pairs: [string, string][] = [
    [ConditionType.DriftDetected, "drift cleared"],
    [ConditionType.Degraded, "recovered"],
  ];
  for (const [type, recovered] of pairs) {
    const was = findCondition(before?.conditions, type)?.status;
    const now = findCondition(after?.conditions, type);
    if (!now || was === now.status) continue;
    if (now.status === "True") events.push({ type: "Warning", reason: now.reason, action: "Monitor", note: now.message });
    else if (now.status === "False" && was === "True") events.push({ type: "Normal", reason: now.reason, action: "Monitor", note: `${recovered}: ${now.message}` });
  }
  return events;
}
