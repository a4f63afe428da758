// A real OCI registry beside the local cluster (`ballast dev up --registry`): the CNCF distribution `registry`, built
// from its Go module by hack/registry/ensure-registry.sh, on a loopback port, blobs under the cluster directory. Plain
// HTTP on 127.0.0.1 only: push with `crane push --insecure` / `helm push --plain-http`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { httpProbe } from "./probes.js";
import { isAlive, logTail, startDetached, stopProcess, type StartedProcess } from "./processes.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Path of `registry` built from hack/registry/go.mod (REGISTRY_BINARY overrides it); builds it once when missing. */
export function locateRegistry(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REGISTRY_BINARY) return env.REGISTRY_BINARY;
  const script = join(repoRoot, "hack/registry/ensure-registry.sh");
  if (!existsSync(script)) throw new Error(`${script} is missing: run from a Ballast checkout, or set REGISTRY_BINARY`);
  return execFileSync(script, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

/** The registry's configuration: filesystem storage with deletes allowed, JSON logs without access logs, one address. */
export function registryConfig(storageDir: string, addr: string): string {
  return [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: json",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storageDir}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${addr}`,
    "",
  ].join("\n");
}

export interface RunningRegistry {
  /** host:port, as in `oci://<host>/charts/ballast` or `<host>/ballast:dev`. */
  host: string;
  process: StartedProcess & { command: string; args: string[] };
}

/** Starts the registry on `port` and returns once `GET /v2/` answers 200 (the OCI distribution API is mounted). */
export async function startRegistry(options: { dir: string; binary: string; port: number; signal?: AbortSignal }): Promise<RunningRegistry> {
  const home = join(resolve(options.dir), "registry");
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const host = `127.0.0.1:${options.port}`;
  const config = join(home, "config.yml");
  writeFileSync(config, registryConfig(join(home, "storage"), host));
  const args = ["serve", config];
  // No tracing exporter: the registry would otherwise try to send spans to a collector that is not there.
  const started = startDetached({
    name: "registry",
    command: options.binary,
    args,
    log: join(home, "registry.log"),
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
  });
  try {
    for (const deadline = Date.now() + 30_000; ; await sleep(200)) {
      options.signal?.throwIfAborted();
      if (!isAlive(started.pid)) throw new Error(`registry exited during start-up:\n${logTail(started.log)}`);
      if ((await httpProbe(`http://${host}/v2/`, {}, 2000)).ok) break;
      if (Date.now() > deadline) throw new Error(`registry not ready after 30 s (http://${host}/v2/):\n${logTail(started.log)}`);
    }
  } catch (err) {
    await stopProcess(started.pid);
    throw err;
  }
  return { host, process: { ...started, command: options.binary, args } };
}
