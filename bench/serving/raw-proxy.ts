// The floor under a byte-level relay: a `net` server that parses each request head strictly (http1-head.ts), frames
// the body by Content-Length, writes the bytes unchanged to a pooled keep-alive socket to the server
// (upstream-sockets.ts) and the response bytes back unchanged. No request id, monitoring, metrics, timeouts or
// fallback to Node's server: what the sidecar's relay costs before it does any of its work.
// Run: node bench/serving/raw-proxy.ts <upstream url>   (prints {"port": N} once listening on 127.0.0.1; needs dist/)
import net from "node:net";
import path from "node:path";

const dist = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../dist/runtime/sidecar");
const { parseRequestHead } = (await import(path.join(dist, "http1-head.js"))) as typeof import("../../src/runtime/sidecar/http1-head.js");
const { UpstreamSockets } = (await import(path.join(dist, "upstream-sockets.js"))) as typeof import("../../src/runtime/sidecar/upstream-sockets.js");

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: node bench/serving/raw-proxy.ts <upstream url>");
const sockets = new UpstreamSockets({ kind: "tcp", url: new URL(upstream) }, 60_000);

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  let buf: Buffer = Buffer.alloc(0);
  let busy = false;
  const next = (): void => {
    if (busy) return;
    const head = parseRequestHead(buf, 0, 16 * 1024, 4 * 1024 * 1024);
    if (head.kind === "not-relayable") return void client.destroy();
    if (head.kind === "incomplete" || buf.length < head.headEnd + head.contentLength) return;
    const end = head.headEnd + head.contentLength;
    const request = buf.subarray(0, end);
    buf = buf.subarray(end);
    busy = true;
    const answer: Buffer[] = [];
    sockets.send(request, {
      // The server's JSON answers carry a Content-Length (the relay's head parser takes framing headers out of `forwarded`).
      onHead: (h) => {
        const length = h.framing.kind === "length" ? `content-length: ${h.framing.length}\r\n` : "";
        answer.push(Buffer.from(`HTTP/1.1 ${h.status} OK\r\n${h.forwarded}${length}connection: keep-alive\r\n\r\n`, "latin1"));
      },
      onBody: (c) => void answer.push(c),
      onEnd: () => {
        client.write(Buffer.concat(answer));
        busy = false;
        next();
      },
      onError: () => void client.destroy(),
    });
  };
  client.on("data", (c: Buffer) => {
    buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
    next();
  });
  client.on("end", () => client.destroy());
  client.on("error", () => client.destroy());
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: (server.address() as net.AddressInfo).port })));
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  sockets.close();
  setTimeout(() => process.exit(0), 500).unref();
});
