// The sidecar's durable request log: append-only JSON-lines segments of inference records and feedback, one
// writer per directory (a lock naming the pod), segments sealed when complete, bounded in size and age.
// Feedback is acknowledged only after fdatasync (group commit); inference records ride along with the next sync.
// A write or sync error never loses a record it was given: the segment is sealed, records stay buffered until a
// new segment takes them, and commits reject (the sidecar answers 503) until then.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { acquireLogLock, isOwnLock, readLogLock, releaseLogLock, type LogLockHolder } from "./log-lock.js";
import { enforceLogBounds, type DroppedSegment, type DroppedTotals } from "./log-retention.js";
import { readLines } from "./line-reader.js";
import { listSegments, podLogDirectories, segmentName, type SegmentFile } from "./log-segments.js";
import { fsyncDirectory, isErrno } from "./store.js";
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_SEGMENT_BYTES } from "../vocabulary/request-log.js";

export {
  SEALED_SUFFIX,
  SEGMENT_PREFIX,
  SEGMENT_SUFFIX,
  STORE_LOG_DIR,
  listSegments,
  podLogDirectories,
  segmentName,
  storeLogLocation,
  type SegmentFile,
} from "./log-segments.js";

/** First line of every segment: how to read the rows that follow. */
export interface SegmentHeader {
  kind: "segment";
  model: string;
  version: string;
  task: "classification" | "regression";
  label: string;
  /** Feature names in the order of each inference row. */
  features: string[];
  startedAt: string;
}

export interface InferenceRecord {
  kind: "inference";
  id: string;
  /** Milliseconds since the epoch when the response was received. */
  ts: number;
  version: string;
  /** One array of raw feature values per row, in the segment header's feature order. */
  rows: unknown[][];
  /** Predicted label (classification) or value (regression) per row. */
  predictions: (string | number)[];
}

export interface FeedbackRecord {
  kind: "feedback";
  id: string;
  row: number;
  label: string | number;
  ts: number;
}

export type LogRecord = SegmentHeader | InferenceRecord | FeedbackRecord;

export interface RequestLogOptions {
  /** Start a new segment when the current one exceeds this many bytes. */
  segmentBytes: number;
  /** Delete the oldest sealed segments while the log (every pod's, under `boundsRoot`) is larger than this. */
  maxBytes: number;
  /** Delete sealed segments whose last write is older than this (ms; 0: no age bound). */
  maxAgeMs: number;
  /** Write buffered inference records at least this often (ms) even without feedback. */
  flushIntervalMs: number;
  /**
   * fdatasync at a flush once this many written bytes await one: records stay in memory until they are synced
   * (a failed sync rewrites them into a new segment), so this bounds that memory between feedback commits.
   */
  syncBytes: number;
  /** After a write or sync error, try a new segment after this long (ms), doubling up to 30 s. */
  retryMs: number;
  /** Check the bounds this often (ms), besides at open and at every rotation. */
  boundsIntervalMs: number;
  /** The pod that writes the directory (the lock names it); default env POD_NAME, else the hostname. */
  pod: string;
  /** The bounds cover every pod directory under this root (the model's `_log/`); default: this directory only. */
  boundsRoot?: string;
  /**
   * Seal the open segment once it holds records and is this old (ms; 0: only by size), so a quiet log still hands
   * complete segments to a shipper within this time.
   */
  segmentMaxAgeMs?: number;
  /**
   * While this says true (a shipper's spool is at its bound), appends are refused and commits reject with
   * RequestLogSpoolFullError: nothing more is acknowledged than can be shipped. The log stays healthy, so inference
   * goes on being served.
   */
  spoolFull?: () => boolean;
  /** Told about every segment the bounds delete (to count and log it: nothing is dropped silently). */
  onDrop?: (dropped: DroppedSegment) => void;
  /** Told about what happens to the log that an operator should see (takeover, write failures, bound failures). */
  onEvent?: (event: RequestLogEvent) => void;
}

export type RequestLogEvent =
  | { event: "log-takeover"; dir: string; previous: LogLockHolder | null }
  | { event: "log-sealed"; file: string }
  /** A write, sync or segment start failed: commits reject and appends are refused until `log-recovered`. */
  | { event: "log-failed"; dir: string; error: string; code?: string }
  | { event: "log-recovered"; dir: string; file: string; failedMs: number; unlogged: number }
  | { event: "log-bounds-failed"; error: string };

export const DEFAULT_LOG_OPTIONS: RequestLogOptions = {
  segmentBytes: DEFAULT_LOG_SEGMENT_BYTES,
  maxBytes: DEFAULT_LOG_MAX_BYTES,
  maxAgeMs: 30 * 24 * 3_600_000,
  flushIntervalMs: 200,
  syncBytes: 1024 * 1024,
  retryMs: 1000,
  boundsIntervalMs: 60_000,
  pod: process.env.POD_NAME ?? os.hostname(),
};

const MAX_RETRY_MS = 30_000;

export interface ReadProblem {
  file: string;
  line: number;
  message: string;
}

/** Opens a segment; one sealed (renamed) since it was listed is opened under its sealed name. */
async function openSegment(segment: SegmentFile): Promise<fs.FileHandle | undefined> {
  const names = segment.sealed ? [segment.file] : [segment.file, path.join(path.dirname(segment.file), segmentName(segment.seq, true))];
  for (const file of names) {
    try {
      return await fs.open(file, "r");
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
    }
  }
  // Deleted by the bounds between listing and reading.
  return undefined;
}

/** Which lines a reader wants parsed: the rest are skipped by their first bytes, never parsed. */
export type RecordFilter = (line: string) => boolean;

/**
 * Every record of a log directory in write order, streamed segment by segment. A torn last line (crash
 * mid-write) is skipped silently; any other unparsable line is reported through `onProblem` and skipped.
 */
export async function* readLog(dir: string, onProblem: (p: ReadProblem) => void = () => {}, wanted: RecordFilter = () => true): AsyncGenerator<LogRecord> {
  for (const segment of await listSegments(dir)) {
    const handle = await openSegment(segment);
    if (!handle) continue;
    const file = segment.file;
    try {
      for await (const { text, number, terminated, overlong } of readLines(handle.createReadStream({ autoClose: false }))) {
        if (overlong) {
          onProblem({ file, line: number, message: "line too long to be a record; skipped" });
          continue;
        }
        if (text === "" || !wanted(text)) continue;
        let record: unknown;
        try {
          record = JSON.parse(text);
        } catch (err) {
          if (terminated) onProblem({ file, line: number, message: (err as Error).message });
          continue;
        }
        const kind = (record as { kind?: unknown } | null)?.kind;
        if (kind === "segment" || kind === "inference" || kind === "feedback") yield record as LogRecord;
        else onProblem({ file, line: number, message: `unknown record kind ${JSON.stringify(kind)}` });
      }
    } finally {
      await handle.close();
    }
  }
}

export interface RequestLogStats {
  /** Records appended, bytes written, fdatasyncs, since open. */
  records: number;
  bytes: number;
  syncs: number;
  /** Sequence number of the open segment. */
  segment: number;
  /** Segments this writer sealed. */
  sealed: number;
  /** What this writer's bounds deleted, over every pod's directory in scope. */
  dropped: DroppedTotals;
  /** Write, sync or segment-start failures since open. */
  failures: number;
  /** Bytes of every segment in scope after the last run of the bounds (0 before the first). */
  retainedBytes: number;
  /** The size bound the retained bytes are held under (RequestLogOptions.maxBytes). */
  maxBytes: number;
  /** Records refused while the log was failed (and buffered records a close could not write): never acknowledged. */
  unlogged: number;
}

/** Whether the log can take records; while it cannot, commits reject and the sidecar should not be ready. */
export interface RequestLogHealth {
  healthy: boolean;
  /** The failure, for logs (it names paths: not for HTTP bodies). */
  error?: string;
  /** When it failed (ISO). */
  since?: string;
}

/** A commit refused because the log cannot write: the caller answers 503 instead of acknowledging. */
export class RequestLogFailedError extends Error {
  constructor(
    readonly dir: string,
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`request log ${dir} cannot be written (${reason}); nothing is acknowledged until it recovers`);
    this.name = "RequestLogFailedError";
  }
}

/** A commit refused because the ship spool is full (the store is unreachable): the caller answers 503. */
export class RequestLogSpoolFullError extends Error {
  constructor(readonly dir: string) {
    super(`request log ${dir}: the spool of segments not yet shipped to the store is full; nothing is acknowledged until uploads catch up`);
    this.name = "RequestLogSpoolFullError";
  }
}

/**
 * The sidecar's durable request log, as the sidecar and the traffic monitor use it. `RequestLog.open` writes
 * a local directory; for an s3:// store a LogShipper (log-shipping.ts) ships each sealed segment from it.
 */
export interface RequestLog {
  readonly dir: string;
  /**
   * Buffers a record; it reaches the file within flushIntervalMs and the disk with the next commit. While the
   * log is failed the record is refused (counted in `unlogged`) and the next commit rejects.
   */
  append(record: InferenceRecord | FeedbackRecord): void;
  /**
   * Resolves once every record appended before the call is on disk (fdatasync); concurrent callers share syncs.
   * Rejects with RequestLogFailedError when the log cannot write: the records stay buffered and are written to a
   * new segment when it recovers, but nothing may be acknowledged before then.
   */
  commit(): Promise<void>;
  /** Writes buffered records to the file (no fsync unless syncBytes await one); while failed, tries to recover. */
  flush(): Promise<void>;
  getStats(): RequestLogStats;
  health(): RequestLogHealth;
  /** Commits what it can, seals the open segment and releases the directory. */
  close(): Promise<void>;
}

export const RequestLog = {
  /**
   * Takes the directory (lock), seals what an earlier run of the same pod left open, applies the bounds and
   * starts a new segment, so each segment has one header and one writer.
   */
  open(dir: string, header: Omit<SegmentHeader, "kind" | "startedAt">, options: Partial<RequestLogOptions> = {}): Promise<RequestLog> {
    return DirectoryRequestLog.open(dir, header, { ...DEFAULT_LOG_OPTIONS, ...options });
  },
};

/** write(2) may write less than asked (a full disk, a signal): write the rest or throw, never drop bytes. */
async function writeFully(handle: fs.FileHandle, chunk: Buffer): Promise<void> {
  for (let at = 0; at < chunk.length;) {
    const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
    if (bytesWritten <= 0) throw Object.assign(new Error(`wrote 0 of ${chunk.length - at} bytes`), { code: "EIO" });
    at += bytesWritten;
  }
}

class DirectoryRequestLog implements RequestLog {
  private handle: fs.FileHandle | undefined;
  private seq = 0;
  private segmentSize = 0;
  private segmentHeaderBytes = 0;
  private segmentStartedAt = 0;
  /**
   * Records not yet on disk, oldest first; the first `written` of them are in the open segment awaiting
   * fdatasync. They leave memory only after a sync succeeds, so a failed write or sync loses nothing.
   */
  private buffered: string[] = [];
  private written = 0;
  private writtenBytes = 0;
  /** Set while the log cannot write; retried from the flush timer at `retryAt`. */
  private failure: { error: RequestLogFailedError; since: number; retryAt: number; retryMs: number } | undefined;
  /** A segment a failure could not seal (its rename failed too): sealed on recovery. */
  private unsealed: number | undefined;
  /** Serialises every file operation so writes stay in append order. */
  private chain: Promise<void> = Promise.resolve();
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private bounding: Promise<DroppedTotals> | undefined;
  private stats = { records: 0, bytes: 0, syncs: 0, sealed: 0, failures: 0, unlogged: 0, retainedBytes: 0, dropped: { segments: 0, bytes: 0, feedback: 0 } };

  private constructor(
    readonly dir: string,
    private header: Omit<SegmentHeader, "kind" | "startedAt">,
    private readonly options: RequestLogOptions,
    private readonly lock: LogLockHolder,
  ) {}

  static async open(dir: string, header: Omit<SegmentHeader, "kind" | "startedAt">, options: RequestLogOptions): Promise<DirectoryRequestLog> {
    const { me, takenOver } = await acquireLogLock(dir, options.pod);
    const log = new DirectoryRequestLog(dir, header, options, me);
    try {
      if (takenOver !== undefined) options.onEvent?.({ event: "log-takeover", dir, previous: takenOver });
      const segments = await listSegments(dir);
      // Only an earlier run of this pod wrote here (the lock says so): what it left open is complete now.
      for (const s of segments) if (!s.sealed) await log.seal(s.seq);
      log.seq = segments.at(-1)?.seq ?? 0;
      await log.startSegment();
      await log.enforceBounds();
    } catch (err) {
      await log.handle?.close();
      await releaseLogLock(dir, me);
      throw err;
    }
    log.timers.push(setInterval(() => void log.flush().catch(() => {}), options.flushIntervalMs));
    log.timers.push(setInterval(() => void log.enforceBounds(), options.boundsIntervalMs));
    for (const t of log.timers) t.unref();
    return log;
  }

  append(record: InferenceRecord | FeedbackRecord): void {
    if (this.closed) throw new Error("request log is closed");
    this.stats.records++;
    // Refused rather than buffered: memory stays bounded however long the disk stays full, and the commit
    // that would acknowledge it rejects anyway.
    if (this.failure || this.options.spoolFull?.()) {
      this.stats.unlogged++;
      return;
    }
    this.buffered.push(JSON.stringify(record) + "\n");
  }

  commit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.options.spoolFull?.()) return Promise.reject(new RequestLogSpoolFullError(this.dir));
    if (this.queued) return this.queued;
    if (!this.running) return this.startSync();
    this.queued = this.running
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.startSync();
      });
    return this.queued;
  }

  flush(): Promise<void> {
    return this.enqueue(async () => {
      if (this.failure) return this.recover();
      await this.guarded(async () => {
        await this.writeBuffered();
        if (this.writtenBytes >= this.options.syncBytes) await this.syncWritten();
        const maxAge = this.options.segmentMaxAgeMs ?? 0;
        if (maxAge > 0 && this.segmentSize > this.segmentHeaderBytes && Date.now() - this.segmentStartedAt >= maxAge) await this.rotate();
      });
    });
  }

  getStats(): RequestLogStats {
    return { ...this.stats, dropped: { ...this.stats.dropped }, segment: this.seq, maxBytes: this.options.maxBytes };
  }

  health(): RequestLogHealth {
    if (!this.failure) return { healthy: true };
    return { healthy: false, error: this.failure.error.message, since: new Date(this.failure.since).toISOString() };
  }

  /**
   * Deletes sealed segments past the size and age bounds, oldest first, over every pod directory in scope.
   * Runs beside the writer (it never touches the open segment); one run at a time.
   */
  enforceBounds(): Promise<DroppedTotals> {
    this.bounding ??= (async () => {
      const dirs = this.options.boundsRoot ? await podLogDirectories(this.options.boundsRoot) : [this.dir];
      const dropped = await enforceLogBounds(dirs, { maxBytes: this.options.maxBytes, maxAgeMs: this.options.maxAgeMs, keep: this.dir }, (d) => {
        this.stats.dropped.segments++;
        this.stats.dropped.bytes += d.bytes;
        this.stats.dropped.feedback += d.feedback;
        this.options.onDrop?.(d);
      });
      this.stats.retainedBytes = dropped.retainedBytes;
      return dropped;
    })()
      .catch((err: unknown) => {
        this.options.onEvent?.({ event: "log-bounds-failed", error: (err as Error).message });
        return { segments: 0, bytes: 0, feedback: 0 };
      })
      .finally(() => {
        this.bounding = undefined;
      });
    return this.bounding;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    // A failed log cannot commit: its buffered records were never acknowledged (the failure was reported).
    await this.commit().catch(() => {});
    this.closed = true;
    await this.enqueue(async () => {
      this.stats.unlogged += this.buffered.length;
      this.buffered = [];
      if (this.handle) {
        await this.handle.close();
        this.handle = undefined;
        await this.seal(this.seq);
      }
    }).catch(() => {});
    await this.bounding;
    await releaseLogLock(this.dir, this.lock);
  }

  private startSync(): Promise<void> {
    const p: Promise<void> = this.enqueue(async () => {
      if (this.failure) throw this.failure.error;
      if (this.closed) return; // close committed (or counted as unlogged) everything appended before it
      await this.guarded(async () => {
        await this.writeBuffered();
        await this.syncWritten();
      });
    }).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.chain.then(op);
    this.chain = next.catch(() => {});
    return next;
  }

  /** Runs a file operation; any error fails the log (seal, report, retry later) and rejects as RequestLogFailedError. */
  private async guarded(op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      throw await this.fail(err);
    }
  }

  /** Writes the records not yet in the file, and rotates when the segment is full. */
  private async writeBuffered(): Promise<void> {
    const n = this.buffered.length;
    if (n === this.written || !this.handle) return;
    const chunk = Buffer.from(this.buffered.slice(this.written, n).join(""));
    await writeFully(this.handle, chunk);
    this.written = n;
    this.writtenBytes += chunk.length;
    this.segmentSize += chunk.length;
    this.stats.bytes += chunk.length;
    if (this.segmentSize >= this.options.segmentBytes) await this.rotate();
  }

  /** Seals the open segment and starts the next. */
  private async rotate(): Promise<void> {
    // The old segment is synced before the new one exists, so a crash never leaves a gap.
    await this.syncWritten();
    await this.handle!.close();
    this.handle = undefined;
    await this.seal(this.seq);
    await this.startSegment();
    void this.enforceBounds();
  }

  /** fdatasync, then forget the records it made durable. */
  private async syncWritten(): Promise<void> {
    const n = this.written;
    await this.handle!.datasync();
    this.stats.syncs++;
    this.buffered.splice(0, n);
    this.written = 0;
    this.writtenBytes = 0;
  }

  /**
   * After a write or sync error nothing written to the open segment since its last sync can be trusted (a
   * failed fsync may drop dirty pages): seal it, keep every unsynced record for a new segment, refuse commits.
   */
  private async fail(err: unknown): Promise<RequestLogFailedError> {
    const code = (err as NodeJS.ErrnoException).code;
    const error = err instanceof RequestLogFailedError ? err : new RequestLogFailedError(this.dir, (err as Error).message, code);
    const retryMs = this.failure ? Math.min(this.failure.retryMs * 2, MAX_RETRY_MS) : this.options.retryMs;
    const permanent = err instanceof LogTakenOverError;
    this.failure = { error, since: this.failure?.since ?? Date.now(), retryAt: permanent ? Infinity : Date.now() + retryMs, retryMs };
    this.stats.failures++;
    this.written = 0;
    this.writtenBytes = 0;
    this.options.onEvent?.({ event: "log-failed", dir: this.dir, error: error.reason, ...(code ? { code } : {}) });
    const handle = this.handle;
    this.handle = undefined;
    if (handle) {
      await handle.close().catch(() => {});
      // A taken-over directory belongs to the new writer now: it seals what we left.
      if (!permanent) await this.seal(this.seq).catch(() => (this.unsealed = this.seq));
    }
    return error;
  }

  /** Starts a new segment and writes every buffered record to it; healthy again once that is synced. */
  private async recover(): Promise<void> {
    const failure = this.failure!;
    if (Date.now() < failure.retryAt) return;
    await this.guarded(async () => {
      if (this.unsealed !== undefined) {
        await this.seal(this.unsealed);
        this.unsealed = undefined;
      }
      await this.startSegment();
      await this.writeBuffered();
      await this.syncWritten();
    });
    this.failure = undefined;
    this.options.onEvent?.({
      event: "log-recovered",
      dir: this.dir,
      file: path.join(this.dir, segmentName(this.seq)),
      failedMs: Date.now() - failure.since,
      unlogged: this.stats.unlogged,
    });
  }

  /** Renames a complete segment to its sealed name (readers follow the rename; the bounds may now delete it). */
  private async seal(seq: number): Promise<void> {
    const file = path.join(this.dir, segmentName(seq, true));
    await fs.rename(path.join(this.dir, segmentName(seq)), file);
    await fsyncDirectory(this.dir);
    this.stats.sealed++;
    this.options.onEvent?.({ event: "log-sealed", file });
  }

  /**
   * Creates the next segment exclusively (a name someone else created is skipped, never appended to), after
   * checking the lock is still ours: a writer whose directory was taken over stops instead of writing beside
   * the new one. A segment that cannot get its header is removed again.
   */
  private async startSegment(): Promise<void> {
    const holder = await readLogLock(this.dir);
    if (!isOwnLock(holder, this.lock)) throw new LogTakenOverError(this.dir, holder);
    let handle: fs.FileHandle | undefined;
    let file = "";
    for (let attempt = 0; !handle; attempt++) {
      file = path.join(this.dir, segmentName(this.seq + 1));
      try {
        handle = await fs.open(file, "wx");
      } catch (err) {
        if (!isErrno(err, "EEXIST") || attempt >= 100) throw err;
      }
      this.seq++;
    }
    const header: SegmentHeader = { kind: "segment", ...this.header, startedAt: new Date().toISOString() };
    const line = Buffer.from(JSON.stringify(header) + "\n");
    try {
      await writeFully(handle, line);
      await handle.sync();
      await fsyncDirectory(this.dir);
    } catch (err) {
      await handle.close().catch(() => {});
      await fs.unlink(file).catch(() => {});
      throw err;
    }
    this.handle = handle;
    this.segmentSize = line.length;
    this.segmentHeaderBytes = line.length;
    this.segmentStartedAt = Date.now();
  }
}

/** The lock no longer names this writer: another process of the pod took the directory over. */
export class LogTakenOverError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LogLockHolder | null | undefined,
  ) {
    super(
      `request log ${dir} was taken over by ${holder ? `pid ${holder.pid} on ${holder.host} since ${holder.startedAt}` : "no one (the lock is gone)"}; this writer stopped`,
    );
    this.name = "LogTakenOverError";
  }
}

/** A labelled example: an inference row joined to its feedback. */
export interface LabelledRow {
  id: string;
  row: number;
  ts: number;
  version: string;
  /** Raw feature values by name. */
  features: Record<string, unknown>;
  prediction: string | number;
  label: string | number;
}

export interface JoinedLog {
  rows: LabelledRow[];
  /** Label column and task as recorded in the segment headers (the newest header wins). */
  label?: string;
  task?: "classification" | "regression";
  inferenceRows: number;
  feedbackRecords: number;
  problems: ReadProblem[];
}

// JSON.stringify writes `kind` first, so a line's first bytes say what it is without parsing it.
const INFERENCE_PREFIX = '{"kind":"inference"';
const ID_AFTER_KIND = /^\{"kind":"inference","id":("(?:[^"\\]|\\.)*")/;

/** The id of an inference line from its first bytes, or undefined when the line is not in the usual shape. */
function inferenceId(line: string): string | undefined {
  const m = ID_AFTER_KIND.exec(line);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return undefined;
  }
}

/**
 * Rows of an inference line without parsing it: the arrays opened directly inside `"rows":[...]` (strings
 * skipped, escapes included). Keys can only match outside strings, where a quote is never escaped.
 */
function countRows(line: string): number {
  const start = line.indexOf(',"rows":[');
  if (start === -1) return 0;
  let depth = 0;
  let rows = 0;
  for (let i = start + 8; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: to the next quote not escaped by a backslash.
      for (i++; i < line.length && line.charCodeAt(i) !== 0x22; i++) if (line.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b) {
      depth++;
      if (depth === 2) rows++;
    } else if (c === 0x5d && --depth === 0) break;
  }
  return rows;
}

/**
 * Joins inference rows with their feedback: the training data a sidecar collected. Two streaming passes, so
 * memory follows the labelled rows, not the log: the first reads the feedback (and the headers), the second
 * keeps only the inference rows some feedback names.
 */
export async function joinLog(dir: string): Promise<JoinedLog> {
  const problems: ReadProblem[] = [];
  const labels = new Map<string, FeedbackRecord>();
  const labelledIds = new Set<string>();
  let feedbackRecords = 0;
  for await (const record of readLog(
    dir,
    (p) => problems.push(p),
    (line) => !line.startsWith(INFERENCE_PREFIX),
  )) {
    if (record.kind !== "feedback") continue;
    feedbackRecords++;
    labels.set(`${record.id}\u0000${record.row}`, record);
    labelledIds.add(record.id);
  }
  const inference = new Map<string, { ts: number; version: string; rows: Record<string, unknown>[]; predictions: (string | number)[] }>();
  let header: SegmentHeader | undefined;
  let inferenceRows = 0;
  const wanted = (line: string): boolean => {
    if (!line.startsWith(INFERENCE_PREFIX)) return line.startsWith('{"kind":"segment"');
    const id = inferenceId(line);
    if (id !== undefined && !labelledIds.has(id)) {
      // Counted without parsing: `rows` is an array of arrays of scalars, one `[` per row after `"rows":[`.
      inferenceRows += countRows(line);
      return false;
    }
    return true;
  };
  for await (const record of readLog(dir, () => {}, wanted)) {
    if (record.kind === "segment") header = record;
    else if (record.kind === "inference") {
      inferenceRows += record.rows.length;
      if (!header || !labelledIds.has(record.id)) continue;
      const names = header.features;
      const rows = record.rows.map((values) => Object.fromEntries(names.map((n, i) => [n, values[i]])));
      inference.set(record.id, { ts: record.ts, version: record.version, rows, predictions: record.predictions });
    }
  }
  const rows: LabelledRow[] = [];
  for (const fb of labels.values()) {
    const inf = inference.get(fb.id);
    const features = inf?.rows[fb.row];
    if (!inf || !features) continue;
    rows.push({ id: fb.id, row: fb.row, ts: inf.ts, version: inf.version, features, prediction: inf.predictions[fb.row]!, label: fb.label });
  }
  rows.sort((a, b) => a.ts - b.ts || a.id.localeCompare(b.id) || a.row - b.row);
  return { rows, label: header?.label, task: header?.task, inferenceRows, feedbackRecords, problems };
}
