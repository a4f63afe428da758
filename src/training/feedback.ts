// Labelled feedback for retraining: every serving pod's request log under the given roots, inference rows
// joined to their feedback per log directory, merged, deduplicated and cut to the newest regime.
import type { Dirent } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseStorageUri } from "../api/storage-uri.js";
import { STORE_LOG_DIR, joinLog, listSegments, type ReadProblem } from "../runtime/request-log.js";
import { S3ModelStore } from "../runtime/s3-store.js";
import { StoreError, isErrno, openStore } from "../runtime/store.js";
import { DataError, SIDECAR_LOG_SCHEME, localPath } from "./data.js";
import type { Task } from "./preprocess.js";

/** One labelled inference row from a sidecar's request log. */
export interface FeedbackRow {
  /** Request id and row within the request: unique across replicas (the sidecar makes ids per request). */
  id: string;
  row: number;
  /** When the prediction was made (ms since the epoch). */
  ts: number;
  /** Version that made the prediction. */
  version: string;
  features: Record<string, unknown>;
  label: string | number;
}

export interface FeedbackSet {
  rows: FeedbackRow[];
  /** Label column and task the logs recorded (they must agree). */
  label?: string;
  task?: Task;
  /** The roots as given, and the log directories found under them. */
  roots: string[];
  directories: string[];
  /** Labelled rows before --feedback-since / --max-feedback-rows, and unparsable lines skipped. */
  labelledRows: number;
  problems: ReadProblem[];
}

export interface FeedbackOptions {
  pvcMountRoot?: string;
  /** Keep rows predicted at or after this time (ms): the serving version's regime. */
  since?: number;
  /** Keep the newest N rows. */
  maxRows?: number;
}

/**
 * Reads sidecar log roots: each is a log directory itself or a directory of per-pod log directories (the
 * store's `<model>/_log/` layout). Segments may appear, be sealed or be deleted while this reads: a directory
 * or segment that vanishes is skipped, never an error.
 */
export async function loadFeedback(roots: readonly string[], options: FeedbackOptions = {}): Promise<FeedbackSet> {
  const set: FeedbackSet = { rows: [], roots: [...roots], directories: [], labelledRows: 0, problems: [] };
  const rows: FeedbackRow[] = [];
  // The same log can be reachable twice (a root and its parent, or --data and --feedback): each directory is
  // read once. Request ids are the client's: two pods (or two runs) may reuse one, so ids never deduplicate.
  const visited = new Set<string>();
  let labelFrom = "";
  let taskFrom = "";
  const downloads: string[] = [];
  try {
    for (const root of roots) {
      let dir: string;
      if (root.startsWith("s3://")) {
        dir = await downloadShippedLogs(root, options.since);
        downloads.push(dir);
      } else dir = localPath(root.startsWith(SIDECAR_LOG_SCHEME) ? root.slice(SIDECAR_LOG_SCHEME.length) : root, options);
      await readRoot(root, dir);
    }
  } finally {
    for (const dir of downloads) await fs.rm(dir, { recursive: true, force: true });
  }
  rows.sort((a, b) => a.ts - b.ts || a.id.localeCompare(b.id) || a.row - b.row);
  set.labelledRows = rows.length;
  const since = options.since;
  const recent = since === undefined ? rows : rows.filter((r) => r.ts >= since);
  set.rows = options.maxRows !== undefined ? recent.slice(-options.maxRows) : recent;
  return set;

  async function readRoot(root: string, dir: string): Promise<void> {
    for (const logDir of await logDirectories(root, dir)) {
      const real = await fs.realpath(logDir);
      if (visited.has(real)) continue;
      visited.add(real);
      set.directories.push(logDir);
      const joined = await joinLog(logDir);
      set.problems.push(...joined.problems);
      if (joined.label !== undefined) {
        if (set.label !== undefined && set.label !== joined.label) {
          throw new DataError(`sidecar logs disagree on the label column: ${labelFrom} records "${set.label}", ${logDir} records "${joined.label}"`);
        }
        set.label ??= joined.label;
        labelFrom ||= logDir;
      }
      if (joined.task !== undefined) {
        if (set.task !== undefined && set.task !== joined.task) {
          throw new DataError(`sidecar logs disagree on the task: ${taskFrom} records ${set.task}, ${logDir} records ${joined.task}`);
        }
        set.task ??= joined.task;
        taskFrom ||= logDir;
      }
      for (const r of joined.rows) rows.push({ id: r.id, row: r.row, ts: r.ts, version: r.version, features: r.features, label: r.label });
    }
  }
}

/**
 * The segments sidecars shipped to `s3://<bucket>/<prefix>/<model>/_log`, downloaded into a scratch directory
 * (TMPDIR: the Job's emptyDir) in the local `_log/<pod>/` layout. Credentials and endpoint come from the environment,
 * as for the store. Segments uploaded before `since` hold only older rows and are not downloaded.
 */
async function downloadShippedLogs(root: string, since: number | undefined): Promise<string> {
  const parts = root.replace(/\/+$/, "").split("/");
  const model = parts.at(-2);
  if (parts.at(-1) !== STORE_LOG_DIR || parts.length < 5 || !model)
    throw new DataError(`--feedback ${root}: an s3:// feedback root is the model's shipped log, s3://<bucket>/<prefix>/<model>/${STORE_LOG_DIR}`);
  const storeUri = parts.slice(0, -2).join("/");
  let store: S3ModelStore;
  try {
    parseStorageUri(storeUri, "--feedback");
    store = openStore(storeUri) as S3ModelStore;
  } catch (err) {
    throw new DataError(`--feedback ${root}: ${(err as Error).message}`);
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ballast-shipped-log-"));
  try {
    await store.downloadLogs(model, dir, since);
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    // A StoreError says what to fix (credentials, bucket) and carries its exit code; anything else is I/O.
    if (err instanceof StoreError) throw err;
    throw new DataError(`--feedback ${root}: ${(err as Error).message}`);
  }
  return dir;
}

/** The root itself when it holds segments, else its subdirectories that do (one per pod). */
async function logDirectories(root: string, dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, "ENOENT")) throw new DataError(`--feedback ${root}: no such directory${dir !== root ? ` (${dir})` : ""}`);
    if (isErrno(err, "ENOTDIR")) throw new DataError(`--feedback ${root}: not a directory (give a sidecar log directory or a directory of them)`);
    throw new DataError(`--feedback ${root}: cannot list ${dir}: ${(err as Error).message}`);
  }
  if ((await listSegments(dir)).length > 0) return [dir];
  const found: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isDirectory() || e.name.startsWith(".")) continue;
    const sub = path.join(dir, e.name);
    if ((await listSegments(sub)).length > 0) found.push(sub);
  }
  return found;
}
