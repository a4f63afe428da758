// The loop's Shadowing phase, step by step: a candidate that passed the offline gate serves mirrored live traffic,
// and the numbers the monitoring reconciler writes to status.shadow decide. No cluster, a fixed clock.
import { describe, expect, it } from "vitest";
import {
  findCondition,
  type ModelDeploymentSpec,
  type ModelDeploymentStatus,
  type ResolvedModelDeployment,
  type ShadowComparison,
} from "../../../src/api/index.js";
import type { CandidateReport } from "../../../src/operator/loop/gate.js";
import { stepLoop, type LoopObservation } from "../../../src/operator/loop/state-machine.js";
import { applyStep, at, iso, penguinsModelDeployment, T0 } from "./loop-fixtures.js";

const HOUR = 3600;

const md = (spec: Partial<ModelDeploymentSpec> = {}, status: ModelDeploymentStatus = {}): ResolvedModelDeployment =>
  penguinsModelDeployment(
    { promotion: { shadow: { enabled: true } }, ...spec },
    { policy: { verdict: "Violated", consecutiveViolations: 2, lastTriggerTime: iso(T0) }, ...status },
  );

const obs = (now: Date, more: Partial<LoopObservation> = {}): LoopObservation => ({ now, rollout: { ready: true, message: "" }, ...more });

const report: CandidateReport = {
  version: "r1-abc",
  metric: "accuracy",
  higherIsBetter: true,
  validation: 0.9,
  recent: { rows: 40, candidate: 0.88, serving: 0.52 },
};

const apply = applyStep;

/** Retrains and passes the offline gate: the loop is Shadowing r1-abc at T0 + 30 s. */
function shadowingFrom(m: ResolvedModelDeployment): { m: ResolvedModelDeployment; step: ReturnType<typeof stepLoop> } {
  m = apply(m, stepLoop(m, obs(at(1))));
  const step = stepLoop(m, obs(at(30), { job: { name: "penguins-retrain-1", state: "succeeded", reports: [report] } }));
  return { m: apply(m, step), step };
}

const numbers = (over: Partial<ShadowComparison>): ShadowComparison => ({
  version: "r1-abc",
  since: iso(at(40)),
  updateTime: iso(at(100)),
  mirrored: 1000,
  dropped: 0,
  failed: 0,
  rows: 1000,
  agreement: 0.9,
  labelledPairs: 300,
  metric: "accuracy",
  serving: 0.8,
  shadow: 0.9,
  improvement: 0.1,
  test: "McNemarExact",
  pValue: 0.0001,
  verdict: "Passed",
  message: "1000 of 500 pairs, 300 of 200 labelled; ✓ accuracy 0.9 vs serving 0.8",
  ...over,
});

describe("the Shadowing phase", () => {
  it("a candidate that passed the gate is shadowed first: the step asks for the shadow Deployment and mirroring", () => {
    const { m, step } = shadowingFrom(md());
    expect(m.status?.loop).toMatchObject({ phase: "Shadowing", shadowDeadline: iso(at(30 + HOUR)) });
    expect(m.status?.candidateVersion).toBe("r1-abc");
    expect(m.status?.targetVersion).toBeUndefined();
    expect(step.shadow).toEqual({ version: "r1-abc", replicas: 1, sampleRate: 1 });
    expect(step.events.map((e) => e.reason)).toEqual(["CandidatePassed", "ShadowStarted"]);
    // Mirroring is re-sent at least every 30 s, within the sidecars' 2-minute expiry.
    expect(step.requeueAfterMs).toBeLessThanOrEqual(30_000);
  });

  it("without shadow.enabled the gate promotes directly, as before", () => {
    const { m } = shadowingFrom(md({ promotion: {} }));
    expect(m.status?.loop?.phase).toBe("Promoting");
  });

  it("waits while status.shadow is Pending or about another version, and says how far it is", () => {
    let { m } = shadowingFrom(md());
    m = { ...m, status: { ...m.status, shadow: numbers({ version: "r0-old", verdict: "Passed" }) } };
    let s = stepLoop(m, obs(at(60), { shadow: { readyPods: 1, mirror: "2 of 2 serving pods mirror" } }));
    expect(s.status.loop?.phase).toBe("Shadowing");
    m = {
      ...m,
      status: { ...m.status, shadow: numbers({ verdict: "Pending", labelledPairs: 20, message: "collecting: 300 of 500 pairs, 20 of 200 labelled" }) },
    };
    s = stepLoop(m, obs(at(90), { shadow: { readyPods: 1, mirror: "2 of 2 serving pods mirror" } }));
    expect(s.status.loop?.phase).toBe("Shadowing");
    expect(s.status.loop?.message).toMatch(/collecting: 300 of 500 pairs, 20 of 200 labelled; 1 of 1 shadow pods ready, 2 of 2 serving pods mirror/);
    expect(s.shadow?.version).toBe("r1-abc");
  });

  it("Passed: promoted, with the shadow's numbers in lastRetraining, history and Events; the shadow stops", () => {
    let { m } = shadowingFrom(md());
    m = { ...m, status: { ...m.status, shadow: numbers({}) } };
    const s = stepLoop(m, obs(at(200)));
    expect(s.status.loop?.phase).toBe("Promoting");
    expect(s.status.targetVersion).toBe("r1-abc");
    expect(s.status.lastRetraining?.shadow).toMatchObject({ verdict: "Passed", labelledPairs: 300, pValue: 0.0001, serving: 0.8, shadow: 0.9 });
    expect(s.status.history?.map((h) => h.event)).toEqual(["Retrained", "ShadowPassed"]);
    expect(s.events.find((e) => e.reason === "ShadowPassed")?.note).toMatch(/accuracy 0.9 vs serving 0.8/);
    expect(s.shadow).toBeUndefined();
    expect(s.status.loop?.shadowDeadline).toBeUndefined();
  });

  it("Rejected: a failed attempt (back-off, counts toward halting), the serving version stays", () => {
    let { m } = shadowingFrom(md());
    m = { ...m, status: { ...m.status, shadow: numbers({ verdict: "Rejected", failedRule: "SignificantlyWorse", shadow: 0.7, improvement: -0.1 }) } };
    const s = stepLoop(m, obs(at(200)));
    expect(s.status.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 1, failedAttempts: 1 });
    expect(s.status.targetVersion).toBeUndefined();
    expect(s.status.candidateVersion).toBeUndefined();
    expect(s.status.history?.at(-1)).toMatchObject({ event: "ShadowRejected", version: "r1-abc", reason: "SignificantlyWorse", metric: 0.7 });
    expect(s.events.find((e) => e.reason === "ShadowRejected")?.type).toBe("Warning");
    expect(s.shadow).toBeUndefined();
  });

  it("Inconclusive: too few pairs by maxDuration extends once, then rejects without counting a failure", () => {
    let { m } = shadowingFrom(md());
    const pending = numbers({ verdict: "Pending", rows: 120, labelledPairs: 10, message: "collecting: 120 of 500 pairs, 10 of 200 labelled" });
    m = { ...m, status: { ...m.status, shadow: pending } };
    let s = stepLoop(m, obs(at(30 + HOUR)));
    expect(s.status.loop).toMatchObject({ phase: "Shadowing", shadowExtended: true, shadowDeadline: iso(at(30 + 2 * HOUR)) });
    expect(s.events.map((e) => e.reason)).toEqual(["ShadowExtended"]);
    expect(s.shadow?.version).toBe("r1-abc");
    m = apply(m, s);
    s = stepLoop(m, obs(at(30 + 2 * HOUR - 1)));
    expect(s.status.loop?.phase).toBe("Shadowing");
    s = stepLoop(m, obs(at(30 + 2 * HOUR)));
    expect(s.status.loop?.phase).toBe("Stable");
    expect(s.status.loop?.message).toMatch(/^Inconclusive: candidate r1-abc not promoted/);
    // Not a failure: no failure counted, no doubled back-off; the plain cooldown starts.
    expect(s.status.loop?.consecutiveFailures ?? 0).toBe(0);
    expect(s.status.loop?.failedAttempts ?? 0).toBe(0);
    expect(s.status.loop?.backoffUntil).toBe(iso(at(30 + 2 * HOUR + 60)));
    expect(s.status.lastRetraining?.shadow).toMatchObject({ verdict: "Rejected", failedRule: "Inconclusive", rows: 120, labelledPairs: 10 });
    expect(s.status.history?.at(-1)).toMatchObject({ event: "ShadowRejected", reason: "Inconclusive" });
    expect(s.shadow).toBeUndefined();
  });

  it("pausing the loop stops the shadow: no shadow in the step, the candidate dropped, the loop Halted as Paused", () => {
    let { m } = shadowingFrom(md());
    m = { ...m, spec: { ...m.spec, policy: { ...m.spec.policy, paused: true } } };
    const s = stepLoop(m, obs(at(60)));
    expect(s.shadow).toBeUndefined();
    expect(s.status.loop?.phase).toBe("Halted");
    expect(s.status.candidateVersion).toBeUndefined();
    expect(findCondition(s.status.conditions, "LoopHalted")).toMatchObject({ status: "True", reason: "Paused" });
    expect(s.events.map((e) => e.reason)).toContain("ShadowStopped");
    expect(s.status.loop?.consecutiveFailures ?? 0).toBe(0);
  });

  it("manual mode: the shadow runs first, then AwaitingApproval with the shadow's numbers", () => {
    let { m } = shadowingFrom(md({ promotion: { mode: "manual", shadow: { enabled: true } } }));
    expect(m.status?.loop?.phase).toBe("Shadowing");
    m = { ...m, status: { ...m.status, shadow: numbers({}) } };
    const s = stepLoop(m, obs(at(200)));
    expect(s.status.loop?.phase).toBe("AwaitingApproval");
    expect(s.status.loop?.message).toMatch(
      /passed the gate and the shadow \(1000 of 500 pairs, 300 of 200 labelled; ✓ accuracy 0.9 vs serving 0.8\); set spec.promotion.approvedVersion/,
    );
    expect(findCondition(s.status.conditions, "CandidateReady")).toMatchObject({ status: "True", reason: "AwaitingApproval" });
    expect(s.shadow).toBeUndefined();
  });
});
