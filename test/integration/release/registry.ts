// A throwaway OCI registry for the release tests: the CNCF distribution `registry` built by
// hack/registry/ensure-registry.sh, on a kernel-chosen loopback port, storing blobs in a temp dir.
// Plain HTTP: it listens on 127.0.0.1 only, so nothing leaves the machine (helm needs --plain-http).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registryConfig } from "../../../src/devcluster/oci-registry.js";

export interface LocalRegistry {
  /** host:port, as in oci://<host>/charts/ballast */
  host: string;
  stop: () => Promise<void>;
}

const repoRoot = new URL("../../../", import.meta.url).pathname;

/** Builds the registry once into the tool cache (minutes cold, instant after) and returns its path. */
export function ensureRegistryBinary(): string {
  return execFileSync(`${repoRoot}hack/registry/ensure-registry.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

export async function startRegistry(binary: string, timeoutMs = 30_000): Promise<LocalRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "ballast-registry-"));
  const config = join(dir, "config.yml");
  // Port 0: the kernel picks a free port and the registry logs it, so no probe-then-bind race with other processes.
  writeFileSync(config, registryConfig(join(dir, "storage"), "127.0.0.1:0"));
  // No tracing exporter: the registry would otherwise try to send spans to a collector that is not there.
  const child = spawn(binary, ["serve", config], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, OTEL_TRACES_EXPORTER: "none" } });
  let logs = "";
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const host = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`registry did not report its address in ${timeoutMs} ms:\n${logs}`)), timeoutMs);
      // Read to the end (a full pipe would block the registry), kept only until it listens.
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        if (logs.includes("listening on")) return;
        logs += chunk;
        const port = /listening on 127\.0\.0\.1:(\d+)/.exec(logs)?.[1];
        if (port) {
          clearTimeout(timer);
          resolve(`127.0.0.1:${port}`);
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`registry exited (${code}) before listening:\n${logs}`));
      });
    });
    // The API root answers 200 once the handlers are mounted (OCI distribution spec: GET /v2/).
    const res = await fetch(`http://${host}/v2/`);
    if (res.status !== 200) throw new Error(`registry at ${host} answered GET /v2/ with ${res.status}`);
    return { host, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
