// A userspace stand-in for kube-proxy. The API server refuses loopback addresses in EndpointSlices, so
// Services on the local cluster get no endpoints; instead the local nodes listen on each Service's
// ClusterIP (a loopback address) and forward TCP connections to the Service's ready pods, chosen by its selector.
import type { CoreV1Api, V1Pod, V1Service, V1ServicePort } from "@kubernetes/client-node";
import { connect, createServer, type Server } from "node:net";
import type { Logger } from "pino";

export interface Backend {
  ip: string;
  port: number;
}

const isReady = (p: V1Pod) =>
  !p.metadata?.deletionTimestamp && !!p.status?.podIP && (p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);

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

  constructor(private readonly core: CoreV1Api, private readonly log: Logger) {}

  /** One pass: listen for every ClusterIP Service port, refresh backends, close what is gone. */
  async sync(): Promise<void> {
    const [services, pods] = await Promise.all([this.core.listServiceForAllNamespaces(), this.core.listPodForAllNamespaces()]);
    const wanted = new Set<string>();
    for (const svc of services.items) {
      const ip = svc.spec?.clusterIP;
      if (!ip || ip === "None" || !ip.startsWith("127.") || !svc.spec?.selector) continue;
      for (const port of svc.spec.ports ?? []) {
        if ((port.protocol ?? "TCP") !== "TCP") continue;
        const key = `${ip}:${port.port}`;
        wanted.add(key);
        const backends = backendsFor(svc, port, pods.items);
        const existing = this.listeners.get(key);
        if (existing) existing.backends = backends;
        else await this.listen(ip, port.port, backends, `${svc.metadata?.namespace}/${svc.metadata?.name}`);
      }
    }
    for (const [key, l] of this.listeners) {
      if (!wanted.has(key)) {
        l.server.close();
        this.listeners.delete(key);
      }
    }
  }

  close(): void {
    for (const l of this.listeners.values()) l.server.close();
    this.listeners.clear();
  }

  private listen(ip: string, port: number, backends: Backend[], service: string): Promise<void> {
    const listener: Listener = { server: createServer(), backends, next: 0 };
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
    return new Promise((resolve) => {
      listener.server.once("error", (err) => {
        this.log.warn({ service, address: `${ip}:${port}`, err: err.message }, "cannot listen for Service");
        resolve();
      });
      listener.server.listen(port, ip, () => {
        this.listeners.set(`${ip}:${port}`, listener);
        this.log.info({ service, address: `${ip}:${port}` }, "serving Service on its ClusterIP");
        resolve();
      });
    });
  }
}
