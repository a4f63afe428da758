// The Node objects the local nodes register: CPU nodes and GPU nodes (nvidia.com/gpu capacity, label, taint).
import type { V1Node, V1NodeCondition } from "@kubernetes/client-node";

export const DEFAULT_IMAGE_REPOSITORY = "ghcr.io/ballast-dev/ballast";
export const GPU_RESOURCE = "nvidia.com/gpu";
export const ACCELERATOR_LABEL = "ballast.dev/accelerator";
export const GPU_TAINT = { key: GPU_RESOURCE, value: "present", effect: "NoSchedule" } as const;
export const LOCAL_NODE_LABEL = "ballast.dev/local-node";

export interface LocalNodeSpec {
  name: string;
  gpus: number;
  /** The node's own loopback address (hostIP of its pods). */
  address: string;
}

export function localNodeSpecs(cpuNodes: number, gpuNodes: number, gpusPerNode = 2): LocalNodeSpec[] {
  const specs: LocalNodeSpec[] = [];
  for (let i = 0; i < cpuNodes; i++) specs.push({ name: `ballast-cpu-${i}`, gpus: 0, address: `127.0.1.${specs.length + 1}` });
  for (let i = 0; i < gpuNodes; i++) specs.push({ name: `ballast-gpu-${i}`, gpus: gpusPerNode, address: `127.0.1.${specs.length + 1}` });
  return specs;
}

export function readyConditions(now: Date, since: Date): V1NodeCondition[] {
  const cond = (type: string, status: string, reason: string, message: string): V1NodeCondition => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: since,
  });
  return [
    cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "local node has sufficient memory available"),
    cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "local node has no disk pressure"),
    cond("PIDPressure", "False", "KubeletHasSufficientPID", "local node has sufficient PID available"),
    cond("Ready", "True", "KubeletReady", "ballast local node is posting ready status"),
  ];
}

/** The Node as registered: metadata + spec (the status is written through the status subresource). */
export function nodeObject(spec: LocalNodeSpec): V1Node {
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": spec.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": process.arch === "x64" ? "amd64" : process.arch,
    [LOCAL_NODE_LABEL]: "true",
  };
  if (spec.gpus > 0) labels[ACCELERATOR_LABEL] = "nvidia-gpu";
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: spec.name, labels },
    spec: spec.gpus > 0 ? { taints: [{ ...GPU_TAINT }] } : {},
  };
}

export function nodeStatus(spec: LocalNodeSpec, kubeletPort: number, kubernetesVersion: string, now: Date, since: Date): NonNullable<V1Node["status"]> {
  const capacity: Record<string, string> = { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" };
  if (spec.gpus > 0) capacity[GPU_RESOURCE] = String(spec.gpus);
  return {
    capacity,
    allocatable: { ...capacity },
    conditions: readyConditions(now, since),
    addresses: [
      { type: "InternalIP", address: spec.address },
      { type: "Hostname", address: spec.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    nodeInfo: {
      machineID: spec.name,
      systemUUID: spec.name,
      bootID: String(since.getTime()),
      kernelVersion: "local",
      osImage: "Ballast local node",
      containerRuntimeVersion: "ballast-local://1",
      kubeletVersion: `v${kubernetesVersion}`,
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: process.arch === "x64" ? "amd64" : process.arch,
    },
  };
}
