// The kubelet stand-in: registers the local nodes, keeps their Leases, and runs the pods bound to them.
import {
  CoordinationV1Api,
  CoreV1Api,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  StorageV1Api,
  V1MicroTime,
  Watch,
  type V1Pod,
} from "@kubernetes/client-node";
import { readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { LoopbackIPAllocator } from "./ip-allocator.js";
import { LocalVolumeProvisioner } from "./local-volumes.js";
import { localNodeSpecs, nodeObject, nodeStatus, type LocalNodeSpec } from "./nodes.js";
import { podApi } from "./pod-api.js";
import { podProcessPidFiles } from "./pod-dirs.js";
import { PodWorker, type NodeContext } from "./pod-worker.js";
import { ServiceProxy } from "./service-proxy.js";
import { isAlive, stopProcess } from "./processes.js";

export interface NodeAgentOptions {
  clusterDir: string;
  kubeconfig: string;
  cpuNodes: number;
  gpuNodes: number;
  imageRepository: string;
  kubernetesVersion: string;
  /** Pod IPs are 127.<podOctet>.x.y. */
  podOctet: number;
  ballastCommand: string[];
  programDirs: string[];
  crashLoopBackoffMs?: number;
  log: Logger;
}

const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REPORT_MS = 60_000;

export class NodeAgent {
  private readonly kc = new KubeConfig();
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly events: EventsV1Api;
  private readonly provisioner: LocalVolumeProvisioner;
  private readonly services: ServiceProxy;
  private readonly nodes: LocalNodeSpec[];
  private readonly workers = new Map<string, PodWorker>();
  /** Pods whose worker already finished (final delete sent): later watch events for them are ignored. */
  private readonly finished = new Set<string>();
  private readonly ips: LoopbackIPAllocator;
  private readonly stopping = new AbortController();
  private readonly since = new Date();
  private watchAbort: AbortController | undefined;

  constructor(private readonly opts: NodeAgentOptions) {
    this.kc.loadFromFile(opts.kubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.coordination = this.kc.makeApiClient(CoordinationV1Api);
    this.events = this.kc.makeApiClient(EventsV1Api);
    this.provisioner = new LocalVolumeProvisioner(this.core, this.kc.makeApiClient(StorageV1Api), opts.clusterDir, opts.log);
    this.services = new ServiceProxy(this.core, opts.log);
    this.ips = new LoopbackIPAllocator(opts.podOctet);
    this.nodes = localNodeSpecs(opts.cpuNodes, opts.gpuNodes);
  }

  async run(): Promise<void> {
    await this.killLeftoverProcesses();
    for (const node of this.nodes) await this.register(node);
    await this.provisioner.ensureStorageClass();
    const loops = [
      this.every(LEASE_RENEW_MS, () => Promise.all(this.nodes.map((n) => this.renewLease(n)))),
      this.every(STATUS_REPORT_MS, () => Promise.all(this.nodes.map((n) => this.reportStatus(n)))),
      this.every(1_000, () => this.provisioner.sync()),
      this.every(1_000, () => this.services.sync()),
      this.watchPods(),
    ];
    await Promise.all(loops);
  }

  /** Stops every pod's processes (SIGTERM, then SIGKILL after their grace period) and the loops. */
  async shutdown(): Promise<void> {
    this.stopping.abort();
    this.watchAbort?.abort();
    this.services.close();
    await Promise.all([...this.workers.values()].map((w) => w.stopAll((w.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000)));
  }

  /** Processes of a previous agent that died without stopping them: a restarted kubelet would not adopt them either. */
  private async killLeftoverProcesses(): Promise<void> {
    for (const file of podProcessPidFiles(this.opts.clusterDir)) {
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isFinite(pid) && isAlive(pid)) await stopProcess(pid, 5_000);
      rmSync(file, { force: true });
    }
  }

  private async every(ms: number, fn: () => Promise<unknown>): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        await fn();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, "periodic node task failed; retrying");
      }
      await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => {});
    }
  }

  private async register(node: LocalNodeSpec): Promise<void> {
    try {
      await this.core.createNode({ body: nodeObject(node) });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
    await this.reportStatus(node);
    await this.renewLease(node);
    this.opts.log.info({ node: node.name, gpus: node.gpus, address: node.address }, "registered local node");
  }

  private async reportStatus(node: LocalNodeSpec): Promise<void> {
    const status = nodeStatus(node, 0, this.opts.kubernetesVersion, new Date(), this.since);
    await this.core.patchNodeStatus({ name: node.name, body: { status } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
  }

  private async renewLease(node: LocalNodeSpec): Promise<void> {
    const namespace = "kube-node-lease";
    const spec = { holderIdentity: node.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: new V1MicroTime() };
    try {
      const lease = await this.coordination.readNamespacedLease({ name: node.name, namespace });
      lease.spec = { ...lease.spec, ...spec };
      await this.coordination.replaceNamespacedLease({ name: node.name, namespace, body: lease });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      const owner = await this.core.readNode({ name: node.name });
      await this.coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name: node.name, namespace, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node.name, uid: owner.metadata!.uid! }] },
          spec,
        },
      });
    }
  }

  private context(node: LocalNodeSpec): NodeContext {
    const server = new URL(this.kc.getCurrentCluster()!.server);
    return {
      clusterDir: this.opts.clusterDir,
      node,
      core: this.core,
      api: podApi(this.kc),
      imageRepository: this.opts.imageRepository,
      ballastCommand: this.opts.ballastCommand,
      programDirs: this.opts.programDirs,
      apiServerHost: server.hostname,
      apiServerPort: Number(server.port || 443),
      crashLoopBackoffMs: this.opts.crashLoopBackoffMs ?? 10_000,
      allocateIP: (uid) => this.ips.allocate(uid),
      releaseIP: (uid) => this.ips.release(uid),
      event: (pod, type, reason, message) => this.recordEvent(node, pod, type, reason, message),
      log: this.opts.log,
    };
  }

  private recordEvent(node: LocalNodeSpec, pod: V1Pod, type: string, reason: string, note: string): void {
    const m = pod.metadata!;
    this.events
      .createNamespacedEvent({
        namespace: m.namespace!,
        body: {
          // Named like the kubelet's events: <object>.<unique hex suffix>.
          metadata: { name: `${m.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace: m.namespace! },
          eventTime: new V1MicroTime(),
          reportingController: "ballast.dev/local-node",
          reportingInstance: node.name,
          action: reason,
          reason,
          type,
          note: note.slice(0, 1024),
          regarding: { apiVersion: "v1", kind: "Pod", name: m.name!, namespace: m.namespace!, uid: m.uid! },
        },
      })
      .catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message, reason }, "event not recorded"));
  }

  /** List, then watch from the list's resourceVersion; any error or expiry relists (level-triggered). */
  private async watchPods(): Promise<void> {
    const mine = new Map(this.nodes.map((n) => [n.name, n]));
    const watch = new Watch(this.kc);
    let backoff = 200;
    while (!this.stopping.signal.aborted) {
      try {
        const list = await this.core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName!=" });
        const seen = new Set<string>();
        for (const pod of list.items) {
          if (mine.has(pod.spec!.nodeName!)) {
            seen.add(pod.metadata!.uid!);
            this.observe(pod, mine);
          }
        }
        for (const [uid, worker] of this.workers) if (!seen.has(uid)) this.forget(uid, worker);
        await new Promise<void>((resolve, reject) => {
          void watch
            .watch(
              "/api/v1/pods",
              { fieldSelector: "spec.nodeName!=", resourceVersion: list.metadata!.resourceVersion!, allowWatchBookmarks: true },
              (type: string, pod: V1Pod) => {
                if (type === "BOOKMARK" || !pod.spec?.nodeName || !mine.has(pod.spec.nodeName)) return;
                if (type === "DELETED") {
                  this.finished.delete(pod.metadata!.uid!);
                  const w = this.workers.get(pod.metadata!.uid!);
                  if (w) this.forget(pod.metadata!.uid!, w);
                } else {
                  this.observe(pod, mine);
                }
              },
              (err: unknown) => (err ? reject(err as Error) : resolve()),
            )
            .then((abort) => {
              this.watchAbort = abort;
              if (this.stopping.signal.aborted) abort.abort();
            }, reject);
        });
        backoff = 200;
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        this.opts.log.warn({ err: (err as Error).message, backoffMs: backoff }, "pod watch failed; relisting");
        await sleep(backoff, undefined, { signal: this.stopping.signal }).catch(() => {});
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private observe(pod: V1Pod, mine: Map<string, LocalNodeSpec>): void {
    const uid = pod.metadata!.uid!;
    if (this.finished.has(uid)) return;
    const existing = this.workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    const worker = new PodWorker(pod, this.context(mine.get(pod.spec!.nodeName!)!));
    worker.update(pod);
    this.workers.set(uid, worker);
    void worker.start().finally(() => {
      this.workers.delete(uid);
      this.finished.add(uid);
    });
  }

  /** The pod object is gone without our final delete (force deletion): stop its processes at once. */
  private forget(uid: string, worker: PodWorker): void {
    this.workers.delete(uid);
    void worker.stopAll(0).then(() => worker.cleanup());
  }
}

