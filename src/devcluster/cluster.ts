// `ballast dev up/down/status`: start the control plane and the local nodes, record them, stop them.
import type { V1Node } from "@kubernetes/client-node";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeClient, resourcePath, type KubeList } from "../kube/client.js";
import { NODES, PODS, SERVICE_ACCOUNTS } from "../kube/resources.js";
import { locateBinaries } from "./binaries.js";
import { controlPlaneSpecs, type ComponentSpec, type ControlPlanePorts } from "./controlplane.js";
import { httpProbe } from "./probes.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { ensurePki, issueKubeletServingCert } from "./pki.js";
import { APISERVER_KUBELET_CLIENT_CN } from "./kubelet-server.js";
import { isAlive, logTail, startDetached, stopProcess } from "./processes.js";
import { isListening, PortAllocator } from "./ports.js";
import { readState, stateFile, writeState, type ClusterState, type RecordedProcess } from "./state.js";
import { DEFAULT_IMAGE_REPOSITORY, localNodeSpecs } from "./nodes.js";
import { chooseLoopbackBlocks } from "./ip-allocator.js";
import { podProcessPidFiles } from "./pod-dirs.js";
import { locatePrometheusTool, SHIPPED_RULES_FILE, startPrometheus } from "./prometheus.js";
import { locateRegistry, startRegistry } from "./oci-registry.js";
import { locateWeed, startS3Server } from "./s3-server.js";

export interface UpOptions {
  dir: string;
  cpuNodes: number;
  gpuNodes: number;
  imageRepository?: string;
  log?: (line: string) => void;
  /** Aborting (e.g. on SIGINT) stops what was started and rejects. */
  signal?: AbortSignal;
  /** Also run Prometheus, scraping the operator and serving pods and evaluating the shipped alert rules. */
  prometheus?: boolean;
  /** Also run an S3 server (SeaweedFS) with a bucket for s3:// model stores. */
  s3?: boolean;
  /** Also run an OCI registry (CNCF distribution) for images and charts. */
  registry?: boolean;
  /**
   * OCI layouts whose images the local nodes run from their root filesystem, found by digest, and by tag when
   * `byTag`; unset: every container runs the checkout's CLI (the fast path, no image needed).
   */
  images?: { layouts: string[]; byTag: boolean };
}

/** `make image`'s OCI layout in this checkout: what `dev up` runs pods from by default, when it exists. */
export const checkoutImageLayout = (): string => join(repoRoot, "dist/image/oci");

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
/** The built CLI the node agent and pod containers run (make build writes it). */
export const ballastCliScript = join(repoRoot, "dist/cli/main.js");

const CLIENTS = [
  { file: "admin", commonName: "ballast-admin", organization: "system:masters" },
  { file: "kube-controller-manager", commonName: "system:kube-controller-manager" },
  { file: "kube-scheduler", commonName: "system:kube-scheduler" },
  { file: "local-nodes", commonName: "ballast-local-nodes", organization: "system:masters" },
  // Only for the kubelet API: no group, so it has no rights on the API server itself.
  { file: "apiserver-kubelet-client", commonName: APISERVER_KUBELET_CLIENT_CN },
];

export async function clusterUp(options: UpOptions): Promise<ClusterState> {
  const log = options.log ?? (() => {});
  const dir = resolve(options.dir);
  const existing = readState(dir);
  if (existing && existing.processes.some((p) => isAlive(p.pid))) {
    throw new Error(`a local cluster is already running in ${dir} (run \`ballast dev down --dir ${dir}\` first)`);
  }
  if (!existsSync(ballastCliScript)) throw new Error(`${ballastCliScript} is missing: run \`make build\` first`);
  const bins = locateBinaries();
  // Only the user who started the cluster may read it: it holds the keys, etcd's data and pods' secret volumes.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);

  const alloc = new PortAllocator();
  const ports: ControlPlanePorts = {
    etcdClient: await alloc.allocate(),
    etcdPeer: await alloc.allocate(),
    apiServer: await alloc.allocate(),
    controllerManager: await alloc.allocate(),
    scheduler: await alloc.allocate(),
  };
  const { podOctet, serviceOctet } = existing ? { podOctet: existing.podOctet, serviceOctet: existing.serviceOctet } : chooseLoopbackBlocks();
  const pkiDir = join(dir, "pki");
  const pki = await ensurePki(pkiDir, CLIENTS, ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]);
  const nodes = localNodeSpecs(options.cpuNodes, options.gpuNodes);
  await issueKubeletServingCert(
    pki,
    nodes.map((n) => n.address),
  );
  const server = `https://127.0.0.1:${ports.apiServer}`;
  const kubeconfigFor = (client: string, file: string) => {
    const path = join(dir, file);
    const c = pki.clients[client]!;
    writeKubeconfig(path, { server, caCertFile: pki.caCert, clientCertFile: c.cert, clientKeyFile: c.key, user: client });
    return path;
  };
  const kubeconfig = kubeconfigFor("admin", "kubeconfig");
  const paths = {
    dir,
    pkiDir,
    controllerManagerKubeconfig: kubeconfigFor("kube-controller-manager", "controller-manager.kubeconfig"),
    schedulerKubeconfig: kubeconfigFor("kube-scheduler", "scheduler.kubeconfig"),
  };
  const nodesKubeconfig = kubeconfigFor("local-nodes", "local-nodes.kubeconfig");

  const state: ClusterState = {
    dir,
    kubernetesVersion: bins.kubernetesVersion,
    kubeconfig,
    server,
    ...(bins.kubectl ? { kubectl: bins.kubectl } : {}),
    ports,
    processes: [],
    nodes: nodes.map((n) => n.name),
    podOctet,
    serviceOctet,
    startedAt: new Date().toISOString(),
  };

  try {
    for (const spec of controlPlaneSpecs(bins, ports, paths, { serviceCidr: `127.${serviceOctet}.0.0/16` })) {
      options.signal?.throwIfAborted();
      log(`starting ${spec.name}`);
      state.processes.push(startComponent(dir, spec));
      writeState(state);
      await waitHealthy(spec, state.processes.at(-1)!, options.signal);
    }
    options.signal?.throwIfAborted();
    log(`starting local nodes: ${state.nodes.join(", ")}`);
    const agentArgs = [
      ballastCliScript,
      "dev",
      "node-agent",
      "--dir",
      dir,
      "--kubeconfig",
      nodesKubeconfig,
      "--nodes",
      String(options.cpuNodes),
      "--gpu-nodes",
      String(options.gpuNodes),
      "--image-repository",
      options.imageRepository ?? DEFAULT_IMAGE_REPOSITORY,
      "--pod-octet",
      String(podOctet),
      ...(options.images?.layouts ?? []).flatMap((layout) => ["--image-layout", resolve(layout)]),
      ...(options.images?.byTag ? ["--image-by-tag"] : []),
    ];
    state.processes.push(
      recorded(
        startDetached({ name: "local-nodes", command: process.execPath, args: agentArgs, log: join(dir, "logs/local-nodes.log") }),
        process.execPath,
        agentArgs,
      ),
    );
    writeState(state);
    await waitForCluster(kubeconfig, state, options.signal);
    if (options.prometheus) await addPrometheus(state, alloc, log, options.signal);
    if (options.s3) await addS3Server(state, alloc, log, options.signal);
    if (options.registry) await addRegistry(state, alloc, log, options.signal);
    log(`cluster ready: Kubernetes ${bins.kubernetesVersion}, API server ${server}`);
    return state;
  } catch (err) {
    log(`start failed, stopping what was started: ${(err as Error).message}`);
    await clusterDown(dir);
    throw err;
  }
}

async function addPrometheus(state: ClusterState, alloc: PortAllocator, log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  log("starting prometheus (first run builds it from its Go module: minutes)");
  const binary = locatePrometheusTool("prometheus");
  const admin = await KubeClient.load(state.kubeconfig);
  try {
    const prometheus = await startPrometheus({
      dir: state.dir,
      server: state.server,
      admin,
      port: await alloc.allocate(),
      binary,
      ruleSources: existsSync(SHIPPED_RULES_FILE) ? [SHIPPED_RULES_FILE] : [],
      signal,
    });
    state.processes.push(prometheus.process);
    state.prometheusUrl = prometheus.url;
    writeState(state);
    log(`prometheus ready: ${prometheus.url}`);
  } finally {
    await admin.close();
  }
}

async function addS3Server(state: ClusterState, alloc: PortAllocator, log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  log("starting seaweedfs (S3; first run builds it from its Go module: minutes)");
  const s3 = await startS3Server({ dir: state.dir, binary: locateWeed(), alloc, signal });
  state.processes.push(s3.process);
  state.s3 = { endpoint: s3.endpoint, bucket: s3.bucket, envFile: s3.envFile };
  writeState(state);
  log(`seaweedfs ready: ${s3.endpoint}, bucket ${s3.bucket}`);
}

async function addRegistry(state: ClusterState, alloc: PortAllocator, log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  log("starting the OCI registry (first run builds it from its Go module: minutes)");
  const registry = await startRegistry({ dir: state.dir, binary: locateRegistry(), port: await alloc.allocate(), signal });
  state.processes.push(registry.process);
  state.registry = registry.host;
  writeState(state);
  log(`registry ready: ${registry.host}`);
}

function recorded(p: { name: string; pid: number; log: string }, command: string, args: string[]): RecordedProcess {
  return { ...p, command, args };
}

function startComponent(dir: string, spec: ComponentSpec): RecordedProcess {
  return recorded(
    startDetached({ name: spec.name, command: spec.command, args: spec.args, log: join(dir, "logs", `${spec.name}.log`) }),
    spec.command,
    spec.args,
  );
}

/** Polls the component's health URL the way the kubelet probes (no credentials, but for etcd's client certificate). */
async function waitHealthy(spec: ComponentSpec, proc: RecordedProcess, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + 90_000;
  const clientCert = spec.healthClientCert && { cert: readFileSync(spec.healthClientCert.cert), key: readFileSync(spec.healthClientCert.key) };
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (!isAlive(proc.pid)) throw new Error(`${spec.name} exited during start-up:\n${logTail(proc.log)}`);
    if ((await httpProbe(spec.healthUrl, {}, 2000, clientCert)).ok) return;
    await sleep(200);
  }
  throw new Error(`${spec.name} not healthy after 90 s (${spec.healthUrl}):\n${logTail(proc.log)}`);
}

/** The cluster is usable once the default ServiceAccount exists (pods need it) and every local node is Ready. */
async function waitForCluster(kubeconfig: string, state: ClusterState, signal?: AbortSignal): Promise<void> {
  const client = await KubeClient.load(kubeconfig);
  try {
    const deadline = Date.now() + 90_000;
    let waitingFor = "the default ServiceAccount";
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      for (const p of state.processes) {
        if (!isAlive(p.pid)) throw new Error(`${p.name} exited:\n${logTail(p.log)}`);
      }
      try {
        await client.get(resourcePath(SERVICE_ACCOUNTS, "default", "default"));
        const ready = new Set((await readyNodes(client)).filter((n) => n.ready).map((n) => n.name));
        const missing = state.nodes.filter((n) => !ready.has(n));
        if (missing.length === 0) return;
        waitingFor = `nodes ${missing.join(", ")} to be Ready`;
      } catch {
        // not there yet
      }
      await sleep(250);
    }
    throw new Error(`cluster not ready after 90 s: still waiting for ${waitingFor}`);
  } finally {
    await client.close();
  }
}

async function readyNodes(client: KubeClient): Promise<ClusterStatus["nodes"]> {
  const nodes = await client.get<KubeList<V1Node>>(resourcePath(NODES));
  return nodes.items.map((n) => ({
    name: n.metadata?.name ?? "",
    ready: n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    ...(n.status?.capacity?.["nvidia.com/gpu"] ? { gpus: n.status.capacity["nvidia.com/gpu"] } : {}),
  }));
}

/** Stops every process `up` recorded (local nodes first, so pods get their SIGTERM) and any pod process left over. */
export async function clusterDown(dirArg: string, options: { purge?: boolean } = {}): Promise<{ stopped: string[] }> {
  const dir = resolve(dirArg);
  const state = readState(dir);
  const stopped: string[] = [];
  if (state) {
    const order = [...state.processes].reverse();
    for (const p of order) {
      if (isAlive(p.pid)) {
        await stopProcess(p.pid, p.name === "local-nodes" ? 35_000 : 10_000);
        stopped.push(p.name);
      }
    }
  }
  // A node agent killed with SIGKILL cannot stop its pods: their pids are on disk.
  for (const pidFile of podProcessPidFiles(dir)) {
    const pid = Number.parseInt(readFileSync(pidFile, "utf8"), 10);
    if (Number.isFinite(pid) && isAlive(pid)) {
      await stopProcess(pid, 5_000);
      stopped.push(`pod process ${pid}`);
    }
    rmSync(pidFile, { force: true });
  }
  if (state) {
    for (const port of Object.values(state.ports)) {
      const deadline = Date.now() + 5_000;
      while ((await isListening(port)) && Date.now() < deadline) await sleep(100);
    }
    rmSync(stateFile(dir), { force: true });
  }
  if (options.purge) rmSync(dir, { recursive: true, force: true });
  return { stopped };
}

export interface ClusterStatus {
  dir: string;
  running: boolean;
  state?: ClusterState;
  processes: { name: string; pid: number; alive: boolean }[];
  nodes: { name: string; ready: boolean; gpus?: string }[];
  pods?: number;
}

export async function clusterStatus(dirArg: string): Promise<ClusterStatus> {
  const dir = resolve(dirArg);
  const state = readState(dir);
  if (!state) return { dir, running: false, processes: [], nodes: [] };
  const processes = state.processes.map((p) => ({ name: p.name, pid: p.pid, alive: isAlive(p.pid) }));
  const status: ClusterStatus = { dir, running: processes.every((p) => p.alive), state, processes, nodes: [] };
  if (processes.find((p) => p.name === "kube-apiserver")?.alive) {
    let client: KubeClient | undefined;
    try {
      client = await KubeClient.load(state.kubeconfig);
      status.nodes = await readyNodes(client);
      status.pods = (await client.get<KubeList<unknown>>(resourcePath(PODS))).items.length;
    } catch {
      status.running = false;
    } finally {
      await client?.close();
    }
  }
  return status;
}

/** Stops one control plane component (tests use it to make the API server unreachable for a while). */
export async function stopComponent(dir: string, name: string): Promise<void> {
  const p = readState(resolve(dir))?.processes.find((x) => x.name === name);
  if (!p) throw new Error(`no component ${name} in ${dir}`);
  await stopProcess(p.pid);
}

/** Starts a stopped component again with the same command line and ports. */
export async function restartComponent(dir: string, name: string): Promise<void> {
  const state = readState(resolve(dir));
  const p = state?.processes.find((x) => x.name === name);
  if (!state || !p) throw new Error(`no component ${name} in ${dir}`);
  if (isAlive(p.pid)) return;
  const started = startDetached({ name: p.name, command: p.command, args: p.args, log: p.log });
  p.pid = started.pid;
  writeState(state);
}
