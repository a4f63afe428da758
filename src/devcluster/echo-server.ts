// `ballast dev echo`: a tiny HTTP service for checking the local cluster (pods, pod IPs, probes, Services).
import { createServer, type Server } from "node:http";

export interface EchoIdentity {
  pod: string;
  namespace: string;
  podIP: string;
  node: string;
}

export function startEchoServer(host: string, port: number, who: EchoIdentity): Promise<Server> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({ ...who, method: req.method, path: req.url });
    res.writeHead(req.url === "/healthz" || req.url?.startsWith("/echo") || req.url === "/" ? 200 : 404, { "Content-Type": "application/json" });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
