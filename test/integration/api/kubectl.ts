// Runs kubectl against the test cluster: the kubeconfig and kubectl test/setup/cluster.global.ts provides,
// else KUBECONFIG and BALLAST_KUBECTL (or kubectl on PATH) from the environment.
import { spawnSync } from "node:child_process";
import { inject } from "vitest";

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

// Typed loosely so this file does not depend on the global setup's ProvidedContext declaration.
function provided(key: string): string | undefined {
  const value = (inject as unknown as (k: string) => unknown)(key);
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The environment for a client of the test cluster (kubectl, helm). */
export function clusterEnv(): NodeJS.ProcessEnv {
  const kubeconfig = provided("kubeconfig") ?? process.env.KUBECONFIG;
  return kubeconfig ? { ...process.env, KUBECONFIG: kubeconfig } : process.env;
}

export function kubectl(args: string[], input?: string): KubectlResult {
  const binary = provided("kubectl") ?? process.env.BALLAST_KUBECTL ?? "kubectl";
  const env = clusterEnv();
  const res = spawnSync(binary, args, { input, encoding: "utf8", env, timeout: 300_000 });
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
  kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.ballast.dev"]);
}

/** Creates (or keeps) a namespace for one test file. */
export function ensureNamespace(name: string): void {
  const res = kubectl(["create", "namespace", name]);
  if (res.status !== 0 && !res.stderr.includes("AlreadyExists")) throw new Error(`kubectl create namespace ${name}: ${res.stderr.trim()}`);
}
