// The HTTP plumbing `serve` and the sidecar share: connection bounds on every server, and 500s that keep internals to the log.
import http from "node:http";
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
