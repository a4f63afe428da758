// The loop's Observing phase with the reverse shadow, step by step: after a promotion the previous version serves
// mirrored live traffic, and the paired numbers the monitoring reconciler writes to status.shadow (role previous)
// can roll the promotion back. No cluster, a fixed clock.
import { describe, expect, it } from "vitest";
import type { ModelDeploymentSpec, ModelDeploymentStatus, ResolvedModelDeployment, ShadowComparison, WindowRecord } from "../../../src/api/index.js";
import { stepLoop, type LoopObservation } from "../../../src/operator/loop/state-machine.js";
import { applyStep as apply, at, iso, penguinsModelDeployment } from "./loop-fixtures.js";

const obs = (now: Date, more: Partial<LoopObservation> = {}): LoopObservation => ({ now, rollout: { ready: true, message: "" }, ...more });

/** r1-abc passed the gate (0.88 on the recent holdout) and rolls out, replacing v1 (last healthy live accuracy 0.85). */
function promoting(promotion: ModelDeploymentSpec["promotion"] = { shadow: { enabled: true, minPairs: 100, minLabelledPairs: 50 } }): ResolvedModelDeployment {
  const status: ModelDeploymentStatus = {
    servingVersion: "r1-abc",
    targetVersion: "r1-abc",
    previousVersion: "v1",
    candidateVersion: "r1-abc",
    loop: { phase: "Promoting", attempt: 1, since: iso(at(30)), message: "rolling", baselineMetric: 0.85 },
    lastRetraining: {
      jobName: "penguins-retrain-1",
      attempt: 1,
      phase: "Succeeded",
      candidateVersion: "r1-abc",
      gate: { passed: true, metric: "accuracy", recent: { rows: 40, candidate: 0.88, serving: 0.52 }, message: "✓" },
    },
  };
  return penguinsModelDeployment({ promotion }, status);
}

/** The promoted version serves on every pod: the loop is Observing from T0 + 40 s. */
function observingFrom(m: ResolvedModelDeployment): { m: ResolvedModelDeployment; step: ReturnType<typeof stepLoop> } {
  const step = stepLoop(m, obs(at(40), { rollout: { pinnedVersion: "r1-abc", ready: true, message: "" } }));
  return { m: apply(m, step), step };
}

const reverse = (over: Partial<ShadowComparison>): ShadowComparison => ({
  role: "previous",
  version: "v1",
  since: iso(at(45)),
  updateTime: iso(at(100)),
  mirrored: 200,
  dropped: 0,
  failed: 0,
  rows: 200,
  agreement: 0.8,
  labelledPairs: 120,
  metric: "accuracy",
  serving: 0.7,
  shadow: 0.85,
  improvement: 0.15,
  test: "McNemarExact",
  pValue: 0.0004,
  verdict: "Rejected",
  failedRule: "PreviousVersionBetter",
  message: "200 of 100 pairs, 120 of 50 labelled; ✗ previous v1 accuracy 0.85 vs promoted 0.7 on 120 labelled pairs (McNemarExact p 0.0004)",
  ...over,
});

const window = (end: Date, accuracy: number, labelled = 100, more: Partial<WindowRecord> = {}): WindowRecord => ({
  windowEnd: iso(end),
  version: "r1-abc",
  samples: 100,
  labelledSamples: labelled,
  accuracy,
  ...more,
});

const withStatus = (m: ResolvedModelDeployment, more: ModelDeploymentStatus): ResolvedModelDeployment => ({ ...m, status: { ...m.status, ...more } });

describe("Observing with the reverse shadow", () => {
  it("after the rollout the previous version runs in the shadow Deployment and the serving pods mirror to it", () => {
    const { m, step } = observingFrom(promoting());
    expect(m.status?.loop?.phase).toBe("Observing");
    expect(m.status?.observation).toMatchObject({ version: "r1-abc", previousVersion: "v1", since: iso(at(40)), reverseShadow: "Running" });
    expect(step.shadow).toEqual({ version: "v1", replicas: 1, sampleRate: 1 });
    expect(step.events.map((e) => e.reason)).toEqual(["Promoted", "ReverseShadowStarted"]);
    // Mirroring is renewed within the sidecars' 2-minute expiry.
    expect(step.requeueAfterMs).toBeLessThanOrEqual(30_000);
    // Every later Observing step keeps asking for it.
    expect(stepLoop(m, obs(at(50))).shadow).toEqual({ version: "v1", replicas: 1, sampleRate: 1 });
  });

  it("no reverse shadow with promotion.shadow.reverse false, or without shadow evaluation: observation as before", () => {
    for (const promotion of [{ shadow: { enabled: true, reverse: false } }, {}]) {
      const { m, step } = observingFrom(promoting(promotion));
      expect(m.status?.observation?.reverseShadow).toBe("Off");
      expect(step.shadow).toBeUndefined();
      expect(step.events.map((e) => e.reason)).toEqual(["Promoted"]);
    }
  });

  it("the previous version significantly better on the same labelled pairs rolls back with PreviousVersionBetter and the paired numbers", () => {
    let { m } = observingFrom(promoting());
    m = withStatus(m, { shadow: reverse({}) });
    let step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("RollingBack");
    expect(step.status).toMatchObject({ targetVersion: "v1", previousVersion: "r1-abc" });
    expect(step.status.loop?.message).toMatch(
      /^PreviousVersionBetter: v1 is significantly better than r1-abc on the same requests: accuracy 0.85 \(previous v1\) vs 0.7 \(promoted r1-abc\) on 120 labelled pairs, McNemarExact p 0.0004; rolling back to v1$/,
    );
    expect(step.status.observation).toMatchObject({ reverseShadow: "Decided", comparison: { verdict: "Rejected", pValue: 0.0004, labelledPairs: 120 } });
    expect(step.events.map((e) => [e.type, e.reason])).toEqual([["Warning", "PreviousVersionBetter"]]);
    // The shadow stops: the previous version serves again through the user Service.
    expect(step.shadow).toBeUndefined();
    // While the pods roll back the message says how far, and still why.
    m = apply(m, step);
    step = stepLoop(m, obs(at(105), { rollout: { pinnedVersion: "v1", ready: false, message: "rolling out: 1 old serving pods terminating" } }));
    expect(step.status.loop?.message).toMatch(
      /^PreviousVersionBetter: v1 is significantly better .*; rolling back to v1: rolling out: 1 old serving pods terminating$/,
    );
    m = apply(m, step, { servingVersion: "v1" });
    const done = stepLoop(m, obs(at(110), { rollout: { pinnedVersion: "v1", ready: true, message: "" } }));
    expect(done.status.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 1 });
    expect(done.status.history?.at(-1)).toMatchObject({ event: "RolledBack", version: "v1", previousVersion: "r1-abc" });
    expect(done.status.history?.at(-1)?.message).toMatch(/PreviousVersionBetter: .* on 120 labelled pairs, McNemarExact p 0.0004/);
    expect(done.status.observation?.comparison?.failedRule).toBe("PreviousVersionBetter");
  });

  it("with promotion.rollbackOnRegression false the verdict is recorded and warned about, and nothing rolls back", () => {
    let { m } = observingFrom(promoting({ rollbackOnRegression: false, shadow: { enabled: true } }));
    m = withStatus(m, { shadow: reverse({}) });
    const step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.observation?.reverseShadow).toBe("Decided");
    expect(step.events.map((e) => [e.type, e.reason])).toEqual([["Warning", "PreviousVersionBetter"]]);
    expect(step.events[0]!.note).toMatch(/not rolled back \(promotion.rollbackOnRegression is false\)/);
  });

  it("the promoted version holding on the same requests is decided once: the shadow stops, observation goes on by its own rules", () => {
    let { m } = observingFrom(promoting());
    m = withStatus(m, { shadow: reverse({ serving: 0.86, shadow: 0.84, improvement: -0.02, pValue: 0.6, verdict: "Passed", failedRule: undefined }) });
    let step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.observation).toMatchObject({ reverseShadow: "Decided", comparison: { verdict: "Passed" } });
    expect(step.status.observation?.message).toMatch(/^r1-abc held against v1 on the same requests: accuracy 0.84 \(previous v1\) vs 0.86/);
    expect(step.events.map((e) => e.reason)).toEqual(["ReverseShadowPassed"]);
    expect(step.shadow).toBeUndefined();
    // One look: later numbers that would say otherwise change nothing.
    m = withStatus(apply(m, step), { shadow: reverse({}) });
    step = stepLoop(m, obs(at(110)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.observation?.comparison?.verdict).toBe("Passed");
    m = withStatus(apply(m, step), { recentWindows: [window(at(120), 0.87), window(at(121), 0.88), window(at(122), 0.86)] });
    step = stepLoop(m, obs(at(123)));
    expect(step.status.loop?.phase).toBe("Stable");
    expect(step.events.find((e) => e.reason === "ObservationPassed")?.note).toMatch(/reverse shadow: r1-abc held against v1/);
  });

  it("too few pairs is no verdict and no rollback: observation passing ends the reverse shadow with its last numbers", () => {
    let { m } = observingFrom(promoting());
    const pending = reverse({
      labelledPairs: 12,
      pValue: 0.02,
      verdict: "Pending",
      failedRule: undefined,
      message: "collecting: 30 of 100 pairs, 12 of 50 labelled",
    });
    m = withStatus(m, { shadow: pending });
    let step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.loop?.message).toMatch(/reverse shadow on v1: collecting: 30 of 100 pairs, 12 of 50 labelled/);
    expect(step.shadow?.version).toBe("v1");
    m = withStatus(apply(m, step), { recentWindows: [window(at(120), 0.87), window(at(121), 0.88), window(at(122), 0.86)] });
    step = stepLoop(m, obs(at(123)));
    expect(step.status.loop?.phase).toBe("Stable");
    expect(step.status.observation).toMatchObject({ reverseShadow: "Stopped", comparison: { verdict: "Pending", labelledPairs: 12 } });
    expect(step.status.observation?.message).toMatch(/^reverse shadow stopped before its look \(observation passed after 3 labelled windows\)/);
    expect(step.shadow).toBeUndefined();
  });

  it("without a verdict Observing's own rules still roll back a live regression, and the shadow stops", () => {
    let { m } = observingFrom(promoting());
    m = withStatus(m, { shadow: reverse({ verdict: "Pending", failedRule: undefined, labelledPairs: 10 }), recentWindows: [window(at(90), 0.6)] });
    const step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("RollingBack");
    expect(step.status.loop?.message).toMatch(/^LiveRegression: /);
    expect(step.status.observation?.reverseShadow).toBe("Stopped");
    expect(step.shadow).toBeUndefined();
  });

  it("an estimate that says worse before labels arrive is recorded, never rolls back alone, and the labelled pairs confirm it one-sided", () => {
    let { m } = observingFrom(promoting());
    // 3 labelled rows (fewer than policy.minLabelledSamples): judged on the estimate, 0.7 — below the gate's 0.88 by more than 0.05 and below v1's 0.85.
    m = withStatus(m, { recentWindows: [window(at(90), 0.66, 3, { estimatedAccuracy: 0.7 })] });
    let step = stepLoop(m, obs(at(95)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.observation?.estimateWarning).toMatchObject({ windowEnd: iso(at(90)), labelledSamples: 3, metric: "accuracy", estimated: 0.7 });
    expect(step.events.map((e) => [e.type, e.reason])).toEqual([["Warning", "EstimatedRegression"]]);
    expect(step.shadow?.version).toBe("v1");
    // A calm estimate later does not clear it; a second bad one is not announced twice.
    m = withStatus(apply(m, step), {
      recentWindows: [window(at(90), 0.66, 3, { estimatedAccuracy: 0.7 }), window(at(96), 0.6, 2, { estimatedAccuracy: 0.65 })],
    });
    step = stepLoop(m, obs(at(97)));
    expect(step.events).toEqual([]);
    expect(step.status.observation?.estimateWarning?.windowEnd).toBe(iso(at(90)));
    // The labels confirm: the monitoring reconciler judged the pairs one-sided (two-sided p 0.0755, halved: 0.0377).
    m = withStatus(apply(m, step), { shadow: reverse({ pValue: 0.0755, oneSided: true }) });
    step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("RollingBack");
    expect(step.status.loop?.message).toMatch(
      /McNemarExact one-sided p 0.0377; the label-free estimate had said so first: accuracy 0.7 in the window ending .* \(3 labelled rows\)/,
    );
    expect(step.status.observation).toMatchObject({ reverseShadow: "Decided", estimateWarning: { estimated: 0.7 }, comparison: { oneSided: true } });
  });

  it("a window skipped for too few labels counts once its late labels come: the estimate's warning confirmed, rolled back", () => {
    let { m } = observingFrom(promoting());
    // Closed with 3 labels (policy.minLabelledSamples 50): not counted, its estimate 0.7 noted, awaiting labels.
    m = withStatus(m, { recentWindows: [window(at(90), 0.66, 3, { estimatedAccuracy: 0.7 })] });
    let step = stepLoop(m, obs(at(91)));
    expect(step.status.loop).toMatchObject({ phase: "Observing", observedWindows: 0, awaitingLabels: [iso(at(90))] });
    expect(step.status.loop?.message).toMatch(/had 3 labelled rows \(fewer than 50\): counted if late labels bring it there/);
    m = apply(m, step);
    // A healthy window closes with its labels; the first one's labels are still missing.
    m = withStatus(m, { recentWindows: [window(at(90), 0.66, 3, { estimatedAccuracy: 0.7 }), window(at(96), 0.9)] });
    step = stepLoop(m, obs(at(97)));
    expect(step.status.loop).toMatchObject({ observedWindows: 1, awaitingLabels: [iso(at(90))] });
    m = apply(m, step);
    // The monitoring controller re-judged it on 80 labels that came late: 0.62, worse than the gate and than v1.
    m = withStatus(m, { recentWindows: [window(at(90), 0.62, 80, { estimatedAccuracy: 0.7, rejudgedTime: iso(at(99)) }), window(at(96), 0.9)] });
    step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("RollingBack");
    expect(step.status.loop?.awaitingLabels).toBeUndefined();
    expect(step.status.loop?.message).toMatch(
      /^LiveRegression: r1-abc: live accuracy 0.62 is worse than the gate's 0.88 .* \(window ending .*, realised with 80 labels, most of them after it closed: they confirm the label-free estimate 0.7 of that window\); rolling back to v1$/,
    );
    expect(step.events.map((e) => [e.type, e.reason])).toEqual([["Warning", "LiveRegression"]]);
  });

  it("a window awaiting labels is counted once, and forgotten when it leaves status.recentWindows", () => {
    let { m } = observingFrom(promoting({ observationWindows: 5, shadow: { enabled: true } }));
    m = withStatus(m, { recentWindows: [window(at(90), 0.9, 3)] });
    m = apply(m, stepLoop(m, obs(at(91))));
    m = withStatus(m, { recentWindows: [window(at(90), 0.9, 60)] });
    let step = stepLoop(m, obs(at(92)));
    expect(step.status.loop).toMatchObject({ observedWindows: 1 });
    expect(step.status.loop?.awaitingLabels).toBeUndefined();
    m = apply(m, step);
    // More labels later do not count it twice.
    m = withStatus(m, { recentWindows: [window(at(90), 0.9, 90)] });
    step = stepLoop(m, obs(at(93)));
    expect(step.status.loop?.observedWindows).toBe(1);
    // Another sparse window that then leaves recentWindows (newer windows pushed it out) is dropped from the list.
    m = withStatus(apply(m, step), { recentWindows: [window(at(94), 0.9, 3)] });
    m = apply(m, stepLoop(m, obs(at(95))));
    expect(m.status?.loop?.awaitingLabels).toEqual([iso(at(94))]);
    m = withStatus(m, { recentWindows: [window(at(98), 0.9, 3)] });
    expect(stepLoop(m, obs(at(99))).status.loop?.awaitingLabels).toEqual([iso(at(98))]);
  });

  it("an estimate is not noted without a running reverse shadow: there is nothing to confirm it", () => {
    let { m } = observingFrom(promoting({ shadow: { enabled: true, reverse: false } }));
    m = withStatus(m, { recentWindows: [window(at(90), 0.66, 3, { estimatedAccuracy: 0.7 })] });
    const step = stepLoop(m, obs(at(95)));
    expect(step.status.observation?.estimateWarning).toBeUndefined();
    expect(step.events).toEqual([]);
  });

  it("numbers about the candidate's shadow or another version are not the reverse shadow's", () => {
    const { m } = observingFrom(promoting());
    for (const other of [reverse({ role: "candidate" }), reverse({ role: undefined }), reverse({ version: "v0" })]) {
      const step = stepLoop(withStatus(m, { shadow: other }), obs(at(100)));
      expect(step.status.loop?.phase).toBe("Observing");
      expect(step.status.observation?.reverseShadow).toBe("Running");
    }
  });

  it("paused: the reverse shadow stops (Event ShadowStopped), observation goes on", () => {
    let { m } = observingFrom(promoting());
    m = { ...m, spec: { ...m.spec, policy: { ...m.spec.policy, paused: true } } };
    const step = stepLoop(m, obs(at(100)));
    expect(step.status.loop?.phase).toBe("Observing");
    expect(step.status.observation?.reverseShadow).toBe("Stopped");
    expect(step.events.map((e) => e.reason)).toEqual(["ShadowStopped"]);
    expect(step.shadow).toBeUndefined();
    // Once.
    expect(stepLoop(apply(m, step), obs(at(101))).events).toEqual([]);
  });
});
