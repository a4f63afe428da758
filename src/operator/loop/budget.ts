// The retraining budget of spec.policy.maxRetrainings: Jobs per sliding period and, optionally, GPU-seconds per
// the same period. Both are read from status.loop, so a restarted operator counts what its predecessor spent.
import { isoSeconds, parseDurationMs, type LoopStatus, type ResolvedModelDeployment } from "../../api/index.js";
import { retrainingGpus } from "./retraining-job.js";

/** Jobs shorter than this are not started on the GPU budget's remainder: spec.retraining.activeDeadlineSeconds' own minimum. */
export const MIN_GPU_JOB_SECONDS = 60;

type GpuEntry = NonNullable<LoopStatus["recentGpuSeconds"]>[number];

function inPeriod(md: ResolvedModelDeployment, now: Date): (start: string) => boolean {
  const period = parseDurationMs(md.spec.policy.maxRetrainings.period);
  return (start) => now.getTime() - Date.parse(start) < period;
}

/** Start times within the budget's sliding period. */
export function startsInPeriod(loop: LoopStatus, md: ResolvedModelDeployment, now: Date): string[] {
  return (loop.recentStarts ?? []).filter(inPeriod(md, now));
}

/** Finished Jobs started within the period, with the GPU-seconds each held. */
export function gpuEntriesInPeriod(loop: LoopStatus, md: ResolvedModelDeployment, now: Date): GpuEntry[] {
  const within = inPeriod(md, now);
  return (loop.recentGpuSeconds ?? []).filter((e) => within(e.start));
}

/** GPU-seconds a Job held from `start` to `end`: run time times the GPUs its pods request (whole seconds). */
export function jobGpuSeconds(md: ResolvedModelDeployment, start: string, end: Date): number {
  return Math.round(Math.max(0, (end.getTime() - Date.parse(start)) / 1000) * retrainingGpus(md));
}

/**
 * GPU-seconds spent within the period: finished Jobs, and the running one (`running`: its start) so far. The
 * dashboard and the budget's decision read the same number.
 */
export function gpuSecondsInPeriod(loop: LoopStatus, md: ResolvedModelDeployment, now: Date, running?: string): number {
  const finished = gpuEntriesInPeriod(loop, md, now).reduce((sum, e) => sum + e.gpuSeconds, 0);
  return finished + (running ? jobGpuSeconds(md, running, now) : 0);
}

export type GpuBudget =
  /** No GPU-seconds limit applies: none set, or the Job requests no GPU. */
  | { limited: false }
  /** Seconds the next Job may run (its activeDeadlineSeconds at most), or why none may start. */
  | { limited: true; used: number; allowed: number; gpus: number; maxSeconds: number; refusal?: string };

/** What the GPU-seconds budget allows the next Job, from the finished Jobs within the period. */
export function nextJobGpuBudget(loop: LoopStatus, md: ResolvedModelDeployment, now: Date): GpuBudget {
  const { gpuSeconds: allowed, period } = md.spec.policy.maxRetrainings;
  const gpus = retrainingGpus(md);
  if (allowed === undefined || gpus === 0) return { limited: false };
  const used = gpuSecondsInPeriod(loop, md, now);
  const maxSeconds = Math.floor((allowed - used) / gpus);
  if (maxSeconds >= MIN_GPU_JOB_SECONDS) return { limited: true, used, allowed, gpus, maxSeconds };
  const entries = gpuEntriesInPeriod(loop, md, now);
  // The oldest entry leaving the period frees its GPU-seconds first.
  const next = entries.length ? isoSeconds(new Date(Date.parse(entries[0]!.start) + parseDurationMs(period))) : undefined;
  return {
    limited: true,
    used,
    allowed,
    gpus,
    maxSeconds: Math.max(0, maxSeconds),
    refusal: `policy violated, but the GPU budget is spent: ${used} of ${allowed} GPU-seconds in the last ${period} leave a ${gpus}-GPU Job less than ${MIN_GPU_JOB_SECONDS} s${next ? ` (GPU-seconds free up from ${next})` : ""}`,
  };
}

/** The finished Job's GPU-seconds added to the period's record, entries older than the period dropped. */
export function recordGpuSeconds(loop: LoopStatus, md: ResolvedModelDeployment, now: Date, start: string, gpuSeconds: number): GpuEntry[] {
  return [...gpuEntriesInPeriod(loop, md, now), { start, gpuSeconds }];
}
