import { describe, expect, it } from "vitest";
import {
  Backoff,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  defaultControllerRateLimiter,
} from "../../../src/kube/rate-limiter.js";
import { WorkQueue, type WorkQueueMetrics } from "../../../src/kube/workqueue.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("per-key exponential backoff", () => {
  it("doubles from 5 ms per failure and caps at 1000 s", () => {
    const rl = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    const delays = Array.from({ length: 5 }, () => rl.when("a"));
    expect(delays).toEqual([5, 10, 20, 40, 80]);
    for (let i = 0; i < 100; i++) rl.when("a");
    expect(rl.when("a")).toBe(1_000_000);
    expect(rl.retries("a")).toBe(106);
  });

  it("keeps keys apart and starts over after forget", () => {
    const rl = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    rl.when("a");
    rl.when("a");
    expect(rl.when("b")).toBe(5);
    rl.forget("a");
    expect(rl.retries("a")).toBe(0);
    expect(rl.when("a")).toBe(5);
  });
});

describe("global token bucket", () => {
  it("lets a burst of 100 through at once, then spaces retries at 10 per second", () => {
    let now = 0;
    const tb = new TokenBucketRateLimiter<string>(10, 100, () => now);
    for (let i = 0; i < 100; i++) expect(tb.when(`k${i}`)).toBe(0);
    expect(tb.when("x")).toBeCloseTo(100);
    expect(tb.when("y")).toBeCloseTo(200);
    now = 10_000; // ten idle seconds refill the bucket to its burst, not beyond
    for (let i = 0; i < 100; i++) tb.when(`r${i}`);
    expect(tb.when("z")).toBeGreaterThan(0);
  });

  it("rejects a bucket that could never hand out a token", () => {
    expect(() => new TokenBucketRateLimiter(0, 100)).toThrow(/qps > 0/);
  });

  it("combined with backoff, the longer wait wins", () => {
    let now = 0;
    const rl = new MaxOfRateLimiter<string>(new ItemExponentialFailureRateLimiter<string>(5, 1_000_000), new TokenBucketRateLimiter<string>(10, 1, () => now));
    expect(rl.when("a")).toBe(5); // token free, backoff 5 ms
    expect(rl.when("b")).toBeCloseTo(100); // bucket empty: 100 ms beats 5 ms
    now = 1_000;
    expect(defaultControllerRateLimiter<string>(() => now).when("c")).toBe(5);
  });
});

describe("reconnect backoff", () => {
  it("grows exponentially within ±jitter and resets", () => {
    const b = new Backoff(100, 1_000, 0.2, () => 0.5);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1_000]);
    b.reset();
    expect(b.next()).toBe(100);
    const lo = new Backoff(100, 1_000, 0.2, () => 0);
    expect(lo.next()).toBeCloseTo(80);
  });
});

describe("work queue", () => {
  it("hands out each key once however often it was added", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
    expect(q.length).toBe(0);
  });

  it("never gives a key to a second worker while the first is processing it, and re-queues it once after", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    const first = await q.get();
    q.add("a");
    q.add("a");
    expect(q.length).toBe(0); // held back while "a" is processing
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await sleep(5);
    expect(second).toBeUndefined();
    q.done(first!);
    await sleep(0);
    expect(second).toBe("a");
    q.done("a");
    expect(q.length).toBe(0);
  });

  it("wakes a waiting worker when a key arrives", async () => {
    const q = new WorkQueue<string>();
    const got = q.get();
    q.add("late");
    expect(await got).toBe("late");
  });

  it("withdraws a waiting get when its signal aborts: it answers undefined and a key added after goes to the next get", async () => {
    const q = new WorkQueue<string>();
    const pause = new AbortController();
    const withdrawn = q.get(pause.signal);
    pause.abort();
    expect(await withdrawn).toBeUndefined();
    expect(await q.get(pause.signal)).toBeUndefined(); // already aborted: takes nothing
    q.add("a");
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("addAfter delays a key, and of two delays for one key the earlier wins", async () => {
    const q = new WorkQueue<string>();
    q.addAfter("a", 200);
    q.addAfter("a", 20);
    q.addAfter("a", 500);
    expect(q.length).toBe(0);
    const t0 = performance.now();
    expect(await q.get()).toBe("a");
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(15);
    expect(waited).toBeLessThan(190);
  });

  it("retries a failing key with growing delays and resets them on forget", async () => {
    const q = new WorkQueue<string>({ rateLimiter: new ItemExponentialFailureRateLimiter<string>(10, 1000) });
    q.addRateLimited("a");
    q.addRateLimited("a"); // a second pending retry for a waiting key does not double it
    expect(q.retries("a")).toBe(2);
    expect(await q.get()).toBe("a");
    q.done("a");
    q.forget("a");
    expect(q.retries("a")).toBe(0);
  });

  it("drains on shutdown: queued keys are still handed out, new adds are refused, then get answers undefined", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    q.add("b");
    const inFlight = (await q.get())!;
    q.addAfter("later", 10_000);
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    q.add("c");
    expect(await q.get()).toBe("b");
    q.done("b");
    await sleep(0);
    expect(drained).toBe(false); // "a" is still being processed
    q.done(inFlight);
    await drain;
    expect(drained).toBe(true);
    expect(await q.get()).toBeUndefined();
  });

  it("releases idle workers on shutdown", async () => {
    const q = new WorkQueue<string>();
    const idle = q.get();
    await q.shutDownWithDrain();
    expect(await idle).toBeUndefined();
  });

  it("reports depth, adds, latencies and retries to its metrics hooks", async () => {
    const seen = { depth: [] as number[], adds: 0, queued: 0, worked: 0, retries: 0 };
    const metrics: WorkQueueMetrics = {
      depth: (n) => seen.depth.push(n),
      added: () => seen.adds++,
      queued: () => seen.queued++,
      worked: () => seen.worked++,
      retried: () => seen.retries++,
    };
    let now = 0;
    const q = new WorkQueue<string>({ metrics, clock: () => now });
    q.add("a");
    q.add("a");
    q.add("b");
    now = 50;
    const k = (await q.get())!;
    now = 80;
    q.done(k);
    q.addRateLimited("c");
    expect(seen.adds).toBe(2);
    expect(seen.depth).toEqual([1, 2, 1]);
    expect(seen.queued).toBe(1);
    expect(seen.worked).toBe(1);
    expect(seen.retries).toBe(1);
  });
});
