// Readiness, liveness and startup probes as the kubelet runs them: HTTP GET and TCP socket against the pod IP.
import type { V1Container, V1Probe } from "@kubernetes/client-node";
import { connect } from "node:net";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export type ProbeResult = { ok: true } | { ok: false; message: string };

/** Resolves a probe port (number or a named containerPort) against the container's ports. */
export function resolveProbePort(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === "number") return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number.parseInt(port, 10);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export async function runProbe(probe: V1Probe, container: V1Container, podIP: string): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const port = resolveProbePort(probe.httpGet.port as number | string, container);
    if (port === undefined) return { ok: false, message: `probe port ${String(probe.httpGet.port)} is not a container port` };
    const scheme = (probe.httpGet.scheme ?? "HTTP").toUpperCase();
    const url = `${scheme === "HTTPS" ? "https" : "http"}://${probe.httpGet.host || podIP}:${port}${probe.httpGet.path ?? "/"}`;
    return httpProbe(url, Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value])), timeoutMs);
  }
  if (probe.tcpSocket) {
    const port = resolveProbePort(probe.tcpSocket.port as number | string, container);
    if (port === undefined) return { ok: false, message: `probe port ${String(probe.tcpSocket.port)} is not a container port` };
    return tcpProbe(probe.tcpSocket.host || podIP, port, timeoutMs);
  }
  return { ok: false, message: "only httpGet and tcpSocket probes run on the local nodes (exec and grpc need a container runtime)" };
}

/** Like the kubelet: 200–399 is success; a redirect is not followed. `clientCert` for servers that demand one. */
export function httpProbe(url: string, headers: Record<string, string>, timeoutMs: number, clientCert?: { cert: Buffer; key: Buffer }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const request = url.startsWith("https") ? httpsRequest : httpRequest;
    const options = {
      method: "GET",
      headers: { "User-Agent": "kube-probe/ballast-local", ...headers },
      timeout: timeoutMs,
      rejectUnauthorized: false,
      ...clientCert,
    };
    const req = request(url, options, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ ok: false, message: `Get "${url}": ${err.message}` }));
    req.end();
  });
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: ProbeResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` }));
    socket.once("connect", () => done({ ok: true }));
    socket.once("error", (err) => done({ ok: false, message: `dial tcp ${host}:${port}: ${err.message}` }));
  });
}

/** Success/failure thresholds over consecutive results, as the kubelet's prober counts them. */
export class ProbeTracker {
  private successes = 0;
  private failures = 0;
  private current: boolean;

  constructor(
    private readonly probe: V1Probe,
    initial: boolean,
  ) {
    this.current = initial;
  }

  get passing(): boolean {
    return this.current;
  }

  /** Records a result; returns true when the probe's verdict changed. */
  record(result: ProbeResult): boolean {
    if (result.ok) {
      this.failures = 0;
      this.successes++;
      if (!this.current && this.successes >= (this.probe.successThreshold ?? 1)) return this.flip(true);
    } else {
      this.successes = 0;
      this.failures++;
      if (this.current && this.failures >= (this.probe.failureThreshold ?? 3)) return this.flip(false);
    }
    return false;
  }

  private flip(to: boolean): boolean {
    this.current = to;
    this.successes = 0;
    this.failures = 0;
    return true;
  }
}
