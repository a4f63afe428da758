// The operator's per-ModelDeployment metrics: what a dashboard reads of each ModelDeployment's state, and the
// loop's transitions counted once per status write that made them.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { ModelDeploymentStatus, ResolvedModelDeployment } from "../../../src/api/index.js";
import type { KubeObject } from "../../../src/kube/client.js";
import { loopTransition, ModelDeploymentMetrics } from "../../../src/operator/modeldeployment-metrics.js";
import { weatherModelDeployment } from "./fixtures.js";

type MD = ResolvedModelDeployment & KubeObject;
const NOW = new Date("2026-12-05T12:00:00Z");

function md(name: string, status: ModelDeploymentStatus, policy: Partial<ResolvedModelDeployment["spec"]["policy"]> = {}): MD {
  const base = weatherModelDeployment(2, status) as MD;
  return { ...base, metadata: { ...base.metadata, name }, spec: { ...base.spec, policy: { ...base.spec.policy, ...policy } } };
}

async function samples(registry: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []) as { labels: Record<string, string | number>; value: number }[];
}

const started: ModelDeploymentStatus = {
  loop: { phase: "Training", attempt: 1, since: "2026-12-05T11:00:00Z", message: "", recentStarts: ["2026-12-05T11:00:00Z"] },
  lastRetraining: { jobName: "weather-retrain-1", attempt: 1, phase: "Running", startTime: "2026-12-05T11:00:00Z" },
  history: [{ time: "2026-12-05T10:00:00Z", event: "Served", version: "v1" }],
};

describe("loop transitions", () => {
  it("counts a Job started when the attempt goes up, once: writing the same status again counts nothing", () => {
    const stable: ModelDeploymentStatus = { loop: { phase: "Stable", attempt: 0, since: "2026-12-05T10:00:00Z", message: "" }, history: started.history };
    expect(loopTransition(stable, started)).toMatchObject({ jobsStarted: 1, jobsFinished: [], promotions: 0 });
    expect(loopTransition(started, started)).toEqual({ jobsStarted: 0, jobsFinished: [], promotions: 0, rejections: 0, rollbacks: 0 });
  });

  it("a failed Job: one failure with how long it ran and the GPU-seconds it held", () => {
    const failed: ModelDeploymentStatus = {
      ...started,
      loop: { ...started.loop!, phase: "Stable" },
      lastRetraining: { ...started.lastRetraining!, phase: "Failed", completionTime: "2026-12-05T11:20:00Z", gpuSeconds: 2400 },
      history: [...started.history!, { time: "2026-12-05T11:20:00Z", event: "RetrainingFailed", version: "v1", reason: "BackoffLimitExceeded" }],
    };
    expect(loopTransition(started, failed).jobsFinished).toEqual([{ result: "failed", seconds: 1200, gpuSeconds: 2400 }]);
  });

  it("a succeeded Job whose candidate the gate rejects: a finished Job and a rejection", () => {
    const rejected: ModelDeploymentStatus = {
      ...started,
      lastRetraining: { ...started.lastRetraining!, phase: "Succeeded", completionTime: "2026-12-05T11:05:00Z" },
      history: [
        ...started.history!,
        { time: "2026-12-05T11:05:00Z", event: "Retrained", version: "v2" },
        { time: "2026-12-05T11:05:00Z", event: "Rejected", version: "v2", reason: "MinImprovement" },
      ],
    };
    expect(loopTransition(started, rejected)).toEqual({
      jobsStarted: 0,
      jobsFinished: [{ result: "succeeded", seconds: 300, gpuSeconds: 0 }],
      promotions: 0,
      rejections: 1,
      rollbacks: 0,
    });
  });

  it("a promotion and a rollback are counted from the history entries the write added, even when the history is full", () => {
    const full = Array.from({ length: 5 }, (_, i) => ({ time: `2026-12-05T0${i}:00:00Z`, event: "Served" as const, version: `v${i}` }));
    const before: ModelDeploymentStatus = { history: full };
    const promoted = { history: [...full.slice(1), { time: "2026-12-05T11:00:00Z", event: "Promoted" as const, version: "v5" }] };
    const rolledBack = { history: [...promoted.history.slice(1), { time: "2026-12-05T11:30:00Z", event: "RolledBack" as const, version: "v4" }] };
    expect(loopTransition(before, promoted)).toMatchObject({ promotions: 1, rollbacks: 0 });
    expect(loopTransition(promoted, rolledBack)).toMatchObject({ promotions: 0, rollbacks: 1 });
  });
});

describe("ModelDeployment metrics", () => {
  it("shows each ModelDeployment's loop phase one-hot, its serving version, last window, thresholds and retraining budget", async () => {
    const registry = new Registry();
    const metrics = new ModelDeploymentMetrics(registry, () => NOW);
    const halted = md(
      "weather",
      {
        servingVersion: "v3",
        loop: {
          phase: "Halted",
          attempt: 3,
          since: "2026-12-05T11:00:00Z",
          message: "",
          // Two of the three starts fall in the last 24h.
          recentStarts: ["2026-12-04T10:00:00Z", "2026-12-05T08:00:00Z", "2026-12-05T11:00:00Z"],
        },
        conditions: [
          { type: "Degraded", status: "True", reason: "AccuracyBelowThreshold", message: "", lastTransitionTime: "2026-12-05T11:00:00Z" },
          // Written by someone else: neither becomes an unbounded label value.
          { type: "Retraining", status: "False", reason: "SomebodyWroteThis", message: "", lastTransitionTime: "2026-12-05T11:00:00Z" },
          { type: "my.example.com/Custom", status: "True", reason: "Whatever", message: "", lastTransitionTime: "2026-12-05T11:00:00Z" },
        ],
        lastMetrics: { windowEnd: "2026-12-05T11:59:00Z", samples: 500, labelledSamples: 40, metric: "rmse", accuracy: 2.5, driftShare: 0.25 },
        // One window re-judged when its labels came late.
        recentWindows: [
          { windowEnd: "2026-12-05T11:58:00Z", samples: 500, labelledSamples: 480, rejudgedTime: "2026-12-05T11:59:30Z" },
          { windowEnd: "2026-12-05T11:59:00Z", samples: 500, labelledSamples: 40 },
        ],
      },
      { maxError: 2, maxRetrainings: { count: 3, period: "24h" } },
    );
    metrics.readFrom(() => [halted]);
    const me = { namespace: "ml", modeldeployment: "weather" };
    const phases = await samples(registry, "ballast_modeldeployment_loop_phase");
    expect(phases).toHaveLength(8);
    expect(phases.filter((s) => s.value === 1)).toEqual([{ labels: { ...me, phase: "Halted" }, value: 1 }]);
    expect(await samples(registry, "ballast_modeldeployment_serving_version_info")).toEqual([{ labels: { ...me, version: "v3" }, value: 1 }]);
    // One-hot over the status, so an alert's {status="True"} selects a series that exists while the condition is False.
    expect(await samples(registry, "ballast_modeldeployment_condition")).toEqual([
      { labels: { ...me, type: "Degraded", status: "True", reason: "AccuracyBelowThreshold" }, value: 1 },
      { labels: { ...me, type: "Degraded", status: "False", reason: "AccuracyBelowThreshold" }, value: 0 },
      { labels: { ...me, type: "Degraded", status: "Unknown", reason: "AccuracyBelowThreshold" }, value: 0 },
      { labels: { ...me, type: "Retraining", status: "True", reason: "Other" }, value: 0 },
      { labels: { ...me, type: "Retraining", status: "False", reason: "Other" }, value: 1 },
      { labels: { ...me, type: "Retraining", status: "Unknown", reason: "Other" }, value: 0 },
    ]);
    expect(await samples(registry, "ballast_modeldeployment_window_quality")).toEqual([{ labels: { ...me, metric: "rmse" }, value: 2.5 }]);
    expect(await samples(registry, "ballast_modeldeployment_window_drift_share_ratio")).toEqual([{ labels: me, value: 0.25 }]);
    expect(await samples(registry, "ballast_modeldeployment_windows_rejudged")).toEqual([{ labels: me, value: 1 }]);
    expect(await samples(registry, "ballast_modeldeployment_window_samples")).toEqual([
      { labels: { ...me, kind: "rows" }, value: 500 },
      { labels: { ...me, kind: "labelled" }, value: 40 },
    ]);
    const thresholds = Object.fromEntries((await samples(registry, "ballast_modeldeployment_policy_threshold")).map((s) => [s.labels.rule, s.value]));
    expect(thresholds).toEqual({ maxError: 2, maxDriftShare: 0.5, minRobustness: 0.99, minLabelledSamples: 50 });
    expect(await samples(registry, "ballast_modeldeployment_retraining_jobs_in_period")).toEqual([{ labels: me, value: 2 }]);
    expect(await samples(registry, "ballast_modeldeployment_retraining_jobs_allowed_per_period")).toEqual([{ labels: me, value: 3 }]);
    // No GPU-seconds budget in the spec: nothing spent, and no "allowed" series to compare against.
    expect(await samples(registry, "ballast_modeldeployment_retraining_gpu_seconds_in_period")).toEqual([{ labels: me, value: 0 }]);
    expect(await samples(registry, "ballast_modeldeployment_retraining_gpu_seconds_allowed_per_period")).toEqual([]);
  });

  it("shows GPU-seconds spent in the period, the running Job's so far included, against the budget", async () => {
    const registry = new Registry();
    const metrics = new ModelDeploymentMetrics(registry, () => NOW);
    const base = md(
      "weather",
      {
        // One finished Job in the period (1500 GPU-s), one outside it, and a Job running for 10 minutes.
        loop: {
          phase: "Training",
          attempt: 3,
          since: "2026-12-05T11:50:00Z",
          message: "",
          recentGpuSeconds: [
            { start: "2026-12-04T09:00:00Z", gpuSeconds: 9000 },
            { start: "2026-12-05T08:00:00Z", gpuSeconds: 1500 },
          ],
        },
        lastRetraining: { jobName: "weather-retrain-3", attempt: 3, phase: "Running", startTime: "2026-12-05T11:50:00Z" },
      },
      { maxRetrainings: { count: 3, period: "24h", gpuSeconds: 7200 } },
    );
    // Two GPUs per pod, two pods at once.
    const gpuJob = {
      ...base,
      spec: {
        ...base.spec,
        retraining: {
          ...base.spec.retraining,
          resources: { limits: { "nvidia.com/gpu": "2" } },
          search: { ...base.spec.retraining.search, parallelism: 2, maxTrials: 4 },
        },
      },
    };
    metrics.readFrom(() => [gpuJob]);
    const me = { namespace: "ml", modeldeployment: "weather" };
    expect(await samples(registry, "ballast_modeldeployment_retraining_gpu_seconds_in_period")).toEqual([{ labels: me, value: 1500 + 600 * 4 }]);
    expect(await samples(registry, "ballast_modeldeployment_retraining_gpu_seconds_allowed_per_period")).toEqual([{ labels: me, value: 7200 }]);
    // When the Job finishes, its GPU-seconds are counted once.
    const running = gpuJob.status!;
    const finished: ModelDeploymentStatus = {
      ...running,
      loop: { ...running.loop!, phase: "Stable" },
      lastRetraining: { ...running.lastRetraining!, phase: "Failed", completionTime: "2026-12-05T12:00:00Z", gpuSeconds: 2400 },
      history: [{ time: "2026-12-05T12:00:00Z", event: "RetrainingFailed", version: "v1", reason: "DeadlineExceeded" }],
    };
    metrics.loopStepped(gpuJob, running, finished);
    metrics.loopStepped(gpuJob, finished, finished);
    expect(await samples(registry, "ballast_retraining_gpu_seconds_total")).toEqual([{ labels: me, value: 2400 }]);
  });

  it("counts transitions per ModelDeployment and drops a deleted one's series at the next scrape", async () => {
    const registry = new Registry();
    const metrics = new ModelDeploymentMetrics(registry, () => NOW);
    const a = md("a", started);
    const b = md("b", started);
    let live = [a, b];
    metrics.readFrom(() => live);
    metrics.loopStepped(a, { history: [] }, { history: [{ time: "2026-12-05T11:00:00Z", event: "Promoted", version: "v2" }] });
    metrics.loopStepped(b, { history: [] }, { history: [{ time: "2026-12-05T11:00:00Z", event: "RolledBack", version: "v1" }] });
    metrics.scraped(a, 3, 1);
    // Every counter starts at 0 for a ModelDeployment the loop stepped, so increase() sees its first event.
    expect(await samples(registry, "ballast_promotions_total")).toEqual([
      { labels: { namespace: "ml", modeldeployment: "a" }, value: 1 },
      { labels: { namespace: "ml", modeldeployment: "b" }, value: 0 },
    ]);
    expect(await samples(registry, "ballast_operator_sidecar_scrape_errors_total")).toEqual([
      { labels: { namespace: "ml", modeldeployment: "a" }, value: 1 },
      { labels: { namespace: "ml", modeldeployment: "b" }, value: 0 },
    ]);
    // A histogram too: its buckets exist at 0 before the first Job finishes.
    expect((await samples(registry, "ballast_retraining_job_duration_seconds")).filter((s) => s.labels.le === "+Inf")).toHaveLength(4);
    expect((await samples(registry, "ballast_rollbacks_total")).map((s) => [s.labels.modeldeployment, s.value])).toEqual([
      ["a", 0],
      ["b", 1],
    ]);

    live = [b];
    await registry.metrics(); // the scrape that notices a is gone
    expect(await samples(registry, "ballast_promotions_total")).toEqual([{ labels: { namespace: "ml", modeldeployment: "b" }, value: 0 }]);
    expect(await samples(registry, "ballast_operator_sidecar_scrapes_total")).toEqual([{ labels: { namespace: "ml", modeldeployment: "b" }, value: 0 }]);
    expect((await samples(registry, "ballast_modeldeployment_loop_phase")).every((s) => s.labels.modeldeployment === "b")).toBe(true);
  });
});
