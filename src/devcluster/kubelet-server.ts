// A local node's kubelet API, the part the API server proxies `kubectl logs` to: GET /containerLogs/{ns}/{pod}/{container}
// over TLS. Only the API server may call it: the client certificate must chain to the cluster CA (else the TLS
// handshake fails) and name the API server's kubelet client; exec, attach, port-forward and run are refused clearly.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { LogRequestError, parseLogOptions, streamLog } from "./container-logs.js";
import type { PodWorker } from "./pod-worker.js";

/** The common name of the API server's client certificate for the kubelet API (controlplane.ts uses it). */
export const APISERVER_KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client";

export interface KubeletServerOptions {
  /** The node's address: the server listens there, on a port the kernel picks. */
  address: string;
  tls: { cert: string; key: string; ca: string };
  /** This node's worker for the pod, if it runs it. */
  pod(namespace: string, name: string): PodWorker | undefined;
  log: Logger;
}

const UNSUPPORTED = new Set(["exec", "attach", "portForward", "run"]);

/** A metav1.Status body: what kubectl decodes from a refused exec/attach/port-forward upgrade and prints. */
function sendStatus(res: ServerResponse, code: number, message: string): void {
  const reason = code === 404 ? "NotFound" : code === 403 ? "Forbidden" : code === 422 ? "Invalid" : "BadRequest";
  res.writeHead(code, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code }));
}

export class KubeletServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly options: KubeletServerOptions) {
    this.server = createServer(
      {
        cert: readFileSync(options.tls.cert),
        key: readFileSync(options.tls.key),
        ca: readFileSync(options.tls.ca),
        // No certificate, or one the cluster CA did not sign: the handshake fails before any request is read.
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => void this.handle(req, res),
    );
  }

  /** Listens on the node's address; resolves with the port to advertise in the Node's daemonEndpoints. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, this.options.address, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const res of this.streams) res.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const caller = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      if (caller !== APISERVER_KUBELET_CLIENT_CN) {
        sendStatus(res, 403, `${String(caller)} may not use the kubelet API of ballast local nodes: only the API server may`);
        return;
      }
      const url = new URL(req.url ?? "/", "https://local-node");
      const [kind, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
      if (kind && UNSUPPORTED.has(kind)) {
        sendStatus(res, 400, `${kind} is not supported on ballast local nodes: they run containers as local processes; read their output with kubectl logs`);
        return;
      }
      if (kind !== "containerLogs" || rest.length !== 3 || req.method !== "GET") {
        sendStatus(res, 404, `${req.method} ${url.pathname} is not served by ballast local nodes (only GET /containerLogs/{namespace}/{pod}/{container})`);
        return;
      }
      const [namespace, name, container] = rest as [string, string, string];
      const options = parseLogOptions(url.searchParams);
      const worker = this.options.pod(namespace, name);
      if (!worker) throw new LogRequestError(404, `pod "${name}" does not exist`);
      const source = worker.logSource(container, options.previous);
      res.writeHead(200, { "Content-Type": "text/plain" });
      this.streams.add(res);
      try {
        await streamLog(source.file, options, source.running, {
          write: (chunk) => res.write(chunk),
          get closed() {
            return res.destroyed || res.writableEnded;
          },
        });
      } finally {
        this.streams.delete(res);
        res.end();
      }
    } catch (err) {
      if (err instanceof LogRequestError) {
        // Plain text, as the kubelet writes it: the API server passes the body on as the error's message.
        res.writeHead(err.status, { "Content-Type": "text/plain" });
        res.end(err.message);
      } else if (!res.headersSent) {
        this.options.log.warn({ err: String(err), url: req.url }, "kubelet API request failed");
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(`reading the log failed: ${(err as Error).message}`);
      } else {
        res.destroy();
      }
    }
  }
}
