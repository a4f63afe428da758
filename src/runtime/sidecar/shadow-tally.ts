// The serving sidecar's tallies of one shadow candidate: both models' answers on each mirrored request compared row
// by row, kept per request id (bounded) until its labels come back, then each labelled row counted in the paired
// cells the operator's test reads. Pure bookkeeping: the mirror's sender feeds it, the summary reads it.
import {
  MAX_SHADOW_DIFFS,
  SHADOW_LATENCY_BOUNDS_MS,
  type ClassificationPairs,
  type RegressionPairs,
  type ShadowSummary,
} from "../../monitoring/shadow-summary.js";

export type Prediction = string | number;
export type Task = "classification" | "regression";

/** Rows of mirrored requests remembered for their labels; the oldest requests are forgotten past it. */
export const DEFAULT_MAX_PAIRED_ROWS = 100_000;

/** A label the serving sidecar accepted (durably) for one row of a request. */
export interface AcceptedRowLabel {
  id: string;
  row: number;
  label: Prediction;
}

/** Labels to send on to the shadow that answered these requests (the same rows, so both models are scored alike). */
export interface LabelsToForward {
  target: string;
  labels: AcceptedRowLabel[];
}

interface PairedRequest {
  target: string;
  /** Until the shadow answered: labels that came back first wait here. */
  state: "in-flight" | "answered";
  serving?: Prediction[];
  shadow?: Prediction[];
  early?: AcceptedRowLabel[];
  /** Rows already labelled (a label counts once). */
  labelled?: Uint8Array;
}

/** Index of the SHADOW_LATENCY_BOUNDS_MS bucket `ms` falls in (the last one is +Inf). */
export function latencyBucket(ms: number): number {
  const i = SHADOW_LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? SHADOW_LATENCY_BOUNDS_MS.length : i;
}

/** Two regression predictions agree within 1e-9 relative (float noise of the same model is not disagreement). */
export function predictionsAgree(task: Task, a: Prediction, b: Prediction): boolean {
  if (task === "classification") return String(a) === String(b);
  const x = Number(a);
  const y = Number(b);
  return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

/** Two answers can be paired row by row: both have the same, non-zero number of rows. */
export function answersPair(serving: readonly Prediction[], shadow: readonly Prediction[]): boolean {
  return serving.length > 0 && serving.length === shadow.length;
}

export class ShadowTally {
  private mirrored = 0;
  private dropped = 0;
  private failed = 0;
  private rows = 0;
  private agreedRows = 0;
  private sumAbsDifference = 0;
  private readonly pairs: ClassificationPairs | RegressionPairs;
  private readonly servingLatency = new Array<number>(SHADOW_LATENCY_BOUNDS_MS.length + 1).fill(0);
  private readonly shadowLatency = new Array<number>(SHADOW_LATENCY_BOUNDS_MS.length + 1).fill(0);
  /** Mirrored requests by id, oldest first (Map order), bounded by their rows. */
  private readonly requests = new Map<string, PairedRequest>();
  private trackedRows = 0;

  constructor(
    readonly version: string,
    readonly since: string,
    private readonly task: Task,
    private readonly maxPairedRows = DEFAULT_MAX_PAIRED_ROWS,
  ) {
    this.pairs =
      task === "classification"
        ? { task, bothRight: 0, servingOnly: 0, shadowOnly: 0, bothWrong: 0 }
        : { task, count: 0, servingAbsErrorSum: 0, shadowAbsErrorSum: 0, diffs: [] };
  }

  /** A request queued for the shadow was not sent: the queue was full. */
  countDropped(): void {
    this.dropped++;
  }

  /** A request is on its way to `target`: labels for it from now on wait for the shadow's answer. */
  sent(id: string, target: string): void {
    this.mirrored++;
    this.remember(id, { target, state: "in-flight" }, 1);
  }

  /** The shadow refused or did not answer: nothing to pair, and nothing of it goes to the shadow. */
  countFailed(id: string): void {
    this.failed++;
    this.forget(id);
  }

  /**
   * Both models answered `id`: compares them row by row and counts both latencies. Returns the labels that came
   * back while the shadow was still answering, now counted and due at the shadow. Both answers have the same rows
   * (answersPair); anything else is the shadow's failure.
   */
  answered(id: string, serving: Prediction[], shadow: Prediction[], servingMs: number, shadowMs: number): LabelsToForward | undefined {
    if (!answersPair(serving, shadow)) throw new RangeError(`request ${id}: ${serving.length} serving rows cannot pair with ${shadow.length} shadow rows`);
    const entry = this.requests.get(id);
    this.rows += serving.length;
    for (let r = 0; r < serving.length; r++) {
      if (predictionsAgree(this.task, serving[r]!, shadow[r]!)) this.agreedRows++;
      if (this.task === "regression") this.sumAbsDifference += Math.abs(Number(serving[r]) - Number(shadow[r]));
    }
    this.servingLatency[latencyBucket(servingMs)]!++;
    this.shadowLatency[latencyBucket(shadowMs)]!++;
    // Forgotten meanwhile (the bound): compared, but its labels can no longer be paired.
    if (!entry) return undefined;
    const early = entry.early ?? [];
    this.forget(id);
    this.remember(id, { target: entry.target, state: "answered", serving, shadow, labelled: new Uint8Array(serving.length) }, serving.length);
    return this.labelled(early)[0];
  }

  /** Accepted labels: those of answered mirrored requests are counted and returned per shadow; in-flight ones wait. */
  labelled(labels: readonly AcceptedRowLabel[]): LabelsToForward[] {
    const byTarget = new Map<string, AcceptedRowLabel[]>();
    for (const l of labels) {
      const entry = this.requests.get(l.id);
      if (!entry) continue;
      if (entry.state === "in-flight") {
        (entry.early ??= []).push(l);
        continue;
      }
      if (l.row >= entry.labelled!.length || entry.labelled![l.row]) continue;
      entry.labelled![l.row] = 1;
      this.countPair(entry.serving![l.row]!, entry.shadow![l.row]!, l.label);
      const forTarget = byTarget.get(entry.target) ?? [];
      forTarget.push(l);
      byTarget.set(entry.target, forTarget);
    }
    return [...byTarget].map(([target, forTarget]) => ({ target, labels: forTarget }));
  }

  private countPair(serving: Prediction, shadow: Prediction, label: Prediction): void {
    const p = this.pairs;
    if (p.task === "classification") {
      const servingRight = String(serving) === String(label);
      const shadowRight = String(shadow) === String(label);
      if (servingRight && shadowRight) p.bothRight++;
      else if (servingRight) p.servingOnly++;
      else if (shadowRight) p.shadowOnly++;
      else p.bothWrong++;
      return;
    }
    const servingError = Math.abs(Number(serving) - Number(label));
    const shadowError = Math.abs(Number(shadow) - Number(label));
    p.count++;
    p.servingAbsErrorSum += servingError;
    p.shadowAbsErrorSum += shadowError;
    p.diffs.push(servingError - shadowError);
    // Trimmed in blocks: one splice per 1 000 labels instead of a shift per label.
    if (p.diffs.length > MAX_SHADOW_DIFFS + 1000) p.diffs.splice(0, p.diffs.length - MAX_SHADOW_DIFFS);
  }

  private remember(id: string, entry: PairedRequest, rows: number): void {
    this.requests.set(id, entry);
    this.trackedRows += rows;
    while (this.trackedRows > this.maxPairedRows && this.requests.size > 1) this.forget(this.requests.keys().next().value as string);
  }

  private forget(id: string): void {
    const entry = this.requests.get(id);
    if (!entry) return;
    this.requests.delete(id);
    this.trackedRows -= entry.serving?.length ?? 1;
  }

  /** Requests remembered for their labels (bounded by maxPairedRows). */
  get trackedRequests(): number {
    return this.requests.size;
  }

  summary(): ShadowSummary {
    const pairs: ClassificationPairs | RegressionPairs =
      this.pairs.task === "classification" ? { ...this.pairs } : { ...this.pairs, diffs: this.pairs.diffs.slice(-MAX_SHADOW_DIFFS) };
    return {
      version: this.version,
      since: this.since,
      mirrored: this.mirrored,
      dropped: this.dropped,
      failed: this.failed,
      rows: this.rows,
      agreedRows: this.agreedRows,
      sumAbsDifference: this.sumAbsDifference,
      pairs,
      servingLatency: [...this.servingLatency],
      shadowLatency: [...this.shadowLatency],
    };
  }
}
