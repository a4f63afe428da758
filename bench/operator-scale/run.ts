// Operator scale benchmark: N ModelDeployments reconciled by `ballast operator` (owned ConfigMap, Service,
// Deployment and NetworkPolicy applied, observedGeneration current) vs the Go controller-runtime peer a team
// would write instead (bench/operator-scale/peer: the same CRD into the same objects and status fields) vs a
// bare client creating the same owned objects directly, in the same run on the same local cluster, with the
// same workers and no client-side rate limit for either operator. Prints the time ratios, both operators'
// RSS, reconcile p50/p99, their API writes per ModelDeployment by verb and kind (from the API server's
// apiserver_request_total) and the load average. Serving replicas are 0: pods are not what is measured.
// All three contestants are processes timed the same way: from their spawn (Node's or Go's start included) to
// milestones one set of watches sees (Convergence). Ballast runs with deploy/'s NODE_OPTIONS (its heap bound).
// Run: make bench-operator, or after make build: node bench/operator-scale/run.ts [--n 100,1000] [--workers 16]
//      [--json out.json] [--no-peer] (uses $BENCH_KUBECONFIG's cluster if set, else starts a `ballast dev`
//      cluster and stops it after; builds the peer with Go into the tool cache the first time)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const ballast = path.join(repo, "bin", "ballast");

const { values: flags } = parseArgs({
  options: {
    n: { type: "string", default: "100,1000" },
    workers: { type: "string", default: "16" },
    json: { type: "string" },
    "timeout-s": { type: "string", default: "900" },
    "no-peer": { type: "boolean", default: false },
  },
});
const sizes = flags.n!.split(",").map(Number);
const workers = Number(flags.workers);
const timeoutMs = Number(flags["timeout-s"]) * 1000;
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(workers) || workers < 1) {
  console.error("usage: node bench/operator-scale/run.ts [--n 100,1000] [--workers 16] [--json out.json] [--no-peer] [--timeout-s 900]");
  process.exit(2);
}

// ---------------------------------------------------------------- the API objects read

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; generation?: number; labels?: Record<string, string> };
  status?: { observedGeneration?: number };
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------- cluster

function kubectlPath(dir: string | undefined): string {
  if (dir && fs.existsSync(path.join(dir, "state.json"))) {
    const state = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as { kubectl?: string };
    if (state.kubectl) return state.kubectl;
  }
  return "kubectl";
}

let clusterDir: string | undefined;
let kubeconfig = process.env.BENCH_KUBECONFIG;
if (!kubeconfig) {
  clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-bench-operator-"));
  console.error(`starting a local cluster in ${clusterDir}`);
  execFileSync(ballast, ["dev", "up", "--dir", clusterDir, "--gpu-nodes", "0"], { stdio: ["ignore", "ignore", "inherit"] });
  kubeconfig = path.join(clusterDir, "kubeconfig");
}
const kubectl = kubectlPath(clusterDir ?? path.dirname(kubeconfig));
const kc = (args: string[], input?: string) => execFileSync(kubectl, ["--kubeconfig", kubeconfig!, ...args], { input, encoding: "utf8" });

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (clusterDir) execFileSync(ballast, ["dev", "down", "--dir", clusterDir, "--purge"], { stdio: "ignore" });
}
// SIGTERM too: `make bench` stops a bench that runs past its time with it, and the cluster must go with the bench.
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    cleanup();
    process.exit(128 + os.constants.signals[signal]);
  });

// ---------------------------------------------------------------- the measured runs

// The operator's own desired-state functions (compiled), so the bare client creates exactly the same objects.
const desired = (await import(path.join(repo, "dist/operator/serving/desired-state.js"))) as {
  desiredServingObjects(md: unknown, opts: { defaultImage: string }): { configMap: Obj; service: Obj; deployment: Obj; networkPolicy: Obj };
};
// Ballast's own client (one keep-alive pool, plain kubeconfigs read without client-node), from the build.
const { KubeClient } = (await import(path.join(repo, "dist/kube/client.js"))) as typeof import("../../src/kube/client.js");
const api = await KubeClient.load(kubeconfig);
const IMAGE = "ghcr.io/ballast-dev/ballast:bench";
const md = (ns: string, i: number) => ({
  apiVersion: "ballast.dev/v1alpha1",
  kind: "ModelDeployment",
  metadata: { name: `m-${i}`, namespace: ns },
  spec: {
    model: { name: "weather", storageUri: "https://models.example.invalid/store" },
    serving: { replicas: 0, image: IMAGE },
    monitoring: {
      task: "classification",
      labelField: "weather",
      features: [
        { name: "temp_max", type: "numeric" },
        { name: "wind", type: "numeric" },
      ],
    },
  },
});

async function createNamespaceWithModelDeployments(ns: string, n: number): Promise<Obj[]> {
  await api.create("/api/v1/namespaces", { metadata: { name: ns } });
  const created: Obj[] = [];
  await pool([...Array(n).keys()], 32, async (i) => {
    created.push(await api.create<Obj>(`/apis/ballast.dev/v1alpha1/namespaces/${ns}/modeldeployments`, md(ns, i)));
  });
  return created;
}

async function deleteNamespace(ns: string): Promise<void> {
  await api.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  for (let i = 0; i < 600; i++) {
    try {
      await api.get(`/api/v1/namespaces/${ns}`);
    } catch {
      return;
    }
    await sleep(500);
  }
  console.error(`namespace ${ns} still terminating after 5 minutes`);
}

const listPath = (ns: string, group: string, plural: string) => `${group === "" ? "/api/v1" : `/apis/${group}`}/namespaces/${ns}/${plural}`;

const OWNED_KINDS = [
  ["ConfigMap", "", "configmaps", (md: string) => `${md}-monitoring`],
  ["Service", "", "services", (md: string) => md],
  ["Deployment", "apps/v1", "deployments", (md: string) => `${md}-serving`],
  ["NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", (md: string) => `${md}-serving`],
] as const;

/** JSON with object keys sorted, so two renderings of the same value compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** An owned object as the API server returns it: the parts `decided` reads. */
interface StoredObject {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { uid: string; [k: string]: unknown }[] };
  spec?: { clusterIP?: string; clusterIPs?: string[]; template?: { metadata?: { annotations?: Record<string, string> } }; [k: string]: unknown };
  data?: Record<string, string>;
}

/**
 * What of an owned object, as the API server stores it, both operators decide, with the namespace blanked:
 * labels, annotations, owner reference, spec and data (the monitoring JSON parsed). Left out: what only
 * Ballast writes for its own apply bookkeeping (the applied-hash annotation), the pod template's config hash
 * (a hash of the ConfigMap's text, whose key order differs: Go sorts map keys), and what the API server assigns.
 */
function decided(obj: StoredObject, ns: string): string {
  const { labels, annotations = {}, ownerReferences = [] } = obj.metadata;
  const { ["ballast.dev/applied-hash"]: _hash, ...kept } = annotations;
  const spec = structuredClone(obj.spec) ?? {};
  delete spec.clusterIP;
  delete spec.clusterIPs;
  delete spec.template?.metadata?.annotations?.["ballast.dev/monitoring-config-hash"];
  const data = obj.data && Object.fromEntries(Object.entries(obj.data).map(([k, v]) => [k, JSON.parse(v) as unknown]));
  const owners = ownerReferences.map(({ uid: _uid, ...o }) => o);
  return canonical({ labels, annotations: kept, owners, spec, data }).replaceAll(ns, "<namespace>");
}

/**
 * ModelDeployment m-0's status as its operator first wrote it, with what differs between any two writes anyway
 * (transition times, the loop's `since`) left out: both operators must write the same fields.
 */
async function firstStatus(ns: string): Promise<string> {
  const md = await api.get<{ status?: { conditions?: Record<string, unknown>[]; loop?: Record<string, unknown> } }>(
    `${listPath(ns, "ballast.dev/v1alpha1", "modeldeployments")}/m-0`,
  );
  const status = structuredClone(md.status ?? {});
  for (const c of status.conditions ?? []) delete c.lastTransitionTime;
  delete status.loop?.since;
  return canonical(status);
}

/** The kinds whose object for ModelDeployment m-0 differs between two namespaces (the peer's and the bare client's). */
async function differingObjects(ns: string, referenceNs: string): Promise<string[]> {
  const differ: string[] = [];
  for (const [kind, group, plural, name] of OWNED_KINDS) {
    const [a, b] = await Promise.all([ns, referenceNs].map((n) => api.get<StoredObject>(`${listPath(n, group, plural)}/${name("m-0")}`)));
    if (decided(a!, ns) !== decided(b!, referenceNs)) differ.push(kind);
  }
  return differ;
}

/**
 * Milestones of one namespace's convergence, each the first moment (seconds after `t0`, the contestant's spawn) the
 * watches saw it: a first owned object, all 4 N owned objects, every Deployment observed by the Deployment controller,
 * every ModelDeployment's status current. One watch per kind (not polling), so the same clock and the same
 * observer time all three contestants, to the millisecond.
 */
class Convergence {
  t0 = performance.now();
  firstObject?: number;
  objects?: number;
  deploymentsObserved?: number;
  statusCurrent?: number;
  private readonly owned = new Map<string, Set<string>>(OWNED_KINDS.map(([kind]) => [kind, new Set<string>()]));
  private readonly observedDeployments = new Set<string>();
  private readonly currentModelDeployments = new Set<string>();
  private readonly abort = new AbortController();
  private failure: unknown;
  private readonly watches: Promise<void>[] = [];

  private readonly ns: string;
  private readonly n: number;

  private constructor(ns: string, n: number) {
    this.ns = ns;
    this.n = n;
  }

  /** Starts the watches and resolves once each has sent its initial state (the namespace's objects so far). */
  static async watch(ns: string, n: number): Promise<Convergence> {
    const c = new Convergence(ns, n);
    const ready: Promise<void>[] = [];
    const managed = "app.kubernetes.io/managed-by=ballast-operator";
    for (const [kind, group, plural] of OWNED_KINDS)
      ready.push(
        c.follow(listPath(ns, group, plural), managed, (type, obj) => {
          const names = c.owned.get(kind)!;
          if (type === "DELETED") names.delete(obj.metadata.name);
          else names.add(obj.metadata.name);
          if (kind === "Deployment") c.mark(c.observedDeployments, obj, type);
        }),
      );
    ready.push(c.follow(listPath(ns, "ballast.dev/v1alpha1", "modeldeployments"), undefined, (type, obj) => c.mark(c.currentModelDeployments, obj, type)));
    await Promise.all(ready);
    return c;
  }

  /** Adds or removes `obj` from `set` by whether its status has observed its generation. */
  private mark(set: Set<string>, obj: Obj, type: string): void {
    if (type !== "DELETED" && obj.status?.observedGeneration === obj.metadata.generation) set.add(obj.metadata.name);
    else set.delete(obj.metadata.name);
  }

  private follow(collection: string, labelSelector: string | undefined, onChange: (type: string, obj: Obj) => void): Promise<void> {
    let resourceVersion = "";
    let markReady: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const onEvent = (type: string, raw: unknown) => {
      const obj = raw as Obj & { metadata: { resourceVersion?: string; annotations?: Record<string, string> } };
      resourceVersion = obj.metadata.resourceVersion ?? resourceVersion;
      if (type === "BOOKMARK") {
        // The end of the initial state (a watch with sendInitialEvents): from here on, events are news.
        if (obj.metadata.annotations?.["k8s.io/initial-events-end"] === "true") markReady();
        return;
      }
      if (type === "ERROR") throw new Error(`watch of ${collection}: ${JSON.stringify(raw)}`);
      onChange(type, obj);
      this.check();
    };
    const run = async () => {
      while (!this.abort.signal.aborted) {
        const query = resourceVersion
          ? { resourceVersion, allowWatchBookmarks: true, labelSelector, timeoutSeconds: 3600 }
          : { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan", allowWatchBookmarks: true, labelSelector, timeoutSeconds: 3600 };
        await api.watch(collection, query, onEvent, this.abort.signal);
      }
    };
    this.watches.push(
      run().catch((err: unknown) => {
        if (!this.abort.signal.aborted) this.failure = err;
        markReady();
      }),
    );
    return ready;
  }

  private check(): void {
    const at = (performance.now() - this.t0) / 1000;
    const owned = [...this.owned.values()];
    if (this.firstObject === undefined && owned.some((names) => names.size > 0)) this.firstObject = at;
    if (this.objects === undefined && owned.every((names) => names.size === this.n)) this.objects = at;
    if (this.deploymentsObserved === undefined && this.observedDeployments.size === this.n) this.deploymentsObserved = at;
    if (this.statusCurrent === undefined && this.objects !== undefined && this.currentModelDeployments.size === this.n) this.statusCurrent = at;
  }

  /** Resolves once `reached` holds; throws when a watch failed, `alive` says the contestant died, or after the bench timeout. */
  async until(what: string, reached: () => boolean, alive: () => string | undefined = () => undefined): Promise<void> {
    while (!reached()) {
      if (this.failure) throw this.failure;
      const dead = alive();
      if (dead) throw new Error(`${dead} before ${what}`);
      if (performance.now() - this.t0 > timeoutMs) throw new Error(`${this.ns}: not ${what} within ${timeoutMs / 1000} s`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.watches);
  }
}

/**
 * The bare client: a process that POSTs the four objects per ModelDeployment (built here, before it starts, by the
 * operator's own desiredServingObjects) with at most 4 × workers requests in flight, the operators' bound. Timed
 * like them from its spawn: `created` until all 4 N objects exist, `observed` until the Deployment controller has
 * also observed every Deployment (kube-controller-manager's client rate limit bounds that for all three).
 */
async function bare(n: number): Promise<{ created: number; observed: number }> {
  const ns = `bench-bare-${n}`;
  const mds = await createNamespaceWithModelDeployments(ns, n);
  const writes: [string, Obj][] = [];
  for (const m of mds) {
    // The API server returns the defaulted spec, as the operator's informer would see it.
    const objs = desired.desiredServingObjects(m, { defaultImage: IMAGE });
    writes.push(
      [listPath(ns, "", "configmaps"), objs.configMap],
      [listPath(ns, "", "services"), objs.service],
      [listPath(ns, "apps/v1", "deployments"), objs.deployment],
      [listPath(ns, "networking.k8s.io/v1", "networkpolicies"), objs.networkPolicy],
    );
  }
  const objectsFile = path.join(os.tmpdir(), `ballast-bench-bare-${process.pid}-${n}.json`);
  fs.writeFileSync(objectsFile, JSON.stringify(writes));
  const watched = await Convergence.watch(ns, n);
  watched.t0 = performance.now();
  const client = spawn(process.execPath, [path.join(repo, "bench/operator-scale/bare-client.ts"), kubeconfig!, objectsFile, String(workers * 4)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(client);
  const exited = () => (client.exitCode !== null && client.exitCode !== 0 ? `the bare client exited with code ${client.exitCode}` : undefined);
  await watched.until("all objects exist", () => watched.objects !== undefined, exited);
  // Timed too: the operator's status is only current once the Deployment controller has seen the Deployment, and
  // this must not compete with the operators' runs.
  await watched.until("every Deployment observed", () => watched.deploymentsObserved !== undefined, exited);
  await watched.stop();
  fs.rmSync(objectsFile, { force: true });
  return { created: watched.objects!, observed: watched.deploymentsObserved! };
}

/** The two operators measured: Ballast's, and the Go controller-runtime peer. */
type OperatorKind = "ballast" | "peer";

interface OperatorRun {
  /** Spawn → the first owned object exists (start-up: process start, imports, cache sync, first reconcile). */
  firstObjectSeconds: number;
  /** Spawn → all 4 N owned objects exist (what the bare client's `created` compares with). */
  objectsSeconds: number;
  /** Spawn → those and every ModelDeployment's status.observedGeneration current (compares with `observed`). */
  seconds: number;
  /** Spawn → /readyz 200 (process start, imports, informer caches synced). */
  startupSeconds: number;
  rssMiB: number;
  peakRssMiB: number;
  /** Ballast only (the Go peer exports no JS heap or status-conflict counter). */
  heapUsedMiB?: number;
  statusConflicts?: number;
  /** Peer only: the kinds whose object differs from the one Ballast's desired state makes (empty: the same). */
  differsFromBallast?: string[];
  /** m-0's first status (firstStatus), compared between the two operators. */
  firstStatus: string;
  p50: number;
  p99: number;
  reconciles: number;
  errors: number;
  /** The operator's API writes while it converged, by "VERB resource[/subresource]". */
  writes: Record<string, number>;
}

function apiserverWrites(): Map<string, number> {
  // Through kubectl: Ballast's client speaks JSON only, /metrics is Prometheus text (several MB).
  const text = execFileSync(kubectl, ["--kubeconfig", kubeconfig!, "get", "--raw", "/metrics"], { encoding: "utf8", maxBuffer: 512 * 2 ** 20 });
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const label = (k: string) => new RegExp(`[{,]${k}="([^"]*)"`).exec(line)?.[1] ?? "";
    const verb = label("verb");
    if (!["POST", "PUT", "PATCH", "APPLY", "DELETE"].includes(verb)) continue;
    const resource = `${label("group") ? `${label("group")}/` : ""}${label("resource")}${label("subresource") ? `/${label("subresource")}` : ""}`;
    const key = `${verb} ${resource}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return counts;
}

/**
 * The writes only the operator makes: every write to ModelDeployments, applies of the four serving kinds
 * (the Deployment controller PUTs Deployments and their status, never applies) and events.k8s.io Events
 * (kube-controller-manager records core/v1 Events).
 */
function operatorWrites(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const ours = (key: string) =>
    / ballast\.dev\/modeldeployments/.test(key) ||
    /^(PATCH|APPLY) (configmaps|services|apps\/deployments|networking\.k8s\.io\/networkpolicies)$/.test(key) ||
    / events\.k8s\.io\/events$/.test(key);
  const delta: Record<string, number> = {};
  for (const [key, count] of after) if (ours(key) && count - (before.get(key) ?? 0) > 0) delta[key] = count - (before.get(key) ?? 0);
  return delta;
}

/**
 * Until every controller's first status of every ModelDeployment is there — serving (the Serving condition,
 * once the Deployment is observed), the loop (status.loop), monitoring (DriftDetected) — and one scrape interval
 * more, in which the loop and monitoring controllers look again: the writes counted are all those creating N
 * ModelDeployments costs, including any the loop or monitoring make after the first status.
 */
async function waitSettled(ns: string, n: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const mds = await api.get<{ items: (Obj & { status?: { conditions?: { type: string }[]; loop?: unknown } })[] }>(
      `${listPath(ns, "ballast.dev/v1alpha1", "modeldeployments")}?resourceVersion=0`,
    );
    const settled = (m: (typeof mds.items)[number]) =>
      m.status?.loop !== undefined && ["Serving", "DriftDetected"].every((t) => m.status?.conditions?.some((c) => c.type === t));
    if (mds.items.length === n && mds.items.every(settled)) break;
    await sleep(500);
  }
  // The default scrapeInterval (30 s: these ModelDeployments set none), and a last reconcile's round trip.
  await sleep(33_000);
}

/** A port nobody listens on now: other benches and operators share the machine. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function histogramQuantile(metrics: string, name: string, q: number): number {
  const buckets: [number, number][] = [];
  for (const line of metrics.split("\n")) {
    if (!line.includes('controller="serving"')) continue;
    const m = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)`).exec(line);
    if (m) buckets.push([m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])]);
  }
  const total = buckets.at(-1)?.[1] ?? 0;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The NODE_OPTIONS deploy/ (and the chart, by default) runs the operator with: its V8 heap bound. */
const DEPLOYED_NODE_OPTIONS = (() => {
  const manifest = fs.readFileSync(path.join(repo, "deploy/base/operator.yaml"), "utf8");
  const value = /- name: NODE_OPTIONS\s+value: "([^"]*)"/.exec(manifest)?.[1];
  if (value === undefined) throw new Error("deploy/base/operator.yaml sets no NODE_OPTIONS for the operator: the bench cannot run it as deployed");
  return value;
})();

/** How to start each operator on one namespace, its metrics and probes on the given ports. */
function operatorCommand(kind: OperatorKind, ns: string, metricsPort: number, probePort: number): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  if (kind === "peer")
    return {
      command: peerBinary!,
      args: [
        "--kubeconfig",
        kubeconfig!,
        "--namespace",
        ns,
        "--workers",
        String(workers),
        "--qps",
        "-1",
        "--metrics-bind-address",
        `127.0.0.1:${metricsPort}`,
        "--health-probe-bind-address",
        `127.0.0.1:${probePort}`,
        "--default-image",
        IMAGE,
        "--zap-log-level",
        "error",
      ],
      env: process.env,
    };
  return {
    command: ballast,
    args: [
      "operator",
      "--kubeconfig",
      kubeconfig!,
      "--namespaces",
      ns,
      "--workers",
      String(workers),
      "--metrics-bind-address",
      `127.0.0.1:${metricsPort}`,
      "--health-probe-bind-address",
      `127.0.0.1:${probePort}`,
      "--log-level",
      "warn",
    ],
    // As deployed (deploy/'s heap bound) unless BENCH_OPERATOR_NODE_OPTIONS says otherwise, e.g. "" for none or
    // "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the operator.
    env: { ...process.env, NODE_OPTIONS: process.env.BENCH_OPERATOR_NODE_OPTIONS ?? DEPLOYED_NODE_OPTIONS },
  };
}

async function runOperator(kind: OperatorKind, n: number): Promise<OperatorRun> {
  const ns = `bench-${kind}-${n}`;
  await createNamespaceWithModelDeployments(ns, n);
  // Ballast serves metrics and probes on one port; controller-runtime wants two listeners.
  const metricsPort = await freePort();
  const probePort = kind === "peer" ? await freePort() : metricsPort;
  const writesBefore = apiserverWrites();
  const watched = await Convergence.watch(ns, n);
  watched.t0 = performance.now();
  const { command, args, env } = operatorCommand(kind, ns, metricsPort, probePort);
  const op = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], env });
  children.push(op);
  const rss = () => {
    const status = fs.readFileSync(`/proc/${op.pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
  };
  let startupSeconds = NaN;
  const probing = (async () => {
    while (Number.isNaN(startupSeconds) && op.exitCode === null) {
      const ready = await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined);
      if (ready?.status === 200) startupSeconds = (performance.now() - watched.t0) / 1000;
      else await sleep(100);
    }
  })();
  const exited = () => (op.exitCode !== null ? `${kind} operator exited with code ${op.exitCode}` : undefined);
  await watched.until("status current", () => watched.statusCurrent !== undefined, exited);
  await probing;
  await watched.stop();
  const { firstObject, objects, statusCurrent } = watched as Required<Convergence>;
  const { rss: rssMiB, peak: peakRssMiB } = rss();
  const status = await firstStatus(ns);
  // The peer has only the serving controller: its writes are complete once every status is current (and the
  // last round trips are back); Ballast's loop and monitoring controllers write their first status after.
  if (kind === "ballast") await waitSettled(ns, n);
  else await sleep(3000);
  const writes = operatorWrites(writesBefore, apiserverWrites());
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const serving = (name: string) => Number(new RegExp(`${name}\\{[^}]*controller="serving"[^}]*\\} (\\S+)`).exec(metrics)?.[1] ?? 0);
  const run: OperatorRun = {
    seconds: statusCurrent,
    objectsSeconds: objects,
    firstObjectSeconds: firstObject,
    startupSeconds,
    rssMiB,
    peakRssMiB,
    firstStatus: status,
    p50: histogramQuantile(metrics, "controller_runtime_reconcile_time_seconds", 0.5),
    p99: histogramQuantile(metrics, "controller_runtime_reconcile_time_seconds", 0.99),
    reconciles: serving("controller_runtime_reconcile_time_seconds_count"),
    errors: serving("controller_runtime_reconcile_errors_total"),
    writes,
  };
  // The comparison is fair only if the peer makes what Ballast makes: its objects against the bare client's
  // (built by Ballast's own desiredServingObjects), as the API server stores both.
  if (kind === "peer") run.differsFromBallast = await differingObjects(ns, `bench-bare-${n}`);
  if (kind === "ballast") {
    run.heapUsedMiB = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? 0) / 2 ** 20;
    // Every controller's series: a 409 of the loop or the monitoring controller costs a round trip as well.
    run.statusConflicts = [...metrics.matchAll(/^ballast_operator_status_conflicts_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  }
  // Stopped before its namespace goes: neither operator has a finalizer to release (the garbage collector removes
  // the owned objects), and the peer would re-apply every object the collector deletes into a terminating namespace.
  op.kill("SIGTERM");
  await new Promise((r) => op.once("exit", r));
  await deleteNamespace(ns);
  return run;
}

const loadAverage = () => fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const perObject = (writes: Record<string, number>, n: number) =>
  `${(Object.values(writes).reduce((a, b) => a + b, 0) / n).toFixed(2)} per ModelDeployment: ` +
  Object.entries(writes)
    .sort()
    .map(([k, v]) => `${k} ${(v / n).toFixed(2)}`)
    .join(", ");
const describe = (op: OperatorRun) =>
  `ready after ${op.startupSeconds.toFixed(2)} s, first object ${op.firstObjectSeconds.toFixed(2)} s, objects ${op.objectsSeconds.toFixed(2)} s, ` +
  `status current ${op.seconds.toFixed(2)} s, ` +
  `RSS ${op.rssMiB.toFixed(0)} MiB (peak ${op.peakRssMiB.toFixed(0)} MiB${op.heapUsedMiB === undefined ? "" : `, JS heap used ${op.heapUsedMiB.toFixed(0)} MiB`}), ` +
  `reconcile p50 ${(op.p50 * 1000).toFixed(0)} ms p99 ${(op.p99 * 1000).toFixed(0)} ms over ${op.reconciles} reconciles (${op.errors} errors` +
  `${op.statusConflicts === undefined ? "" : `, ${op.statusConflicts} status conflicts`})`;

// The peer is built (Go, into the tool cache) before anything is timed; a cold build takes minutes.
let peerBinary: string | undefined;
if (!flags["no-peer"]) {
  console.error("building the Go peer (bench/operator-scale/peer/ensure-peer.sh; cached after the first build)...");
  peerBinary = execFileSync(path.join(repo, "bench/operator-scale/peer/ensure-peer.sh"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

const results: Record<string, unknown>[] = [];
try {
  kc(["apply", "--server-side", "--force-conflicts", "-f", path.join(repo, "crds/ballast.dev_modeldeployments.yaml")]);
  // kubectl wait fails at once (not waits) while the new CRD has no status.conditions yet: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      kc(["wait", "--for=condition=Established", "crd/modeldeployments.ballast.dev", "--timeout=60s"]);
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(500);
    }
  }
  const loadAtStart = loadAverage();
  console.log(`load average at start ${loadAtStart} (${os.cpus().length} cores); workers ${workers}, no client-side rate limit in either operator`);
  console.log(`Ballast's NODE_OPTIONS: "${process.env.BENCH_OPERATOR_NODE_OPTIONS ?? DEPLOYED_NODE_OPTIONS}"`);
  for (const n of sizes) {
    console.error(`N=${n}: bare client...`);
    const bareS = await bare(n);
    console.error(`N=${n}: Go peer...`);
    const peer = peerBinary ? await runOperator("peer", n) : undefined;
    console.error(`N=${n}: Ballast...`);
    const op = await runOperator("ballast", n);
    const row = {
      n,
      workers,
      load: loadAverage(),
      bareSeconds: bareS.created,
      bareObservedSeconds: bareS.observed,
      objectsRatio: op.objectsSeconds / bareS.created,
      ratio: op.seconds / bareS.observed,
      ballast: op,
      peer,
      ...(peer && {
        peerObjectsRatio: peer.objectsSeconds / bareS.created,
        peerRatio: peer.seconds / bareS.observed,
        ballastVsPeerObjects: op.objectsSeconds / peer.objectsSeconds,
        ballastVsPeer: op.seconds / peer.seconds,
        rssVsPeer: op.rssMiB / peer.rssMiB,
      }),
    };
    results.push(row);
    console.log(`N=${n} (load average now ${row.load}):`);
    console.log(`  bare client: created ${bareS.created.toFixed(2)} s, observed by the Deployment controller ${bareS.observed.toFixed(2)} s`);
    if (peer) console.log(`  Go peer:     ${describe(peer)}`);
    console.log(`  Ballast:     ${describe(op)}`);
    console.log(`  Ballast / bare client: objects ${row.objectsRatio.toFixed(2)}, status ${row.ratio.toFixed(2)} (goal <= 1.5)`);
    if (peer && row.peerRatio !== undefined) {
      console.log(`  Go peer / bare client: objects ${row.peerObjectsRatio!.toFixed(2)}, status ${row.peerRatio.toFixed(2)}`);
      console.log(
        `  Ballast / Go peer: objects ${row.ballastVsPeerObjects!.toFixed(2)}, status ${row.ballastVsPeer!.toFixed(2)} (goal <= 1.0); RSS ${row.rssVsPeer!.toFixed(2)} (goal <= 2)`,
      );
      console.log(`  Go peer API writes ${perObject(peer.writes, n)}`);
      const differ = peer.differsFromBallast ?? [];
      console.log(`  Go peer's objects vs Ballast's desired state (m-0): ${differ.length ? `DIFFER in ${differ.join(", ")}` : "the same"}`);
      console.log(
        `  Go peer's first status vs Ballast's (m-0): ${peer.firstStatus === op.firstStatus ? "the same" : `DIFFER: peer ${peer.firstStatus}, Ballast ${op.firstStatus}`}`,
      );
    }
    console.log(`  Ballast API writes ${perObject(op.writes, n)}`);
    await deleteNamespace(`bench-bare-${n}`);
  }
  console.log(`load average at start ${loadAtStart}, at end ${loadAverage()}`);
  if (flags.json)
    fs.writeFileSync(flags.json, `${JSON.stringify({ machine: `${os.cpus().length} cores`, loadAtStart, loadAtEnd: loadAverage(), results }, null, 2)}\n`);
} finally {
  await api.close();
  cleanup();
}
