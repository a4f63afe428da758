// `ballast dev echo`: a tiny HTTP service for checking the local cluster (pods, pod IPs, probes, Services,
// volumes): it answers JSON with who it is, and `GET /fs?path=P` shows a file or directory as the pod sees it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type ServerResponse, type Server } from "node:http";

export interface EchoIdentity {
  pod: string;
  namespace: string;
  podIP: string;
  node: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function describePath(path: string): { status: number; body: unknown } {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return { status: 200, body: { path, entries: readdirSync(path).sort() } };
    return { status: 200, body: { path, content: readFileSync(path, "utf8") } };
  } catch (err) {
    return { status: 404, body: { error: `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` } };
  }
}

export function startEchoServer(host: string, port: number, who: EchoIdentity): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://echo");
    if (url.pathname === "/fs") {
      const path = url.searchParams.get("path");
      if (!path) return json(res, 400, { error: "query parameter path is required" });
      const r = describePath(path);
      return json(res, r.status, r.body);
    }
    const known = url.pathname === "/" || url.pathname === "/healthz" || url.pathname.startsWith("/echo");
    json(res, known ? 200 : 404, known ? { ...who, method: req.method, path: req.url } : { error: `no route ${url.pathname}` });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
