// Given a container that ended, the local node reports its termination message as the kubelet would.
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { computePodStatus, type ContainerRecord } from "../../../src/devcluster/pod-status.js";
import {
  capForPod,
  logTail,
  MAX_CONTAINER_MESSAGE_BYTES,
  readLastBytes,
  readTerminationMessage,
  stageTerminationMessageFile,
  terminationMessage,
} from "../../../src/devcluster/termination-message.js";

const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join("");
const noLog = () => {
  throw new Error("the log must not be read");
};

describe("the log tail a FallbackToLogsOnError message shows", () => {
  it("is the last 80 lines, a final newline ending the last line", () => {
    expect(logTail(Buffer.from(lines(1, 100)))).toBe(lines(21, 100));
    expect(logTail(Buffer.from(lines(1, 3)))).toBe(lines(1, 3));
    expect(logTail(Buffer.from(`${lines(1, 99)}partial`))).toBe(`${lines(21, 99)}partial`);
    expect(logTail(Buffer.from("a\nb\n"), 1)).toBe("b\n");
    expect(logTail(Buffer.alloc(0))).toBe("");
  });
  it("is at most its last 2048 bytes", () => {
    const long = `${"x".repeat(5000)}\nend\n`;
    const tail = logTail(Buffer.from(long));
    expect(tail).toHaveLength(2048);
    expect(tail.endsWith("x\nend\n")).toBe(true);
  });
});

describe("a container's termination message", () => {
  const base = { policy: "File", exitCode: 0, filePath: "/host/0.termination-log", log: noLog };
  it("is what the container wrote, with either policy", () => {
    expect(terminationMessage({ ...base, file: Buffer.from('{"ok":true}') })).toBe('{"ok":true}');
    expect(terminationMessage({ ...base, policy: "FallbackToLogsOnError", exitCode: 1, file: Buffer.from("wrote this") })).toBe("wrote this");
  });
  it("falls back to the log only with FallbackToLogsOnError, a non-zero exit and nothing written", () => {
    const log = () => Buffer.from(lines(1, 100));
    expect(terminationMessage({ ...base, policy: "FallbackToLogsOnError", exitCode: 1, file: Buffer.alloc(0), log })).toBe(lines(21, 100));
    expect(terminationMessage({ ...base, policy: "FallbackToLogsOnError", exitCode: 2, file: undefined, log })).toBe(lines(21, 100));
    expect(terminationMessage({ ...base, policy: "FallbackToLogsOnError", exitCode: 0, file: Buffer.alloc(0) })).toBe("");
    expect(terminationMessage({ ...base, exitCode: 1, file: Buffer.alloc(0) })).toBe("");
  });
  it("says so when the file cannot be read", () => {
    expect(terminationMessage({ ...base, file: new Error("EACCES") })).toBe("Error on reading termination log /host/0.termination-log: EACCES");
  });
  it("keeps the last 4096 bytes of a longer file, then the pod's 12 KiB shared by its containers", () => {
    const dir = mkdtempSync(join(tmpdir(), "termination-"));
    const file = stageTerminationMessageFile(dir, 0);
    expect(statSync(file).mode & 0o777).toBe(0o666);
    expect(readTerminationMessage({ name: "c", terminationMessagePolicy: "File" }, file, join(dir, "0.log"), 1)).toBe("");
    writeFileSync(file, `${"a".repeat(1000)}${"b".repeat(MAX_CONTAINER_MESSAGE_BYTES)}`);
    expect(readLastBytes(file, MAX_CONTAINER_MESSAGE_BYTES)?.toString()).toBe("b".repeat(MAX_CONTAINER_MESSAGE_BYTES));
    expect(readLastBytes(join(dir, "missing"), 10)).toBeUndefined();
    writeFileSync(join(dir, "0.log"), lines(1, 5));
    expect(readTerminationMessage({ name: "c", terminationMessagePolicy: "FallbackToLogsOnError" }, join(dir, "missing"), join(dir, "0.log"), 1)).toBe(
      lines(1, 5),
    );
    expect(capForPod("b".repeat(4096), 3)).toHaveLength(4096);
    expect(capForPod("b".repeat(4096), 4)).toHaveLength(3072);
    expect(capForPod("short", 0)).toBe("short");
  });
  it("appears in state.terminated and, after a restart, lastState.terminated", () => {
    const t = new Date("2026-01-01T00:00:00Z");
    const c: ContainerRecord = {
      name: "c",
      image: "img",
      state: { kind: "terminated", exitCode: 0, reason: "Completed", message: "1", startedAt: t, finishedAt: t },
      lastTerminated: { kind: "terminated", exitCode: 1, reason: "Error", message: "boom", startedAt: t, finishedAt: t },
      restartCount: 1,
      ready: false,
      started: false,
    };
    const status = computePodStatus(
      { metadata: { name: "p" }, spec: { restartPolicy: "OnFailure", containers: [] } },
      { hostIP: "h", startTime: t, sandboxReady: true, initContainers: [], containers: [c] },
      t,
    );
    expect(status.containerStatuses?.[0]?.state?.terminated?.message).toBe("1");
    expect(status.containerStatuses?.[0]?.lastState?.terminated?.message).toBe("boom");
  });
});
