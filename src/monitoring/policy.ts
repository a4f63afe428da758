// Health policy: turns one window's observations into a verdict with reasons, then debounces verdicts
// (hysteresis over consecutive windows, minimum samples, cooldown) so one noisy window never triggers
// a GPU job. Pure: the caller keeps the PolicyState (e.g. in the ModelDeployment status) between windows.
import type { DriftReport } from "./compare.js";
import type { MultivariateDrift } from "./multivariate-drift.js";

export type Verdict = "healthy" | "violated" | "insufficient-data";

/**
 * Which evidence may make a window a violation. Drift explains, degradation decides — when labels can tell:
 * - "auto": a window with at least `minLabelledSamples` labelled rows is judged on its labels (quality metric,
 *   stability) and robustness; drift is measured and named as the likely cause but does not decide. A window
 *   with fewer labelled rows is judged on the label-free estimate of the quality metric (and robustness) when
 *   the window has one, else on drift and robustness.
 * - "performance": only the quality metric, stability and robustness (the metric when labels suffice, else its
 *   estimate when there is one).
 * - "drift": only drift and robustness.
 * - "any": every rule.
 */
export type TriggerOn = "auto" | "performance" | "drift" | "any";
export type DecidedBy = "labels" | "estimate" | "drift";
/** A rule a window broke, in the order a user fixes them. */
export type PolicyRule = "metric-min" | "metric-max" | "robustness" | "stability" | "dataset-drift" | "multivariate-drift" | "prediction-drift";

/** Bounds on what a decision says, so conditions and Events stay readable whatever the feature count. */
export const MAX_REASONS = 8;
export const MAX_REASON_LENGTH = 256;

export interface MetricBound {
  /** Metric name as given in `WindowObservation.metrics`, e.g. "accuracy", "f1", "rmse". */
  metric: string;
  /** Violated when the metric is below `min` (e.g. accuracy 0.8) ... */
  min?: number;
  /** ... or above `max` (e.g. rmse 3.5). */
  max?: number;
}

export interface PolicyConfig {
  /** A window with fewer samples (rows seen) is "insufficient-data" (default 100). */
  minSamples: number;
  /** Hysteresis: this many consecutive violating windows before the verdict is "violated" (default 3). */
  consecutiveWindows: number;
  /** After a trigger, no new trigger for this long (default 1 h). */
  cooldownMs: number;
  /** Which evidence may make a window a violation (default "auto"; see `TriggerOn`). */
  triggerOn: TriggerOn;
  /** Labelled rows a window needs before its quality metric decides ("auto", "performance"; default 50). */
  minLabelledSamples: number;
  /** Violated when the dataset drift verdict is true (default true), where `triggerOn` lets drift decide. */
  datasetDrift: boolean;
  /** Violated when any prediction feature drifted (default false), where `triggerOn` lets drift decide. */
  predictionDrift: boolean;
  /**
   * Violated when the window's mean reconstruction error leaves the reference band (default false), where
   * `triggerOn` lets drift decide: a change in the joint distribution that no single feature shows.
   */
  multivariateDrift?: boolean;
  metrics: MetricBound[];
  /** Violated when stability (1 − std/mean over recent windows) falls below this. */
  minStability?: number;
  /** Violated when robustness (1 − failures/runs) falls below this. */
  minRobustness?: number;
}

export const DEFAULT_POLICY: PolicyConfig = {
  minSamples: 100,
  consecutiveWindows: 3,
  cooldownMs: 3_600_000,
  triggerOn: "auto",
  minLabelledSamples: 50,
  datasetDrift: true,
  predictionDrift: false,
  multivariateDrift: false,
  metrics: [],
};

export interface WindowObservation {
  /** End of the window (ms since the epoch); cooldowns are measured on these times, not the wall clock. */
  endMs: number;
  /** Rows (requests) in the window. */
  samples: number;
  /** Rows of the window with ground-truth feedback (absent = 0). */
  labelledSamples?: number;
  drift?: DriftReport;
  /** The window's mean PCA reconstruction error against the reference band; absent without a multivariate reference. */
  multivariate?: MultivariateDrift | null;
  /** Labelled metrics of the window; null = no labelled feedback for it. */
  metrics?: Record<string, number | null>;
  /** Label-free estimates of the same metrics (confidence-based, by name: e.g. "accuracy"); null = none. */
  estimatedMetrics?: Record<string, number | null>;
  /** Rows the estimates were computed from (absent = `samples`). */
  estimatedSamples?: number;
  /** What the estimates come from, in words (default "calibrated confidence"; a regressor's: "predicted errors"). */
  estimatedFrom?: string;
  /**
   * Set when the window's rows left the reference's range significantly (reference-support.ts): `share` of them lie
   * where the model extrapolates, `text` says so ("18 of 20 rows outside the reference's range (…)"). The estimate
   * is trusted only where those rows could not change the verdict (see `untrustedEstimate`).
   */
  outsideReference?: { share: number; text: string };
  stability?: number | null;
  robustness?: number | null;
}

export interface PolicyState {
  consecutiveViolations: number;
  /** endMs of the window that last triggered, or null. */
  lastTriggerMs: number | null;
}

export const INITIAL_POLICY_STATE: PolicyState = { consecutiveViolations: 0, lastTriggerMs: null };

/** One window judged on its own. */
export interface WindowJudgement {
  verdict: Verdict;
  /**
   * Why, at most MAX_REASONS of at most MAX_REASON_LENGTH characters: each violated rule with its value and
   * bound (the first prefixed with what decided, e.g. "decided by labels (62 labelled rows ≥ 50): "), the
   * likely cause, drift that was measured but did not decide, or why the data was insufficient.
   */
  reasons: string[];
  /** Whether labels, the label-free estimate or drift decided this window; absent when nothing could be judged. */
  decidedBy?: DecidedBy;
  /** What decided, in words, e.g. "decided by labels (62 labelled rows ≥ 50)". */
  basis?: string;
  /** The rules broken, in the order a user fixes them. */
  fired: PolicyRule[];
}

export interface PolicyDecision {
  /** Debounced verdict: "violated" only after `consecutiveWindows` violating windows in a row. */
  verdict: Verdict;
  /** This window alone. */
  windowVerdict: Verdict;
  /** The window's reasons, then a pending streak or a cooldown; bounded like `WindowJudgement.reasons`. */
  reasons: string[];
  /** This window's: whether labels, the estimate or drift decided it. */
  decidedBy?: DecidedBy;
  basis?: string;
  /** Rules this window broke. */
  fired: PolicyRule[];
  consecutiveViolations: number;
  /** True when the caller should act now (e.g. start retraining): violated and not cooling down. */
  trigger: boolean;
  /** When violated but a recent trigger holds further action back, the time the cooldown ends. */
  cooldownUntilMs: number | null;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

function clip(text: string, max = MAX_REASON_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Names that fit in about `budget` characters, then "and N more": a list inside one reason. */
function nameList(names: readonly string[], budget = 120): string {
  const shown: string[] = [];
  let length = 0;
  for (const name of names) {
    const item = shown.length === 0 ? clip(name, budget) : name;
    if (shown.length > 0 && length + 2 + item.length > budget) break;
    shown.push(item);
    length += (shown.length > 1 ? 2 : 0) + item.length;
  }
  const rest = names.length - shown.length;
  return rest > 0 ? `${shown.join(", ")} and ${rest} more` : shown.join(", ");
}

/** `reasons` cut to `limit` entries (the last saying how many were left out), each clipped. */
function boundReasons(reasons: readonly string[], limit = MAX_REASONS): string[] {
  const clipped = reasons.map((r) => clip(r));
  if (clipped.length <= limit) return clipped;
  return [...clipped.slice(0, limit - 1), `… and ${clipped.length - limit + 1} more`];
}

interface Regime {
  labels: boolean;
  /** The quality metric is judged on its estimate (labels are too few). */
  estimate?: boolean;
  stability: boolean;
  drift: boolean;
  basis?: string;
  decidedBy?: DecidedBy;
  /** Why the quality metric was not judged although it could have been. */
  labelsNote?: string;
}

/** Whether the window has a finite estimate of a metric the policy bounds. */
function hasEstimate(observation: WindowObservation, config: PolicyConfig): boolean {
  return config.metrics.some((b) => Number.isFinite(observation.estimatedMetrics?.[b.metric] ?? NaN));
}

/**
 * Why the estimate cannot judge this window, if it cannot. On rows beyond the reference's range the model
 * extrapolates and its confidence (or error model) was never checked, so their share of the window is taken as
 * unknown: an accuracy or f1 bound is decided by the estimate only if it holds for any quality of those rows
 * (estimate ± their share; exact for accuracy, a mean of per-row outcomes, and a working bound for f1); an error
 * bound (mae, rmse) never is, since their error has no upper limit.
 */
function untrustedEstimate(observation: WindowObservation, config: PolicyConfig): string | undefined {
  const outside = observation.outsideReference;
  if (!outside) return undefined;
  for (const b of config.metrics) {
    const estimate = observation.estimatedMetrics?.[b.metric];
    if (estimate === null || estimate === undefined || !Number.isFinite(estimate)) continue;
    if (b.max !== undefined) return `${outside.text}; their ${b.metric} could be anything`;
    if (b.min !== undefined && estimate - outside.share < b.min && estimate + outside.share >= b.min)
      return `${outside.text}; estimated ${b.metric} ${fmt(estimate)} ± ${fmt(outside.share)} spans the minimum ${b.min}`;
  }
  return undefined;
}

/** Which rules judge this window under `config.triggerOn`. */
function regime(observation: WindowObservation, config: PolicyConfig): Regime {
  const labelled = observation.labelledSamples ?? 0;
  const enough = labelled >= config.minLabelledSamples;
  const count = `${labelled} labelled rows ${enough ? "≥" : "<"} ${config.minLabelledSamples}`;
  const doubt = !enough && hasEstimate(observation, config) ? untrustedEstimate(observation, config) : undefined;
  const untrusted = doubt ? `; estimate not trusted: ${doubt}` : "";
  if (!enough && (config.triggerOn === "auto" || config.triggerOn === "performance") && hasEstimate(observation, config) && !untrusted) {
    const rows = observation.estimatedSamples ?? observation.samples;
    return {
      labels: false,
      estimate: true,
      stability: false,
      drift: false,
      basis: `decided by estimate (${count}; estimated from ${rows} rows' ${observation.estimatedFrom ?? "calibrated confidence"})`,
      decidedBy: "estimate",
    };
  }
  switch (config.triggerOn) {
    case "any":
      return { labels: true, stability: true, drift: true };
    case "performance":
      return {
        labels: enough,
        stability: true,
        drift: false,
        basis: "decided by labels (policy.triggerOn performance)",
        decidedBy: "labels",
        ...(enough ? {} : { labelsNote: `quality metric not judged: ${count}${untrusted}` }),
      };
    case "drift":
      return { labels: false, stability: false, drift: true, basis: "decided by drift (policy.triggerOn drift)", decidedBy: "drift" };
    case "auto":
      return enough
        ? { labels: true, stability: true, drift: false, basis: `decided by labels (${count})`, decidedBy: "labels" }
        : { labels: false, stability: false, drift: true, basis: `decided by drift (${count}${untrusted})`, decidedBy: "drift" };
  }
}

/** "multivariate drift: reconstruction error 1.234 > 1.100, the upper bound of the reference band [0.9, 1.1] at 300 rows" */
export function multivariateText(m: MultivariateDrift): string {
  const side = m.reconstructionError > m.upper ? `> ${fmt(m.upper)}, the upper` : `< ${fmt(m.lower)}, the lower`;
  return `multivariate drift: mean PCA reconstruction error ${fmt(m.reconstructionError)} ${side} bound of the reference band [${fmt(m.lower)}, ${fmt(m.upper)}] at ${m.rows} rows`;
}

/** The verdict of one window on its own, with reasons. */
export function evaluateWindow(observation: WindowObservation, config: PolicyConfig): WindowJudgement {
  if (!(observation.samples >= config.minSamples)) {
    return { verdict: "insufficient-data", reasons: [`window has ${observation.samples} samples, fewer than the ${config.minSamples} required`], fired: [] };
  }
  const judge = regime(observation, config);
  const violations: { rule: PolicyRule; text: string[] }[] = [];
  let labelsJudged = false;
  let driftJudged = false;
  let evaluated = 0;

  const judgedMetrics = judge.labels ? observation.metrics : judge.estimate ? observation.estimatedMetrics : undefined;
  const metricName = (name: string) => (judge.estimate ? `estimated ${name}` : name);
  for (const bound of judgedMetrics ? config.metrics : []) {
    const value = judgedMetrics?.[bound.metric];
    if (value === null || value === undefined || !Number.isFinite(value)) continue;
    evaluated++;
    labelsJudged = true;
    const name = metricName(bound.metric);
    if (bound.min !== undefined && value < bound.min) violations.push({ rule: "metric-min", text: [`${name} ${fmt(value)} < minimum ${bound.min}`] });
    if (bound.max !== undefined && value > bound.max) violations.push({ rule: "metric-max", text: [`${name} ${fmt(value)} > maximum ${bound.max}`] });
  }
  const seed: Array<[PolicyRule & ("robustness" | "stability"), number | null | undefined, number | undefined, boolean]> = [
    ["robustness", observation.robustness, config.minRobustness, true],
    ["stability", observation.stability, config.minStability, judge.stability],
  ];
  for (const [name, value, min, judged] of seed) {
    if (!judged || min === undefined || value === null || value === undefined || !Number.isFinite(value)) continue;
    evaluated++;
    if (name === "stability") labelsJudged = true;
    if (value < min) violations.push({ rule: name, text: [`${name} ${fmt(value)} < minimum ${min}`] });
  }

  const drift = observation.drift;
  const driftedNames = drift ? drift.features.filter((f) => f.drift).map((f) => f.name) : [];
  const predictionDrifted = drift ? drift.prediction.filter((p) => p.status === "evaluated" && p.drift) : [];
  if (judge.drift && config.datasetDrift && drift && drift.status === "evaluated") {
    evaluated++;
    driftJudged = true;
    if (drift.drift) {
      const details = drift.features.filter((f) => f.drift).map((f) => f.reason);
      violations.push({
        rule: "dataset-drift",
        text: [
          `dataset drift: ${drift.driftedFeatures}/${drift.evaluatedFeatures} features drifted (share ${fmt(drift.driftShare)} ≥ ${drift.driftShareThreshold}): ${nameList(driftedNames)}`,
          ...details.slice(0, 3),
        ],
      });
    }
  }
  const multivariate = observation.multivariate;
  if (judge.drift && config.multivariateDrift && multivariate) {
    evaluated++;
    driftJudged = true;
    if (multivariate.drift) violations.push({ rule: "multivariate-drift", text: [multivariateText(multivariate)] });
  }
  if (judge.drift && config.predictionDrift && drift) {
    if (drift.prediction.some((p) => p.status === "evaluated")) {
      evaluated++;
      driftJudged = true;
    }
    if (predictionDrifted.length > 0) violations.push({ rule: "prediction-drift", text: predictionDrifted.map((p) => `prediction drift: ${p.reason}`) });
  }

  const order: PolicyRule[] = ["metric-min", "metric-max", "robustness", "stability", "dataset-drift", "multivariate-drift", "prediction-drift"];
  violations.sort((a, b) => order.indexOf(a.rule) - order.indexOf(b.rule));
  const fired = violations.map((v) => v.rule);
  // "any" judges on everything: what decided is the first rule broken, else the evidence that was judged.
  const firstKind = fired.find((r) => r !== "robustness");
  const decidedBy: DecidedBy | undefined =
    judge.decidedBy ??
    (firstKind
      ? firstKind === "dataset-drift" || firstKind === "multivariate-drift" || firstKind === "prediction-drift"
        ? "drift"
        : "labels"
      : labelsJudged
        ? "labels"
        : driftJudged
          ? "drift"
          : undefined);
  const basis = judge.basis ?? (decidedBy ? `decided by ${decidedBy} (policy.triggerOn any)` : undefined);
  // Drift that was measured but not allowed to decide: named as the likely cause of a quality problem, or noted.
  const multivariateDrifted = config.multivariateDrift && multivariate?.drift === true;
  const driftNotJudged = !driftJudged && (driftedNames.length > 0 || predictionDrifted.length > 0 || multivariateDrifted);
  const driftWords = [
    ...(driftedNames.length > 0 ? [`drift in ${nameList(driftedNames)}`] : []),
    ...(multivariateDrifted ? ["multivariate drift"] : []),
    ...(predictionDrifted.length > 0 ? ["drifted predictions"] : []),
  ].join(" and ");
  const notes = judge.labelsNote ? [judge.labelsNote] : [];
  const decided = { ...(decidedBy ? { decidedBy } : {}), ...(basis ? { basis } : {}) };

  if (violations.length > 0) {
    const [first, ...rest] = violations.flatMap((v) => v.text);
    const qualityFired = fired.some((r) => r === "metric-min" || r === "metric-max" || r === "stability");
    const cause = driftNotJudged && qualityFired ? [`likely cause: ${driftWords}`] : [];
    return { verdict: "violated", reasons: boundReasons([basis ? `${basis}: ${first}` : first!, ...rest, ...cause, ...notes]), ...decided, fired };
  }
  if (evaluated === 0) {
    const why = "no rule could be evaluated (no drift report, labelled metrics or run counts for this window)";
    return { verdict: "insufficient-data", reasons: boundReasons([judge.basis ? `${judge.basis}, but ${why}` : why, ...notes]), fired: [] };
  }
  const noted = driftNotJudged ? [`${driftWords} measured but not a violation: ${basis}`] : [];
  return { verdict: "healthy", reasons: boundReasons([...noted, ...notes]), ...decided, fired: [] };
}

/**
 * Advances the policy by one window. Insufficient-data windows neither extend nor reset a violation streak
 * (an outage does not erase evidence, nor create it); a healthy window resets it.
 */
export function evaluatePolicy(state: PolicyState, observation: WindowObservation, config: PolicyConfig): { state: PolicyState; decision: PolicyDecision } {
  return advancePolicy(state, evaluateWindow(observation, config), observation.endMs, config);
}

/**
 * Advances the policy by a window already judged (its verdict as first recorded, when a later window is re-judged
 * and the streak is replayed through it): the hysteresis and cooldown of `evaluatePolicy`.
 */
export function advancePolicy(
  state: PolicyState,
  window: WindowJudgement,
  endMs: number,
  config: PolicyConfig,
): { state: PolicyState; decision: PolicyDecision } {
  let consecutive = state.consecutiveViolations;
  if (window.verdict === "violated") consecutive++;
  else if (window.verdict === "healthy") consecutive = 0;
  const required = Math.max(1, config.consecutiveWindows);
  const tail: string[] = [];
  // A violation streak shorter than required reads as healthy, with the pending count in the reasons.
  const verdict: Verdict = consecutive >= required ? "violated" : window.verdict === "insufficient-data" ? "insufficient-data" : "healthy";
  if (window.verdict === "violated" && consecutive < required) tail.push(`violation ${consecutive} of ${required} consecutive windows needed`);
  let trigger = false;
  let cooldownUntilMs: number | null = null;
  let lastTriggerMs = state.lastTriggerMs;
  if (verdict === "violated") {
    const until = lastTriggerMs === null ? -Infinity : lastTriggerMs + config.cooldownMs;
    if (endMs >= until) {
      trigger = true;
      lastTriggerMs = endMs;
    } else {
      cooldownUntilMs = until;
      tail.push(`cooling down until ${new Date(until).toISOString()} after the trigger at ${new Date(lastTriggerMs!).toISOString()}`);
    }
  }
  // The streak and cooldown always show; the window's own reasons give way to them.
  const reasons = [...boundReasons(window.reasons, MAX_REASONS - tail.length), ...tail];
  const decision: PolicyDecision = {
    verdict,
    windowVerdict: window.verdict,
    reasons,
    fired: window.fired,
    consecutiveViolations: consecutive,
    trigger,
    cooldownUntilMs,
  };
  if (window.decidedBy) decision.decidedBy = window.decidedBy;
  if (window.basis) decision.basis = window.basis;
  return { state: { consecutiveViolations: consecutive, lastTriggerMs }, decision };
}
