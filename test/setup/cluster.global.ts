// One local cluster per test run, shared by every integration suite: started here, torn down at the end.
// Reuses a running cluster instead when BALLAST_TEST_KUBECONFIG is set, or when KUBECONFIG points at a
// `ballast dev` cluster (never at some other cluster someone happens to have configured).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { TestProject } from "vitest/node";
import { checkoutImageLayout, clusterDown, clusterUp } from "../../src/devcluster/cluster.js";
import { readState } from "../../src/devcluster/state.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    clusterDir: string;
    kubectl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given =
    process.env.BALLAST_TEST_KUBECONFIG ??
    (process.env.KUBECONFIG && existsSync(join(dirname(process.env.KUBECONFIG), "state.json")) ? process.env.KUBECONFIG : undefined);
  if (given) {
    const dir = dirname(given);
    const state = readState(dir);
    project.provide("kubeconfig", given);
    project.provide("clusterDir", state ? dir : "");
    project.provide("kubectl", state?.kubectl ?? "kubectl");
    process.env.KUBECONFIG = given;
    return async () => {};
  }
  const dir = mkdtempSync(join(tmpdir(), "ballast-test-cluster-"));
  const started = Date.now();
  const state = await clusterUp({
    dir,
    cpuNodes: 1,
    gpuNodes: 1,
    // Pods naming the image by digest run from dist/image's root filesystem (test/integration/devcluster/image-pods);
    // by tag, as every other suite does, they run the checkout's CLI: suites test the code of this checkout
    // without a `make image` first.
    images: { layouts: [checkoutImageLayout()], byTag: false },
    log: (l) => console.error(`[test cluster] ${l}`),
  });
  console.error(`[test cluster] up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${dir}`);
  if (!state.kubectl) throw new Error("no kubectl matching the cluster: run `make k8s-binaries` (it builds one)");
  project.provide("kubeconfig", state.kubeconfig);
  project.provide("clusterDir", dir);
  project.provide("kubectl", state.kubectl);
  process.env.KUBECONFIG = state.kubeconfig;
  return async () => {
    await clusterDown(dir, { purge: true });
  };
}
