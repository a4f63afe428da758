// The HTTP plumbing `serve` and the sidecar share: connection bounds on every server, and 500s that keep internals to the log.
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { CONNECTION_LIMITS, INTERNAL_ERROR_MESSAGE, listen, sendError } from "../../../src/runtime/http-json.js";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function serve(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  servers.push(server);
  const { port } = await listen(server, "127.0.0.1", 0);
  return { server, url: `http://127.0.0.1:${port}` };
}

describe("servers started with listen()", () => {
  it("bound slow headers, slow bodies, idle keep-alive and requests per connection", async () => {
    const { server } = await serve((_req, res) => res.end());
    expect({
      headersTimeout: server.headersTimeout,
      requestTimeout: server.requestTimeout,
      keepAliveTimeout: server.keepAliveTimeout,
      maxRequestsPerSocket: server.maxRequestsPerSocket,
    }).toEqual(CONNECTION_LIMITS);
    expect(CONNECTION_LIMITS.headersTimeout).toBeLessThanOrEqual(CONNECTION_LIMITS.requestTimeout);
    expect(CONNECTION_LIMITS.maxRequestsPerSocket).toBeGreaterThan(0);
  });

  it("close a connection after its last request, also for a client that ignores `connection: close`", async () => {
    const { server, url } = await serve((_req, res) => res.end("ok"));
    server.maxRequestsPerSocket = 3;
    // A raw socket that goes on sending after the close header, as autocannon does: Node alone answers it 503 for ever.
    const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
    socket.on("error", () => {}); // a write racing the close may be reset: the close is what is asserted
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    const closed = once(socket, "close");
    const statuses = (): string[] => received.match(/HTTP\/1\.1 \d+/g) ?? [];
    const until = async (done: () => boolean): Promise<void> => {
      for (const deadline = Date.now() + 5000; !done() && Date.now() < deadline;) await sleep(5);
    };
    for (let i = 1; i <= 5 && !socket.destroyed; i++) {
      socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
      await until(() => statuses().length >= i || socket.destroyed);
    }
    await Promise.race([closed, sleep(5000)]);
    expect(statuses()).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(received.toLowerCase()).toContain("connection: close");
    expect(socket.destroyed).toBe(true);
  });

  it("answer a 500 without the exception's message (paths, addresses): that goes to the log", async () => {
    const { url } = await serve((_req, res) => sendError(res, 500, "internal error: ENOENT: open '/mnt/models/secret/metadata.json' via 10.0.3.7:8080"));
    const res = await fetch(url);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: INTERNAL_ERROR_MESSAGE });
  });

  it("keep 4xx messages: they tell the caller what to fix", async () => {
    const { url } = await serve((_req, res) => sendError(res, 400, 'inputs[0]: "name" must be a non-empty string'));
    expect(await (await fetch(url)).json()).toEqual({ error: 'inputs[0]: "name" must be a non-empty string' });
  });
});
