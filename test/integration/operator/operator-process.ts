// Runs the real `bin/ballast operator` against the shared local cluster, as its own ServiceAccount
// (the kubeconfig impersonates system:serviceaccount:ballast-system:ballast-operator), with the
// CRD and the RBAC from deploy/ installed: a rule missing from deploy/ makes these tests fail.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { inject } from "vitest";
import { kubectl, waitFor } from "../../support/cluster.js";
import { trainWeather } from "../../support/train-weather.js";

const repo = new URL("../../../", import.meta.url).pathname;
export const BALLAST = join(repo, "bin/ballast");
export const OPERATOR_NAMESPACE = "ballast-system";
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:ballast-operator`;

/** deploy/base files the operator needs on the cluster (the operator Deployment itself is not run: we run the process). */
const RBAC_FILES = [
  "namespace.yaml",
  "service-account.yaml",
  "role.yaml",
  "role-binding.yaml",
  "leader-election-role.yaml",
  "leader-election-role-binding.yaml",
].map((f) => join(repo, "deploy/base", f));

export async function installCrdAndRbac(): Promise<void> {
  for (const file of [join(repo, "crds/ballast.dev_modeldeployments.yaml"), ...RBAC_FILES]) {
    const res = await kubectl(["apply", "--server-side", "--force-conflicts", "-f", file]);
    if (res.code !== 0) throw new Error(`kubectl apply -f ${file}: ${res.stderr}`);
  }
  await waitFor("the ModelDeployment CRD to be established", async () => {
    const res = await kubectl(["get", "crd", "modeldeployments.ballast.dev", "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"]);
    return res.stdout === "True";
  });
}

/** The admin kubeconfig, acting as the operator's ServiceAccount. */
export function operatorKubeconfig(dir: string, user = OPERATOR_USER): string {
  const kc = parse(readFileSync(inject("kubeconfig"), "utf8")) as { users: { user: Record<string, unknown> }[] };
  for (const u of kc.users) u.user.as = user;
  const path = join(dir, "operator.kubeconfig");
  writeFileSync(path, stringify(kc), { mode: 0o600 });
  return path;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export interface OperatorProcess {
  proc: ChildProcess;
  port: number;
  logs: () => string;
  /** JSON log lines parsed. */
  logLines: () => Record<string, unknown>[];
  metrics: () => Promise<string>;
  /** SIGTERM and wait for exit; answers the exit code. */
  stop: () => Promise<number | null>;
  /** SIGKILL: a crash, no cleanup. */
  kill: () => Promise<void>;
}

export async function startOperator(opts: { kubeconfig: string; args?: string[]; env?: Record<string, string> }): Promise<OperatorProcess> {
  if (!existsSync(BALLAST)) throw new Error(`${BALLAST} is missing: run \`make build\` first`);
  const port = await freePort();
  let out = "";
  const proc = spawn(
    BALLAST,
    [
      "operator",
      "--kubeconfig",
      opts.kubeconfig,
      "--metrics-bind-address",
      `127.0.0.1:${port}`,
      "--health-probe-bind-address",
      `127.0.0.1:${port}`,
      ...(opts.args ?? []),
    ],
    { env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).text();
  const op: OperatorProcess = {
    proc,
    port,
    logs: () => out,
    logLines: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    metrics: () => get("/metrics"),
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
  await waitFor(
    "the operator to answer /readyz",
    async () => {
      if (proc.exitCode !== null) throw new Error(`operator exited with ${proc.exitCode}:\n${out}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    30_000,
  );
  return op;
}

let store: string | undefined;

/** A file:// model store with one trained version of the weather classifier (Seattle, vega-datasets). */
export function trainedModelStore(): string {
  if (store) return store;
  const dir = mkdtempSync(join(tmpdir(), "ballast-operator-store-"));
  const res = trainWeather(`file://${dir}`);
  if (res.status !== 0) throw new Error(`ballast train failed (${res.status}): ${res.stderr}`);
  store = `file://${dir}`;
  return store;
}

export function modelDeploymentYaml(
  namespace: string,
  name: string,
  storageUri: string,
  extra: { replicas?: number; annotations?: Record<string, string> } = {},
): string {
  return stringify({
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name, namespace, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      model: { name: "weather", storageUri },
      serving: { replicas: extra.replicas ?? 1, port: 8080 },
      monitoring: {
        task: "classification",
        labelField: "weather",
        features: ["precipitation", "temp_max", "temp_min", "wind"].map((f) => ({ name: f, type: "numeric" })),
        window: { size: 100 },
      },
    },
  });
}

export async function kubectlJson<T>(args: string[]): Promise<T> {
  const res = await kubectl([...args, "-o", "json"]);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

/** The ModelDeployment's Ready condition once its reason is `reason` (e.g. ServerFailing: a server that keeps exiting). */
export async function waitForReadyReason(namespace: string, name: string, reason: string, timeoutMs = 180_000): Promise<{ status: string; message: string }> {
  return waitFor(
    `md/${name} Ready reason ${reason}`,
    async () => {
      const md = await kubectlJson<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>([
        "get",
        "md",
        name,
        "-n",
        namespace,
      ]);
      const c = md.status?.conditions?.find((x) => x.type === "Ready");
      return c?.reason === reason ? c : undefined;
    },
    timeoutMs,
    1000,
  );
}

export async function applyYaml(yaml: string): Promise<void> {
  const res = await kubectl(["apply", "-f", "-"], yaml);
  if (res.code !== 0) throw new Error(`kubectl apply: ${res.stderr}`);
}

/** Deletes every ModelDeployment in `ns` once no operator runs: drops our finalizer as an admin uninstalling Ballast would. */
export async function deleteModelDeploymentsWithoutOperator(ns: string): Promise<void> {
  await kubectl(["delete", "md", "--all", "-n", ns, "--wait=false"]);
  const names = (await kubectl(["get", "md", "-n", ns, "-o", "name"])).stdout.split("\n").filter(Boolean);
  for (const name of names) await kubectl(["patch", name, "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}']);
}

/** The operator of one namespace, as its own ServiceAccount; `stop` deletes the ModelDeployments while it runs (so it releases their finalizers), then stops it and removes the namespace. */
export async function startNamespacedOperator(ns: {
  name: string;
  remove: () => Promise<void>;
}): Promise<{ operator: OperatorProcess; stop: () => Promise<number | null> }> {
  const operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "op-kc-"))), args: ["--namespaces", ns.name] });
  const stop = async () => {
    await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    const code = await operator.stop();
    await ns.remove();
    return code;
  };
  return { operator, stop };
}

/**
 * A ReadWriteMany claim in `namespace`, waited for until Bound, and the directory where the local nodes keep its
 * data (what a pod sees under pvc://<claim>/…). Needs the `ballast dev` cluster the global setup starts.
 */
export async function createLocalClaim(namespace: string, claim: string): Promise<string> {
  const dir = inject("clusterDir");
  if (!dir) throw new Error("this test writes into a PVC's directory on the local cluster: run it against `ballast dev` (clusterDir is unknown)");
  await applyYaml(
    stringify({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: claim, namespace },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
    }),
  );
  const bound = await kubectl(["wait", "--for=jsonpath={.status.phase}=Bound", `pvc/${claim}`, "-n", namespace, "--timeout=60s"]);
  if (bound.code !== 0) throw new Error(`PersistentVolumeClaim ${namespace}/${claim} did not bind: ${bound.stderr}`);
  return join(dir, "volumes", namespace, claim);
}

/** Runs `ballast train` on `csv` into the file:// store at `storeDir` (created if missing); throws with its stderr on failure. */
export function trainInto(storeDir: string, csv: string, args: string[]): void {
  mkdirSync(storeDir, { recursive: true });
  const res = spawnSync(BALLAST, ["train", "--data", csv, "--store", `file://${storeDir}`, ...args], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`ballast train failed (${res.status}): ${res.stderr}`);
}
