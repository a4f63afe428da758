// What keeps the local cluster's secrets to the user who started it, checked on the files themselves:
// key and directory modes, the modes a pod asks for on its secret volumes, and which directories the
// volume provisioner agrees to delete.
import type { V1Pod } from "@kubernetes/client-node";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isStrictlyInside } from "../../../src/devcluster/local-volumes.js";
import type { PodApi } from "../../../src/devcluster/pod-api.js";
import { prepareVolumes } from "../../../src/devcluster/pod-volumes.js";
import { ensurePki } from "../../../src/devcluster/pki.js";

const mode = (path: string) => statSync(path).mode & 0o777;
const scratch = () => mkdtempSync(join(tmpdir(), "local-security-"));

describe("the local cluster's PKI", () => {
  const clients = [{ file: "admin", commonName: "ballast-admin", organization: "system:masters" }];

  it("is a 0700 directory whose private keys are 0600, even where an older PKI left them open", async () => {
    const dir = join(scratch(), "pki");
    const pki = await ensurePki(dir, clients, ["127.0.0.1"]);
    expect(mode(dir)).toBe(0o700);
    const keys = readdirSync(dir).filter((f) => f.endsWith(".key"));
    expect(keys.sort()).toEqual(["admin.key", "apiserver-etcd-client.key", "apiserver.key", "ca.key", "etcd-ca.key", "etcd.key", "sa.key"]);
    for (const k of keys) expect(mode(join(dir, k)), k).toBe(0o600);

    // An older release: world-readable directory and keys, no etcd certificates yet.
    chmodSync(dir, 0o755);
    chmodSync(pki.caKey, 0o644);
    rmSync(pki.etcd.cert);
    await ensurePki(dir, clients, ["127.0.0.1"]);
    expect(mode(dir)).toBe(0o700);
    expect(mode(pki.caKey)).toBe(0o600);
  });

  it("gives etcd its own CA: the cluster CA signs no certificate etcd trusts", async () => {
    const pki = await ensurePki(join(scratch(), "pki"), clients, ["127.0.0.1"]);
    const cert = (f: string) => new X509Certificate(readFileSync(f));
    const etcdCa = cert(pki.etcdCaCert);
    const clusterCa = cert(pki.caCert);
    expect(cert(pki.apiServerEtcdClient.cert).verify(etcdCa.publicKey)).toBe(true);
    expect(cert(pki.etcd.cert).verify(etcdCa.publicKey)).toBe(true);
    expect(cert(pki.clients.admin!.cert).verify(etcdCa.publicKey)).toBe(false);
    expect(cert(pki.clients.admin!.cert).verify(clusterCa.publicKey)).toBe(true);
  });
});

describe("a secret volume on a local node", () => {
  const secretData = { token: Buffer.from("s3cr3t").toString("base64"), "ca.crt": Buffer.from("pem").toString("base64") };
  const api: PodApi = {
    readConfigMap: () => Promise.resolve(undefined),
    readSecret: (_ns, name) => Promise.resolve(name === "creds" ? { data: secretData } : undefined),
    requestToken: () => Promise.reject(new Error("no tokens here")),
  };
  const pod = (volume: NonNullable<V1Pod["spec"]>["volumes"]): V1Pod => ({
    metadata: { name: "p", namespace: "ns", uid: "u1" },
    spec: { containers: [{ name: "c" }], volumes: volume },
  });

  it("writes its files with the defaultMode the pod asks for (0400), and 0644 when it asks nothing, like the kubelet", async () => {
    const dir = scratch();
    const volumes = await prepareVolumes(
      pod([
        { name: "strict", secret: { secretName: "creds", defaultMode: 0o400 } },
        { name: "plain", secret: { secretName: "creds" } },
      ]),
      dir,
      dir,
      api,
      "127.0.1.1",
      "127.0.0.2",
    );
    expect(mode(join(volumes.get("strict")!, "token"))).toBe(0o400);
    expect(mode(join(volumes.get("plain")!, "token"))).toBe(0o644);
  });

  it("gives an item exactly its mode, also bits the node's umask would strip", async () => {
    const dir = scratch();
    const previous = process.umask(0o077);
    try {
      const volumes = await prepareVolumes(
        pod([
          {
            name: "shared",
            secret: {
              secretName: "creds",
              defaultMode: 0o400,
              items: [
                { key: "ca.crt", path: "ca.crt", mode: 0o664 },
                { key: "token", path: "token" },
              ],
            },
          },
        ]),
        dir,
        dir,
        api,
        "127.0.1.1",
        "127.0.0.2",
      );
      expect(mode(join(volumes.get("shared")!, "ca.crt"))).toBe(0o664);
      expect(mode(join(volumes.get("shared")!, "token"))).toBe(0o400);
    } finally {
      process.umask(previous);
    }
  });
});

describe("which directories the local volume provisioner agrees to delete", () => {
  it("only those strictly inside its volumes directory, symlinks resolved", () => {
    const base = scratch();
    const root = join(base, "volumes");
    mkdirSync(join(root, "ns", "claim"), { recursive: true });
    mkdirSync(join(base, "volumes-other", "x"), { recursive: true });
    const outside = join(base, "precious");
    mkdirSync(outside);
    writeFileSync(join(outside, "data"), "keep me");
    symlinkSync(outside, join(root, "ns", "link"));

    expect(isStrictlyInside(root, join(root, "ns", "claim"))).toBe(true);
    expect(isStrictlyInside(root, join(root, "ns", "not-created-yet"))).toBe(true);
    expect(isStrictlyInside(root, root)).toBe(false);
    expect(isStrictlyInside(root, outside)).toBe(false);
    expect(isStrictlyInside(root, "/")).toBe(false);
    expect(isStrictlyInside(root, join(root, "..", "precious"))).toBe(false);
    expect(isStrictlyInside(root, join(base, "volumes-other", "x"))).toBe(false);
    expect(isStrictlyInside(root, join(root, "ns", "link"))).toBe(false);
  });
});
