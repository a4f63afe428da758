// The sidecar's byte relay seen from a caller's socket, in front of a real `ballast serve`: pipelined inference is
// answered in order, connections are reused and end after 1000 requests, a caller that leaves mid-request costs the
// model server nothing, request ids keep their rules, and every head two parsers could read differently (the
// request-smuggling shapes) is answered by Node's server as before, never forwarded. Every answered row is profiled.
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A caller on one raw TCP connection: writes bytes as given, reads responses framed by Content-Length (or the close). */
class RawCaller {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  ended = false;

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.on("data", (c: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      this.waiting?.();
    });
    this.socket.on("close", () => {
      this.ended = true;
      this.waiting?.();
    });
    this.socket.on("error", () => undefined);
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next response; undefined when the connection closed before one came. */
  async next(timeoutMs = 15_000): Promise<RawResponse | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end >= 0) {
        const [statusLine, ...lines] = this.buffered.toString("latin1", 0, end).split("\r\n");
        const headers: Record<string, string> = {};
        for (const l of lines) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
        const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
        const total = end + 4 + (length ?? 0);
        if ((length !== undefined && this.buffered.length >= total) || (length === undefined && this.ended)) {
          const bodyEnd = length === undefined ? this.buffered.length : total;
          const body = this.buffered.toString("utf8", end + 4, bodyEnd);
          this.buffered = this.buffered.subarray(bodyEnd);
          return { status: Number(statusLine!.split(" ")[1]), headers, body };
        }
      }
      if (this.ended) return undefined;
      if (Date.now() > deadline) throw new Error(`no response within ${timeoutMs} ms; read so far: ${this.buffered.toString("latin1").slice(0, 200)}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
  }

  async closed(timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) await sleep(20);
    return this.ended;
  }
}

function inferRequest(id: string | undefined, extraHeaders = ""): string {
  const body = JSON.stringify(inferBody(fx.seattleHoldout.slice(0, 1), id));
  return `POST /v2/models/weather/infer HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n${extraHeaders}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

async function totals(): Promise<SidecarSummary["totals"]> {
  return ((await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary).totals;
}

/** The totals once they stop moving (the monitor profiles in 50 ms batches). */
async function settledTotals(): Promise<SidecarSummary["totals"]> {
  let t = await totals();
  for (let i = 0; i < 100; i++) {
    await sleep(120);
    const now = await totals();
    if (now.rows === t.rows && now.requests === t.requests) return now;
    t = now;
  }
  return t;
}

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2, holdoutRows: 20, newYorkRows: 0 });
  server = await startModelServer(`file://${fx.storeDir}`);
  sidecar = await startSidecar(server.url, `file://${fx.storeDir}`, path.join(fx.dir, "sidecar-log"));
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

describe("the sidecar's inference relay", () => {
  it("answers pipelined inference in order on one kept-alive connection, each with its own id", async () => {
    const caller = new RawCaller(sidecar.port);
    caller.write(inferRequest("pipe-1") + inferRequest("pipe-2") + inferRequest("pipe-3"));
    for (const id of ["pipe-1", "pipe-2", "pipe-3"]) {
      const res = (await caller.next())!;
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as { id: string }).id).toBe(id);
      expect(res.headers["inference-request-id"]).toBe(id);
      expect(res.headers.connection).toBe("keep-alive");
    }
    // The same connection again, later.
    caller.write(inferRequest("pipe-4"));
    expect((await caller.next())!.headers["inference-request-id"]).toBe("pipe-4");
    caller.socket.destroy();
  });

  it("reads a head that arrives byte by byte and a body that arrives in pieces", async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => fx.seattleHoldout[i % fx.seattleHoldout.length]!);
    const body = JSON.stringify(inferBody(rows, "pieces-1"));
    const request = `POST /v2/models/weather/infer HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const caller = new RawCaller(sidecar.port);
    for (const byte of request) {
      caller.write(byte);
      await sleep(0);
    }
    for (let at = 0; at < body.length; at += 1024) {
      caller.write(body.slice(at, at + 1024));
      await sleep(0);
    }
    const res = (await caller.next())!;
    expect(res.status).toBe(200);
    const answer = JSON.parse(res.body) as { id: string; outputs: { name: string; data: unknown[] }[] };
    expect(answer.id).toBe("pieces-1");
    expect(answer.outputs.find((o) => o.name === "label")!.data).toHaveLength(2000);
    caller.socket.destroy();
  });

  it("answers a request that asks to close with Connection: close, then closes, leaving what was pipelined after it", async () => {
    const caller = new RawCaller(sidecar.port);
    caller.write(inferRequest("close-1", "Connection: close\r\n") + inferRequest("close-2"));
    const res = (await caller.next())!;
    expect(res.headers["inference-request-id"]).toBe("close-1");
    expect(res.headers.connection).toBe("close");
    expect(await caller.next()).toBeUndefined();
  });

  it("hands a connection to Node's server at the first request that is not inference, and it keeps working there", async () => {
    const caller = new RawCaller(sidecar.port);
    caller.write(inferRequest("handover-1") + "GET /v2/health/ready HTTP/1.1\r\nHost: sidecar\r\n\r\n" + inferRequest("handover-2"));
    expect((await caller.next())!.headers["inference-request-id"]).toBe("handover-1");
    expect((await caller.next())!.status).toBe(200);
    const after = (await caller.next())!;
    expect(after.status).toBe(200);
    expect((JSON.parse(after.body) as { id: string }).id).toBe("handover-2");
    caller.socket.destroy();
  });

  it("keeps the request id rules: a taken id is a 409 JSON error, an invalid one is replaced and the response says why", async () => {
    const caller = new RawCaller(sidecar.port);
    caller.write(inferRequest("taken-1") + inferRequest("taken-1") + inferRequest(undefined, "Inference-Request-Id: not valid!\r\n"));
    expect((await caller.next())!.status).toBe(200);
    const taken = (await caller.next())!;
    expect(taken.status).toBe(409);
    expect(taken.headers["content-type"]).toBe("application/json");
    expect(taken.headers["inference-request-id"]).toBe("taken-1");
    expect((JSON.parse(taken.body) as { error: string }).error).toMatch(/request id "taken-1" is already in use/);
    const replaced = (await caller.next())!;
    expect(replaced.status).toBe(200);
    expect(replaced.headers["ballast-request-id-replaced"]).toMatch(/characters outside/);
    expect((JSON.parse(replaced.body) as { id: string }).id).toBe(replaced.headers["inference-request-id"]);
    caller.socket.destroy();
  });

  it("answers 1000 requests on a connection, the last with Connection: close, then closes it; every row is profiled", async () => {
    const before = await settledTotals();
    const caller = new RawCaller(sidecar.port);
    let last: RawResponse | undefined;
    for (let sent = 0; sent < 1000; sent += 50) {
      caller.write(Array.from({ length: 50 }, () => inferRequest(undefined)).join(""));
      for (let i = 0; i < 50; i++) {
        last = (await caller.next())!;
        expect(last.status).toBe(200);
        if (sent + i < 999) expect(last.headers.connection).toBe("keep-alive");
      }
    }
    expect(last!.headers.connection).toBe("close");
    expect(await caller.closed()).toBe(true);
    const after = await settledTotals();
    expect(after.requests - before.requests).toBe(1000);
    expect(after.rows - before.rows).toBe(1000);
  }, 60_000);

  it("forwards nothing of a request whose caller leaves mid-body, and serves the next caller as usual", async () => {
    const before = await settledTotals();
    const caller = new RawCaller(sidecar.port);
    const request = inferRequest("left-early");
    caller.write(request.slice(0, request.length - 10));
    await sleep(200);
    caller.socket.destroy();
    const next = new RawCaller(sidecar.port);
    next.write(inferRequest("after-left"));
    expect((await next.next())!.status).toBe(200);
    next.socket.destroy();
    const after = await settledTotals();
    expect(after.requests - before.requests).toBe(1);
  });

  /** Each case: how it bends a valid inference request, and what Node's server answers. */
  const refused: [string, (request: string) => string, number][] = [
    ["Content-Length and Transfer-Encoding together", (r) => r.replace("Host:", "Transfer-Encoding: chunked\r\nHost:"), 400],
    ["two different Content-Lengths", (r) => r.replace("Host:", "Content-Length: 3\r\nHost:"), 400],
    ["a signed Content-Length", (r) => r.replace("Content-Length: ", "Content-Length: +"), 400],
    ["a space before the colon", (r) => r.replace("Content-Type:", "Content-Type :"), 400],
    ["a bare LF line end", (r) => r.replace("Host: sidecar\r\n", "Host: sidecar\n"), 400],
    ["an obs-fold continuation line", (r) => r.replace("Content-Type: application/json", "Content-Type: application/\r\n json"), 400],
    ["an oversized head", (r) => r.replace("Host:", `X-Pad: ${"p".repeat(20 * 1024)}\r\nHost:`), 431],
  ];
  it.each(refused)("leaves %s to Node's server, which refuses it as before; nothing reaches the model server", async (_case, bend, status) => {
    const before = await settledTotals();
    const caller = new RawCaller(sidecar.port);
    caller.write(bend(inferRequest("smuggled")));
    expect((await caller.next())!.status).toBe(status);
    expect(await caller.closed()).toBe(true);
    expect((await settledTotals()).requests).toBe(before.requests);
  });

  it("leaves HTTP/1.0 and absolute-form requests to Node's server, which answers them as before", async () => {
    const old = new RawCaller(sidecar.port);
    old.write(inferRequest("old-1").replace("HTTP/1.1", "HTTP/1.0"));
    const res = (await old.next())!;
    expect(res.status).toBe(200);
    expect(res.headers["inference-request-id"]).toBe("old-1");
    old.socket.destroy();
    // Its path is not the inference route to Node's server either: proxied untouched, and the model server has no such path.
    const absolute = new RawCaller(sidecar.port);
    absolute.write(inferRequest("abs-1").replace("POST /v2", "POST http://sidecar/v2"));
    expect((await absolute.next())!.status).toBe(404);
    absolute.socket.destroy();
  });

  it("answers a request head that does not finish within the headers timeout with 408 and closes (slowloris)", async () => {
    const caller = new RawCaller(sidecar.port);
    // Behind a complete request, pipelined: its deadline starts when the first answer has gone.
    caller.write(inferRequest("before-slow") + inferRequest("slow").slice(0, 30));
    expect((await caller.next())!.headers["inference-request-id"]).toBe("before-slow");
    const res = await caller.next(20_000);
    expect(res?.status).toBe(408);
    expect(await caller.closed()).toBe(true);
  }, 30_000);
});

/**
 * A stand-in model server behind a second sidecar, answering as the real one never does (by the `x-test-case`
 * header, forwarded like any header): chunked, large non-200, endless, or never.
 */
describe("the relay in front of a model server that streams, fails or hangs", () => {
  let upstream: http.Server;
  let front: LocalProcess;
  /** Bytes the endless answer got written before the caller's backpressure held it. */
  let streamed = 0;
  let slowCancelled: Promise<void>;

  beforeAll(async () => {
    let onCancelled: () => void = () => undefined;
    slowCancelled = new Promise((r) => (onCancelled = r));
    upstream = http.createServer((req, res) => {
      if (req.url === "/v2/health/ready") return void res.end("{}");
      if (req.url === "/v2/models/weather") return void res.end(JSON.stringify({ name: "weather", versions: [fx.trained.metadata.version] }));
      req.resume();
      const id = String(req.headers["inference-request-id"]);
      switch (req.headers["x-test-case"]) {
        case "chunked-200": {
          res.writeHead(200, { "content-type": "application/json", "inference-request-id": id });
          const answer = JSON.stringify({
            model_name: "weather",
            model_version: "v1",
            id,
            outputs: [{ name: "label", shape: [1], datatype: "BYTES", data: ["sun"] }],
          });
          res.write(answer.slice(0, 20));
          setImmediate(() => res.end(answer.slice(20)));
          return;
        }
        case "rejected-large":
          res.writeHead(422, { "content-type": "application/json" });
          res.write('{"error":"');
          res.end(`${"r".repeat(1024 * 1024)}"}`);
          return;
        case "endless": {
          res.writeHead(500, { "content-type": "text/plain" });
          const chunk = Buffer.alloc(64 * 1024, "e");
          const more = (): void => {
            while (streamed < 256 * 1024 * 1024) {
              streamed += chunk.length;
              if (!res.write(chunk)) return void res.once("drain", more);
            }
            res.end();
          };
          more();
          return;
        }
        case "slow":
          // Answers never; the sidecar must cancel the call when its caller goes away.
          res.on("close", () => onCancelled());
          return;
      }
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    front = await startSidecar(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`, `file://${fx.storeDir}`, path.join(fx.dir, "front-log"));
  }, 60_000);

  afterAll(async () => {
    await stopAll([front]);
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  const post = (kase: string, id: string, signal?: AbortSignal): Promise<Response> =>
    fetch(`${front.url}/v2/models/weather/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-test-case": kase },
      body: JSON.stringify(inferBody(fx.seattleHoldout.slice(0, 1), id)),
      signal,
    });

  it("answers a chunked 200 whole, and records it", async () => {
    const res = await post("chunked-200", "chunked-1");
    expect(res.status).toBe(200);
    expect(res.headers.get("inference-request-id")).toBe("chunked-1");
    expect(((await res.json()) as { id: string }).id).toBe("chunked-1");
    const summary = async (): Promise<SidecarSummary["totals"]> =>
      ((await (await fetch(`${front.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary).totals;
    let t = await summary();
    for (let i = 0; i < 40 && t.rows < 1; i++) {
      await sleep(50);
      t = await summary();
    }
    expect(t.rows).toBeGreaterThanOrEqual(1);
  });

  it("streams a large non-200 answer back byte for byte, chunked, and keeps the connection", async () => {
    const res = await post("rejected-large", "rejected-1");
    expect(res.status).toBe(422);
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    expect(await res.text()).toBe(`{"error":"${"r".repeat(1024 * 1024)}"}`);
    expect((await post("chunked-200", "after-rejected")).status).toBe(200);
  });

  it("reads a non-200 answer only as fast as the caller does: a caller that reads nothing holds back the model server", async () => {
    const caller = net.connect(front.port, "127.0.0.1");
    const body = JSON.stringify(inferBody(fx.seattleHoldout.slice(0, 1), "endless-1"));
    caller.write(
      `POST /v2/models/weather/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Test-Case: endless\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    caller.pause();
    await sleep(2000);
    // Socket buffers hold a few MiB; without backpressure the sidecar would have pulled all 256 MiB into memory.
    expect(streamed).toBeGreaterThan(0);
    expect(streamed).toBeLessThan(32 * 1024 * 1024);
    caller.destroy();
  });

  it("cancels the model server's work when the caller goes away before the answer", async () => {
    const abort = new AbortController();
    const answered = post("slow", "slow-1", abort.signal).catch(() => "aborted");
    await sleep(300);
    abort.abort();
    expect(await answered).toBe("aborted");
    await expect(Promise.race([slowCancelled.then(() => "cancelled"), sleep(5000).then(() => "still running")])).resolves.toBe("cancelled");
    // The id was released with the call: the caller may retry with it.
    expect((await post("chunked-200", "slow-1")).status).toBe(200);
  });
});
