// The request log under a full disk and a second writer: an acknowledged record is on disk or its commit
// rejected, records given to the log survive the failure, and no segment ever has two writers.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LOCK_FILE, LogLockedError } from "../../../src/runtime/log-lock.js";
import {
  RequestLog,
  RequestLogFailedError,
  joinLog,
  listSegments,
  readLog,
  segmentName,
  type ReadProblem,
  type RequestLogEvent,
} from "../../../src/runtime/request-log.js";
import { useSmallDisks } from "./small-disk.js";
import { useTempDirs } from "./temp-dirs.js";

const header = { model: "m", version: "v1", task: "classification" as const, label: "y", features: ["a", "b"] };
const tempDir = useTempDirs("ballast-log-durability-");

const smallDisk = useSmallDisks("ballast-log-full-");

async function feedbackIds(dir: string, problems: ReadProblem[] = []): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const r of readLog(dir, (p) => problems.push(p))) if (r.kind === "feedback") ids.add(r.id);
  return ids;
}

const until = async (what: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("RequestLog on a full disk", () => {
  it("acknowledges only what is on disk, refuses commits while full, and writes every buffered record once space is back", async () => {
    const disk = smallDisk(256 * 1024);
    const filler = path.join(disk, "filler");
    fs.writeFileSync(filler, Buffer.alloc(96 * 1024));
    const dir = path.join(disk, "log");
    const events: RequestLogEvent[] = [];
    const log = await RequestLog.open(dir, header, { flushIntervalMs: 60_000, retryMs: 50, onEvent: (e) => events.push(e) });

    // Feedback in batches of 20 (2 KiB of inference rows each) until the disk is full.
    const acked = new Set<string>();
    const given = new Set<string>();
    let rejected: unknown;
    for (let batch = 0; rejected === undefined && batch < 1000; batch++) {
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `r${batch}-${i}`;
        log.append({ kind: "inference", id, ts: batch, version: "v1", rows: [[i, "x".repeat(80)]], predictions: ["no"] });
        log.append({ kind: "feedback", id, row: 0, label: "yes", ts: batch });
        ids.push(id);
        given.add(id);
      }
      try {
        await log.commit();
        for (const id of ids) acked.add(id);
      } catch (err) {
        rejected = err;
      }
    }
    // Every acknowledged label is on disk; the failed segment is sealed (a torn tail is skipped, nothing else is wrong).
    const problems: ReadProblem[] = [];
    const onDisk = await feedbackIds(dir, problems);
    for (const id of acked) expect(onDisk.has(id)).toBe(true);
    expect(problems).toEqual([]);
    expect(rejected).toBeInstanceOf(RequestLogFailedError);
    expect((rejected as RequestLogFailedError).code).toBe("ENOSPC");
    expect(acked.size).toBeGreaterThan(100);
    expect(log.health()).toMatchObject({ healthy: false, error: expect.stringMatching(/ENOSPC|no space/i) });
    expect(events).toContainEqual(expect.objectContaining({ event: "log-failed", dir, code: "ENOSPC" }));
    expect((await listSegments(dir)).every((s) => s.sealed)).toBe(true);

    // While full: appends are refused and counted, commits reject at once (the sidecar answers 503).
    log.append({ kind: "feedback", id: "while-full", row: 0, label: "yes", ts: 1 });
    await expect(log.commit()).rejects.toBeInstanceOf(RequestLogFailedError);
    expect(log.getStats().unlogged).toBe(1);

    // Space comes back: the next flush after the retry delay starts a segment and writes what was buffered.
    fs.rmSync(filler);
    await until(async () => {
      await log.flush().catch(() => {});
      return log.health().healthy;
    });
    expect(events).toContainEqual(expect.objectContaining({ event: "log-recovered", dir, unlogged: 1 }));
    log.append({ kind: "inference", id: "after", ts: 2, version: "v1", rows: [[1, "x"]], predictions: ["no"] });
    log.append({ kind: "feedback", id: "after", row: 0, label: "yes", ts: 2 });
    await log.commit();
    await log.close();

    const joined = await joinLog(dir);
    expect(joined.problems).toEqual([]);
    const labelled = new Set(joined.rows.map((r) => r.id));
    // Everything the log was given before it failed, the rejected batch included, and everything after recovery.
    for (const id of given) expect(labelled.has(id)).toBe(true);
    expect(labelled.has("after")).toBe(true);
    expect(labelled.has("while-full")).toBe(false);
  });
});

/** A process of this host that is not this one, and what the lock of a writer running as it says. */
function otherProcess(): { pid: number; lock: string; stop: () => Promise<void> } {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stat = fs.readFileSync(`/proc/${child.pid}/stat`, "utf8");
  const procStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  const lock = JSON.stringify({ pod: "weather-serving-abc", pid: child.pid, host: os.hostname(), startedAt: new Date().toISOString(), procStart }) + "\n";
  return {
    pid: child.pid!,
    lock,
    stop: () => {
      child.kill("SIGKILL");
      return exited; // reaped: its /proc entry is gone
    },
  };
}

describe("RequestLog: one writer per directory", () => {
  it("refuses a second writer of the same pod while the first is alive, in this process or another, and takes over once it is gone", async () => {
    const dir = tempDir();
    const first = await RequestLog.open(dir, header, { pod: "weather-serving-abc" });
    await expect(RequestLog.open(dir, header, { pod: "weather-serving-abc" })).rejects.toThrow(/another live process of pod weather-serving-abc/);
    await first.close();

    const other = otherProcess();
    try {
      fs.writeFileSync(path.join(dir, LOCK_FILE), other.lock);
      await expect(RequestLog.open(dir, header, { pod: "weather-serving-abc" })).rejects.toThrow(LogLockedError);
      await expect(RequestLog.open(dir, header, { pod: "weather-serving-abc" })).rejects.toThrow(new RegExp(`pid ${other.pid}`));
    } finally {
      await other.stop();
    }
    const restarted = await RequestLog.open(dir, header, { pod: "weather-serving-abc" });
    await restarted.close();
  });

  it("stops a writer whose directory was taken over instead of writing beside the new one, and never appends to a segment it did not create", async () => {
    const dir = tempDir();
    const events: RequestLogEvent[] = [];
    const log = await RequestLog.open(dir, header, { pod: "weather-serving-abc", segmentBytes: 4096, flushIntervalMs: 60_000, onEvent: (e) => events.push(e) });
    const open = (await listSegments(dir)).at(-1)!;

    // Someone created the next segment name: rotation skips it and leaves its bytes alone.
    const foreign = path.join(dir, segmentName(open.seq + 1));
    fs.writeFileSync(foreign, '{"kind":"segment","model":"other"}\n');
    const write = async (from: number, n: number): Promise<void> => {
      for (let i = from; i < from + n; i++) log.append({ kind: "feedback", id: `r${i}`, row: 0, label: "yes".repeat(20), ts: i });
      await log.commit();
    };
    await write(0, 80);
    expect(fs.readFileSync(foreign, "utf8")).toBe('{"kind":"segment","model":"other"}\n');
    expect((await listSegments(dir)).at(-1)!.seq).toBe(open.seq + 2);

    // Another process of the pod took the directory over: at its next segment this writer stops.
    fs.writeFileSync(
      path.join(dir, LOCK_FILE),
      JSON.stringify({ pod: "weather-serving-abc", pid: 999_999, host: "elsewhere", startedAt: "2026-01-01T00:00:00Z" }) + "\n",
    );
    const before = (await listSegments(dir)).map((s) => s.file);
    await expect(write(80, 200)).rejects.toThrow(/taken over by pid 999999/);
    expect(log.health().healthy).toBe(false);
    expect(events).toContainEqual(expect.objectContaining({ event: "log-failed", error: expect.stringMatching(/taken over/) }));
    expect((await listSegments(dir)).map((s) => s.file).filter((f) => !before.includes(f) && !f.endsWith(".sealed.jsonl"))).toEqual([]);
    // It never retries: the directory is someone else's now.
    await new Promise((r) => setTimeout(r, 50));
    await log.flush();
    expect(log.health().healthy).toBe(false);
    await log.close();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(true); // the new writer's lock stays
  });
});
