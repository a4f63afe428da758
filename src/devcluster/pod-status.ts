// Pure mapping from what the local node knows about a pod's processes to the PodStatus the API shows,
// following the kubelet's rules for phase, conditions and container states.
import type { V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";

export type RuntimeState =
  | { kind: "waiting"; reason: string; message?: string }
  | { kind: "running"; startedAt: Date }
  | { kind: "terminated"; exitCode: number; signal?: string; reason: string; message?: string; startedAt: Date; finishedAt: Date };

export interface ContainerRecord {
  name: string;
  image: string;
  state: RuntimeState;
  lastTerminated?: Extract<RuntimeState, { kind: "terminated" }>;
  restartCount: number;
  ready: boolean;
  started: boolean;
  /** Identifies the process, like a runtime's container id. */
  containerID?: string;
  /** `<repository>@<manifest digest>` when it runs from the image's root filesystem; unset for the checkout's CLI. */
  imageID?: string;
}

export interface PodRuntimeView {
  podIP?: string;
  hostIP: string;
  startTime: Date;
  /** True once volumes and the pod IP are ready (kubelet's sandbox). */
  sandboxReady: boolean;
  initContainers: ContainerRecord[];
  containers: ContainerRecord[];
}

function toApiState(s: RuntimeState): V1ContainerState {
  switch (s.kind) {
    case "waiting":
      return { waiting: { reason: s.reason, ...(s.message ? { message: s.message } : {}) } };
    case "running":
      return { running: { startedAt: s.startedAt } };
    case "terminated":
      return {
        terminated: {
          exitCode: s.exitCode,
          reason: s.reason,
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
          ...(s.signal ? { signal: signalNumber(s.signal) } : {}),
          ...(s.message ? { message: s.message } : {}),
        },
      };
  }
}

function signalNumber(sig: string): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGABRT: 6, SIGSEGV: 11 } as Record<string, number>)[sig] ?? 0;
}

function toContainerStatus(c: ContainerRecord): V1ContainerStatus {
  return {
    name: c.name,
    image: c.image,
    // The checkout's CLI ran no image: the scheme says so where a runtime would give the image's digest.
    imageID: c.imageID ?? `ballast-local://${c.image}`,
    ...(c.containerID ? { containerID: c.containerID } : {}),
    state: toApiState(c.state),
    lastState: c.lastTerminated ? toApiState(c.lastTerminated) : {},
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
  };
}

/** Whether a container that exited will be started again, per the pod's restartPolicy. */
export function willRestart(restartPolicy: string | undefined, exitCode: number): boolean {
  const policy = restartPolicy ?? "Always";
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

export function podPhase(pod: V1Pod, view: PodRuntimeView): NonNullable<V1PodStatus["phase"]> {
  const policy = pod.spec?.restartPolicy;
  const initFailed = view.initContainers.some(
    (c) => c.state.kind === "terminated" && c.state.exitCode !== 0 && !willRestart(policy === "Always" ? "OnFailure" : policy, c.state.exitCode),
  );
  if (initFailed) return "Failed";
  const cs = view.containers;
  if (cs.length === 0) return "Pending";
  const terminated = cs.filter((c) => c.state.kind === "terminated") as (ContainerRecord & { state: Extract<RuntimeState, { kind: "terminated" }> })[];
  const finalExits = terminated.filter((c) => !willRestart(policy, c.state.exitCode));
  if (finalExits.length === cs.length) return finalExits.every((c) => c.state.exitCode === 0) ? "Succeeded" : "Failed";
  const everStarted = cs.some((c) => c.state.kind === "running" || c.state.kind === "terminated" || c.restartCount > 0);
  return everStarted ? "Running" : "Pending";
}

function condition(type: string, ok: boolean, now: Date, previous: V1PodCondition[] | undefined, reason?: string): V1PodCondition {
  const status = ok ? "True" : "False";
  const prev = previous?.find((c) => c.type === type);
  return {
    type,
    status,
    lastTransitionTime: prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
    ...(!ok && reason ? { reason } : {}),
  };
}

export function computePodStatus(pod: V1Pod, view: PodRuntimeView, now: Date): V1PodStatus {
  const previous = pod.status?.conditions;
  const phase = podPhase(pod, view);
  const initialized = view.initContainers.every((c) => c.state.kind === "terminated" && c.state.exitCode === 0);
  const containersReady = view.containers.length > 0 && view.containers.every((c) => c.ready);
  const terminal = phase === "Succeeded" || phase === "Failed";
  const gates = (pod.spec?.readinessGates ?? []).every((g) => previous?.find((c) => c.type === g.conditionType)?.status === "True");
  const owned = new Set(["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"]);
  const conditions: V1PodCondition[] = [
    ...(previous ?? []).filter((c) => !owned.has(c.type)),
    condition("PodReadyToStartContainers", view.sandboxReady && !terminal, now, previous),
    condition("Initialized", initialized, now, previous, "ContainersNotInitialized"),
    condition("ContainersReady", containersReady && !terminal, now, previous, terminal ? "PodCompleted" : "ContainersNotReady"),
    condition("Ready", containersReady && gates && !terminal, now, previous, terminal ? "PodCompleted" : "ContainersNotReady"),
  ];
  return {
    phase,
    conditions,
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    ...(view.podIP ? { podIP: view.podIP, podIPs: [{ ip: view.podIP }] } : {}),
    startTime: view.startTime,
    qosClass: pod.status?.qosClass ?? "BestEffort",
    initContainerStatuses: view.initContainers.map(toContainerStatus),
    containerStatuses: view.containers.map(toContainerStatus),
  };
}
