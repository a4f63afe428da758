// What every step of the demo shares: the cluster it talks to, how a step fails, applying objects the way a
// person would, waiting without missing a crash loop, and running a training Job to its end.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { ModelDeployment } from "../api/index.js";
import type { ClusterState } from "../devcluster/state.js";
import type { Kubectl } from "./kubectl.js";
import { DEMO_NAMESPACE, TRAINING_CONTAINER, TRAINING_SELECTOR } from "./manifests.js";
import type { Narrator } from "./narrator.js";
import { containerLogFile } from "./pod-logs.js";

export const OPERATOR_NAMESPACE = "ballast-system";
export const OPERATOR_DEPLOYMENT = "ballast-operator";

/** A step that failed, with the files a person should open to see why. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly lookAt: string[],
  ) {
    super(message);
  }
}

export interface Session {
  dir: string;
  state: ClusterState;
  kubectl: Kubectl;
  /** False when the demo reused a cluster that was already running: a failure leaves it running. */
  startedCluster: boolean;
  narrator: Narrator;
  signal: AbortSignal;
}

export async function applyObjects(s: Session, objects: object[], what: string): Promise<void> {
  const args = ["apply", "--server-side", "--field-manager=ballast-demo", "-f", "-"];
  s.narrator.command(`${s.kubectl.display(args)}    # ${what}`);
  s.narrator.block(await s.kubectl.run(args, { input: objects.map((o) => stringify(o)).join("---\n"), signal: s.signal }));
}

export function getModelDeployment(s: Session, name: string): Promise<ModelDeployment> {
  return s.kubectl.json<ModelDeployment>(["get", "modeldeployment", name, "-n", DEMO_NAMESPACE], { signal: s.signal });
}

/** Runs and shows a kubectl command a person would type to look (get, describe). */
export async function show(s: Session, args: string[]): Promise<string> {
  s.narrator.command(s.kubectl.display(args));
  const out = await s.kubectl.run(args, { signal: s.signal });
  s.narrator.block(out.trim() || "(nothing)");
  return out;
}

// The CLI this demo is part of, run as its own process the way a person would type it (the demo may not import cli/).
const BALLAST_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/** Runs and shows a `ballast` command a person would type to look (history), against the demo's cluster. */
export async function showBallast(s: Session, args: string[]): Promise<string> {
  s.narrator.command(["ballast", ...args].join(" "));
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [BALLAST_MAIN, ...args],
      { env: { ...process.env, KUBECONFIG: s.kubectl.kubeconfig }, maxBuffer: 16 << 20, timeout: 60_000, signal: s.signal },
      (err, stdout, stderr) => (err ? reject(new Error(`\`ballast ${args.join(" ")}\` failed: ${stderr.trim() || err.message}`)) : resolve(stdout)),
    ),
  );
  s.narrator.block(out.trimEnd() || "(nothing)");
  return out;
}

/** A container that exited this often while we wait will not come up by itself: say so now, not at the timeout. */
const CRASH_RESTARTS = 3;

/**
 * Runs a waiting kubectl command (`wait`, `rollout status`) while watching the pods it waits for; a container
 * that keeps exiting or whose image cannot be pulled ends the wait at once with what is wrong.
 */
export async function waitUnlessCrashing(s: Session, args: string[], namespace: string, selector: string): Promise<string> {
  const stop = new AbortController();
  const signal = AbortSignal.any([s.signal, stop.signal]);
  let problem: string | undefined;
  const watch = (async () => {
    while (!signal.aborted) {
      await sleep(2000, undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      const pods = await s.kubectl.json<{ items: V1Pod[] }>(["get", "pods", "-n", namespace, "-l", selector]).catch(() => ({ items: [] }));
      problem = pods.items.map(crashingContainer).find((p) => p !== undefined);
      if (problem) stop.abort();
    }
  })();
  try {
    return await s.kubectl.run(args, { signal });
  } catch (err) {
    if (problem) throw new Error(problem, { cause: err });
    throw err;
  } finally {
    stop.abort();
    await watch;
  }
}

function crashingContainer(pod: V1Pod): string | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const waiting = c.state?.waiting?.reason;
    const where = `container ${c.name} of pod ${pod.metadata?.name}`;
    if (waiting === "ErrImagePull" || waiting === "ImagePullBackOff") return `${where} cannot start: ${waiting} (${c.state?.waiting?.message ?? c.image})`;
    if (c.restartCount >= CRASH_RESTARTS) {
      const last = c.lastState?.terminated;
      return `${where} keeps exiting: ${c.restartCount} restarts${last ? `, last exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ""}` : ""}`;
    }
  }
  return undefined;
}

/** The image the operator runs: the demo's Jobs use the same Ballast version. */
export async function operatorImage(s: Session): Promise<string> {
  const args = ["get", "deployment", OPERATOR_DEPLOYMENT, "-n", OPERATOR_NAMESPACE, "-o", "jsonpath={.spec.template.spec.containers[0].image}"];
  return (await s.kubectl.run(args, { signal: s.signal })).trim();
}

/** What `ballast train` prints as its result line. */
export interface TrainOutput {
  model: string;
  version: string;
  store: string;
  backend: string;
  holdoutMetrics: Record<string, number>;
  rows: number;
  epochsRun: number;
  stoppedEarly: boolean;
}

/** `ballast train` prints one JSON result line on stdout; the rest of the log is pino JSON on stderr. */
export function trainOutput(logFile: string): TrainOutput | undefined {
  if (!existsSync(logFile)) return undefined;
  for (const line of readFileSync(logFile, "utf8").split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      const parsed = JSON.parse(line) as Partial<TrainOutput> & { level?: number };
      if (parsed.level === undefined && parsed.version && parsed.holdoutMetrics) return parsed as TrainOutput;
    } catch {
      // a partial line: keep looking
    }
  }
  return undefined;
}

export interface FinishedJob {
  name: string;
  pod: V1Pod;
  node: string;
  /** From the wait's start (just after the Job was applied) until the demo saw it Complete. */
  seconds: number;
  logFile: string;
  result: TrainOutput;
}

/** The Job's pod and what a person opens when it failed. */
export function jobLookAt(s: Session, pod: V1Pod | undefined, job: string): string[] {
  const podLog = pod?.metadata?.uid ? [containerLogFile(s.dir, DEMO_NAMESPACE, pod.metadata.name!, pod.metadata.uid, TRAINING_CONTAINER)] : [];
  return [...podLog, join(s.dir, "logs/local-nodes.log"), `kubectl describe job ${job}`];
}

/**
 * Waits for the demo's training Jobs (already applied) to complete, announcing each pod's node as the scheduler
 * places it; one `kubectl get` per second covers them all. A failed Job fails the step with its log.
 */
export async function waitForTrainingJobs(s: Session, names: readonly string[], timeoutMs = 300_000): Promise<Map<string, FinishedJob>> {
  const started = Date.now();
  const announced = new Set<string>();
  const pods = new Map<string, V1Pod>();
  const done = new Map<string, FinishedJob>();
  while (done.size < names.length) {
    if (Date.now() - started > timeoutMs) {
      const late = names.filter((n) => !done.has(n));
      throw new StepFailure(
        `Job ${late.join(", ")} did not finish within ${timeoutMs / 1000} s`,
        late.flatMap((n) => jobLookAt(s, pods.get(n), n)),
      );
    }
    await sleep(1000, undefined, { signal: s.signal });
    const list = await s.kubectl.json<{ items: (V1Job | V1Pod)[] }>(["get", "jobs,pods", "-n", DEMO_NAMESPACE, "-l", TRAINING_SELECTOR], { signal: s.signal });
    for (const name of names.filter((n) => !done.has(n))) {
      const pod = list.items.filter((o): o is V1Pod => o.kind === "Pod" && o.metadata?.labels?.["job-name"] === name).at(-1) ?? pods.get(name);
      if (pod) pods.set(name, pod);
      if (pod?.spec?.nodeName && !announced.has(name)) {
        announced.add(name);
        s.narrator.say(`the scheduler placed pod ${pod.metadata!.name} (Job ${name}) on node ${pod.spec.nodeName}`);
      }
      const job = list.items.find((o): o is V1Job => o.kind === "Job" && o.metadata?.name === name);
      const conditions = job?.status?.conditions ?? [];
      const failed = conditions.find((c) => c.type === "Failed" && c.status === "True");
      if (failed) throw new StepFailure(`Job ${name} failed: ${failed.reason ?? ""} ${failed.message ?? ""}`.trim(), jobLookAt(s, pod, name));
      if (!job || !conditions.some((c) => c.type === "Complete" && c.status === "True")) continue;
      if (!pod?.spec?.nodeName) throw new StepFailure(`Job ${name} completed but its pod is gone`, []);
      const logFile = containerLogFile(s.dir, DEMO_NAMESPACE, pod.metadata!.name!, pod.metadata!.uid!, TRAINING_CONTAINER);
      const result = trainOutput(logFile);
      if (!result) throw new StepFailure(`Job ${name} completed but its log has no result line from \`ballast train\``, [logFile]);
      done.set(name, { name, pod, node: pod.spec.nodeName, seconds: (Date.now() - started) / 1000, logFile, result });
    }
  }
  return done;
}

export async function pollUntil<T>(s: Session, what: string, test: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await test();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(everyMs, undefined, { signal: s.signal });
  }
}

export function fmt(x: number | undefined | null, digits = 3): string {
  return x === undefined || x === null || !Number.isFinite(x) ? "n/a" : x.toFixed(digits);
}
