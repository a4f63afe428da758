// A real S3 server beside the local cluster (`ballast dev up --s3`): SeaweedFS (`weed server -s3`: master, volume
// server, filer and S3 gateway in one process), built from its Go module by hack/seaweedfs/ensure-seaweedfs.sh, on
// loopback ports, data under the cluster directory, one identity with keys made for this cluster. Local pods run on
// the host's network, so the endpoint is reachable from them as from the user's shell.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { AwsClient } from "aws4fetch";
import type { PortAllocator } from "./ports.js";
import { isAlive, logTail, startDetached, stopProcess, type StartedProcess } from "./processes.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** The bucket `dev up --s3` creates, as in examples/weather-s3/. */
export const DEV_S3_BUCKET = "ballast-models";
const REGION = "us-east-1";

/** Path of `weed` built from hack/seaweedfs/go.mod (WEED_BINARY overrides it); builds it once when missing. */
export function locateWeed(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WEED_BINARY) return env.WEED_BINARY;
  const script = join(repoRoot, "hack/seaweedfs/ensure-seaweedfs.sh");
  if (!existsSync(script)) throw new Error(`${script} is missing: run from a Ballast checkout, or set WEED_BINARY`);
  return execFileSync(script, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The ports `weed server` listens on (it takes them as flags: no port 0). */
export interface WeedPorts {
  master: number;
  masterGrpc: number;
  volume: number;
  volumeGrpc: number;
  filer: number;
  filerGrpc: number;
  s3: number;
  s3Grpc: number;
}

/** The S3 gateway's identities file: one identity, allowed everything, with these keys. */
export function weedIdentityConfig(keys: S3Keys): string {
  return JSON.stringify({
    identities: [
      {
        name: "ballast",
        credentials: [{ accessKey: keys.accessKeyId, secretKey: keys.secretAccessKey }],
        actions: ["Admin", "Read", "List", "Tagging", "Write"],
      },
    ],
  });
}

/**
 * `weed server -s3` on 127.0.0.1 only, data and sockets in `dir`, identities from `configFile`; with
 * `iamConfigFile`, also its STS (AssumeRoleWithWebIdentity), OIDC providers, roles and policies.
 */
export function weedServerArgs(dir: string, ports: WeedPorts, configFile: string, iamConfigFile?: string): string[] {
  return [
    "server",
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    `-dir=${dir}`,
    `-master.port=${ports.master}`,
    `-master.port.grpc=${ports.masterGrpc}`,
    "-master.telemetry=false",
    "-master.volumeSizeLimitMB=64",
    `-volume.port=${ports.volume}`,
    `-volume.port.grpc=${ports.volumeGrpc}`,
    "-volume.max=8",
    "-filer",
    `-filer.port=${ports.filer}`,
    `-filer.port.grpc=${ports.filerGrpc}`,
    `-filer.localSocket=${join(dir, "filer.sock")}`,
    "-s3",
    `-s3.port=${ports.s3}`,
    `-s3.port.grpc=${ports.s3Grpc}`,
    `-s3.config=${configFile}`,
    `-s3.localSocket=${join(dir, "s3.sock")}`,
    ...(iamConfigFile ? [`-s3.iam.config=${iamConfigFile}`] : []),
  ];
}

/** Polls a signed ListBuckets until it answers 200: the gateway is up and has loaded the identities. */
export async function waitForS3(
  endpoint: string,
  keys: S3Keys,
  alive: () => boolean,
  why: () => string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const client = new AwsClient({ ...keys, service: "s3", region: REGION, retries: 0 });
  const deadline = Date.now() + timeoutMs;
  for (; ; await sleep(250)) {
    signal?.throwIfAborted();
    if (!alive()) throw new Error(`weed exited before serving S3:\n${why()}`);
    const status = await client.fetch(`${endpoint}/`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`weed did not serve S3 on ${endpoint} within ${timeoutMs} ms (last status ${status}):\n${why()}`);
  }
}

export interface RunningS3 {
  endpoint: string;
  bucket: string;
  /** What a shell, `ballast train/serve` or a Secret need (endpoint, region, path style, keys). */
  env: Record<string, string>;
  /** The same as `export` lines, mode 0600: `ballast dev up` prints it; state.json names only the file. */
  envFile: string;
  process: StartedProcess & { command: string; args: string[] };
}

export interface S3ServerOptions {
  /** The cluster directory: the server keeps its data, keys and log under `<dir>/s3/`. */
  dir: string;
  binary: string;
  alloc: PortAllocator;
  signal?: AbortSignal;
}

/** Starts SeaweedFS with fresh keys and the bucket `ballast-models`, and returns once it answers signed requests. */
export async function startS3Server(options: S3ServerOptions): Promise<RunningS3> {
  const home = join(resolve(options.dir), "s3");
  mkdirSync(join(home, "data"), { recursive: true, mode: 0o700 });
  const keys: S3Keys = { accessKeyId: `ballast-${randomBytes(6).toString("hex")}`, secretAccessKey: randomBytes(24).toString("base64url") };
  // The keys are in these two files only (the cluster directory is the user's alone): never in a log or state.json.
  const configFile = join(home, "identities.json");
  writeFileSync(configFile, weedIdentityConfig(keys), { mode: 0o600 });
  const names = ["master", "masterGrpc", "volume", "volumeGrpc", "filer", "filerGrpc", "s3", "s3Grpc"] as const;
  const ports = {} as WeedPorts;
  for (const name of names) ports[name] = await options.alloc.allocate();
  const args = weedServerArgs(join(home, "data"), ports, configFile);
  const started = startDetached({ name: "seaweedfs", command: options.binary, args, log: join(home, "weed.log"), cwd: home });
  const endpoint = `http://127.0.0.1:${ports.s3}`;
  try {
    await waitForS3(
      endpoint,
      keys,
      () => isAlive(started.pid),
      () => logTail(started.log),
      120_000,
      options.signal,
    );
    const client = new AwsClient({ ...keys, service: "s3", region: REGION, retries: 0 });
    const res = await client.fetch(`${endpoint}/${DEV_S3_BUCKET}`, { method: "PUT" });
    if (res.status !== 200) throw new Error(`creating bucket ${DEV_S3_BUCKET} at ${endpoint}: HTTP ${res.status}`);
  } catch (err) {
    await stopProcess(started.pid);
    throw err;
  }
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: REGION,
    BALLAST_S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
  };
  const envFile = join(home, "s3.env");
  writeFileSync(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `export ${k}=${v}\n`)
      .join(""),
    { mode: 0o600 },
  );
  return { endpoint, bucket: DEV_S3_BUCKET, env, envFile, process: { ...started, command: options.binary, args } };
}
