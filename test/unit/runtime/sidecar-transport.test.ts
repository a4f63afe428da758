// How the pod's two processes are reached: the model server only on a Unix socket (plus a health-only port for
// probes), the sidecar's summary and metrics only on its monitoring port, feedback only as JSON and — when a token
// is configured — only with it. Also what a proxy owes its callers: chunked bodies recorded, slow readers and
// vanished callers not buffered or served for nothing, and a shutdown that keeps answering while it drains.
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { postJson, startBallast, startSidecar, stopAll, waitUntilReady, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

const TOKEN = "s3cret-feedback-token-0123456789";

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;
let socketPath: string;
const others: LocalProcess[] = [];

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2, holdoutRows: 60, newYorkRows: 20 });
  socketPath = path.join(fx.dir, "server", "model.sock");
  fs.mkdirSync(path.dirname(socketPath));
  server = await startBallast(["serve", "--store", fx.storeDir, "--model", "weather", "--socket", socketPath]);
  await waitUntilReady(`${server.url}/v2/health/ready`);
  const tokenFile = path.join(fx.dir, "feedback-token");
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  sidecar = await startSidecar(`unix:${socketPath}`, fx.storeDir, path.join(fx.dir, "log"), ["--feedback-token-file", tokenFile]);
}, 120_000);

afterAll(async () => {
  await stopAll([...others, sidecar, server]);
  fx?.cleanup();
});

const inferUrl = (proc: LocalProcess): string => `${proc.url}/v2/models/weather/infer`;
const auth = { authorization: `Bearer ${TOKEN}` };

describe("the model server behind a Unix socket", () => {
  it("serves inference through the sidecar over the socket, which only its owner and group may open", async () => {
    const res = await postJson(inferUrl(sidecar), inferBody(fx.seattleHoldout.slice(0, 2), "over-the-socket"));
    expect(res.status).toBe(200);
    expect((res.body as { id: string }).id).toBe("over-the-socket");
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o660);
  });

  it("answers only the health endpoints on its TCP port: no inference, metadata or metrics there", async () => {
    expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);
    expect((await postJson(inferUrl(server), inferBody(fx.seattleHoldout.slice(0, 1)))).status).toBe(404);
    expect((await fetch(`${server.url}/v2/models/weather`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
  });

  it("starts again over the socket file its previous run left behind", async () => {
    const dir = path.join(fx.dir, "restart");
    fs.mkdirSync(dir);
    const sock = path.join(dir, "model.sock");
    const first = await startBallast(["serve", "--store", fx.storeDir, "--model", "weather", "--socket", sock]);
    first.child.kill("SIGKILL");
    await first.exited;
    expect(fs.existsSync(sock)).toBe(true);
    const second = await startBallast(["serve", "--store", fx.storeDir, "--model", "weather", "--socket", sock]);
    others.push(second);
    await waitUntilReady(`${second.url}/v2/health/ready`);
  });
});

describe("the monitoring port", () => {
  it("serves the summary and metrics there, and 404 for both on the public port (the Service's)", async () => {
    expect((await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).status).toBe(200);
    expect(await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text()).toContain("ballast_sidecar_requests_total");
    for (const p of ["/v1/monitoring/summary", "/metrics"]) {
      const res = await fetch(`${sidecar.url}${p}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: string }).error).toContain("not served on this port");
    }
    // Nothing of the proxy is on the monitoring port either.
    expect((await postJson(`${sidecar.monitoringUrl}/v2/models/weather/infer`, inferBody(fx.seattleHoldout.slice(0, 1)))).status).toBe(404);
  });
});

describe("feedback", () => {
  const infer = async (id: string) => {
    const row = fx.seattleHoldout[3]!;
    expect((await postJson(inferUrl(sidecar), inferBody([row], id))).status).toBe(200);
    return row.weather;
  };

  it("wants the bearer token: 401 with a Bearer challenge without it or with another, 200 with it; the token is never logged", async () => {
    const label = await infer("fb-auth-1");
    const none = await postJson(`${sidecar.url}/v1/feedback`, { id: "fb-auth-1", label });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="ballast-feedback"');
    expect((none.body as { error: string }).error).toContain("Authorization: Bearer");
    const wrong = await postJson(`${sidecar.url}/v1/feedback`, { id: "fb-auth-1", label }, { authorization: "Bearer not-the-token" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const ok = await postJson(`${sidecar.url}/v1/feedback`, { id: "fb-auth-1", label }, auth);
    expect(ok).toMatchObject({ status: 200, body: { accepted: 1 } });
    const metrics = await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text();
    expect(metrics).toMatch(/ballast_sidecar_feedback_total\{result="unauthorized",modeldeployment="weather"\} 2/);
    expect(sidecar.lines.join("\n")).not.toContain(TOKEN);
  });

  it("wants Content-Type application/json: a form or text/plain POST (what a cross-site page can send unasked) gets 415", async () => {
    const label = await infer("fb-type-1");
    const body = JSON.stringify({ id: "fb-type-1", label });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await fetch(`${sidecar.url}/v1/feedback`, { method: "POST", headers: { ...auth, "content-type": type }, body });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: string }).error).toContain("application/json");
    }
    const untyped = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${sidecar.url}/v1/feedback`, { method: "POST", headers: auth }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on("error", reject);
      req.end(body);
    });
    expect(untyped).toBe(415);
    expect((await postJson(`${sidecar.url}/v1/feedback`, body, { ...auth, "content-type": "application/json; charset=utf-8" })).status).toBe(200);
  });

  it("refuses to start with an empty token file (exit code 2), naming the flag", async () => {
    const empty = path.join(fx.dir, "empty-token");
    fs.writeFileSync(empty, "\n");
    const err = await startBallast([
      "sidecar",
      "--upstream",
      `unix:${socketPath}`,
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--data-dir",
      path.join(fx.dir, "log-e"),
      "--feedback-token-file",
      empty,
    ]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited with 2[\s\S]*--feedback-token-file .*empty-token: is empty/);
  });
});

describe("proxying", () => {
  it("records a chunked infer request (no Content-Length) like any other: profiled, and feedback joins it", async () => {
    const before = ((await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary).totals.rows;
    const row = fx.seattleHoldout[5]!;
    const text = JSON.stringify(inferBody([row, row], "chunked-1"));
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(inferUrl(sidecar), { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } }, (r) => {
        let body = "";
        r.on("data", (c: Buffer) => (body += c.toString()));
        r.on("end", () => resolve({ status: r.statusCode!, body }));
      });
      req.on("error", reject);
      req.write(text.slice(0, 40));
      req.end(text.slice(40));
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).id).toBe("chunked-1");
    expect((await postJson(`${sidecar.url}/v1/feedback`, { id: "chunked-1", labels: [row.weather, row.weather] }, auth)).body).toMatchObject({ accepted: 2 });
    let rows = before;
    for (let i = 0; i < 50 && rows < before + 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rows = ((await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary).totals.rows;
    }
    expect(rows).toBe(before + 2);
  });
});

/** A stand-in model server for what the real one never does: answer slowly, or stream a body larger than memory. */
describe("proxying against a slow or endless upstream", () => {
  let upstream: http.Server;
  let front: LocalProcess;
  let slowClosedEarly: Promise<boolean>;
  let streamed = 0;
  const STREAM_LIMIT = 256 * 1024 * 1024;

  beforeAll(async () => {
    let onSlow: (early: boolean) => void = () => undefined;
    slowClosedEarly = new Promise((r) => (onSlow = r));
    upstream = http.createServer((req, res) => {
      if (req.url === "/v2/health/ready") return res.end("{}");
      if (req.url === "/v2/slow") {
        // Answers after 5 s unless the sidecar cancels the call first.
        const timer = setTimeout(() => {
          onSlow(false);
          res.end("late");
        }, 5000);
        res.on("close", () => {
          if (!res.writableFinished) {
            clearTimeout(timer);
            onSlow(true);
          }
        });
        return;
      }
      if (req.url === "/v2/endless") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(64 * 1024, 97);
        // Writes only as fast as the sidecar reads (honours write() === false).
        const pump = (): void => {
          while (streamed < STREAM_LIMIT) {
            streamed += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const port = (upstream.address() as net.AddressInfo).port;
    front = await startBallast([
      "sidecar",
      "--upstream",
      `http://127.0.0.1:${port}`,
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--data-dir",
      path.join(fx.dir, "log-slow"),
    ]);
    others.push(front);
  });

  afterAll(async () => {
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it("cancels the upstream call when the caller goes away", async () => {
    await fetch(`${front.url}/v2/slow`, { signal: AbortSignal.timeout(300) }).catch(() => undefined);
    const early = await Promise.race([slowClosedEarly, new Promise<string>((r) => setTimeout(() => r("still waiting"), 2000))]);
    expect(early).toBe(true);
  });

  it("reads a response only as fast as the caller does: a caller that reads nothing holds back the upstream", async () => {
    const socket = net.connect(front.port, "127.0.0.1");
    socket.write("GET /v2/endless HTTP/1.1\r\nhost: x\r\n\r\n");
    socket.pause();
    await new Promise((r) => setTimeout(r, 2000));
    // Socket buffers hold a few MiB; without backpressure the sidecar would have pulled all 256 MiB into memory.
    expect(streamed).toBeLessThan(32 * 1024 * 1024);
    socket.destroy();
  });
});

describe("shutting down", () => {
  it("on SIGTERM turns not ready but goes on proxying through the shutdown delay, each answer closing its connection; then exits 0", async () => {
    const dir = path.join(fx.dir, "drain");
    fs.mkdirSync(dir);
    const sock = path.join(dir, "model.sock");
    const srv = await startBallast(["serve", "--store", fx.storeDir, "--model", "weather", "--socket", sock, "--shutdown-delay", "3s"]);
    others.push(srv);
    await waitUntilReady(`${srv.url}/v2/health/ready`);
    const sc = await startSidecar(`unix:${sock}`, fx.storeDir, path.join(dir, "log"), ["--shutdown-delay", "1500ms"]);
    others.push(sc);
    const sidecarExit = sc.stop();
    const serverExit = srv.stop();
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`${sc.url}/v1/sidecar/ready`)).status).toBe(503);
    const during = await postJson(inferUrl(sc), inferBody(fx.seattleHoldout.slice(0, 1)));
    expect(during.status).toBe(200);
    expect(during.headers.get("connection")).toBe("close");
    expect(await sidecarExit).toBe(0);
    // The server outlives the sidecar: it was still serving when the sidecar finished.
    expect(srv.child.exitCode).toBeNull();
    expect(await serverExit).toBe(0);
  });
});

describe("ballast serve and request ids", () => {
  it("does not echo an invalid inference-request-id header; it answers with an id of its own", async () => {
    const tcp = await startBallast(["serve", "--store", fx.storeDir, "--model", "weather"]);
    others.push(tcp);
    await waitUntilReady(`${tcp.url}/v2/health/ready`);
    const bad = "x".repeat(500);
    const res = await postJson(inferUrl(tcp), inferBody(fx.seattleHoldout.slice(0, 1)), { "inference-request-id": bad });
    expect(res.status).toBe(200);
    expect(res.headers.get("inference-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect((res.body as { id: string }).id).toBe(res.headers.get("inference-request-id"));
    const good = await postJson(inferUrl(tcp), inferBody(fx.seattleHoldout.slice(0, 1)), { "inference-request-id": "order-9:row-1" });
    expect(good.headers.get("inference-request-id")).toBe("order-9:row-1");
  });
});
