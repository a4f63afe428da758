// The bounds of a model's request log: total size and age over every pod's directory. Only sealed segments are
// deleted, oldest first, and every deletion is reported (segments, bytes, feedback records): nothing is lost silently.
import fs from "node:fs/promises";
import path from "node:path";
import { LOCK_FILE } from "./log-lock.js";
import { listSegments } from "./log-segments.js";
import { fsyncDirectory, isErrno } from "./store.js";

export interface LogBounds {
  /** Delete sealed segments, oldest first, while all segments in scope total more than this. */
  maxBytes: number;
  /** Delete sealed segments last written longer ago than this (ms; 0: no age bound). */
  maxAgeMs: number;
  /** A directory never removed even when empty (the caller's own). */
  keep?: string;
  now?: number;
}

export interface DroppedSegment {
  file: string;
  bytes: number;
  /** Feedback records (acknowledged labels) in it. */
  feedback: number;
  reason: "size" | "age";
}

export interface DroppedTotals {
  segments: number;
  bytes: number;
  feedback: number;
}

/** What one run of the bounds deleted, and the bytes of every segment in scope it left (to compare with maxBytes). */
export interface BoundsRun extends DroppedTotals {
  retainedBytes: number;
}

interface Candidate {
  dir: string;
  file: string;
  sealed: boolean;
  bytes: number;
  mtimeMs: number;
}

const FEEDBACK_LINE = Buffer.from('{"kind":"feedback"');

/** Feedback records of a segment: lines written as `{"kind":"feedback",...` (JSON.stringify puts kind first). */
async function countFeedback(file: string): Promise<number> {
  const text = await fs.readFile(file);
  let n = 0;
  for (let at = text.indexOf(FEEDBACK_LINE); at !== -1; at = text.indexOf(FEEDBACK_LINE, at + 1)) if (at === 0 || text[at - 1] === 0x0a) n++;
  return n;
}

/**
 * Applies the bounds to the segments of `dirs` (every pod directory of a model). Several sidecars may run
 * this at once: a segment counts as dropped by whoever's unlink succeeded. Directories of finished pods
 * (no lock, no segment left) are removed.
 */
export async function enforceLogBounds(dirs: readonly string[], bounds: LogBounds, onDrop: (d: DroppedSegment) => void = () => {}): Promise<BoundsRun> {
  const now = bounds.now ?? Date.now();
  const all: Candidate[] = [];
  for (const dir of dirs) {
    for (const s of await listSegments(dir)) {
      try {
        const st = await fs.stat(s.file);
        all.push({ dir, file: s.file, sealed: s.sealed, bytes: st.size, mtimeMs: st.mtimeMs });
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err; // sealed or deleted meanwhile: the next run sees it
      }
    }
  }
  let total = all.reduce((n, c) => n + c.bytes, 0);
  const sealed = all.filter((c) => c.sealed).sort((a, b) => a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file));
  const totals: DroppedTotals = { segments: 0, bytes: 0, feedback: 0 };
  const touched = new Set<string>();
  for (const c of sealed) {
    const tooOld = bounds.maxAgeMs > 0 && c.mtimeMs < now - bounds.maxAgeMs;
    const tooBig = total > bounds.maxBytes;
    // Oldest first: once one is neither too old nor needed for space, none after it is.
    if (!tooOld && !tooBig) break;
    let feedback: number;
    try {
      feedback = await countFeedback(c.file);
      await fs.unlink(c.file);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
      total -= c.bytes; // another sidecar dropped (and counted) it
      continue;
    }
    total -= c.bytes;
    touched.add(c.dir);
    totals.segments++;
    totals.bytes += c.bytes;
    totals.feedback += feedback;
    onDrop({ file: c.file, bytes: c.bytes, feedback, reason: tooOld ? "age" : "size" });
  }
  for (const dir of touched) {
    try {
      await fsyncDirectory(dir);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err; // another sidecar removed it, empty
      continue;
    }
    if (dir !== bounds.keep) await removeIfFinished(dir);
  }
  return { ...totals, retainedBytes: total };
}

/** Removes a pod directory with nothing left in it: no segment, no lock (rmdir fails on anything else). */
async function removeIfFinished(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [LOCK_FILE]);
  if (names.length > 0) return;
  try {
    await fs.rmdir(dir);
    await fsyncDirectory(path.dirname(dir));
  } catch (err) {
    if (!isErrno(err, "ENOENT") && !isErrno(err, "ENOTEMPTY") && !isErrno(err, "EEXIST")) throw err;
  }
}
