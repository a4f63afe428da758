// Where the control plane binaries come from: KUBEBUILDER_ASSETS (envtest convention), TEST_ASSET_*,
// K8S_BIN_DIR, or the cache that hack/build-k8s.sh fills at the version pinned in hack/k8s/go.mod.
import { execFileSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string | undefined;
  kubernetesVersion: string;
}

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** The Kubernetes version pinned in hack/k8s/go.mod, without the leading "v". */
export function pinnedKubernetesVersion(): string {
  const gomod = readFileSync(join(repoRoot, "hack/k8s/go.mod"), "utf8");
  const m = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+v(\S+)/m.exec(gomod);
  if (!m?.[1]) throw new Error("hack/k8s/go.mod does not require k8s.io/kubernetes");
  return m[1];
}

export function ballastCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "ballast");
}

export function defaultBinaryDir(version = pinnedKubernetesVersion()): string {
  return join(ballastCacheDir(), "k8s", version);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** kubectl's minor version, or undefined when it cannot tell (e.g. a wrapper that needs a login). */
function kubectlMinor(path: string): number | undefined {
  try {
    const out = execFileSync(path, ["version", "--client", "-o", "json"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
    const minor = (JSON.parse(out) as { clientVersion?: { minor?: string } }).clientVersion?.minor;
    return minor ? Number.parseInt(minor, 10) : undefined;
  } catch {
    return undefined;
  }
}

/** A kubectl that is supported against the pinned API server: the one built beside it, else one on PATH within ±1 minor. */
export function findKubectl(binDir: string, kubernetesVersion: string): string | undefined {
  const built = join(binDir, "kubectl");
  if (isExecutable(built)) return built;
  const fromPath = onPath("kubectl");
  if (!fromPath) return undefined;
  const serverMinor = Number.parseInt(kubernetesVersion.split(".")[1] ?? "", 10);
  const minor = kubectlMinor(fromPath);
  return minor !== undefined && Math.abs(minor - serverMinor) <= 1 ? fromPath : undefined;
}

export function locateBinaries(env: NodeJS.ProcessEnv = process.env): ControlPlaneBinaries {
  const version = pinnedKubernetesVersion();
  const dir = env.KUBEBUILDER_ASSETS || env.K8S_BIN_DIR || defaultBinaryDir(version);
  const pick = (name: string, override: string | undefined) => {
    const path = override || join(dir, name);
    if (!isExecutable(path)) {
      throw new Error(
        `${name} not found at ${path}: run \`make k8s-binaries\` (builds Kubernetes ${version} from Go modules) ` +
          `or set KUBEBUILDER_ASSETS to a directory with etcd, kube-apiserver, kube-controller-manager and kube-scheduler`,
      );
    }
    return path;
  };
  return {
    etcd: pick("etcd", env.TEST_ASSET_ETCD),
    kubeApiserver: pick("kube-apiserver", env.TEST_ASSET_KUBE_APISERVER),
    kubeControllerManager: pick("kube-controller-manager", env.TEST_ASSET_KUBE_CONTROLLER_MANAGER),
    kubeScheduler: pick("kube-scheduler", env.TEST_ASSET_KUBE_SCHEDULER),
    kubectl: env.TEST_ASSET_KUBECTL || findKubectl(dir, version),
    kubernetesVersion: version,
  };
}
