// What the demo applies, as pure functions of the shipped examples: the model store claim, the training data
// ConfigMap, the first training Job (placed by the example's retraining spec) and the ModelDeployment.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1ResourceRequirements } from "@kubernetes/client-node";
import { parse } from "yaml";
import { applyModelDeploymentDefaults, parseStorageUri, type ModelDeployment, type ResolvedModelDeployment } from "../api/index.js";
import { WEATHER_FEATURES, WEATHER_LABEL } from "./weather-data.js";

export const DEMO_NAMESPACE = "default";
export const TRAINING_DATA_CONFIGMAP = "weather-seattle-training";
export const TRAINING_DATA_FILE = "seattle-train.csv";
export const TRAINING_JOB = "weather-train-initial";
export const TRAINING_CONTAINER = "train";
/** Where pvc://<claim> is mounted in the Job, as in the serving pods (`--pvc-mount-root`). */
const PVC_MOUNT_ROOT = "/mnt/models";
const DEMO_LABELS = { "app.kubernetes.io/part-of": "ballast", "app.kubernetes.io/instance": "ballast-demo" };

export interface DemoExamples {
  modelStoreClaim: V1PersistentVolumeClaim;
  modelDeployment: ModelDeployment;
}

export function readExamples(repoRoot: string): DemoExamples {
  const read = <T>(file: string): T => {
    const path = join(repoRoot, "examples", file);
    try {
      return parse(readFileSync(path, "utf8")) as T;
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { modelStoreClaim: read("model-store-pvc.yaml"), modelDeployment: read("weather-classifier.yaml") };
}

/** The example's storage URI must be a claim: the Job writes into it and the serving pods read it. */
export function modelStoreOf(md: ModelDeployment): { uri: string; claim: string } {
  const location = parseStorageUri(md.spec.model.storageUri, "examples/weather-classifier.yaml spec.model.storageUri");
  if (location.scheme !== "pvc") throw new Error(`examples/weather-classifier.yaml: the demo needs a pvc:// model store, got ${md.spec.model.storageUri}`);
  return { uri: md.spec.model.storageUri, claim: location.claimName };
}

export function trainingDataConfigMap(csv: string): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: TRAINING_DATA_CONFIGMAP, namespace: DEMO_NAMESPACE, labels: DEMO_LABELS },
    data: { [TRAINING_DATA_FILE]: csv },
  };
}

export interface TrainingJobOptions {
  image: string;
  epochs: number;
}

/**
 * The first version's training Job, placed and sized the way the example's `spec.retraining` places the
 * operator's retraining Jobs: GPU limit, tolerations and nodeSelector, so the real scheduler puts it on a GPU node.
 */
export function trainingJob(example: ModelDeployment, opts: TrainingJobOptions): V1Job {
  const spec: ResolvedModelDeployment["spec"] = applyModelDeploymentDefaults(example.spec);
  const retraining = spec.retraining;
  const hp = retraining.hyperparameters;
  const store = modelStoreOf(example);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: TRAINING_JOB, namespace: DEMO_NAMESPACE, labels: { ...DEMO_LABELS, "app.kubernetes.io/component": "training" } },
    spec: {
      // One attempt: a failure is shown at once with its log rather than retried.
      backoffLimit: 0,
      activeDeadlineSeconds: retraining.activeDeadlineSeconds,
      template: {
        metadata: { labels: { ...DEMO_LABELS, "app.kubernetes.io/component": "training" } },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          nodeSelector: retraining.nodeSelector,
          tolerations: retraining.tolerations,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: TRAINING_CONTAINER,
              image: opts.image,
              args: [
                "train",
                "--data", `/data/${TRAINING_DATA_FILE}`,
                "--label", WEATHER_LABEL,
                "--features", WEATHER_FEATURES.join(","),
                "--store", store.uri,
                "--model", spec.model.name,
                "--epochs", String(opts.epochs),
                "--batch-size", String(hp.batchSize),
                "--learning-rate", String(hp.learningRate),
                "--patience", String(hp.earlyStoppingPatience),
                "--l2", String(hp.l2),
                "--holdout", String(retraining.data.holdoutFraction),
                "--pvc-mount-root", PVC_MOUNT_ROOT,
              ],
              env: [{ name: "TMPDIR", value: "/run/ballast/tmp" }],
              resources: retraining.resources as V1ResourceRequirements | undefined,
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: [
                { name: "training-data", mountPath: "/data", readOnly: true },
                { name: "model-store", mountPath: `${PVC_MOUNT_ROOT}/${store.claim}` },
                { name: "tmp", mountPath: "/run/ballast/tmp" },
              ],
            },
          ],
          volumes: [
            { name: "training-data", configMap: { name: TRAINING_DATA_CONFIGMAP } },
            { name: "model-store", persistentVolumeClaim: { claimName: store.claim } },
            { name: "tmp", emptyDir: {} },
          ],
        },
      },
    },
  };
}

export interface DemoModelDeploymentOptions {
  windowSize: number;
  scrapeInterval: string;
}

/**
 * The example ModelDeployment with two demo choices: windows bounded by size only (a wall-clock bound could
 * split the Seattle window in two mid-traffic) and a short scrape interval so the operator reports within
 * seconds. spec.model.version stays unset, as in the example: the newest version in the store is served,
 * which is the one the Job just wrote.
 */
export function demoModelDeployment(example: ModelDeployment, opts: DemoModelDeploymentOptions): ModelDeployment {
  const md = structuredClone(example);
  md.metadata = { ...md.metadata, namespace: DEMO_NAMESPACE, labels: { ...md.metadata.labels, ...DEMO_LABELS } };
  md.spec.monitoring = { ...md.spec.monitoring, window: { size: opts.windowSize }, scrapeInterval: opts.scrapeInterval };
  if (md.spec.policy?.minSamples !== undefined && md.spec.policy.minSamples > opts.windowSize) md.spec.policy = { ...md.spec.policy, minSamples: opts.windowSize };
  return md;
}
