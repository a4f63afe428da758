// A bounded queue of sends drained by a fixed number of senders: what the mirror uses so that a slow receiver costs
// at most `maxQueued` jobs or `maxQueuedBytes` of memory, never the caller's time (a full queue refuses at once).

/** A bounded queue drained by a fixed number of senders; bytes count until a job finishes. */
export class SendQueue {
  private jobs: { run: () => Promise<void>; bytes: number }[] = [];
  private held = 0;
  private running = 0;

  constructor(
    private readonly limits: { maxQueued: number; maxQueuedBytes: number; concurrency: number },
    /** A job that throws is a bug: logged, never an unhandled rejection that would stop the sidecar. */
    private readonly onBug: (err: unknown) => void,
  ) {}

  /** False (and nothing queued) when the queue is full. */
  push(run: () => Promise<void>, bytes: number): boolean {
    if (this.jobs.length + this.running >= this.limits.maxQueued || this.held + bytes > this.limits.maxQueuedBytes) return false;
    this.jobs.push({ run, bytes });
    this.held += bytes;
    this.pump();
    return true;
  }

  clear(): void {
    for (const job of this.jobs) this.held -= job.bytes;
    this.jobs = [];
  }

  private pump(): void {
    while (this.running < this.limits.concurrency && this.jobs.length > 0) {
      const job = this.jobs.shift()!;
      this.running++;
      void job
        .run()
        .catch(this.onBug)
        .finally(() => {
          this.running--;
          this.held -= job.bytes;
          this.pump();
        });
    }
  }
}
