// What any client can send to the sidecar must not degrade, confuse or expose the model: hostile request ids,
// inference before monitoring is set up, oversized bodies, and a model server that is down.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { LOCK_FILE } from "../../../src/runtime/log-lock.js";
import { postJson, startBallast, startModelServer, startSidecar, stopAll, waitUntilReady, type LocalProcess } from "./local-processes.js";
import { useSmallDisks } from "./small-disk.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

const ASSIGNED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;
const others: LocalProcess[] = [];

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2, holdoutRows: 60, newYorkRows: 20 });
  server = await startModelServer(fx.storeDir);
  sidecar = await startSidecar(server.url, fx.storeDir, path.join(fx.dir, "log"));
}, 120_000);

afterAll(async () => {
  await stopAll([...others, sidecar, server]);
  fx?.cleanup();
});

const inferUrl = (proc: LocalProcess): string => `${proc.url}/v2/models/weather/infer`;

async function summary(proc: LocalProcess): Promise<SidecarSummary> {
  return (await (await fetch(`${proc.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary;
}

/** Sends `head` and the first bytes of a body over a raw socket, never the rest; resolves with what came back once the server closes. */
function sendAndHold(port: number, head: string, firstBytes: string, timeoutMs = 5000): Promise<{ response: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let response = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closed: false });
    }, timeoutMs);
    socket.on("data", (c) => (response += c.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ response, closed: true });
    });
    socket.write(head + firstBytes);
  });
}

describe("request ids a caller chooses", () => {
  it("replaces a non-ASCII id (body or header) with one it assigns, says why, and answers feedback on it", async () => {
    const row = fx.seattleHoldout[0]!;
    const fromBody = await postJson(inferUrl(sidecar), inferBody([row], "天気-42"));
    const fromHeader = await postJson(inferUrl(sidecar), inferBody([row]), { "inference-request-id": "caf\u00e9" });
    for (const res of [fromBody, fromHeader]) {
      expect(res.status).toBe(200);
      const id = (res.body as { id: string }).id;
      expect(id).toMatch(ASSIGNED_ID);
      expect(res.headers.get("inference-request-id")).toBe(id);
      expect(res.headers.get("ballast-request-id-replaced")).toContain("characters outside A-Za-z0-9._:-");
      expect((await postJson(`${sidecar.url}/v1/feedback`, { id, label: row.weather })).status).toBe(200);
    }
  });

  it("replaces a 16 KiB id instead of failing on the response header", async () => {
    const row = fx.seattleHoldout[1]!;
    const res = await postJson(inferUrl(sidecar), inferBody([row], "x".repeat(16 * 1024)));
    expect(res.status).toBe(200);
    const id = (res.body as { id: string }).id;
    expect(id).toMatch(ASSIGNED_ID);
    expect(res.headers.get("ballast-request-id-replaced")).toContain("longer than 128 characters");
    expect((await postJson(`${sidecar.url}/v1/feedback`, { id, label: row.weather })).status).toBe(200);
  });

  it("counts none of those as failures: robustness stays 1", async () => {
    const s = await summary(sidecar);
    expect(s.totals.requests).toBeGreaterThanOrEqual(3);
    expect(s.totals.failedRequests).toBe(0);
    const metrics = await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ballast_robustness_ratio\{version="v1",modeldeployment="weather"\} 1$/m);
  });

  it("keeps a valid id of up to 128 characters as given", async () => {
    const id = `order-17:row.3_${"a".repeat(113)}`;
    expect(id).toHaveLength(128);
    const res = await postJson(inferUrl(sidecar), inferBody([fx.seattleHoldout[2]!], id));
    expect(res.status).toBe(200);
    expect((res.body as { id: string }).id).toBe(id);
    expect(res.headers.get("ballast-request-id-replaced")).toBeNull();
  });

  it("refuses an id it still tracks with 409, so feedback stays joined to the first request's rows", async () => {
    const [first, second] = [fx.seattleHoldout[3]!, fx.newYork[0]!];
    const served = await postJson(inferUrl(sidecar), inferBody([first], "order-1"));
    expect(served.status).toBe(200);
    const predicted = (served.body as { outputs: { name: string; data: string[] }[] }).outputs.find((o) => o.name === "label")!.data[0];

    const rowsBefore = (await summary(sidecar)).totals.rows;
    // Reused in the body, in the header, and twice at once: only 409s, nothing reaches the model's records.
    const reused = [
      await postJson(inferUrl(sidecar), inferBody([second], "order-1")),
      await postJson(inferUrl(sidecar), inferBody([second]), { "x-request-id": "order-1" }),
    ];
    const concurrent = await Promise.all([
      postJson(inferUrl(sidecar), inferBody([second], "order-2")),
      postJson(inferUrl(sidecar), inferBody([second], "order-2")),
    ]);
    expect(concurrent.map((r) => r.status).sort()).toEqual([200, 409]);
    for (const res of [...reused, concurrent.find((r) => r.status === 409)!]) {
      expect(res.status).toBe(409);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(Object.keys(res.body as object)).toEqual(["error"]);
      expect((res.body as { error: string }).error).toMatch(/^request id "order-[12]" is already in use/);
    }
    const after = await summary(sidecar);
    expect(after.totals.rows).toBe(rowsBefore + 1);
    expect(after.totals.failedRequests).toBe(0);

    // The label joins the first request's prediction: its row is the one in the log.
    expect(await postJson(`${sidecar.url}/v1/feedback`, { id: "order-1", label: predicted })).toMatchObject({ status: 200, body: { accepted: 1 } });
  });
});

describe("starting up", () => {
  it("holds inference and its readiness until monitoring is set up, so every answered inference takes feedback", async () => {
    // Another pod's lock keeps this sidecar's monitoring from starting until the lock goes away.
    const dataDir = path.join(fx.dir, "held");
    fs.mkdirSync(dataDir, { recursive: true });
    const lock = path.join(dataDir, LOCK_FILE);
    fs.writeFileSync(lock, JSON.stringify({ pod: "weather-other-pod", pid: 1, host: "elsewhere", startedAt: new Date().toISOString() }));
    const held = await startBallast(["sidecar", "--upstream", server.url, "--store", fx.storeDir, "--model", "weather", "--data-dir", dataDir], {
      POD_NAME: "weather-this-pod",
    });
    others.push(held);
    const row = fx.seattleHoldout[4]!;

    // The model server is ready, but through the sidecar nothing says so and nothing is predicted unrecorded.
    for (const p of ["/v2/health/ready", "/v2/models/weather/ready", "/v1/sidecar/ready"]) expect((await fetch(held.url + p)).status, p).toBe(503);
    const early = await postJson(inferUrl(held), inferBody([row], "early-1"));
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    expect((early.body as { error: string }).error).toContain("sidecar is starting");
    expect((await postJson(`${held.url}/v1/feedback`, { id: "early-1", label: row.weather })).status).toBe(503);
    expect((await fetch(`${held.url}/v2/health/live`)).status).toBe(200);

    fs.rmSync(lock);
    await waitUntilReady(`${held.url}/v2/health/ready`);
    const served = await postJson(inferUrl(held), inferBody([row], "early-1"));
    expect(served.status).toBe(200);
    expect(await postJson(`${held.url}/v1/feedback`, { id: "early-1", label: row.weather })).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect((await summary(held)).totals).toMatchObject({ requests: 1, rows: 1, feedback: 1 });
  });

  it("a new user's sequence — start, wait for /v2/health/ready through the sidecar, infer, post feedback — works the first time", async () => {
    const fresh = await startBallast([
      "sidecar",
      "--upstream",
      server.url,
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--data-dir",
      path.join(fx.dir, "fresh"),
    ]);
    others.push(fresh);
    await waitUntilReady(`${fresh.url}/v2/health/ready`);
    const row = fx.seattleHoldout[5]!;
    expect((await postJson(inferUrl(fresh), inferBody([row], "first"))).status).toBe(200);
    expect(await postJson(`${fresh.url}/v1/feedback`, { id: "first", label: row.weather })).toMatchObject({ status: 200, body: { accepted: 1 } });
  });
});

describe("oversized bodies", () => {
  const head = (p: string, length: number): string => `POST ${p} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;

  it("answers 413 to feedback declared over --max-body-bytes and closes the connection instead of reading the rest", async () => {
    const { response, closed } = await sendAndHold(sidecar.port, head("/v1/feedback", 64 * 1024 * 1024), '{"id": "');
    expect(response).toMatch(/^HTTP\/1.1 413 /);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
    expect(closed).toBe(true);
  });

  it("closes the connection after 413 to chunked feedback past the limit", async () => {
    const chunk = "x".repeat(64 * 1024);
    const chunks = Array.from({ length: 80 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join("");
    const { response, closed } = await sendAndHold(
      sidecar.port,
      "POST /v1/feedback HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
      chunks,
    );
    expect(response).toMatch(/^HTTP\/1.1 413 /);
    expect(closed).toBe(true);
  });

  it("passes the model server's 413 on and closes the caller's connection too", async () => {
    const { response, closed } = await sendAndHold(sidecar.port, head("/v2/models/weather/infer", 64 * 1024 * 1024), '{"inputs": [');
    expect(response).toMatch(/^HTTP\/1.1 413 /);
    expect(closed).toBe(true);
  });
});

describe("when the model server is down", () => {
  it("answers 503 without the server's address or socket error, and logs them instead", async () => {
    await server.stop();
    const res = await postJson(inferUrl(sidecar), inferBody([fx.seattleHoldout[6]!]));
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: "model server unavailable; retry shortly" });
    const logged = await sidecar.lineWith('"event":"upstream-error"');
    expect(logged).toContain(`"upstream":"${server.url}"`);
    expect(logged).toContain('"reason":"connect"');
    expect((await summary(sidecar)).totals.failedRequests).toBe(1);
    // The ready endpoint does not name the server's address either.
    let ready: Response | undefined;
    for (let i = 0; i < 50 && ready?.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await fetch(`${sidecar.url}/v1/sidecar/ready`);
    }
    expect(await ready!.json()).toEqual({ error: "model server is not ready" });
  });
});

describe("a request log that cannot write", () => {
  const smallDisk = useSmallDisks("ballast-sidecar-full-");

  it("takes the sidecar out of the Service (readiness 503) and refuses feedback until the disk has room again", async () => {
    const disk = smallDisk(512 * 1024);
    // Its own model server: an earlier test stops the shared one.
    const upstream = await startModelServer(fx.storeDir);
    const full = await startSidecar(upstream.url, fx.storeDir, path.join(disk, "log"));
    others.push(full, upstream);
    // Fill what is left of the disk: the next segment or sync fails with ENOSPC.
    const filler = path.join(disk, "filler");
    fs.writeFileSync(filler, Buffer.alloc(0));
    try {
      for (;;) fs.appendFileSync(filler, Buffer.alloc(16 * 1024));
    } catch {
      // ENOSPC: full.
    }
    const row = fx.seattleHoldout[0]!;
    const refused: number[] = [];
    for (let i = 0; i < 40 && refused.length === 0; i++) {
      const answer = await postJson(inferUrl(full), inferBody([row], `full-disk-${i}`));
      expect(answer.status).toBe(200);
      const fb = await postJson(`${full.url}/v1/feedback`, { id: `full-disk-${i}`, label: row.weather });
      if (fb.status !== 200) refused.push(fb.status);
    }
    expect(refused).toEqual([503]);
    const ready = await fetch(`${full.url}/v1/sidecar/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: string }).error).toBe("the request log cannot be written; the sidecar retries (its log says why)");

    fs.rmSync(filler);
    await waitUntilReady(`${full.url}/v1/sidecar/ready`, 60_000);
    const after = await postJson(inferUrl(full), inferBody([row], "after-full-disk"));
    expect(after.status).toBe(200);
    expect((await postJson(`${full.url}/v1/feedback`, { id: "after-full-disk", label: row.weather })).status).toBe(200);
  }, 120_000);
});
