// Starts `bin/ballast serve` / `sidecar` as real local processes on 127.0.0.1 and waits until they listen.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

export const ballastBin = new URL("../../../bin/ballast", import.meta.url).pathname;

export interface LocalProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** The sidecar's monitoring port (summary, metrics): `http://127.0.0.1:<port>`; undefined for other commands. */
  monitoringUrl?: string;
  /** Every line the process wrote to stderr/stdout (pino JSON mostly). */
  lines: string[];
  /** The first line containing `text`, waiting for it: a log line crosses a pipe and may arrive after the response it explains. */
  lineWith(text: string, timeoutMs?: number): Promise<string | undefined>;
  /** Sends a signal and waits for the exit; resolves to the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process exits by itself. */
  exited: Promise<number | null>;
}

/** Runs `bin/ballast <args> --host 127.0.0.1 --port 0` and resolves once its "listening" log line names the port (and a sidecar's, its monitoring port). */
export async function startBallast(args: string[], env: Record<string, string> = {}): Promise<LocalProcess> {
  // A sidecar's monitoring port is any free one too, so tests running side by side never collide on 9090.
  const monitoring = args[0] === "sidecar" && !args.includes("--monitoring-port") ? ["--monitoring-port", "0"] : [];
  // `serve --socket` has no API port: its health port stands in for it.
  const port0 = args.includes("--socket") ? ["--health-port", "0"] : ["--port", "0"];
  const child = spawn(ballastBin, [...args, ...monitoring, "--host", "127.0.0.1", ...port0], {
    env: { ...process.env, BALLAST_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let port: number | undefined;
  let monitoringPort: number | undefined;
  const onData = (chunk: Buffer): void => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line === "") continue;
      lines.push(line);
      if (port === undefined && line.includes('"event":"listening"')) {
        const at = JSON.parse(line) as { port?: number; health?: { port: number } };
        port = at.port ?? at.health?.port;
      }
      if (monitoringPort === undefined && line.includes('"event":"monitoring-listening"')) monitoringPort = (JSON.parse(line) as { port: number }).port;
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const deadline = Date.now() + 30_000;
  while (port === undefined) {
    if (child.exitCode !== null) throw new Error(`ballast ${args[0]} exited with ${child.exitCode}:\n${lines.join("\n")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`ballast ${args[0]} did not listen within 30 s:\n${lines.join("\n")}`);
    }
    await sleep(25);
  }
  // The sidecar logs its monitoring port right after its public one.
  for (let i = 0; args[0] === "sidecar" && monitoringPort === undefined && i < 200; i++) await sleep(25);
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    ...(monitoringPort !== undefined ? { monitoringUrl: `http://127.0.0.1:${monitoringPort}` } : {}),
    lines,
    async lineWith(text: string, timeoutMs = 5000) {
      for (const deadline = Date.now() + timeoutMs; ; await sleep(25)) {
        const line = lines.find((l) => l.includes(text));
        if (line !== undefined || Date.now() > deadline) return line;
      }
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    exited,
  };
}

/** Polls `url` until it answers 200 (readiness probes). */
export async function waitUntilReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last})`);
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // non-JSON bodies stay text, and the test's assertion shows them
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** `ballast serve` of model "weather" from a store directory, ready to predict. */
export async function startModelServer(storeDir: string, extraArgs: string[] = []): Promise<LocalProcess> {
  const proc = await startBallast(["serve", "--store", storeDir, "--model", "weather", ...extraArgs]);
  await waitUntilReady(`${proc.url}/v2/health/ready`);
  return proc;
}

/** `ballast sidecar` in front of `upstream`, logging to `dataDir`, ready (its model server is ready and metadata loaded). */
export async function startSidecar(
  upstream: string,
  storeDir: string,
  dataDir: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<LocalProcess> {
  const proc = await startBallast(["sidecar", "--upstream", upstream, "--store", storeDir, "--model", "weather", "--data-dir", dataDir, ...extraArgs], env);
  await waitUntilReady(`${proc.url}/v1/sidecar/ready`);
  return proc;
}

/** A model server and its sidecar, the sidecar closing a window every `windowRows` rows (no time bound). */
export async function startWindowedModel(
  storeDir: string,
  dataDir: string,
  windowRows: number,
  model = "weather",
): Promise<{ server: LocalProcess; sidecar: LocalProcess }> {
  const server = await startModelServer(storeDir, ["--model", model]);
  const sidecar = await startSidecar(server.url, storeDir, dataDir, ["--model", model, "--window-size", String(windowRows), "--window-duration", "0"]);
  return { server, sidecar };
}

/** Stops processes in order (front to back: the sidecar before its model server). */
export async function stopAll(procs: readonly (LocalProcess | undefined)[]): Promise<void> {
  for (const p of procs) await p?.stop();
}
