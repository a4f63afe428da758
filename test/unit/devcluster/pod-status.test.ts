import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { computePodStatus, podPhase, willRestart, type ContainerRecord, type PodRuntimeView } from "../../../src/devcluster/pod-status.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:00:05Z");
const pod = (restartPolicy?: string, extra: Partial<V1Pod> = {}): V1Pod => ({
  metadata: { name: "p", namespace: "n", uid: "u" },
  spec: { containers: [], ...(restartPolicy ? { restartPolicy } : {}) },
  ...extra,
});
const running = (name: string, ready: boolean): ContainerRecord => ({
  name,
  image: "img",
  state: { kind: "running", startedAt: t0 },
  restartCount: 0,
  ready,
  started: true,
});
const exited = (name: string, exitCode: number, restartCount = 0): ContainerRecord => ({
  name,
  image: "img",
  state: { kind: "terminated", exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: t0, finishedAt: t1 },
  restartCount,
  ready: false,
  started: false,
});
const view = (containers: ContainerRecord[], initContainers: ContainerRecord[] = []): PodRuntimeView => ({
  podIP: "127.244.0.1",
  hostIP: "127.0.1.1",
  startTime: t0,
  sandboxReady: true,
  initContainers,
  containers,
});

describe("pod phase, as the kubelet reports it", () => {
  it("is Running while any container runs, and Pending before any started", () => {
    expect(podPhase(pod(), view([running("a", false)]))).toBe("Running");
    expect(podPhase(pod(), view([{ ...running("a", false), state: { kind: "waiting", reason: "ContainerCreating" } }]))).toBe("Pending");
  });
  it("is Succeeded when every container of a Never/OnFailure pod exited 0", () => {
    expect(podPhase(pod("Never"), view([exited("a", 0), exited("b", 0)]))).toBe("Succeeded");
    expect(podPhase(pod("OnFailure"), view([exited("a", 0)]))).toBe("Succeeded");
  });
  it("is Failed when a Never pod's container exited non-zero", () => {
    expect(podPhase(pod("Never"), view([exited("a", 0), exited("b", 1)]))).toBe("Failed");
  });
  it("stays Running for an Always pod whose container exited (it restarts)", () => {
    expect(podPhase(pod("Always"), view([exited("a", 0, 1)]))).toBe("Running");
  });
  it("is Failed when an init container fails in a Never pod", () => {
    expect(podPhase(pod("Never"), view([], [exited("init", 2)]))).toBe("Failed");
  });
  it("follows restartPolicy for restarts", () => {
    expect(willRestart("Always", 0)).toBe(true);
    expect(willRestart("OnFailure", 0)).toBe(false);
    expect(willRestart("OnFailure", 1)).toBe(true);
    expect(willRestart("Never", 1)).toBe(false);
  });
});

describe("pod status", () => {
  it("is Ready only when every container is ready, keeping conditions set by others", () => {
    const p = pod(undefined, { status: { conditions: [{ type: "PodScheduled", status: "True" }] } });
    const notReady = computePodStatus(p, view([running("a", true), running("b", false)]), t1);
    expect(notReady.conditions?.find((c) => c.type === "Ready")?.status).toBe("False");
    expect(notReady.conditions?.find((c) => c.type === "PodScheduled")?.status).toBe("True");
    const ready = computePodStatus(p, view([running("a", true), running("b", true)]), t1);
    expect(ready.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(ready.podIP).toBe("127.244.0.1");
    expect(ready.containerStatuses?.map((c) => c.ready)).toEqual([true, true]);
  });
  it("keeps lastTransitionTime while a condition's status is unchanged", () => {
    const first = computePodStatus(pod(), view([running("a", true)]), t0);
    const second = computePodStatus({ ...pod(), status: first }, view([running("a", true)]), t1);
    expect(second.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime).toEqual(t0);
  });
  it("reports exit codes, restart counts and the last termination", () => {
    const c: ContainerRecord = {
      ...running("a", false),
      restartCount: 2,
      lastTerminated: { kind: "terminated", exitCode: 137, signal: "SIGKILL", reason: "Error", startedAt: t0, finishedAt: t1 },
    };
    const s = computePodStatus(pod(), view([c]), t1);
    expect(s.containerStatuses?.[0]).toMatchObject({ restartCount: 2, lastState: { terminated: { exitCode: 137, signal: 9, reason: "Error" } } });
  });
  it("a completed pod is not Ready (PodCompleted)", () => {
    const s = computePodStatus(pod("Never"), view([exited("a", 0)]), t1);
    expect(s.phase).toBe("Succeeded");
    expect(s.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "PodCompleted" });
    expect(s.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
  });
});
