// `ballast dev up --s3 --registry` as a person uses it: beside the cluster, a real S3 server with a bucket and a real
// OCI registry, both reachable with what `up` printed (the S3 keys on stdout for `eval`, nowhere in a log or in
// state.json), shown by `status`, and gone with `down`: no process, no listening port.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { afterAll, describe, expect, it } from "vitest";
import { isListening } from "../../../src/devcluster/ports.js";
import { isAlive } from "../../../src/devcluster/processes.js";
import { readState } from "../../../src/devcluster/state.js";

const ballast = new URL("../../../bin/ballast", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "l1-dev-servers-"));

afterAll(() => {
  spawnSync(ballast, ["dev", "down", "--dir", dir, "--purge"]);
  rmSync(dir, { recursive: true, force: true });
});

/** Every regular file under `root`, for a grep. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .map((name) => join(root, name))
    .filter((file) => statSync(file, { throwIfNoEntry: false })?.isFile());
}

describe("ballast dev up --s3 --registry", () => {
  it("starts SeaweedFS with a bucket and a registry, prints how to use them, and down stops both", async () => {
    const up = spawnSync(ballast, ["dev", "up", "--dir", dir, "--nodes", "1", "--gpu-nodes", "0", "--s3", "--registry"], {
      encoding: "utf8",
      timeout: 600_000,
    });
    expect(up.status, up.stderr).toBe(0);
    const exports = Object.fromEntries([...up.stdout.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(exports.KUBECONFIG).toBe(join(dir, "kubeconfig"));
    expect(exports).toMatchObject({ AWS_REGION: "us-east-1", BALLAST_S3_FORCE_PATH_STYLE: "true" });
    const endpoint = exports.AWS_ENDPOINT_URL_S3!;
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(up.stderr).toContain(`dev up: s3: ${endpoint}, bucket ballast-models`);
    const registry = /dev up: registry: (127\.0\.0\.1:\d+) /.exec(up.stderr)?.[1];
    expect(registry).toBeDefined();

    // S3: the printed keys write and read an object in the bucket.
    const s3 = new AwsClient({ accessKeyId: exports.AWS_ACCESS_KEY_ID!, secretAccessKey: exports.AWS_SECRET_ACCESS_KEY!, service: "s3", region: "us-east-1" });
    expect((await s3.fetch(`${endpoint}/ballast-models/hello.txt`, { method: "PUT", body: "hello" })).status).toBe(200);
    expect(await (await s3.fetch(`${endpoint}/ballast-models/hello.txt`)).text()).toBe("hello");
    const wrong = new AwsClient({ accessKeyId: exports.AWS_ACCESS_KEY_ID!, secretAccessKey: "not-the-key", service: "s3", region: "us-east-1", retries: 0 });
    expect((await wrong.fetch(`${endpoint}/ballast-models/hello.txt`)).status).toBe(403);

    // Registry: the OCI distribution API stores a blob and serves it back by digest.
    const blob = Buffer.from("a layer");
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
    const start = await fetch(`http://${registry}/v2/ballast/test/blobs/uploads/`, { method: "POST" });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get("location")!, `http://${registry}`);
    location.searchParams.set("digest", digest);
    expect((await fetch(location, { method: "PUT", body: blob, headers: { "content-type": "application/octet-stream" } })).status).toBe(201);
    expect(Buffer.from(await (await fetch(`http://${registry}/v2/ballast/test/blobs/${digest}`)).arrayBuffer())).toEqual(blob);

    const status = spawnSync(ballast, ["dev", "status", "--dir", dir], { encoding: "utf8" });
    expect(status.stdout).toContain(`s3: ${endpoint} bucket ballast-models`);
    expect(status.stdout).toContain(`registry: ${registry}`);

    // The keys: in the 0600 env file `up` printed, and in no log, no state.json, no stderr line.
    const state = readState(dir)!;
    expect(statSync(state.s3!.envFile).mode & 0o077).toBe(0);
    expect(up.stderr).not.toContain(exports.AWS_SECRET_ACCESS_KEY);
    for (const file of filesUnder(dir).filter((f) => f.endsWith(".log") || f.endsWith("state.json")))
      expect(readFileSync(file, "utf8"), file).not.toContain(exports.AWS_SECRET_ACCESS_KEY);

    const down = spawnSync(ballast, ["dev", "down", "--dir", dir], { encoding: "utf8", timeout: 120_000 });
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^stopped registry, seaweedfs, local-nodes, /);
    for (const p of state.processes) expect(isAlive(p.pid), `${p.name} (pid ${p.pid}) still running`).toBe(false);
    expect(await isListening(Number(new URL(endpoint).port))).toBe(false);
    expect(await isListening(Number(registry!.split(":")[1]))).toBe(false);
  }, 900_000);
});
