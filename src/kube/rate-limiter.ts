// The rate limiters of client-go's workqueue: how long a key waits before its next retry.

/** Milliseconds since some fixed point; injected so tests control time. */
export type Clock = () => number;
export const monotonicClock: Clock = () => performance.now();

export interface RateLimiter<K> {
  /** How long `key` must wait before it is processed again (and count this retry). */
  when(key: K): number;
  /** The key succeeded: reset its failure history. */
  forget(key: K): void;
  /** How many retries `key` has had since it was last forgotten. */
  retries(key: K): number;
}

/** base · 2^failures, capped; the per-key half of controller-runtime's default limiter (5 ms → 1000 s). */
export class ItemExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();
  constructor(
    readonly baseDelayMs = 5,
    readonly maxDelayMs = 1_000_000,
  ) {}
  when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return exponentialDelay(this.baseDelayMs, this.maxDelayMs, n);
  }
  forget(key: K): void {
    this.failures.delete(key);
  }
  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

export function exponentialDelay(baseMs: number, maxMs: number, attempt: number): number {
  // 2^attempt overflows to Infinity long before it matters; the cap keeps the result finite.
  return Math.min(maxMs, baseMs * 2 ** attempt);
}

/**
 * A token bucket shared by all keys (controller-runtime: 10 qps, burst 100). `when` reserves a token
 * and answers how long until it is available, like golang.org/x/time/rate's Reserve().Delay().
 */
export class TokenBucketRateLimiter<K> implements RateLimiter<K> {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly clock: Clock = monotonicClock,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`token bucket needs qps > 0 and burst ≥ 1, got ${qps}/${burst}`);
    this.tokens = burst;
    this.last = clock();
  }
  when(_key: K): number {
    const now = this.clock();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
  forget(_key: K): void {}
  retries(_key: K): number {
    return 0;
  }
}

/** The longest wait any of the limiters asks for (controller-runtime's DefaultTypedControllerRateLimiter). */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  private readonly limiters: RateLimiter<K>[];
  constructor(...limiters: RateLimiter<K>[]) {
    this.limiters = limiters;
  }
  when(key: K): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }
  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: K): number {
    return Math.max(0, ...this.limiters.map((l) => l.retries(key)));
  }
}

export function defaultControllerRateLimiter<K>(clock: Clock = monotonicClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ItemExponentialFailureRateLimiter<K>(5, 1_000_000), new TokenBucketRateLimiter<K>(10, 100, clock));
}

/** Exponential backoff with jitter for reconnect loops (watch restarts, lease retries). */
export class Backoff {
  private attempt = 0;
  constructor(
    readonly initialMs = 200,
    readonly maxMs = 30_000,
    readonly jitter = 0.2,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const d = exponentialDelay(this.initialMs, this.maxMs, this.attempt++);
    return d * (1 - this.jitter + 2 * this.jitter * this.random());
  }
  reset(): void {
    this.attempt = 0;
  }
}
