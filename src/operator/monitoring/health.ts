// The monitoring part of ModelDeployment status, as a pure function of the sidecars' summaries, the status
// as last written and the spec: status.lastMetrics, status.policy, and the DriftDetected / Degraded conditions.
import {
  ConditionReason,
  ConditionType,
  defaultAccuracyMetric,
  findCondition,
  isoSeconds,
  parseDurationMs,
  setCondition,
  isConditionReason,
  type Condition,
  type ConditionReasonName,
  type ConditionTypeName,
  type MetricsSnapshot,
  type ModelDeploymentStatus,
  type WindowRecord,
  MAX_RECENT_WINDOWS,
  type ResolvedModelDeployment,
} from "../../api/index.js";
import type { EventRecord } from "../../kube/events.js";
import {
  advancePolicy,
  evaluatePolicy,
  multivariateDrift,
  multivariateText,
  robustness,
  stability,
  type DriftReport,
  type FeatureDrift,
  type MetricBound,
  type MultivariateDrift,
  type PolicyConfig,
  type PolicyDecision,
  type PolicyRule,
  type PolicyState as PolicyStateValue,
  type Verdict,
  type WindowJudgement,
  type WindowObservation,
} from "../../monitoring/index.js";
import { ESTIMATED_METRICS, mergeSummaries, type SidecarSummary, type WindowSummary } from "../../monitoring/summary.js";
import { summaryConflict } from "../../monitoring/summary-schema.js";
import { supportShift } from "../../monitoring/reference-support.js";
import { boundFeatureNames, boundMessage, joinWithin, MAX_CONDITION_MESSAGE_LENGTH } from "./messages.js";

/** What one ready serving pod's sidecar answered: its summary, or why there is none. */
export type PodScrape = { pod: string; summary: SidecarSummary } | { pod: string; error: string };

/**
 * The scrapes whose summaries can merge: a summary of another model than the spec's, or one that does not merge
 * with the first summary of its version (task, a feature's type), becomes that pod's error; the others are kept.
 * Parsing (parseSidecarSummary) already refused malformed ones, so after this mergeSummaries cannot throw.
 */
export function admitSummaries(md: ResolvedModelDeployment, scrapes: readonly PodScrape[]): PodScrape[] {
  const firstOfVersion = new Map<string, SidecarSummary>();
  return scrapes.map((s) => {
    if (!("summary" in s)) return s;
    const model = md.spec.model.name;
    if (s.summary.model !== model) return { pod: s.pod, error: `summary is of model ${JSON.stringify(s.summary.model.slice(0, 64))}, not ${model}` };
    const first = firstOfVersion.get(s.summary.version);
    if (!first) {
      firstOfVersion.set(s.summary.version, s.summary);
      return s;
    }
    const conflict = summaryConflict(first, s.summary);
    return conflict ? { pod: s.pod, error: `summary does not merge with pod ${first.pod}'s: ${conflict}` } : s;
  });
}

/** Windows the stability metric looks back over (the sidecar keeps 12 by default). */
const STABILITY_WINDOWS = 12;

type ConditionStatus = Condition["status"];
interface ConditionVerdict {
  status: ConditionStatus;
  reason: ConditionReasonName;
  message: string;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

function finiteOrUndefined(x: number | null | undefined): number | undefined {
  return x !== null && x !== undefined && Number.isFinite(x) ? x : undefined;
}

/** What status shows: 4 significant digits (the policy judges the exact value). */
export function displayRound(x: number): number {
  return Number(x.toPrecision(4));
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
    cooldownMs: parseDurationMs(p.cooldown),
    triggerOn: p.triggerOn,
    minLabelledSamples: p.minLabelledSamples,
    datasetDrift: true,
    predictionDrift: p.predictionDrift,
    multivariateDrift: md.spec.monitoring.drift.multivariate,
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
      const votes = usable.flatMap((r) =>
        pick(r.report)
          .filter((f) => f.name === name)
          .map((f) => ({ f, rows: r.rows })),
      );
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
  observation: {
    /** Mean reconstruction error of the merged window against its band; null without a multivariate reference. */
    multivariate: MultivariateDrift | null;
    samples: number;
    labelledSamples: number;
    metrics: Record<string, number | null>;
    /** The metric's label-free estimate, when the window has one. */
    estimatedMetrics: Record<string, number | null>;
    estimatedSamples: number;
    estimatedFrom: string;
    /** The window's rows left the reference's range significantly: their share, in words too. */
    outsideReference?: { share: number; text: string };
    stability: number | null;
    robustness: number | null;
  };
}

/**
 * Every closed window merged over `group`, oldest first, each as lastMetrics would show it. Replicas' windows
 * are aligned by age, as mergeSummaries aligns them; drift is combined from each replica's window of that age.
 */
export function evaluateClosedWindows(group: readonly SidecarSummary[], md: ResolvedModelDeployment): WindowEvaluation[] {
  const closed = mergeSummaries(group).windows.filter((w) => w.closed);
  const metric = md.spec.monitoring.accuracyMetric ?? defaultAccuracyMetric(md.spec.monitoring.task);
  const podClosed = group.map((s) => s.windows.filter((w) => w.closed));
  const valueOf = (w: WindowSummary) => ((w.metrics["samples"] ?? 0) > 0 ? finiteOrUndefined(w.metrics[metric]) : undefined);
  return closed.map((window, i) => {
    const age = closed.length - 1 - i;
    const perPod = podClosed
      .map((ws) => ws[ws.length - 1 - age])
      .filter((w): w is WindowSummary => w !== undefined && w.drift !== null)
      .map((w) => ({ rows: w.rows, report: w.drift! }));
    const drift = combineDrift(perPod, md.spec.policy.maxDriftShare);
    const labelled = window.metrics["samples"] ?? 0;
    const value = valueOf(window);
    const estimateName = ESTIMATED_METRICS[metric];
    const estimated = estimateName !== undefined ? finiteOrUndefined(window.metrics[estimateName]) : undefined;
    const history = closed.slice(Math.max(0, i + 1 - STABILITY_WINDOWS), i + 1).map((w) => valueOf(w) ?? null);
    const stab = history.some((v) => v !== null) ? stability(history) : null;
    const rob = robustness(window.failedRequests, window.requests);
    // Sums merge exactly across replicas, so the merged window's mean error is every row's.
    const multivariate = multivariateDrift(window.reconstruction);
    const support = supportShift(window.support);
    const predictionStat = drift?.prediction.find((p) => p.status === "evaluated")?.statistic;
    const snapshot: MetricsSnapshot = { windowStart: window.start, windowEnd: window.end, samples: window.rows, labelledSamples: labelled, metric };
    // Rounded for `kubectl get md` and people; the policy judges the exact values in `observation`.
    if (drift && drift.evaluatedFeatures > 0) {
      snapshot.driftShare = displayRound(drift.driftShare);
      snapshot.driftedFeatures = boundFeatureNames(drift.features.filter((f) => f.drift).map((f) => f.name));
    }
    if (finiteOrUndefined(predictionStat) !== undefined) snapshot.predictionDrift = displayRound(predictionStat!);
    if (multivariate) {
      snapshot.reconstructionError = displayRound(multivariate.reconstructionError);
      snapshot.reconstructionErrorLower = displayRound(multivariate.lower);
      snapshot.reconstructionErrorUpper = displayRound(multivariate.upper);
      snapshot.multivariateDrift = multivariate.drift;
    }
    if (value !== undefined) snapshot.accuracy = displayRound(value);
    if (estimated !== undefined) snapshot.estimatedAccuracy = displayRound(estimated);
    const estimatedMae = finiteOrUndefined(window.metrics["estimatedMae"]);
    if (estimatedMae !== undefined) snapshot.estimatedMae = displayRound(estimatedMae);
    if (finiteOrUndefined(stab) !== undefined) snapshot.stability = displayRound(stab!);
    if (finiteOrUndefined(rob) !== undefined) {
      snapshot.robustness = displayRound(rob!);
      snapshot.errorRate = displayRound(1 - rob!);
    }
    return {
      snapshot,
      drift,
      observation: {
        multivariate,
        samples: window.rows,
        labelledSamples: labelled,
        metrics: { [metric]: value ?? null },
        estimatedMetrics: { [metric]: estimated ?? null },
        estimatedSamples: window.metrics["estimatedSamples"] ?? 0,
        // A classifier's estimate comes from its calibrated probabilities (CBPE), a regressor's from its error model (DLE).
        estimatedFrom: md.spec.monitoring.task === "regression" ? "predicted errors" : "calibrated confidence",
        ...(support?.shifted ? { outsideReference: { share: support.share, text: support.text } } : {}),
        stability: stab,
        robustness: rob,
      },
    };
  });
}

const VERDICT_NAMES: Record<Verdict, NonNullable<MetricsSnapshot["verdict"]>> = {
  healthy: "Healthy",
  violated: "Violated",
  "insufficient-data": "InsufficientData",
};

function windowLabel(s: MetricsSnapshot): string {
  return `window ${s.windowStart ?? "?"} – ${s.windowEnd} (${s.samples} rows)`;
}

/**
 * DriftDetected for one window: the drift share against policy.maxDriftShare, naming the drifted features, and
 * saying so when the policy let labels decide instead (drift is still reported: it is the likely cause).
 */
export function driftCondition(snapshot: MetricsSnapshot, drift: DriftReport | null, md: ResolvedModelDeployment, decision?: PolicyDecision): ConditionVerdict {
  const p = md.spec.policy;
  if (snapshot.samples < p.minSamples)
    return {
      status: "Unknown",
      reason: ConditionReason.InsufficientData,
      message: `${windowLabel(snapshot)} has fewer rows than policy.minSamples (${p.minSamples})`,
    };
  if (!drift || drift.status !== "evaluated")
    return {
      status: "Unknown",
      reason: ConditionReason.InsufficientData,
      message: `${windowLabel(snapshot)}: no feature could be compared with the reference`,
    };
  const drifted = drift.features.filter((f) => f.drift);
  const share = `${drift.driftedFeatures} of ${drift.evaluatedFeatures} features drifted (share ${fmt(drift.driftShare)}`;
  const predictionDrifted = p.predictionDrift && drift.predictionDrift;
  const multivariate = multivariateOf(snapshot);
  const multivariateDrifted = md.spec.monitoring.drift.multivariate && multivariate?.drift === true;
  if (drift.drift || predictionDrifted || multivariateDrifted) {
    const why = [
      ...(multivariateDrifted ? [multivariateText(multivariate!)] : []),
      ...drifted.map((f) => f.reason),
      ...(predictionDrifted ? drift.prediction.filter((f) => f.drift).map((f) => `predictions: ${f.reason}`) : []),
    ];
    const shareText = drift.drift
      ? `${share} ≥ policy.maxDriftShare ${p.maxDriftShare})`
      : `${multivariateDrifted ? "inputs drifted together" : "predictions drifted"}; ${share})`;
    const decidedElsewhere =
      (decision?.decidedBy === "labels" || decision?.decidedBy === "estimate") &&
      !decision.fired.some((r) => r === "dataset-drift" || r === "multivariate-drift" || r === "prediction-drift");
    const note = decidedElsewhere ? `; not a violation by itself: ${decision.basis ?? "decided by labels"}` : "";
    const head = `${shareText} in ${windowLabel(snapshot)}: `;
    return { status: "True", reason: ConditionReason.DriftAboveThreshold, message: `${head}${joinWithin(why, listBudget(head, note))}${note}` };
  }
  const head = `${share} < policy.maxDriftShare ${p.maxDriftShare}) in ${windowLabel(snapshot)}`;
  const detail =
    drifted.length > 0
      ? `: ${joinWithin(
          drifted.map((f) => f.reason),
          listBudget(head, ": "),
        )}`
      : "";
  return { status: "False", reason: ConditionReason.NoDrift, message: `${head}${detail}` };
}

/** The window's multivariate numbers as status shows them (rounded), or undefined without a multivariate reference. */
function multivariateOf(s: MetricsSnapshot): MultivariateDrift | undefined {
  if (s.reconstructionError === undefined || s.reconstructionErrorLower === undefined || s.reconstructionErrorUpper === undefined) return undefined;
  return {
    rows: s.samples,
    reconstructionError: s.reconstructionError,
    lower: s.reconstructionErrorLower,
    upper: s.reconstructionErrorUpper,
    drift: s.multivariateDrift === true,
  };
}

/** What is left of a condition message for a list between `head` and `tail`. */
function listBudget(head: string, tail: string): number {
  return Math.max(0, MAX_CONDITION_MESSAGE_LENGTH - head.length - tail.length);
}

const RULE_REASONS: Record<PolicyRule, ConditionReasonName> = {
  "metric-min": ConditionReason.AccuracyBelowThreshold,
  "metric-max": ConditionReason.ErrorAboveThreshold,
  robustness: ConditionReason.RobustnessBelowThreshold,
  stability: ConditionReason.StabilityBelowThreshold,
  "dataset-drift": ConditionReason.DriftAboveThreshold,
  "multivariate-drift": ConditionReason.DriftAboveThreshold,
  "prediction-drift": ConditionReason.DriftAboveThreshold,
};

/** The reason of a violated policy: the first rule this window broke (the policy orders them as a user fixes them). */
function violationReason(decision: PolicyDecision, prior: Condition | undefined): ConditionReasonName {
  const first = decision.fired[0];
  if (first) return RULE_REASONS[first];
  // The streak can outlive the window that started it (the latest may be insufficient-data): keep what it was.
  return prior?.status === "True" && isConditionReason(prior.reason) ? prior.reason : ConditionReason.DriftAboveThreshold;
}

/** Degraded: the policy's debounced verdict (consecutive windows, min samples, cooldown). */
export function degradedCondition(decision: PolicyDecision, snapshot: MetricsSnapshot, md: ResolvedModelDeployment, prior?: Condition): ConditionVerdict {
  const paused = md.spec.policy.paused ? " (policy.paused: no retraining will start)" : "";
  const reasons = decision.reasons.join("; ");
  if (decision.verdict === "violated")
    return { status: "True", reason: violationReason(decision, prior), message: `${reasons} in ${windowLabel(snapshot)}${paused}` };
  if (decision.verdict === "insufficient-data")
    return { status: "Unknown", reason: ConditionReason.InsufficientData, message: `${reasons || "not enough data"} in ${windowLabel(snapshot)}` };
  const checked: string[] = [];
  if (snapshot.accuracy !== undefined) checked.push(`${snapshot.metric} ${fmt(snapshot.accuracy)}`);
  if (snapshot.robustness !== undefined) checked.push(`robustness ${fmt(snapshot.robustness)}`);
  if (snapshot.stability !== undefined) checked.push(`stability ${fmt(snapshot.stability)}`);
  if (snapshot.driftShare !== undefined) checked.push(`drift share ${fmt(snapshot.driftShare)}`);
  if (md.spec.monitoring.drift.multivariate && snapshot.reconstructionError !== undefined)
    checked.push(
      `reconstruction error ${fmt(snapshot.reconstructionError)} in [${fmt(snapshot.reconstructionErrorLower!)}, ${fmt(snapshot.reconstructionErrorUpper!)}]`,
    );
  const pending = reasons ? `; ${reasons}` : "";
  const basis = decision.basis && !reasons.includes(decision.basis) ? `, ${decision.basis}` : "";
  return { status: "False", reason: ConditionReason.Healthy, message: `within policy${basis}: ${checked.join(", ")} in ${windowLabel(snapshot)}${pending}` };
}

function withConditions(
  prior: ModelDeploymentStatus,
  md: ResolvedModelDeployment,
  now: Date,
  drift: ConditionVerdict,
  degraded: ConditionVerdict,
): Condition[] {
  const generation = md.metadata.generation ?? 0;
  let conditions = prior.conditions ?? [];
  // The last guard: whatever built the message, the write must fit the CRD.
  conditions = setCondition(
    conditions,
    { type: ConditionType.DriftDetected, ...drift, message: boundMessage(drift.message), observedGeneration: generation },
    now,
  );
  conditions = setCondition(
    conditions,
    { type: ConditionType.Degraded, ...degraded, message: boundMessage(degraded.message), observedGeneration: generation },
    now,
  );
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
export function monitoringStatus(md: ResolvedModelDeployment, podScrapes: readonly PodScrape[], now: Date): ModelDeploymentStatus {
  const prior = md.status ?? {};
  if (podScrapes.length === 0) return unknownStatus(prior, md, now, "no ready serving pod to read monitoring from");
  const scrapes = admitSummaries(md, podScrapes);
  const answered = scrapes.flatMap((s) => ("summary" in s ? [s.summary] : []));
  if (answered.length === 0) {
    const head = "no sidecar answered: ";
    return unknownStatus(
      prior,
      md,
      now,
      `${head}${joinWithin(
        scrapes.map((s) => `${s.pod}: ${"error" in s ? s.error : "?"}`),
        listBudget(head, ""),
      )}`,
    );
  }
  const group = servingGroup(answered);
  const known = withServingVersion(prior, group, md);
  const evaluations = evaluateClosedWindows(group, md);
  if (evaluations.length === 0) {
    const open = group.reduce((a, s) => a + (s.windows.find((w) => !w.closed)?.rows ?? 0), 0);
    const size = md.spec.monitoring.window.size;
    const bounds = [size !== undefined ? `${size} rows` : "", md.spec.monitoring.window.duration ?? ""].filter(Boolean).join(" or ");
    return unknownStatus(known, md, now, `no monitoring window has closed yet: the open window has ${open} rows (a window closes at ${bounds})`);
  }
  const generation = md.metadata.generation ?? 0;
  // Every window that closed since the last one judged, in order: bursty traffic can close several between
  // two scrapes, and the hysteresis counts windows. On first sight (no lastMetrics) only the newest is judged.
  const lastJudged = prior.lastMetrics?.windowEnd;
  const unseen = lastJudged === undefined ? evaluations.slice(-1) : evaluations.filter((e) => e.snapshot.windowEnd > lastJudged);
  const version = group[0]?.version;
  const records = prior.recentWindows ?? [];
  const byEnd = new Map(evaluations.map((e) => [e.snapshot.windowEnd, e]));
  // Windows judged before whose labels grew since (labels that came after the window was judged): re-judged, and
  // every window judged after the first of them with it, since the policy's streak runs through them.
  const firstLate =
    lastJudged === undefined ? -1 : records.findIndex((r) => r.version === version && r.windowEnd <= lastJudged && gotLateLabels(byEnd.get(r.windowEnd), r));
  if (unseen.length === 0 && firstLate < 0) {
    // Already judged: only the conditions' observedGeneration follows the spec (new thresholds apply from the next window).
    const conditions = (prior.conditions ?? []).map((c) =>
      c.type === ConditionType.DriftDetected || c.type === ConditionType.Degraded ? { ...c, observedGeneration: generation } : c,
    );
    return { ...known, conditions };
  }
  const priorPolicy = prior.policy;
  const priorTrigger = priorPolicy?.lastTriggerTime ? Date.parse(priorPolicy.lastTriggerTime) : null;
  const config = policyConfig(md);
  // A trigger already acted on stands: re-judging replays the streak with the latest trigger, so an earlier window
  // cannot trigger again within its cooldown, and a window that now violates can trigger only where a new one could.
  let state: PolicyStateValue = {
    consecutiveViolations: firstLate < 0 ? (priorPolicy?.consecutiveViolations ?? 0) : streakBefore(records, firstLate),
    lastTriggerMs: priorTrigger,
  };
  let decision: PolicyDecision | undefined;
  // The newest window judged from the sidecars' numbers now (undefined: the newest was replayed as recorded).
  let latest: WindowEvaluation | undefined;
  // Paused: nothing will be retrained, so no trigger is recorded and no cooldown starts.
  const advance = (step: { state: PolicyStateValue; decision: PolicyDecision }): PolicyDecision => {
    state = md.spec.policy.paused ? { ...step.state, lastTriggerMs: priorTrigger } : step.state;
    return step.decision;
  };
  const judge = (e: WindowEvaluation): PolicyDecision => {
    const step = evaluatePolicy(state, windowObservation(e), config);
    e.snapshot.verdict = VERDICT_NAMES[step.decision.windowVerdict];
    if (step.decision.decidedBy) e.snapshot.decidedBy = step.decision.decidedBy;
    return advance(step);
  };
  const replayed: WindowRecord[] = [];
  for (const r of firstLate < 0 ? [] : records.slice(firstLate)) {
    const e = byEnd.get(r.windowEnd);
    if (!e || e.snapshot.samples !== r.samples || r.version !== version) {
      // Not the same window in the sidecars any more (another version's, or a replica restarted): its verdict as recorded.
      decision = advance(advancePolicy(state, recordedJudgement(r), Date.parse(r.windowEnd), config));
      latest = undefined;
      replayed.push({ ...r, consecutiveViolations: state.consecutiveViolations });
      continue;
    }
    const late = gotLateLabels(e, r);
    decision = judge(e);
    latest = e;
    const rejudgedTime = late ? isoSeconds(now) : r.rejudgedTime;
    if (rejudgedTime) e.snapshot.rejudgedTime = rejudgedTime;
    replayed.push({ ...windowRecord(e.snapshot, version, state.consecutiveViolations), ...firstJudgedOf(r, late) });
  }
  const judged: WindowRecord[] = [];
  for (const e of unseen) {
    decision = judge(e);
    latest = e;
    judged.push(windowRecord(e.snapshot, version, state.consecutiveViolations));
  }
  const recentWindows = [...records.slice(0, firstLate < 0 ? records.length : firstLate), ...replayed, ...judged].slice(-MAX_RECENT_WINDOWS);
  const lastTriggerMs = state.lastTriggerMs;
  const policy: NonNullable<ModelDeploymentStatus["policy"]> = {
    verdict: VERDICT_NAMES[decision!.verdict],
    consecutiveViolations: state.consecutiveViolations,
    lastEvaluationTime: isoSeconds(now),
  };
  if (lastTriggerMs !== null) {
    policy.lastTriggerTime = isoSeconds(new Date(lastTriggerMs));
    policy.cooldownUntil = isoSeconds(new Date(lastTriggerMs + config.cooldownMs));
  }
  const rejudged = rejudgedText(records, recentWindows);
  const next = { ...withServingVersion(prior, group, md), recentWindows, policy };
  if (!latest) {
    // The newest window was not in the sidecars to re-judge: its numbers and conditions stay; the policy moved.
    return { ...next, conditions: withDegradedNote(prior, md, now, rejudged) };
  }
  const { snapshot, drift } = latest;
  const degraded = degradedCondition(decision!, snapshot, md, findCondition(prior.conditions, ConditionType.Degraded));
  if (rejudged) degraded.message += `; ${rejudged}`;
  const conditions = withConditions(prior, md, now, driftCondition(snapshot, drift, md, decision!), degraded);
  return { ...next, lastMetrics: snapshot, conditions };
}

/** A window evaluation as the policy reads it. */
function windowObservation({ snapshot: w, drift: d, observation: o }: WindowEvaluation): WindowObservation {
  return {
    endMs: Date.parse(w.windowEnd),
    samples: o.samples,
    labelledSamples: o.labelledSamples,
    ...(d ? { drift: d } : {}),
    multivariate: o.multivariate,
    metrics: o.metrics,
    estimatedMetrics: o.estimatedMetrics,
    estimatedSamples: o.estimatedSamples,
    estimatedFrom: o.estimatedFrom,
    ...(o.outsideReference ? { outsideReference: o.outsideReference } : {}),
    stability: o.stability,
    robustness: o.robustness,
  };
}

/**
 * The same window as judged (same rows, merged alike), with more labelled rows now: labels only add, so feedback
 * came for its requests after it was judged. A window whose rows changed (a replica restarted, or replicas' windows
 * realigned) is not the window that was judged and is left as it was.
 */
function gotLateLabels(e: WindowEvaluation | undefined, r: WindowRecord): e is WindowEvaluation {
  return e !== undefined && e.snapshot.samples === r.samples && e.observation.labelledSamples > (r.labelledSamples ?? 0);
}

/** The policy's streak before `records[i]`: the streak after the window before it (or what its own implies). */
function streakBefore(records: readonly WindowRecord[], i: number): number {
  const before = records[i - 1]?.consecutiveViolations;
  if (before !== undefined) return before;
  // The oldest record kept (or one written before records held the streak): undone from its own when that is known.
  const own = records[i]!;
  if (own.consecutiveViolations === undefined || own.verdict === "Healthy") return 0;
  return own.verdict === "Violated" ? Math.max(0, own.consecutiveViolations - 1) : own.consecutiveViolations;
}

const VERDICTS_BY_NAME: Record<NonNullable<WindowRecord["verdict"]>, Verdict> = {
  Healthy: "healthy",
  Violated: "violated",
  InsufficientData: "insufficient-data",
};

/** A window replayed as it was recorded (no numbers to judge it again). */
function recordedJudgement(r: WindowRecord): WindowJudgement {
  const verdict = VERDICTS_BY_NAME[r.verdict ?? "InsufficientData"];
  return {
    verdict,
    reasons: [`window ending ${r.windowEnd} as judged before: ${r.verdict ?? "not judged"}`],
    fired: [],
    ...(r.decidedBy ? { decidedBy: r.decidedBy } : {}),
  };
}

/** How a re-judged window was judged when it closed: kept from its first re-judging on. */
function firstJudgedOf(r: WindowRecord, late: boolean): Pick<WindowRecord, "firstJudged"> {
  if (r.firstJudged) return { firstJudged: r.firstJudged };
  if (!late) return {};
  return {
    firstJudged: { ...(r.verdict ? { verdict: r.verdict } : {}), ...(r.decidedBy ? { decidedBy: r.decidedBy } : {}), labelledSamples: r.labelledSamples ?? 0 },
  };
}

/** "window ending … re-judged with N late labels: Healthy (estimate) → Violated (labels)" for windows whose verdict changed now. */
function rejudgedText(before: readonly WindowRecord[], after: readonly WindowRecord[]): string {
  const changed = verdictChanges(before, after);
  if (changed.length === 0) return "";
  const shown = changed
    .slice(-3)
    .map(({ was, now }) => `window ending ${now.windowEnd} ${was.verdict ?? "?"} (${was.decidedBy ?? "-"}) → ${now.verdict ?? "?"} (${now.decidedBy ?? "-"})`);
  return `late labels re-judged ${shown.join(", ")}${changed.length > 3 ? ` and ${changed.length - 3} more` : ""}`;
}

/** Windows whose verdict this re-judging changed, oldest first. */
export function verdictChanges(before: readonly WindowRecord[], after: readonly WindowRecord[]): { was: WindowRecord; now: WindowRecord }[] {
  const was = new Map(before.map((r) => [r.windowEnd, r]));
  return after.flatMap((now) => {
    const b = was.get(now.windowEnd);
    return b && now.rejudgedTime !== undefined && now.rejudgedTime !== b.rejudgedTime && now.verdict !== b.verdict ? [{ was: b, now }] : [];
  });
}

/** The Degraded condition's message with the re-judging said, when only older windows were re-judged. */
function withDegradedNote(prior: ModelDeploymentStatus, md: ResolvedModelDeployment, now: Date, note: string): Condition[] {
  const conditions = prior.conditions ?? [];
  const degraded = findCondition(conditions, ConditionType.Degraded);
  if (!degraded || !note) return conditions;
  const generation = md.metadata.generation ?? 0;
  return setCondition(
    conditions,
    {
      ...degraded,
      type: ConditionType.Degraded,
      reason: isConditionReason(degraded.reason) ? degraded.reason : ConditionReason.InsufficientData,
      message: boundMessage(`${degraded.message.replace(/; late labels re-judged .*$/, "")}; ${note}`),
      observedGeneration: generation,
    },
    now,
  );
}

/** The timeline entry of a judged window: what a reader (and the loop's observation) needs, nothing per feature. */
function windowRecord(w: MetricsSnapshot, version: string | undefined, consecutiveViolations: number): WindowRecord {
  const r: WindowRecord = { windowEnd: w.windowEnd, samples: w.samples };
  if (version) r.version = version;
  for (const k of [
    "labelledSamples",
    "accuracy",
    "estimatedAccuracy",
    "driftShare",
    "reconstructionError",
    "errorRate",
    "verdict",
    "decidedBy",
    "rejudgedTime",
  ] as const)
    if (w[k] !== undefined) Object.assign(r, { [k]: w[k] });
  r.consecutiveViolations = consecutiveViolations;
  return r;
}

/**
 * status.servingVersion from the sidecars: the version of the serving group. While a pinned version rolls out
 * the serving reconciler writes the pin and the old version may still be the majority; the pin is left alone
 * then, or the two reconcilers would overwrite each other on every scrape.
 */
export function withServingVersion(prior: ModelDeploymentStatus, group: readonly SidecarSummary[], md: ResolvedModelDeployment): ModelDeploymentStatus {
  const served = group[0]?.version;
  const pinned = md.spec.model.version;
  if (!served || (pinned !== undefined && served !== pinned) || prior.servingVersion === served) return prior;
  return { ...prior, servingVersion: served };
}

/** Events for what changed between two statuses: drift or degradation appearing (Warning) and clearing (Normal). */
export function healthTransitionEvents(before: ModelDeploymentStatus | undefined, after: ModelDeploymentStatus | undefined): EventRecord[] {
  const events: EventRecord[] = [];
  const pairs: [ConditionTypeName, string][] = [
    [ConditionType.DriftDetected, "drift cleared"],
    [ConditionType.Degraded, "recovered"],
  ];
  for (const [type, recovered] of pairs) {
    const was = findCondition(before?.conditions, type)?.status;
    const now = findCondition(after?.conditions, type);
    if (!now || was === now.status) continue;
    if (now.status === "True") events.push({ type: "Warning", reason: now.reason, action: "Monitor", note: now.message });
    else if (now.status === "False" && was === "True")
      events.push({ type: "Normal", reason: now.reason, action: "Monitor", note: `${recovered}: ${now.message}` });
  }
  // A window whose verdict changed when its late labels came: said once, when it changed.
  for (const { was, now } of verdictChanges(before?.recentWindows ?? [], after?.recentWindows ?? []))
    events.push({
      type: now.verdict === "Violated" ? "Warning" : "Normal",
      reason: ConditionReason.WindowRejudged,
      action: "Monitor",
      note: rejudgedNote(was, now, after?.lastMetrics?.metric ?? "metric"),
    });
  return events;
}

/** "window ending … of v1 re-judged: Healthy, decided by estimate (estimated accuracy 0.97, 3 labelled rows) → Violated, decided by labels (accuracy 0.45 on 20 labelled rows, 17 of them late)" */
function rejudgedNote(was: WindowRecord, now: WindowRecord, metric: string): string {
  const fmt = (x: number) => String(Number(x.toPrecision(4)));
  const numbers = (r: WindowRecord) =>
    r.decidedBy === "labels" && r.accuracy !== undefined
      ? `${metric} ${fmt(r.accuracy)} on ${r.labelledSamples ?? 0} labelled rows`
      : r.decidedBy === "estimate" && r.estimatedAccuracy !== undefined
        ? `estimated ${metric} ${fmt(r.estimatedAccuracy)}, ${r.labelledSamples ?? 0} labelled rows`
        : `${r.labelledSamples ?? 0} labelled rows`;
  const late = (now.labelledSamples ?? 0) - (now.firstJudged?.labelledSamples ?? was.labelledSamples ?? 0);
  return (
    `window ending ${now.windowEnd}${now.version ? ` of ${now.version}` : ""} re-judged with labels that came after it closed: ` +
    `${was.verdict ?? "not judged"}, decided by ${was.decidedBy ?? "nothing"} (${numbers(was)}) → ${now.verdict ?? "not judged"}, decided by ${now.decidedBy ?? "nothing"} (${numbers(now)}, ${late} of them late)`
  );
}
