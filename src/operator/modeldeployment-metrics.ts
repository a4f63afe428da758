// Ballast's own operator metrics, per ModelDeployment (labels namespace, modeldeployment). Two kinds:
// - state, read from the informer cache when Prometheus scrapes (kube-state-metrics style): loop phase,
//   conditions, serving version, the last merged window, the policy's thresholds, the retraining budget. Level,
//   not events: right after a restart, and gone with the object.
// - transitions, counted once per loop status write that made them (Jobs started and finished, promotions,
//   rejections, rollbacks) and per sidecar scrape; a deleted ModelDeployment's series are dropped at the next scrape.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { ConditionType, isConditionReason, LOOP_PHASES, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../api/index.js";
import type { KubeObject } from "../kube/client.js";
import { gpuSecondsInPeriod, startsInPeriod } from "./loop/budget.js";

type MD = ResolvedModelDeployment & KubeObject;
type Identity = { namespace: string; modeldeployment: string };
type SetGauge<L extends string> = (md: MD, labels: Partial<Record<L, string>>, value: number) => void;

const KNOWN_CONDITION_TYPES = new Set<string>(Object.values(ConditionType));
const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

const JOB_RESULTS = ["succeeded", "failed"] as const;

/** Retraining Jobs run minutes to hours. */
const JOB_DURATION_BUCKETS = [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400];

/** What one loop status write changed, as counts. */
export interface LoopTransition {
  jobsStarted: number;
  /** Jobs that finished in this write: their result, how long they ran and the GPU-seconds they held. */
  jobsFinished: { result: (typeof JOB_RESULTS)[number]; seconds: number; gpuSeconds: number }[];
  promotions: number;
  rejections: number;
  rollbacks: number;
}

/** The transitions between two loop statuses: new history entries by kind, and attempts started. */
export function loopTransition(before: ModelDeploymentStatus | undefined, after: ModelDeploymentStatus | undefined): LoopTransition {
  const seen = new Set((before?.history ?? []).map((h) => JSON.stringify(h)));
  const added = (after?.history ?? []).filter((h) => !seen.has(JSON.stringify(h)));
  const count = (event: string) => added.filter((h) => h.event === event).length;
  const job = after?.lastRetraining;
  const finished = count("Retrained") + count("RetrainingFailed") > 0 && job?.startTime && job.completionTime;
  return {
    jobsStarted: Math.max(0, (after?.loop?.attempt ?? 0) - (before?.loop?.attempt ?? 0)),
    jobsFinished: finished
      ? [
          {
            result: job.phase === "Failed" ? "failed" : "succeeded",
            seconds: Math.max(0, (Date.parse(job.completionTime!) - Date.parse(job.startTime!)) / 1000),
            gpuSeconds: job.gpuSeconds ?? 0,
          },
        ]
      : [],
    promotions: count("Promoted"),
    rejections: count("Rejected"),
    rollbacks: count("RolledBack"),
  };
}

export class ModelDeploymentMetrics {
  private readonly jobsStarted: Counter<keyof Identity>;
  private readonly jobsFailed: Counter<keyof Identity>;
  private readonly gpuSeconds: Counter<keyof Identity>;
  private readonly jobDuration: Histogram<keyof Identity | "result">;
  private readonly promotions: Counter<keyof Identity>;
  private readonly rejections: Counter<keyof Identity>;
  private readonly rollbacks: Counter<keyof Identity>;
  private readonly scrapes: Counter<keyof Identity>;
  private readonly scrapeErrors: Counter<keyof Identity>;
  /** ModelDeployments some transition series was written for, by key. */
  private readonly counted = new Map<string, Identity>();
  private list: () => MD[] = () => [];

  constructor(registry: Registry, now: () => Date = () => new Date()) {
    const registers = [registry];
    const labelNames = ["namespace", "modeldeployment"] as const;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    this.jobsStarted = counter("ballast_retraining_jobs_started_total", "Retraining Jobs the loop started.");
    this.jobsFailed = counter("ballast_retraining_jobs_failed_total", "Retraining Jobs that failed: Job failed or deleted, or no pod reported a candidate.");
    this.gpuSeconds = counter(
      "ballast_retraining_gpu_seconds_total",
      "GPU-seconds finished retraining Jobs held: run time times the GPUs their pods request (0 for Jobs without GPUs).",
    );
    this.jobDuration = new Histogram({
      name: "ballast_retraining_job_duration_seconds",
      help: "From a retraining Job's creation to the loop seeing it finish, by result (succeeded, failed).",
      labelNames: [...labelNames, "result"],
      buckets: JOB_DURATION_BUCKETS,
      registers,
    });
    this.promotions = counter("ballast_promotions_total", "Candidates promoted: every serving pod runs them.");
    this.rejections = counter("ballast_rejections_total", "Candidates the gate rejected (MinImprovement, MaxForgetting or MaxLatencyRatio).");
    this.rollbacks = counter("ballast_rollbacks_total", "Promotions rolled back to the previous version (worse live, or not rolled out in time).");
    this.scrapes = counter(
      "ballast_operator_sidecar_scrapes_total",
      "Sidecar summaries the operator asked for (one per ready serving pod per scrape interval).",
    );
    this.scrapeErrors = counter(
      "ballast_operator_sidecar_scrape_errors_total",
      "Sidecar summaries that failed: no answer in time, an error status, too large, malformed, or not mergeable with the others.",
    );
    this.registerStateGauges(registers, now);
  }

  /** Where the state gauges read the ModelDeployments from (the informer cache). */
  readFrom(list: () => MD[]): void {
    this.list = list;
  }

  /** Counts what a loop status write changed. */
  loopStepped(md: KubeObject, before: ModelDeploymentStatus | undefined, after: ModelDeploymentStatus | undefined): void {
    const labels = this.identity(md);
    const t = loopTransition(before, after);
    this.jobsStarted.inc(labels, t.jobsStarted);
    this.jobsFailed.inc(labels, t.jobsFinished.filter((j) => j.result === "failed").length);
    for (const job of t.jobsFinished) {
      this.jobDuration.observe({ ...labels, result: job.result }, job.seconds);
      this.gpuSeconds.inc(labels, job.gpuSeconds);
    }
    this.promotions.inc(labels, t.promotions);
    this.rejections.inc(labels, t.rejections);
    this.rollbacks.inc(labels, t.rollbacks);
  }

  /** Counts one scrape of a ModelDeployment's sidecars. */
  scraped(md: KubeObject, pods: number, failed: number): void {
    const labels = this.identity(md);
    this.scrapes.inc(labels, pods);
    this.scrapeErrors.inc(labels, failed);
  }

  private identity(md: KubeObject): Identity {
    const labels = { namespace: md.metadata?.namespace ?? "", modeldeployment: md.metadata?.name ?? "" };
    const key = `${labels.namespace}/${labels.modeldeployment}`;
    if (!this.counted.has(key)) {
      // Every series exists from the first step at 0, so rate(), increase() and the dashboard see it before the first event.
      for (const c of this.counters()) c.inc(labels, 0);
      for (const result of JOB_RESULTS) this.jobDuration.zero({ ...labels, result });
      this.counted.set(key, labels);
    }
    return labels;
  }

  private counters(): Counter<keyof Identity>[] {
    return [this.jobsStarted, this.jobsFailed, this.gpuSeconds, this.promotions, this.rejections, this.rollbacks, this.scrapes, this.scrapeErrors];
  }

  /** Drops the transition series of ModelDeployments that no longer exist. */
  private forgetDeleted(live: ReadonlySet<string>): void {
    for (const [key, labels] of this.counted) {
      if (live.has(key)) continue;
      for (const c of this.counters()) c.remove(labels);
      for (const result of JOB_RESULTS) this.jobDuration.remove({ ...labels, result });
      this.counted.delete(key);
    }
  }

  private registerStateGauges(registers: Registry[], now: () => Date): void {
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (md: MD, set: SetGauge<L>) => void, first = false): void => {
      const g: Gauge<L | keyof Identity> = new Gauge({
        name,
        help,
        labelNames: ["namespace", "modeldeployment", ...labelNames],
        registers,
        collect: () => {
          g.reset();
          const mds = this.list().filter((md) => !md.metadata.deletionTimestamp);
          if (first) this.forgetDeleted(new Set(mds.map((md) => `${md.metadata.namespace}/${md.metadata.name}`)));
          const set: SetGauge<L> = (md, labels, value) =>
            g.set({ namespace: md.metadata.namespace!, modeldeployment: md.metadata.name!, ...labels } as Partial<Record<L | keyof Identity, string>>, value);
          for (const md of mds) fill(md, set);
        },
      });
    };
    gauge(
      "ballast_modeldeployment_loop_phase",
      "The closed loop's phase (status.loop.phase): 1 for the current one, 0 for the others.",
      ["phase"],
      (md, set) => {
        const current = md.status?.loop?.phase ?? "Stable";
        for (const phase of LOOP_PHASES) set(md, { phase }, phase === current ? 1 : 0);
      },
      true,
    );
    gauge(
      "ballast_modeldeployment_condition",
      "Each status condition (Ready, Degraded, DriftDetected, Retraining, LoopHalted, ...) one-hot over its status (True, False, Unknown: 1 for the current one), with its current reason.",
      ["type", "status", "reason"],
      (md, set) => {
        // Status is anyone's with write access: only Ballast's own types and reasons become label values (bounded).
        for (const c of md.status?.conditions ?? []) {
          if (!KNOWN_CONDITION_TYPES.has(c.type)) continue;
          const reason = isConditionReason(c.reason) ? c.reason : "Other";
          // One-hot, as kube-state-metrics does: `{status="True"} == 1` selects series that exist while it is False too.
          for (const status of CONDITION_STATUSES) set(md, { type: c.type, status, reason }, status === c.status ? 1 : 0);
        }
      },
    );
    gauge("ballast_modeldeployment_serving_version_info", "The version the serving pods run (status.servingVersion): value 1.", ["version"], (md, set) => {
      if (md.status?.servingVersion) set(md, { version: md.status.servingVersion }, 1);
    });
    gauge(
      "ballast_modeldeployment_window_quality",
      "The live quality metric (monitoring.accuracyMetric) of the last window, merged over the serving pods: what the policy judges.",
      ["metric"],
      (md, set) => {
        const m = md.status?.lastMetrics;
        if (m?.accuracy !== undefined && m.metric) set(md, { metric: m.metric }, m.accuracy);
      },
    );
    gauge(
      "ballast_modeldeployment_window_quality_estimated",
      "The label-free estimate of that metric in the last window (calibrated classifiers).",
      ["metric"],
      (md, set) => {
        const m = md.status?.lastMetrics;
        if (m?.estimatedAccuracy !== undefined && m.metric) set(md, { metric: m.metric }, m.estimatedAccuracy);
      },
    );
    gauge("ballast_modeldeployment_window_drift_share_ratio", "Share of features that drifted in the last window (0–1).", [], (md, set) => {
      const share = md.status?.lastMetrics?.driftShare;
      if (share !== undefined) set(md, {}, share);
    });
    gauge("ballast_modeldeployment_window_samples", "Rows in the last window (kind rows) and rows with feedback (kind labelled).", ["kind"], (md, set) => {
      const m = md.status?.lastMetrics;
      if (!m) return;
      set(md, { kind: "rows" }, m.samples);
      set(md, { kind: "labelled" }, m.labelledSamples ?? 0);
    });
    gauge(
      "ballast_modeldeployment_windows_rejudged",
      "Windows among status.recentWindows (the last 12 judged) that labels arriving after they closed re-judged.",
      [],
      (md, set) => {
        if (md.status?.recentWindows) set(md, {}, md.status.recentWindows.filter((w) => w.rejudgedTime !== undefined).length);
      },
    );
    gauge("ballast_modeldeployment_window_end_timestamp_seconds", "End of the last window the operator judged (Unix seconds).", [], (md, set) => {
      const end = md.status?.lastMetrics?.windowEnd;
      if (end) set(md, {}, Date.parse(end) / 1000);
    });
    gauge(
      "ballast_modeldeployment_policy_threshold",
      "spec.policy's thresholds, by rule: minAccuracy or maxError (the quality metric), maxDriftShare, minRobustness, minLabelledSamples.",
      ["rule"],
      (md, set) => {
        const p = md.spec.policy;
        if (p.minAccuracy !== undefined) set(md, { rule: "minAccuracy" }, p.minAccuracy);
        if (p.maxError !== undefined) set(md, { rule: "maxError" }, p.maxError);
        set(md, { rule: "maxDriftShare" }, p.maxDriftShare);
        set(md, { rule: "minRobustness" }, p.minRobustness);
        set(md, { rule: "minLabelledSamples" }, p.minLabelledSamples);
      },
    );
    gauge(
      "ballast_modeldeployment_retraining_jobs_in_period",
      "Retraining Jobs started within spec.policy.maxRetrainings.period (the budget's sliding window).",
      [],
      (md, set) => set(md, {}, md.status?.loop ? startsInPeriod(md.status.loop, md, now()).length : 0),
    );
    gauge(
      "ballast_modeldeployment_retraining_jobs_allowed_per_period",
      "spec.policy.maxRetrainings.count: retraining Jobs allowed per period (0 disables retraining).",
      [],
      (md, set) => set(md, {}, md.spec.policy.maxRetrainings.count),
    );
    gauge(
      "ballast_modeldeployment_retraining_gpu_seconds_in_period",
      "GPU-seconds retraining Jobs started within spec.policy.maxRetrainings.period held, the running Job's so far included.",
      [],
      (md, set) => {
        const loop = md.status?.loop;
        const running = loop?.phase === "Training" ? md.status?.lastRetraining?.startTime : undefined;
        set(md, {}, loop ? gpuSecondsInPeriod(loop, md, now(), running) : 0);
      },
    );
    gauge(
      "ballast_modeldeployment_retraining_gpu_seconds_allowed_per_period",
      "spec.policy.maxRetrainings.gpuSeconds: GPU-seconds retraining Jobs may hold per period (no series when unset).",
      [],
      (md, set) => {
        const allowed = md.spec.policy.maxRetrainings.gpuSeconds;
        if (allowed !== undefined) set(md, {}, allowed);
      },
    );
  }
}
