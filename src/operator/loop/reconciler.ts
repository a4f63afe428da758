// The loop reconciler: gathers what the state machine needs (the attempt's Job and its pods' termination
// messages, the serving rollout), takes one step, creates the Job if the step says so, and writes the
// loop-owned status. Only the leader runs it; everything it knows lives in status and in Job names.
import { isDeepStrictEqual } from "node:util";
import type { V1Deployment, V1Job, V1Pod } from "@kubernetes/client-node";
import type { ModelDeploymentStatus, ResolvedModelDeployment } from "../../api/index.js";
import { KubeApiError, resourcePath, type KubeClient, type KubeList, type KubeObject } from "../../kube/client.js";
import type { EventRecorder } from "../../kube/events.js";
import type { ObjectCache } from "../../kube/informer.js";
import { updateStatusWithRetry } from "../../kube/status.js";
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from "../controller.js";
import { JOBS, MODEL_DEPLOYMENTS, PODS } from "../resources.js";
import { controlledBy, describeController } from "../ownership.js";
import { servingNames } from "../serving/desired-state.js";
import { deploymentProgress } from "../serving/status.js";
import { parseCandidateReport } from "./candidate-report.js";
import { desiredRetrainingJob, retrainingJobName, TRAIN_CONTAINER } from "./retraining-job.js";
import { reconcileShadow, shadowNames } from "./shadow.js";
import {
  LOOP_OWNED_FIELDS,
  stepLoop,
  type JobObservation,
  type LoopOwnedStatus,
  type LoopStep,
  type RolloutObservation,
  type ShadowObservation,
} from "./state-machine.js";

export interface LoopCaches {
  modelDeployments: ObjectCache<ResolvedModelDeployment & KubeObject>;
  jobs: ObjectCache<V1Job & KubeObject>;
  deployments: ObjectCache<V1Deployment & KubeObject>;
  /** Serving and shadow pods: where mirroring is configured, and where to. */
  pods: ObjectCache<V1Pod & KubeObject>;
}

export interface LoopReconcilerOptions {
  client: KubeClient;
  caches: LoopCaches;
  recorder: EventRecorder;
  /** The Ballast image for Jobs whose spec names none (the operator's own). */
  defaultImage: string;
  /** The operator's own namespace (the shadow's NetworkPolicy admits its pods); undefined when it runs outside the cluster. */
  operatorNamespace?: string;
  now?: () => Date;
  onStatusConflict?: () => void;
  /** Told about each loop status write that took: the status it replaced and the one written (metrics). */
  onStepped?: (md: KubeObject, before: ModelDeploymentStatus | undefined, after: ModelDeploymentStatus | undefined) => void;
}

/** Where `ballast train` wrote its result; the label the Job controller puts on its pods. */
const JOB_NAME_LABEL = "batch.kubernetes.io/job-name";

export class LoopReconciler implements Reconciler {
  /** "ns/name" → the shadow pods and mirror answers of the last step, for the next step's message. */
  private readonly shadowSeen = new Map<string, ShadowObservation>();

  constructor(private readonly options: LoopReconcilerOptions) {}

  async reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    const md = this.options.caches.modelDeployments.get(key);
    if (!md || md.metadata.deletionTimestamp) return {};
    // The serving reconciler writes the first status; the loop starts from there.
    if (md.status?.observedGeneration === undefined) return { requeueAfterMs: 1000 };
    const now = this.options.now?.() ?? new Date();
    const loop = md.status.loop;
    const phase = loop?.phase ?? "Stable";
    const attempt = (loop?.attempt ?? 0) + (phase === "Training" ? 0 : 1);
    const job = phase === "Training" || phase === "Stable" ? await this.observeJob(md, retrainingJobName(req.name, attempt), phase === "Training") : undefined;
    const shadowSeen = this.shadowSeen.get(key);
    const step = stepLoop(md, { now, job, rollout: this.observeRollout(md), ...(shadowSeen ? { shadow: shadowSeen } : {}) });
    if (isDeepStrictEqual(owned(md.status), step.status) && !step.createJob) {
      await this.reconcileShadow(key, md, step, now, ctx);
      return { requeueAfterMs: step.requeueAfterMs };
    }

    // A transition: decide on the object as stored, not a cache that may not have our last write yet.
    const fresh = await this.options.client.get<ResolvedModelDeployment & KubeObject>(resourcePath(MODEL_DEPLOYMENTS, req.namespace, req.name));
    if (!isDeepStrictEqual(fresh.status?.loop, md.status.loop)) return { requeueAfterMs: 200 };
    if (step.createJob) {
      const desired = desiredRetrainingJob(md, { ...step.createJob, defaultImage: this.options.defaultImage });
      try {
        await this.options.client.create(resourcePath(JOBS, req.namespace), desired);
        ctx.log.info({ job: desired.metadata!.name, fromVersion: step.createJob.fromVersion }, "retraining Job created");
      } catch (err) {
        // Created before a restart or by a twin reconcile; the next step checks it is ours before reading it.
        if (!(err instanceof KubeApiError && err.conflict)) throw err;
      }
    }
    let applied = false;
    const written = await updateStatusWithRetry(
      this.options.client,
      MODEL_DEPLOYMENTS,
      fresh,
      (latest) => {
        applied = isDeepStrictEqual(latest.status?.loop, md.status!.loop);
        return applied ? mergeOwned(latest.status ?? {}, step.status) : (latest.status ?? {});
      },
      { onConflict: this.options.onStatusConflict },
    );
    if (!written || !applied) return { requeueAfterMs: 200 };
    this.options.onStepped?.(written, md.status, written.status);
    for (const ev of step.events) this.options.recorder.record(written, ev);
    await this.reconcileShadow(key, md, step, now, ctx);
    ctx.log.info({ phase: step.status.loop?.phase, attempt: step.status.loop?.attempt, message: step.status.loop?.message }, "loop stepped");
    return { requeueAfterMs: step.requeueAfterMs };
  }

  /** The shadow as the step wants it: running and mirrored to while Shadowing, scaled to 0 otherwise. */
  private async reconcileShadow(key: string, md: ResolvedModelDeployment, step: LoopStep, now: Date, ctx: ReconcileContext): Promise<void> {
    const existing = this.options.caches.deployments.get(`${md.metadata.namespace}/${shadowNames(md.metadata.name!).deployment}`);
    const seen = await reconcileShadow(md, step.shadow, existing, this.options.caches.pods.list(), {
      client: this.options.client,
      defaultImage: this.options.defaultImage,
      operatorNamespace: this.options.operatorNamespace,
      log: ctx.log,
      now,
    });
    if (seen) this.shadowSeen.set(key, seen);
    else this.shadowSeen.delete(key);
  }

  private async observeJob(md: ResolvedModelDeployment, name: string, expected: boolean): Promise<JobObservation | undefined> {
    const ns = md.metadata.namespace!;
    let job: V1Job | undefined = this.options.caches.jobs.get(`${ns}/${name}`);
    if (!job && !expected) return undefined;
    if (!job) {
      // The cache may lag a Job we just created: only the API can say it is gone.
      try {
        job = await this.options.client.get<V1Job>(resourcePath(JOBS, ns, name));
      } catch (err) {
        if (err instanceof KubeApiError && err.notFound) return { name, state: "absent" };
        throw err;
      }
    }
    // Someone else's Job under the attempt's name: its termination message could name any version as a
    // candidate that passed. Never adopted nor read; once we tried to create ours (Training) the attempt
    // fails visibly and the next one takes a new name.
    if (!controlledBy(job as KubeObject, md as KubeObject)) {
      if (!expected) return undefined;
      return {
        name,
        state: "failed",
        reason: "NameConflict",
        message: `Job ${ns}/${name} already exists and is ${describeController(job as KubeObject, md.metadata.name!)}; its result is not read`,
      };
    }
    const conditions = job.status?.conditions ?? [];
    const failed = conditions.find((c) => c.type === "Failed" && c.status === "True");
    const complete = conditions.find((c) => c.type === "Complete" && c.status === "True");
    const pods = await this.jobPods(ns, name);
    const node = pods.find((p) => p.spec?.nodeName)?.spec?.nodeName;
    if (!failed && !complete) return { name, state: "running", ...(node ? { node } : {}) };
    const reports = [];
    const errors: string[] = [];
    for (const pod of pods) {
      const message = pod.status?.containerStatuses?.find((c) => c.name === TRAIN_CONTAINER)?.state?.terminated?.message;
      if (!message) continue;
      const parsed = parseCandidateReport(message);
      if ("report" in parsed && pod.status?.phase === "Succeeded") reports.push(parsed.report);
      else if ("error" in parsed) errors.push(`${pod.metadata?.name}: ${parsed.error}`);
    }
    if (failed) return { name, state: "failed", reason: failed.reason, message: failed.message, errors, ...(node ? { node } : {}) };
    return { name, state: "succeeded", reports, errors, ...(node ? { node } : {}) };
  }

  private async jobPods(namespace: string, jobName: string): Promise<V1Pod[]> {
    const list = await this.options.client.get<KubeList<V1Pod>>(resourcePath(PODS, namespace), { query: { labelSelector: `${JOB_NAME_LABEL}=${jobName}` } });
    return list.items;
  }

  private observeRollout(md: ResolvedModelDeployment): RolloutObservation {
    return rolloutObservation(this.options.caches.deployments.get(`${md.metadata.namespace}/${servingNames(md.metadata.name!).deployment}`));
  }
}

/** The serving Deployment as the loop sees it: the version its server is pinned to, and whether it is rolled out. */
export function rolloutObservation(dep: V1Deployment | undefined): RolloutObservation {
  const args = dep?.spec?.template?.spec?.containers?.find((c) => c.name === "server")?.args ?? [];
  const at = args.indexOf("--version");
  const progress = deploymentProgress(dep);
  return { ...(at >= 0 ? { pinnedVersion: args[at + 1] } : {}), ready: progress.ready, message: progress.message };
}

const OWNED_CONDITIONS = new Set(["Retraining", "CandidateReady", "LoopHalted"]);

export function owned(status: ModelDeploymentStatus): LoopOwnedStatus {
  const out: LoopOwnedStatus = { conditions: status.conditions ?? [] };
  for (const k of LOOP_OWNED_FIELDS) if (status[k] !== undefined) Object.assign(out, { [k]: status[k] });
  return out;
}

/** The latest status with the loop's fields replaced: the other reconcilers' fields and conditions are kept. */
export function mergeOwned(latest: ModelDeploymentStatus, step: LoopOwnedStatus): ModelDeploymentStatus {
  const next: ModelDeploymentStatus = { ...latest };
  for (const k of LOOP_OWNED_FIELDS) {
    if (step[k] === undefined) delete next[k];
    else Object.assign(next, { [k]: step[k] });
  }
  // Order kept, so an unchanged list compares equal and costs no write.
  const ours = new Map(step.conditions.filter((c) => OWNED_CONDITIONS.has(c.type)).map((c) => [c.type, c]));
  const conditions = (latest.conditions ?? []).map((c) => ours.get(c.type) ?? c);
  for (const [type, c] of ours) if (!conditions.some((k) => k.type === type)) conditions.push(c);
  next.conditions = conditions;
  return next;
}
