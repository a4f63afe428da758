// The on-disk layout of request logs: segment names (open and sealed), per-pod directories under a store.
import type { Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { StoreError, checkName, isErrno, resolveStorePath, type StoreOptions } from "./store.js";

export const SEGMENT_PREFIX = "segment-";
export const SEGMENT_SUFFIX = ".jsonl";
/** A sealed segment is complete: its writer will never append to it again (rotation, close, or takeover). */
export const SEALED_SUFFIX = ".sealed.jsonl";
/** Under a writable store, `<root>/<model>/_log/<pod>/` holds each pod's log ('_' keeps it apart from versions). */
export const STORE_LOG_DIR = "_log";

export function segmentName(seq: number, sealed = false): string {
  return `${SEGMENT_PREFIX}${String(seq).padStart(10, "0")}${sealed ? SEALED_SUFFIX : SEGMENT_SUFFIX}`;
}

export interface SegmentFile {
  seq: number;
  file: string;
  sealed: boolean;
}

/** Segment files of a log directory, oldest first (open and sealed alike). */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) return [];
    throw err;
  }
  const bySeq = new Map<number, SegmentFile>();
  for (const name of names) {
    const m = /^segment-(\d{10})(\.sealed)?\.jsonl$/.exec(name);
    if (!m) continue;
    const segment = { seq: Number(m[1]), file: path.join(dir, name), sealed: m[2] !== undefined };
    // Never both after a rename, but a sealed name wins if a reader ever sees both.
    if (!bySeq.get(segment.seq)?.sealed) bySeq.set(segment.seq, segment);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Every pod's log directory under a model's `_log/` root, by name. */
export async function podLogDirectories(root: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, "ENOENT")) return [];
    throw err;
  }
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => path.join(root, e.name))
    .sort();
}

/** A Kubernetes pod name (and what a hand-run sidecar may use): it names the pod's log directory. */
export const POD_NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;

/**
 * Where a pod keeps its log in a writable store: `<store root>/<model>/_log/<pod>/`. `root` is the model's
 * `_log/`, over which the bounds apply. http(s) stores are read-only: they throw (use a local --data-dir).
 */
export function storeLogLocation(storeUri: string, model: string, pod: string, options: StoreOptions = {}): { root: string; dir: string } {
  if (/^https?:\/\//.test(storeUri)) {
    throw new StoreError(`--log-to-store needs a writable store (pvc:// or file://); ${storeUri} is read-only over http(s): use --data-dir`, "read-only");
  }
  checkName("model", model);
  if (!POD_NAME_PATTERN.test(pod))
    throw new StoreError(`pod name "${pod}" (env POD_NAME) cannot name a log directory: use letters, digits, '.', '_' or '-'`, "bad-name");
  const root = path.join(resolveStorePath(storeUri, options), model, STORE_LOG_DIR);
  return { root, dir: path.join(root, pod) };
}
