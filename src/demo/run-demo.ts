// `ballast demo`: the product on real data on the local cluster, step by step, narrated for a person watching.
// Every step does what a user would do (kubectl apply -k, a Job, a ModelDeployment, HTTP traffic) and says so.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Job, V1Pod, V1Service } from "@kubernetes/client-node";
import { SIDECAR_MONITORING_PORT, SIDECAR_PATHS, type ModelDeployment, type ResolvedModelDeployment } from "../api/index.js";
import { clusterDown, clusterUp } from "../devcluster/cluster.js";
import { isAlive } from "../devcluster/processes.js";
import { readState, type ClusterState } from "../devcluster/state.js";
import type { WindowSummary } from "../monitoring/summary.js";
import { PenguinLoop } from "./closed-loop.js";
import { Kubectl } from "./kubectl.js";
import {
  DEMO_NAMESPACE,
  PENGUIN_TRAINING_JOB,
  TRAINING_JOB,
  demoModelDeployment,
  modelStoreOf,
  readExamples,
  trainingDataConfigMap,
  trainingJob,
} from "./manifests.js";
import { Narrator } from "./narrator.js";
import { FailedStep, runSteps, type DemoStep } from "./steps.js";
import { containerLogFile, podLogFiles, tailOf } from "./pod-logs.js";
import {
  OPERATOR_DEPLOYMENT,
  OPERATOR_NAMESPACE,
  StepFailure,
  applyObjects,
  fmt,
  getModelDeployment,
  operatorImage,
  pollUntil,
  show,
  waitForTrainingJobs,
  waitUnlessCrashing,
  type Session,
} from "./session.js";
import { showPrometheusAnswers } from "./prometheus-answers.js";
import { describeWindow, fetchSummary, sendTrafficWithFeedback, waitForService } from "./traffic.js";
import { demoWeatherData } from "./weather-data.js";

export interface DemoOptions {
  dir: string;
  /** Leave the cluster running at the end. */
  keep: boolean;
  /** Run the steps, tear down, exit (tests, CI); otherwise stay up until Ctrl-C. */
  exitWhenDone: boolean;
  /** Epochs of the weather classifier's first training Job. */
  epochs: number;
  /** Rows of Seattle traffic and of New York traffic; also the monitoring window size. */
  windowRows: number;
  write: (line: string) => void;
}

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const ROWS_PER_REQUEST = 10;
const SCRAPE_INTERVAL_S = 2;

class Interrupted extends Error {}

/** What the steps hand on to each other. */
interface DemoRun {
  dir: string;
  options: DemoOptions;
  narrator: Narrator;
  signal: AbortSignal;
  penguins: PenguinLoop;
  /** Set by the cluster step. */
  session?: Session;
  /** Set by the training step. */
  versions?: { weather: string; penguins: string };
}

/** Steps 1–5 serve and monitor a weather classifier; steps 6–9 run the closed loop on penguins (closed-loop.ts); 10 asks Prometheus. */
const DEMO_STEPS: readonly DemoStep<DemoRun>[] = [
  {
    name: "cluster",
    narrate: () => "Local Kubernetes cluster: real etcd, kube-apiserver, controller-manager, scheduler; 1 CPU node + 1 GPU node",
    run: async (r) => {
      r.session = await startCluster(r.dir, r.narrator, r.signal);
    },
    lookAt: (r) => [join(r.dir, "logs")],
  },
  {
    name: "operator",
    narrate: () => "Install the CRD and deploy the operator with kustomize (it runs in the cluster under its own ServiceAccount)",
    run: (r) => deployOperator(session(r)),
    lookAt: (r) => operatorLogs(r.dir),
  },
  {
    name: "first versions",
    narrate: () => "Train the first model versions: Kubernetes Jobs on the GPU node running `ballast train`, one per model, at once",
    run: async (r) => {
      r.versions = await trainFirstVersions(session(r), r.options, r.penguins);
    },
    lookAt: (r) => trainingLogs(r.dir),
  },
  {
    name: "serve",
    narrate: (r) => `Serve weather/${versions(r).weather}: apply the ModelDeployment from examples/weather-classifier.yaml`,
    run: (r) => serveModel(session(r), versions(r).weather, r.options.windowRows),
    lookAt: (r) => weatherServingLogs(r.dir),
  },
  {
    name: "traffic and monitoring",
    narrate: () => "Real traffic through the Service, ground truth as feedback: what the monitoring sees, and what the operator decides",
    run: (r) => trafficAndMonitoring(session(r), versions(r).weather, r.options.windowRows),
    lookAt: (r) => weatherServingLogs(r.dir),
  },
  {
    name: "closed loop",
    narrate: (r) => `The closed loop: serve ${r.penguins.model}/${versions(r).penguins} with examples/penguin-sex-classifier.yaml, and birds it knows`,
    run: (r) => r.penguins.serve(session(r), versions(r).penguins),
    lookAt: (r) => r.penguins.lookAt(r.dir),
  },
  {
    name: "retrain",
    narrate: () => "Gentoo birds: accuracy falls; the operator retrains on the GPU node and gates the candidate",
    run: (r) => r.penguins.degradeAndRetrain(session(r)),
    lookAt: (r) => r.penguins.lookAt(r.dir),
  },
  {
    name: "shadow",
    narrate: () => "Shadow: the candidate answers mirrored copies of live requests beside the serving version; the operator compares them pair by pair",
    run: (r) => r.penguins.shadow(session(r)),
    lookAt: (r) => r.penguins.lookAt(r.dir),
  },
  {
    name: "promote and observe",
    narrate: () => "Promotion and observation: the operator rolls the pods to the candidate; more Gentoo birds; accuracy recovered",
    run: (r) => r.penguins.promoteAndObserve(session(r)),
    lookAt: (r) => r.penguins.lookAt(r.dir),
  },
  {
    name: "prometheus",
    narrate: () => "What Prometheus recorded: live PromQL answers about the penguin model, and where to ask them yourself",
    run: (r) => askPrometheus(session(r), r.penguins),
    lookAt: (r) => [join(r.dir, "prometheus/prometheus.log")],
  },
];

function session(r: DemoRun): Session {
  if (!r.session) throw new Error("no cluster: the cluster step did not run");
  return r.session;
}

function versions(r: DemoRun): NonNullable<DemoRun["versions"]> {
  if (!r.versions) throw new Error("no model versions: the training step did not run");
  return r.versions;
}

/** Runs the demo; resolves to the process exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const dir = resolve(options.dir);
  const narrator = new Narrator(options.write, DEMO_STEPS.length);
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(new Interrupted(`interrupted by ${sig}`));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let run: DemoRun | undefined;
  try {
    narrator.plain(`Ballast demo on real data (vega-datasets): serve and monitor a weather classifier (weather.csv), then the closed loop —`);
    narrator.plain(`retrain, gate, promote, observe — on a penguin sex classifier (penguins.json); on a local Kubernetes cluster in ${dir}`);
    run = { dir, options, narrator, signal: abort.signal, penguins: new PenguinLoop(repoRoot) };
    await runSteps(DEMO_STEPS, run, narrator);
    narrator.plain("");
    narrator.plain(`Demo finished in ${narrator.seconds()}.`);
  } catch (err) {
    const interrupted = abort.signal.aborted;
    await reportFailure(err, run, interrupted, narrator, dir);
    const s = run?.session;
    if (s && !interrupted && (options.keep || !s.startedCluster)) {
      narrator.say(
        options.keep
          ? `--keep: the cluster stays up for you to look at`
          : `the cluster in ${dir} was already running before the demo: left running for you to look at`,
      );
      narrator.say(`stop it with: make dev-down DEV_DIR=${dir}     # or: bin/ballast dev down --dir ${dir}`);
    } else {
      await tearDown(dir, narrator);
    }
    return interrupted ? 130 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  if (options.keep) {
    printWhereToLook(run.session);
    narrator.plain("");
    narrator.plain(`The cluster keeps running (--keep). Stop it with:`);
    narrator.plain(`  make dev-down DEV_DIR=${dir}     # or: bin/ballast dev down --dir ${dir}`);
    return 0;
  }
  if (!options.exitWhenDone) {
    printWhereToLook(run.session);
    narrator.plain("");
    narrator.plain("Press Ctrl-C to stop the demo and tear the cluster down.");
    const died = await untilInterrupted(session(run));
    narrator.plain("");
    if (died) {
      narrator.fail(`${died.name} (pid ${died.pid}) exited while the demo was up; look at ${died.log}`);
      await tearDown(dir, narrator);
      return 1;
    }
  }
  await tearDown(dir, narrator);
  return 0;
}

/**
 * Says which step failed or was interrupted; for a failure, the files to look at (the last lines of a few of them)
 * and the cluster's pods and warnings, printed before anything is torn down.
 */
async function reportFailure(err: unknown, run: DemoRun | undefined, interrupted: boolean, narrator: Narrator, dir: string): Promise<void> {
  // Only the set-up before the first step can throw outside a step; it counts as step 1.
  const number = err instanceof FailedStep ? err.number : 1;
  const cause: unknown = err instanceof FailedStep ? err.cause : err;
  narrator.plain("");
  if (interrupted) {
    narrator.fail(`interrupted during step ${number}`);
    return;
  }
  narrator.fail(`step ${number} failed: ${(cause as Error).message}`);
  const found = cause instanceof StepFailure ? cause.lookAt : run?.session && err instanceof FailedStep ? err.step.lookAt(run) : [join(dir, "logs")];
  // Pod directories go away with their pods at tear-down: their logs are copied where they stay.
  const lookAt = found.map((f) => (f.startsWith(join(dir, "pods")) && existsSync(f) ? keepLog(dir, f) : f));
  if (lookAt.length) {
    narrator.say("look at:");
    for (const f of lookAt) narrator.say(`  ${f}`);
    for (const f of lookAt.filter((x) => x.endsWith(".log") && existsSync(x)).slice(0, 3)) {
      narrator.say(`last lines of ${f}:`);
      narrator.block(tailOf(f, 10));
    }
  }
  if (run?.session) await describeCluster(run.session);
}

// ---------------------------------------------------------------- step 1: the local cluster

/** Files `ballast dev up` leaves in a cluster directory; a directory holding none of them is not one. */
const CLUSTER_DIR_MARKERS = ["state.json", "kubeconfig", "pki", "etcd"];

/** The demo wipes a stopped cluster's data in --dir, so it refuses any directory that is not a cluster's. */
export function unusableDir(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  if (!statSync(dir).isDirectory()) return `--dir ${dir} is a file, not a directory`;
  const entries = readdirSync(dir);
  if (entries.length === 0 || CLUSTER_DIR_MARKERS.some((m) => entries.includes(m))) return undefined;
  return `--dir ${dir} is not empty and holds no local cluster (no ${CLUSTER_DIR_MARKERS.join(", ")}): give a new or empty directory, or one a previous demo or \`ballast dev up\` used`;
}

async function startCluster(dir: string, narrator: Narrator, signal: AbortSignal): Promise<Session> {
  const existing = readState(dir);
  const alive = existing?.processes.filter((p) => isAlive(p.pid)) ?? [];
  let state: ClusterState;
  let startedCluster = false;
  if (existing && alive.length === existing.processes.length) {
    narrator.say(`reusing the cluster already running in ${dir} (started ${existing.startedAt})`);
    state = existing;
  } else {
    if (existing && alive.length > 0) {
      throw new StepFailure(
        `a cluster in ${dir} is partly running (${alive.map((p) => p.name).join(", ")} alive): stop it with \`bin/ballast dev down --dir ${dir}\`, then run the demo again`,
        [join(dir, "logs")],
      );
    }
    // A stopped cluster's etcd would bring back the previous run's objects: every demo starts from a clean cluster.
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      narrator.say(`removing the previous (stopped) demo cluster's data in ${dir}`);
      await clusterDown(dir, { purge: true });
    }
    narrator.say(`starting it in ${dir} (logs in ${join(dir, "logs")})`);
    startedCluster = true;
    try {
      state = await clusterUp({ dir, cpuNodes: 1, gpuNodes: 1, prometheus: true, log: (line) => narrator.say(line), signal });
    } catch (err) {
      // clusterUp stopped what it had started; its message carries the failing component's log tail.
      throw new StepFailure((err as Error).message, [join(dir, "logs")]);
    }
  }
  if (!state.kubectl) throw new StepFailure("no kubectl matching the cluster's Kubernetes version: run `make k8s-binaries` (it builds one)", []);
  const kubectl = new Kubectl(state.kubectl, state.kubeconfig);
  const nodes = await kubectl.run(["get", "nodes", "-o", "wide"]);
  narrator.ok(
    `cluster ready: Kubernetes ${state.kubernetesVersion}, API server ${state.server}, nodes ${state.nodes.join(", ")}` +
      (state.prometheusUrl ? `; Prometheus ${state.prometheusUrl} (scrapes the operator and serving pods as the shipped monitors do)` : ""),
  );
  narrator.say("watch along in another terminal (kubectl logs works; container logs are also files under pods/):");
  narrator.plain(`    export KUBECONFIG=${state.kubeconfig}`);
  narrator.plain(`    alias kubectl=${state.kubectl}`);
  narrator.command("kubectl get nodes -o wide");
  narrator.block(nodes);
  return { dir, state, kubectl, startedCluster, narrator, signal };
}

// ---------------------------------------------------------------- step 2: the operator, as a user installs it

async function deployOperator(s: Session): Promise<void> {
  const { narrator, kubectl } = s;
  const overlay = existsSync(join(repoRoot, "deploy/overlays/local/kustomization.yaml")) ? "deploy/overlays/local" : "deploy/base";
  const apply = ["apply", "--server-side", "-k", join(repoRoot, overlay)];
  narrator.command(kubectl.display(["apply", "--server-side", "-k", overlay]));
  narrator.block(await kubectl.run(apply, { signal: s.signal }));
  const rollout = ["rollout", "status", `deployment/${OPERATOR_DEPLOYMENT}`, "-n", OPERATOR_NAMESPACE, "--timeout=180s"];
  narrator.command(kubectl.display(rollout));
  try {
    narrator.block(await waitUnlessCrashing(s, rollout, OPERATOR_NAMESPACE, "app.kubernetes.io/component=operator"));
  } catch (err) {
    throw new StepFailure(`the operator did not become Ready: ${(err as Error).message}`, operatorLogs(s.dir));
  }
  const pod = (await kubectl.json<{ items: V1Pod[] }>(["get", "pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/component=operator"])).items.find(
    (p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
  if (!pod) throw new StepFailure("the operator Deployment rolled out but no operator pod is Ready", operatorLogs(s.dir));
  const logFile = containerLogFile(s.dir, OPERATOR_NAMESPACE, pod.metadata!.name!, pod.metadata!.uid!, pod.spec!.containers[0]!.name);
  narrator.ok(
    `operator Ready: pod ${pod.metadata!.name} on node ${pod.spec!.nodeName}, image ${pod.spec!.containers[0]!.image}, ServiceAccount ${pod.spec!.serviceAccountName}, pod IP ${pod.status!.podIP}`,
  );
  narrator.say(`its log: ${logFile}`);
}

// ---------------------------------------------------------------- step 3: the first model versions, trained by Jobs on the GPU node

async function trainFirstVersions(s: Session, options: DemoOptions, penguins: PenguinLoop): Promise<{ weather: string; penguins: string }> {
  const { narrator, kubectl } = s;
  const data = demoWeatherData(options.windowRows);
  narrator.say(
    `weather: ${relative(repoRoot, data.csvPath)} — ${data.seattleTrainingRows} Seattle days to train on (the Job holds out 20% of them for its metrics), ` +
      `${data.seattleTraffic.length} other Seattle days and ${data.newYorkTraffic.length} New York days kept back for traffic`,
  );
  const examples = readExamples(repoRoot);
  const store = modelStoreOf(examples.modelDeployment);
  const claim = { ...examples.modelStoreClaim, metadata: { ...examples.modelStoreClaim.metadata, namespace: DEMO_NAMESPACE } };
  narrator.say(`the model store of both: PersistentVolumeClaim ${claim.metadata.name} from examples/model-store-pvc.yaml (the local nodes provision it)`);
  await applyObjects(s, [claim], "examples/model-store-pvc.yaml");
  const bound = ["wait", "--for=jsonpath={.status.phase}=Bound", `pvc/${claim.metadata.name}`, "-n", DEMO_NAMESPACE, "--timeout=60s"];
  narrator.command(kubectl.display(bound));
  narrator.block(await kubectl.run(bound, { signal: s.signal }));

  // A kept cluster may hold the previous run's Jobs: a Job's pod template is immutable, so they are replaced.
  for (const name of [TRAINING_JOB, PENGUIN_TRAINING_JOB]) {
    await kubectl.run(["delete", "job", name, "-n", DEMO_NAMESPACE, "--ignore-not-found", "--cascade=foreground", "--timeout=60s"], { signal: s.signal });
  }
  const image = await operatorImage(s);
  const weatherJob = trainingJob(examples.modelDeployment, { image, epochs: options.epochs });
  const penguinJob = penguins.firstVersionJob(s, image);
  const container = weatherJob.spec!.template.spec!.containers[0]!;
  narrator.say(
    `the Jobs: image ${image}, nvidia.com/gpu: ${String(container.resources?.limits?.["nvidia.com/gpu"] ?? "none")}, ` +
      `nodeSelector ${JSON.stringify(weatherJob.spec!.template.spec!.nodeSelector ?? {})}, tolerating the GPU taint (as each example's spec.retraining asks)`,
  );
  for (const job of [weatherJob, penguinJob]) narrator.say(`  ${job.metadata!.name}: ballast ${job.spec!.template.spec!.containers[0]!.args!.join(" ")}`);
  await applyObjects(s, [trainingDataConfigMap(data.seattleTrainingCsv), weatherJob, penguinJob], "ConfigMap with the Seattle training rows + the two Jobs");

  const finished = await waitForTrainingJobs(s, [TRAINING_JOB, PENGUIN_TRAINING_JOB]);
  const describe: Record<string, string> = {
    [TRAINING_JOB]: "Seattle days the Job never trained on",
    [PENGUIN_TRAINING_JOB]: `${penguins.knownSpecies} birds the Job never trained on`,
  };
  for (const job of finished.values()) {
    const { result } = job;
    narrator.ok(`Job ${job.name} completed on node ${job.node} in ${job.seconds.toFixed(1)} s`);
    narrator.say(
      `wrote ${result.model}/${result.version} to ${store.uri} (tfjs backend ${result.backend}, ${result.epochsRun} epochs${result.stoppedEarly ? ", stopped early" : ""}, ${result.rows} rows)`,
    );
    const m = result.holdoutMetrics;
    narrator.say(
      `holdout metrics (${describe[job.name]}, ${m.samples ?? "?"} rows): accuracy ${fmt(m.accuracy)}, f1 ${fmt(m.f1)}, weighted f1 ${fmt(m.f1Weighted)}`,
    );
    narrator.say(`the Job's log: ${job.logFile}`);
  }
  return { weather: finished.get(TRAINING_JOB)!.result.version, penguins: finished.get(PENGUIN_TRAINING_JOB)!.result.version };
}

// ---------------------------------------------------------------- step 4: serve it with a ModelDeployment

async function serveModel(s: Session, version: string, windowRows: number): Promise<void> {
  const { narrator, kubectl } = s;
  const examples = readExamples(repoRoot);
  const md = demoModelDeployment(examples.modelDeployment, { windowSize: windowRows, scrapeInterval: `${SCRAPE_INTERVAL_S}s` });
  const name = md.metadata.name!;
  narrator.say(
    `as in the example (spec.model.version unset: the newest version in the store, ${version}), with monitoring.window: {size: ${windowRows}} ` +
      `(size only, so a clock boundary never splits a window) and monitoring.scrapeInterval: ${SCRAPE_INTERVAL_S}s`,
  );
  // A kept cluster may serve the previous run's version: start from a fresh ModelDeployment (and fresh windows).
  const previous = await kubectl.getOrUndefined<ModelDeployment>(["get", "modeldeployment", name, "-n", DEMO_NAMESPACE]);
  if (previous) {
    const del = ["delete", "modeldeployment", name, "-n", DEMO_NAMESPACE, "--cascade=foreground", "--timeout=120s"];
    narrator.command(kubectl.display(del));
    narrator.block(await kubectl.run(del, { signal: s.signal }));
  }
  await applyObjects(s, [md], "ModelDeployment");
  const wait = ["wait", "--for=condition=Ready", `modeldeployment/${name}`, "-n", DEMO_NAMESPACE, "--timeout=180s"];
  narrator.command(kubectl.display(wait));
  try {
    narrator.block(await waitUnlessCrashing(s, wait, DEMO_NAMESPACE, `ballast.dev/model-deployment=${name}`));
  } catch (err) {
    if (s.signal.aborted) throw err;
    const status = await kubectl.run(["get", "modeldeployment", name, "-n", DEMO_NAMESPACE, "-o", "jsonpath={.status.conditions}"]).catch(() => "");
    throw new StepFailure(
      `ModelDeployment ${name} did not become Ready: ${(err as Error).message}${status ? `\nconditions: ${status}` : ""}`,
      weatherServingLogs(s.dir),
    );
  }
  narrator.ok(`ModelDeployment ${name} Ready`);
  const getMd = ["get", "md", name, "-n", DEMO_NAMESPACE, "-o", "wide"];
  narrator.command(kubectl.display(getMd));
  narrator.block(await kubectl.run(getMd));
  const owned = ["get", "deployment,service,pods", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${name}`, "-o", "wide"];
  narrator.command(kubectl.display(owned));
  narrator.block(await kubectl.run(owned));
}

// ---------------------------------------------------------------- step 5: traffic, feedback, monitoring

async function trafficAndMonitoring(s: Session, version: string, windowRows: number): Promise<void> {
  const { narrator, kubectl } = s;
  const md = readExamples(repoRoot).modelDeployment;
  const name = md.metadata.name!;
  const model = md.spec.model.name;
  const svc = await kubectl.json<V1Service>(["get", "service", name, "-n", DEMO_NAMESPACE]);
  const serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
  const pod = await servingPod(kubectl, name);
  // The summary is on the sidecar's monitoring port, which the Service does not expose.
  const sidecarPort =
    pod.spec!.containers.find((c) => c.name === "sidecar")?.ports?.find((p) => p.name === "monitoring")?.containerPort ?? SIDECAR_MONITORING_PORT;
  const sidecarUrl = `http://${pod.status!.podIP}:${sidecarPort}`;
  narrator.say(`Service ${name}: ${serviceUrl} (ClusterIP; the local nodes forward it to the sidecar of a Ready serving pod)`);
  narrator.say(`sidecar of pod ${pod.metadata!.name}: ${sidecarUrl}`);
  const lookAt = () => [...podLogFiles(s.dir, DEMO_NAMESPACE, `${name}-serving-`), join(s.dir, "logs/local-nodes.log")];
  let newYork: WindowSummary;
  try {
    await waitForService(`${serviceUrl}/v2/health/ready`, 30_000, s.signal);
    const data = demoWeatherData(windowRows);
    const runId = Date.now().toString(36);
    const phases = [
      { title: "Seattle", days: data.seattleTraffic, note: "the climate the model was trained on" },
      { title: "New York", days: data.newYorkTraffic, note: "another climate: colder winters, hotter summers, more wind" },
    ];
    for (const phase of phases) {
      const sent = await sendTrafficWithFeedback({
        serviceUrl,
        feedbackUrl: serviceUrl,
        model,
        days: phase.days,
        rowsPerRequest: ROWS_PER_REQUEST,
        // Unique per run, as a client's request ids are (a kept cluster's logs hold the last run's).
        idPrefix: `demo-${runId}-${phase.title.toLowerCase().replace(/\s+/g, "-")}`,
        // Labelled as answered: the window's labels are in before the operator judges it.
        feedbackPerRequest: true,
        signal: s.signal,
      });
      narrator.say(
        `${phase.title} (${phase.note}): POST ${serviceUrl}/v2/models/${model}/infer × ${sent.requests} (${sent.rows} days, ${ROWS_PER_REQUEST} per request); ` +
          `the answers were right for ${sent.correct} (${fmt(sent.correct / sent.rows)}); POST ${SIDECAR_PATHS.feedback} after each answer accepted ${sent.feedbackAccepted} true labels`,
      );
    }
    narrator.command(`curl ${sidecarUrl}${SIDECAR_PATHS.summary}`);
    const summary = await fetchSummary(sidecarUrl);
    if (summary.version !== version) throw new Error(`the sidecar monitors ${summary.model} ${summary.version}, but the Job wrote ${version}`);
    const windows = summary.windows.filter((w) => w.closed && w.rows > 0);
    if (windows.length < 2)
      throw new Error(`the sidecar closed ${windows.length} window(s) with rows; expected a Seattle and a New York window of ${windowRows} rows each`);
    const [seattle, ny] = windows.slice(-2) as [WindowSummary, WindowSummary];
    newYork = ny;
    narrator.say(
      `model ${summary.model} ${summary.version}, pod ${summary.pod}: ${summary.totals.requests} requests, ${summary.totals.feedback} labels so far`,
    );
    for (const line of describeWindow("Seattle", seattle)) narrator.say(line);
    for (const line of describeWindow("New York", newYork)) narrator.say(line);
    narrator.ok("monitoring: Seattle calm, New York drifted, accuracy per window from the fed-back labels");
  } catch (err) {
    if (s.signal.aborted) throw err;
    throw new StepFailure((err as Error).message, lookAt());
  }
  await operatorVerdict(s, name, newYork);
}

async function servingPod(kubectl: Kubectl, name: string): Promise<V1Pod> {
  const pods = await kubectl.json<{ items: V1Pod[] }>([
    "get",
    "pods",
    "-n",
    DEMO_NAMESPACE,
    "-l",
    `ballast.dev/model-deployment=${name},app.kubernetes.io/component=serving`,
  ]);
  const ready = pods.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  if (!ready?.status?.podIP) throw new Error(`no Ready serving pod of ModelDeployment ${name}`);
  return ready;
}

/**
 * What the operator decided about the New York window: drift reported (DriftDetected), but with labels flowing
 * and policy.triggerOn auto the labels judge the window, so a model that is still right starts no Job.
 */
async function operatorVerdict(s: Session, name: string, newYork: WindowSummary): Promise<void> {
  const { narrator, kubectl } = s;
  narrator.say(`what the operator decides (it reads the sidecars every ${SCRAPE_INTERVAL_S} s and judges each closed window once):`);
  const newYorkEnd = Date.parse(newYork.end);
  const fail = async (message: string): Promise<never> => {
    const status = await kubectl.run(["get", "modeldeployment", name, "-n", DEMO_NAMESPACE, "-o", "jsonpath={.status}"]).catch(() => "");
    throw new StepFailure(`${message}${status ? `\nstatus: ${status}` : ""}`, weatherServingLogs(s.dir));
  };
  const md = await pollUntil(
    s,
    `the operator to judge the New York window of ModelDeployment ${name}`,
    async () => {
      const m = await getModelDeployment(s, name);
      const end = m.status?.lastMetrics?.windowEnd;
      return end && Date.parse(end) >= newYorkEnd ? m : undefined;
    },
    5 * SCRAPE_INTERVAL_S * 1000 + 5000,
  ).catch((err: Error) => fail(err.message));
  await show(s, ["get", "md", name, "-n", DEMO_NAMESPACE, "-o", "wide"]);
  const last = md.status!.lastMetrics!;
  const policy = (md as ResolvedModelDeployment).spec.policy;
  narrator.say(
    `status.lastMetrics: window ending ${last.windowEnd}, ${last.samples} rows, ${last.labelledSamples ?? 0} labelled, ${last.metric ?? "accuracy"} ${fmt(last.accuracy)}, ` +
      `drift share ${fmt(last.driftShare, 2)}${last.driftedFeatures?.length ? ` (${last.driftedFeatures.join(", ")})` : ""}, verdict ${last.verdict ?? "n/a"}, decided by ${last.decidedBy ?? "n/a"}`,
  );
  const conditions = md.status?.conditions ?? [];
  for (const type of ["DriftDetected", "Degraded", "Retraining"]) {
    const c = conditions.find((x) => x.type === type);
    if (c) narrator.say(`condition ${c.type}=${c.status} (${c.reason}): ${c.message}`);
  }
  const jobsArgs = ["get", "jobs", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${name}`];
  narrator.command(kubectl.display(jobsArgs));
  const jobs = await kubectl.json<{ items: V1Job[] }>(jobsArgs, { signal: s.signal });
  narrator.block(jobs.items.length ? jobs.items.map((j) => j.metadata!.name!).join("\n") : "No resources found in default namespace.");
  const drift = conditions.find((c) => c.type === "DriftDetected");
  if (drift?.status !== "True") await fail(`the New York window drifted, but condition DriftDetected is ${drift?.status ?? "not set"}`);
  if (last.decidedBy !== "labels" || last.verdict !== "Healthy")
    await fail(`the New York window was judged ${last.verdict ?? "?"} by ${last.decidedBy ?? "?"}, expected Healthy by labels`);
  if (jobs.items.length > 0) await fail(`the operator started a retraining Job for ${name} though its labels say it is right`);
  narrator.ok(
    `New York: DriftDetected=True (drift share ${fmt(last.driftShare, 2)}), yet the window was judged by its ${last.labelledSamples} labels: ` +
      `${last.metric ?? "accuracy"} ${fmt(last.accuracy)} ≥ policy.minAccuracy ${policy.minAccuracy} → ${last.verdict}; no retraining Job, loop ${md.status?.loop?.phase ?? "Stable"}`,
  );
  narrator.say(
    `why: policy.triggerOn is ${policy.triggerOn} and the window had ${last.labelledSamples} labelled rows ≥ policy.minLabelledSamples ${policy.minLabelledSamples}, so the labels decide. ` +
      `Drift is reported (the likely cause, if quality ever falls) but spends no GPU time while the model is still right; without labels, drift would decide.`,
  );
  // By uid: on a kept cluster, the Events of the previous run's ModelDeployment of the same name are still there.
  const events = [
    "get",
    "events",
    "-n",
    DEMO_NAMESPACE,
    "--field-selector",
    `involvedObject.kind=ModelDeployment,involvedObject.name=${name},involvedObject.uid=${md.metadata.uid}`,
  ];
  narrator.command(kubectl.display(events));
  narrator.block((await kubectl.run(events)).trim() || "(no Events)");
}

// ---------------------------------------------------------------- step 10: Prometheus

async function askPrometheus(s: Session, penguins: PenguinLoop): Promise<void> {
  const url = s.state.prometheusUrl;
  if (!url)
    throw new StepFailure(
      `the cluster in ${s.dir} runs no Prometheus (it was started without --prometheus): stop it with \`bin/ballast dev down --dir ${s.dir}\` and run the demo again`,
      [],
    );
  const since = penguins.startedAt ?? Date.now() - 15 * 60_000;
  const lastWindowEnd = (await getModelDeployment(s, penguins.name)).status?.lastMetrics?.windowEnd;
  const answers = await showPrometheusAnswers(s, url, penguins.name, "Stable", since, lastWindowEnd);
  if (answers.accuracy.length === 0)
    throw new StepFailure(`Prometheus has no accuracy series for ModelDeployment ${penguins.name}`, [join(s.dir, "prometheus/prometheus.log")]);
  s.narrator.ok(`Prometheus has the penguin model's loop phase and its accuracy series: ${url}`);
}

// ---------------------------------------------------------------- shared

function operatorLogs(dir: string): string[] {
  return [...podLogFiles(dir, OPERATOR_NAMESPACE, `${OPERATOR_DEPLOYMENT}-`), join(dir, "logs/local-nodes.log"), join(dir, "logs/kube-controller-manager.log")];
}

function trainingLogs(dir: string): string[] {
  return [
    ...podLogFiles(dir, DEMO_NAMESPACE, `${TRAINING_JOB}-`),
    ...podLogFiles(dir, DEMO_NAMESPACE, `${PENGUIN_TRAINING_JOB}-`),
    join(dir, "logs/local-nodes.log"),
  ];
}

function weatherServingLogs(dir: string): string[] {
  return [
    ...podLogFiles(dir, OPERATOR_NAMESPACE, `${OPERATOR_DEPLOYMENT}-`),
    ...podLogFiles(dir, DEMO_NAMESPACE, "weather-serving-"),
    join(dir, "logs/local-nodes.log"),
  ];
}

/** Waits for Ctrl-C (or SIGTERM); checks the cluster's processes meanwhile, which also keeps Node's event loop alive. */
function untilInterrupted(s: Session): Promise<ClusterState["processes"][number] | undefined> {
  return new Promise((done) => {
    const finish = (died?: ClusterState["processes"][number]) => {
      clearInterval(watch);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      done(died);
    };
    const onSignal = () => finish();
    const watch = setInterval(() => {
      const died = s.state.processes.find((p) => !isAlive(p.pid));
      if (died) finish(died);
    }, 2000);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

function printWhereToLook(s: Session | undefined): void {
  if (!s) return;
  const { narrator, state } = s;
  narrator.plain("");
  narrator.plain("Where to look while it runs:");
  narrator.plain(`  export KUBECONFIG=${state.kubeconfig}`);
  narrator.plain(`  alias kubectl=${state.kubectl ?? "kubectl"}`);
  if (state.prometheusUrl)
    narrator.plain(`  ${state.prometheusUrl}    # Prometheus: the dashboard's queries (charts/ballast/dashboards/ballast.json), the alerts`);
  narrator.plain("  kubectl get md -o wide                      # the ModelDeployment's printer columns");
  narrator.plain("  kubectl get md weather -o yaml              # status: conditions, lastMetrics, servingVersion");
  narrator.plain("  kubectl get md penguins -o yaml             # status.loop, lastRetraining (with the gate), history");
  narrator.plain("  kubectl get deploy,svc,pods,jobs,pvc -o wide");
  narrator.plain("  kubectl get events --sort-by=.metadata.creationTimestamp   # the loop's Events: RetrainingStarted … ObservationPassed");
  narrator.plain(
    `  curl "$(kubectl get pod -l ballast.dev/model-deployment=weather,app.kubernetes.io/component=serving -o jsonpath='http://{.items[0].status.podIP}'):${SIDECAR_MONITORING_PORT}${SIDECAR_PATHS.summary}"`,
  );
  narrator.plain(`  ls ${join(state.dir, "pods")}/*/containers/*/    # container logs as files (what kubectl logs reads)`);
  narrator.plain(`  ${join(state.dir, "logs")}/                   # control plane and local node logs`);
}

/** Copies a pod's container log to <dir>/failed-run-logs/<pod dir>/<container>-<run>.log and returns the copy. */
function keepLog(dir: string, file: string): string {
  const [podDirName, , container, run] = relative(join(dir, "pods"), file).split("/");
  const target = join(dir, "failed-run-logs", podDirName!, `${container}-${run}`);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
  return target;
}

/** Pods and warnings at the moment of a failure, printed before anything is torn down. */
async function describeCluster(s: Session): Promise<void> {
  for (const args of [
    ["get", "pods", "-A", "-o", "wide"],
    // Endpoint warnings are the local cluster's known loopback limitation (docs/local-cluster.md), not the failure.
    [
      "get",
      "events",
      "-A",
      "--field-selector",
      "type=Warning,reason!=FailedToUpdateEndpoint,reason!=FailedToUpdateEndpointSlices",
      "--sort-by=.metadata.creationTimestamp",
    ],
  ]) {
    try {
      const out = await s.kubectl.run(args, { timeoutMs: 15_000 });
      s.narrator.command(s.kubectl.display(args));
      s.narrator.block(out.trim().split("\n").slice(-15).join("\n") || "(none)");
    } catch {
      // the API server may be what failed; the logs above say more
    }
  }
}

async function tearDown(dir: string, narrator: Narrator): Promise<void> {
  narrator.plain(`Tearing down the local cluster in ${dir} ...`);
  try {
    const { stopped } = await clusterDown(dir);
    narrator.plain(`stopped ${stopped.length ? stopped.join(", ") : "nothing (no process was running)"}; the control plane logs stay in ${join(dir, "logs")}`);
  } catch (err) {
    narrator.plain(`tear-down failed: ${(err as Error).message}; run \`bin/ballast dev down --dir ${dir}\``);
  }
}
