// What integration tests need from the shared local cluster: clients, kubectl, throwaway namespaces, waiting.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { inject } from "vitest";

export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return kc;
}

export const clusterDir = () => inject("clusterDir");

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment for a client of the test cluster (kubectl, helm): KUBECONFIG points at it. */
export function clusterEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: inject("kubeconfig") };
}

/** The kubectl that matches the test cluster's version. */
export const clusterKubectl = () => inject("kubectl");

/** Runs the cluster's kubectl; never throws on a non-zero exit (tests assert on it). */
export function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(clusterKubectl(), ["--kubeconfig", inject("kubeconfig"), ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** A fresh namespace for one suite; delete it in afterAll. */
export async function createTestNamespace(prefix: string): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await core.createNamespace({ body: { metadata: { name } } });
  // Pods need the namespace's default ServiceAccount, which a controller creates a moment later.
  await waitFor(`ServiceAccount ${name}/default`, async () => {
    try {
      return await core.readNamespacedServiceAccount({ name: "default", namespace: name });
    } catch {
      return undefined;
    }
  });
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name }).catch(() => {});
    },
  };
}

/** Polls until fn returns a truthy value; fails with `what` and the last value seen. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

/** Makes the API server unreachable (SIGTERM) until `startApiServer`; only on a cluster this run started. */
export async function stopApiServer(): Promise<void> {
  const { stopComponent } = await import("../../src/devcluster/cluster.js");
  if (!clusterDir()) throw new Error("stopApiServer needs the cluster the test run started (not a reused one)");
  await stopComponent(clusterDir(), "kube-apiserver");
}

/** Starts the API server again with the same flags and port, and waits until it answers. */
export async function startApiServer(): Promise<void> {
  const { restartComponent } = await import("../../src/devcluster/cluster.js");
  await restartComponent(clusterDir(), "kube-apiserver");
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  await waitFor("the API server to answer again", async () => (await core.listNamespace()).items.length > 0, 90_000);
}
