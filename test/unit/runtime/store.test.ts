// The model store: URI resolution, atomic immutable versions, listing, and a read-only HTTP store over real HTTP.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildModelDeploymentCrd } from "../../../src/api/index.js";
import { loadBackend } from "../../../src/runtime/backend.js";
import { loadModel, serializeModel } from "../../../src/runtime/model-files.js";
import {
  FileModelStore,
  HttpModelStore,
  INDEX_FILE,
  checkName,
  METADATA_FILE,
  StoreError,
  nextVersionName,
  openStore,
  resolveStorePath,
  resolveVersion,
} from "../../../src/runtime/store.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-store-");

const version = (createdAt: string, extra: Record<string, string> = {}): Map<string, string> =>
  new Map([[METADATA_FILE, JSON.stringify({ createdAt })], ...Object.entries(extra)]);

describe("store URIs", () => {
  it("resolves file://, pvc:// (under the mount root) and plain paths; rejects other schemes", () => {
    expect(resolveStorePath("file:///data/models")).toBe("/data/models");
    expect(resolveStorePath("pvc://models-claim/team/a", { pvcMountRoot: "/mnt/x" })).toBe("/mnt/x/models-claim/team/a");
    expect(resolveStorePath("pvc://models-claim")).toBe("/mnt/models/models-claim");
    const saved = process.env.BALLAST_PVC_MOUNT_ROOT;
    process.env.BALLAST_PVC_MOUNT_ROOT = "/var/lib/ballast";
    try {
      expect(resolveStorePath("pvc://c/p")).toBe("/var/lib/ballast/c/p");
    } finally {
      if (saved === undefined) delete process.env.BALLAST_PVC_MOUNT_ROOT;
      else process.env.BALLAST_PVC_MOUNT_ROOT = saved;
    }
    expect(resolveStorePath("models")).toBe(path.resolve("models"));
    expect(() => resolveStorePath("gs://bucket/models")).toThrow(/store: "gs:\/\/bucket\/models" must be pvc:\/\//);
    expect(() => openStore("gs://bucket")).toThrow(StoreError);
    // An object store is no directory: a data source or reference profile cannot point into one.
    expect(() => resolveStorePath("s3://bucket/models")).toThrow("s3://bucket/models: s3:// is not a local path");
  });
});

describe("store paths stay inside the store", () => {
  it("refuses a pvc:// path that climbs out of the claim's mount root", () => {
    for (const uri of ["pvc://claim/../../etc/x", "pvc://claim/..", "pvc://claim/a/../../other-claim"])
      expect(() => resolveStorePath(uri, { pvcMountRoot: "/mnt/models" }), uri).toThrow(StoreError);
    expect(resolveStorePath("pvc://claim//team/a", { pvcMountRoot: "/mnt/models" })).toBe("/mnt/models/claim/team/a");
    expect(resolveStorePath("pvc://claim/a..b", { pvcMountRoot: "/mnt/models" })).toBe("/mnt/models/claim/a..b");
  });
});

describe("version names", () => {
  interface Node {
    properties?: Record<string, Node>;
    pattern?: string;
  }
  const spec = (buildModelDeploymentCrd() as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } }).spec.versions[0]!.schema.openAPIV3Schema
    .properties!.spec!;
  const crdPatterns = {
    "spec.model.version": spec.properties!.model!.properties!.version!.pattern!,
    "spec.promotion.approvedVersion": spec.properties!.promotion!.properties!.approvedVersion!.pattern!,
  };
  const accepts = (name: string) => {
    try {
      checkName("version", name);
      return true;
    } catch {
      return false;
    }
  };

  // A version the API server accepts but the store refuses crash-loops the serving pods.
  it.each(Object.entries(crdPatterns))("the store accepts exactly what the CRD's %s accepts", (_field, pattern) => {
    for (const name of ["v1", "r3-a1b2c3", "2026.01.02", "V2", "Prod", "v2-", "-v2", "v_2", "a".repeat(63), "a".repeat(64), "v2/..", "", "."])
      expect({ name, crd: new RegExp(pattern).test(name) }).toEqual({ name, crd: accepts(name) });
  });
});

describe("FileModelStore", () => {
  it("lists versions by creation time, finds the latest, and numbers the next one", async () => {
    const store = openStore(`file://${tempDir()}`);
    expect(await store.listVersions("m")).toEqual([]);
    await expect(resolveVersion(store, "m")).rejects.toThrow(/model m has no versions/);
    await store.writeVersion("m", "v2", version("2026-01-02T00:00:00Z"));
    await store.writeVersion("m", "v1", version("2026-01-01T00:00:00Z"));
    await store.writeVersion("m", "candidate-7", version("2026-01-03T00:00:00Z"));
    expect((await store.listVersions("m")).map((v) => v.version)).toEqual(["v1", "v2", "candidate-7"]);
    expect(await resolveVersion(store, "m")).toBe("candidate-7");
    expect(await resolveVersion(store, "m", "v1")).toBe("v1");
    await expect(resolveVersion(store, "m", "v9")).rejects.toThrow(/model m has no version v9 .*versions: v1, v2, candidate-7/);
    expect(await nextVersionName(store, "m")).toBe("v3");
  });

  it("never picks a candidate as the latest version, over files and over HTTP's index.json, but serves one by name", async () => {
    const root = tempDir();
    const store = openStore(root);
    const candidate = (createdAt: string): Map<string, string> => new Map([[METADATA_FILE, JSON.stringify({ createdAt, candidate: true })]]);
    await store.writeVersion("m", "r1", candidate("2026-01-01T00:00:00Z"));
    await expect(resolveVersion(store, "m")).rejects.toThrow(/model m has no versions .* except candidates \(r1\): name one with --version/);
    await store.writeVersion("m", "v1", version("2026-01-02T00:00:00Z"));
    await store.writeVersion("m", "r2", candidate("2026-01-03T00:00:00Z"));
    expect(await store.listVersions("m")).toEqual([
      { version: "r1", createdAt: "2026-01-01T00:00:00Z", candidate: true },
      { version: "v1", createdAt: "2026-01-02T00:00:00Z" },
      { version: "r2", createdAt: "2026-01-03T00:00:00Z", candidate: true },
    ]);
    expect(await resolveVersion(store, "m")).toBe("v1");
    expect(await resolveVersion(store, "m", "r2")).toBe("r2");
    await store.writeVersion("m", "v7", candidate("2026-01-04T00:00:00Z"));
    // Candidates still take their number: the next version never reuses a candidate's name.
    expect(await nextVersionName(store, "m")).toBe("v8");
    const index = JSON.parse(fs.readFileSync(path.join(root, "m", INDEX_FILE), "utf8")) as { versions: { version: string; candidate?: boolean }[] };
    expect(index.versions.filter((v) => v.candidate).map((v) => v.version)).toEqual(["r1", "r2", "v7"]);

    const server = http.createServer((req, res) => {
      const file = path.join(root, new URL(req.url!, "http://x").pathname);
      if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) res.writeHead(404).end();
      else res.writeHead(200).end(fs.readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const overHttp = openStore(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      expect(await resolveVersion(overHttp, "m")).toBe("v1");
      expect(await resolveVersion(overHttp, "m", "v7")).toBe("v7");
    } finally {
      server.close();
    }
  });

  it("never modifies a version and never lists a half-written one", async () => {
    const root = tempDir();
    const store = new FileModelStore(root, root);
    await store.writeVersion("m", "v1", version("2026-01-01T00:00:00Z", { "weights.bin": "abc" }));
    await expect(store.writeVersion("m", "v1", version("2026-02-01T00:00:00Z"))).rejects.toThrow(/already exists .* immutable/);
    expect((await store.readFile("m", "v1", "weights.bin")).toString()).toBe("abc");
    // What a crash mid-write leaves behind: a temp dir, and a directory without metadata.
    fs.mkdirSync(path.join(root, "m", ".tmp-v2-dead"), { recursive: true });
    fs.writeFileSync(path.join(root, "m", ".tmp-v2-dead", METADATA_FILE), "{}");
    fs.mkdirSync(path.join(root, "m", "v3"));
    expect((await store.listVersions("m")).map((v) => v.version)).toEqual(["v1"]);
    expect(JSON.parse(fs.readFileSync(path.join(root, "m", INDEX_FILE), "utf8"))).toMatchObject({ model: "m", versions: [{ version: "v1" }] });
  });

  it("rejects names that could escape the store", async () => {
    const store = openStore(tempDir());
    await expect(store.listVersions("../etc")).rejects.toThrow(/model name "..\/etc" is invalid/);
    await expect(store.readFile("m", "v1", "../../secret")).rejects.toThrow(/file name "..\/..\/secret" is invalid/);
    await expect(store.writeVersion("m", "V1", version("x"))).rejects.toThrow(/version name "V1" is invalid/);
  });
});

describe("HttpModelStore", () => {
  it("loads a tfjs model over HTTP and refuses writes", async () => {
    const root = tempDir();
    const fileStore = openStore(root);
    const { tf } = await loadBackend();
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] });
    const files = await serializeModel(tf, model);
    files.set(METADATA_FILE, JSON.stringify({ createdAt: "2026-01-01T00:00:00Z" }));
    await fileStore.writeVersion("m", "v1", files);

    // A static file server over the store directory: what an object store's HTTP endpoint looks like.
    const server = http.createServer((req, res) => {
      const file = path.join(root, decodeURIComponent(new URL(req.url!, "http://x").pathname));
      if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(fs.readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const store = openStore(`http://127.0.0.1:${port}/`);
      expect(store.readOnly).toBe(true);
      expect(await resolveVersion(store, "m")).toBe("v1");
      expect(await store.listVersions("other")).toEqual([]);
      const loaded = await loadModel(tf, store, "m", "v1");
      const x = tf.tensor2d([[1, 2, 3]]);
      expect(Array.from((loaded.predict(x) as typeof x).dataSync())).toEqual(Array.from((model.predict(x) as typeof x).dataSync()));
      await expect(store.readFile("m", "v1", "missing.bin")).rejects.toThrow(/missing\.bin: not among the files index\.json lists for version v1/);
      await expect(new HttpModelStore(store.uri).fetchFile("m/v1/missing.bin")).rejects.toThrow(/404 not found/);
      await expect(store.writeVersion("m", "v2", files)).rejects.toThrow(/HTTP store \(read-only\)/);
    } finally {
      server.close();
    }
  });
});
