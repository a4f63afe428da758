// Loop efficacy benchmark: one penguin stream (familiar Adelie birds, then Gentoo birds — the shift that really
// degrades a sex classifier trained on Adelie birds) replayed in lockstep, window by window, through one local
// cluster and one operator to three ModelDeployments, each its own serving pod and model store: never retrain,
// retrain every K windows (built from the operator's own policy), and Ballast's policy as
// test/integration/operator/loop.test.ts uses it. A fourth runs Ballast's policy on a stationary stream (Adelie
// birds only): it must start no Job. A fifth runs Ballast's policy on the shifted stream with every window's labels
// sent 3 windows late, so the operator judges each window before its labels: on the label-free estimate where
// the rows lie within the reference's range, else on drift.
// Prints per variant the mean windowed accuracy (the traffic's own answers), windows from onset to detection,
// trigger-to-promotion time, Jobs started and GPU-seconds, then the ratios; then the estimate error
// |estimated − realised accuracy| per window, and the detection delay with labels D windows late: the label-free
// estimate against waiting for the labels (the policy replayed on the never-retrained variant's windows).
// Run: make build && node bench/loop/run.ts [--pace-s 20] [--period-windows 2] [--settle-s 120] [--json out.json]
//      (uses $BENCH_KUBECONFIG's `ballast dev` cluster if set, else starts one and stops it after)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { HistoryEntry, ModelDeploymentStatus } from "../../src/api/index.js";

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const ballast = path.join(repo, "bin", "ballast");

const { values: flags } = parseArgs({
  options: {
    "pace-s": { type: "string", default: "20" },
    "period-windows": { type: "string", default: "2" },
    "settle-s": { type: "string", default: "120" },
    json: { type: "string" },
  },
});
const paceMs = Number(flags["pace-s"]) * 1000;
const periodWindows = Number(flags["period-windows"]);
const settleMs = Number(flags["settle-s"]) * 1000;
if (!(paceMs >= 5000) || !Number.isInteger(periodWindows) || periodWindows < 1 || !(settleMs >= 0)) {
  console.error("usage: node bench/loop/run.ts [--pace-s 20 (≥ 5)] [--period-windows 2] [--settle-s 120] [--json out.json]");
  process.exit(2);
}

// The demo's data and traffic, compiled (Node runs this file by stripping types; src/ imports need the build).
const penguins = (await import(path.join(repo, "dist/demo/penguins-data.js"))) as typeof import("../../src/demo/penguins-data.js");
const traffic = (await import(path.join(repo, "dist/demo/traffic.js"))) as typeof import("../../src/demo/traffic.js");
const shuffle = (await import(path.join(repo, "dist/training/split.js"))) as typeof import("../../src/training/split.js");
const policyRules = (await import(path.join(repo, "dist/monitoring/policy.js"))) as typeof import("../../src/monitoring/policy.js");
type Penguin = import("../../src/demo/penguins-data.js").Penguin;

const NS = "bench-loop";
const CLAIM = "models";
const MODEL = "penguin-sex";
const WINDOW = 20;
const ROWS_PER_REQUEST = 5;
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;
const say = (line: string) => console.error(`${elapsed()}  ${line}`);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const loadAtStart = load();

// ---------------------------------------------------------------- the API objects read

interface Meta {
  name: string;
  uid?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
}
interface MD {
  metadata: Meta;
  status?: ModelDeploymentStatus;
}
interface Pod {
  metadata: Meta;
  spec?: { nodeName?: string; containers: { resources?: { limits?: Record<string, string>; requests?: Record<string, string> } }[] };
  status?: {
    phase?: string;
    containerStatuses?: { state?: { running?: { startedAt?: string }; terminated?: { startedAt?: string; finishedAt?: string; exitCode?: number } } }[];
  };
}

// ---------------------------------------------------------------- cluster, operator

let clusterDir: string;
let ownCluster = false;
let kubeconfig = process.env.BENCH_KUBECONFIG;
if (kubeconfig) {
  clusterDir = path.dirname(kubeconfig);
  if (!fs.existsSync(path.join(clusterDir, "state.json"))) {
    console.error(
      `BENCH_KUBECONFIG must be a \`ballast dev\` cluster's kubeconfig (the model store is a directory of its PVC); ${clusterDir} has no state.json`,
    );
    process.exit(2);
  }
} else {
  clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), "benchloop-cluster-"));
  ownCluster = true;
  say(`starting a local cluster in ${clusterDir} (1 CPU node, 1 GPU node with nvidia.com/gpu 2)`);
  execFileSync(ballast, ["dev", "up", "--dir", clusterDir, "--nodes", "1", "--gpu-nodes", "1"], { stdio: ["ignore", "ignore", "inherit"] });
  kubeconfig = path.join(clusterDir, "kubeconfig");
}
const kubectl = (JSON.parse(fs.readFileSync(path.join(clusterDir, "state.json"), "utf8")) as { kubectl?: string }).kubectl ?? "kubectl";
const kc = (args: string[], input?: string) =>
  execFileSync(kubectl, ["--kubeconfig", kubeconfig!, ...args], { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
// Ballast's own client (one keep-alive pool, plain kubeconfigs read without client-node), from the build.
const { KubeClient } = (await import(path.join(repo, "dist/kube/client.js"))) as typeof import("../../src/kube/client.js");
const api = await KubeClient.load(kubeconfig);

const children: ChildProcess[] = [];
let cleanedUp = false;
async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  if (!ownCluster) {
    // Delete while the operator runs, so it releases its finalizers.
    try {
      kc(["delete", "md", "--all", "-n", NS, "--wait=true", "--timeout=60s"]);
    } catch {
      // already gone, or the namespace never existed
    }
  }
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  if (ownCluster) execFileSync(ballast, ["dev", "down", "--dir", clusterDir, "--purge"], { stdio: "ignore" });
  else await api.delete(`/api/v1/namespaces/${NS}`).catch(() => undefined);
}
process.on("SIGINT", () => {
  void cleanup().finally(() => process.exit(130));
});

async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}

// ---------------------------------------------------------------- the variants

interface Variant {
  name: string;
  what: string;
  stream: "shifted" | "stationary";
  policy: Record<string, unknown>;
  promotion: Record<string, unknown>;
  /** Each window's labels are sent this many windows later, after that window's traffic (0: right after each answer). */
  labelDelayWindows?: number;
}

// Ballast's policy and promotion exactly as the closed-loop integration test runs them (windows of 20 rows).
const BALLAST_POLICY = { minAccuracy: 0.75, minSamples: 15, minLabelledSamples: 15, consecutiveWindows: 2, cooldown: "10s", minStability: 0 };
const BALLAST_PROMOTION = { observationWindows: 2, minImprovement: 0.05 };
// Retrain every K windows with the operator itself: every window violates (accuracy 1 and stability 1 are never
// both met) and the first trigger comes after K windows. After that the loop sets the cadence: it starts a Job on
// a trigger only when Stable, and after a successful attempt (Job, rollout, one observed window) it waits one
// cooldown more. A cooldown of (K − 1.25) windows (half a window for K = 1) is under K windows of the pace and lets
// that wait end before the K-th window after the last trigger. No rollback: a schedule deploys what it trains.
const periodicCooldownS = Math.max(1, Math.round(((periodWindows === 1 ? 0.5 : periodWindows - 1.25) * paceMs) / 1000));
/** How late the labels of the late-label variant come, in windows (issue 12: "labels delayed by 3 windows"). */
const LATE_LABELS_WINDOWS = 3;
const VARIANTS: Variant[] = [
  { name: "never", what: "never retrain", stream: "shifted", policy: { ...BALLAST_POLICY, maxRetrainings: { count: 0 } }, promotion: BALLAST_PROMOTION },
  {
    name: "periodic",
    what: `retrain every ${periodWindows} windows`,
    stream: "shifted",
    policy: {
      triggerOn: "any",
      minAccuracy: 1,
      minStability: 1,
      minSamples: 15,
      minLabelledSamples: 15,
      consecutiveWindows: periodWindows,
      cooldown: `${periodicCooldownS}s`,
      maxRetrainings: { count: 1000, period: "24h" },
    },
    promotion: { minImprovement: 0, observationWindows: 1, rollbackOnRegression: false },
  },
  { name: "ballast", what: "Ballast's policy", stream: "shifted", policy: BALLAST_POLICY, promotion: BALLAST_PROMOTION },
  { name: "ballast-stationary", what: "Ballast's policy, stationary stream", stream: "stationary", policy: BALLAST_POLICY, promotion: BALLAST_PROMOTION },
  {
    name: "ballast-late3",
    what: "Ballast's policy, labels 3 windows late",
    stream: "shifted",
    policy: BALLAST_POLICY,
    promotion: BALLAST_PROMOTION,
    labelDelayWindows: LATE_LABELS_WINDOWS,
  },
];

function modelDeployment(v: Variant): object {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: v.name, namespace: NS },
    spec: {
      // One store per variant: a retraining Job reads every serving pod's log under <store>/<model>/_log.
      model: { name: MODEL, storageUri: `pvc://${CLAIM}/${v.name}/store` },
      serving: { replicas: 1, port: 8080 },
      monitoring: {
        task: "classification",
        labelField: penguins.PENGUIN_LABEL,
        features: penguins.PENGUIN_FEATURES.map((f) => ({ name: f, type: "numeric" })),
        window: { size: WINDOW },
        drift: { method: "ks" },
        scrapeInterval: "1s",
      },
      policy: v.policy,
      retraining: {
        resources: { limits: { "nvidia.com/gpu": "1" } },
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        nodeSelector: { "ballast.dev/accelerator": "nvidia-gpu" },
        backoffLimit: 0,
        data: { sources: [{ uri: `pvc://${CLAIM}/data/penguins-train.csv` }] },
        hyperparameters: { epochs: 60 },
        search: { maxTrials: 2 },
      },
      promotion: v.promotion,
    },
  };
}

// ---------------------------------------------------------------- the streams

const split = penguins.splitPenguins(penguins.loadPenguins(), 2 * WINDOW);
const gentooWindows = Math.floor(split.gentoo.length / WINDOW);
const windowsOf = (birds: readonly Penguin[]) => Array.from({ length: Math.floor(birds.length / WINDOW) }, (_, i) => birds.slice(i * WINDOW, (i + 1) * WINDOW));
// Familiar birds (held back from training), then every full window of Gentoo birds; the onset is the first Gentoo window.
const shifted = windowsOf([...split.familiar, ...split.gentoo.slice(0, gentooWindows * WINDOW)]);
const onset = split.familiar.length / WINDOW;
// Stationary: the same number of windows, all Adelie birds never trained on — the held-back ones, replayed in
// passes, each pass in a new seeded order (only 146 Adelie birds have a recorded sex; 106 train the first version).
const stationaryBirds: Penguin[] = [...split.familiar];
for (let pass = 1; stationaryBirds.length < shifted.length * WINDOW; pass++) {
  stationaryBirds.push(...Array.from(shuffle.permutation(split.familiar.length, shuffle.seededRandom(100 + pass)), (i) => split.familiar[i]!));
}
const stationary = windowsOf(stationaryBirds).slice(0, shifted.length);

// ---------------------------------------------------------------- what the run records

interface WindowRecord {
  window: number;
  birds: string;
  sentAt: number;
  /** status.lastMetrics.windowEnd of this window (the time of its last row, by the sidecar). */
  windowEnd?: string;
  rows: number;
  correct: number;
  /** status.lastMetrics once the operator judged this window (absent: not judged within the pace). */
  judged?: { accuracy?: number; estimatedAccuracy?: number; verdict?: string; decidedBy?: string; samples: number; labelled: number };
  servingVersion?: string;
  phase?: string;
}
interface Attempt {
  attempt: number;
  /** status.loop.lastHandledTrigger when the attempt was first seen: the end of the window that triggered it. */
  trigger?: string;
  seenAt: number;
  lastRetraining?: ModelDeploymentStatus["lastRetraining"];
}
interface JobPod {
  variant: string;
  job: string;
  node?: string;
  gpus: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
}
interface Recorder {
  windows: WindowRecord[];
  attempts: Map<number, Attempt>;
  history: HistoryEntry[];
  status?: ModelDeploymentStatus;
  serviceUrl: string;
  lastJudgedEnd?: string;
  /** Labels not sent yet (late-label variant), one entry per window: request id and its rows' labels. */
  lateLabels: { id: string; labels: string[] }[][];
}
const rec = new Map<string, Recorder>(VARIANTS.map((v) => [v.name, { windows: [], attempts: new Map(), history: [], serviceUrl: "", lateLabels: [] }]));
const jobs = new Map<string, { variant: string; created: string }>();
const jobPods = new Map<string, JobPod>();

/** One look at the ModelDeployments, the retraining Jobs and their pods; keeps what later status writes overwrite. */
async function observe(): Promise<void> {
  const [mds, jobList, pods] = await Promise.all([
    api.get<{ items: MD[] }>(`/apis/ballast.dev/v1alpha1/namespaces/${NS}/modeldeployments`),
    api.get<{ items: { metadata: Meta }[] }>(`/apis/batch/v1/namespaces/${NS}/jobs?labelSelector=app.kubernetes.io%2Fcomponent%3Dretraining`),
    api.get<{ items: Pod[] }>(`/api/v1/namespaces/${NS}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dretraining`),
  ]);
  for (const md of mds.items) {
    const r = rec.get(md.metadata.name);
    if (!r || !md.status) continue;
    r.status = md.status;
    if (md.status.history) r.history = md.status.history;
    const attempt = md.status.loop?.attempt ?? 0;
    if (attempt > 0) {
      const a = r.attempts.get(attempt) ?? { attempt, trigger: md.status.loop?.lastHandledTrigger, seenAt: Date.now() };
      if (md.status.lastRetraining?.attempt === attempt) a.lastRetraining = md.status.lastRetraining;
      r.attempts.set(attempt, a);
    }
  }
  for (const j of jobList.items) {
    const variant = j.metadata.labels?.["ballast.dev/model-deployment"];
    if (variant) jobs.set(j.metadata.name, { variant, created: j.metadata.creationTimestamp ?? "" });
  }
  for (const p of pods.items) {
    const c = p.status?.containerStatuses?.[0]?.state;
    const limits = p.spec?.containers[0]?.resources?.limits ?? {};
    jobPods.set(p.metadata.uid!, {
      variant: p.metadata.labels?.["ballast.dev/model-deployment"] ?? "?",
      job: p.metadata.labels?.["batch.kubernetes.io/job-name"] ?? "?",
      node: p.spec?.nodeName,
      gpus: Number(limits["nvidia.com/gpu"] ?? 0),
      startedAt: c?.terminated?.startedAt ?? c?.running?.startedAt,
      finishedAt: c?.terminated?.finishedAt,
      exitCode: c?.terminated?.exitCode,
    });
  }
}

let observing = true;
async function observeLoop(): Promise<void> {
  while (observing) {
    await observe().catch((err: Error) => say(`observe: ${err.message}`));
    await sleep(1000);
  }
}

/**
 * Sends one window to one variant, 5 rows a request, each request labelled right after its answer — or, for a
 * late-label variant, the labels of the window `labelDelayWindows` back after this window's traffic. A request
 * that fails (a pod rolling over mid-window) is sent again under a new id, up to 15 s.
 */
async function sendWindow(v: Variant, r: Recorder, window: number, birds: readonly Penguin[]): Promise<WindowRecord> {
  const before = r.lastJudgedEnd;
  const late = (v.labelDelayWindows ?? 0) > 0;
  const w: WindowRecord = { window, birds: birds[0]!.species, sentAt: Date.now(), rows: 0, correct: 0 };
  const labels: { id: string; labels: string[] }[] = [];
  for (let b = 0; b < birds.length; b += ROWS_PER_REQUEST) {
    const rows = birds.slice(b, b + ROWS_PER_REQUEST);
    for (let attempt = 0; ; attempt++) {
      const idPrefix = `${v.name}-w${window}-r${b}-t${attempt}`;
      try {
        const sent = await traffic.sendTrafficWithFeedback({
          serviceUrl: r.serviceUrl,
          feedbackUrl: r.serviceUrl,
          model: MODEL,
          days: rows,
          rowsPerRequest: ROWS_PER_REQUEST,
          idPrefix,
          features: penguins.PENGUIN_FEATURES,
          label: penguins.PENGUIN_LABEL,
          feedbackPerRequest: true,
          withoutFeedback: late,
        });
        w.rows += sent.rows;
        w.correct += sent.correct;
        // One request per 5 rows: sendTrafficWithFeedback names it <idPrefix>-0.
        if (late) labels.push({ id: `${idPrefix}-0`, labels: rows.map((p) => p[penguins.PENGUIN_LABEL]!) });
        break;
      } catch (err) {
        if (attempt >= 30) throw new Error(`${v.name} window ${window}: ${(err as Error).message}`, { cause: err });
        await sleep(500);
      }
    }
  }
  if (late) {
    r.lateLabels.push(labels);
    // The labels of window (this − D) arrive now, after this window's traffic: the sidecar adds them to that
    // (closed) window, which the operator judged, on its estimate, D windows ago.
    if (r.lateLabels.length > v.labelDelayWindows!) await postLabels(r.serviceUrl, r.lateLabels.shift()!);
  }
  // The operator judges the newest closed window at each scrape (1 s); wait for it, but never past the pace.
  const judged = await waitUntil(
    `${v.name} window ${window} to be judged`,
    async () => {
      const md = await api.get<MD>(`/apis/ballast.dev/v1alpha1/namespaces/${NS}/modeldeployments/${v.name}`);
      const m = md.status?.lastMetrics;
      return m && m.windowEnd !== before ? md : undefined;
    },
    Math.max(2000, paceMs - 4000),
  ).catch(() => undefined);
  if (judged) {
    const m = judged.status!.lastMetrics!;
    r.lastJudgedEnd = m.windowEnd;
    w.windowEnd = m.windowEnd;
    w.judged = {
      samples: m.samples,
      labelled: m.labelledSamples ?? 0,
      ...(m.accuracy !== undefined ? { accuracy: m.accuracy } : {}),
      ...(m.estimatedAccuracy !== undefined ? { estimatedAccuracy: m.estimatedAccuracy } : {}),
      ...(m.verdict ? { verdict: m.verdict } : {}),
      ...(m.decidedBy ? { decidedBy: m.decidedBy } : {}),
    };
    w.servingVersion = judged.status!.servingVersion;
    w.phase = judged.status!.loop?.phase;
  }
  return w;
}

/** Posts a window's labels to the sidecar behind the Service, as a labelling pipeline that is late would. */
async function postLabels(serviceUrl: string, feedback: { id: string; labels: string[] }[]): Promise<void> {
  const url = `${serviceUrl}/v1/feedback`;
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ feedback }) });
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
}

/**
 * The window (1-based) at which `policy` would first trigger retraining on the never-retrained model's windows when
 * each window can only be judged `delay` windows after it closed — its labels arrive then — on its realised accuracy
 * (`by: "labels"`), or at once on its label-free estimate (`by: "estimate"`, no labels). Ballast's policy, evaluated by
 * the operator's own code (src/monitoring/policy.ts); the operator judges a window once, when it closes, so it cannot
 * wait for late labels itself: this replay is what a labels-only policy would do.
 */
function replayDetection(windows: readonly WindowRecord[], by: "labels" | "estimate", delay: number): number | undefined {
  const config: import("../../src/monitoring/policy.js").PolicyConfig = {
    ...policyRules.DEFAULT_POLICY,
    minSamples: BALLAST_POLICY.minSamples,
    minLabelledSamples: BALLAST_POLICY.minLabelledSamples,
    consecutiveWindows: BALLAST_POLICY.consecutiveWindows,
    cooldownMs: 10_000,
    triggerOn: "performance",
    datasetDrift: false,
    metrics: [{ metric: "accuracy", min: BALLAST_POLICY.minAccuracy }],
  };
  let state = policyRules.INITIAL_POLICY_STATE;
  for (let at = 1; at <= windows.length; at++) {
    const w = windows[at - 1 - (by === "labels" ? delay : 0)];
    if (!w) continue;
    const observation =
      by === "labels"
        ? { endMs: w.window * paceMs, samples: w.rows, labelledSamples: w.rows, metrics: { accuracy: w.correct / w.rows } }
        : { endMs: w.window * paceMs, samples: w.rows, labelledSamples: 0, estimatedMetrics: { accuracy: w.judged?.estimatedAccuracy ?? null } };
    const step = policyRules.evaluatePolicy(state, observation, config);
    state = step.state;
    if (step.decision.trigger) return at;
  }
  return undefined;
}

// ---------------------------------------------------------------- the run

const fmt = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const seconds = (a: string | undefined, b: string | undefined) => (a && b ? (Date.parse(b) - Date.parse(a)) / 1000 : NaN);

interface Figures {
  variant: string;
  what: string;
  stream: string;
  windows: number;
  meanAccuracy: number;
  meanJudgedAccuracy: number;
  judgedWindows: number;
  detectionWindows?: number;
  jobWindows: number[];
  triggerToPromotionS: number[];
  jobs: number;
  jobsSucceeded: number;
  promotions: number;
  rejected: number;
  rolledBack: number;
  gpuSeconds: number;
  runningAtEnd: number;
  perWindow: string[];
  /** |status.lastMetrics.estimatedAccuracy − correct/rows| of each judged window with an estimate. */
  estimateErrors: number[];
}

let exitCode = 0;
try {
  say(`load average at start: ${loadAtStart} (${os.cpus().length} cores)`);
  kc(["apply", "--server-side", "--force-conflicts", "-f", path.join(repo, "crds/ballast.dev_modeldeployments.yaml")]);
  kc(["wait", "--for=condition=Established", "crd/modeldeployments.ballast.dev", "--timeout=60s"]);
  await api.create("/api/v1/namespaces", { metadata: { name: NS } });
  await waitUntil(`ServiceAccount ${NS}/default`, () => api.get(`/api/v1/namespaces/${NS}/serviceaccounts/default`), 60_000);
  await api.create(`/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
    metadata: { name: CLAIM },
    spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
  });
  await waitUntil(
    `PVC ${NS}/${CLAIM} to be Bound`,
    async () => (await api.get<{ status?: { phase?: string } }>(`/api/v1/namespaces/${NS}/persistentvolumeclaims/${CLAIM}`)).status?.phase === "Bound",
    60_000,
  );

  // The first version: trained once on Adelie birds (as the integration test trains it), copied into each store.
  const claimDir = path.join(clusterDir, "volumes", NS, CLAIM);
  const dataFile = path.join(claimDir, "data", "penguins-train.csv");
  fs.mkdirSync(path.dirname(dataFile), { recursive: true });
  fs.writeFileSync(dataFile, penguins.penguinsCsv(split.training));
  const firstStore = path.join(claimDir, "first-version");
  say(`training the first version on ${split.training.length} Adelie birds`);
  try {
    execFileSync(
      ballast,
      [
        "train",
        "--data",
        dataFile,
        "--store",
        `file://${firstStore}`,
        "--model",
        MODEL,
        "--version",
        "v1",
        "--label",
        penguins.PENGUIN_LABEL,
        "--features",
        penguins.PENGUIN_FEATURES.join(","),
        "--epochs",
        "60",
        "--seed",
        "3",
        "--max-trials",
        "1",
      ],
      { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" },
    );
  } catch (err) {
    throw new Error(`ballast train (the first version) failed: ${String((err as { stderr?: string }).stderr ?? err).slice(-2000)}`, { cause: err });
  }
  for (const v of VARIANTS) fs.cpSync(firstStore, path.join(claimDir, v.name, "store"), { recursive: true });

  const port = await freePort();
  const operatorLog = path.join(clusterDir, "benchloop-operator.log");
  const op = spawn(
    ballast,
    [
      "operator",
      "--kubeconfig",
      kubeconfig,
      "--namespaces",
      NS,
      "--metrics-bind-address",
      `127.0.0.1:${port}`,
      "--health-probe-bind-address",
      `127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", fs.openSync(operatorLog, "a"), fs.openSync(operatorLog, "a")] },
  );
  children.push(op);
  await waitUntil("the operator to answer /readyz", async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000);
  say(`operator ready (log: ${operatorLog})`);

  for (const v of VARIANTS) await api.create(`/apis/ballast.dev/v1alpha1/namespaces/${NS}/modeldeployments`, modelDeployment(v));
  for (const v of VARIANTS) {
    const r = rec.get(v.name)!;
    await waitUntil(
      `ModelDeployment ${v.name} to be Ready`,
      async () => {
        const md = await api.get<MD>(`/apis/ballast.dev/v1alpha1/namespaces/${NS}/modeldeployments/${v.name}`);
        return md.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      },
      180_000,
    );
    const svc = await api.get<{ spec: { clusterIP: string; ports: { port: number }[] } }>(`/api/v1/namespaces/${NS}/services/${v.name}`);
    r.serviceUrl = `http://${svc.spec.clusterIP}:${svc.spec.ports[0]!.port}`;
    await traffic.waitForService(`${r.serviceUrl}/v1/sidecar/ready`, 60_000);
  }
  say(`${VARIANTS.length} ModelDeployments Ready, each serving v1 from its own pod`);
  const observer = observeLoop();

  // Lockstep: at each tick every variant gets its window (the same birds for the shifted variants), then the
  // operator judges it; the next window starts one pace after the last.
  const streamStart = Date.now();
  for (let i = 0; i < shifted.length; i++) {
    const tick = streamStart + i * paceMs;
    if (Date.now() < tick) await sleep(tick - Date.now());
    const done = await Promise.all(VARIANTS.map((v) => sendWindow(v, rec.get(v.name)!, i + 1, v.stream === "shifted" ? shifted[i]! : stationary[i]!)));
    done.forEach((w, k) => rec.get(VARIANTS[k]!.name)!.windows.push(w));
    say(
      `window ${i + 1}/${shifted.length} (${shifted[i]![0]!.species}): ` +
        done
          .map(
            (w, k) =>
              `${VARIANTS[k]!.name} ${w.correct}/${w.rows}${w.judged ? ` ${w.judged.verdict ?? "?"}` : " (not judged)"} ${w.servingVersion ?? "?"} ${w.phase ?? "?"}`,
          )
          .join(" | "),
    );
  }
  const streamEnd = Date.now();
  // The labelling pipeline catches up: the late variant's last windows get their labels after the stream.
  for (const v of VARIANTS.filter((x) => (x.labelDelayWindows ?? 0) > 0)) {
    const r = rec.get(v.name)!;
    for (const labels of r.lateLabels.splice(0)) await postLabels(r.serviceUrl, labels);
  }
  say(`stream done in ${((streamEnd - streamStart) / 1000).toFixed(0)} s; waiting up to ${settleMs / 1000} s for running Jobs and rollouts to finish`);
  await waitUntil(
    "retraining Jobs and rollouts to finish",
    async () => {
      await observe();
      const busy = [...rec.values()].some((r) => ["Training", "Promoting", "RollingBack"].includes(r.status?.loop?.phase ?? ""));
      return !busy && [...jobPods.values()].every((p) => p.finishedAt);
    },
    settleMs,
    1000,
  ).catch((err: Error) => say(err.message));
  observing = false;
  await observer;
  await observe();
  const endedAt = Date.now();

  // ---------------------------------------------------------------- figures
  const figures: Figures[] = VARIANTS.map((v) => {
    const r = rec.get(v.name)!;
    const variantJobs = [...jobs.entries()].filter(([, j]) => j.variant === v.name).sort((a, b) => a[1].created.localeCompare(b[1].created));
    const jobCount = Math.max(variantJobs.length, r.status?.loop?.attempt ?? 0);
    // The window each Job started on: the one whose end is the trigger it handled, else the last one sent before it.
    const jobWindows = variantJobs.map(([name, j]) => {
      const trigger = r.attempts.get(Number(/-retrain-(\d+)$/.exec(name)?.[1]))?.trigger;
      const byTrigger = trigger ? r.windows.find((w) => w.windowEnd === trigger) : undefined;
      return byTrigger?.window ?? r.windows.filter((w) => w.sentAt <= Date.parse(j.created) + 1000).length;
    });
    const firstAfterOnset = jobWindows.find((w) => w > onset);
    const detectionWindows = firstAfterOnset !== undefined ? firstAfterOnset - onset : undefined;
    const promoted = r.history.filter((h) => h.event === "Promoted");
    const triggerToPromotionS = [...r.attempts.values()]
      .map((a) => {
        const candidate = a.lastRetraining?.candidateVersion;
        const p = candidate ? promoted.find((h) => h.version === candidate) : undefined;
        return p ? seconds(a.trigger ?? a.lastRetraining?.startTime, p.time) : NaN;
      })
      .filter((s) => Number.isFinite(s));
    const pods = [...jobPods.values()].filter((p) => p.variant === v.name);
    const gpuSeconds = pods.reduce(
      (sum, p) => sum + (p.gpus * Math.max(0, (p.finishedAt ? Date.parse(p.finishedAt) : endedAt) - (p.startedAt ? Date.parse(p.startedAt) : endedAt))) / 1000,
      0,
    );
    const judged = r.windows.flatMap((w) => (w.judged?.accuracy !== undefined ? [w.judged.accuracy] : []));
    return {
      variant: v.name,
      what: v.what,
      stream: v.stream,
      windows: r.windows.length,
      meanAccuracy: mean(r.windows.map((w) => w.correct / w.rows)),
      meanJudgedAccuracy: mean(judged),
      judgedWindows: judged.length,
      ...(detectionWindows !== undefined ? { detectionWindows } : {}),
      jobWindows,
      triggerToPromotionS,
      jobs: jobCount,
      jobsSucceeded: [...r.attempts.values()].filter((a) => a.lastRetraining?.phase === "Succeeded").length,
      promotions: promoted.length,
      rejected: r.history.filter((h) => h.event === "Rejected").length,
      rolledBack: r.history.filter((h) => h.event === "RolledBack").length,
      gpuSeconds,
      runningAtEnd: pods.filter((p) => !p.finishedAt).length,
      perWindow: r.windows.map((w) => `${w.correct}/${w.rows}${w.servingVersion && w.servingVersion !== "v1" ? "*" : ""}`),
      estimateErrors: r.windows.flatMap((w) => (w.judged?.estimatedAccuracy !== undefined ? [Math.abs(w.judged.estimatedAccuracy - w.correct / w.rows)] : [])),
    };
  });

  const loadAtEnd = load();
  console.log(
    `\nLoop efficacy: penguins, windows of ${WINDOW} rows (${onset} familiar Adelie + ${gentooWindows} Gentoo, onset = window ${onset + 1}), one window every ${paceMs / 1000} s to each variant in lockstep`,
  );
  console.log(
    `load average at start ${loadAtStart}, at end ${loadAtEnd} (${os.cpus().length} cores); run ${((endedAt - t0) / 1000).toFixed(0)} s, stream ${((streamEnd - streamStart) / 1000).toFixed(0)} s`,
  );
  console.log(
    `stationary stream: the ${split.familiar.length} held-back Adelie birds, replayed in reshuffled passes; periodic: consecutiveWindows ${periodWindows}, cooldown ${periodicCooldownS}s`,
  );
  console.log(
    `accuracy: the traffic's own answers (correct / rows per window, as the client saw them), averaged over windows; "judged" = status.lastMetrics.accuracy of the windows the operator judged within the pace\n`,
  );
  const header = [
    "variant",
    "stream",
    "mean acc",
    "judged acc (n)",
    "onset→Job (windows)",
    "trigger→promotion",
    "Jobs (at window)",
    "promoted / rejected / rolled back",
    "GPU-s",
  ];
  const rows = figures.map((f) => [
    `${f.variant} (${f.what})`,
    f.stream,
    fmt(f.meanAccuracy),
    `${fmt(f.meanJudgedAccuracy)} (${f.judgedWindows})`,
    f.detectionWindows !== undefined ? String(f.detectionWindows) : "—",
    f.triggerToPromotionS.length ? f.triggerToPromotionS.map((s) => `${s.toFixed(0)} s`).join(", ") : "—",
    `${f.jobs}${f.jobWindows.length ? ` (${f.jobWindows.join(", ")})` : ""}`,
    `${f.promotions} / ${f.rejected} / ${f.rolledBack}`,
    `${f.gpuSeconds.toFixed(0)}${f.runningAtEnd ? ` (${f.runningAtEnd} still running)` : ""}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const line of [header, ...rows])
    console.log(
      line
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
  console.log(`\nper window (correct/rows; * = served by a retrained version when judged):`);
  for (const f of figures) console.log(`  ${f.variant.padEnd(19)} ${f.perWindow.join("  ")}`);

  const by = (name: string) => figures.find((f) => f.variant === name)!;
  const [periodic, policy, still] = [by("periodic"), by("ballast"), by("ballast-stationary")];
  const accuracyRatio = policy.meanAccuracy / periodic.meanAccuracy;
  const jobsRatio = periodic.jobs > 0 ? policy.jobs / (periodic.jobs / 3) : NaN;
  console.log(`\nBallast mean accuracy / periodic: ${fmt(accuracyRatio)} (goal ≥ 1: ${accuracyRatio >= 1 ? "met" : "not met"})`);
  console.log(
    `Ballast Jobs / (periodic Jobs / 3): ${policy.jobs} / (${periodic.jobs} / 3) = ${fmt(jobsRatio, 2)} (goal ≤ 1: ${jobsRatio <= 1 ? "met" : "not met"})`,
  );
  console.log(`Jobs on the stationary stream: ${still.jobs} (goal 0: ${still.jobs === 0 ? "met" : "not met"})`);
  console.log(`\nthe loop at the end (status.loop), and each attempt (status.lastRetraining as last seen while it was the current one):`);
  for (const v of VARIANTS) {
    const r = rec.get(v.name)!;
    const l = r.status?.loop;
    console.log(`  ${v.name}: ${l?.phase ?? "?"}, attempt ${l?.attempt ?? 0}, consecutiveFailures ${l?.consecutiveFailures ?? 0}: ${l?.message ?? ""}`);
    for (const a of [...r.attempts.values()].sort((x, y) => x.attempt - y.attempt)) {
      const lr = a.lastRetraining;
      const gate = lr?.gate ? `${lr.gate.passed ? "passed" : `rejected (${lr.gate.failedRule})`}: ${lr.gate.message.split("; ")[0]}` : "no gate result";
      const failed = lr?.phase === "Failed" ? ` ${lr.reason}: ${lr.message?.slice(0, 300)}` : "";
      console.log(
        `    ${lr?.jobName ?? `attempt ${a.attempt}`} (window ${by(v.name).jobWindows[a.attempt - 1] ?? "?"}): ${lr?.phase ?? "?"}${failed}; ${gate}`,
      );
    }
  }

  // ---------------------------------------------------------------- the label-free estimate
  const onsetWindow = onset + 1;
  const afterOnset = (at: number | undefined) => (at === undefined ? "not within the stream" : `window ${at}: ${at - onsetWindow} after the onset`);
  console.log(
    `\nestimated vs realised accuracy per window (status.lastMetrics.estimatedAccuracy when the operator judged it; realised = correct/rows; decided by):`,
  );
  for (const v of VARIANTS.filter((x) => x.stream === "shifted")) {
    const r = rec.get(v.name)!;
    console.log(
      `  ${v.name.padEnd(19)} ${r.windows.map((w) => `${fmt(w.judged?.estimatedAccuracy, 2)}/${fmt(w.correct / w.rows, 2)} ${w.judged?.decidedBy ?? "?"}`).join("  ")}`,
    );
  }
  const estimateErrors = figures.flatMap((f) => (f.estimateErrors.length ? [{ variant: f.variant, errors: f.estimateErrors }] : []));
  console.log(`estimate error |estimated − realised| per window (mean, max over the judged windows with an estimate):`);
  for (const e of estimateErrors)
    console.log(`  ${e.variant.padEnd(19)} mean ${fmt(mean(e.errors))}, max ${fmt(Math.max(...e.errors))} (${e.errors.length} windows)`);
  const never = rec.get("never")!.windows;
  const neverErrors = figures.find((f) => f.variant === "never")!.estimateErrors;
  const late = by("ballast-late3");
  const lateDetected = late.jobWindows.find((w) => w > onset);
  const detection = {
    labelsOnTime: policy.jobWindows.find((w) => w > onset),
    lateLabelsOperator: lateDetected,
    replay: Object.fromEntries(
      [0, LATE_LABELS_WINDOWS].map((d) => [d, { labels: replayDetection(never, "labels", d), estimate: replayDetection(never, "estimate", d) }]),
    ),
  };
  console.log(
    `\ndetection with labels D windows late (onset = window ${onsetWindow}, the first Gentoo window; consecutiveWindows ${BALLAST_POLICY.consecutiveWindows}, so 1 window after the onset is the earliest):`,
  );
  console.log(`  operator, D = 0 (ballast: labels decide):                   ${afterOnset(detection.labelsOnTime)}`);
  console.log(`  operator, D = ${LATE_LABELS_WINDOWS} (ballast-late3: estimate, else drift):     ${afterOnset(detection.lateLabelsOperator)}`);
  for (const d of [0, LATE_LABELS_WINDOWS]) {
    console.log(`  replay on never's windows, D = ${d}, waiting for labels:      ${afterOnset(detection.replay[d]!.labels)}`);
    console.log(`  replay on never's windows, D = ${d}, label-free estimate alone: ${afterOnset(detection.replay[d]!.estimate)}`);
  }
  // What the late labels changed: each window as judged when it closed, and as status.recentWindows holds it at the
  // end, after its labels came and the operator re-judged it.
  const rejudged = VARIANTS.filter((x) => (x.labelDelayWindows ?? 0) > 0).map((v) => {
    const r = rec.get(v.name)!;
    const windows = r.windows.map((w) => {
      const end = r.status?.recentWindows?.find((x) => x.windowEnd === w.windowEnd);
      return {
        window: w.window,
        realised: w.correct / w.rows,
        atClose: w.judged ?? null,
        atEnd: end
          ? {
              verdict: end.verdict,
              decidedBy: end.decidedBy,
              accuracy: end.accuracy,
              labelled: end.labelledSamples ?? 0,
              rejudged: end.rejudgedTime !== undefined,
            }
          : null,
      };
    });
    return { variant: v.name, windows };
  });
  for (const { variant, windows } of rejudged) {
    console.log(`
${variant}: each window when it closed → after its labels came ${LATE_LABELS_WINDOWS} windows later (status.recentWindows at the end; realised = correct/rows):`);
    for (const w of windows) {
      const close = w.atClose
        ? `${w.atClose.verdict ?? "?"} by ${w.atClose.decidedBy ?? "?"} (${w.atClose.labelled} labelled, estimated ${fmt(w.atClose.estimatedAccuracy, 2)})`
        : "not judged";
      const end = w.atEnd
        ? `${w.atEnd.verdict ?? "?"} by ${w.atEnd.decidedBy ?? "?"}${w.atEnd.rejudged ? " (late)" : ""} (${w.atEnd.labelled} labelled, accuracy ${fmt(w.atEnd.accuracy, 2)})`
        : "no longer in status.recentWindows";
      console.log(`  window ${w.window} (realised ${fmt(w.realised, 2)}): ${close} → ${end}`);
    }
    const changed = windows.filter((w) => w.atEnd?.rejudged && (w.atEnd.verdict !== w.atClose?.verdict || w.atEnd.decidedBy !== w.atClose?.decidedBy)).length;
    console.log(
      `  re-judged on late labels: ${windows.filter((w) => w.atEnd?.rejudged).length} of ${windows.length} windows; verdict or evidence changed in ${changed}`,
    );
  }
  const lateGoal = lateDetected !== undefined && lateDetected - onsetWindow <= 1;
  console.log(`labels ${LATE_LABELS_WINDOWS} windows late, detection no later than 1 window after the onset: ${lateGoal ? "met" : "not met"}`);
  if (flags.json) {
    const attempts = Object.fromEntries([...rec].map(([name, r]) => [name, [...r.attempts.values()]]));
    fs.writeFileSync(
      flags.json,
      `${JSON.stringify(
        {
          machine: `${os.cpus().length} cores`,
          loadAtStart,
          loadAtEnd,
          paceS: paceMs / 1000,
          periodWindows,
          figures,
          accuracyRatio,
          jobsRatio,
          attempts,
          detection,
          rejudged,
          neverEstimateErrors: neverErrors,
        },
        null,
        2,
      )}\n`,
    );
  }
} catch (err) {
  exitCode = 1;
  console.error(`bench/loop failed: ${(err as Error).message}`);
  for (const [name, r] of rec)
    if (r.status) console.error(`  ${name}: status.loop ${JSON.stringify(r.status.loop)}; lastRetraining ${JSON.stringify(r.status.lastRetraining)}`);
} finally {
  observing = false;
  await cleanup();
  await api.close();
}
process.exit(exitCode);
