// What the sidecar learns from traffic: per-window profiles of inputs and predictions, feedback joined to
// predictions, drift against the reference profile. Exchanges are queued on the hot path and processed in batches.
import { DriftCalibration } from "../monitoring/calibration.js";
import { compare, type CompareOptions, type DriftReport } from "../monitoring/compare.js";
import { ConfidenceEstimate, temperatureScaled } from "../monitoring/confidence-estimate.js";
import { DatasetProfile } from "../monitoring/dataset-profile.js";
import { LossEstimate, LossEstimator, estimatedLossMetrics, lossEstimatorInput } from "../monitoring/loss-estimate.js";
import { ReferenceSupport } from "../monitoring/reference-support.js";
import { PcaReconstruction, ReconstructionErrorSum } from "../monitoring/multivariate-drift.js";
import {
  PREDICTION_COLUMN,
  SUMMARY_FORMAT,
  LabelledOutcomes,
  estimatedMetrics,
  labelledMetrics,
  type ReferenceProfileJSON,
  type SidecarSummary,
  type WindowSummary,
} from "../monitoring/summary.js";
import { encodeColumns, encodedWidth } from "./features.js";
import { labelChecker } from "./feedback-labels.js";
import { outputNames, type ModelMetadata } from "./metadata.js";
import { decodeInferRequest, predictionsFromResponse } from "./oip.js";
import { Refusal } from "./refusal.js";
import type { LogRecord, RequestLog } from "./request-log.js";
import { parseFeedbackBody, type FeedbackItem, type FeedbackLabel } from "./wire/feedback.js";

/** Drift methods that compare numbers only (a categorical column needs chisquare, psi or jensenshannon). */
const NUMERIC_ONLY_METHODS: ReadonlySet<string> = new Set(["ks", "wasserstein"]);

export interface MonitorOptions {
  meta: ModelMetadata;
  /** Close the open window after this many inference rows (0: no size bound). */
  windowRows: number;
  /** Close the open window at the next multiple of this many ms since the epoch (0: no time bound). */
  windowMs: number;
  /** Closed windows kept for the summary. */
  windowsKept: number;
  /** Request ids remembered for feedback; older ones get 404. */
  maxTracked: number;
  /** Estimated bytes of the remembered requests (ids, predictions); the oldest are forgotten past it. Default 64 MiB. */
  maxTrackedBytes?: number;
  pod: string;
  requestLog: RequestLog;
  /** Reference to measure drift against (default: the version's `referenceProfile`). */
  reference?: ReferenceProfileJSON;
  /** compare() options for window drift (default: method auto over every feature). */
  drift?: CompareOptions;
  now?: () => number;
}

/** One proxied infer call as the sidecar saw it (bodies are null when too large to inspect). */
export interface CapturedExchange {
  ts: number;
  status: number;
  requestBody: Buffer | null;
  /** The request body already parsed on the hot path (to read its id), so it is not parsed twice. */
  request?: unknown;
  responseBody: Buffer | null;
  /** The id the sidecar claimed for this request (claimRequestId); it keys the feedback index. */
  id?: string;
  /** The `inference-request-id` the server answered with. */
  responseId?: string;
}

interface Window {
  /** Numbers the windows in order: a tracked request names its window by it, so it never holds a dropped window alive. */
  seq: number;
  start: number;
  /** Time bound: closes at this instant (Infinity without one). */
  closesAt: number;
  end?: number;
  requests: number;
  failedRequests: number;
  rejectedRequests: number;
  rows: number;
  features: DatasetProfile;
  predictions: DatasetProfile;
  labelled: LabelledOutcomes;
  /** Calibrated classifiers: the expected confusion matrix of the rows answered with probabilities. */
  estimate?: ConfidenceEstimate;
  /** Regression versions with a loss estimator: the rows' predicted errors, summed (DLE). */
  lossEstimate?: LossEstimate;
  /** Versions with a multivariate reference: the rows' PCA reconstruction errors, summed. */
  reconstruction?: ReconstructionErrorSum;
  /** Versions with a label-free estimate: rows checked against the reference's range, and those outside it. */
  support?: { rows: number; outside: number };
  drift?: DriftReport | null;
}

/**
 * The `probabilities` output of an OIP response as rows of `classes` numbers, or undefined when the caller did not
 * ask for it (outputs: label only) or it does not fit the request's rows.
 */
function probabilityRows(response: unknown, rows: number, classes: number): number[][] | undefined {
  const outputs = (response as { outputs?: unknown }).outputs;
  if (!Array.isArray(outputs)) return undefined;
  const tensor = outputs.find((o): o is { data: unknown } => typeof o === "object" && o !== null && (o as { name?: unknown }).name === "probabilities");
  const data = tensor?.data;
  // A float32 softmax may round a hair past 1; anything further off is not a probability.
  if (!Array.isArray(data) || data.length !== rows * classes || !data.every((v) => typeof v === "number" && v >= 0 && v <= 1 + 1e-6)) return undefined;
  return Array.from({ length: rows }, (_, r) => (data as number[]).slice(r * classes, (r + 1) * classes));
}

interface TrackedRequest {
  predictions: (string | number)[] | undefined;
  labelled: Uint8Array;
  /** The seq of the window it was served in; undefined when restored from the log (that window is gone). */
  window: number | undefined;
  /** Estimated heap bytes of this entry and its id (trackedBytesOf). */
  bytes?: number;
}

export type RequestOutcome = "ok" | "failed" | "rejected";

interface AcceptedLabel {
  id: string;
  row: number;
  label: string | number;
  entry: TrackedRequest;
}

export interface FeedbackResult {
  accepted: number;
}

export const DEFAULT_MAX_TRACKED_BYTES = 64 * 1024 * 1024;

function mebibytes(bytes: number): string {
  return bytes >= 2 ** 20 ? `${Math.round(bytes / 2 ** 20)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/** A rough heap size of a tracked request: Map slot and objects, the id, one flag byte and one prediction per row. */
function trackedBytesOf(id: string, entry: TrackedRequest): number {
  let bytes = 160 + 2 * id.length + entry.labelled.length;
  for (const p of entry.predictions ?? []) bytes += typeof p === "string" ? 32 + 2 * p.length : 16;
  return bytes;
}

export class TrafficMonitor {
  private readonly meta: ModelMetadata;
  private readonly checkLabel: (value: FeedbackLabel, where: string) => string | number;
  private readonly reference: DatasetProfile;
  private readonly referencePredictions: DatasetProfile;
  private readonly calibration: { features: DriftCalibration; predictions: DriftCalibration } | undefined;
  private readonly outputs: string[];
  /** The version's PCA and, per its feature, the column of a decoded row that feeds it. */
  private readonly pca: { reconstruction: PcaReconstruction; columns: number[] } | undefined;
  private readonly lossEstimator: LossEstimator | undefined;
  /** Where the version's estimate was fitted: its rows are checked against it (reference-support.ts). */
  private readonly support: ReferenceSupport | undefined;
  private readonly now: () => number;
  private queue: CapturedExchange[] = [];
  private open: Window;
  private closed: Window[] = [];
  private readonly tracked = new Map<string, TrackedRequest>();
  private trackedBytes = 0;
  /** Ids claimed by requests in flight or queued, not yet in `tracked`. */
  private readonly pending = new Set<string>();
  /**
   * feedbackOutsideWindows: labels accepted (and logged, for retraining) for requests whose window is no longer kept
   * (older than windowsKept closed windows, or served before a restart): counted in no window's metrics, since
   * adding them to the open window would score it on requests it never served.
   */
  readonly totals = { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0, feedbackOutsideWindows: 0 };
  /** Exchanges that could not be recorded (undecodable bodies), for the metrics endpoint. */
  unrecorded = 0;

  constructor(private readonly options: MonitorOptions) {
    this.meta = options.meta;
    this.checkLabel = labelChecker(options.meta);
    const ref = options.reference ?? (options.meta.referenceProfile as ReferenceProfileJSON);
    this.reference = DatasetProfile.fromJSON(ref.features);
    this.referencePredictions = DatasetProfile.fromJSON(ref.predictions);
    if (ref.calibration) {
      this.calibration = {
        features: DriftCalibration.fromJSON(ref.calibration.features, "reference calibration.features"),
        predictions: DriftCalibration.fromJSON(ref.calibration.predictions, "reference calibration.predictions"),
      };
    }
    this.outputs = outputNames(options.meta);
    const loss = options.meta.lossEstimator;
    // An estimator whose inputs do not match the model's encoding would read the wrong columns: none then.
    if (loss && options.meta.target && loss.inputs === encodedWidth(options.meta.features) + 1) this.lossEstimator = new LossEstimator(loss);
    // An estimate is trusted only where the model was trained: its windows count rows beyond the reference's range.
    if ((options.meta.classes && options.meta.probabilityCalibration) || this.lossEstimator)
      this.support = new ReferenceSupport(
        this.reference,
        options.meta.features.map((f) => f.name),
      );
    const multivariate = options.meta.multivariateReference;
    if (multivariate) {
      const reconstruction = new PcaReconstruction(multivariate);
      const names = options.meta.features.map((f) => f.name);
      this.pca = { reconstruction, columns: reconstruction.features.map((f) => names.indexOf(f.name)) };
    }
    this.now = options.now ?? Date.now;
    this.open = this.newWindow(this.now(), 0);
  }

  get version(): string {
    return this.meta.version;
  }

  /** Hot path: counts the request on the open window (no parsing here). */
  countRequest(outcome: RequestOutcome): void {
    this.totals.requests++;
    this.open.requests++;
    if (outcome === "failed") {
      this.totals.failedRequests++;
      this.open.failedRequests++;
    } else if (outcome === "rejected") {
      this.totals.rejectedRequests++;
      this.open.rejectedRequests++;
    }
  }

  /**
   * Hot path: reserves `id` for a request about to be proxied. False when the id is tracked (within the horizon:
   * maxTracked / maxTrackedBytes, restored from the log after a restart) or in flight: reusing it would join
   * feedback to another request's rows.
   */
  claimRequestId(id: string): boolean {
    if (this.pending.has(id) || this.tracked.has(id)) return false;
    this.pending.add(id);
    return true;
  }

  /** Frees a claimed id whose request will not be recorded (upstream error, non-200 answer). */
  releaseRequestId(id: string): void {
    this.pending.delete(id);
  }

  /** Hot path: remembers a finished infer exchange for the next batch. */
  enqueue(exchange: CapturedExchange): void {
    this.queue.push(exchange);
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Processes every queued exchange: profiles, log records, ids for feedback. */
  drain(): void {
    const batch = this.queue;
    this.queue = [];
    for (const ex of batch) {
      try {
        this.record(ex);
      } catch {
        this.unrecorded++;
      } finally {
        if (ex.id !== undefined) this.pending.delete(ex.id);
      }
    }
  }

  /** Closes the open window when its time bound passed (called periodically). */
  tick(): void {
    this.rotateIfDue(this.now());
  }

  private record(ex: CapturedExchange): void {
    if (ex.status !== 200 || !ex.requestBody || !ex.responseBody) {
      if (ex.status === 200) this.unrecorded++;
      return;
    }
    const request = decodeInferRequest(ex.request ?? JSON.parse(ex.requestBody.toString("utf8")), this.meta.features, this.outputs, Infinity);
    const response = JSON.parse(ex.responseBody.toString("utf8")) as { id?: unknown };
    const id = ex.id ?? (typeof response.id === "string" ? response.id : ex.responseId);
    if (!id) {
      this.unrecorded++;
      return;
    }
    const predictions = predictionsFromResponse(response, this.meta.classes);
    this.rotateIfDue(ex.ts);
    const window = this.open;
    const names = this.meta.features.map((f) => f.name);
    const rows: unknown[][] = [];
    for (let r = 0; r < request.rows; r++) {
      const values = request.columns.map((c) => c[r] ?? null);
      rows.push(values);
      const row: Record<string, unknown> = {};
      names.forEach((n, i) => (row[n] = values[i]));
      window.features.addRow(row);
      if (predictions) window.predictions.addRow({ [PREDICTION_COLUMN]: predictions[r] });
      if (this.pca && window.reconstruction) window.reconstruction.add(this.pca.reconstruction.errorOf(this.pca.columns.map((c) => values[c])));
      if (this.support && window.support) {
        window.support.rows++;
        if (this.support.outside(values)) window.support.outside++;
      }
    }
    const temperature = this.meta.probabilityCalibration?.temperature;
    if (window.estimate && temperature !== undefined) {
      for (const p of probabilityRows(response, request.rows, window.estimate.classes.length) ?? []) window.estimate.add(temperatureScaled(p, temperature));
    }
    if (window.lossEstimate && predictions) this.estimateLoss(window.lossEstimate, request.columns, predictions);
    window.rows += request.rows;
    this.totals.rows += request.rows;
    this.options.requestLog.append({ kind: "inference", id, ts: ex.ts, version: this.meta.version, rows, predictions: predictions ?? [] });
    this.track(id, { predictions, labelled: new Uint8Array(request.rows), window: window.seq });
    this.rotateIfDue(ex.ts);
  }

  /** Adds each row's predicted |error| and error² (the model's encoding of its inputs, then its prediction). */
  private estimateLoss(estimate: LossEstimate, columns: unknown[][], predictions: (string | number)[]): void {
    const features = this.meta.features;
    const rows = predictions.length;
    const encoded = encodeColumns(features, columns, rows, (f, r) => `row ${r} column "${f}"`);
    const width = encodedWidth(features);
    for (let r = 0; r < rows; r++) {
      const input = lossEstimatorInput(encoded.subarray(r * width, (r + 1) * width), Number(predictions[r]), this.meta.target!);
      estimate.add(this.lossEstimator!.predict(input));
    }
  }

  private track(id: string, entry: TrackedRequest): void {
    // Only a log written before ids were claimed can repeat one; the newest wins and moves to the newest position.
    this.forget(id);
    entry.bytes = trackedBytesOf(id, entry);
    this.tracked.set(id, entry);
    this.trackedBytes += entry.bytes;
    const maxBytes = this.options.maxTrackedBytes ?? DEFAULT_MAX_TRACKED_BYTES;
    while (this.tracked.size > this.options.maxTracked || (this.trackedBytes > maxBytes && this.tracked.size > 1)) {
      this.forget(this.tracked.keys().next().value as string);
    }
  }

  private forget(id: string): void {
    const entry = this.tracked.get(id);
    if (!entry) return;
    this.tracked.delete(id);
    this.trackedBytes -= entry.bytes ?? 0;
  }

  /** Rebuilds the feedback index from an existing log (after a restart): ids, predictions, labelled rows. */
  restore(record: LogRecord): void {
    if (record.kind === "inference") {
      this.track(record.id, {
        predictions: record.predictions.length > 0 ? record.predictions : undefined,
        labelled: new Uint8Array(record.rows.length),
        window: undefined,
      });
    } else if (record.kind === "feedback") {
      const entry = this.tracked.get(record.id);
      if (entry && record.row < entry.labelled.length) entry.labelled[record.row] = 1;
    }
  }

  get trackedRequests(): number {
    return this.tracked.size;
  }

  /** Estimated heap bytes of the feedback index (bounded by maxTrackedBytes). */
  get trackedRequestBytes(): number {
    return this.trackedBytes;
  }

  /**
   * Validates a feedback body, then logs every label durably (fsync) before counting it. All or nothing:
   * one bad item refuses the whole batch (a Refusal naming it), and nothing of it is stored.
   */
  async applyFeedback(body: unknown): Promise<FeedbackResult> {
    this.drain();
    let accepted: AcceptedLabel[];
    try {
      accepted = this.validateFeedback(body);
    } catch (err) {
      this.totals.feedbackRejected++;
      throw err;
    }
    const ts = this.now();
    for (const a of accepted) {
      a.entry.labelled[a.row] = 1;
      this.options.requestLog.append({ kind: "feedback", id: a.id, row: a.row, label: a.label, ts });
    }
    try {
      await this.options.requestLog.commit();
    } catch (err) {
      for (const a of accepted) a.entry.labelled[a.row] = 0;
      // The file system's message names paths: it goes to the log (as the cause), not to the caller.
      const failed = new Refusal("not-recorded", "feedback not recorded: the request log could not be written; retry shortly");
      failed.cause = err;
      throw failed;
    }
    for (const a of accepted) {
      // Late labels land in the closed window their request was served in, so its realised metric is complete.
      const window = this.windowOf(a.entry.window);
      const predicted = a.entry.predictions?.[a.row];
      if (!window) this.totals.feedbackOutsideWindows++;
      else if (predicted !== undefined) window.labelled.add(a.label, predicted);
    }
    this.totals.feedback += accepted.length;
    return { accepted: accepted.length };
  }

  /** Every label of a feedback body, checked against known requests and earlier feedback; throws Refusal on the first bad one. */
  private validateFeedback(body: unknown): AcceptedLabel[] {
    const accepted: AcceptedLabel[] = [];
    const seen = new Set<string>();
    for (const item of parseFeedbackBody(body)) {
      for (const one of this.labelsOf(item)) {
        const key = `${one.id}\u0000${one.row}`;
        if (one.entry.labelled[one.row] || seen.has(key))
          throw new Refusal("duplicate", `${item.where}: request "${one.id}" row ${one.row} already has feedback`);
        seen.add(key);
        accepted.push(one);
      }
    }
    return accepted;
  }

  /** The rows an item labels, once its id is known and its rows and labels fit that request and the model. */
  private labelsOf(item: FeedbackItem): AcceptedLabel[] {
    const { where, id } = item;
    const entry = this.tracked.get(id);
    if (!entry) {
      throw new Refusal(
        "unknown-id",
        `${where}: unknown request id "${id}" (not served through this sidecar, or forgotten: it keeps the last ${this.options.maxTracked} requests, up to ${mebibytes(this.options.maxTrackedBytes ?? DEFAULT_MAX_TRACKED_BYTES)} of them)`,
      );
    }
    const rows = entry.labelled.length;
    if ("labels" in item) {
      if (item.labels.length !== rows) throw new Refusal("invalid", `${where}: "labels" must be an array of ${rows} label(s), one per row of request "${id}"`);
      return item.labels.map((l, row) => ({ id, row, label: this.checkLabel(l, `${where}.labels[${row}]`), entry }));
    }
    if (item.row === undefined && rows > 1) throw new Refusal("invalid", `${where}: request "${id}" has ${rows} rows; give "row" or "labels"`);
    const row = item.row ?? 0;
    if (row >= rows) throw new Refusal("invalid", `${where}: "row" must be an integer from 0 to ${rows - 1} (request "${id}" has ${rows} row(s))`);
    return [{ id, row, label: this.checkLabel(item.label, `${where}.label`), entry }];
  }

  /** The open or a kept closed window by its seq (closed windows are consecutive, oldest first). */
  private windowOf(seq: number | undefined): Window | undefined {
    if (seq === undefined) return undefined;
    if (seq === this.open.seq) return this.open;
    const w = this.closed[seq - (this.closed[0]?.seq ?? 0)];
    return w?.seq === seq ? w : undefined;
  }

  private newWindow(start: number, seq: number): Window {
    const featureSchema = this.meta.features.map((f) => ({ name: f.name, type: f.type }));
    const predictionType = this.meta.task === "classification" ? "categorical" : "numeric";
    const ms = this.options.windowMs;
    return {
      seq,
      start,
      closesAt: ms > 0 ? (Math.floor(start / ms) + 1) * ms : Infinity,
      requests: 0,
      failedRequests: 0,
      rejectedRequests: 0,
      rows: 0,
      features: new DatasetProfile(featureSchema),
      predictions: new DatasetProfile([{ name: PREDICTION_COLUMN, type: predictionType }]),
      labelled: new LabelledOutcomes(this.meta.task),
      // CBPE needs calibrated probabilities: versions trained before calibration get no estimate.
      ...(this.meta.classes && this.meta.probabilityCalibration ? { estimate: new ConfidenceEstimate(this.meta.classes) } : {}),
      ...(this.lossEstimator ? { lossEstimate: new LossEstimate() } : {}),
      ...(this.pca ? { reconstruction: new ReconstructionErrorSum(this.pca.reconstruction.json.band) } : {}),
      ...(this.support ? { support: { rows: 0, outside: 0 } } : {}),
    };
  }

  private rotateIfDue(now: number): void {
    const w = this.open;
    const full = this.options.windowRows > 0 && w.rows >= this.options.windowRows;
    if (!full && now < w.closesAt) return;
    w.end = full ? now : Math.min(now, w.closesAt);
    w.drift = this.driftOf(w);
    this.closed.push(w);
    if (this.closed.length > this.options.windowsKept) this.closed.splice(0, this.closed.length - this.options.windowsKept);
    this.open = this.newWindow(w.end, w.seq + 1);
  }

  private numericPredictions(): boolean {
    return this.referencePredictions.features.get(PREDICTION_COLUMN)?.type === "numeric";
  }

  private driftOf(w: Window): DriftReport | null {
    if (w.rows === 0) return null;
    const { features, ...perFeature } = this.options.drift ?? { method: "auto" };
    const calibrated = (c: DriftCalibration | undefined) => (c ? { calibration: c } : {});
    const report = compare(this.reference, w.features, { ...perFeature, ...calibrated(this.calibration?.features), ...(features ? { features } : {}) });
    // monitoring.drift.method names the inputs' test; a classifier's predicted class is categorical, which ks and
    // wasserstein cannot compare (the window would throw at every close): it keeps the automatic choice then.
    const predictionMethod = NUMERIC_ONLY_METHODS.has(perFeature.method ?? "auto") && !this.numericPredictions() ? { method: "auto" as const } : {};
    const prediction = compare(this.referencePredictions, w.predictions, {
      ...perFeature,
      ...predictionMethod,
      ...calibrated(this.calibration?.predictions),
      predictionFeatures: [PREDICTION_COLUMN],
    });
    const strip = <T extends { histogram?: unknown }>(f: T): T => {
      const { histogram: _histogram, ...rest } = f;
      return rest as T;
    };
    return {
      ...report,
      features: report.features.map(strip),
      prediction: prediction.prediction.map(strip),
      predictionDrift: prediction.predictionDrift,
    };
  }

  /** Drift of the newest closed window with rows, else of the open window (for metrics). */
  latestDrift(): DriftReport | null {
    for (let i = this.closed.length - 1; i >= 0; i--) if (this.closed[i]!.drift) return this.closed[i]!.drift!;
    return this.driftOf(this.open);
  }

  /** Metrics of the newest window that has labelled outcomes (open window included). */
  latestMetrics(): Record<string, number> | undefined {
    for (const w of [this.open, ...[...this.closed].reverse()]) {
      if (w.labelled.samples > 0) return labelledMetrics(w.labelled.toJSON());
    }
    return undefined;
  }

  /** Label-free estimate (estimatedAccuracy, estimatedF1) of the newest window that has one (open window included). */
  latestEstimate(): Record<string, number> | undefined {
    for (const w of [this.open, ...[...this.closed].reverse()]) if (w.estimate && w.rows > 0) return estimatedMetrics(w.estimate.toJSON());
    return undefined;
  }

  /** Labelled rows / rows of the newest closed window (feedback for the open one is still arriving), else of the open one. */
  latestLabelledShare(): number | undefined {
    const w = [...this.closed].reverse().find((c) => c.rows > 0) ?? this.open;
    return w.rows > 0 ? w.labelled.samples / w.rows : undefined;
  }

  get openWindowRows(): number {
    return this.open.rows;
  }

  get openWindowLabelled(): number {
    return this.open.labelled.samples;
  }

  summary(): SidecarSummary {
    this.drain();
    const now = this.now();
    this.rotateIfDue(now);
    const windows = [...this.closed, this.open].map((w) => this.windowSummary(w, now));
    return {
      format: SUMMARY_FORMAT,
      pod: this.options.pod,
      model: this.meta.model,
      version: this.meta.version,
      task: this.meta.task,
      generatedAt: new Date(now).toISOString(),
      totals: { ...this.totals },
      windows,
    };
  }

  private windowSummary(w: Window, now: number): WindowSummary {
    const closed = w !== this.open;
    return {
      start: new Date(w.start).toISOString(),
      end: new Date(closed ? w.end! : now).toISOString(),
      closed,
      requests: w.requests,
      failedRequests: w.failedRequests,
      rejectedRequests: w.rejectedRequests,
      rows: w.rows,
      features: w.features.toJSON(),
      predictions: w.predictions.toJSON(),
      labelled: w.labelled.toJSON(),
      ...(w.estimate ? { estimate: w.estimate.toJSON() } : {}),
      ...(w.lossEstimate ? { lossEstimate: w.lossEstimate.toJSON() } : {}),
      ...(w.reconstruction ? { reconstruction: w.reconstruction.toJSON() } : {}),
      ...(w.support && this.support
        ? { support: { ...w.support, expectedShare: this.support.expectedShare, expectedShareSd: this.support.expectedShareSd } }
        : {}),
      metrics: { ...labelledMetrics(w.labelled.toJSON()), ...estimatedMetrics(w.estimate?.toJSON()), ...estimatedLossMetrics(w.lossEstimate?.toJSON()) },
      drift: closed ? (w.drift ?? null) : this.driftOf(w),
    };
  }
}
