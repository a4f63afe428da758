// A userspace stand-in for kube-proxy. The API server refuses loopback addresses in EndpointSlices, so
// Services on the local cluster get no endpoints; instead the local nodes listen on each Service's
// ClusterIP (a loopback address) and forward TCP connections to the Service's ready pods, chosen by its selector.
// Driven by informers: a Service or a pod's readiness change re-routes at once, with no polling.
import type { V1Pod, V1PodStatus, V1Service, V1ServicePort } from "@kubernetes/client-node";
import { connect, createServer, type Server } from "node:net";
import type { Logger } from "pino";
import type { KubeClient } from "../kube/client.js";
import { Informer, withoutManagedFields } from "../kube/informer.js";
import { SERVICES } from "../kube/resources.js";

export interface Backend {
  ip: string;
  port: number;
}

const readyCondition = (s: V1PodStatus | undefined) => s?.conditions?.find((c) => c.type === "Ready")?.status === "True";

const isReady = (p: V1Pod) => !p.metadata?.deletionTimestamp && !!p.status?.podIP && readyCondition(p.status);

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The ready pods behind one port of a Service, with its targetPort resolved per pod (named ports too). */
export function backendsFor(service: V1Service, port: V1ServicePort, pods: V1Pod[]): Backend[] {
  const selector = service.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return [];
  const target = port.targetPort ?? port.port;
  const backends: Backend[] = [];
  for (const pod of pods) {
    if (pod.metadata?.namespace !== service.metadata?.namespace || !matches(selector, pod.metadata?.labels) || !isReady(pod)) continue;
    let p: number | undefined;
    if (typeof target === "number" || /^\d+$/.test(String(target))) p = Number(target);
    else for (const c of pod.spec?.containers ?? []) p ??= c.ports?.find((cp) => cp.name === target)?.containerPort;
    if (p !== undefined) backends.push({ ip: pod.status!.podIP!, port: p });
  }
  return backends;
}

interface Listener {
  server: Server;
  backends: Backend[];
  next: number;
}

export class ServiceProxy {
  private readonly listeners = new Map<string, Listener>();
  private readonly services: Informer<V1Service>;
  /**
   * Pod statuses the local nodes are writing, by pod uid, until the pod informer shows them. Routing on them
   * first means a client that sees a pod Ready in the API can connect at once: the route exists before the status does.
   */
  private readonly writing = new Map<string, V1PodStatus>();

  constructor(
    client: KubeClient,
    private readonly pods: Informer<V1Pod>,
    private readonly log: Logger,
  ) {
    this.services = new Informer<V1Service>({ client, resource: SERVICES, logger: log, transform: withoutManagedFields });
    const sync = () => this.sync();
    this.services.on({ add: sync, update: sync, delete: sync });
  }

  start(): void {
    this.services.start();
    // The first list fills the caches without calling handlers that could act on it: route once both are full.
    void Promise.all([this.services.waitForSync(), this.pods.waitForSync()]).then(
      () => this.sync(),
      () => {},
    );
  }

  /** Called by the pod informer's handlers: a pod changed or went away. */
  podChanged(pod: V1Pod, deleted = false): void {
    const uid = pod.metadata?.uid ?? "";
    const written = this.writing.get(uid);
    if (deleted || (written && readyCondition(written) === readyCondition(pod.status) && written.podIP === pod.status?.podIP)) this.writing.delete(uid);
    this.sync();
  }

  /** The local nodes are about to write this pod's status: route by it now. */
  statusWriting(pod: V1Pod): void {
    if (!pod.metadata?.uid || !pod.status) return;
    this.writing.set(pod.metadata.uid, pod.status);
    this.sync();
  }

  /** The write failed: route by what the API server has again. */
  statusNotWritten(pod: V1Pod): void {
    if (this.writing.delete(pod.metadata?.uid ?? "")) this.sync();
  }

  /** Listen for every ClusterIP Service port, refresh backends, close what is gone. Reads only the caches. */
  sync(): void {
    if (!this.services.hasSynced() || !this.pods.hasSynced()) return;
    const pods = this.pods.list().map((p) => {
      const written = this.writing.get(p.metadata?.uid ?? "");
      return written ? { ...p, status: written } : p;
    });
    const wanted = new Set<string>();
    for (const svc of this.services.list()) {
      const ip = svc.spec?.clusterIP;
      if (!ip || ip === "None" || !ip.startsWith("127.") || !svc.spec?.selector) continue;
      for (const port of svc.spec.ports ?? []) {
        if ((port.protocol ?? "TCP") !== "TCP") continue;
        const key = `${ip}:${port.port}`;
        wanted.add(key);
        const backends = backendsFor(svc, port, pods);
        const existing = this.listeners.get(key);
        if (existing) existing.backends = backends;
        else this.listen(ip, port.port, backends, `${svc.metadata?.namespace}/${svc.metadata?.name}`);
      }
    }
    for (const [key, l] of this.listeners) {
      if (!wanted.has(key)) {
        l.server.close();
        this.listeners.delete(key);
      }
    }
  }

  async stop(): Promise<void> {
    await this.services.stop();
    for (const l of this.listeners.values()) l.server.close();
    this.listeners.clear();
  }

  private listen(ip: string, port: number, backends: Backend[], service: string): void {
    const key = `${ip}:${port}`;
    const listener: Listener = { server: createServer(), backends, next: 0 };
    // Registered before listening: the next sync updates its backends instead of listening twice.
    this.listeners.set(key, listener);
    listener.server.on("connection", (client) => {
      const choices = listener.backends;
      if (choices.length === 0) {
        client.destroy();
        return;
      }
      const b = choices[listener.next++ % choices.length]!;
      const upstream = connect({ host: b.ip, port: b.port });
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close);
      upstream.on("error", close);
    });
    listener.server.once("error", (err) => {
      this.log.warn({ service, address: key, err: err.message }, "cannot listen for Service");
      if (this.listeners.get(key) === listener) this.listeners.delete(key);
    });
    listener.server.listen(port, ip, () => this.log.info({ service, address: key }, "serving Service on its ClusterIP"));
  }
}
