// What the demo applies, as pure functions of the shipped examples: the model store claim, the training data
// ConfigMap, the first versions' training Jobs (placed by each example's retraining spec) and the ModelDeployments.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1ResourceRequirements, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { parse } from "yaml";
import { applyModelDeploymentDefaults, parseStorageUri, type ModelDeployment, type ResolvedModelDeployment } from "../api/index.js";
import { WEATHER_FEATURES, WEATHER_LABEL } from "./weather-data.js";

export const DEMO_NAMESPACE = "default";
export const TRAINING_DATA_CONFIGMAP = "weather-seattle-training";
export const TRAINING_DATA_FILE = "seattle-train.csv";
export const TRAINING_JOB = "weather-train-initial";
export const PENGUIN_TRAINING_JOB = "penguins-train-initial";
export const TRAINING_CONTAINER = "train";
/** Where pvc://<claim> is mounted in the Job, as in the serving pods (`--pvc-mount-root`). */
const PVC_MOUNT_ROOT = "/mnt/models";
const DEMO_LABELS = { "app.kubernetes.io/part-of": "ballast", "app.kubernetes.io/instance": "ballast-demo" };
/** Selects the demo's own training Jobs and their pods (not the operator's retraining Jobs). */
export const TRAINING_SELECTOR = "app.kubernetes.io/instance=ballast-demo,app.kubernetes.io/component=training";

export const EXAMPLE_FILES = {
  modelStoreClaim: "examples/model-store-pvc.yaml",
  modelDeployment: "examples/weather-classifier.yaml",
  penguinDeployment: "examples/penguin-sex-classifier.yaml",
} as const;

export interface DemoExamples {
  modelStoreClaim: V1PersistentVolumeClaim;
  /** The weather classifier. */
  modelDeployment: ModelDeployment;
  /** The penguin sex classifier with the closed loop on. */
  penguinDeployment: ModelDeployment;
}

export function readExamples(repoRoot: string): DemoExamples {
  const read = <T>(file: string): T => {
    const path = join(repoRoot, file);
    try {
      return parse(readFileSync(path, "utf8")) as T;
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    modelStoreClaim: read(EXAMPLE_FILES.modelStoreClaim),
    modelDeployment: read(EXAMPLE_FILES.modelDeployment),
    penguinDeployment: read(EXAMPLE_FILES.penguinDeployment),
  };
}

/** The example's storage URI must be a claim: the Job writes into it and the serving pods read it. */
export function modelStoreOf(md: ModelDeployment, file: string = EXAMPLE_FILES.modelDeployment): { uri: string; claim: string } {
  const location = parseStorageUri(md.spec.model.storageUri, `${file} spec.model.storageUri`);
  if (location.scheme !== "pvc") throw new Error(`${file}: the demo needs a pvc:// model store, got ${md.spec.model.storageUri}`);
  return { uri: md.spec.model.storageUri, claim: location.claimName };
}

/**
 * The original training data of the penguin example: the first pvc:// file of spec.retraining.data.sources, in
 * the model store's claim (the retraining Job mounts that claim and nothing else).
 */
export function penguinTrainingDataOf(md: ModelDeployment): { uri: string; claim: string; path: string } {
  const file = EXAMPLE_FILES.penguinDeployment;
  const store = modelStoreOf(md, file);
  for (const source of md.spec.retraining?.data?.sources ?? []) {
    const location = parseStorageUri(source.uri, `${file} spec.retraining.data.sources`);
    if (location.scheme === "pvc" && location.claimName === store.claim) return { uri: source.uri, claim: location.claimName, path: location.path };
  }
  throw new Error(`${file}: spec.retraining.data.sources needs a pvc://${store.claim}/… file (the original training data, in the model store's claim)`);
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

export interface FirstVersionJobInput {
  /** The Job's name. */
  name: string;
  /** The example whose spec.retraining places and sizes the Job, and whose store receives the version. */
  example: ModelDeployment;
  exampleFile: string;
  /** `--data` as the container sees it: a file in a mounted ConfigMap, or a pvc:// URI in the store's claim. */
  data: string;
  /** A ConfigMap mounted at /data (the weather rows); none when the data is in the claim. */
  dataConfigMap?: string;
  label: string;
  features: readonly string[];
  image: string;
  epochs: number;
  seed?: number;
}

/** The weather classifier's first version: Seattle days from a ConfigMap. */
export function trainingJob(example: ModelDeployment, options: TrainingJobOptions): V1Job {
  return firstVersionJob({
    name: TRAINING_JOB,
    example,
    exampleFile: EXAMPLE_FILES.modelDeployment,
    data: `/data/${TRAINING_DATA_FILE}`,
    dataConfigMap: TRAINING_DATA_CONFIGMAP,
    label: WEATHER_LABEL,
    features: WEATHER_FEATURES,
    image: options.image,
    epochs: options.epochs,
  });
}

/**
 * A first version's training Job, placed and sized the way the example's `spec.retraining` places the
 * operator's retraining Jobs: GPU limit, tolerations and nodeSelector, so the real scheduler puts it on a GPU node.
 */
export function firstVersionJob(input: FirstVersionJobInput): V1Job {
  const spec: ResolvedModelDeployment["spec"] = applyModelDeploymentDefaults(input.example.spec);
  const retraining = spec.retraining;
  const hp = retraining.hyperparameters;
  const store = modelStoreOf(input.example, input.exampleFile);
  const labels = { ...DEMO_LABELS, "app.kubernetes.io/component": "training" };
  const volumeMounts: V1VolumeMount[] = [
    { name: "model-store", mountPath: `${PVC_MOUNT_ROOT}/${store.claim}` },
    { name: "tmp", mountPath: "/run/ballast/tmp" },
  ];
  const volumes: V1Volume[] = [
    { name: "model-store", persistentVolumeClaim: { claimName: store.claim } },
    { name: "tmp", emptyDir: {} },
  ];
  if (input.dataConfigMap) {
    volumeMounts.unshift({ name: "training-data", mountPath: "/data", readOnly: true });
    volumes.unshift({ name: "training-data", configMap: { name: input.dataConfigMap } });
  }
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: input.name, namespace: DEMO_NAMESPACE, labels },
    spec: {
      // One attempt: a failure is shown at once with its log rather than retried.
      backoffLimit: 0,
      activeDeadlineSeconds: retraining.activeDeadlineSeconds,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          nodeSelector: retraining.nodeSelector,
          tolerations: retraining.tolerations,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: TRAINING_CONTAINER,
              image: input.image,
              args: [
                "train",
                "--data",
                input.data,
                "--label",
                input.label,
                "--features",
                input.features.join(","),
                "--store",
                store.uri,
                "--model",
                spec.model.name,
                "--epochs",
                String(input.epochs),
                "--batch-size",
                String(hp.batchSize),
                "--learning-rate",
                String(hp.learningRate),
                "--patience",
                String(hp.earlyStoppingPatience),
                "--l2",
                String(hp.l2),
                "--holdout",
                String(retraining.data.holdoutFraction),
                ...(input.seed !== undefined ? ["--seed", String(input.seed)] : []),
                "--pvc-mount-root",
                PVC_MOUNT_ROOT,
              ],
              env: [{ name: "TMPDIR", value: "/run/ballast/tmp" }],
              resources: retraining.resources as V1ResourceRequirements | undefined,
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
              volumeMounts,
            },
          ],
          volumes,
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
export function demoModelDeployment(example: ModelDeployment, options: DemoModelDeploymentOptions): ModelDeployment {
  const md = structuredClone(example);
  md.metadata = { ...md.metadata, namespace: DEMO_NAMESPACE, labels: { ...md.metadata.labels, ...DEMO_LABELS } };
  md.spec.monitoring = { ...md.spec.monitoring, window: { size: options.windowSize }, scrapeInterval: options.scrapeInterval };
  if (md.spec.policy?.minSamples !== undefined && md.spec.policy.minSamples > options.windowSize)
    md.spec.policy = { ...md.spec.policy, minSamples: options.windowSize };
  return md;
}

export interface DemoPenguinOptions {
  scrapeInterval: string;
  /** Rows per monitoring window (the example's 25 is too many for the demo's Gentoo birds, see closed-loop.ts). */
  windowSize: number;
  /** spec.promotion.shadow for the demo's traffic (the operator's defaults are sized for production traffic). */
  shadow: NonNullable<NonNullable<ModelDeployment["spec"]["promotion"]>["shadow"]>;
}

/**
 * The penguin example in the demo's namespace, scraped every `scrapeInterval` (the loop reacts sooner), with
 * windows of `windowSize` rows and a shadow evaluation before promotion bounded for the demo's traffic.
 */
export function demoPenguinDeployment(example: ModelDeployment, options: DemoPenguinOptions): ModelDeployment {
  const md = structuredClone(example);
  md.metadata = { ...md.metadata, namespace: DEMO_NAMESPACE, labels: { ...md.metadata.labels, ...DEMO_LABELS } };
  md.spec.monitoring = { ...md.spec.monitoring, scrapeInterval: options.scrapeInterval, window: { ...md.spec.monitoring.window, size: options.windowSize } };
  if (md.spec.policy?.minSamples !== undefined && md.spec.policy.minSamples > options.windowSize)
    md.spec.policy = { ...md.spec.policy, minSamples: options.windowSize };
  md.spec.promotion = { ...md.spec.promotion, shadow: options.shadow };
  return md;
}
