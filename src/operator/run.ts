// Process wiring for `ballast operator`: logger, API client, manager, signals.
import { existsSync, readFileSync } from "node:fs";
import pino from "pino";
import { KubeClient, type OwnerReference } from "../kube/client.js";
import { Manager, type LeaderElectionOptions } from "./manager.js";

export interface RunOperatorOptions {
  kubeconfig?: string;
  namespaces?: string[];
  workers: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  image: string;
  logLevel: string;
}

/** A flag or environment problem the user must fix (exit code 2). */
export class OperatorUsageError extends Error {}

const IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** The namespace this process runs in as a pod: POD_NAMESPACE, else the ServiceAccount's; undefined outside a cluster. */
function ownNamespace(): string | undefined {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  if (existsSync(IN_CLUSTER_NAMESPACE_FILE)) return readFileSync(IN_CLUSTER_NAMESPACE_FILE, "utf8").trim();
  return undefined;
}

/** This process's pod (POD_NAME and POD_UID from the downward API) as an owner of objects in its own namespace. */
function ownPod(): OwnerReference | undefined {
  const { POD_NAME: name, POD_UID: uid } = process.env;
  return name && uid ? { apiVersion: "v1", kind: "Pod", name, uid } : undefined;
}

function leaseNamespace(options: RunOperatorOptions): string {
  const ns = options.leaderElectionNamespace || ownNamespace();
  if (ns) return ns;
  throw new OperatorUsageError("--leader-elect outside a cluster needs --leader-election-namespace (or POD_NAMESPACE)");
}

function leaderElection(options: RunOperatorOptions): LeaderElectionOptions {
  const namespace = leaseNamespace(options);
  // An owner reference cannot cross namespaces: a Lease elsewhere has no owner.
  return { namespace, id: options.leaderElectionId, owner: namespace === ownNamespace() ? ownPod() : undefined };
}

export async function runOperator(options: RunOperatorOptions): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { component: "operator" } });
  if (options.kubeconfig && !existsSync(options.kubeconfig)) throw new OperatorUsageError(`--kubeconfig ${options.kubeconfig}: no such file`);
  let client: KubeClient;
  try {
    client = await KubeClient.load(options.kubeconfig);
  } catch (err) {
    throw new OperatorUsageError(`cannot load a kubeconfig or in-cluster config: ${err instanceof Error ? err.message : String(err)}`);
  }
  const manager = new Manager({
    client,
    logger,
    namespaces: options.namespaces && options.namespaces.length > 0 ? options.namespaces : undefined,
    workers: options.workers,
    metricsBindAddress: options.metricsBindAddress,
    healthProbeBindAddress: options.healthProbeBindAddress,
    leaderElection: options.leaderElect ? leaderElection(options) : undefined,
    image: options.image,
    operatorNamespace: ownNamespace(),
    identity: process.env.POD_NAME ? `${process.env.POD_NAME}_${process.pid}` : undefined,
    // controller-runtime's answer: another replica may lead already, so stop everything and restart clean.
    onLeadershipLost: () => {
      logger.error("leader election lost: exiting");
      process.exit(1);
    },
  });
  let stopped: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopped) return;
    logger.info({ signal }, "signal received");
    stopped = manager.stop().then(() => client.close());
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  await manager.start();
  // Keep running until a signal has stopped the manager.
  await new Promise<void>((resolve) => {
    const wait = () => (stopped ? void stopped.then(resolve) : setTimeout(wait, 200));
    wait();
  });
}
