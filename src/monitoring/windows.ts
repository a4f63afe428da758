// Tumbling windows (count- or time-based) over any mergeable state, e.g. a DatasetProfile per window.

export type WindowSpec = { kind: "count"; size: number } | { kind: "time"; durationMs: number };

export interface ClosedWindow<S> {
  /** Inclusive start and exclusive end; for count windows, the times of the first and last event. */
  start: number;
  end: number;
  events: number;
  state: S;
}

/**
 * Feeds events into the current window and returns the windows that closed. Time windows are aligned to
 * multiples of the duration since the epoch; a gap with no events yields empty windows (events = 0) so a
 * policy sees "insufficient data" instead of silence. Events older than the current window are counted
 * into it (late arrivals are not re-opened windows).
 */
export class TumblingWindows<S, E> {
  private current: { start: number; end: number; events: number; state: S } | undefined;

  /** At most this many empty windows are emitted for one gap (a long outage is summarised by the next window). */
  static readonly MAX_EMPTY_WINDOWS = 1000;

  constructor(
    readonly spec: WindowSpec,
    private readonly newState: () => S,
    private readonly addEvent: (state: S, event: E) => void,
  ) {
    const size = spec.kind === "count" ? spec.size : spec.durationMs;
    if (!(size > 0) || !Number.isFinite(size))
      throw new RangeError(`window ${spec.kind === "count" ? "size" : "durationMs"} must be a positive number, got ${size}`);
  }

  /** Adds an event observed at `timeMs`; returns the windows closed by it (possibly none). */
  add(event: E, timeMs: number): ClosedWindow<S>[] {
    const closed = this.spec.kind === "time" ? this.advanceTo(timeMs) : [];
    if (!this.current) this.current = this.open(timeMs);
    this.addEvent(this.current.state, event);
    this.current.events++;
    if (this.spec.kind === "count") {
      this.current.end = Math.max(this.current.end, timeMs);
      if (this.current.events >= this.spec.size) {
        closed.push(this.current);
        this.current = undefined;
      }
    }
    return closed;
  }

  /** Closes the time windows that ended by `nowMs` (call on a timer so idle periods produce windows). */
  flush(nowMs: number): ClosedWindow<S>[] {
    return this.spec.kind === "time" ? this.advanceTo(nowMs) : [];
  }

  /** The open window, if any (for a live view). */
  peek(): Readonly<ClosedWindow<S>> | undefined {
    return this.current;
  }

  private open(timeMs: number): { start: number; end: number; events: number; state: S } {
    if (this.spec.kind === "count") return { start: timeMs, end: timeMs, events: 0, state: this.newState() };
    const start = Math.floor(timeMs / this.spec.durationMs) * this.spec.durationMs;
    return { start, end: start + this.spec.durationMs, events: 0, state: this.newState() };
  }

  private advanceTo(timeMs: number): ClosedWindow<S>[] {
    const closed: ClosedWindow<S>[] = [];
    if (this.spec.kind !== "time" || !this.current) return closed;
    const duration = this.spec.durationMs;
    while (this.current && timeMs >= this.current.end) {
      closed.push(this.current);
      const nextStart: number = this.current.end;
      const eventStart = Math.floor(timeMs / duration) * duration;
      const gapWindows = (eventStart - nextStart) / duration;
      if (gapWindows > TumblingWindows.MAX_EMPTY_WINDOWS) {
        this.current = undefined;
        break;
      }
      this.current = { start: nextStart, end: nextStart + duration, events: 0, state: this.newState() };
      if (timeMs < this.current.end) break;
    }
    return closed;
  }
}
