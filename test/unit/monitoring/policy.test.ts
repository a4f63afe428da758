import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY,
  INITIAL_POLICY_STATE,
  evaluatePolicy,
  type PolicyConfig,
  type PolicyDecision,
  type WindowObservation,
} from "../../../src/monitoring/index.js";

const HOUR = 3_600_000;
const config: PolicyConfig = {
  ...DEFAULT_POLICY,
  minSamples: 50,
  consecutiveWindows: 3,
  cooldownMs: 2 * HOUR,
  datasetDrift: false,
  metrics: [{ metric: "accuracy", min: 0.8 }],
};

/** Runs a scripted sequence: a number is the window's accuracy, "few" is a window with too few samples. */
function run(script: (number | "few" | "nolabels")[], policy = config): PolicyDecision[] {
  let state = INITIAL_POLICY_STATE;
  return script.map((step, i) => {
    const observation: WindowObservation = {
      endMs: (i + 1) * HOUR,
      samples: step === "few" ? 10 : 500,
      labelledSamples: step === "few" ? 10 : 500,
      metrics: { accuracy: typeof step === "number" ? step : null },
    };
    const next = evaluatePolicy(state, observation, policy);
    state = next.state;
    return next.decision;
  });
}

describe("policy over scripted windows", () => {
  it("one noisy window never triggers: violated only after 3 consecutive bad windows", () => {
    const decisions = run([0.9, 0.7, 0.9, 0.7, 0.7, 0.7]);
    expect(decisions.map((d) => d.verdict)).toEqual(["healthy", "healthy", "healthy", "healthy", "healthy", "violated"]);
    expect(decisions.map((d) => d.windowVerdict)).toEqual(["healthy", "violated", "healthy", "violated", "violated", "violated"]);
    expect(decisions.map((d) => d.trigger)).toEqual([false, false, false, false, false, true]);
    expect(decisions[4]!.reasons).toContain("violation 2 of 3 consecutive windows needed");
    expect(decisions[5]!.reasons[0]).toBe("decided by labels (500 labelled rows ≥ 50): accuracy 0.7000 < minimum 0.8");
  });

  it("windows with too few samples are insufficient-data and neither extend nor reset a streak", () => {
    const decisions = run(["few", 0.7, "few", 0.7, "few", 0.7]);
    expect(decisions.map((d) => d.verdict)).toEqual(["insufficient-data", "healthy", "insufficient-data", "healthy", "insufficient-data", "violated"]);
    expect(decisions[0]!.reasons[0]).toBe("window has 10 samples, fewer than the 50 required");
    expect(decisions[5]!.consecutiveViolations).toBe(3);
  });

  it("a window without labels or drift report is insufficient-data, not healthy", () => {
    const [decision] = run(["nolabels"]);
    expect(decision!.verdict).toBe("insufficient-data");
    expect(decision!.reasons[0]).toMatch(/no rule could be evaluated/);
  });

  it("cooldown holds back a second trigger while the violation persists, then triggers again", () => {
    const decisions = run([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(decisions.map((d) => d.verdict)).toEqual(["healthy", "healthy", "violated", "violated", "violated", "violated", "violated"]);
    // Trigger at hour 3; cooldown 2 h blocks hour 4, releases at hour 5.
    expect(decisions.map((d) => d.trigger)).toEqual([false, false, true, false, true, false, true]);
    expect(decisions[3]!.cooldownUntilMs).toBe(5 * HOUR);
    expect(decisions[3]!.reasons.at(-1)).toMatch(/cooling down until 1970-01-01T05:00:00.000Z/);
  });

  it("recovery resets the streak", () => {
    const decisions = run([0.5, 0.5, 0.95, 0.5, 0.5]);
    expect(decisions.map((d) => d.verdict)).toEqual(["healthy", "healthy", "healthy", "healthy", "healthy"]);
    expect(decisions.at(-1)!.consecutiveViolations).toBe(2);
  });

  it("checks stability, robustness and upper bounds with reasons naming value and bound", () => {
    const policy: PolicyConfig = { ...config, consecutiveWindows: 1, metrics: [{ metric: "rmse", max: 2 }], minStability: 0.9, minRobustness: 0.99 };
    const { decision } = evaluatePolicy(
      INITIAL_POLICY_STATE,
      { endMs: 0, samples: 100, labelledSamples: 100, metrics: { rmse: 2.5 }, stability: 0.8, robustness: 0.95 },
      policy,
    );
    expect(decision.verdict).toBe("violated");
    // In the order a user fixes them: quality, then errors, then stability.
    expect(decision.reasons).toEqual([
      "decided by labels (100 labelled rows ≥ 50): rmse 2.500 > maximum 2",
      "robustness 0.9500 < minimum 0.99",
      "stability 0.8000 < minimum 0.9",
    ]);
    expect(decision.fired).toEqual(["metric-max", "robustness", "stability"]);
  });
});
