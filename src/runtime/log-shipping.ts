// Ships a pod's sealed request log segments to an s3:// store (`<prefix>/<model>/_log/<pod>/<segment>`), where the
// retraining Job reads them: the local directory becomes a spool. A segment is deleted locally only after the server
// confirmed its upload; failed uploads are retried with jittered exponential back-off; the spool is bounded and,
// when it fills, the request log stops acknowledging (see RequestLogOptions.spoolFull) rather than lose feedback.
import fs from "node:fs/promises";
import path from "node:path";
import { listSegments } from "./log-segments.js";
import { fsyncDirectory, isErrno } from "./store.js";

/** Where segments go: S3ModelStore.putLogSegment, which resolves only once the upload is confirmed (or rejects when `signal` aborts it). */
export interface LogShipTarget {
  putLogSegment(model: string, pod: string, name: string, body: Uint8Array, signal?: AbortSignal): Promise<void>;
}

export interface LogShipperOptions {
  /** The pod's local log directory (the spool). */
  dir: string;
  model: string;
  pod: string;
  target: LogShipTarget;
  /** Unshipped bytes (every local segment, the open one included) at which the spool is full. */
  spoolBytes: number;
  /** Look for newly sealed segments this often (ms); `kick()` looks at once. */
  intervalMs?: number;
  /** First back-off after a failed upload (ms), doubled per failure up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  onEvent?: (event: LogShipEvent) => void;
}

export type LogShipEvent =
  | { event: "log-shipped"; file: string; bytes: number }
  | { event: "log-ship-failed"; file: string; error: string; failures: number; retryInMs: number }
  | { event: "log-spool-full"; spoolBytes: number; maxBytes: number }
  | { event: "log-spool-drained"; spoolBytes: number; maxBytes: number };

export interface LogShipStats {
  shippedSegments: number;
  shippedBytes: number;
  /** Uploads that failed (each retried later). */
  failures: number;
  /** Bytes of local segments not shipped yet, at the last look. */
  spoolBytes: number;
  maxSpoolBytes: number;
  spoolFull: boolean;
}

const DEFAULT_INTERVAL_MS = 2000;
const DEFAULT_RETRY_MS = 1000;
const DEFAULT_MAX_RETRY_MS = 60_000;

export class LogShipper {
  private readonly stats: LogShipStats;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Consecutive failures, and when the next upload may be tried. */
  private failing = 0;
  private retryAt = 0;
  private closed = false;
  /** Aborts the upload in flight when close's deadline passes: the drain time is the kubelet's grace period. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: LogShipperOptions) {
    this.stats = { shippedSegments: 0, shippedBytes: 0, failures: 0, spoolBytes: 0, maxSpoolBytes: options.spoolBytes, spoolFull: false };
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
    this.kick();
  }

  /** Whether the request log should stop acknowledging: the spool is at its bound. */
  get spoolFull(): boolean {
    return this.stats.spoolFull;
  }

  getStats(): LogShipStats {
    return { ...this.stats };
  }

  /** Looks for sealed segments now (after a seal); one pass at a time, a kick during a pass runs another after it. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch(() => {}) // a listing error is retried at the next tick like an upload error
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * Ships what is sealed once more (the request log sealed its last segment at close), without waiting for the
   * back-off, until `deadlineMs` passes; what is left stays in the spool for the next start of this pod's container.
   */
  async close(deadlineMs: number): Promise<LogShipStats> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // The deadline covers the pass already running too: an upload stuck on a slow server is cut off with it.
    const until = Date.now() + deadlineMs;
    const cutOff = setTimeout(() => this.stopping.abort(new Error(`not shipped within the ${deadlineMs} ms drain time`)), deadlineMs);
    try {
      await this.running;
      this.retryAt = 0;
      for (let delay = 100; Date.now() < until; delay = Math.min(delay * 2, 2000)) {
        await this.pass(until);
        if (this.stats.spoolBytes === 0 || !(await this.hasSealed())) break;
        await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, until - Date.now()))));
        this.retryAt = 0;
      }
    } finally {
      clearTimeout(cutOff);
    }
    return this.getStats();
  }

  /** Uploads sealed segments oldest first, deleting each after its upload is confirmed; stops at the first failure. */
  private async pass(deadline = Infinity): Promise<void> {
    const { dir } = this.options;
    const segments = await listSegments(dir);
    for (const s of segments) {
      if (!s.sealed) continue;
      if (Date.now() < this.retryAt || Date.now() >= deadline) break;
      let body: Buffer;
      try {
        body = await fs.readFile(s.file);
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
        throw err;
      }
      try {
        await this.options.target.putLogSegment(this.options.model, this.options.pod, path.basename(s.file), body, this.stopping.signal);
      } catch (err) {
        this.failing++;
        this.stats.failures++;
        const backoff = Math.min((this.options.retryMs ?? DEFAULT_RETRY_MS) * 2 ** (this.failing - 1), this.options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS);
        // Jitter: the pods of a Deployment that lost the same server do not retry in step.
        const retryInMs = Math.round(backoff * (0.5 + Math.random() / 2));
        this.retryAt = Date.now() + retryInMs;
        this.options.onEvent?.({ event: "log-ship-failed", file: s.file, error: (err as Error).message, failures: this.failing, retryInMs });
        break;
      }
      this.failing = 0;
      this.retryAt = 0;
      // Confirmed: the local copy is no longer the only one.
      await fs.unlink(s.file);
      await fsyncDirectory(dir);
      this.stats.shippedSegments++;
      this.stats.shippedBytes += body.length;
      this.options.onEvent?.({ event: "log-shipped", file: s.file, bytes: body.length });
    }
    await this.measureSpool();
  }

  private async hasSealed(): Promise<boolean> {
    return (await listSegments(this.options.dir)).some((s) => s.sealed);
  }

  /** Bytes of every local segment (each is unshipped), and the full flag with its transitions reported once. */
  private async measureSpool(): Promise<void> {
    let bytes = 0;
    for (const s of await listSegments(this.options.dir)) {
      try {
        bytes += (await fs.stat(s.file)).size;
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err;
      }
    }
    this.stats.spoolBytes = bytes;
    const full = bytes >= this.options.spoolBytes;
    if (full !== this.stats.spoolFull) {
      this.stats.spoolFull = full;
      this.options.onEvent?.({ event: full ? "log-spool-full" : "log-spool-drained", spoolBytes: bytes, maxBytes: this.options.spoolBytes });
    }
  }
}
