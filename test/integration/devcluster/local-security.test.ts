// Given the local cluster, another local user gets nothing from it: etcd answers only the API server's
// certificate, the cluster's files are the starting user's alone, a pod's secret volume has the mode the
// pod asked for, and the volume provisioner deletes nothing outside its own directory.
import { CoreV1Api, EventsV1Api } from "@kubernetes/client-node";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimsRoot, podDir, volumeDir } from "../../../src/devcluster/pod-dirs.js";
import { readState } from "../../../src/devcluster/state.js";
import { clusterDir, createTestNamespace, testKubeConfig, waitFor } from "../../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const events = kc.makeApiClient(EventsV1Api);
const mode = (path: string) => statSync(path).mode & 0o777;

let ns: Awaited<ReturnType<typeof createTestNamespace>>;
beforeAll(async () => {
  if (!clusterDir()) throw new Error("these tests inspect the cluster's own directory: run them on a `ballast dev` cluster");
  ns = await createTestNamespace("local-security");
});
afterAll(async () => {
  await ns?.remove();
});

type Answer = { status: number; body: string } | { error: string };

/** One GET against etcd's client port; transport failures are answers too (that is what is tested). */
function etcdGet(url: string, tls: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = (url.startsWith("https") ? httpsRequest : httpRequest)(url, { ...tls, timeout: 5_000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ error: err.message }));
    req.end();
  });
}

describe("the local cluster's etcd", () => {
  const pki = (f: string) => readFileSync(join(clusterDir(), "pki", f));
  const port = () => readState(clusterDir())!.ports.etcdClient;

  it("answers the API server's etcd client certificate (the control for the refusals below)", async () => {
    const answer = await etcdGet(`https://127.0.0.1:${port()}/version`, {
      ca: pki("etcd-ca.crt"),
      cert: pki("apiserver-etcd-client.crt"),
      key: pki("apiserver-etcd-client.key"),
    });
    expect(answer).toMatchObject({ status: 200 });
    expect((answer as { body: string }).body).toContain("etcdserver");
  });

  it("refuses a plain-HTTP client", async () => {
    const answer = await etcdGet(`http://127.0.0.1:${port()}/version`);
    // Go's TLS listener answers plain HTTP with a bare 400 (or drops it): either way, no etcd answer.
    const refused = "error" in answer || (answer.status === 400 && !answer.body.includes("etcdserver"));
    expect(refused, JSON.stringify(answer)).toBe(true);
  });

  it("refuses a TLS client without a certificate, and one with a certificate of the cluster CA (the admin's)", async () => {
    const noCert = await etcdGet(`https://127.0.0.1:${port()}/version`, { ca: pki("etcd-ca.crt") });
    expect(noCert).toHaveProperty("error");
    const admin = await etcdGet(`https://127.0.0.1:${port()}/version`, { ca: pki("etcd-ca.crt"), cert: pki("admin.crt"), key: pki("admin.key") });
    expect(admin).toHaveProperty("error");
  });
});

describe("the cluster directory", () => {
  it("is readable by its user only: directory 0700, PKI directory 0700, every private key and kubeconfig 0600", () => {
    const dir = clusterDir();
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, "pki"))).toBe(0o700);
    const keys = readdirSync(join(dir, "pki")).filter((f) => f.endsWith(".key"));
    expect(keys.length).toBeGreaterThanOrEqual(8);
    for (const k of keys) expect(mode(join(dir, "pki", k)), k).toBe(0o600);
    const kubeconfigs = readdirSync(dir).filter((f) => f.endsWith("kubeconfig"));
    expect(kubeconfigs).toContain("kubeconfig");
    for (const k of kubeconfigs) expect(mode(join(dir, k)), k).toBe(0o600);
  });
});

describe("a pod's secret volume", () => {
  it("has the files' mode the pod asks for: defaultMode 0400 reads as 0400, an item's mode 0660 as 0660 (past the node's umask)", async () => {
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "creds" }, stringData: { token: "s3cr3t", user: "me" } } });
    const pod = await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: "reads-secret" },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "c",
              image: "ghcr.io/ballast-dev/ballast:test",
              args: ["dev", "job", "--seconds", "600"],
              volumeMounts: [
                { name: "creds", mountPath: "/creds" },
                { name: "picked", mountPath: "/picked" },
              ],
            },
          ],
          volumes: [
            { name: "creds", secret: { secretName: "creds", defaultMode: 0o400 } },
            { name: "picked", secret: { secretName: "creds", items: [{ key: "user", path: "user", mode: 0o660 }] } },
          ],
        },
      },
    });
    await waitFor(
      "the pod to run",
      async () => (await core.readNamespacedPod({ name: "reads-secret", namespace: ns.name })).status?.phase === "Running",
      60_000,
    );
    const dir = podDir(clusterDir(), ns.name, "reads-secret", pod.metadata!.uid!);
    expect(readFileSync(join(volumeDir(dir, "creds"), "token"), "utf8")).toBe("s3cr3t");
    expect(mode(join(volumeDir(dir, "creds"), "token"))).toBe(0o400);
    expect(mode(join(volumeDir(dir, "creds"), "user"))).toBe(0o400);
    expect(mode(join(volumeDir(dir, "picked"), "user"))).toBe(0o660);
    await core.deleteNamespacedPod({ name: "reads-secret", namespace: ns.name });
  });
});

describe("the local volume provisioner", () => {
  it("still deletes a volume it provisioned, with its data, once its claim is deleted", async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      body: { metadata: { name: "scratch" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Mi" } } } },
    });
    const bound = await waitFor("the claim to be bound", async () => {
      const c = await core.readNamespacedPersistentVolumeClaim({ name: "scratch", namespace: ns.name });
      return c.status?.phase === "Bound" ? c : undefined;
    });
    const pv = await core.readPersistentVolume({ name: bound.spec!.volumeName! });
    const dir = pv.spec!.hostPath!.path;
    expect(dir.startsWith(claimsRoot(clusterDir()))).toBe(true);
    writeFileSync(join(dir, "data"), "scratch");
    await core.deleteNamespacedPersistentVolumeClaim({ name: "scratch", namespace: ns.name });
    await waitFor("the volume and its directory to be gone", async () => {
      const volumes = await core.listPersistentVolume();
      return !volumes.items.some((v) => v.metadata?.name === pv.metadata!.name) && !existsSync(dir);
    });
  });

  it("refuses to delete a released volume whose hostPath is outside its directory, and says so in an Event", async () => {
    const outside = mkdtempSync(join(tmpdir(), "precious-"));
    writeFileSync(join(outside, "data"), "keep me");
    const name = `outside-${ns.name}`;
    await core.createPersistentVolume({
      body: {
        metadata: { name, annotations: { "pv.kubernetes.io/provisioned-by": "ballast.dev/local-path" } },
        spec: {
          capacity: { storage: "1Gi" },
          accessModes: ["ReadWriteOnce"],
          persistentVolumeReclaimPolicy: "Delete",
          storageClassName: "ballast-local",
          hostPath: { path: outside },
          // A claim that does not exist: the PV controller marks the volume Released at once.
          claimRef: { namespace: ns.name, name: "never-existed", uid: "6c5f6a39-0000-4000-8000-000000000001" },
        },
      },
    });
    try {
      const refusal = await waitFor(
        "a VolumeDeleteRefused Event on the volume",
        async () => {
          const list = await events.listEventForAllNamespaces({ fieldSelector: `regarding.name=${name}` });
          return list.items.find((e) => e.reason === "VolumeDeleteRefused");
        },
        60_000,
      );
      expect(refusal.type).toBe("Warning");
      expect(refusal.note).toContain(outside);
      expect(refusal.note).toContain(claimsRoot(clusterDir()));
      expect(existsSync(join(outside, "data"))).toBe(true);
      expect((await core.readPersistentVolume({ name })).status?.phase).toBe("Released");
    } finally {
      await core.deletePersistentVolume({ name }).catch(() => {});
    }
  });
});
