import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpProbe, ProbeTracker, resolveProbePort, runProbe, tcpProbe } from "../../../src/devcluster/probes.js";
import { probeFreePort } from "../../../src/devcluster/ports.js";

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    res.writeHead(req.url === "/ok" ? 200 : req.url === "/redirect" ? 302 : 503, { Location: "/elsewhere" });
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("probes", () => {
  it("HTTP: 2xx and 3xx pass (redirects are not followed), 5xx fails with the code", async () => {
    expect(await httpProbe(`http://127.0.0.1:${port}/ok`, {}, 1000)).toEqual({ ok: true });
    expect(await httpProbe(`http://127.0.0.1:${port}/redirect`, {}, 1000)).toEqual({ ok: true });
    expect(await httpProbe(`http://127.0.0.1:${port}/bad`, {}, 1000)).toEqual({ ok: false, message: "HTTP probe failed with statuscode: 503" });
  });
  it("HTTP and TCP fail with a message when nothing listens", async () => {
    const closed = await probeFreePort();
    const http = await httpProbe(`http://127.0.0.1:${closed}/`, {}, 1000);
    expect(http.ok).toBe(false);
    expect((await tcpProbe("127.0.0.1", closed, 1000)).ok).toBe(false);
    expect(await tcpProbe("127.0.0.1", port, 1000)).toEqual({ ok: true });
  });
  it("resolves named ports from the container's ports", async () => {
    const container = { name: "c", ports: [{ name: "http", containerPort: port }] };
    expect(resolveProbePort("http", container)).toBe(port);
    expect(resolveProbePort("8080", container)).toBe(8080);
    expect(resolveProbePort("nope", container)).toBeUndefined();
    expect(await runProbe({ httpGet: { path: "/ok", port: "http" } }, container, "127.0.0.1")).toEqual({ ok: true });
    expect(await runProbe({ exec: { command: ["true"] } }, container, "127.0.0.1")).toMatchObject({ ok: false });
  });
  it("counts consecutive results against success and failure thresholds", () => {
    const t = new ProbeTracker({ failureThreshold: 3, successThreshold: 2 }, true);
    const fail = { ok: false as const, message: "x" };
    expect(t.record(fail)).toBe(false);
    expect(t.record(fail)).toBe(false);
    expect(t.record({ ok: true })).toBe(false);
    expect(t.record(fail)).toBe(false);
    expect(t.record(fail)).toBe(false);
    expect(t.record(fail)).toBe(true);
    expect(t.passing).toBe(false);
    expect(t.record({ ok: true })).toBe(false);
    expect(t.record({ ok: true })).toBe(true);
    expect(t.passing).toBe(true);
  });
});
