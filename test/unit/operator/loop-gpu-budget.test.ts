// The GPU-seconds budget (spec.policy.maxRetrainings.gpuSeconds) as a user meets it: a Job capped at what the
// budget has left, its GPU-seconds recorded when it finishes, no Job started once the budget is spent, and Jobs
// without GPUs not limited by it.
import { describe, expect, it } from "vitest";
import { findCondition, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { desiredRetrainingJob, retrainingGpus } from "../../../src/operator/loop/retraining-job.js";
import { stepLoop, type LoopObservation } from "../../../src/operator/loop/state-machine.js";
import { applyStep, at, iso, penguinsModelDeployment, T0 } from "./loop-fixtures.js";

const rollout = { ready: true, message: "1 of 1 serving pods ready" };
const obs = (now: Date, more: Partial<LoopObservation> = {}): LoopObservation => ({ now, rollout, ...more });
const violated = (trigger: Date): ModelDeploymentStatus["policy"] => ({ verdict: "Violated", consecutiveViolations: 2, lastTriggerTime: iso(trigger) });

/** Two GPUs per pod, two pods at once: 4 GPUs; 7200 GPU-seconds a day. */
function gpuPenguins(status: ModelDeploymentStatus = {}, over: Partial<ModelDeploymentSpec> = {}): ResolvedModelDeployment {
  return penguinsModelDeployment(
    {
      policy: { minAccuracy: 0.75, cooldown: "1m", maxRetrainings: { count: 10, period: "24h", gpuSeconds: 7200 } },
      retraining: {
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        resources: { limits: { "nvidia.com/gpu": "2", cpu: "4" } },
        search: { maxTrials: 4, parallelism: 2 },
      },
      ...over,
    } as Partial<ModelDeploymentSpec>,
    status,
  );
}

/** Starts a Job at `start` and lets it fail after `seconds`. */
function failAfter(m: ResolvedModelDeployment, start: number, seconds: number): ResolvedModelDeployment {
  const started = stepLoop(m, obs(at(start)));
  expect(started.createJob).toBeDefined();
  m = applyStep(m, started);
  const name = m.status!.lastRetraining!.jobName;
  return applyStep(m, stepLoop(m, obs(at(start + seconds), { job: { name, state: "failed", reason: "DeadlineExceeded", message: "too long" } })));
}

describe("the GPU-seconds budget", () => {
  it("counts GPUs per pod times the pods a Job runs at once, of any vendor, from limits or requests", () => {
    expect(retrainingGpus(gpuPenguins())).toBe(4);
    const amd = gpuPenguins({}, {
      retraining: { resources: { requests: { "amd.com/gpu": 1, memory: "8Gi" } }, search: { maxTrials: 3, parallelism: 3 } },
    } as never);
    expect(retrainingGpus(amd)).toBe(3);
    expect(retrainingGpus(gpuPenguins({}, { retraining: { resources: { limits: { cpu: "2" } } } } as never))).toBe(0);
  });

  it("caps the first Job at what the budget allows and says so; its GPU-seconds are recorded when it finishes", () => {
    const m = gpuPenguins({ policy: violated(T0) });
    const step = stepLoop(m, obs(at(1)));
    // 7200 GPU-s over 4 GPUs: 1800 s, below activeDeadlineSeconds' default 3600.
    expect(step.createJob).toMatchObject({ attempt: 1, maxSeconds: 1800 });
    const job = desiredRetrainingJob(m, { ...step.createJob!, defaultImage: "ballast:test" });
    expect(job.spec!.activeDeadlineSeconds).toBe(1800);
    expect(step.events[0]!.note).toContain("GPU budget: 0 of 7200 GPU-seconds spent in the last 24h, so this 4-GPU Job runs at most 1800 s");

    const done = failAfter(m, 1, 500);
    expect(done.status!.lastRetraining).toMatchObject({ phase: "Failed", gpuSeconds: 2000 });
    expect(done.status!.loop!.recentGpuSeconds).toEqual([{ start: iso(at(1)), gpuSeconds: 2000 }]);
  });

  it("a later Job gets what is left; once less than 60 s of it is left, none starts: BudgetExhausted until the period frees it", () => {
    // The first Job held 1000 s × 4 GPUs = 4000 GPU-s: the second may run (7200 − 4000) / 4 = 800 s.
    let m = failAfter(gpuPenguins({ policy: violated(T0) }), 1, 1000);
    m = { ...m, status: { ...m.status, policy: violated(at(3000)) } };
    const second = stepLoop(m, obs(at(3001)));
    expect(second.createJob).toMatchObject({ attempt: 2, maxSeconds: 800 });
    m = failAfter(m, 3001, 790);
    expect(m.status!.loop!.recentGpuSeconds!.map((e) => e.gpuSeconds)).toEqual([4000, 3160]);

    // 40 GPU-s left: 10 s for a 4-GPU Job, under the 60 s minimum.
    m = { ...m, status: { ...m.status, policy: violated(at(9000)) } };
    const refused = stepLoop(m, obs(at(9001)));
    expect(refused.createJob).toBeUndefined();
    const cond = findCondition(refused.status.conditions, "Retraining");
    expect(cond).toMatchObject({ status: "False", reason: "BudgetExhausted" });
    expect(cond!.message).toBe(
      `policy violated, but the GPU budget is spent: 7160 of 7200 GPU-seconds in the last 24h leave a 4-GPU Job less than 60 s (GPU-seconds free up from ${iso(at(86_401))})`,
    );
    expect(refused.events[0]).toMatchObject({ type: "Warning", reason: "BudgetExhausted" });

    // A day after the first Job started, its 4000 GPU-s leave the period.
    m = applyStep(m, refused);
    m = { ...m, status: { ...m.status, policy: violated(at(86_500)) } };
    const later = stepLoop(m, obs(at(86_501)));
    expect(later.createJob).toMatchObject({ attempt: 3, maxSeconds: Math.floor((7200 - 3160) / 4) });
  });

  it("Jobs that request no GPU are not limited by it; without gpuSeconds nothing changes", () => {
    const cpu = gpuPenguins({ policy: violated(T0) }, { retraining: { resources: { limits: { cpu: "2" } } } } as never);
    const step = stepLoop(cpu, obs(at(1)));
    expect(step.createJob).toBeDefined();
    expect(step.createJob!.maxSeconds).toBeUndefined();
    expect(desiredRetrainingJob(cpu, { ...step.createJob!, defaultImage: "ballast:test" }).spec!.activeDeadlineSeconds).toBe(3600);
    expect(failAfter(cpu, 1, 100).status!.lastRetraining!.gpuSeconds).toBe(0);

    const unbudgeted = penguinsModelDeployment({}, { policy: violated(T0) });
    expect(stepLoop(unbudgeted, obs(at(1))).createJob!.maxSeconds).toBeUndefined();
  });
});
