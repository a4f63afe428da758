// Given a real S3 server (SeaweedFS) and a bucket, a user trains into s3://, serves from it, and sees every
// failure as a clear message: half-written versions stay invisible, versions are never overwritten, bad keys,
// a missing bucket and a server that dies mid-write all say what happened.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelMetadata } from "../../../src/runtime/metadata.js";
import { loadReference } from "../../../src/runtime/monitoring-config.js";
import { S3_MANIFEST_OBJECT, S3ModelStore, s3SettingsFromEnv } from "../../../src/runtime/s3-store.js";
import { StoreError, openStore, resolveVersion } from "../../../src/runtime/store.js";
import { useSeaweedS3 } from "../../support/seaweedfs.js";
import { trainWeather } from "../../support/train-weather.js";
import { postJson, startBallast, waitUntilReady, type LocalProcess } from "../../unit/runtime/local-processes.js";

const STORE = "s3://models/team/store";
const repoRoot = new URL("../../../", import.meta.url).pathname;

const s3 = useSeaweedS3("models");

function store(env: Record<string, string> = s3.env): S3ModelStore {
  return openStore(STORE, { s3: s3SettingsFromEnv(env) }) as S3ModelStore;
}

/** A PUT straight to the bucket, as another tool (or a crashed writer) would leave an object. */
async function putObject(key: string, body: string): Promise<void> {
  const res = await s3.client.fetch(`${s3.endpoint}/models/${key}`, { method: "PUT", body });
  expect(res.status).toBe(200);
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

describe("s3:// model store against SeaweedFS", () => {
  it("`ballast train` writes versions into s3:// and `ballast serve` answers OIP infer from the newest", async () => {
    for (const version of ["v1", "v2"]) {
      const res = trainWeather(STORE, s3.env);
      expect(res.status, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ model: "weather", version, store: STORE });
    }
    const versions = await store().listVersions("weather");
    expect(versions.map((v) => v.version)).toEqual(["v1", "v2"]);
    expect(await resolveVersion(store(), "weather")).toBe("v2");

    let server: LocalProcess | undefined;
    try {
      server = await startBallast(["serve", "--store", STORE, "--model", "weather"], s3.env);
      await waitUntilReady(`${server.url}/v2/health/ready`);
      const model = await fetch(`${server.url}/v2/models/weather`).then((r) => r.json() as Promise<{ versions: string[] }>);
      expect(model.versions).toEqual(["v2"]);
      const res = await postJson(`${server.url}/v2/models/weather/infer`, {
        inputs: [
          { name: "precipitation", shape: [2], datatype: "FP32", data: [0, 12.5] },
          { name: "temp_max", shape: [2], datatype: "FP32", data: [25, 8] },
          { name: "temp_min", shape: [2], datatype: "FP32", data: [14, 3] },
          { name: "wind", shape: [2], datatype: "FP32", data: [2.1, 6.4] },
        ],
      });
      expect(res.status).toBe(200);
      const body = res.body as { model_version: string; outputs: { name: string; data: unknown[] }[] };
      expect(body.model_version).toBe("v2");
      expect(body.outputs.find((o) => o.name === "label")!.data).toHaveLength(2);
    } finally {
      await server?.stop();
    }
  });

  it("lays a version out as its files plus a manifest of their SHA-256 digests, written last", async () => {
    const res = await s3.client.fetch(`${s3.endpoint}/models/team/store/weather/v1/${S3_MANIFEST_OBJECT}`);
    const manifest = (await res.json()) as { version: string; files: Record<string, string> };
    expect(manifest.version).toBe("v1");
    expect(Object.keys(manifest.files)).toEqual(expect.arrayContaining(["metadata.json", "model.json"]));
  });

  it("ignores a half-written version (objects without a manifest), and a retried write completes it", async () => {
    await putObject("team/store/weather/v3/metadata.json", JSON.stringify({ createdAt: "2099-01-01T00:00:00Z" }));
    await putObject("team/store/weather/v3/model.json", "{}");
    expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "v2"]);
    expect(await resolveVersion(store(), "weather")).toBe("v2");
    const err = await storeError(store().readFile("weather", "v3", "model.json"));
    expect(err.code).toBe("not-found");
    expect(err.message).toContain("is not a complete version");

    // The writer that crashed retries under the same name (a retraining Job's version is deterministic).
    await store().writeVersion(
      "weather",
      "v3",
      new Map([
        ["metadata.json", JSON.stringify({ createdAt: "2099-01-01T00:00:00Z" })],
        ["notes.txt", "retried"],
      ]),
    );
    expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "v2", "v3"]);
    expect((await store().readFile("weather", "v3", "notes.txt")).toString()).toBe("retried");
  });

  it("refuses to overwrite a version, from the library and from `ballast train --version`", async () => {
    const files = new Map([["metadata.json", JSON.stringify({ createdAt: "2030-01-01T00:00:00Z" })]]);
    const err = await storeError(store().writeVersion("weather", "v1", files));
    expect(err.code).toBe("exists");
    expect(err.message).toBe(`version weather/v1 already exists in ${STORE}; versions are immutable`);
    const res = trainWeather(STORE, s3.env, ["--version", "v2"]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("version weather/v2 already exists");
    // v2 is still the version `train` wrote first.
    expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "v2", "v3"]);
  });

  it("refuses an object changed after its version was sealed (digest mismatch)", async () => {
    await putObject("team/store/weather/v3/notes.txt", "tampered");
    const err = await storeError(store().readFile("weather", "v3", "notes.txt"));
    expect(err.code).toBe("integrity");
    expect(err.message).toMatch(/SHA-256 .* does not match/);
  });

  it("says access denied and where to fix the keys when the secret key is wrong, without printing it", async () => {
    const wrong = { ...s3.env, AWS_SECRET_ACCESS_KEY: "not-the-secret-key-41" };
    const res = trainWeather(STORE, wrong);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/access denied by http:\/\/127\.0\.0\.1:\d+ \(SignatureDoesNotMatch/);
    expect(res.stderr).toContain("spec.model.s3.credentialsSecretRef");
    // The server listens (for its probes) before it loads the model, then exits with the reason.
    const server = await startBallast(["serve", "--store", STORE, "--model", "weather"], wrong);
    expect(await server.exited).toBe(2);
    expect(server.lines.join("\n")).toMatch(/access denied .*SignatureDoesNotMatch/);
    for (const text of [res.stderr, res.stdout, ...server.lines]) {
      expect(text).not.toContain("not-the-secret-key-41");
      expect(text).not.toContain(s3.secretAccessKey);
    }
    const unknownKey = await storeError(store({ ...s3.env, AWS_ACCESS_KEY_ID: "nobody" }).listVersions("weather"));
    expect(unknownKey.code).toBe("denied");
    expect(unknownKey.message).toContain("InvalidAccessKeyId");
  });

  it("says so when there are no credentials at all, or half a web identity", () => {
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...noKeys } = s3.env;
    const res = trainWeather(STORE, noKeys);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE");
    expect(() => s3SettingsFromEnv({ ...noKeys, AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" })).toThrow(
      /no S3 credentials \(AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not\)/,
    );
  });

  it("reads training data and a reference profile from s3:// keys with the store's endpoint and credentials", async () => {
    const csv = readFileSync(join(repoRoot, "node_modules/vega-datasets/data/weather.csv"));
    await putObject("data/weather.csv", csv.toString("utf8"));
    const train = spawnSync(
      join(repoRoot, "bin/ballast"),
      ["train", "--data", "s3://models/data/weather.csv", "--store", STORE, "--model", "weather-from-s3", "--label", "weather"].concat([
        "--features",
        "precipitation,temp_max,temp_min,wind",
        "--epochs",
        "2",
      ]),
      { encoding: "utf8", env: { ...process.env, ...s3.env } },
    );
    expect(train.status, train.stderr).toBe(0);
    const meta = JSON.parse((await store().readFile("weather-from-s3", "v1", "metadata.json")).toString("utf8")) as ModelMetadata;
    expect(meta.dataWindow.sources).toEqual(["s3://models/data/weather.csv"]);
    expect(meta.dataWindow.rows).toBe(csv.toString("utf8").trim().split("\n").length - 1);

    // The sidecar's reference profile (spec.monitoring.reference.uri), here another version's metadata.json.
    await putObject("references/weather-v1.json", JSON.stringify(meta));
    const options = { s3: s3SettingsFromEnv(s3.env) };
    const reference = await loadReference({ reference: { uri: "s3://models/references/weather-v1.json" }, drift: { thresholdMode: "fixed" } }, meta, options);
    expect(reference.features).toEqual((meta.referenceProfile as { features: unknown }).features);
    await expect(loadReference({ reference: { uri: "s3://models/references/none.json" } }, meta, options)).rejects.toThrow(
      "monitoring config reference.uri s3://models/references/none.json: s3://models/references/none.json does not exist",
    );
    const denied = spawnSync(
      join(repoRoot, "bin/ballast"),
      ["train", "--data", "s3://models/data/weather.csv", "--store", STORE, "--model", "weather-denied", "--label", "weather"],
      { encoding: "utf8", env: { ...process.env, ...s3.env, AWS_SECRET_ACCESS_KEY: "not-the-secret-key-52" } },
    );
    expect(denied.status).toBe(2);
    expect(denied.stderr).toMatch(/s3:\/\/models\/data\/weather\.csv: GET s3:\/\/models\/data\/weather\.csv: access denied/);
    expect(denied.stderr).not.toContain("not-the-secret-key-52");
  });

  it("names the missing bucket", async () => {
    const res = trainWeather("s3://no-such-bucket/store", s3.env);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(`bucket no-such-bucket does not exist at ${s3.endpoint}`);
  });

  it("fails a write when the server dies midway, and leaves nothing half-visible once it is back", async () => {
    const files = new Map<string, string>([["metadata.json", JSON.stringify({ createdAt: "2100-01-01T00:00:00Z" })]]);
    for (let i = 0; i < 6; i++) files.set(`weights-${i}.bin`, "x".repeat(256 * 1024));
    // Pulls the plug after the second object went up: the write is then between objects, as a crash would catch it.
    let taken = 0;
    const dying = new (class extends Map<string, string> {
      override *[Symbol.iterator](): MapIterator<[string, string]> {
        for (const entry of files) {
          if (++taken === 3) s3.kill();
          yield entry;
        }
      }
    })(files);
    const err = await storeError(store().writeVersion("weather", "v4", dying));
    expect(err.code).toBe("io");
    expect(err.message).toContain(`cannot reach the S3 endpoint ${s3.endpoint}`);

    await s3.restart();
    expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "v2", "v3"]);
    expect((await storeError(store().readFile("weather", "v4", "metadata.json"))).code).toBe("not-found");
    // The same write, retried against the server that is back, completes.
    await store().writeVersion("weather", "v4", files);
    expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "v2", "v3", "v4"]);
  });
});
