// Container termination messages as the kubelet reports them: the file at terminationMessagePath (a host file
// bind-mounted there), or with FallbackToLogsOnError the tail of the log, capped per container and per pod.
import type { V1Container } from "@kubernetes/client-node";
import { chmodSync, closeSync, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// The kubelet's limits (pkg/kubelet/container: MaxContainerTerminationMessageLength etc.).
export const MAX_CONTAINER_MESSAGE_BYTES = 4096;
export const MAX_POD_MESSAGE_BYTES = 12 * 1024;
export const MAX_LOG_MESSAGE_BYTES = 2048;
export const MAX_LOG_MESSAGE_LINES = 80;

/** The last `max` bytes of a file (tail.ReadAtMost); undefined when it does not exist. */
export function readLastBytes(path: string, max: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, max);
    const buf = Buffer.alloc(length);
    const read = readSync(fd, buf, 0, length, size - length);
    return buf.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** The last `maxLines` lines of a log, of which at most the last `maxBytes` bytes (what `kubectl logs --tail` would show, in a circular buffer). */
export function logTail(log: Buffer, maxLines = MAX_LOG_MESSAGE_LINES, maxBytes = MAX_LOG_MESSAGE_BYTES): string {
  // A final newline ends the last line; it does not start another.
  let end = log.length > 0 && log[log.length - 1] === 0x0a ? log.length - 1 : log.length;
  let start = 0;
  for (let lines = 0; end > 0;) {
    const nl = log.lastIndexOf(0x0a, end - 1);
    if (nl < 0) break;
    if (++lines === maxLines) {
      start = nl + 1;
      break;
    }
    end = nl;
  }
  return log.subarray(Math.max(start, log.length - maxBytes)).toString("utf8");
}

export interface TerminationMessageInput {
  policy: string | undefined;
  exitCode: number;
  /** The termination message file's last MAX_CONTAINER_MESSAGE_BYTES, undefined when missing, an Error when unreadable. */
  file: Buffer | undefined | Error;
  filePath: string;
  /** Reads the log's tail, only when needed. */
  log: () => Buffer;
}

/** The kubelet's getTerminationMessage + readLastStringFromContainerLogs. */
export function terminationMessage(input: TerminationMessageInput): string {
  const fallbackToLogs = input.policy === "FallbackToLogsOnError" && input.exitCode !== 0;
  if (input.file instanceof Error) return `Error on reading termination log ${input.filePath}: ${input.file.message}`;
  if (input.file && input.file.length > 0) return input.file.toString("utf8");
  if (!fallbackToLogs) return "";
  try {
    return logTail(input.log());
  } catch (err) {
    return `Error on reading termination message from logs: ${(err as Error).message}`;
  }
}

/** The status manager's cap: 12 KiB for the whole pod, shared evenly by its containers (the first bytes are kept). */
export function capForPod(message: string, containersInPod: number): string {
  const budget = Math.floor(MAX_POD_MESSAGE_BYTES / Math.max(containersInPod, 1));
  const bytes = Buffer.from(message, "utf8");
  return bytes.length <= budget ? message : bytes.subarray(0, budget).toString("utf8");
}

/** A fresh, empty, world-writable host file for one run of a container, to bind-mount at its terminationMessagePath. */
export function stageTerminationMessageFile(containerDirPath: string, restartCount: number): string {
  const file = join(containerDirPath, `${restartCount}.termination-log`);
  writeFileSync(file, "");
  // As the kubelet does: a container running as any user can write it.
  chmodSync(file, 0o666);
  return file;
}

/** Reads the message of a run that ended, per the container's terminationMessagePolicy. */
export function readTerminationMessage(container: V1Container, hostFile: string | undefined, logFile: string, exitCode: number): string {
  let file: Buffer | undefined | Error;
  try {
    file = hostFile ? readLastBytes(hostFile, MAX_CONTAINER_MESSAGE_BYTES) : undefined;
  } catch (err) {
    file = err as Error;
  }
  return terminationMessage({
    policy: container.terminationMessagePolicy,
    exitCode,
    file,
    filePath: hostFile ?? "",
    // The tail is a suffix of the log's last MAX_LOG_MESSAGE_BYTES bytes: nothing before them can matter.
    log: () => readLastBytes(logFile, MAX_LOG_MESSAGE_BYTES) ?? Buffer.alloc(0),
  });
}
