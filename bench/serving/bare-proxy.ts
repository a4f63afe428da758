// The floor under the sidecar's CPU per request: a reverse proxy that only forwards an infer call the way the
// sidecar's recorded path does (Node's HTTP server, the body read whole, one undici pool, dispatch API, one write
// back) with no request id, monitoring, metrics or log. The serving bench measures it beside the sidecar.
// Run: node bench/serving/bare-proxy.ts <upstream url>   (prints {"port": N} once listening on 127.0.0.1)
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: node bench/serving/bare-proxy.ts <upstream url>");
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 60_000 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const answer: Buffer[] = [];
    pool.dispatch(
      { path: req.url ?? "/", method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) },
      {
        onRequestStart: () => undefined,
        onResponseStart: (_c, status, headers) => void res.writeHead(status, { "content-type": String(headers["content-type"]) }),
        onResponseData: (_c, chunk) => void answer.push(chunk),
        onResponseEnd: () => void res.end(Buffer.concat(answer)),
        onResponseError: () => void res.destroy(),
      },
    );
  });
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => void pool.close().then(() => process.exit(0)));
});
