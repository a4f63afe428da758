// What `GET /containerLogs/...` reads from a container's log file, with the kubelet's query options: tailLines,
// limitBytes, follow (until the container exits). Container output goes straight from the process to the file,
// so no per-line times are recorded: timestamps, sinceSeconds and sinceTime are refused, not guessed.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface LogOptions {
  follow: boolean;
  previous: boolean;
  tailLines?: number;
  limitBytes?: number;
}

export class LogRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The API server's query conversion: empty, "false", "f" and "0" are false, anything else true. */
const parseBool = (v: string | null) => v !== null && !["", "false", "f", "0"].includes(v.toLowerCase());

function parseCount(query: URLSearchParams, name: string, min: number): number | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  if (!/^-?\d+$/.test(v)) throw new LogRequestError(400, `${name}=${v} is not an integer`);
  const n = Number(v);
  if (n < min) throw new LogRequestError(422, `${name} must be at least ${min}, got ${n}`);
  return n;
}

export function parseLogOptions(query: URLSearchParams): LogOptions {
  // `tail` is the kubelet's older name for tailLines; "all" means no limit.
  const tail = query.get("tail");
  if (tail !== null && query.get("tailLines") === null && tail !== "all") query.set("tailLines", tail);
  for (const name of ["sinceSeconds", "sinceTime"]) {
    if (query.get(name) !== null) throw new LogRequestError(400, `${name} is not supported on ballast local nodes: log lines carry no times here`);
  }
  if (parseBool(query.get("timestamps"))) throw new LogRequestError(400, "timestamps are not supported on ballast local nodes: log lines carry no times here");
  const tailLines = parseCount(query, "tailLines", 0);
  const limitBytes = parseCount(query, "limitBytes", 1);
  return {
    follow: parseBool(query.get("follow")),
    previous: parseBool(query.get("previous")),
    ...(tailLines !== undefined ? { tailLines } : {}),
    ...(limitBytes !== undefined ? { limitBytes } : {}),
  };
}

/** The byte offset where the last `lines` lines of the file start (a last line without its newline counts). */
export function tailOffset(file: string, lines: number): number {
  const size = statSync(file).size;
  if (lines === 0) return size;
  const fd = openSync(file, "r");
  try {
    // Read backwards in blocks: a long-running container's log can be far larger than the tail asked for.
    const block = Buffer.alloc(64 * 1024);
    let end = size;
    let newlines = 0;
    // A trailing newline ends the last line; it does not start another.
    let skipFirst = true;
    while (end > 0) {
      const start = Math.max(0, end - block.length);
      const n = readSync(fd, block, 0, end - start, start);
      for (let i = n - 1; i >= 0; i--) {
        if (block[i] !== 0x0a) continue;
        if (skipFirst && start + i === size - 1) continue;
        if (++newlines === lines) return start + i + 1;
      }
      skipFirst = false;
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

export interface LogSink {
  write(chunk: Buffer): void;
  readonly closed: boolean;
}

const FOLLOW_POLL_MS = 200;

/**
 * Writes the file from the tail offset to the sink; with follow, keeps writing what is appended until `running`
 * settles (the container exited) and the rest is read, or the client goes away. limitBytes ends it early.
 */
export async function streamLog(file: string, options: LogOptions, running: Promise<unknown> | undefined, sink: LogSink): Promise<void> {
  let offset = options.tailLines !== undefined ? tailOffset(file, options.tailLines) : 0;
  let budget = options.limitBytes ?? Infinity;
  let exited = !options.follow || running === undefined;
  void running?.finally(() => (exited = true));
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      // Whether it had exited before this read: then what this read finds is all there will be.
      const wasExited = exited;
      let n: number;
      while (budget > 0 && !sink.closed && (n = readSync(fd, buf, 0, Math.min(buf.length, budget), offset)) > 0) {
        sink.write(Buffer.from(buf.subarray(0, n)));
        offset += n;
        budget -= n;
      }
      if (wasExited || budget <= 0 || sink.closed) return;
      await sleep(FOLLOW_POLL_MS);
    }
  } finally {
    closeSync(fd);
  }
}
