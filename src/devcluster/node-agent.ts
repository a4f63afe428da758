// The kubelet stand-in: registers the local nodes, keeps their Leases, and runs the pods bound to them.
// Everything it knows of the cluster comes from informers on Ballast's own client (src/kube).
import type { V1Lease, V1Pod } from "@kubernetes/client-node";
import { readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { KubeApiError, PatchType, resourcePath, type KubeClient } from "../kube/client.js";
import { EventRecorder, microTime } from "../kube/events.js";
import { Informer, withoutManagedFields } from "../kube/informer.js";
import { LEASES_RESOURCE } from "../kube/leader-election.js";
import { NODES, PODS } from "../kube/resources.js";
import { LoopbackIPAllocator } from "./ip-allocator.js";
import type { LocalImages } from "./local-images.js";
import { LocalVolumeProvisioner } from "./local-volumes.js";
import { localNodeSpecs, nodeObject, nodeStatus, type LocalNodeSpec } from "./nodes.js";
import { podApi } from "./pod-api.js";
import { podProcessPidFiles } from "./pod-dirs.js";
import { PodWorker, type NodeContext } from "./pod-worker.js";
import { ServiceProxy } from "./service-proxy.js";
import { isAlive, stopProcess } from "./processes.js";
import { KubeletServer } from "./kubelet-server.js";

export interface NodeAgentOptions {
  clusterDir: string;
  client: KubeClient;
  cpuNodes: number;
  gpuNodes: number;
  imageRepository: string;
  kubernetesVersion: string;
  /** Pod IPs are 127.<podOctet>.x.y. */
  podOctet: number;
  ballastCommand: string[];
  programDirs: string[];
  /** Local images (OCI layouts) whose root filesystems pods run from; undefined: every pod runs the checkout's CLI. */
  images?: LocalImages;
  crashLoopBackoffMs?: number;
  /** The kubelet API's serving certificate and key, and the CA its clients' certificates must chain to. */
  kubeletTls: { cert: string; key: string; ca: string };
  log: Logger;
}

const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REPORT_MS = 60_000;
const VOLUME_RESYNC_MS = 30_000;
const NODE_LEASE_NAMESPACE = "kube-node-lease";

export class NodeAgent {
  private readonly client: KubeClient;
  private readonly pods: Informer<V1Pod>;
  private readonly provisioner: LocalVolumeProvisioner;
  private readonly services: ServiceProxy;
  private readonly nodes: Map<string, LocalNodeSpec>;
  /** One recorder per node, so repeated Events (a crash loop's BackOff) fold into one Event's series. */
  private readonly events = new Map<string, EventRecorder>();
  private readonly workers = new Map<string, PodWorker>();
  /** Each node's kubelet API server and the port it listens on. */
  private readonly kubeletServers = new Map<string, { server: KubeletServer; port: number }>();
  /** Pods whose worker already finished (final delete sent): later watch events for them are ignored. */
  private readonly finished = new Set<string>();
  private readonly ips: LoopbackIPAllocator;
  private readonly stopping = new AbortController();
  private readonly since = new Date();

  constructor(private readonly options: NodeAgentOptions) {
    this.client = options.client;
    this.nodes = new Map(localNodeSpecs(options.cpuNodes, options.gpuNodes).map((n) => [n.name, n]));
    for (const name of this.nodes.keys()) this.events.set(name, new EventRecorder(this.client, "ballast.dev/local-node", name, options.log));
    this.pods = new Informer<V1Pod>({ client: this.client, resource: PODS, logger: options.log, transform: withoutManagedFields });
    this.services = new ServiceProxy(this.client, this.pods, options.log);
    this.provisioner = new LocalVolumeProvisioner(this.client, options.clusterDir, options.log);
    this.ips = new LoopbackIPAllocator(options.podOctet);
    this.pods.on({
      add: (pod) => this.podChanged(pod),
      update: (_, pod) => this.podChanged(pod),
      delete: (pod) => this.podDeleted(pod),
    });
  }

  async run(): Promise<void> {
    await this.killLeftoverProcesses();
    for (const node of this.nodes.values()) await this.startKubeletServer(node);
    for (const node of this.nodes.values()) await this.register(node);
    await this.provisioner.start();
    this.pods.start();
    this.services.start();
    await Promise.all([
      this.every(LEASE_RENEW_MS, () => Promise.all([...this.nodes.values()].map((n) => this.renewLease(n)))),
      this.every(STATUS_REPORT_MS, () => Promise.all([...this.nodes.values()].map((n) => this.reportStatus(n)))),
      this.every(VOLUME_RESYNC_MS, () => this.provisioner.resync()),
    ]);
  }

  /** Stops every pod's processes (SIGTERM, then SIGKILL after their grace period) and the loops. */
  async shutdown(): Promise<void> {
    this.stopping.abort();
    await Promise.all([this.pods.stop(), this.services.stop(), this.provisioner.stop(), ...[...this.kubeletServers.values()].map((k) => k.server.close())]);
    await Promise.all([...this.workers.values()].map((w) => w.stopAll((w.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000)));
    await Promise.all([...this.events.values()].map((e) => e.flush()));
    await this.client.close();
  }

  /** Processes of a previous agent that died without stopping them: a restarted kubelet would not adopt them either. */
  private async killLeftoverProcesses(): Promise<void> {
    for (const file of podProcessPidFiles(this.options.clusterDir)) {
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isFinite(pid) && isAlive(pid)) await stopProcess(pid, 5_000);
      rmSync(file, { force: true });
    }
  }

  private async every(ms: number, fn: () => Promise<unknown>): Promise<void> {
    while (!this.stopping.signal.aborted) {
      await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => {});
      if (this.stopping.signal.aborted) return;
      try {
        await fn();
      } catch (err) {
        this.options.log.warn({ err: String(err) }, "periodic node task failed; retrying");
      }
    }
  }

  private async startKubeletServer(node: LocalNodeSpec): Promise<void> {
    const server = new KubeletServer({
      address: node.address,
      tls: this.options.kubeletTls,
      pod: (namespace, name) => [...this.workers.values()].find((w) => w.ctx.node === node && w.key === `${namespace}/${name}`),
      log: this.options.log,
    });
    this.kubeletServers.set(node.name, { server, port: await server.listen() });
  }

  private async register(node: LocalNodeSpec): Promise<void> {
    try {
      await this.client.create(resourcePath(NODES), nodeObject(node));
    } catch (err) {
      if (!(err instanceof KubeApiError && err.conflict)) throw err;
    }
    await this.reportStatus(node);
    await this.renewLease(node);
    this.options.log.info({ node: node.name, gpus: node.gpus, address: node.address }, "registered local node");
  }

  private async reportStatus(node: LocalNodeSpec): Promise<void> {
    const status = nodeStatus(node, this.kubeletServers.get(node.name)!.port, this.options.kubernetesVersion, new Date(), this.since);
    await this.client.patch(resourcePath(NODES, undefined, node.name, "status"), { status }, PatchType.merge);
  }

  private async renewLease(node: LocalNodeSpec): Promise<void> {
    const path = resourcePath(LEASES_RESOURCE, NODE_LEASE_NAMESPACE, node.name);
    const spec = { holderIdentity: node.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime(new Date()) };
    try {
      const lease = await this.client.get<V1Lease>(path);
      await this.client.replace(path, { ...lease, spec: { ...lease.spec, ...spec } });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.notFound)) throw err;
      const owner = await this.client.get<{ metadata: { uid: string } }>(resourcePath(NODES, undefined, node.name));
      await this.client.create(resourcePath(LEASES_RESOURCE, NODE_LEASE_NAMESPACE), {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name: node.name,
          namespace: NODE_LEASE_NAMESPACE,
          ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node.name, uid: owner.metadata.uid }],
        },
        spec,
      });
    }
  }

  private context(node: LocalNodeSpec): NodeContext {
    const server = new URL(this.client.server);
    return {
      clusterDir: this.options.clusterDir,
      node,
      client: this.client,
      api: podApi(this.client),
      imageRepository: this.options.imageRepository,
      ballastCommand: this.options.ballastCommand,
      programDirs: this.options.programDirs,
      images: this.options.images,
      apiServerHost: server.hostname,
      apiServerPort: Number(server.port || 443),
      crashLoopBackoffMs: this.options.crashLoopBackoffMs ?? 10_000,
      allocateIP: (uid) => this.ips.allocate(uid),
      releaseIP: (uid) => this.ips.release(uid),
      event: (pod, type, reason, note) =>
        this.events.get(node.name)!.record({ apiVersion: "v1", kind: "Pod", metadata: pod.metadata }, { type, reason, action: reason, note }),
      statusWriting: (pod) => this.services.statusWriting(pod),
      statusNotWritten: (pod) => this.services.statusNotWritten(pod),
      log: this.options.log,
    };
  }

  private podChanged(pod: V1Pod): void {
    this.services.podChanged(pod);
    const node = this.nodes.get(pod.spec?.nodeName ?? "");
    if (!node) return;
    const uid = pod.metadata!.uid!;
    if (this.finished.has(uid)) return;
    const existing = this.workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    const worker = new PodWorker(pod, this.context(node));
    worker.update(pod);
    this.workers.set(uid, worker);
    void worker.start().finally(() => {
      this.workers.delete(uid);
      this.finished.add(uid);
    });
  }

  /** The pod object is gone: without our final delete (force deletion) its processes stop at once. */
  private podDeleted(pod: V1Pod): void {
    this.services.podChanged(pod, true);
    const uid = pod.metadata!.uid!;
    this.finished.delete(uid);
    const worker = this.workers.get(uid);
    if (!worker) return;
    this.workers.delete(uid);
    void worker.stopAll(0).then(() => worker.cleanup());
  }
}
