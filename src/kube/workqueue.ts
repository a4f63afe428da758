// client-go's rate-limited work queue: deduplicates keys, never hands one key to two workers at once,
// re-queues a key that was added while it was being processed, and delays retries per key.
import { defaultControllerRateLimiter, monotonicClock, type Clock, type RateLimiter } from "./rate-limiter.js";

/** Hooks for the controller-runtime workqueue metrics; the queue itself knows nothing of prom-client. */
export interface WorkQueueMetrics {
  depth(n: number): void;
  added(): void;
  /** Seconds from add to get. */
  queued(seconds: number): void;
  /** Seconds from get to done. */
  worked(seconds: number): void;
  retried(): void;
}

export interface WorkQueueOptions<K> {
  rateLimiter?: RateLimiter<K>;
  metrics?: WorkQueueMetrics;
  clock?: Clock;
}

export class WorkQueue<K> {
  private readonly queue: K[] = [];
  /** Keys waiting to be processed (in `queue`, or re-queued when their processing ends). */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly addedAt = new Map<K, number>();
  private readonly startedAt = new Map<K, number>();
  private readonly delayed = new Map<K, { due: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((k: K | undefined) => void)[] = [];
  private drainedWaiters: (() => void)[] = [];
  private shuttingDown = false;
  private readonly rateLimiter: RateLimiter<K>;
  private readonly metrics: WorkQueueMetrics | undefined;
  private readonly clock: Clock;

  constructor(options: WorkQueueOptions<K> = {}) {
    this.clock = options.clock ?? monotonicClock;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
    this.metrics = options.metrics;
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.added();
    this.dirty.add(key);
    this.addedAt.set(key, this.clock());
    // Being processed: `done` puts it back, so one worker at a time sees it.
    if (this.processing.has(key)) return;
    this.push(key);
  }

  private push(key: K): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.start(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.metrics?.depth(this.queue.length);
  }

  private start(key: K): void {
    this.dirty.delete(key);
    this.processing.add(key);
    const now = this.clock();
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.queued((now - added) / 1000);
    this.addedAt.delete(key);
    this.startedAt.set(key, now);
  }

  /** How long the longest-running key has been processing (0 when none is): a worker stuck shows here. */
  longestProcessingMs(): number {
    const now = this.clock();
    let longest = 0;
    for (const started of this.startedAt.values()) longest = Math.max(longest, now - started);
    return longest;
  }

  /** Adds `key` after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const due = this.clock() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { due, timer });
  }

  /** Adds `key` after its rate limiter's delay (a retry after a failure). */
  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.metrics?.retried();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Clears `key`'s failure history: its next failure waits the base delay again. */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  retries(key: K): number {
    return this.rateLimiter.retries(key);
  }

  /**
   * The next key to process; undefined once the queue is shut down and empty, or when `signal` aborts first, in
   * which case no key is taken (the waiter is withdrawn, so a key added later stays queued for another worker).
   */
  get(signal?: AbortSignal): Promise<K | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.metrics?.depth(this.queue.length);
      this.start(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      // The listener lives for this wait only: a worker waits once per key, thousands of times over a long run.
      const withdraw = () => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        resolve(undefined);
      };
      const waiter = (k: K | undefined) => {
        signal?.removeEventListener("abort", withdraw);
        resolve(k);
      };
      signal?.addEventListener("abort", withdraw, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Processing of `key` ended; if it was added meanwhile it goes back into the queue. */
  done(key: K): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.metrics?.worked((this.clock() - started) / 1000);
    this.startedAt.delete(key);
    if (this.dirty.has(key)) this.push(key);
    this.notifyDrained();
  }

  private notifyDrained(): void {
    if (this.processing.size === 0 && this.queue.length === 0) {
      const ws = this.drainedWaiters;
      this.drainedWaiters = [];
      for (const w of ws) w();
    }
  }

  /**
   * Stops accepting keys, drops pending delayed adds, and resolves once the keys already queued
   * and in processing are done (workers keep calling `get` until it answers undefined).
   */
  shutDownWithDrain(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    return new Promise((resolve) => {
      this.drainedWaiters.push(resolve);
      this.notifyDrained();
    });
  }
}
