// Given the local cluster, the local nodes act on what the API server says the moment it says it: a Service
// routes to a pod as soon as the pod is Ready, and a failure repeated every few seconds is one Event that
// counts its repeats, not a new Event each time.
import { CoreV1Api, EventsV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeClient, resourcePath } from "../../../src/kube/client.js";
import { PODS } from "../../../src/kube/resources.js";
import { createTestNamespace, testKubeConfig, waitFor } from "../../support/cluster.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:test";
const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const events = kc.makeApiClient(EventsV1Api);
let client: KubeClient;

let ns: Awaited<ReturnType<typeof createTestNamespace>>;
beforeAll(async () => {
  ns = await createTestNamespace("node-agent");
  client = await KubeClient.load(inject("kubeconfig"));
});
afterAll(async () => {
  await client?.close();
  await ns?.remove();
});

const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** Resolves the moment a watch shows the pod Ready, as `kubectl wait --for=condition=Ready` does. */
async function watchUntilReady(name: string): Promise<V1Pod> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 90_000);
  let ready: V1Pod | undefined;
  try {
    while (!ready && !abort.signal.aborted) {
      await client.watch(
        resourcePath(PODS, ns.name),
        { fieldSelector: `metadata.name=${name}`, timeoutSeconds: 60 },
        (_type, obj) => {
          const pod = obj as V1Pod;
          if (!ready && isReady(pod)) {
            ready = pod;
            abort.abort();
          }
        },
        abort.signal,
      );
    }
  } finally {
    clearTimeout(timer);
  }
  if (!ready) throw new Error(`pod ${ns.name}/${name} not Ready within 90 s`);
  return ready;
}

describe("a Service on the local nodes", () => {
  it("answers on its ClusterIP on the first try, right after its pod turns Ready (3 times over)", async () => {
    for (const i of [1, 2, 3]) {
      const name = `first-try-${i}`;
      const svc = await core.createNamespacedService({
        namespace: ns.name,
        body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: "http" }] } },
      });
      const ready = watchUntilReady(name);
      await core.createNamespacedPod({
        namespace: ns.name,
        body: {
          metadata: { name, labels: { app: name } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: "echo",
                image: IMAGE,
                args: ["dev", "echo", "--port", "8080"],
                env: [
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
                ],
                ports: [{ name: "http", containerPort: 8080 }],
                readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
              },
            ],
          },
        },
      });
      await ready;
      // No retry: the first connection after Ready must reach the pod.
      const res = await fetch(`http://${svc.spec!.clusterIP}:80/echo`, { headers: { Connection: "close" } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { pod: string }).pod).toBe(name);
    }
  });
});

describe("a pod whose container cannot be configured", () => {
  it("gets one Failed Event whose series counts the retries, not an Event per retry", async () => {
    const pod = await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: "missing-config" },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [{ name: "c", image: IMAGE, args: ["dev", "job"], env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "absent", key: "x" } } }] }],
        },
      },
    });
    const failed = async () =>
      (await events.listNamespacedEvent({ namespace: ns.name, fieldSelector: `regarding.uid=${pod.metadata!.uid}` })).items.filter(
        (e) => e.reason === "Failed",
      );
    const folded = await waitFor(
      "the Failed Event to count 3 repeats",
      async () => {
        const list = await failed();
        return list.find((e) => (e.series?.count ?? 1) >= 3);
      },
      60_000,
    );
    expect(folded.note).toMatch(/couldn't find key x in ConfigMap/);
    expect(folded.reportingController).toBe("ballast.dev/local-node");
    expect(await failed()).toHaveLength(1);
  });
});
