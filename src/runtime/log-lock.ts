// One writer per request log directory: an exclusively created lock file naming the pod that writes it.
// The directory is named after the pod, so a restarted container of the same pod (same name) takes it over;
// a different pod never writes it.
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
}

export class LogLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LogLockHolder,
  ) {
    super(
      `request log ${dir} is written by pod ${holder.pod} (pid ${holder.pid} on ${holder.host} since ${holder.startedAt}); ` +
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

/**
 * Takes the directory for `pod`: creates the lock file exclusively, or takes it over when the lock names the
 * same pod (its container restarted after a crash) or cannot be read (a crash between create and write).
 * Resolves to the previous holder when it took over. Throws LogLockedError when another pod holds it.
 */
export async function acquireLogLock(dir: string, pod: string): Promise<{ takenOver?: LogLockHolder | null }> {
  const me: LogLockHolder = { pod, pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
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
      // Same pod (or a lock torn by a crash): replace it atomically so there is never a moment without one.
      const tmp = `${file}.tmp-${process.pid}`;
      await fs.writeFile(tmp, body, { flush: true });
      await fs.rename(tmp, file);
      await fsyncDirectory(dir);
      return { takenOver: holder ?? null };
    }
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDirectory(dir);
    return {};
  }
}

/** Removes the lock at a clean close: the directory then holds only sealed segments. */
export async function releaseLogLock(dir: string, pod: string): Promise<void> {
  const holder = await readLogLock(dir);
  // Never remove a lock someone else took over meanwhile.
  if (holder && holder.pod === pod && holder.pid === process.pid) {
    await fs.rm(path.join(dir, LOCK_FILE), { force: true });
    await fsyncDirectory(dir);
  }
}
