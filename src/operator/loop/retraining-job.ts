// What a retraining attempt runs: a pure function from the spec and the attempt to the batch/v1 Job
// (`ballast train` on the original data plus the feedback logged since the serving version went live).
import { createHash } from "node:crypto";
import type { V1EnvVar, V1Job, V1ResourceRequirements } from "@kubernetes/client-node";
import { defaultAccuracyMetric, parseStorageUri, type ResolvedModelDeployment } from "../../api/index.js";
import {
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_MODEL,
  LABEL_MODEL_DEPLOYMENT,
  LABEL_NAME,
  MANAGED_BY,
  PVC_MOUNT_ROOT,
  SCRATCH_DIR,
  SERVING_UID,
  modelVolume,
  ownerReference,
  pruneUndefined,
  restrictedContainerSecurity,
} from "../serving/desired-state.js";
import { storeEnv, storeVolume } from "../store-env.js";

export const LABEL_ATTEMPT = "ballast.dev/retraining-attempt";
export const TRAIN_CONTAINER = "train";
export const TERMINATION_MESSAGE_PATH = "/dev/termination-log";
/** The sidecars' durable request logs, one directory per pod, under the model's directory in the store. */
export const FEEDBACK_LOG_DIR = "_log";

/** Deterministic: a restarted operator finds the Job it created instead of making a twin. */
export function retrainingJobName(mdName: string, attempt: number): string {
  return `${mdName}-retrain-${attempt}`;
}

/**
 * The candidate's version name: deterministic per attempt (a retried pod cannot write a second version)
 * and unique per ModelDeployment, since several may share one model directory (staging, production).
 */
export function candidateVersionName(md: ResolvedModelDeployment, attempt: number): string {
  const owner = createHash("sha256").update(`${md.metadata.namespace}/${md.metadata.name}/${md.metadata.uid}`).digest("hex").slice(0, 6);
  return `r${attempt}-${owner}`;
}

/**
 * Where the Job reads the sidecars' logs: `<store>/<model>/_log` (on s3://, the segments the sidecars shipped there).
 * http(s) stores keep no log the Job can read: their sidecars log to an emptyDir.
 */
export function feedbackLogUri(md: ResolvedModelDeployment): string | undefined {
  const uri = md.spec.model.storageUri;
  if (!uri.startsWith("pvc://") && !uri.startsWith("file://") && !uri.startsWith("s3://")) return undefined;
  return `${uri.replace(/\/+$/, "")}/${md.spec.model.name}/${FEEDBACK_LOG_DIR}`;
}

export interface RetrainingJobInput {
  attempt: number;
  /** The serving version the Job fine-tunes and compares against. */
  fromVersion: string;
  /** Feedback logged before this (the serving version going live) belongs to an older regime. */
  feedbackSince: string;
  /** The Ballast image when spec.retraining.image and spec.serving.image are unset. */
  defaultImage: string;
  /** Stop the Job sooner than spec.retraining.activeDeadlineSeconds: what the GPU budget has left for it. */
  maxSeconds?: number;
}

/** Pods a retraining Job runs at once: each trains a share of the trials. */
export function retrainingParallelism(md: ResolvedModelDeployment): number {
  return Math.min(md.spec.retraining.search.parallelism, md.spec.retraining.search.maxTrials);
}

/** A device-plugin GPU resource: nvidia.com/gpu, amd.com/gpu, … */
const GPU_RESOURCE = /(^|\/)gpu$/;

/**
 * GPUs a retraining Job holds while it runs: what each pod's train container requests (limits win, as the
 * device plugins require them equal) times the pods running at once. Whole devices: fractions are not scheduled.
 */
export function retrainingGpus(md: ResolvedModelDeployment): number {
  const { limits = {}, requests = {} } = (md.spec.retraining.resources ?? {}) as { limits?: Record<string, unknown>; requests?: Record<string, unknown> };
  let perPod = 0;
  for (const key of new Set([...Object.keys(limits), ...Object.keys(requests)])) {
    if (!GPU_RESOURCE.test(key)) continue;
    const n = Number(limits[key] ?? requests[key]);
    if (Number.isFinite(n) && n > 0) perPod += n;
  }
  return perPod * retrainingParallelism(md);
}

export function desiredRetrainingJob(md: ResolvedModelDeployment, input: RetrainingJobInput): V1Job {
  const name = md.metadata.name!;
  const r = md.spec.retraining;
  const m = md.spec.monitoring;
  const hp = r.hyperparameters;
  const store = modelVolume(parseStorageUri(md.spec.model.storageUri, "spec.model.storageUri"), { readOnly: false });
  const identity = storeVolume(md);
  const feedback = r.data.includeFeedback ? feedbackLogUri(md) : undefined;
  const parallelism = retrainingParallelism(md);
  const labels = {
    [LABEL_NAME]: "ballast",
    [LABEL_INSTANCE]: name,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_MODEL]: md.spec.model.name,
    [LABEL_MODEL_DEPLOYMENT]: name,
    [LABEL_COMPONENT]: "retraining",
    [LABEL_ATTEMPT]: String(input.attempt),
  };
  const args = [
    "train",
    "--store",
    md.spec.model.storageUri,
    "--model",
    md.spec.model.name,
    "--from-version",
    input.fromVersion,
    "--version",
    candidateVersionName(md, input.attempt),
    "--candidate",
    ...(r.data.sources?.length ? ["--data", ...r.data.sources.map((s) => s.uri)] : ["--data-from-parent"]),
    ...(feedback ? ["--feedback", feedback, "--feedback-since", input.feedbackSince] : []),
    ...(r.data.maxFeedbackRows !== undefined ? ["--max-feedback-rows", String(r.data.maxFeedbackRows)] : []),
    "--holdout",
    String(r.data.holdoutFraction),
    "--metric",
    m.accuracyMetric ?? defaultAccuracyMetric(m.task),
    "--epochs",
    String(hp.epochs),
    "--batch-size",
    String(hp.batchSize),
    "--learning-rate",
    String(hp.learningRate),
    "--patience",
    String(hp.earlyStoppingPatience),
    "--l2",
    String(hp.l2),
    "--seed",
    String(input.attempt),
    "--max-trials",
    String(r.search.maxTrials),
    "--trial-shards",
    String(parallelism),
    "--termination-message-path",
    TERMINATION_MESSAGE_PATH,
    "--pvc-mount-root",
    PVC_MOUNT_ROOT,
    ...(r.args ?? []),
  ];
  const userEnv = (r.env ?? []) as V1EnvVar[];
  // Scratch space, and the s3:// store's endpoint and credentials (the Job writes the candidate there).
  const ownEnv: V1EnvVar[] = [{ name: "TMPDIR", value: SCRATCH_DIR }, ...storeEnv(md)];
  const job: V1Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: retrainingJobName(name, input.attempt), namespace: md.metadata.namespace!, labels, ownerReferences: [ownerReference(md)] },
    spec: {
      // Each index trains its share of the trials and reports its best; the operator picks among them.
      completionMode: "Indexed",
      completions: parallelism,
      parallelism,
      backoffLimit: r.backoffLimit,
      activeDeadlineSeconds: input.maxSeconds !== undefined ? Math.min(r.activeDeadlineSeconds, input.maxSeconds) : r.activeDeadlineSeconds,
      ttlSecondsAfterFinished: r.ttlSecondsAfterFinished,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: r.serviceAccountName,
          // `ballast train` never calls the Kubernetes API.
          automountServiceAccountToken: false,
          priorityClassName: r.priorityClassName,
          nodeSelector: r.nodeSelector,
          tolerations: r.tolerations,
          affinity: r.affinity,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: SERVING_UID,
            runAsGroup: SERVING_UID,
            fsGroup: SERVING_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: TRAIN_CONTAINER,
              image: r.image ?? md.spec.serving.image ?? input.defaultImage,
              imagePullPolicy: r.imagePullPolicy,
              command: r.command,
              args,
              env: [...ownEnv, ...userEnv.filter((e) => !ownEnv.some((d) => d.name === e.name))],
              resources: r.resources as V1ResourceRequirements | undefined,
              terminationMessagePath: TERMINATION_MESSAGE_PATH,
              // A crash before `ballast train` writes its result still tells the operator why (the log's tail).
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: restrictedContainerSecurity,
              volumeMounts: [{ name: "tmp", mountPath: SCRATCH_DIR }, ...(store ? [store.mount] : []), ...(identity ? [identity.mount] : [])],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: {} }, ...(store ? [store.volume] : []), ...(identity ? [identity.volume] : [])],
        },
      },
    },
  };
  return pruneUndefined(job);
}
