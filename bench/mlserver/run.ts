// `ballast serve` vs MLServer (Seldon's Open Inference Protocol v2 server, sklearn runtime) on the weather
// classifier: the same training rows, the same preprocessing and architecture, the same OIP v2 request bodies,
// the same load generator (autocannon, in this process), at batch 1 / 32 and 1 / 8 connections, in one run.
// Both servers start fresh and stay up side by side; each point warms both, then measures them ABBA (Ballast,
// MLServer, MLServer, Ballast) so a change in the shared machine's load hits both alike.
// Run: make bench-mlserver (= make build && node bench/mlserver/run.ts [--duration 10] [--json out.json])
// MLServer and scikit-learn live in a venv in the tool cache (bench/mlserver/requirements.txt), made on first run.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const here = path.join(repo, "bench", "mlserver");
const ballast = path.join(repo, "bin", "ballast");
const cache = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "ballast", "bench");
const venv = path.join(cache, "mlserver-venv");

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    // MLServer's default is 1 (a front process + one inference worker process); 0 runs inference in the front process.
    "parallel-workers": { type: "string" },
    json: { type: "string" },
  },
});
/** Seconds of measured load per server and point (two halves, ABBA). */
const DURATION_S = Number(flags.duration);
const PARALLEL_WORKERS = flags["parallel-workers"];
if (!(DURATION_S >= 2) || (PARALLEL_WORKERS !== undefined && !/^\d+$/.test(PARALLEL_WORKERS))) {
  console.error("usage: node bench/mlserver/run.ts [--duration 10 (seconds per server and point, ≥ 2)] [--parallel-workers N] [--json out.json]");
  process.exit(2);
}
const WARMUP_S = 2;
const POINTS = [
  { batch: 1, connections: 1 },
  { batch: 1, connections: 8 },
  { batch: 32, connections: 1 },
  { batch: 32, connections: 8 },
] as const;
/** Seattle days held back from training: the request rows, and the accuracy check both models take. */
const TRAFFIC_ROWS = 300;

const weather = (await import(path.join(repo, "dist/demo/weather-data.js"))) as typeof import("../../src/demo/weather-data.js");

const t0 = Date.now();
const loadAverage = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
const STEPS = 6;
const step = (n: number, what: string): void =>
  console.error(`[${n}/${STEPS}] ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s  load ${loadAverage()}  ${what}`);

// autocannon ships no types: the part of its API used here.
interface Autocannon {
  (opts: { url: string; method: "POST"; body: string; headers: Record<string, string>; connections: number; duration: number }): Promise<{
    errors: number;
    non2xx: number;
    timeouts: number;
  }> & { on(event: "response", fn: (client: unknown, status: number, bytes: number, ms: number) => void): void };
}
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

/** The MLServer venv from the pinned requirements; reinstalled only when requirements.txt changes. */
function ensureVenv(): string {
  const requirements = path.join(here, "requirements.txt");
  const stamp = path.join(venv, ".requirements-sha256");
  const want = createHash("sha256").update(fs.readFileSync(requirements)).digest("hex");
  const python = path.join(venv, "bin", "python");
  if (fs.existsSync(python) && fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === want) return python;
  fs.mkdirSync(cache, { recursive: true });
  if (!fs.existsSync(python)) execFileSync("python3", ["-m", "venv", venv], { stdio: ["ignore", "inherit", "inherit"] });
  execFileSync(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements], { stdio: ["ignore", "inherit", "inherit"] });
  fs.writeFileSync(stamp, want);
  return python;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Server {
  name: "ballast" | "mlserver";
  child: ChildProcess;
  base: string;
  log: string;
}

/** Starts a server in its own process group (so its workers stop with it); its output goes to a file, as in a pod. */
function spawnServer(name: Server["name"], cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, log: string): ChildProcess {
  const out = fs.openSync(log, "w");
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", out, out], detached: true });
  fs.closeSync(out);
  child.on("error", (err) => console.error(`${name}: ${err.message}`));
  return child;
}

async function waitReady(server: Server, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) break;
    try {
      if ((await fetch(`${server.base}/v2/models/weather/ready`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  const tail = fs.readFileSync(server.log, "utf8").split("\n").slice(-20).join("\n");
  throw new Error(`${server.name} did not become ready within ${timeoutMs / 1000} s (exit ${server.child.exitCode}); its log:\n${tail}`);
}

async function startBallast(store: string, dir: string): Promise<Server> {
  const port = await freePort();
  const log = path.join(dir, "ballast-serve.log");
  const child = spawnServer("ballast", ballast, ["serve", "--store", store, "--model", "weather", "--host", "127.0.0.1", "--port", String(port)], {}, dir, log);
  const server: Server = { name: "ballast", child, base: `http://127.0.0.1:${port}`, log };
  await waitReady(server, 60_000);
  return server;
}

/** `mlserver start` with its defaults (unless --parallel-workers), on free ports of the loopback address. */
async function startMlserver(modelDir: string): Promise<Server> {
  const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const env = {
    MLSERVER_HOST: "127.0.0.1",
    MLSERVER_HTTP_PORT: String(http),
    MLSERVER_GRPC_PORT: String(grpc),
    MLSERVER_METRICS_PORT: String(metrics),
    ...(PARALLEL_WORKERS !== undefined ? { MLSERVER_PARALLEL_WORKERS: PARALLEL_WORKERS } : {}),
  };
  const log = path.join(modelDir, "..", "mlserver.log");
  const child = spawnServer("mlserver", path.join(venv, "bin", "mlserver"), ["start", "."], env, modelDir, log);
  const server: Server = { name: "mlserver", child, base: `http://127.0.0.1:${http}`, log };
  await waitReady(server, 180_000);
  return server;
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = once(s.child, "exit");
  s.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(-s.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) of a process and every descendant still running, from /proc. */
function treeCpuSeconds(root: number): number {
  const parents = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = fs.readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ");
      parents.set(Number(entry), Number(fields[1]));
      // clock ticks: USER_HZ is 100 on Linux
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  for (const [pid, seconds] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) {
        total += seconds;
        break;
      }
    }
  }
  return total;
}

interface Measured {
  requests: number;
  rps: number;
  rowsPerS: number;
  p50: number;
  p99: number;
  errors: number;
  cpuMsPerRequest: number;
}

/** Fixed-concurrency load for `seconds`; latencies from each response's own sub-millisecond time. */
async function drive(server: Server, body: string, batch: number, connections: number, seconds: number): Promise<Measured & { latencies: number[] }> {
  const latencies: number[] = [];
  const cpuBefore = treeCpuSeconds(server.child.pid!);
  const run = autocannon({
    url: `${server.base}/v2/models/weather/infer`,
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    connections,
    duration: seconds,
  });
  run.on("response", (_c, status, _b, ms) => {
    if (status === 200) latencies.push(ms);
  });
  const result = await run;
  const cpu = treeCpuSeconds(server.child.pid!) - cpuBefore;
  return summarise(latencies, seconds, batch, result.errors + result.non2xx + result.timeouts, cpu);
}

function summarise(latencies: number[], seconds: number, batch: number, errors: number, cpuSeconds: number): Measured & { latencies: number[] } {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const rps = latencies.length / seconds;
  return {
    latencies,
    requests: latencies.length,
    rps,
    rowsPerS: rps * batch,
    p50: at(0.5),
    p99: at(0.99),
    errors,
    cpuMsPerRequest: latencies.length > 0 ? (cpuSeconds * 1000) / latencies.length : NaN,
  };
}

/** Two halves merged: requests and CPU add up, percentiles over every latency of both. */
function merge(a: Measured & { latencies: number[] }, b: Measured & { latencies: number[] }, seconds: number, batch: number): Measured {
  const cpuSeconds = (a.cpuMsPerRequest * a.requests + b.cpuMsPerRequest * b.requests) / 1000;
  const { latencies: _all, ...m } = summarise([...a.latencies, ...b.latencies], seconds, batch, a.errors + b.errors, cpuSeconds);
  return m;
}

type Row = Record<(typeof weather.WEATHER_FEATURES)[number], string>;

/** The OIP v2 body both servers get: one [N, 4] FP32 row tensor; `outputs` names each server's label and probabilities. */
function inferBody(rows: readonly Row[], outputs: readonly [string, string]): string {
  return JSON.stringify({
    inputs: [
      {
        name: "input",
        shape: [rows.length, weather.WEATHER_FEATURES.length],
        datatype: "FP32",
        data: rows.map((r) => weather.WEATHER_FEATURES.map((f) => Number(r[f]))),
      },
    ],
    outputs: outputs.map((name) => ({ name })),
  });
}

const OUTPUTS = { ballast: ["label", "probabilities"], mlserver: ["predict", "predict_proba"] } as const;

/** Each server's predicted labels for `rows`, through its own infer endpoint. */
async function predictedLabels(server: Server, rows: readonly Row[]): Promise<string[]> {
  const res = await fetch(`${server.base}/v2/models/weather/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: inferBody(rows, OUTPUTS[server.name]),
  });
  if (res.status !== 200) throw new Error(`${server.name} answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { outputs: { name: string; data: string[] }[] };
  return body.outputs.find((o) => o.name === OUTPUTS[server.name][0])!.data;
}

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : "—");

async function main(): Promise<void> {
  if (!fs.existsSync(ballast)) throw new Error("bin/ballast is missing: run `make build` first");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-bench-mlserver-"));
  const servers: Server[] = [];
  const loadStart = loadAverage();
  try {
    step(1, `MLServer venv (${venv})`);
    const python = ensureVenv();
    const mlserverVersion = execFileSync(python, ["-c", "import mlserver, sklearn; print(mlserver.__version__, sklearn.__version__)"], { encoding: "utf8" })
      .trim()
      .split(" ");

    step(2, "ballast train on the demo's Seattle training days");
    const split = weather.splitWeather(weather.loadWeatherDays(), TRAFFIC_ROWS, TRAFFIC_ROWS);
    const csv = path.join(dir, "train.csv");
    fs.writeFileSync(csv, weather.weatherCsv(split.seattleTraining));
    const store = path.join(dir, "store");
    const features = weather.WEATHER_FEATURES.join(",");
    execFileSync(ballast, ["train", "--data", csv, "--features", features, "--label", weather.WEATHER_LABEL, "--store", store, "--model", "weather"], {
      stdio: ["ignore", "ignore", "ignore"],
    });

    step(3, "scikit-learn twin: MLPClassifier on the same rows, preprocessing and architecture");
    const modelDir = path.join(dir, "mlserver", "weather");
    const twin = JSON.parse(
      execFileSync(python, [path.join(here, "train_sklearn.py"), csv, path.join(store, "weather", "v1"), modelDir], { encoding: "utf8" }),
    ) as { trainRows: number; holdoutRows: number; hiddenUnits: number[]; epochs: number; sklearnHoldoutAccuracy: number; ballastHoldoutAccuracy: number };

    step(4, "start both servers fresh: ballast serve, mlserver start (defaults)");
    const b = await startBallast(store, dir);
    servers.push(b);
    const m = await startMlserver(modelDir);
    servers.push(m);
    const serveBackend = ((await (await fetch(`${b.base}/v2/models/weather`)).json()) as { parameters: { backend: string } }).parameters.backend;

    // Same rows into both: accuracy on the held-back Seattle days, and how often the two models agree.
    const traffic = split.seattleTraffic;
    const truth = traffic.map((d) => d.weather);
    const [bl, ml] = [await predictedLabels(b, traffic), await predictedLabels(m, traffic)];
    const accuracy = (labels: string[]): number => labels.filter((l, i) => l === truth[i]).length / truth.length;
    const agreement = bl.filter((l, i) => l === ml[i]).length / bl.length;

    step(5, `load: ${POINTS.length} points × 2 servers × ${DURATION_S} s (ABBA halves), ${WARMUP_S} s warm-up each`);
    const results: { batch: number; connections: number; ballast: Measured; mlserver: Measured; load: string }[] = [];
    for (const p of POINTS) {
      const rows = traffic.slice(0, p.batch);
      const body = (s: Server): string => inferBody(rows, OUTPUTS[s.name]);
      for (const s of [b, m]) await drive(s, body(s), p.batch, p.connections, WARMUP_S);
      const half = DURATION_S / 2;
      const b1 = await drive(b, body(b), p.batch, p.connections, half);
      const m1 = await drive(m, body(m), p.batch, p.connections, half);
      const m2 = await drive(m, body(m), p.batch, p.connections, half);
      const b2 = await drive(b, body(b), p.batch, p.connections, half);
      const r = { ...p, ballast: merge(b1, b2, DURATION_S, p.batch), mlserver: merge(m1, m2, DURATION_S, p.batch), load: loadAverage() };
      results.push(r);
      console.error(
        `      batch ${p.batch}, ${p.connections} conn.: ballast ${fmt(r.ballast.rps)} req/s p99 ${fmt(r.ballast.p99, 2)} ms; ` +
          `mlserver ${fmt(r.mlserver.rps)} req/s p99 ${fmt(r.mlserver.p99, 2)} ms (load ${r.load})`,
      );
    }
    step(6, "stop both servers");
    for (const s of servers.splice(0)) await stopServer(s);

    const report = {
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "unknown cpu"}`,
      loadAverage: { start: loadStart, end: loadAverage() },
      node: process.version,
      ballast: { backend: serveBackend },
      mlserver: {
        version: mlserverVersion[0],
        sklearn: mlserverVersion[1],
        parallelWorkers: PARALLEL_WORKERS === undefined ? "1 (default)" : PARALLEL_WORKERS,
      },
      model: { ...twin, trafficRows: truth.length, ballastTrafficAccuracy: accuracy(bl), sklearnTrafficAccuracy: accuracy(ml), agreement },
      durationSeconds: DURATION_S,
      results,
      wallSeconds: (Date.now() - t0) / 1000,
    };
    const lines = [
      `\nballast serve (tfjs ${serveBackend}) vs MLServer ${report.mlserver.version} (sklearn ${report.mlserver.sklearn} runtime, parallel_workers ` +
        `${report.mlserver.parallelWorkers}), ${DURATION_S} s per server and point, autocannon`,
      `model: MLP ${twin.hiddenUnits.join("→")} (${twin.epochs} epochs, ${twin.trainRows} rows incl. validation); accuracy on ${truth.length} held-back Seattle days ` +
        `ballast ${fmt(accuracy(bl) * 100, 1)} %, sklearn ${fmt(accuracy(ml) * 100, 1)} %, same label on ${fmt(agreement * 100, 1)} %`,
      "",
      "| batch | conn. | Ballast req/s | rows/s | p50 ms | p99 ms | CPU ms/req | MLServer req/s | rows/s | p50 ms | p99 ms | CPU ms/req | throughput B/M | p99 B/M | goal | load avg |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
      ...results.map((r) => {
        const tp = r.ballast.rps / r.mlserver.rps;
        const p99 = r.ballast.p99 / r.mlserver.p99;
        const met = tp >= 1 && p99 <= 1 && r.ballast.errors === 0;
        const cells = (x: Measured): string =>
          `${fmt(x.rps)} | ${fmt(x.rowsPerS)} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${fmt(x.cpuMsPerRequest, 2)}${x.errors ? ` (${x.errors} errors)` : ""}`;
        return `| ${r.batch} | ${r.connections} | ${cells(r.ballast)} | ${cells(r.mlserver)} | ${fmt(tp, 2)}× | ${fmt(p99, 2)}× | ${met ? "met" : "**not met**"} | ${r.load} |`;
      }),
      "",
      `goal: Ballast ≥ MLServer's req/s and p99 no higher at every point. ${report.machine}; load average ${report.loadAverage.start} at start, ` +
        `${report.loadAverage.end} at end; wall time ${fmt(report.wallSeconds)} s`,
    ];
    console.log(lines.join("\n"));
    if (flags.json) fs.writeFileSync(flags.json, JSON.stringify(report, null, 2) + "\n");
  } finally {
    for (const s of servers) await stopServer(s);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
