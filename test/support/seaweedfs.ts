// A throwaway S3 server for the s3:// store tests: SeaweedFS (`weed server -s3`, master + volume + filer + S3
// gateway in one process) built by hack/seaweedfs/ensure-seaweedfs.sh, on free loopback ports, data in a temp dir,
// one identity whose keys the test knows. Plain HTTP on 127.0.0.1 only: nothing leaves the machine.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll } from "vitest";
import { waitForS3, weedIdentityConfig, weedServerArgs } from "../../src/devcluster/s3-server.js";

export interface SeaweedS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** What `ballast serve/train` need in their environment to reach this server with the right keys. */
  env: Record<string, string>;
  /** Requests signed with the server's keys (no retries), as another tool than Ballast would send them. */
  client: AwsClient;
  createBucket(name: string): Promise<void>;
  /** Feedback records of the request log segments shipped under `s3://<bucket>/<prefix>`, and their object keys. */
  shippedFeedback(bucket: string, prefix: string): Promise<{ keys: string[]; feedback: { id: string; row: number; label: unknown }[] }>;
  /** SIGKILL, as a crashed or unplugged server: connections drop mid-request. */
  kill(): void;
  /**
   * Starts it again on the same ports and data (after `kill`), and waits until it takes writes again: after a
   * restart SeaweedFS's master refuses to assign volumes for a warm-up of 3 heartbeats (15 s) while it already
   * answers reads, and a PUT in that window waits inside the filer for up to 30 s.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const repoRoot = new URL("../../", import.meta.url).pathname;
/** Where `restart` probes that writes are taken again; no test reads it. */
const PROBE_BUCKET = "ballast-test-probe";

/** Builds `weed` once into the tool cache (minutes cold, instant after) and returns its path. */
export function ensureWeedBinary(): string {
  return execFileSync(`${repoRoot}hack/seaweedfs/ensure-seaweedfs.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

/** Ports the kernel hands out now; weed takes ports as flags (no port 0), so there is a small window to lose one. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export interface SeaweedOptions {
  /** SeaweedFS's advanced IAM config (sts, providers, roles, policies): its STS answers AssumeRoleWithWebIdentity. */
  iamConfig?: object;
  timeoutMs?: number;
}

export async function startSeaweedS3(binary: string, options: SeaweedOptions = {}): Promise<SeaweedS3> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const dir = mkdtempSync(join(tmpdir(), "ballast-seaweedfs-"));
  const accessKeyId = "ballasttest";
  const secretAccessKey = `secret-${Math.random().toString(36).slice(2)}`;
  const config = join(dir, "s3.json");
  writeFileSync(config, weedIdentityConfig({ accessKeyId, secretAccessKey }));
  const iamConfig = options.iamConfig ? join(dir, "iam.json") : undefined;
  if (iamConfig) writeFileSync(iamConfig, JSON.stringify(options.iamConfig));
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(8);
  const args = weedServerArgs(
    dir,
    { master: master!, masterGrpc: masterGrpc!, volume: volume!, volumeGrpc: volumeGrpc!, filer: filer!, filerGrpc: filerGrpc!, s3: s3!, s3Grpc: s3Grpc! },
    config,
    iamConfig,
  );
  const endpoint = `http://127.0.0.1:${s3}`;
  const client = new AwsClient({ accessKeyId, secretAccessKey, service: "s3", region: "us-east-1", retries: 0 });
  let child: ChildProcess;
  let exited: Promise<void>;
  let logs = "";
  const launch = async (): Promise<void> => {
    child = spawn(binary, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // Keep the tail only: weed logs steadily and the test needs the last words when it fails to start.
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (logs = (logs + chunk).slice(-20_000)));
    // Keys and timeout as given; the last words of weed when it fails to start.
    await waitForS3(
      endpoint,
      { accessKeyId, secretAccessKey },
      () => child.exitCode === null,
      () => logs,
      timeoutMs,
    );
  };
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  // Synchronous, so a test can pull the plug between two requests of a write.
  const kill = (): void => {
    if (running()) child.kill("SIGKILL");
  };
  const stop = async (): Promise<void> => {
    if (running()) {
      child.kill("SIGTERM");
      const stopped = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!stopped) {
        kill();
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const restart = async (): Promise<void> => {
    kill();
    await exited;
    await launch();
    const started = Date.now();
    for (;;) {
      const status = await client.fetch(`${endpoint}/${PROBE_BUCKET}/restarted`, { method: "PUT", body: "ok", signal: AbortSignal.timeout(60_000) }).then(
        (r) => r.status,
        (err: unknown) => String(err),
      );
      if (status === 200) break;
      if (Date.now() - started > timeoutMs) throw new Error(`weed restarted but took no write within ${timeoutMs} ms (last: ${status}):\n${logs}`);
      await sleep(250);
    }
    console.error(`[seaweedfs] writable again ${((Date.now() - started) / 1000).toFixed(1)} s after it answered reads`);
  };
  const createBucket = async (name: string): Promise<void> => {
    const res = await client.fetch(`${endpoint}/${name}`, { method: "PUT" });
    if (res.status !== 200) throw new Error(`create bucket ${name}: ${res.status} ${await res.text()}`);
  };
  // An error answer must fail the test, not read as "nothing shipped" (an empty list, an object without records).
  const get = async (url: string): Promise<string> => {
    const res = await client.fetch(url);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 500)}`);
    return text;
  };
  const shippedFeedback: SeaweedS3["shippedFeedback"] = async (bucket, prefix) => {
    const list = await get(`${endpoint}/${bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
    if (list.includes("<IsTruncated>true</IsTruncated>")) throw new Error(`listing ${bucket}/${prefix}: more than one page`);
    const keys = [...list.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!);
    const feedback = [];
    for (const key of keys) {
      const text = await get(`${endpoint}/${bucket}/${key}`);
      for (const line of text.split("\n"))
        if (line.startsWith('{"kind":"feedback"')) feedback.push(JSON.parse(line) as { id: string; row: number; label: unknown });
    }
    return { keys, feedback };
  };
  try {
    await launch();
    await createBucket(PROBE_BUCKET);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: "us-east-1",
      BALLAST_S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
    },
    client,
    createBucket,
    shippedFeedback,
    kill,
    restart,
    stop,
  };
}

/**
 * A SeaweedFS with `bucket` for the calling test file: started before its tests (building `weed` if needed), stopped
 * after them. The object is filled in by then, so tests use it like the one startSeaweedS3 returns.
 */
export function useSeaweedS3(bucket: string): SeaweedS3 {
  const s3 = {} as SeaweedS3;
  beforeAll(async () => {
    Object.assign(s3, await startSeaweedS3(ensureWeedBinary()));
    await s3.createBucket(bucket);
  }, 600_000);
  afterAll(async () => {
    await s3.stop?.();
  });
  return s3;
}
