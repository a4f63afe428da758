// The sidecar's one connection pool to the model server in its pod: over TCP (`http://host:port`) or over a Unix
// domain socket (`unix:/path`), which only the pod's two containers can reach.
import { Pool, type Dispatcher } from "undici";

/** The model server's address: a URL for TCP, a socket path for a Unix domain socket. */
export type UpstreamAddress = { kind: "tcp"; url: URL } | { kind: "unix"; socketPath: string };

/** `http://127.0.0.1:8080` or `unix:/run/ballast/server/model.sock`; undefined when neither. */
export function parseUpstream(value: string): UpstreamAddress | undefined {
  if (value.startsWith("unix:")) {
    const socketPath = value.slice("unix:".length);
    return socketPath.startsWith("/") ? { kind: "unix", socketPath } : undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  return url.protocol === "http:" ? { kind: "tcp", url } : undefined;
}

/** How logs name the upstream (never sent to a caller). */
export function describeUpstream(address: UpstreamAddress): string {
  return address.kind === "tcp" ? address.url.origin : `unix:${address.socketPath}`;
}

export class UpstreamClient {
  readonly pool: Pool;

  constructor(readonly address: UpstreamAddress) {
    const options = { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 };
    // Over a socket the origin only fills the Host header.
    this.pool =
      address.kind === "tcp"
        ? new Pool(address.url.origin, options)
        : new Pool("http://localhost", { ...options, connect: { socketPath: address.socketPath } });
  }

  request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    return this.pool.request(options);
  }

  /** GET `path`; the status and parsed JSON body (undefined when it is not JSON). */
  async getJson(path: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    const res = await this.pool.request({ path, method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.statusCode, body };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
