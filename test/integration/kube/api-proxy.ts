// A plain-HTTP front to the test cluster's real API server that records every request it passes on and
// can fail the ways networks do: exchanges in progress go silent (a half-open connection), new requests
// hang (a stalled server) or are cut (a server that is down). It talks upstream with the test admin's
// credentials; a client's kubeconfig `as` still reaches the server as Impersonate-User, so what the
// client may do is what the impersonated user may do.
import { writeFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { join } from "node:path";
import { inject } from "vitest";
import { stringify } from "yaml";
import { kubeconfigAccess } from "../../../src/kube/kubeconfig.js";

export interface ProxiedRequest {
  method: string;
  path: string;
  /** Date.now() when the request reached the proxy. */
  at: number;
}

/** What happens to requests that arrive: passed on, held unanswered for ever, or cut at once. */
export type ProxyMode = "pass" | "stall" | "down";

export class ApiProxy {
  readonly requests: ProxiedRequest[] = [];
  mode: ProxyMode = "pass";
  /** Each exchange in progress: its switch to go silent, and whether it is a watch the server has answered. */
  private readonly open = new Map<() => void, { watching: boolean }>();
  private readonly held: ServerResponse[] = [];

  private readonly server: Server;
  private url_ = "";

  private constructor(upstream: URL, agent: Agent, auth: Record<string, string>) {
    this.server = createServer((req, res) => this.handle(req, res, upstream, agent, auth));
  }

  /** http://127.0.0.1:<port> */
  get url(): string {
    return this.url_;
  }

  static async start(): Promise<ApiProxy> {
    const access = kubeconfigAccess(inject("kubeconfig"));
    if (!access) throw new Error("the test kubeconfig needs client-node (exec plugin?): the proxy cannot front it");
    const agent = new Agent({ ca: access.ca, cert: access.cert, key: access.key, servername: access.tlsServerName, keepAlive: true });
    const auth: Record<string, string> = access.token ? { authorization: `Bearer ${access.token}` } : {};
    const proxy = new ApiProxy(new URL(access.server), agent, auth);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    const addr = proxy.server.address();
    proxy.url_ = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    return proxy;
  }

  private handle(req: import("node:http").IncomingMessage, res: ServerResponse, upstream: URL, agent: Agent, auth: Record<string, string>): void {
    this.requests.push({ method: req.method ?? "GET", path: req.url ?? "", at: Date.now() });
    if (this.mode === "down") return void req.socket.destroy();
    if (this.mode === "stall") return void this.held.push(res);
    let silent = false;
    const silence = () => (silent = true);
    const exchange = { watching: false };
    this.open.set(silence, exchange);
    const up = httpsRequest(
      new URL(req.url ?? "/", upstream),
      { method: req.method, headers: { ...req.headers, host: upstream.host, ...auth }, agent },
      (upRes) => {
        if (silent) return;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        exchange.watching = upRes.statusCode === 200 && /[?&]watch=true/.test(req.url ?? "");
        upRes.on("data", (chunk: Buffer) => silent || res.write(chunk));
        upRes.on("end", () => silent || res.end());
      },
    );
    up.on("error", () => res.destroy());
    up.on("close", () => this.open.delete(silence));
    res.on("close", () => up.destroy());
    req.pipe(up);
  }

  /** Every exchange in progress (watches, mostly) stops passing bytes for ever, its connections left open. */
  silenceOpenExchanges(): void {
    for (const s of this.open.keys()) s();
    this.open.clear();
  }

  /** How many watches are open through the proxy, answered and still passing bytes. */
  openWatches(): number {
    return [...this.open.values()].filter((e) => e.watching).length;
  }

  /** Writes (anything but GET) that reached the proxy at or after `since` (Date.now()). */
  writesSince(since: number): ProxiedRequest[] {
    return this.requests.filter((r) => r.method !== "GET" && r.at >= since);
  }

  /** A kubeconfig that reaches the API server through this proxy, as `user` when given. */
  kubeconfig(dir: string, user?: string): string {
    const path = join(dir, `proxy-${this.url.split(":").pop()}.kubeconfig`);
    const config = {
      apiVersion: "v1",
      kind: "Config",
      "current-context": "proxy",
      clusters: [{ name: "proxy", cluster: { server: this.url } }],
      users: [{ name: "proxy", user: user ? { as: user } : {} }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy" } }],
    };
    writeFileSync(path, stringify(config), { mode: 0o600 });
    return path;
  }

  async close(): Promise<void> {
    for (const res of this.held.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
