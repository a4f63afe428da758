// Serving benchmark: `ballast serve` directly vs through `ballast sidecar` at a fixed concurrency (throughput ratio,
// added p50/p99), then server throughput at batch 1 and batch 32 per available tfjs backend. One bounded run.
// Run: make build && node bench/serving/run.ts [--duration 10] [--connections 8] [--json out.json] [--no-backends]
//      [--sidecar-cpu-prof DIR] (a V8 CPU profile of the sidecar, written when it stops)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

interface AutocannonResult {
  requests: { average: number; total: number };
  errors: number;
  non2xx: number;
  timeouts: number;
}
interface AutocannonInstance extends Promise<AutocannonResult> {
  on(event: "response", listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void;
}
type Autocannon = (opts: {
  url: string;
  reconnectRate: number;
  method: string;
  body: string;
  headers: Record<string, string>;
  connections: number;
  duration: number;
}) => AutocannonInstance;

const require = createRequire(import.meta.url);
// autocannon ships no types; this is the part of its API the bench uses.
const autocannon = require("autocannon") as Autocannon;

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const ballast = path.join(repo, "bin", "ballast");
const FEATURES = ["precipitation", "temp_max", "temp_min", "wind"];

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "8" },
    json: { type: "string" },
    "no-backends": { type: "boolean", default: false },
    "sidecar-cpu-prof": { type: "string" },
  },
});
const DURATION_S = Number(flags.duration);
const CONNECTIONS = Number(flags.connections);

interface Proc {
  child: ChildProcess;
  url: string;
  /** The sidecar's summary and metrics (its own url for serve). */
  monitoringUrl: string;
}

async function start(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Proc> {
  const monitoring = args[0] === "sidecar" ? ["--monitoring-port", "0"] : [];
  const child = spawn(ballast, [...args, ...monitoring, "--host", "127.0.0.1", "--port", "0", "--log-level", "info"], {
    stdio: ["ignore", "ignore", "pipe"],
    env,
  });
  let port: number | undefined;
  // The sidecar's summary is on its monitoring port (any free one here), logged right after the public one.
  let monitoringPort: number | undefined;
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
    const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(stderr);
    if (m && port === undefined) port = Number(m[1]);
    const mon = /"event":"monitoring-listening"[^\n]*"port":(\d+)/.exec(stderr);
    if (mon && monitoringPort === undefined) monitoringPort = Number(mon[1]);
  });
  const deadline = Date.now() + 30_000;
  while (port === undefined || (args[0] === "sidecar" && monitoringPort === undefined)) {
    if (child.exitCode !== null) throw new Error(`ballast ${args[0]} exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`ballast ${args[0]} did not start: ${stderr}`);
    await sleep(20);
  }
  return { child, url: `http://127.0.0.1:${port}`, monitoringUrl: `http://127.0.0.1:${monitoringPort ?? port}` };
}

/**
 * A floor proxy in front of `upstream`: bare-proxy.ts (Node's HTTP server and undici) or raw-proxy.ts (a byte relay
 * on `net`), without the sidecar's work.
 */
async function startFloorProxy(script: "bare-proxy.ts" | "raw-proxy.ts", upstream: string): Promise<Proc> {
  const child = spawn(process.execPath, [path.join(repo, "bench", "serving", script), upstream], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const url = `http://127.0.0.1:${(JSON.parse(line.toString()) as { port: number }).port}`;
  return { child, url, monitoringUrl: url };
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`${url} never became ready`);
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  const exited = once(p.child, "exit");
  p.child.kill("SIGTERM");
  await exited;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`))));
  });
}

function weatherRows(n: number): number[][] {
  const csv = path.join(path.dirname(require.resolve("vega-datasets")), "..", "data", "weather.csv");
  const lines = fs.readFileSync(csv, "utf8").trim().split("\n");
  const header = lines[0]!.split(",");
  const idx = FEATURES.map((f) => header.indexOf(f));
  return lines.slice(1, n + 1).map((l) => {
    const cells = l.split(",");
    return idx.map((i) => Number(cells[i]));
  });
}

function inferBody(rows: number[][]): string {
  return JSON.stringify({ inputs: [{ name: "input", shape: [rows.length, FEATURES.length], datatype: "FP32", data: rows }] });
}

interface Measured {
  /** Responses with status 200. */
  ok: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Both servers answer 1000 requests per connection (CONNECTION_LIMITS.maxRequestsPerSocket), the last with
 * `Connection: close`, and 503 to any more. autocannon ignores that header: it reconnects after that many itself
 * (and drops that one response's event), or every later request on the connection would count as an error.
 */
const REQUESTS_PER_CONNECTION = 1000;

/** Fixed-concurrency load for DURATION_S; latencies kept at sub-millisecond resolution from each response. */
async function load(url: string, body: string, duration = DURATION_S, connections = CONNECTIONS): Promise<Measured> {
  const latencies: number[] = [];
  const instance = autocannon({
    url,
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    connections,
    duration,
    reconnectRate: REQUESTS_PER_CONNECTION,
  });
  instance.on("response", (_c, status, _b, ms) => {
    if (status === 200) latencies.push(ms);
  });
  const result = await instance;
  const sorted = Float64Array.from(latencies).sort();
  return {
    ok: latencies.length,
    rps: latencies.length / duration,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

const fmt = (x: number, digits = 3): string => x.toFixed(digits);

interface Totals {
  rows: number;
  requests: number;
}

/**
 * The sidecar's totals once it has profiled what it answered, checked: every request it counted is a profiled row
 * (batch 1: one row each), and it counted every 200 the load generator saw, plus at most the requests in flight
 * when each load phase stopped and the last on each connection (autocannon drops both without a response event).
 */
async function profiledEverything(sidecar: Proc, loads: Measured[]): Promise<Totals> {
  const seen = loads.reduce((a, m) => a + m.ok, 0);
  const inFlight = CONNECTIONS * loads.length + Math.ceil(seen / (REQUESTS_PER_CONNECTION - 1));
  let totals: Totals = { rows: 0, requests: 0 };
  // The monitor profiles in 50 ms batches after the responses.
  for (let i = 0; i < 100; i++) {
    totals = ((await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as { totals: Totals }).totals;
    if (totals.rows === totals.requests && totals.requests >= seen) break;
    await sleep(50);
  }
  if (totals.rows !== totals.requests || totals.requests < seen || totals.requests > seen + inFlight)
    throw new Error(
      `sidecar profiled ${totals.rows} rows of ${totals.requests} requests it counted; the load generator got ${seen} answers (+ ≤ ${inFlight} in flight)`,
    );
  return totals;
}

/**
 * CPU microseconds the sidecar's monitoring spends per recorded request (parse, profile, log line, window drift),
 * measured in-process on the built TrafficMonitor with the bench's own request and response bodies.
 */
async function monitoringMicrosPerRequest(store: string, request: string, response: string, dir: string): Promise<number> {
  const dist = (m: string): string => path.join(repo, "dist", "runtime", m);
  const { TrafficMonitor } = (await import(dist("traffic-monitor.js"))) as typeof import("../../src/runtime/traffic-monitor.js");
  const { RequestLog } = (await import(dist("request-log.js"))) as typeof import("../../src/runtime/request-log.js");
  const { readMetadata } = (await import(dist("metadata.js"))) as typeof import("../../src/runtime/metadata.js");
  const { openStore } = (await import(dist("store.js"))) as typeof import("../../src/runtime/store.js");
  const meta = await readMetadata(openStore(store), "weather", "v1");
  const log = await RequestLog.open(path.join(dir, "monitor-log"), {
    model: "weather",
    version: "v1",
    task: meta.task,
    label: meta.label,
    features: meta.features.map((f) => f.name),
  });
  const monitor = new TrafficMonitor({ meta, windowRows: 1000, windowMs: 0, windowsKept: 12, maxTracked: 100_000, pod: "bench", requestLog: log });
  const requestBody = Buffer.from(request);
  const n = 20_000;
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    monitor.enqueue({ ts: Date.now(), status: 200, requestBody, responseBody: Buffer.from(response.replace('"id":"x"', `"id":"r${i}"`)) });
    if (i % 100 === 99) monitor.drain();
  }
  monitor.drain();
  const used = process.cpuUsage(started);
  await log.close();
  return (used.user + used.system) / n;
}

/** CPU seconds a process has used, user and system (kernel: sockets, syscalls), from /proc: unaffected by how busy the rest of the machine is. */
function cpuSeconds(p: Proc): { user: number; system: number } {
  const fields = fs.readFileSync(`/proc/${p.child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** CPU milliseconds per request of one process: user + system, and the system part. */
interface CpuPerRequest {
  total: number;
  system: number;
}

/** Runs `load` and returns it with the CPU milliseconds per request each of `procs` spent meanwhile. */
async function loadWithCpu(procs: Proc[], url: string, body: string, duration: number): Promise<Measured & { cpu: CpuPerRequest[] }> {
  const before = procs.map(cpuSeconds);
  const m = await load(url, body, duration);
  return {
    ...m,
    cpu: procs.map((p, i) => {
      const after = cpuSeconds(p);
      const user = after.user - before[i]!.user;
      const system = after.system - before[i]!.system;
      return { total: ((user + system) * 1000) / m.ok, system: (system * 1000) / m.ok };
    }),
  };
}

async function main(): Promise<void> {
  if (!fs.existsSync(ballast)) throw new Error("bin/ballast is missing: run `make build` first");
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-bench-serving-"));
  const procs: Proc[] = [];
  try {
    const csv = path.join(path.dirname(require.resolve("vega-datasets")), "..", "data", "weather.csv");
    const store = path.join(dir, "store");
    await run(ballast, [
      "train",
      "--data",
      csv,
      "--features",
      FEATURES.join(","),
      "--label",
      "weather",
      "--store",
      store,
      "--model",
      "weather",
      "--epochs",
      "3",
    ]);
    const rows = weatherRows(32);
    const batch1 = inferBody(rows.slice(0, 1));
    const batch32 = inferBody(rows);

    const server = await start(["serve", "--store", store, "--model", "weather"]);
    procs.push(server);
    await waitReady(`${server.url}/v2/health/ready`);
    const profileDir = flags["sidecar-cpu-prof"];
    const sidecar = await start(
      ["sidecar", "--upstream", server.url, "--store", store, "--model", "weather", "--data-dir", path.join(dir, "log")],
      profileDir ? { ...process.env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(profileDir)}` } : process.env,
    );
    procs.push(sidecar);
    await waitReady(`${sidecar.url}/v1/sidecar/ready`);
    const directUrl = `${server.url}/v2/models/weather/infer`;
    const sidecarUrl = `${sidecar.url}/v2/models/weather/infer`;
    const bare = await startFloorProxy("bare-proxy.ts", server.url);
    procs.push(bare);
    const bareUrl = `${bare.url}/v2/models/weather/infer`;
    const raw = await startFloorProxy("raw-proxy.ts", server.url);
    procs.push(raw);
    const rawUrl = `${raw.url}/v2/models/weather/infer`;

    // Warm-up every path (JIT, keep-alive pools), then alternate direct / sidecar / bare proxy twice so drift in
    // machine load hits all three.
    await load(directUrl, batch1, 2);
    const sidecarLoads: Measured[] = [await load(sidecarUrl, batch1, 2)];
    await load(bareUrl, batch1, 2);
    await load(rawUrl, batch1, 2);
    const direct: (Measured & { cpu: CpuPerRequest[] })[] = [];
    const proxied: (Measured & { cpu: CpuPerRequest[] })[] = [];
    const bareRuns: (Measured & { cpu: CpuPerRequest[] })[] = [];
    const rawRuns: (Measured & { cpu: CpuPerRequest[] })[] = [];
    for (let round = 0; round < 2; round++) {
      direct.push(await loadWithCpu([server, sidecar], directUrl, batch1, DURATION_S / 2));
      proxied.push(await loadWithCpu([server, sidecar], sidecarUrl, batch1, DURATION_S / 2));
      bareRuns.push(await loadWithCpu([bare], bareUrl, batch1, DURATION_S / 2));
      rawRuns.push(await loadWithCpu([raw], rawUrl, batch1, DURATION_S / 2));
    }
    const cpu = (ms: { cpu: CpuPerRequest[] }[], i: number): CpuPerRequest => ({
      total: ms.reduce((a, m) => a + m.cpu[i]!.total, 0) / ms.length,
      system: ms.reduce((a, m) => a + m.cpu[i]!.system, 0) / ms.length,
    });
    const serverCpu = cpu(direct, 0);
    const sidecarCpu = cpu(proxied, 1);
    const serverCpuMs = serverCpu.total;
    const sidecarCpuMs = sidecarCpu.total;
    const bareCpu = cpu(bareRuns, 0);
    const rawCpu = cpu(rawRuns, 0);
    const rawRps = rawRuns.reduce((a, m) => a + m.rps, 0) / rawRuns.length;
    const mean = (ms: Measured[], k: keyof Measured): number => ms.reduce((a, m) => a + m[k], 0) / ms.length;
    const averaged = (ms: Measured[]): Measured => ({
      ok: mean(ms, "ok"),
      rps: mean(ms, "rps"),
      p50: mean(ms, "p50"),
      p99: mean(ms, "p99"),
      errors: mean(ms, "errors"),
    });
    const d = averaged(direct);
    const s = averaged(proxied);
    // One connection: the latency the sidecar adds to a request, without queueing behind other requests.
    const directSerial = await load(directUrl, batch1, DURATION_S / 2, 1);
    const sidecarSerial = await load(sidecarUrl, batch1, DURATION_S / 2, 1);
    sidecarLoads.push(...proxied, sidecarSerial);
    const summary = await profiledEverything(sidecar, sidecarLoads);
    const sampleResponse = JSON.stringify({
      ...((await (await fetch(directUrl, { method: "POST", headers: { "content-type": "application/json" }, body: batch1 })).json()) as object),
      id: "x",
    });
    const monitoringMicros = await monitoringMicrosPerRequest(store, batch1, sampleResponse, dir);
    await stop(bare);
    await stop(raw);
    await stop(sidecar);
    await stop(server);
    procs.length = 0;

    const backends: { backend: string; batch1: Measured; batch32: Measured }[] = [];
    for (const backend of flags["no-backends"] ? [] : ["tensorflow", "wasm", "cpu"]) {
      let p: Proc | undefined;
      try {
        p = await start(["serve", "--store", store, "--model", "weather", "--backend", backend]);
      } catch {
        console.log(`backend ${backend}: not available here, skipped`);
        continue;
      }
      try {
        await waitReady(`${p.url}/v2/health/ready`);
        const url = `${p.url}/v2/models/weather/infer`;
        await load(url, batch1, 1);
        backends.push({ backend, batch1: await load(url, batch1, DURATION_S / 2), batch32: await load(url, batch32, DURATION_S / 2) });
      } catch (err) {
        console.log(`backend ${backend}: not available here (${(err as Error).message}), skipped`);
      } finally {
        await stop(p);
      }
    }

    const ratio = s.rps / d.rps;
    const report = {
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "unknown cpu"}, load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")} (at start ${loadAtStart.map((x) => x.toFixed(1)).join(" ")})`,
      node: process.version,
      connections: CONNECTIONS,
      durationSeconds: DURATION_S,
      direct: d,
      sidecar: s,
      throughputRatio: ratio,
      addedP50Ms: s.p50 - d.p50,
      addedP99Ms: s.p99 - d.p99,
      oneConnection: {
        direct: directSerial,
        sidecar: sidecarSerial,
        addedP50Ms: sidecarSerial.p50 - directSerial.p50,
        addedP99Ms: sidecarSerial.p99 - directSerial.p99,
      },
      serverCpuMsPerRequest: serverCpuMs,
      sidecarCpuMsPerRequest: sidecarCpuMs,
      serverSystemCpuMsPerRequest: serverCpu.system,
      sidecarSystemCpuMsPerRequest: sidecarCpu.system,
      bareProxyCpuMsPerRequest: bareCpu.total,
      bareProxyCpuRatio: bareCpu.total / serverCpuMs,
      rawProxyCpuMsPerRequest: rawCpu.total,
      rawProxyCpuRatio: rawCpu.total / serverCpuMs,
      rawProxyThroughputRatio: rawRps / d.rps,
      cpuRatio: sidecarCpuMs / serverCpuMs,
      monitoringCpuMicrosPerRequest: monitoringMicros,
      sidecarRecordedRows: summary.rows,
      backends,
      wallSeconds: (Date.now() - started) / 1000,
    };
    console.log(`\nballast serve vs ballast sidecar, batch 1, ${CONNECTIONS} connections, ${DURATION_S} s each (2 alternating rounds)`);
    console.log(`  direct : ${fmt(d.rps, 0)} req/s  p50 ${fmt(d.p50)} ms  p99 ${fmt(d.p99)} ms  errors ${d.errors}`);
    console.log(`  sidecar: ${fmt(s.rps, 0)} req/s  p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  errors ${s.errors}`);
    console.log(
      `  throughput ratio ${fmt(ratio * 100, 1)} % (goal >= 85 %)  added p50 ${fmt(report.addedP50Ms)} ms  added p99 ${fmt(report.addedP99Ms)} ms (goal <= 1 ms)`,
    );
    console.log(
      `  1 connection: direct p50 ${fmt(directSerial.p50)} / p99 ${fmt(directSerial.p99)} ms, sidecar p50 ${fmt(sidecarSerial.p50)} / p99 ${fmt(sidecarSerial.p99)} ms: ` +
        `added p50 ${fmt(report.oneConnection.addedP50Ms)} ms, p99 ${fmt(report.oneConnection.addedP99Ms)} ms`,
    );
    console.log(
      `  CPU per request: model server ${fmt(serverCpuMs)} ms, sidecar ${fmt(sidecarCpuMs)} ms (proxy + monitoring + log): ` +
        `ratio ${fmt(sidecarCpuMs / serverCpuMs, 2)} (goal <= 0.40)`,
    );
    console.log(`    of which in the kernel (sockets): model server ${fmt(serverCpu.system)} ms, sidecar ${fmt(sidecarCpu.system)} ms`);
    console.log(
      `  bare proxy (Node HTTP server + undici, nothing else; bare-proxy.ts): ${fmt(bareCpu.total)} ms per request, ` +
        `ratio ${fmt(bareCpu.total / serverCpuMs, 2)}: the floor of this stack`,
    );
    console.log(
      `  raw relay (net server, strict head parse, pooled upstream sockets, bytes as they are; raw-proxy.ts): ${fmt(rawCpu.total)} ms per request, ` +
        `ratio ${fmt(rawCpu.total / serverCpuMs, 2)}, throughput ${fmt((rawRps / d.rps) * 100, 1)} % of direct: the floor of a byte relay`,
    );
    console.log(`  of which monitoring (after the response, in-process measurement): ${fmt(monitoringMicros, 1)} µs per request`);
    console.log(`  sidecar profiled ${summary.rows} rows of ${summary.requests} requests (every one; checked)`);
    console.log(`\nserver throughput per backend (${CONNECTIONS} connections)`);
    for (const b of backends) {
      console.log(
        `  ${b.backend.padEnd(10)} batch 1: ${fmt(b.batch1.rps, 0)} req/s = ${fmt(b.batch1.rps, 0)} rows/s (p99 ${fmt(b.batch1.p99)} ms)   ` +
          `batch 32: ${fmt(b.batch32.rps, 0)} req/s = ${fmt(b.batch32.rps * 32, 0)} rows/s (p99 ${fmt(b.batch32.p99)} ms)`,
      );
    }
    console.log(`\n${report.machine}; wall time ${fmt(report.wallSeconds, 1)} s`);
    if (flags.json) fs.writeFileSync(flags.json, JSON.stringify(report, null, 2) + "\n");
  } finally {
    for (const p of procs) await stop(p);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
