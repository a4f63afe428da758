// Health policy: turns one window's observations into a verdict with reasons, then debounces verdicts
// (hysteresis over consecutive windows, minimum samples, cooldown) so one noisy window never triggers
// a GPU job. Pure: the caller keeps the PolicyState (e.g. in the ModelDeployment status) between windows.
import type { DriftReport } from "./compare.js";

export type Verdict = "healthy" | "violated" | "insufficient-data";

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
  /** Violated when the dataset drift verdict is true (default true). */
  datasetDrift: boolean;
  /** Violated when any prediction feature drifted (default false). */
  predictionDrift: boolean;
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
  datasetDrift: true,
  predictionDrift: false,
  metrics: [],
};

export interface WindowObservation {
  /** End of the window (ms since the epoch); cooldowns are measured on these times, not the wall clock. */
  endMs: number;
  /** Rows (requests) in the window. */
  samples: number;
  drift?: DriftReport;
  /** Labelled metrics of the window; null = no labelled feedback for it. */
  metrics?: Record<string, number | null>;
  stability?: number | null;
  robustness?: number | null;
}

export interface PolicyState {
  consecutiveViolations: number;
  /** endMs of the window that last triggered, or null. */
  lastTriggerMs: number | null;
}

export const INITIAL_POLICY_STATE: PolicyState = { consecutiveViolations: 0, lastTriggerMs: null };

export interface PolicyDecision {
  /** Debounced verdict: "violated" only after `consecutiveWindows` violating windows in a row. */
  verdict: Verdict;
  /** This window alone. */
  windowVerdict: Verdict;
  /** Why: each violated rule with its value and bound, or why the data was insufficient. */
  reasons: string[];
  consecutiveViolations: number;
  /** True when the caller should act now (e.g. start retraining): violated and not cooling down. */
  trigger: boolean;
  /** When violated but a recent trigger holds further action back, the time the cooldown ends. */
  cooldownUntilMs: number | null;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

/** The verdict of one window on its own, with reasons. */
export function evaluateWindow(observation: WindowObservation, config: PolicyConfig): { verdict: Verdict; reasons: string[] } {
  if (!(observation.samples >= config.minSamples)) {
    return { verdict: "insufficient-data", reasons: [`window has ${observation.samples} samples, fewer than the ${config.minSamples} required`] };
  }
  const reasons: string[] = [];
  let evaluated = 0;
  const drift = observation.drift;
  if (config.datasetDrift && drift && drift.status === "evaluated") {
    evaluated++;
    if (drift.drift) {
      const which = drift.features.filter((f) => f.drift).map((f) => f.reason);
      reasons.push(`dataset drift: ${drift.driftedFeatures}/${drift.evaluatedFeatures} features drifted (share ${fmt(drift.driftShare)} ≥ ${drift.driftShareThreshold})`, ...which);
    }
  }
  if (config.predictionDrift && drift) {
    const evaluatedPrediction = drift.prediction.filter((p) => p.status === "evaluated");
    if (evaluatedPrediction.length > 0) evaluated++;
    for (const p of evaluatedPrediction) if (p.drift) reasons.push(`prediction drift: ${p.reason}`);
  }
  for (const bound of config.metrics) {
    const value = observation.metrics?.[bound.metric];
    if (value === null || value === undefined || !Number.isFinite(value)) continue;
    evaluated++;
    if (bound.min !== undefined && value < bound.min) reasons.push(`${bound.metric} ${fmt(value)} < minimum ${bound.min}`);
    if (bound.max !== undefined && value > bound.max) reasons.push(`${bound.metric} ${fmt(value)} > maximum ${bound.max}`);
  }
  const seed: Array<[string, number | null | undefined, number | undefined]> = [
    ["stability", observation.stability, config.minStability],
    ["robustness", observation.robustness, config.minRobustness],
  ];
  for (const [name, value, min] of seed) {
    if (min === undefined || value === null || value === undefined || !Number.isFinite(value)) continue;
    evaluated++;
    if (value < min) reasons.push(`${name} ${fmt(value)} < minimum ${min}`);
  }
  if (reasons.length > 0) return { verdict: "violated", reasons };
  if (evaluated === 0) return { verdict: "insufficient-data", reasons: ["no rule could be evaluated (no drift report, labelled metrics or run counts for this window)"] };
  return { verdict: "healthy", reasons: [] };
}

/**
 * Advances the policy by one window. Insufficient-data windows neither extend nor reset a violation streak
 * (an outage does not erase evidence, nor create it); a healthy window resets it.
 */
export function evaluatePolicy(state: PolicyState, observation: WindowObservation, config: PolicyConfig): { state: PolicyState; decision: PolicyDecision } {
  const window = evaluateWindow(observation, config);
  let consecutive = state.consecutiveViolations;
  if (window.verdict === "violated") consecutive++;
  else if (window.verdict === "healthy") consecutive = 0;
  const required = Math.max(1, config.consecutiveWindows);
  const reasons = [...window.reasons];
  // A violation streak shorter than required reads as healthy, with the pending count in the reasons.
  const verdict: Verdict = consecutive >= required ? "violated" : window.verdict === "insufficient-data" ? "insufficient-data" : "healthy";
  if (window.verdict === "violated" && consecutive < required) reasons.push(`violation ${consecutive} of ${required} consecutive windows needed`);
  let trigger = false;
  let cooldownUntilMs: number | null = null;
  let lastTriggerMs = state.lastTriggerMs;
  if (verdict === "violated") {
    const until = lastTriggerMs === null ? -Infinity : lastTriggerMs + config.cooldownMs;
    if (observation.endMs >= until) {
      trigger = true;
      lastTriggerMs = observation.endMs;
    } else {
      cooldownUntilMs = until;
      reasons.push(`cooling down until ${new Date(until).toISOString()} after the trigger at ${new Date(lastTriggerMs!).toISOString()}`);
    }
  }
  return {
    state: { consecutiveViolations: consecutive, lastTriggerMs },
    decision: { verdict, windowVerdict: window.verdict, reasons, consecutiveViolations: consecutive, trigger, cooldownUntilMs },
  };
}
