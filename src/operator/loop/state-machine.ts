// The closed loop as one pure state machine: from the ModelDeployment (spec, status.policy, lastMetrics,
// the loop's own status) and what the cluster shows (the attempt's Job and its results, the serving
// rollout), the next loop-owned status, the Job to create and the Events to record. No I/O: the
// reconciler gathers the observation and carries out the step. Every transition is in docs/operator.md.
import {
  ConditionReason,
  ConditionType,
  appendHistory,
  defaultAccuracyMetric,
  findCondition,
  isoSeconds,
  parseDurationMs,
  setCondition,
  type Condition,
  type ConditionReasonName,
  type ConditionTypeName,
  type HistoryEntry,
  type LoopPhase,
  type LoopStatus,
  type ModelDeploymentStatus,
  type ObservationStatus,
  type ResolvedModelDeployment,
  type RetrainingStatus,
  type ShadowComparison,
  type WindowRecord,
} from "../../api/index.js";
import type { EventRecord } from "../../kube/events.js";
import { jobGpuSeconds, nextJobGpuBudget, recordGpuSeconds, startsInPeriod } from "./budget.js";
import { bestCandidate, evaluateGate, improvement, type CandidateReport } from "./gate.js";
import { candidateVersionName, retrainingJobName } from "./retraining-job.js";

/** Failed, rejected or rolled-back attempts in a row that halt the loop until a person acts. */
export const MAX_CONSECUTIVE_FAILURES = 3;
/** The back-off after failures doubles the cooldown, up to this. */
export const MAX_BACKOFF_MS = 24 * 3_600_000;
/** On a ModelDeployment: a new value resumes a halted loop (e.g. `kubectl annotate md/x ballast.dev/resume=$(date +%s)`). */
export const ANNOTATION_RESUME = "ballast.dev/resume";

/** The current attempt's Job as the cluster shows it. */
export interface JobObservation {
  name: string;
  /** absent: not in the API (never created, or deleted). */
  state: "absent" | "running" | "succeeded" | "failed";
  /** Failed: the Job condition's reason and message (BackoffLimitExceeded, DeadlineExceeded, ...). */
  reason?: string;
  message?: string;
  /** Succeeded: each finished pod's report; pods whose message held no result give an error. */
  reports?: CandidateReport[];
  errors?: string[];
  /** Where the scheduler placed the pod, for the message. */
  node?: string;
}

/** The serving Deployment's rollout: which version its template pins and whether it has fully rolled out. */
export interface RolloutObservation {
  pinnedVersion?: string;
  ready: boolean;
  message: string;
}

/** The shadow Deployment's pods and the last mirror configuration sent to the serving pods, for the message. */
export interface ShadowObservation {
  readyPods: number;
  /** What the serving pods answered to the last PUT /v1/mirror, e.g. "2 of 2 serving pods mirror". */
  mirror?: string;
}

export interface LoopObservation {
  now: Date;
  shadow?: ShadowObservation;
  /** The Job of attempt `loop.attempt` (Training) or of `loop.attempt + 1` (Stable: created before a crash). */
  job?: JobObservation;
  rollout: RolloutObservation;
}

/** The status fields the loop owns. */
export type LoopOwnedStatus = Pick<
  ModelDeploymentStatus,
  "loop" | "lastRetraining" | "candidateVersion" | "targetVersion" | "previousVersion" | "history" | "observation"
> & {
  conditions: Condition[];
};

/** The status fields the loop writes, in the order the reconciler compares and merges them. */
export const LOOP_OWNED_FIELDS = ["loop", "lastRetraining", "candidateVersion", "targetVersion", "previousVersion", "history", "observation"] as const;

export interface LoopStep {
  status: LoopOwnedStatus;
  /** Create this Job (idempotent: its name is deterministic). */
  /** maxSeconds: what the GPU budget leaves the Job (its activeDeadlineSeconds at most). */
  createJob?: { attempt: number; fromVersion: string; feedbackSince: string; maxSeconds?: number };
  events: EventRecord[];
  /** Shadowing: run this candidate in the shadow Deployment and mirror to it; Observing with the reverse shadow: the
   * previous version; absent: no shadow (scaled to 0). */
  shadow?: { version: string; replicas: number; sampleRate: number };
  /** When to look again without an event (Jobs and rollouts are watched; windows are not). */
  requeueAfterMs: number;
}

/** While shadowing, mirroring is re-sent at least this often (the sidecars stop by themselves 2 minutes after the last). */
export const SHADOW_REFRESH_MS = 30_000;

function fmt(x: number | undefined | null): string {
  return x === undefined || x === null ? "n/a" : String(Number(x.toPrecision(3)));
}

/** The live quality metric's name for this ModelDeployment. */
export function liveMetric(md: ResolvedModelDeployment): string {
  return md.spec.monitoring.accuracyMetric ?? defaultAccuracyMetric(md.spec.monitoring.task);
}

/** When the serving version went live: its last promotion or rollback, else the ModelDeployment's creation. */
export function servingSince(md: ResolvedModelDeployment): string {
  const serving = md.status?.servingVersion;
  const entry = [...(md.status?.history ?? [])].reverse().find((h) => h.version === serving && (h.event === "Promoted" || h.event === "RolledBack"));
  const created = md.metadata.creationTimestamp;
  return entry?.time ?? (created ? isoSeconds(new Date(created)) : isoSeconds(new Date(0)));
}

class Step {
  readonly events: EventRecord[] = [];
  createJob: LoopStep["createJob"];
  requeueAfterMs: number;
  loop: LoopStatus;
  lastRetraining: RetrainingStatus | undefined;
  candidateVersion: string | undefined;
  targetVersion: string | undefined;
  previousVersion: string | undefined;
  history: HistoryEntry[] | undefined;
  observation: ObservationStatus | undefined;
  conditions: Condition[];

  constructor(
    readonly md: ResolvedModelDeployment,
    readonly obs: LoopObservation,
  ) {
    const s = md.status ?? {};
    this.loop = s.loop ? { ...s.loop } : { phase: "Stable", attempt: 0, since: isoSeconds(obs.now), message: "watching the policy" };
    this.lastRetraining = s.lastRetraining;
    this.candidateVersion = s.candidateVersion;
    this.targetVersion = s.targetVersion;
    this.previousVersion = s.previousVersion;
    this.history = s.history;
    this.observation = s.observation;
    this.conditions = s.conditions ?? [];
    this.requeueAfterMs = Math.max(1000, parseDurationMs(md.spec.monitoring.scrapeInterval));
  }

  get now(): string {
    return isoSeconds(this.obs.now);
  }

  get generation(): number {
    return this.md.metadata.generation ?? 0;
  }

  enter(phase: LoopPhase, message: string): void {
    if (this.loop.phase !== phase) this.loop.since = this.now;
    this.loop.phase = phase;
    this.loop.message = message.slice(0, 1024);
  }

  say(message: string): void {
    this.loop.message = message.slice(0, 1024);
  }

  event(type: EventRecord["type"], reason: string, note: string, action = "Loop"): void {
    this.events.push({ type, reason, action, note: note.slice(0, 1024) });
  }

  remember(entry: Omit<HistoryEntry, "time">): void {
    this.history = appendHistory(this.history, { time: this.now, ...entry });
  }

  condition(type: ConditionTypeName, status: Condition["status"], reason: ConditionReasonName, message: string): void {
    this.conditions = setCondition(
      this.conditions,
      { type, status, reason, message: message.slice(0, 32768), observedGeneration: this.generation },
      this.obs.now,
    );
  }

  /** A failed, rejected or rolled-back attempt: back-off doubles, and three in a row halt the loop. */
  failed(reason: string, message: string): void {
    const failures = (this.loop.consecutiveFailures ?? 0) + 1;
    this.loop.consecutiveFailures = failures;
    this.loop.failedAttempts = (this.loop.failedAttempts ?? 0) + 1;
    const backoff = Math.min(MAX_BACKOFF_MS, parseDurationMs(this.md.spec.policy.cooldown) * 2 ** failures);
    this.loop.backoffUntil = isoSeconds(new Date(this.obs.now.getTime() + backoff));
    this.loop.lastHandledTrigger = this.md.status?.policy?.lastTriggerTime ?? this.loop.lastHandledTrigger;
    this.candidateVersion = undefined;
    if (failures >= MAX_CONSECUTIVE_FAILURES) {
      this.halt(ConditionReason.TooManyFailures, `${failures} attempts in a row failed, were rejected or rolled back (last: ${reason}: ${message})`);
      return;
    }
    this.enter(
      "Stable",
      `${reason}: ${message}; no retraining before ${this.loop.backoffUntil} (cooldown doubled after ${failures} failed attempt${failures > 1 ? "s" : ""})`,
    );
  }

  halt(reason: ConditionReasonName, message: string): void {
    this.enter("Halted", `${message}; change the spec or annotate ${ANNOTATION_RESUME}=<new value> to resume`);
    this.loop.haltedGeneration = this.generation;
    this.condition(ConditionType.LoopHalted, "True", reason, this.loop.message);
    this.remember({ event: "Halted", version: this.md.status?.servingVersion ?? "unknown", reason, message: message.slice(0, 1024) });
    this.event("Warning", reason, `loop halted: ${message}`);
  }

  succeededAttempt(message: string): void {
    this.loop.consecutiveFailures = 0;
    this.loop.backoffUntil = isoSeconds(new Date(this.obs.now.getTime() + parseDurationMs(this.md.spec.policy.cooldown)));
    this.loop.lastHandledTrigger = this.md.status?.policy?.lastTriggerTime ?? this.loop.lastHandledTrigger;
    this.enter("Stable", message);
  }

  promote(version: string, why: string): void {
    const serving = this.md.status?.servingVersion;
    this.previousVersion = serving;
    this.targetVersion = version;
    this.candidateVersion = version;
    this.enter("Promoting", `rolling the serving pods from ${serving ?? "the current version"} to ${version} (${why})`);
    this.event("Normal", "Promoting", this.loop.message, "Promote");
  }

  rollBack(reason: string, message: string): void {
    const failedVersion = this.targetVersion;
    const restore = this.previousVersion;
    if (!restore) {
      // Nothing to go back to (the first version was never known): report and stay.
      this.say(`${message}; no previous version to roll back to`);
      this.event("Warning", reason, this.loop.message, "Rollback");
      return;
    }
    this.targetVersion = restore;
    this.previousVersion = failedVersion;
    this.enter("RollingBack", `${reason}: ${message}; rolling back to ${restore}`);
    this.event("Warning", reason, this.loop.message, "Rollback");
  }

  finish(): LoopStep {
    const phase = this.loop.phase;
    if (phase !== "Observing") delete this.loop.awaitingLabels;
    // Derived each step so they can never disagree with the phase.
    if (phase !== "Halted" && findCondition(this.conditions, ConditionType.LoopHalted)?.status !== "False")
      this.condition(ConditionType.LoopHalted, "False", ConditionReason.Idle, "the loop runs");
    if (phase === "AwaitingApproval") {
      const passed = this.lastRetraining?.gate?.passed !== false;
      this.condition(
        ConditionType.CandidateReady,
        passed ? "True" : "False",
        passed ? ConditionReason.AwaitingApproval : ConditionReason.CandidateRejected,
        this.loop.message,
      );
    } else if (findCondition(this.conditions, ConditionType.CandidateReady)?.status !== "False")
      this.condition(ConditionType.CandidateReady, "False", ConditionReason.Idle, "no candidate waiting for approval");
    if (phase === "Training") this.condition(ConditionType.Retraining, "True", ConditionReason.RetrainingStarted, this.loop.message);
    else if (!findCondition(this.conditions, ConditionType.Retraining) || findCondition(this.conditions, ConditionType.Retraining)?.status === "True")
      this.condition(
        ConditionType.Retraining,
        "False",
        this.lastRetraining?.phase === "Failed" ? ConditionReason.RetrainingFailed : ConditionReason.Idle,
        "no retraining Job running",
      );
    const status: LoopOwnedStatus = { loop: this.loop, conditions: this.conditions };
    if (this.lastRetraining) status.lastRetraining = this.lastRetraining;
    if (this.candidateVersion) status.candidateVersion = this.candidateVersion;
    if (this.targetVersion) status.targetVersion = this.targetVersion;
    if (this.previousVersion) status.previousVersion = this.previousVersion;
    if (this.history) status.history = this.history;
    if (this.observation) status.observation = this.observation;
    const busy = phase === "Training" || phase === "Promoting" || phase === "RollingBack";
    const shadowVersion =
      phase === "Shadowing" ? this.candidateVersion : phase === "Observing" && reverseShadowRuns(this) ? this.observation?.previousVersion : undefined;
    const shadowing = shadowVersion !== undefined;
    const shadowSpec = this.md.spec.promotion.shadow;
    return {
      status,
      createJob: this.createJob,
      events: this.events,
      ...(shadowing ? { shadow: { version: shadowVersion, replicas: shadowSpec.replicas, sampleRate: shadowSpec.sampleRate } } : {}),
      requeueAfterMs: busy ? Math.min(this.requeueAfterMs, 5000) : shadowing ? Math.min(this.requeueAfterMs, SHADOW_REFRESH_MS) : this.requeueAfterMs,
    };
  }
}

/** One step of the loop. */
export function stepLoop(md: ResolvedModelDeployment, obs: LoopObservation): LoopStep {
  const step = new Step(md, obs);
  switch (step.loop.phase) {
    case "Stable":
      stable(step);
      break;
    case "Training":
      training(step);
      break;
    case "Shadowing":
      shadowing(step);
      break;
    case "AwaitingApproval":
      awaitingApproval(step);
      break;
    case "Promoting":
    case "RollingBack":
      rollingOut(step);
      break;
    case "Observing":
      observing(step);
      break;
    case "Halted":
      halted(step);
      break;
  }
  return step.finish();
}

/** Before loop.backoffUntil (compared as times: status times have second precision, the clock does not). */
function backingOff(step: Step): boolean {
  return step.loop.backoffUntil !== undefined && step.obs.now.getTime() < Date.parse(step.loop.backoffUntil);
}

/** A new approvedVersion (manual mode) to carry out, if any. */
function pendingApproval(step: Step): string | undefined {
  const p = step.md.spec.promotion;
  const approved = p.mode === "manual" ? p.approvedVersion : undefined;
  if (!approved || approved === step.loop.approvalHandled) return undefined;
  if (approved === step.md.status?.servingVersion && approved === step.targetVersion) return undefined;
  return approved;
}

function approve(step: Step, version: string): void {
  step.loop.approvalHandled = version;
  const gate = step.lastRetraining?.candidateVersion === version ? step.lastRetraining.gate : undefined;
  const shadow = step.lastRetraining?.candidateVersion === version ? step.lastRetraining.shadow : undefined;
  const gated = gate
    ? gate.passed
      ? "it passed the gate"
      : `it FAILED the gate (${gate.failedRule}): a person decided`
    : "not gated by Ballast: a person decided";
  const how = shadow ? `${gated}; shadow ${shadow.verdict}: ${shadow.message}` : gated;
  step.remember({
    event: "Promoted",
    version,
    previousVersion: step.md.status?.servingVersion,
    reason: ConditionReason.CandidateApproved,
    message: `approved in spec.promotion.approvedVersion; ${how}`.slice(0, 1024),
  });
  step.event("Normal", ConditionReason.CandidateApproved, `spec.promotion.approvedVersion ${version}: ${how}`, "Promote");
  step.promote(version, `approved; ${how}`);
}

function stable(step: Step): void {
  const { md, obs } = step;
  const s = md.status ?? {};
  const last = s.lastMetrics;
  // The baseline a promoted version must not fall below: this version's last healthy labelled window.
  if (last?.verdict === "Healthy" && last.accuracy !== undefined && s.servingVersion && (s.servingVersion === step.targetVersion || !step.targetVersion)) {
    step.loop.baselineMetric = last.accuracy;
    if (last.errorRate !== undefined) step.loop.baselineErrorRate = last.errorRate;
  }
  if (md.spec.policy.paused) {
    step.enter("Halted", "spec.policy.paused: no retraining or promotion starts");
    step.loop.haltedGeneration = step.generation;
    step.condition(ConditionType.LoopHalted, "True", ConditionReason.Paused, step.loop.message);
    step.event("Normal", ConditionReason.Paused, "loop paused by spec.policy.paused");
    return;
  }
  const approved = pendingApproval(step);
  if (approved) return approve(step, approved);
  // A Job for the next attempt exists: we created it and stopped before recording it. Adopt it.
  if (obs.job && obs.job.state !== "absent" && obs.job.name === retrainingJobName(md.metadata.name!, step.loop.attempt + 1)) {
    step.loop.attempt++;
    step.lastRetraining = {
      jobName: obs.job.name,
      attempt: step.loop.attempt,
      phase: "Running",
      startTime: step.now,
      reason: "adopted after an operator restart",
    };
    step.enter("Training", `retraining Job ${obs.job.name} runs (adopted after an operator restart)`);
    return;
  }
  const policy = s.policy;
  const trigger = policy?.lastTriggerTime;
  const fresh =
    trigger !== undefined && policy?.verdict === "Violated" && (step.loop.lastHandledTrigger === undefined || trigger > step.loop.lastHandledTrigger);
  if (!fresh) {
    const waiting = backingOff(step) ? `; no retraining before ${step.loop.backoffUntil}` : "";
    step.enter("Stable", `serving ${s.servingVersion ?? "(version not yet reported)"}; policy ${policy?.verdict ?? "not evaluated yet"}${waiting}`);
    return;
  }
  const budget = md.spec.policy.maxRetrainings;
  const starts = startsInPeriod(step.loop, md, obs.now);
  const degraded = findCondition(s.conditions, ConditionType.Degraded);
  const why = degraded?.status === "True" ? `${degraded.reason}: ${degraded.message}` : `policy violated at ${trigger}`;
  const refuse = (reason: ConditionReasonName, message: string) => {
    step.loop.lastHandledTrigger = trigger;
    step.condition(ConditionType.Retraining, "False", reason, message);
    step.event("Warning", reason, message, "Retrain");
    step.enter("Stable", message);
  };
  if (budget.count === 0) return refuse(ConditionReason.BudgetExhausted, "policy violated, but policy.maxRetrainings.count is 0: retraining is disabled");
  if (starts.length >= budget.count)
    return refuse(
      ConditionReason.BudgetExhausted,
      `policy violated, but the budget is spent: ${starts.length} of ${budget.count} retraining Jobs in the last ${budget.period} (next slot ${isoSeconds(new Date(Date.parse(starts[0]!) + parseDurationMs(budget.period)))})`,
    );
  const gpuBudget = nextJobGpuBudget(step.loop, md, obs.now);
  if (gpuBudget.limited && gpuBudget.refusal) return refuse(ConditionReason.BudgetExhausted, gpuBudget.refusal);
  if (backingOff(step))
    return refuse(
      ConditionReason.CooldownActive,
      `policy violated, but no retraining starts before ${step.loop.backoffUntil} (cooldown after the last attempt)`,
    );
  const serving = s.servingVersion;
  if (!serving) {
    step.say("policy violated; waiting for the sidecars to report the serving version before retraining");
    return;
  }
  const attempt = step.loop.attempt + 1;
  const jobName = retrainingJobName(md.metadata.name!, attempt);
  step.loop.attempt = attempt;
  step.loop.lastHandledTrigger = trigger;
  step.loop.recentStarts = [...starts, step.now];
  step.lastRetraining = { jobName, attempt, phase: "Running", startTime: step.now, fromVersion: serving, reason: why.slice(0, 1024) };
  step.createJob = { attempt, fromVersion: serving, feedbackSince: servingSince(md), ...(gpuBudget.limited ? { maxSeconds: gpuBudget.maxSeconds } : {}) };
  const gpuNote = gpuBudget.limited
    ? `; GPU budget: ${gpuBudget.used} of ${gpuBudget.allowed} GPU-seconds spent in the last ${budget.period}, so this ${gpuBudget.gpus}-GPU Job runs at most ${Math.min(gpuBudget.maxSeconds, md.spec.retraining.activeDeadlineSeconds)} s`
    : "";
  step.enter("Training", `retraining Job ${jobName} started from ${serving} (candidate ${candidateVersionName(md, attempt)}): ${why}${gpuNote}`);
  step.event("Normal", ConditionReason.RetrainingStarted, step.loop.message, "Retrain");
}

function training(step: Step): void {
  const { md, obs } = step;
  const job = obs.job;
  const retraining: RetrainingStatus = step.lastRetraining ?? {
    jobName: retrainingJobName(md.metadata.name!, step.loop.attempt),
    attempt: step.loop.attempt,
    phase: "Running",
  };
  /** The finished Job's GPU-seconds, counted against the budget's period. */
  const spent = (): { gpuSeconds?: number } => {
    if (!retraining.startTime) return {};
    // To completionTime as written (second precision), as ballast_retraining_job_duration_seconds measures it.
    const gpuSeconds = jobGpuSeconds(md, retraining.startTime, new Date(step.now));
    step.loop.recentGpuSeconds = recordGpuSeconds(step.loop, md, obs.now, retraining.startTime, gpuSeconds);
    return { gpuSeconds };
  };
  const jobFailed = (reason: string, message: string) => {
    step.lastRetraining = { ...retraining, phase: "Failed", completionTime: step.now, ...spent(), reason, message: message.slice(0, 32768) };
    step.remember({ event: "RetrainingFailed", version: retraining.fromVersion ?? "unknown", reason, message: message.slice(0, 1024) });
    step.condition(ConditionType.Retraining, "False", ConditionReason.RetrainingFailed, `${retraining.jobName}: ${reason}: ${message}`);
    step.event("Warning", ConditionReason.RetrainingFailed, `retraining Job ${retraining.jobName} failed: ${reason}: ${message}`, "Retrain");
    step.failed(ConditionReason.RetrainingFailed, `Job ${retraining.jobName} ${reason}: ${message}`);
  };
  if (!job || job.state === "absent") return jobFailed("JobDeleted", "the Job was deleted before it finished");
  if (job.state === "running") {
    step.say(`retraining Job ${job.name} runs${job.node ? ` on ${job.node}` : ""}`);
    return;
  }
  if (job.state === "failed") return jobFailed(job.reason ?? "JobFailed", [job.message, ...(job.errors ?? [])].filter(Boolean).join("; ") || "the Job failed");
  const best = bestCandidate(job.reports ?? []);
  if (!best)
    return jobFailed(ConditionReason.NoCandidate, `the Job succeeded but no pod reported a candidate${job.errors?.length ? `: ${job.errors.join("; ")}` : ""}`);
  const gate = evaluateGate(best, md);
  step.lastRetraining = {
    ...retraining,
    phase: "Succeeded",
    completionTime: step.now,
    ...spent(),
    candidateVersion: best.version,
    ...(best.recent.candidate !== null ? { candidateMetric: Number(best.recent.candidate.toPrecision(4)) } : {}),
    ...(best.recent.serving !== null ? { servingMetric: Number(best.recent.serving.toPrecision(4)) } : {}),
    gate,
  };
  step.condition(ConditionType.Retraining, "False", ConditionReason.RetrainingSucceeded, `${retraining.jobName} wrote ${best.version}`);
  step.remember({
    event: "Retrained",
    version: best.version,
    previousVersion: retraining.fromVersion,
    reason: ConditionReason.RetrainingSucceeded,
    message: gate.message,
    ...metricOf(best.recent.candidate),
  });
  if (!gate.passed) {
    step.remember({
      event: "Rejected",
      version: best.version,
      previousVersion: retraining.fromVersion,
      reason: gate.failedRule,
      message: gate.message,
      ...metricOf(best.recent.candidate),
    });
    step.event("Warning", ConditionReason.CandidateRejected, `candidate ${best.version} rejected (${gate.failedRule}): ${gate.message}`, "Gate");
    return step.failed(
      ConditionReason.CandidateRejected,
      `candidate ${best.version} failed ${gate.failedRule}; ${retraining.fromVersion ?? "the serving version"} stays`,
    );
  }
  step.candidateVersion = best.version;
  step.event("Normal", "CandidatePassed", `candidate ${best.version} passed the gate: ${gate.message}`, "Gate");
  if (md.spec.promotion.shadow.enabled) return startShadow(step, best.version);
  const hold = promotionHold(step);
  if (hold) {
    step.enter("AwaitingApproval", `candidate ${best.version} passed the gate; ${hold}`);
    step.event("Normal", ConditionReason.AwaitingApproval, step.loop.message, "Gate");
    return;
  }
  step.promote(best.version, `it passed the gate: ${gate.message}`);
}

function clearShadow(step: Step): void {
  delete step.loop.shadowDeadline;
  delete step.loop.shadowExtended;
}

/** The candidate passed the offline gate: it serves mirrored live traffic beside the serving version before anything else. */
function startShadow(step: Step, version: string): void {
  const shadow = step.md.spec.promotion.shadow;
  step.loop.shadowDeadline = isoSeconds(new Date(step.obs.now.getTime() + parseDurationMs(shadow.maxDuration)));
  delete step.loop.shadowExtended;
  step.enter(
    "Shadowing",
    `candidate ${version} passed the gate; shadowing it on ${shadow.sampleRate * 100}% of live requests until ${shadow.minPairs} pairs (${shadow.minLabelledPairs} labelled) or ${step.loop.shadowDeadline}`,
  );
  step.event("Normal", ConditionReason.ShadowStarted, step.loop.message, "Shadow");
}

/** The shadow's result, in status.lastRetraining and the history. */
function recordShadow(step: Step, result: ShadowComparison): void {
  if (step.lastRetraining) step.lastRetraining = { ...step.lastRetraining, shadow: result };
  const passed = result.verdict === "Passed";
  step.remember({
    event: passed ? "ShadowPassed" : "ShadowRejected",
    version: result.version,
    previousVersion: step.md.status?.servingVersion,
    reason: passed ? ConditionReason.ShadowPassed : (result.failedRule ?? ConditionReason.ShadowRejected),
    message: result.message.slice(0, 1024),
    ...metricOf(result.shadow),
  });
  step.event(
    passed ? "Normal" : "Warning",
    passed ? ConditionReason.ShadowPassed : ConditionReason.ShadowRejected,
    `shadow of ${result.version} ${passed ? "passed" : `rejected (${result.failedRule})`}: ${result.message}`,
    "Shadow",
  );
  clearShadow(step);
}

function shadowing(step: Step): void {
  const { md, obs } = step;
  const candidate = step.candidateVersion;
  const spec = md.spec.promotion.shadow;
  if (md.spec.policy.paused || !candidate) {
    // Nothing is promoted while paused: the shadow stops (its pods go) and the candidate is dropped, not failed.
    const why = md.spec.policy.paused ? "spec.policy.paused" : "no candidate version recorded";
    step.event("Normal", ConditionReason.ShadowStopped, `shadow of ${candidate ?? "?"} stopped: ${why}`, "Shadow");
    clearShadow(step);
    step.candidateVersion = undefined;
    if (!md.spec.policy.paused) return step.enter("Stable", `shadow stopped: ${why}`);
    step.enter("Halted", `spec.policy.paused: shadow of ${candidate} stopped; no retraining or promotion starts`);
    step.loop.haltedGeneration = step.generation;
    step.condition(ConditionType.LoopHalted, "True", ConditionReason.Paused, step.loop.message);
    return;
  }
  const approved = pendingApproval(step);
  if (approved) {
    clearShadow(step);
    return approve(step, approved);
  }
  const live = md.status?.shadow?.version === candidate ? md.status.shadow : undefined;
  if (live?.verdict === "Passed") {
    recordShadow(step, live);
    const hold = promotionHold(step);
    if (hold) {
      step.enter("AwaitingApproval", `candidate ${candidate} passed the gate and the shadow (${live.message}); ${hold}`);
      step.event("Normal", ConditionReason.AwaitingApproval, step.loop.message, "Shadow");
      return;
    }
    return step.promote(candidate, `it passed the gate and the shadow: ${live.message}`);
  }
  if (live?.verdict === "Rejected") {
    recordShadow(step, live);
    return step.failed(
      ConditionReason.ShadowRejected,
      `candidate ${candidate} failed the shadow (${live.failedRule}); ${md.status?.servingVersion ?? "the serving version"} stays`,
    );
  }
  const deadline = step.loop.shadowDeadline ? Date.parse(step.loop.shadowDeadline) : obs.now.getTime();
  const progress = live?.message ?? "no shadow numbers from the serving pods yet";
  const pods = shadowPods(step);
  if (obs.now.getTime() < deadline) return step.say(`shadowing ${candidate} until ${step.loop.shadowDeadline}: ${progress}${pods}`);
  if (!step.loop.shadowExtended) {
    step.loop.shadowExtended = true;
    step.loop.shadowDeadline = isoSeconds(new Date(deadline + parseDurationMs(spec.maxDuration)));
    step.say(`too few pairs within promotion.shadow.maxDuration ${spec.maxDuration} (${progress}); extended once, until ${step.loop.shadowDeadline}${pods}`);
    step.event("Normal", ConditionReason.ShadowExtended, step.loop.message, "Shadow");
    return;
  }
  inconclusive(step, candidate, live, `too few pairs within twice promotion.shadow.maxDuration ${spec.maxDuration}: ${progress}`);
}

/** The shadow pods and what the serving pods answered to the last mirror configuration, for the message. */
function shadowPods(step: Step): string {
  const seen = step.obs.shadow;
  return seen ? `; ${seen.readyPods} of ${step.md.spec.promotion.shadow.replicas} shadow pods ready${seen.mirror ? `, ${seen.mirror}` : ""}` : "";
}

/** Inconclusive never passes and is no failure: the candidate is dropped, the cooldown starts, the failure count stays. */
function inconclusive(step: Step, candidate: string, live: ShadowComparison | undefined, message: string): void {
  const result: ShadowComparison = {
    ...(live ?? {
      version: candidate,
      since: step.loop.since,
      updateTime: step.now,
      mirrored: 0,
      dropped: 0,
      failed: 0,
      rows: 0,
      labelledPairs: 0,
      metric: step.md.spec.monitoring.task === "classification" ? "accuracy" : "mae",
    }),
    verdict: "Rejected",
    failedRule: "Inconclusive",
    message: message.slice(0, 1024),
  };
  recordShadow(step, result);
  step.candidateVersion = undefined;
  step.loop.backoffUntil = isoSeconds(new Date(step.obs.now.getTime() + parseDurationMs(step.md.spec.policy.cooldown)));
  step.loop.lastHandledTrigger = step.md.status?.policy?.lastTriggerTime ?? step.loop.lastHandledTrigger;
  step.enter("Stable", `${ConditionReason.Inconclusive}: candidate ${candidate} not promoted: ${message}; not counted as a failed attempt`);
}

/** Why a candidate that passed the gate is not promoted automatically, if it is not. */
function promotionHold(step: Step): string | undefined {
  const { md } = step;
  if (md.spec.model.version) return `spec.model.version pins ${md.spec.model.version}: set it to ${step.candidateVersion} to serve the candidate`;
  if (md.spec.promotion.mode === "manual") return `set spec.promotion.approvedVersion to ${step.candidateVersion} to promote it`;
  if (md.spec.policy.paused) return "spec.policy.paused holds promotion";
  return undefined;
}

function awaitingApproval(step: Step): void {
  const approved = pendingApproval(step);
  if (approved) return approve(step, approved);
  if (step.candidateVersion && step.lastRetraining?.gate?.passed && !promotionHold(step))
    return step.promote(step.candidateVersion, "it passed the gate and nothing holds it any more");
  const hold = promotionHold(step);
  step.say(`candidate ${step.candidateVersion ?? "?"} ${step.lastRetraining?.gate?.passed ? "passed the gate" : "failed the gate"}${hold ? `; ${hold}` : ""}`);
}

function metricOf(x: number | null | undefined): { metric?: number } {
  return x === null || x === undefined ? {} : { metric: Number(x.toPrecision(4)) };
}

/** Promoting and RollingBack: wait until the Deployment pins the target, every pod is Ready and the sidecars report it. */
function rollingOut(step: Step): void {
  const { md, obs } = step;
  const target = step.targetVersion;
  const rolledOut = target !== undefined && obs.rollout.pinnedVersion === target && obs.rollout.ready && md.status?.servingVersion === target;
  if (step.loop.phase === "RollingBack") {
    // The reason rollBack wrote stays in front of the rollout's progress, so the history entry still says why.
    const rollingBack = `rolling back to ${target}`;
    const at = step.loop.message.lastIndexOf(rollingBack);
    const why = at >= 0 ? step.loop.message.slice(0, at + rollingBack.length) : rollingBack;
    if (!rolledOut) return step.say(`${why}: ${obs.rollout.message}`);
    const failedVersion = step.previousVersion ?? "the promoted version";
    step.remember({
      event: "RolledBack",
      version: target!,
      previousVersion: step.previousVersion,
      reason: ConditionReason.RolledBack,
      message: why,
    });
    step.event("Warning", ConditionReason.RolledBack, `rolled back from ${failedVersion} to ${target}`, "Rollback");
    return step.failed(ConditionReason.RolledBack, `${failedVersion} was rolled back to ${target}`);
  }
  if (rolledOut) {
    const gate = step.lastRetraining?.candidateVersion === target ? step.lastRetraining?.gate : undefined;
    if (!step.history?.some((h) => h.event === "Promoted" && h.version === target && h.time >= step.loop.since))
      step.remember({
        event: "Promoted",
        version: target,
        previousVersion: step.previousVersion,
        reason: ConditionReason.Promoted,
        message: gate?.message ?? "promoted",
        ...metricOf(gate?.recent.candidate),
      });
    step.loop.observedWindows = 0;
    // Observation starts after the last window the replaced version served: the new version's windows all count.
    const before = (md.status?.recentWindows ?? []).filter((w) => w.version !== target).at(-1)?.windowEnd;
    if (before) step.loop.lastObservedWindowEnd = before;
    else delete step.loop.lastObservedWindowEnd;
    step.enter("Observing", `${target} serves; watching ${md.spec.promotion.observationWindows} labelled windows before the promotion is final`);
    step.event("Normal", ConditionReason.Promoted, `promoted ${target} (replacing ${step.previousVersion ?? "?"}): ${gate?.message ?? "approved"}`, "Promote");
    startObservation(step, target);
    return;
  }
  const deadline = parseDurationMs(md.spec.promotion.rolloutDeadline);
  if (obs.now.getTime() - Date.parse(step.loop.since) > deadline)
    return step.rollBack(
      ConditionReason.RolloutTimedOut,
      `${target} was not serving on every pod within promotion.rolloutDeadline ${md.spec.promotion.rolloutDeadline} (${obs.rollout.message})`,
    );
  step.say(`rolling the serving pods to ${target}: ${obs.rollout.message}`);
}

/** Whether the previous version should serve mirrored traffic now: observation of a promotion, reverse shadow not yet decided or stopped. */
function reverseShadowRuns(step: Step): boolean {
  const o = step.observation;
  return o !== undefined && o.version === step.targetVersion && o.reverseShadow === "Running" && o.previousVersion !== undefined;
}

/** The promoted version serves on every pod: observation starts, with the previous version as the reverse shadow when enabled. */
function startObservation(step: Step, target: string): void {
  const shadow = step.md.spec.promotion.shadow;
  const previous = step.previousVersion;
  const reverse = shadow.enabled && shadow.reverse && previous !== undefined && previous !== target;
  step.observation = {
    version: target,
    ...(previous ? { previousVersion: previous } : {}),
    since: step.now,
    reverseShadow: reverse ? "Running" : "Off",
    message: reverse
      ? `the previous version ${previous} serves mirrored traffic beside ${target}; judged on ${shadow.minLabelledPairs} labelled pairs`
      : `no reverse shadow (${!shadow.enabled ? "promotion.shadow.enabled is false" : !shadow.reverse ? "promotion.shadow.reverse is false" : "no previous version"})`,
  };
  if (reverse)
    step.event(
      "Normal",
      ConditionReason.ReverseShadowStarted,
      `reverse shadow: ${previous} serves ${shadow.sampleRate * 100}% of live requests mirrored from ${target}; rolled back if it is significantly better on ${shadow.minLabelledPairs} labelled pairs`,
      "Observe",
    );
}

/** The reverse shadow's numbers as the monitoring controller last wrote them, if they are about this observation. */
function liveReverseShadow(step: Step): ShadowComparison | undefined {
  const live = step.md.status?.shadow;
  return live?.role === "previous" && live.version === step.observation?.previousVersion ? live : undefined;
}

/** The reverse shadow stops undecided (observation ended, paused, or another rule rolled back): the last numbers are kept. */
function stopReverseShadow(step: Step, why: string): void {
  if (!reverseShadowRuns(step)) return;
  const live = liveReverseShadow(step);
  step.observation = {
    ...step.observation!,
    reverseShadow: "Stopped",
    ...(live ? { comparison: live } : {}),
    message: `reverse shadow stopped before its look (${why})${live ? `: ${live.message}` : ""}`.slice(0, 1024),
  };
}

/** The estimate's window, for messages: where it came from and what it said. */
function estimateEvidence(step: Step): string {
  const w = step.observation?.estimateWarning;
  return w
    ? `; the label-free estimate had said so first: ${w.metric} ${fmt(w.estimated)} in the window ending ${w.windowEnd} (${w.labelledSamples} labelled rows)`
    : "";
}

/**
 * One look at the reverse shadow's paired numbers, once both minimums are met: the previous version significantly
 * better rolls back (promotion.rollbackOnRegression); otherwise the promoted version held on the same requests and
 * the shadow stops. True when the step rolled back.
 */
function judgeReverseShadow(step: Step): boolean {
  const live = reverseShadowRuns(step) ? liveReverseShadow(step) : undefined;
  if (!live || live.verdict === "Pending") return false;
  const o = step.observation!;
  const target = o.version;
  // One-sided (the estimate fixed the direction) halves the two-sided p-value when the previous version leads.
  const halved = live.oneSided === true && (live.improvement ?? 0) > 0 && live.pValue !== undefined;
  const p = `${live.test} ${halved ? `one-sided p ${fmt(live.pValue! / 2)}` : `p ${fmt(live.pValue)}`}`;
  const numbers = `${live.metric} ${fmt(live.shadow)} (previous ${o.previousVersion}) vs ${fmt(live.serving)} (promoted ${target}) on ${live.labelledPairs} labelled pairs, ${p}`;
  step.observation = { ...o, reverseShadow: "Decided", comparison: live, message: "" };
  if (live.verdict === "Passed") {
    step.observation.message = `${target} held against ${o.previousVersion} on the same requests: ${numbers}`.slice(0, 1024);
    step.event("Normal", ConditionReason.ReverseShadowPassed, `reverse shadow: ${step.observation.message}`, "Observe");
    return false;
  }
  step.observation.message = `${o.previousVersion} is significantly better than ${target} on the same requests: ${numbers}${estimateEvidence(step)}`.slice(
    0,
    1024,
  );
  if (!step.md.spec.promotion.rollbackOnRegression) {
    step.event(
      "Warning",
      ConditionReason.PreviousVersionBetter,
      `${step.observation.message}; not rolled back (promotion.rollbackOnRegression is false)`,
      "Observe",
    );
    return false;
  }
  step.rollBack(ConditionReason.PreviousVersionBetter, step.observation.message);
  return true;
}

/**
 * The live metric's regression rule, for a realised value or its label-free estimate: worse than the gate promised
 * by more than promotion.maxLiveRegression AND worse than what the replaced version did when healthy; either alone
 * when only one is known. The reason, or undefined.
 */
function metricRegression(step: Step, value: number, what: string): string | undefined {
  const { md } = step;
  const p = md.spec.promotion;
  const metric = liveMetric(md);
  const target = step.targetVersion;
  const gateMetric = step.lastRetraining?.candidateVersion === target ? step.lastRetraining?.gate?.recent.candidate : undefined;
  const baseline = step.loop.baselineMetric;
  const belowGate = gateMetric === undefined ? undefined : -improvement(value, gateMetric, metric) > p.maxLiveRegression;
  const belowBaseline = baseline === undefined ? undefined : improvement(value, baseline, metric) < 0;
  const checks = [belowGate, belowBaseline].filter((c): c is boolean => c !== undefined);
  if (checks.length === 0 || !checks.every(Boolean)) return undefined;
  return `${what} ${metric} ${fmt(value)} is worse than ${gateMetric !== undefined ? `the gate's ${fmt(gateMetric)} by more than promotion.maxLiveRegression ${p.maxLiveRegression}` : "expected"}${baseline !== undefined ? ` and below ${step.previousVersion ?? "the previous version"}'s last healthy ${fmt(baseline)}` : ""}`;
}

function observing(step: Step): void {
  const { md } = step;
  const s = md.status ?? {};
  const target = step.targetVersion;
  const p = md.spec.promotion;
  const metric = liveMetric(md);
  const needed = p.observationWindows;
  const minLabelled = md.spec.policy.minLabelledSamples;
  if (md.spec.policy.paused && reverseShadowRuns(step)) {
    stopReverseShadow(step, "spec.policy.paused");
    step.event("Normal", ConditionReason.ShadowStopped, `reverse shadow of ${step.observation!.previousVersion} stopped: spec.policy.paused`, "Observe");
  }
  if (judgeReverseShadow(step)) return;
  // Every window the monitoring controller judged since the last one observed (several can close between two steps),
  // after the windows that had too few labels when they closed and whose late labels have come since.
  const since = step.loop.lastObservedWindowEnd;
  const records = (s.recentWindows ?? []).filter((w) => w.version === target);
  const enough = (w: WindowRecord) => w.accuracy !== undefined && (w.labelledSamples ?? 0) >= minLabelled;
  // A window that left recentWindows can no longer be counted: forgotten (the bound of loop.awaitingLabels).
  const awaiting = new Set((step.loop.awaitingLabels ?? []).filter((end) => records.some((w) => w.windowEnd === end)));
  const lateLabelled = records.filter((w) => awaiting.has(w.windowEnd) && enough(w));
  const fresh = records.filter((w) => since === undefined || w.windowEnd > since);
  let skipped = "";
  let outcome: "rolledBack" | "passed" | undefined;
  for (const w of [...lateLabelled, ...fresh]) {
    const late = awaiting.delete(w.windowEnd);
    if (!late) step.loop.lastObservedWindowEnd = w.windowEnd;
    const labelled = w.labelledSamples ?? 0;
    if (!enough(w)) {
      skipped = `; window ending ${w.windowEnd} had ${labelled} labelled rows (fewer than ${minLabelled}): counted if late labels bring it there`;
      awaiting.add(w.windowEnd);
      noteEstimate(step, w.windowEnd, labelled, w.estimatedAccuracy);
      continue;
    }
    outcome = observeWindow(step, w, late);
    if (outcome) break;
  }
  if (awaiting.size > 0 && step.loop.phase === "Observing") step.loop.awaitingLabels = [...awaiting].sort();
  else delete step.loop.awaitingLabels;
  if (outcome) return;
  const last = fresh.at(-1)?.accuracy;
  const reverse = reverseShadowRuns(step)
    ? `; reverse shadow on ${step.observation!.previousVersion}: ${liveReverseShadow(step)?.message ?? "no paired numbers yet"}${shadowPods(step)}`
    : "";
  step.say(
    `${target} serves; ${step.loop.observedWindows ?? 0} of ${needed} labelled windows observed${last !== undefined ? `, live ${metric} ${fmt(last)}` : ""}${skipped}${reverse}`,
  );
}

/**
 * One labelled window of the promoted version counted: rolled back when it breaks the regression rule, the promotion
 * final when it is the last one needed. `late`: its labels came after it closed (it was skipped then); when its
 * label-free estimate had already called it worse (observation.estimateWarning), the labels confirm it now.
 */
function observeWindow(step: Step, w: WindowRecord, late: boolean): "rolledBack" | "passed" | undefined {
  const { md } = step;
  const p = md.spec.promotion;
  const target = step.targetVersion;
  const metric = liveMetric(md);
  const observed = (step.loop.observedWindows ?? 0) + 1;
  step.loop.observedWindows = observed;
  const live = w.accuracy!;
  if (p.rollbackOnRegression) {
    const regression = metricRegression(step, live, "live");
    const errorRise = w.errorRate !== undefined && w.errorRate - (step.loop.baselineErrorRate ?? 0) > p.maxLiveRegression;
    if (regression !== undefined || errorRise) {
      const detail = errorRise
        ? `error rate ${fmt(w.errorRate)} rose by more than promotion.maxLiveRegression ${p.maxLiveRegression} over ${fmt(step.loop.baselineErrorRate ?? 0)}`
        : regression!;
      const warned = step.observation?.estimateWarning?.windowEnd === w.windowEnd;
      const when = late
        ? `, realised with ${w.labelledSamples} labels, most of them after it closed${warned ? `: they confirm the label-free estimate ${fmt(step.observation!.estimateWarning!.estimated)} of that window` : ""}`
        : "";
      stopReverseShadow(step, `rolled back for ${ConditionReason.LiveRegression}`);
      step.rollBack(ConditionReason.LiveRegression, `${target}: ${detail} (window ending ${w.windowEnd}${when})`);
      return "rolledBack";
    }
  }
  if (observed < p.observationWindows) return undefined;
  step.loop.baselineMetric = live;
  if (w.errorRate !== undefined) step.loop.baselineErrorRate = w.errorRate;
  step.candidateVersion = undefined;
  stopReverseShadow(step, `observation passed after ${observed} labelled windows`);
  const reverse = step.observation?.reverseShadow === "Off" || !step.observation ? "" : `; reverse shadow: ${step.observation.message}`;
  step.event(
    "Normal",
    ConditionReason.ObservationPassed,
    `${target} held for ${observed} labelled windows (live ${metric} ${fmt(live)}): promotion final${reverse}`,
    "Observe",
  );
  step.succeededAttempt(`serving ${target}: promotion final after ${observed} windows (live ${metric} ${fmt(live)})`);
  return "passed";
}

/**
 * A window too sparsely labelled to judge: when its label-free estimate breaks the regression rule while the
 * reverse shadow runs, it is recorded (once) and fixes the direction of the shadow's paired test in advance. An
 * estimate never rolls back by itself: the labelled pairs must confirm.
 */
function noteEstimate(step: Step, windowEnd: string, labelledSamples: number, estimated: number | undefined): void {
  if (estimated === undefined || !reverseShadowRuns(step) || step.observation!.estimateWarning) return;
  const regression = metricRegression(step, estimated, "estimated");
  if (regression === undefined) return;
  const o = step.observation!;
  const message = `${regression} (window ending ${windowEnd}, ${labelledSamples} labelled rows); the reverse shadow's labelled pairs decide, one-sided`;
  step.observation = {
    ...o,
    estimateWarning: { windowEnd, labelledSamples, metric: liveMetric(step.md), estimated, message: message.slice(0, 1024) },
  };
  step.event("Warning", ConditionReason.EstimatedRegression, `${o.version}: ${message}`, "Observe");
}

function halted(step: Step): void {
  const { md } = step;
  const resume = md.metadata.annotations?.[ANNOTATION_RESUME];
  const pausedOnly = findCondition(step.conditions, ConditionType.LoopHalted)?.reason === ConditionReason.Paused;
  let why: string | undefined;
  if (pausedOnly && !md.spec.policy.paused) why = "spec.policy.paused was cleared";
  else if (!pausedOnly && step.loop.haltedGeneration !== undefined && step.generation !== step.loop.haltedGeneration)
    why = `the spec changed (generation ${step.generation})`;
  else if (!pausedOnly && resume && resume !== step.loop.resumedBy) why = `annotation ${ANNOTATION_RESUME}=${resume}`;
  if (!why) return;
  if (resume) step.loop.resumedBy = resume;
  step.loop.consecutiveFailures = 0;
  delete step.loop.haltedGeneration;
  delete step.loop.backoffUntil;
  // A trigger that arrived while halted is stale: wait for the policy's next one.
  step.loop.lastHandledTrigger = md.status?.policy?.lastTriggerTime ?? step.loop.lastHandledTrigger;
  step.condition(ConditionType.LoopHalted, "False", ConditionReason.Resumed, `resumed: ${why}`);
  step.event("Normal", ConditionReason.Resumed, `loop resumed: ${why}`);
  step.enter("Stable", `resumed: ${why}`);
}
