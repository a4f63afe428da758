// Runs kubectl synchronously against the test cluster (the kubeconfig and kubectl the global setup provides).
import { spawnSync } from "node:child_process";
import { clusterEnv, clusterKubectl } from "../../support/cluster.js";

export { clusterEnv };

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function kubectl(args: string[], input?: string): KubectlResult {
  const binary = clusterKubectl();
  const res = spawnSync(binary, args, { input, encoding: "utf8", env: clusterEnv(), timeout: 300_000 });
  if (res.error) throw new Error(`${binary} ${args.join(" ")}: ${res.error.message}`);
  return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

/** kubectl that must succeed; throws with its stderr otherwise. */
export function kubectlOk(args: string[], input?: string): string {
  const res = kubectl(args, input);
  if (res.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${res.status}): ${res.stderr.trim()}`);
  return res.stdout;
}

/** Applies the CRDs from crds/ and waits until the API server serves ModelDeployments. */
export function installCrds(repoRoot: string): void {
  kubectlOk(["apply", "--server-side", "--force-conflicts", "--field-manager=ballast-tests", "-f", `${repoRoot}/crds/ballast.dev_modeldeployments.yaml`]);
  // Right after a create the CRD has no status.conditions yet, and kubectl wait fails on that instead of waiting.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.ballast.dev"]);
    if (res.status === 0) return;
    if (!res.stderr.includes(".status.conditions accessor error") || Date.now() > deadline)
      throw new Error(`kubectl wait for the CRD failed (${res.status}): ${res.stderr.trim()}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
}

/** Creates (or keeps) a namespace for one test file. */
export function ensureNamespace(name: string): void {
  const res = kubectl(["create", "namespace", name]);
  if (res.status !== 0 && !res.stderr.includes("AlreadyExists")) throw new Error(`kubectl create namespace ${name}: ${res.stderr.trim()}`);
}
