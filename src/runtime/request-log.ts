// The sidecar's durable request log: append-only JSON-lines segments of inference records and feedback.
// Feedback is acknowledged only after fdatasync (group commit); inference records ride along with the next sync.
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDirectory, isErrno } from "./store.js";

export const SEGMENT_PREFIX = "segment-";
export const SEGMENT_SUFFIX = ".jsonl";

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
  /** Delete the oldest segments while the log is larger than this. */
  maxBytes: number;
  /** Write buffered inference records at least this often (ms) even without feedback. */
  flushIntervalMs: number;
}

export const DEFAULT_LOG_OPTIONS: RequestLogOptions = {
  segmentBytes: 64 * 1024 * 1024,
  maxBytes: 1024 * 1024 * 1024,
  flushIntervalMs: 200,
};

export function segmentName(seq: number): string {
  return `${SEGMENT_PREFIX}${String(seq).padStart(10, "0")}${SEGMENT_SUFFIX}`;
}

/** Segment files of a log directory, oldest first. */
export async function listSegments(dir: string): Promise<{ seq: number; file: string }[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return [];
    throw err;
  }
  return names
    .map((name) => ({ name, m: /^segment-(\d{10})\.jsonl$/.exec(name) }))
    .filter((x) => x.m !== null)
    .map((x) => ({ seq: Number(x.m![1]), file: path.join(dir, x.name) }))
    .sort((a, b) => a.seq - b.seq);
}

export interface ReadProblem {
  file: string;
  line: number;
  message: string;
}

/**
 * Every record of a log directory in write order. A torn last line (crash mid-write) is skipped
 * silently; any other unparsable line is reported through `onProblem` and skipped.
 */
export async function* readLog(dir: string, onProblem: (p: ReadProblem) => void = () => {}): AsyncGenerator<LogRecord> {
  for (const { file } of await listSegments(dir)) {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      // Rotation may delete a segment between listing and reading.
      if (isErrno(err, "ENOENT")) continue;
      throw err;
    }
    const lines = text.split("\n");
    const tornTail = !text.endsWith("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === "") continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (err) {
        if (!(tornTail && i === lines.length - 1)) onProblem({ file, line: i + 1, message: (err as Error).message });
        continue;
      }
      const kind = (record as { kind?: unknown } | null)?.kind;
      if (kind === "segment" || kind === "inference" || kind === "feedback") yield record as LogRecord;
      else onProblem({ file, line: i + 1, message: `unknown record kind ${JSON.stringify(kind)}` });
    }
  }
}

export class RequestLog {
  private handle: fs.FileHandle | undefined;
  private seq = 0;
  private segmentSize = 0;
  private pending: string[] = [];
  /** Serialises every file operation so writes stay in append order. */
  private chain: Promise<void> = Promise.resolve();
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private stats = { records: 0, bytes: 0, syncs: 0, segmentsDeleted: 0 };

  private constructor(
    readonly dir: string,
    private header: Omit<SegmentHeader, "kind" | "startedAt">,
    private readonly options: RequestLogOptions,
  ) {}

  /** Opens the log for appending; a new segment starts at every open so each segment has one header. */
  static async open(
    dir: string,
    header: Omit<SegmentHeader, "kind" | "startedAt">,
    options: Partial<RequestLogOptions> = {},
  ): Promise<RequestLog> {
    await fs.mkdir(dir, { recursive: true });
    const log = new RequestLog(dir, header, { ...DEFAULT_LOG_OPTIONS, ...options });
    const segments = await listSegments(dir);
    log.seq = segments.at(-1)?.seq ?? 0;
    await log.startSegment();
    log.timer = setInterval(() => void log.flush().catch(() => {}), log.options.flushIntervalMs);
    log.timer.unref();
    return log;
  }

  /** Buffers a record; it reaches the file within flushIntervalMs and the disk with the next commit. */
  append(record: InferenceRecord | FeedbackRecord): void {
    if (this.closed) throw new Error("request log is closed");
    this.pending.push(JSON.stringify(record) + "\n");
    this.stats.records++;
  }

  /** Resolves once every record appended before the call is on disk (fdatasync); concurrent callers share syncs. */
  commit(): Promise<void> {
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

  /** Writes buffered records to the file (no fsync). */
  flush(): Promise<void> {
    return this.enqueue(() => this.writePending());
  }

  getStats(): Readonly<typeof this.stats> & { segment: number } {
    return { ...this.stats, segment: this.seq };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await this.commit();
    this.closed = true;
    await this.enqueue(async () => {
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private startSync(): Promise<void> {
    const p: Promise<void> = this.enqueue(async () => {
      await this.writePending();
      await this.handle!.datasync();
      this.stats.syncs++;
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

  private async writePending(): Promise<void> {
    if (this.pending.length === 0 || !this.handle) return;
    const chunk = Buffer.from(this.pending.join(""));
    this.pending = [];
    await this.handle.write(chunk);
    this.segmentSize += chunk.length;
    this.stats.bytes += chunk.length;
    if (this.segmentSize >= this.options.segmentBytes) {
      // The old segment is synced before the new one exists, so a crash never leaves a gap.
      await this.handle.datasync();
      await this.handle.close();
      await this.startSegment();
      await this.enforceSizeBound();
    }
  }

  private async startSegment(): Promise<void> {
    this.seq++;
    const file = path.join(this.dir, segmentName(this.seq));
    this.handle = await fs.open(file, "a");
    const header: SegmentHeader = { kind: "segment", ...this.header, startedAt: new Date().toISOString() };
    const line = Buffer.from(JSON.stringify(header) + "\n");
    await this.handle.write(line);
    await this.handle.sync();
    await fsyncDirectory(this.dir);
    this.segmentSize = line.length;
  }

  private async enforceSizeBound(): Promise<void> {
    const segments = await listSegments(this.dir);
    const sizes = await Promise.all(segments.map(async (s) => (await fs.stat(s.file)).size));
    let total = sizes.reduce((a, b) => a + b, 0);
    for (let i = 0; i < segments.length - 1 && total > this.options.maxBytes; i++) {
      await fs.rm(segments[i]!.file, { force: true });
      total -= sizes[i]!;
      this.stats.segmentsDeleted++;
    }
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

/** Joins inference rows with their feedback: the training data a sidecar collected. */
export async function joinLog(dir: string): Promise<JoinedLog> {
  const problems: ReadProblem[] = [];
  const inference = new Map<string, { ts: number; version: string; rows: Record<string, unknown>[]; predictions: (string | number)[] }>();
  const labels = new Map<string, FeedbackRecord>();
  let header: SegmentHeader | undefined;
  let inferenceRows = 0;
  let feedbackRecords = 0;
  for await (const record of readLog(dir, (p) => problems.push(p))) {
    if (record.kind === "segment") header = record;
    else if (record.kind === "inference") {
      if (!header) continue;
      const names = header.features;
      const rows = record.rows.map((values) => Object.fromEntries(names.map((n, i) => [n, values[i]])));
      inference.set(record.id, { ts: record.ts, version: record.version, rows, predictions: record.predictions });
      inferenceRows += rows.length;
    } else {
      feedbackRecords++;
      labels.set(`${record.id}\u0000${record.row}`, record);
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
