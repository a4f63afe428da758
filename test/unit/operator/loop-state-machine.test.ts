// The loop's state machine, step by step, as a user reads it in status: no cluster, a fixed clock.
import { describe, expect, it } from "vitest";
import {
  findCondition,
  type ModelDeploymentSpec,
  type ModelDeploymentStatus,
  type ResolvedModelDeployment,
  type WindowRecord,
} from "../../../src/api/index.js";
import { parseCandidateReport } from "../../../src/operator/loop/candidate-report.js";
import { bestCandidate, evaluateGate, type CandidateReport } from "../../../src/operator/loop/gate.js";
import { candidateVersionName, desiredRetrainingJob, retrainingJobName } from "../../../src/operator/loop/retraining-job.js";
import { stepLoop, type JobObservation, type LoopObservation } from "../../../src/operator/loop/state-machine.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";
import { applyStep, at, iso, penguinsModelDeployment, T0 } from "./loop-fixtures.js";

const md = penguinsModelDeployment;

const rollout = { ready: true, message: "1 of 1 serving pods ready" };
const obs = (now: Date, more: Partial<LoopObservation> = {}): LoopObservation => ({ now, rollout, ...more });

function report(over: Partial<CandidateReport> = {}): CandidateReport {
  return {
    version: "r1-abc",
    metric: "accuracy",
    higherIsBetter: true,
    validation: 0.9,
    recent: { rows: 40, candidate: 0.88, serving: 0.52 },
    original: { rows: 50, candidate: 0.84, serving: 0.86 },
    latencyMsPerRow: { candidate: 0.02, serving: 0.02 },
    ...over,
  };
}

const violated = (trigger: Date): ModelDeploymentStatus["policy"] => ({ verdict: "Violated", consecutiveViolations: 2, lastTriggerTime: iso(trigger) });

const apply = applyStep;

const succeeded = (r: CandidateReport[]): JobObservation => ({ name: "penguins-retrain-1", state: "succeeded", reports: r });

const window = (end: Date, version: string, accuracy: number, labelledSamples = 60): WindowRecord => ({
  windowEnd: end.toISOString(),
  version,
  samples: 60,
  labelledSamples,
  accuracy,
  verdict: accuracy >= 0.75 ? "Healthy" : "Violated",
});
/** The monitoring controller judged these windows (status.recentWindows). */
const withWindows = (m: ResolvedModelDeployment, ...w: WindowRecord[]): ResolvedModelDeployment => ({
  ...m,
  status: { ...m.status, recentWindows: [...(m.status?.recentWindows ?? []), ...w] },
});

describe("the loop state machine", () => {
  it("starts Stable, and a fresh policy trigger starts attempt 1 on the serving version", () => {
    const first = stepLoop(md({}, { policy: { verdict: "Healthy", consecutiveViolations: 0 } }), obs(T0));
    expect(first.status.loop?.phase).toBe("Stable");
    expect(first.createJob).toBeUndefined();
    const m = md({}, { policy: violated(T0) });
    const step = stepLoop(m, obs(at(5)));
    expect(step.status.loop).toMatchObject({ phase: "Training", attempt: 1, lastHandledTrigger: iso(T0) });
    expect(step.createJob).toEqual({ attempt: 1, fromVersion: "v1", feedbackSince: iso(T0) });
    expect(findCondition(step.status.conditions, "Retraining")?.status).toBe("True");
    expect(step.events.map((e) => e.reason)).toContain("RetrainingStarted");
    // The same trigger never starts a second Job.
    const again = stepLoop(apply(m, step, { loop: { ...step.status.loop!, phase: "Stable" } }), obs(at(6)));
    expect(again.createJob).toBeUndefined();
  });

  it("a candidate that passes the gate is promoted, observed, and final", () => {
    let m = md({}, { policy: violated(T0), lastMetrics: { windowEnd: iso(T0), samples: 50, accuracy: 0.5, labelledSamples: 50, verdict: "Violated" } });
    let s = stepLoop(m, obs(at(1)));
    m = apply(m, s);
    s = stepLoop(m, obs(at(30), { job: succeeded([report()]) }));
    expect(s.status.loop?.phase).toBe("Promoting");
    expect(s.status).toMatchObject({ targetVersion: "r1-abc", previousVersion: "v1", candidateVersion: "r1-abc" });
    expect(s.status.lastRetraining?.gate).toMatchObject({ passed: true, recent: { rows: 40, candidate: 0.88, serving: 0.52 } });
    m = apply(m, s);
    // Not rolled out yet: the Deployment still pins v1.
    s = stepLoop(m, obs(at(31), { rollout: { pinnedVersion: "v1", ready: true, message: "" } }));
    expect(s.status.loop?.phase).toBe("Promoting");
    m = apply(m, s, { servingVersion: "r1-abc" });
    s = stepLoop(m, obs(at(40), { rollout: { pinnedVersion: "r1-abc", ready: true, message: "" } }));
    expect(s.status.loop?.phase).toBe("Observing");
    expect(s.status.history?.map((h) => h.event)).toEqual(["Retrained", "Promoted"]);
    m = apply(m, s);
    // A window with too few labels does not count; then the three windows observation needs, judged between two steps, all count.
    m = withWindows(m, window(at(50), "r1-abc", 0.9, 5));
    m = apply(m, stepLoop(m, obs(at(51))));
    expect(m.status?.loop).toMatchObject({ phase: "Observing", observedWindows: 0 });
    m = withWindows(m, window(at(60), "r1-abc", 0.86), window(at(61), "r1-abc", 0.87), window(at(62), "r1-abc", 0.88));
    s = stepLoop(m, obs(at(63)));
    m = apply(m, s);
    expect(m.status?.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 0, observedWindows: 3, baselineMetric: 0.88 });
    expect(m.status?.targetVersion).toBe("r1-abc");
    expect(s.events.map((e) => e.reason)).toContain("ObservationPassed");
  });

  it("a candidate that does not beat the serving version is rejected and the serving version stays", () => {
    let m = md({}, { policy: violated(T0) });
    m = apply(m, stepLoop(m, obs(at(1))));
    const s = stepLoop(m, obs(at(30), { job: succeeded([report({ recent: { rows: 40, candidate: 0.525, serving: 0.52 } })]) }));
    expect(s.status.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 1, failedAttempts: 1 });
    expect(s.status.targetVersion).toBeUndefined();
    expect(s.status.lastRetraining?.gate).toMatchObject({ passed: false, failedRule: "MinImprovement" });
    expect(s.status.history?.at(-1)).toMatchObject({ event: "Rejected", version: "r1-abc", reason: "MinImprovement" });
    // Cooldown 1m doubled after one failure.
    expect(s.status.loop?.backoffUntil).toBe(iso(at(30 + 120)));
    // A trigger within the back-off is refused; one in the very second it ends (the clock has milliseconds) is not.
    const next = apply(m, s);
    const during = stepLoop({ ...next, status: { ...next.status, policy: violated(at(100)) } }, obs(at(100)));
    expect(findCondition(during.status.conditions, "Retraining")?.reason).toBe("CooldownActive");
    const endsNow = stepLoop({ ...next, status: { ...next.status, policy: violated(at(150)) } }, obs(new Date(at(150).getTime() + 500)));
    expect(endsNow.createJob?.attempt).toBe(2);
  });

  it("the gate names forgetting and latency with both numbers", () => {
    const m = md();
    const forgets = evaluateGate(report({ original: { rows: 50, candidate: 0.7, serving: 0.86 } }), m);
    expect(forgets).toMatchObject({ passed: false, failedRule: "MaxForgetting" });
    expect(forgets.message).toContain("0.7 vs serving 0.86");
    const slow = evaluateGate(report({ latencyMsPerRow: { candidate: 0.05, serving: 0.02 } }), m);
    expect(slow).toMatchObject({ passed: false, failedRule: "MaxLatencyRatio", latencyRatio: 2.5 });
    const rmse = evaluateGate(
      report({ metric: "rmse", higherIsBetter: false, recent: { rows: 30, candidate: 2.0, serving: 3.0 }, original: undefined }),
      md({ monitoring: { features: [{ name: "x", type: "numeric" }], labelField: "y", task: "regression" }, policy: { maxError: 3, cooldown: "1m" } }),
    );
    expect(rmse.passed).toBe(true);
    expect(bestCandidate([report({ version: "a", validation: 0.7 }), report({ version: "b", validation: 0.9 })])?.version).toBe("b");
  });

  it("a failed or deleted Job is a failed attempt; three in a row halt the loop until a person acts", () => {
    let m = md({}, { policy: violated(T0) });
    let now = 1;
    for (let i = 1; i <= 3; i++) {
      m = { ...m, status: { ...m.status, policy: violated(at(now)), loop: m.status?.loop ? { ...m.status.loop, backoffUntil: undefined } : undefined } };
      m = apply(m, stepLoop(m, obs(at(now + 1))));
      expect(m.status?.loop?.phase).toBe("Training");
      const job: JobObservation =
        i === 2
          ? { name: retrainingJobName("penguins", i), state: "absent" }
          : { name: retrainingJobName("penguins", i), state: "failed", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" };
      m = apply(m, stepLoop(m, obs(at(now + 10), { job })));
      expect(m.status?.lastRetraining).toMatchObject({ phase: "Failed", reason: i === 2 ? "JobDeleted" : "BackoffLimitExceeded" });
      now += 1000;
    }
    expect(m.status?.loop?.phase).toBe("Halted");
    expect(findCondition(m.status?.conditions, "LoopHalted")).toMatchObject({ status: "True", reason: "TooManyFailures" });
    // A new trigger does nothing while halted.
    m = { ...m, status: { ...m.status, policy: violated(at(now)) } };
    expect(stepLoop(m, obs(at(now + 1))).createJob).toBeUndefined();
    // The resume annotation starts it again, with a clean slate and without acting on a stale trigger.
    const resumed = stepLoop({ ...m, metadata: { ...m.metadata, annotations: { "ballast.dev/resume": "1" } } }, obs(at(now + 2)));
    expect(resumed.status.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 0, resumedBy: "1" });
    expect(resumed.createJob).toBeUndefined();
  });

  it("the budget and paused stop new Jobs, with a reason", () => {
    const starts = [iso(at(-100)), iso(at(-50)), iso(at(-10))];
    const m = md({}, { policy: violated(T0), loop: { phase: "Stable", attempt: 3, since: iso(T0), message: "", recentStarts: starts } });
    const s = stepLoop(m, obs(at(1)));
    expect(s.createJob).toBeUndefined();
    expect(findCondition(s.status.conditions, "Retraining")).toMatchObject({ status: "False", reason: "BudgetExhausted" });
    expect(s.events[0]).toMatchObject({ type: "Warning", reason: "BudgetExhausted" });
    // A day later the slots are free again.
    expect(stepLoop({ ...m, status: { ...m.status, policy: violated(at(90_000)) } }, obs(at(90_001))).createJob).toBeDefined();
    const paused = stepLoop(md({ policy: { paused: true, minAccuracy: 0.75, cooldown: "1m" } }, { policy: violated(T0) }), obs(at(1)));
    expect(paused.createJob).toBeUndefined();
    expect(paused.status.loop?.phase).toBe("Halted");
    expect(findCondition(paused.status.conditions, "LoopHalted")?.reason).toBe("Paused");
  });

  it("manual mode waits for approvedVersion; an approved version that regresses live is rolled back", () => {
    const manual = { promotion: { mode: "manual" as const } };
    let m = md(manual, { policy: violated(T0), lastMetrics: { windowEnd: iso(T0), samples: 60, labelledSamples: 60, accuracy: 0.8, verdict: "Healthy" } });
    m = apply(m, stepLoop(m, obs(at(1))));
    m = apply(m, stepLoop(m, obs(at(30), { job: succeeded([report()]) })));
    expect(m.status?.loop?.phase).toBe("AwaitingApproval");
    expect(findCondition(m.status?.conditions, "CandidateReady")?.status).toBe("True");
    expect(stepLoop(m, obs(at(40))).status.loop?.phase).toBe("AwaitingApproval");
    // A person approves another version (say, one trained outside Ballast).
    m = { ...m, spec: { ...m.spec, promotion: { ...m.spec.promotion, approvedVersion: "bad" } } };
    m = apply(m, stepLoop(m, obs(at(50))));
    expect(m.status).toMatchObject({ targetVersion: "bad", previousVersion: "v1", loop: { phase: "Promoting", approvalHandled: "bad" } });
    m = apply(
      m,
      stepLoop({ ...m, status: { ...m.status, servingVersion: "bad" } }, obs(at(60), { rollout: { pinnedVersion: "bad", ready: true, message: "" } })),
      { servingVersion: "bad" },
    );
    expect(m.status?.loop?.phase).toBe("Observing");
    m = withWindows(m, window(at(70), "bad", 0.41));
    m = apply(m, stepLoop(m, obs(at(71))));
    expect(m.status).toMatchObject({ targetVersion: "v1", loop: { phase: "RollingBack" } });
    m = apply(
      m,
      stepLoop({ ...m, status: { ...m.status, servingVersion: "v1" } }, obs(at(80), { rollout: { pinnedVersion: "v1", ready: true, message: "" } })),
      { servingVersion: "v1" },
    );
    expect(m.status?.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 1 });
    expect(m.status?.history?.at(-1)).toMatchObject({ event: "RolledBack", version: "v1", previousVersion: "bad" });
    // The approval is not carried out twice.
    expect(stepLoop(m, obs(at(90))).status.loop?.phase).toBe("Stable");
  });

  it("a promotion whose pods never become Ready rolls back at the deadline", () => {
    let m = md({}, { policy: violated(T0) });
    m = apply(m, stepLoop(m, obs(at(1))));
    m = apply(m, stepLoop(m, obs(at(30), { job: succeeded([report()]) })));
    const stuck = { pinnedVersion: "r1-abc", ready: false, message: "0 of 1 serving pods ready" };
    expect(stepLoop(m, obs(at(300), { rollout: stuck })).status.loop?.phase).toBe("Promoting");
    const s = stepLoop(m, obs(at(30 + 601), { rollout: stuck }));
    expect(s.status).toMatchObject({ targetVersion: "v1", loop: { phase: "RollingBack" } });
    expect(s.events.at(-1)).toMatchObject({ type: "Warning", reason: "RolloutTimedOut" });
  });

  it("a Job created before an operator restart is adopted, not duplicated", () => {
    const m = md({}, { policy: violated(T0), loop: { phase: "Stable", attempt: 0, since: iso(T0), message: "" } });
    const s = stepLoop(m, obs(at(1), { job: { name: "penguins-retrain-1", state: "running" } }));
    expect(s.createJob).toBeUndefined();
    expect(s.status.loop).toMatchObject({ phase: "Training", attempt: 1 });
  });
});

describe("the retraining Job and the pinned serving version", () => {
  it("runs ballast train on the GPU node's terms, Indexed, with a deterministic name and candidate", () => {
    const m = md({
      retraining: {
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        nodeSelector: { "ballast.dev/accelerator": "nvidia-gpu" },
        resources: { limits: { "nvidia.com/gpu": "1" } },
        search: { maxTrials: 4, parallelism: 2 },
        data: { sources: [{ uri: "pvc://models/data/train.csv" }] },
      } as ModelDeploymentSpec["retraining"],
    });
    const job = desiredRetrainingJob(m, { attempt: 2, fromVersion: "v1", feedbackSince: iso(T0), defaultImage: "img:1" });
    expect(job.metadata).toMatchObject({ name: "penguins-retrain-2", namespace: "ml" });
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "ModelDeployment", name: "penguins", controller: true });
    expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: 2, parallelism: 2, backoffLimit: 1 });
    const pod = job.spec!.template.spec!;
    expect(pod).toMatchObject({ restartPolicy: "Never", nodeSelector: { "ballast.dev/accelerator": "nvidia-gpu" }, automountServiceAccountToken: false });
    const c = pod.containers[0]!;
    expect(c).toMatchObject({
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "FallbackToLogsOnError",
      resources: { limits: { "nvidia.com/gpu": "1" } },
    });
    const flag = (f: string) => c.args![c.args!.indexOf(f) + 1];
    expect(flag("--from-version")).toBe("v1");
    expect(flag("--version")).toBe(candidateVersionName(m, 2));
    expect(flag("--feedback")).toBe("pvc://models/store/penguin-sex/_log");
    expect(flag("--feedback-since")).toBe(iso(T0));
    expect(flag("--data")).toBe("pvc://models/data/train.csv");
    expect(flag("--trial-shards")).toBe("2");
    expect(c.args).toContain("--candidate");
    expect(c.volumeMounts?.find((v) => v.name === "model-store")?.readOnly).toBe(false);
    expect(candidateVersionName(m, 2)).toMatch(/^r2-[0-9a-f]{6}$/);
  });

  it("serving pods follow status.targetVersion unless spec.model.version pins one", () => {
    const args = (m: ResolvedModelDeployment) => desiredServingObjects(m, { defaultImage: "img" }).deployment.spec!.template.spec!.containers[0]!.args!;
    expect(args(md())).not.toContain("--version");
    expect(args(md({}, { targetVersion: "r1-abc" }))).toContain("r1-abc");
    const pinned = md({ model: { name: "penguin-sex", storageUri: "pvc://models/store", version: "v1" } }, { targetVersion: "r1-abc" });
    expect(args(pinned)[args(pinned).indexOf("--version") + 1]).toBe("v1");
  });

  it("reads a termination message, and turns anything else into an error with its text", () => {
    const message = {
      format: "ballast.dev/train-result/v1",
      version: "r1",
      parentVersion: "v1",
      model: "penguin-sex",
      metric: "accuracy",
      higherIsBetter: true,
      backend: "wasm",
      recent: { rows: 10, candidate: 0.9, serving: 0.5 },
      original: { rows: 40, candidate: 0.8, serving: 0.82 },
      latencyMsPerRow: { candidate: 0.01, serving: 0.01 },
      validation: 0.8,
      trainRows: 200,
      feedbackRows: 50,
      trials: [{ name: "fine-tune", validation: 0.8 }],
    };
    const ok = parseCandidateReport(JSON.stringify(message));
    expect(ok).toMatchObject({ report: { version: "r1", recent: { candidate: 0.9 } } });
    expect(parseCandidateReport(JSON.stringify({ format: "ballast.dev/train-result/v1", error: "only 3 labelled rows" }))).toEqual({
      error: "only 3 labelled rows",
    });
    expect(parseCandidateReport("Error: out of memory\n    at train")).toMatchObject({ error: expect.stringContaining("out of memory") });
    expect(parseCandidateReport(JSON.stringify({ ...message, version: 3 }))).toMatchObject({ error: expect.stringContaining("/version") });
  });
});
