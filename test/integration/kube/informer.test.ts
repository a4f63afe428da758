// The informer against the real API server: a cache that follows the cluster, and that recovers on its
// own from a watch gone silent (no event, no bookmark: a half-open connection) and from an API server
// that is down for a while.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { KubeClient, resourcePath, type KubeObject } from "../../../src/kube/client.js";
import { Informer } from "../../../src/kube/informer.js";
import { Backoff } from "../../../src/kube/rate-limiter.js";
import { createTestNamespace, waitFor } from "../../support/cluster.js";
import { ApiProxy } from "./api-proxy.js";

const CONFIG_MAPS = { group: "", version: "v1", plural: "configmaps", namespaced: true };

describe("informer against a real API server", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let admin: KubeClient;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ns = await createTestNamespace("h3-informer");
    admin = await KubeClient.load(inject("kubeconfig"));
  });

  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await admin?.close();
    await ns?.remove();
  });

  const createConfigMap = (name: string, labels: Record<string, string>) =>
    admin.create(resourcePath(CONFIG_MAPS, ns.name), { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns.name, labels } });

  /** An informer on the ConfigMaps labelled `set`, reaching the API server through a proxy of its own. */
  const informerViaProxy = async (set: string, watchIdleTimeoutMs?: number) => {
    const proxy = await ApiProxy.start();
    const client = await KubeClient.load(proxy.kubeconfig(mkdtempSync(join(tmpdir(), "h3-informer-"))));
    const informer = new Informer<KubeObject>({
      client,
      resource: CONFIG_MAPS,
      namespace: ns.name,
      labelSelector: `set=${set}`,
      logger: pino({ enabled: false }),
      backoff: new Backoff(100, 1_000),
      watchIdleTimeoutMs,
    });
    const seen: string[] = [];
    informer.on({
      add: (o) => seen.push(`add ${o.metadata?.name}`),
      update: (_a, b) => seen.push(`update ${b.metadata?.name}`),
      delete: (o) => seen.push(`delete ${o.metadata?.name}`),
    });
    informer.start();
    cleanup.push(async () => {
      await informer.stop();
      await client.close();
      await proxy.close();
    });
    await informer.waitForSync();
    await waitFor("the informer's watch to be open", async () => proxy.openWatches() === 1, 10_000, 20);
    return { proxy, informer, seen };
  };

  it("lists, then follows creates, updates and deletes", async () => {
    await createConfigMap("early", { set: "follow" });
    const { informer, seen } = await informerViaProxy("follow");
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(["early"]);
    await createConfigMap("late", { set: "follow" });
    await admin.patch(resourcePath(CONFIG_MAPS, ns.name, "late"), { data: { k: "v" } }, "application/merge-patch+json");
    await admin.delete(resourcePath(CONFIG_MAPS, ns.name, "early"));
    await waitFor("the cache to follow", async () => informer.get(`${ns.name}/late`)?.metadata && !informer.get(`${ns.name}/early`), 10_000, 50);
    expect(seen).toEqual(["add early", "add late", "update late", "delete early"]);
    expect(informer.recoveries).toBe(0);
  });

  it("takes a watch with no event and no bookmark past the idle bound for dead, and relists", async () => {
    const idleMs = 1_500;
    const { proxy, informer } = await informerViaProxy("silent", idleMs);
    // The watch's connection stays open but nothing comes through it any more.
    proxy.silenceOpenExchanges();
    const silencedAt = Date.now();
    await createConfigMap("during-silence", { set: "silent" });
    await waitFor("the object created while the watch was silent", async () => informer.get(`${ns.name}/during-silence`), idleMs + 10_000, 50);
    expect(Date.now() - silencedAt).toBeGreaterThanOrEqual(idleMs - 50);
    expect(informer.recoveries).toBeGreaterThanOrEqual(1);
  });

  it("retries with backoff while the API server is down and catches up once it is back", async () => {
    const { proxy, informer } = await informerViaProxy("outage", 1_000);
    proxy.silenceOpenExchanges();
    proxy.mode = "down";
    await createConfigMap("during-outage", { set: "outage" });
    await waitFor("several failed attempts", async () => informer.recoveries >= 3, 15_000, 50);
    expect(informer.get(`${ns.name}/during-outage`)).toBeUndefined();
    proxy.mode = "pass";
    await waitFor("the object created during the outage", async () => informer.get(`${ns.name}/during-outage`), 10_000, 50);
  });
});
