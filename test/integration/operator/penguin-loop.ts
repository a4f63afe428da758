// The closed loop's world on the local cluster, shared by the loop and shadow suites: a model store claim holding
// a penguin sex classifier v1 trained on Adelie birds and its training data, a ModelDeployment that retrains on
// a GPU node when Gentoo birds make the accuracy drop, and its Service, ready for traffic.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect } from "vitest";
import { PENGUIN_FEATURES, PENGUIN_LABEL, penguinsCsv, type Penguin } from "../../../src/demo/penguins-data.js";
import { sendTrafficWithFeedback, waitForService, type TrafficResult } from "../../../src/demo/traffic.js";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { SIDECAR_MONITORING_PORT } from "../../../src/operator/serving/desired-state.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import {
  applyYaml,
  createLocalClaim,
  installCrdAndRbac,
  kubectlJson,
  operatorKubeconfig,
  startOperator,
  trainInto,
  type OperatorProcess,
} from "./operator-process.js";

export const PENGUIN_WINDOW = 20;
export const PENGUIN_CLAIM = "models";
/** spec.policy.maxRetrainings.gpuSeconds: half an hour of the one GPU a retraining Job requests. */
export const PENGUIN_GPU_SECONDS = 1800;

/** A penguin suite's world: its own namespace holding the penguin store, and an operator under its own ServiceAccount watching only it. */
export interface PenguinSuite {
  namespace: string;
  storeDir: string;
  /** A scratch directory of the suite's own. */
  tmp: string;
  operator: OperatorProcess;
  /** Kills the operator (no clean stop) and starts a new one with the same identity, as a crash and a restart would. */
  restartOperator(): Promise<void>;
}

/** Registers the suite's beforeAll/afterAll; the fields are set once beforeAll has run. */
export function penguinSuite(namespacePrefix: string, training: readonly Penguin[]): PenguinSuite {
  const suite = {} as PenguinSuite;
  let removeNamespace: (() => Promise<void>) | undefined;
  let kubeconfig = "";
  const start = () => startOperator({ kubeconfig, args: ["--namespaces", suite.namespace] });
  beforeAll(async () => {
    await installCrdAndRbac();
    const ns = await createTestNamespace(namespacePrefix);
    removeNamespace = ns.remove;
    suite.namespace = ns.name;
    suite.storeDir = await preparePenguinStore(ns.name, training);
    suite.tmp = mkdtempSync(join(tmpdir(), `${namespacePrefix}-`));
    kubeconfig = operatorKubeconfig(suite.tmp);
    suite.operator = await start();
    suite.restartOperator = async () => {
      await suite.operator.kill();
      suite.operator = await start();
    };
  });
  afterAll(async () => {
    if (!removeNamespace) return;
    await kubectl(["delete", "md", "--all", "-n", suite.namespace, "--wait=true", "--timeout=60s"]);
    if (suite.operator) expect(await suite.operator.stop()).toBe(0);
    await removeNamespace();
  });
  return suite;
}

/** The claim with `store/` (penguin-sex v1) and `data/penguins-train.csv` (what v1 was trained on); returns the store's directory. */
export async function preparePenguinStore(namespace: string, training: readonly Penguin[]): Promise<string> {
  const claimDir = await createLocalClaim(namespace, PENGUIN_CLAIM);
  // The original training data lives beside the store, where the retraining Job reads it (spec.retraining.data).
  mkdirSync(join(claimDir, "data"), { recursive: true });
  const trainingCsv = join(claimDir, "data", "penguins-train.csv");
  writeFileSync(trainingCsv, penguinsCsv(training));
  const storeDir = join(claimDir, "store");
  trainInto(storeDir, trainingCsv, [
    "--model",
    "penguin-sex",
    "--version",
    "v1",
    "--label",
    PENGUIN_LABEL,
    "--features",
    PENGUIN_FEATURES.join(","),
    "--epochs",
    "60",
    "--seed",
    "3",
    "--max-trials",
    "1",
  ]);
  return storeDir;
}

/** Applies the ModelDeployment with `promotion`, waits until it is Ready, and returns its Service's URL once it answers. */
export async function deployPenguins(namespace: string, name: string, promotion: Record<string, unknown>): Promise<string> {
  await applyYaml(
    stringify({
      apiVersion: "ballast.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: { name, namespace },
      spec: {
        model: { name: "penguin-sex", storageUri: `pvc://${PENGUIN_CLAIM}/store` },
        serving: { replicas: 1, port: 8080 },
        monitoring: {
          task: "classification",
          labelField: PENGUIN_LABEL,
          features: PENGUIN_FEATURES.map((f) => ({ name: f, type: "numeric" })),
          window: { size: PENGUIN_WINDOW },
          drift: { method: "ks" },
          scrapeInterval: "1s",
        },
        policy: {
          minAccuracy: 0.75,
          minSamples: 15,
          minLabelledSamples: 15,
          consecutiveWindows: 2,
          cooldown: "10s",
          minStability: 0,
          maxRetrainings: { count: 3, period: "24h", gpuSeconds: PENGUIN_GPU_SECONDS },
        },
        retraining: {
          resources: { limits: { "nvidia.com/gpu": "1" } },
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
          nodeSelector: { "ballast.dev/accelerator": "nvidia-gpu" },
          backoffLimit: 0,
          data: { sources: [{ uri: `pvc://${PENGUIN_CLAIM}/data/penguins-train.csv` }] },
          hyperparameters: { epochs: 60 },
          search: { maxTrials: 2 },
        },
        promotion,
      },
    }),
  );
  expect((await kubectl(["wait", "--for=condition=Ready", `md/${name}`, "-n", namespace, "--timeout=120s"])).stdout).toContain("condition met");
  const svc = await kubectlJson<V1Service>(["get", "service", name, "-n", namespace]);
  const serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
  await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
  return serviceUrl;
}

/** Penguins through the Service, 5 rows a request, each request labelled right after its answer. */
export function sendPenguins(serviceUrl: string, rows: readonly Penguin[], idPrefix: string): Promise<TrafficResult> {
  return sendTrafficWithFeedback({
    serviceUrl,
    feedbackUrl: serviceUrl,
    model: "penguin-sex",
    days: rows,
    rowsPerRequest: 5,
    idPrefix,
    features: PENGUIN_FEATURES,
    label: PENGUIN_LABEL,
    feedbackPerRequest: true,
  });
}

export interface PenguinModelDeployment {
  metadata: { uid: string };
  status?: ModelDeploymentStatus;
}

/** Waits for the ModelDeployment to satisfy `test`; a timeout shows where the loop, the observation and the shadow stood. */
export function untilStatus(
  namespace: string,
  name: string,
  what: string,
  test: (m: PenguinModelDeployment) => boolean,
  timeoutMs: number,
): Promise<PenguinModelDeployment> {
  const get = () => kubectlJson<PenguinModelDeployment>(["get", "md", name, "-n", namespace]);
  return waitFor(
    what,
    async () => {
      const m = await get();
      return test(m) ? m : undefined;
    },
    timeoutMs,
    500,
  ).catch(async (err: Error) => {
    const s = (await get()).status;
    const shown = ["loop", "lastRetraining", "observation", "shadow"] as const;
    throw new Error([err.message, ...shown.map((k) => `${k}: ${JSON.stringify(s?.[k])}`)].join("\n"), { cause: err });
  });
}

/** The operator's Events about the ModelDeployment. */
export async function operatorEvents(namespace: string, name: string): Promise<{ reason: string; type: string; note: string }[]> {
  const res = await kubectl([
    "get",
    "events.events.k8s.io",
    "-n",
    namespace,
    "--field-selector",
    `reportingController=ballast.dev/operator,regarding.name=${name}`,
    "-o",
    "json",
  ]);
  return (JSON.parse(res.stdout) as { items: { reason: string; type: string; note: string }[] }).items;
}

/** The ModelDeployment's pods of one component: serving or shadow. */
export async function componentPods(namespace: string, name: string, component: "serving" | "shadow"): Promise<V1Pod[]> {
  const selector = `ballast.dev/model-deployment=${name},app.kubernetes.io/component=${component}`;
  return (await kubectlJson<{ items: V1Pod[] }>(["get", "pods", "-n", namespace, "-l", selector])).items;
}

/** The shadow pods pinned to `version` and not on their way out (the candidate's pods may still be terminating when the previous version takes the shadow). */
export async function shadowPodsOn(namespace: string, name: string, version: string): Promise<V1Pod[]> {
  const pods = await componentPods(namespace, name, "shadow");
  return pods.filter(
    (p) => !p.metadata?.deletionTimestamp && p.spec!.containers.some((c) => c.name === "server" && c.args?.join(" ").includes(`--version ${version}`)),
  );
}

/** What a serving pod's sidecar answers on GET /v1/mirror (its monitoring port): where it mirrors to. */
export async function mirrorOf(pod: V1Pod): Promise<{ version: string; targets: string[] }> {
  const res = await fetch(`http://${pod.status!.podIP}:${SIDECAR_MONITORING_PORT}/v1/mirror`);
  return ((await res.json()) as { mirror: { version: string; targets: string[] } }).mirror;
}

/**
 * The one serving pod, once the pod a rollout replaced is gone: while it drains for its shutdown delay it still
 * answers through the Service, and feedback for its answers would reach the new pod, which never saw those requests.
 */
export function soleServingPod(namespace: string, name: string): Promise<V1Pod> {
  return waitFor(
    "the replaced serving pod gone",
    async () => {
      const pods = await componentPods(namespace, name, "serving");
      return pods.length === 1 && !pods[0]!.metadata?.deletionTimestamp ? pods[0] : undefined;
    },
    120_000,
  );
}
