// The API client against the real API server: what a failed request looks like to the code that called
// it (status, reason, the field at fault), deadlines on a server that never answers, and the write fence.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { DEFAULT_REQUEST_TIMEOUT_MS, KubeApiError, KubeClient, WriteRefusedError, resourcePath } from "../../../src/kube/client.js";
import { createTestNamespace } from "../../support/cluster.js";
import { ApiProxy } from "./api-proxy.js";

const CONFIG_MAPS = { group: "", version: "v1", plural: "configmaps", namespaced: true };
const configMap = (namespace: string, name: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data: { k: "v" } });

async function failure(p: Promise<unknown>): Promise<KubeApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeApiError);
  return err as KubeApiError;
}

describe("KubeClient against a real API server", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let client: KubeClient;
  let proxy: ApiProxy;
  let viaProxy: KubeClient;

  beforeAll(async () => {
    ns = await createTestNamespace("h3-client");
    client = await KubeClient.load(inject("kubeconfig"));
    proxy = await ApiProxy.start();
    viaProxy = await KubeClient.load(proxy.kubeconfig(mkdtempSync(join(tmpdir(), "h3-client-"))));
  });

  afterAll(async () => {
    await client?.close();
    await viaProxy?.close();
    await proxy?.close();
    await ns?.remove();
  });

  it("maps the server's answers to errors that say what happened: not found, conflict, the invalid field", async () => {
    const missing = await failure(client.get(resourcePath(CONFIG_MAPS, ns.name, "missing")));
    expect([missing.status, missing.reason, missing.notFound, missing.transient]).toEqual([404, "NotFound", true, false]);
    expect(missing.message).toContain(`GET /api/v1/namespaces/${ns.name}/configmaps/missing: 404 NotFound`);

    await client.create(resourcePath(CONFIG_MAPS, ns.name), configMap(ns.name, "twice"));
    const again = await failure(client.create(resourcePath(CONFIG_MAPS, ns.name), configMap(ns.name, "twice")));
    expect([again.status, again.reason, again.conflict]).toEqual([409, "AlreadyExists", true]);

    const invalid = await failure(client.create(resourcePath(CONFIG_MAPS, ns.name), configMap(ns.name, "Not_A_Name")));
    expect([invalid.status, invalid.reason, invalid.transient]).toEqual([422, "Invalid", false]);
    expect(invalid.message).toContain("metadata.name");
  });

  it("gives up on a server that never answers, at the caller's deadline or by default after 30 s, as a transient error", async () => {
    proxy.mode = "stall";
    try {
      let started = Date.now();
      const short = await failure(viaProxy.get(resourcePath(CONFIG_MAPS, ns.name), { timeoutMs: 300 }));
      expect([short.status, short.reason, short.transient]).toEqual([0, "Timeout", true]);
      expect(Date.now() - started).toBeLessThan(3_000);

      started = Date.now();
      const byDefault = await failure(viaProxy.get(resourcePath(CONFIG_MAPS, ns.name)));
      const waited = Date.now() - started;
      expect(byDefault.reason).toBe("Timeout");
      expect(waited).toBeGreaterThanOrEqual(DEFAULT_REQUEST_TIMEOUT_MS - 50);
      expect(waited).toBeLessThan(DEFAULT_REQUEST_TIMEOUT_MS + 5_000);
    } finally {
      proxy.mode = "pass";
    }
  }, 60_000);

  it("reports a server that cuts the connection as unreachable (transient)", async () => {
    proxy.mode = "down";
    try {
      const cut = await failure(viaProxy.get(resourcePath(CONFIG_MAPS, ns.name)));
      expect([cut.status, cut.reason, cut.transient]).toEqual([0, "Unreachable", true]);
    } finally {
      proxy.mode = "pass";
    }
  });

  it("sends no write its fence refuses, and still reads", async () => {
    viaProxy.setWriteFence((method, path) => {
      throw new WriteRefusedError(method, path, "fenced by the test");
    });
    try {
      const since = Date.now();
      await expect(viaProxy.create(resourcePath(CONFIG_MAPS, ns.name), configMap(ns.name, "fenced"))).rejects.toThrow(/POST .*: not sent: fenced by the test/);
      await expect(viaProxy.delete(resourcePath(CONFIG_MAPS, ns.name, "twice"))).rejects.toBeInstanceOf(WriteRefusedError);
      expect(proxy.writesSince(since)).toEqual([]);
      await expect(client.get(resourcePath(CONFIG_MAPS, ns.name, "twice"))).resolves.toMatchObject({ data: { k: "v" } });
      await expect(viaProxy.get(resourcePath(CONFIG_MAPS, ns.name, "fenced"))).rejects.toMatchObject({ status: 404 });
    } finally {
      viaProxy.setWriteFence(undefined);
    }
  });
});
