// The sidecar's inference pass-through, seen from both ends: what the caller sends reaches the model server byte for
// byte and what the server answers reaches the caller byte for byte — chunked or not, within the recording bound or
// past it, 200 or not — while every 200 within the bound is still profiled. A stand-in model server shows the bytes
// it got and chooses how it answers (the real one always answers small, whole bodies).
import crypto from "node:crypto";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { weatherFixture, WEATHER_FEATURES, type WeatherFixture } from "./weather-fixture.js";

const MAX_BODY_BYTES = 64 * 1024;

let fx: WeatherFixture;
let upstream: http.Server;
let sidecar: LocalProcess;
/** Per test case (the `x-test-case` header, forwarded like any header): the request body as the server got it. */
const received = new Map<string, Buffer>();
/** Per test case: the response body the server sent. */
const sent = new Map<string, Buffer>();
let slowClosedEarly: Promise<boolean>;

/** An OIP answer for one row, padded to about `bytes` (a large but valid response). */
function oipAnswer(id: string, bytes: number): Buffer {
  const outputs = [{ name: "label", shape: [1], datatype: "BYTES", data: ["sun"] }];
  return Buffer.from(JSON.stringify({ model_name: "weather", model_version: "v1", id, parameters: { padding: "p".repeat(bytes) }, outputs }));
}

/** Writes `body` in `pieces` writes, a tick apart: the sidecar sees a chunked body arrive in parts. */
function writeInPieces(out: http.ServerResponse | http.ClientRequest, body: Buffer, pieces: number): void {
  const size = Math.ceil(body.length / pieces);
  let at = 0;
  const next = (): void => {
    const chunk = body.subarray(at, at + size);
    at += size;
    if (at >= body.length) return void out.end(chunk);
    out.write(chunk);
    setImmediate(next);
  };
  next();
}

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2, holdoutRows: 20, newYorkRows: 0 });
  let onSlow: (early: boolean) => void = () => undefined;
  slowClosedEarly = new Promise((r) => (onSlow = r));
  upstream = http.createServer((req, res) => {
    if (req.url === "/v2/health/ready") return void res.end("{}");
    if (req.url === "/v2/models/weather") return void res.end(JSON.stringify({ name: "weather", versions: [fx.trained.metadata.version] }));
    const kase = String(req.headers["x-test-case"]);
    if (kase === "slow") {
      // Answers after 5 s unless the sidecar cancels the call first.
      const timer = setTimeout(() => {
        onSlow(false);
        res.end("late");
      }, 5000);
      res.on("close", () => {
        if (res.writableFinished) return;
        clearTimeout(timer);
        onSlow(true);
      });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.set(kase, Buffer.concat(chunks));
      const id = String(req.headers["inference-request-id"]);
      const rejected = kase === "rejected";
      const body = rejected ? Buffer.from(`{"error":"${"r".repeat(1024 * 1024)}"}`) : oipAnswer(id, kase === "large-answer" ? 300 * 1024 : 10);
      sent.set(kase, body);
      // No Content-Length: the answer goes out chunked, in parts.
      res.writeHead(rejected ? 422 : 200, { "content-type": "application/json", "inference-request-id": id });
      writeInPieces(res, body, 16);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  const port = (upstream.address() as net.AddressInfo).port;
  sidecar = await startSidecar(`http://127.0.0.1:${port}`, fx.storeDir, path.join(fx.dir, "log"), ["--max-body-bytes", String(MAX_BODY_BYTES)]);
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar]);
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  fx?.cleanup();
});

/** POSTs `body` to the sidecar's infer path chunked, in `pieces` writes; the raw answer. */
function infer(kase: string, body: Buffer, pieces = 4, signal?: AbortSignal): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${sidecar.url}/v2/models/weather/infer`,
      { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked", "x-test-case": kase }, signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    writeInPieces(req, body, pieces);
  });
}

/** A valid one-row infer body, written the way a hand-rolled client might: spacing, key order and a \u escape of its own. */
function oddlyWrittenBody(id: string, extra = ""): Buffer {
  const inputs = WEATHER_FEATURES.map((name, i) => `{ "datatype":"FP32", "name" : "${name}", "shape":[1], "data":[ ${i + 0.5} ] }`).join(",\n    ");
  return Buffer.from(`{\n  "id" : "${id}",\n  "parameters": {"note": "caf\\u00e9 \u2615 ${extra}"},\n  "inputs": [\n    ${inputs}\n  ]\n}\n`, "utf8");
}

async function summaryTotals(): Promise<SidecarSummary["totals"]> {
  return ((await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary).totals;
}

/** The totals once `rows` rows are profiled (the monitor works in batches after the responses). */
async function totalsWithRows(rows: number): Promise<SidecarSummary["totals"]> {
  let totals = await summaryTotals();
  for (let i = 0; i < 50 && totals.rows < rows; i++) {
    await new Promise((r) => setTimeout(r, 100));
    totals = await summaryTotals();
  }
  return totals;
}

const sha = (b: Buffer): string => crypto.createHash("sha256").update(b).digest("hex");

describe("the inference pass-through", () => {
  it("passes a chunked request (a UTF-8 character split across writes) and a chunked 300 KiB answer unchanged, and profiles the row", async () => {
    const before = await summaryTotals();
    const body = oddlyWrittenBody("pt-large-answer");
    // 7 writes of a body with a 3-byte character: at least one write boundary falls inside a character for most sizes.
    const answer = await infer("large-answer", body, 7);
    expect(answer.status).toBe(200);
    expect(received.get("large-answer")!.equals(body)).toBe(true);
    expect(sha(answer.body)).toBe(sha(sent.get("large-answer")!));
    expect(answer.headers["inference-request-id"]).toBe("pt-large-answer");
    const after = await totalsWithRows(before.rows + 1);
    expect(after.rows).toBe(before.rows + 1);
    expect(after.requests).toBe(before.requests + 1);
  });

  it("streams a body past --max-body-bytes through unchanged: counted, not profiled", async () => {
    const before = await summaryTotals();
    const body = oddlyWrittenBody("pt-too-large", "x".repeat(4 * MAX_BODY_BYTES));
    const answer = await infer("too-large", body, 32);
    expect(answer.status).toBe(200);
    expect(sha(received.get("too-large")!)).toBe(sha(body));
    expect(answer.body.equals(sent.get("too-large")!)).toBe(true);
    const after = await summaryTotals();
    expect(after.requests).toBe(before.requests + 1);
    expect(after.rows).toBe(before.rows);
  });

  it("streams a non-200 answer back unchanged (status, 1 MiB body), counts it rejected, and frees its id", async () => {
    const before = await summaryTotals();
    const answer = await infer("rejected", oddlyWrittenBody("pt-reused"));
    expect(answer.status).toBe(422);
    expect(sha(answer.body)).toBe(sha(sent.get("rejected")!));
    // The id was not recorded: sending it again is a new request, not a conflict (409).
    const again = await infer("ok", oddlyWrittenBody("pt-reused"));
    expect(again.status).toBe(200);
    const after = await totalsWithRows(before.rows + 1);
    expect(after).toMatchObject({ requests: before.requests + 2, rejectedRequests: before.rejectedRequests + 1, rows: before.rows + 1 });
  });

  it("answers a caller that asks Expect: 100-continue (curl does for large bodies): 100, then the server's answer", async () => {
    const body = oddlyWrittenBody("pt-expect");
    const answer = await new Promise<{ status: number; continued: boolean; body: Buffer }>((resolve, reject) => {
      let continued = false;
      const req = http.request(`${sidecar.url}/v2/models/weather/infer`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": body.length, expect: "100-continue", "x-test-case": "expect" },
      });
      req.on("continue", () => {
        continued = true;
        req.end(body);
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, continued, body: Buffer.concat(chunks) }));
      });
      req.on("error", reject);
    });
    expect(answer).toMatchObject({ status: 200, continued: true });
    expect(received.get("expect")!.equals(body)).toBe(true);
    expect(answer.body.equals(sent.get("expect")!)).toBe(true);
  });

  it("cancels the model server's work when the caller goes away before the answer", async () => {
    await infer("slow", oddlyWrittenBody("pt-slow"), 1, AbortSignal.timeout(300)).catch(() => undefined);
    const early = await Promise.race([slowClosedEarly, new Promise<string>((r) => setTimeout(() => r("still waiting"), 2000))]);
    expect(early).toBe(true);
  });
});
