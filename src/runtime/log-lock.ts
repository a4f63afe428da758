// One writer per request log directory: an exclusively created lock file naming the pod that writes it.
// The directory is named after the pod, so a restarted container of the same pod (same name) takes it over;
// a different pod never writes it, and neither does a second live process of the same pod.
import { readFileSync } from "node:fs";
import os from "node:os";
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDirectory, isErrno } from "./store.js";

export const LOCK_FILE = "writer.lock";

/** What the lock file says about its writer. */
export interface LogLockHolder {
  pod: string;
  pid: number;
  host: string;
  startedAt: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat): with pid and host it names one process. */
  procStart?: string;
}

/** Directories this process holds: a second open in the same process is refused like any other live writer. */
const heldHere = new Set<string>();

export class LogLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LogLockHolder,
    live = false,
  ) {
    super(
      live
        ? `request log ${dir} is being written by another live process of pod ${holder.pod} (pid ${holder.pid} on ${holder.host} since ${holder.startedAt}); ` +
            `one process writes a directory at a time: stop it, or give this one its own --data-dir or POD_NAME`
        : `request log ${dir} is written by pod ${holder.pod} (pid ${holder.pid} on ${holder.host} since ${holder.startedAt}); ` +
            `each pod writes only its own directory: give this sidecar its own --data-dir or POD_NAME`,
    );
    this.name = "LogLockedError";
  }
}

/** The lock of a directory, or undefined when there is none; an unreadable lock (torn create) reads as `null`. */
export async function readLogLock(dir: string): Promise<LogLockHolder | null | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, LOCK_FILE), "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  try {
    const holder = JSON.parse(text) as Partial<LogLockHolder>;
    return typeof holder.pod === "string" ? (holder as LogLockHolder) : null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (start time), or undefined where there is no such process or no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** The holder is a process still running on this host: same pid and the same start time (a reused pid differs). */
function isLive(holder: LogLockHolder): boolean {
  if (holder.host !== os.hostname() || holder.procStart === undefined) return false;
  return processStart(holder.pid) === holder.procStart;
}

/** Whether `holder` (as read from the lock) is this very process's claim. */
export function isOwnLock(holder: LogLockHolder | null | undefined, me: LogLockHolder): boolean {
  return !!holder && holder.pod === me.pod && holder.pid === me.pid && holder.host === me.host && holder.startedAt === me.startedAt;
}

/**
 * Takes the directory for `pod`: creates the lock file exclusively, or takes it over when the lock names the
 * same pod and its process is gone (the container restarted after a crash) or cannot be read (a crash between
 * create and write). Resolves to this writer's claim, and to the previous holder when it took over. Throws
 * LogLockedError when another pod, or a live process of the same pod, holds it.
 */
export async function acquireLogLock(dir: string, pod: string): Promise<{ me: LogLockHolder; takenOver?: LogLockHolder | null }> {
  const key = path.resolve(dir);
  const procStart = processStart(process.pid);
  const me: LogLockHolder = { pod, pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), ...(procStart ? { procStart } : {}) };
  if (heldHere.has(key)) throw new LogLockedError(dir, (await readLogLock(dir)) ?? me, true);
  const body = `${JSON.stringify(me)}\n`;
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    await fs.mkdir(dir, { recursive: true });
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, "wx");
    } catch (err) {
      // The bound removes an empty directory of a finished pod; a directory removed under us is made again.
      if (isErrno(err, "ENOENT") && attempt < 3) continue;
      if (!isErrno(err, "EEXIST")) throw err;
      const holder = await readLogLock(dir);
      if (holder === undefined && attempt < 3) continue; // released between our create and read
      if (holder && holder.pod !== pod) throw new LogLockedError(dir, holder);
      if (holder && isLive(holder)) throw new LogLockedError(dir, holder, true);
      // Same pod (or a lock torn by a crash): replace it atomically so there is never a moment without one.
      const tmp = `${file}.tmp-${process.pid}`;
      await fs.writeFile(tmp, body, { flush: true });
      await fs.rename(tmp, file);
      await fsyncDirectory(dir);
      heldHere.add(key);
      return { me, takenOver: holder ?? null };
    }
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDirectory(dir);
    heldHere.add(key);
    return { me };
  }
}

/** Removes the lock at a clean close: the directory then holds only sealed segments. */
export async function releaseLogLock(dir: string, me: LogLockHolder): Promise<void> {
  heldHere.delete(path.resolve(dir));
  const holder = await readLogLock(dir);
  // Never remove a lock someone else took over meanwhile.
  if (isOwnLock(holder, me)) {
    await fs.rm(path.join(dir, LOCK_FILE), { force: true });
    await fsyncDirectory(dir);
  }
}
