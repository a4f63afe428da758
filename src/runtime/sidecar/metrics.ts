// The sidecar's Prometheus metrics: requests and their latency (whole, the model server's share, the sidecar's
// own), upstream errors, feedback results, the request log's writes and bounds, and gauges read from the traffic
// monitor's newest windows when Prometheus scrapes. Every series carries namespace and modeldeployment (default
// labels, from --modeldeployment and the pod's namespace), so the dashboard and the alerts select a ModelDeployment the same way on the sidecar's and the
// operator's metrics. Labels are bounded: route, code, reason, result, version, feature (the model's schema),
// method, metric — never request data.
import type { ServerResponse } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DroppedTotals } from "../log-retention.js";
import type { LogShipStats } from "../log-shipping.js";
import type { RequestLogStats } from "../request-log.js";
import type { MonitoringState } from "./monitoring-setup.js";

/** What the scrape-time gauges read: the monitoring state once set up, and the model's name. */
export interface MetricsSource {
  model: string;
  monitoring(): MonitoringState | undefined;
  /** The log shipper's counts, when the sidecar ships its log to an s3:// store. */
  shipping?(): LogShipStats | undefined;
}

/** The ModelDeployment a sidecar serves (`--modeldeployment`, env POD_NAMESPACE). */
export interface MetricsIdentity {
  /** Absent for a sidecar run by hand; Prometheus's target label then names the pod's namespace. */
  namespace?: string;
  modeldeployment: string;
}

const LATENCY_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "code">;
  readonly latency: Histogram<"route" | "code">;
  readonly upstreamErrors: Counter<"reason">;
  readonly feedbackTotal: Counter<"result">;
  readonly mirrorRequests: Counter<"outcome">;
  readonly mirrorFeedback: Counter<"outcome">;
  private readonly upstreamLatency: Histogram<"route">;
  private readonly addedLatency: Histogram<"route">;
  private readonly logDroppedCounters: Record<keyof DroppedTotals, Counter>;
  /** The model server's share of a proxied request, until the response finishes and the sidecar's share is known. */
  private readonly upstreamSeconds = new WeakMap<ServerResponse, number>();

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: "ballast_sidecar_" });
    // A sidecar run by hand serves no ModelDeployment: its series carry the model's name.
    this.identify({ modeldeployment: source.model });
    const registers = [this.registry];
    this.requests = new Counter({
      name: "ballast_sidecar_requests_total",
      help: "Requests answered by the sidecar, by route (infer, proxy, feedback, summary, ...) and status code.",
      labelNames: ["route", "code"],
      registers,
    });
    this.latency = new Histogram({
      name: "ballast_sidecar_request_duration_seconds",
      help: "Time from request start to response end at the sidecar (includes the model server for proxied routes).",
      labelNames: ["route", "code"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamLatency = new Histogram({
      name: "ballast_sidecar_upstream_duration_seconds",
      help: "Model server time of proxied requests as the sidecar sees it: from sending the request to the response's headers.",
      labelNames: ["route"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.addedLatency = new Histogram({
      name: "ballast_sidecar_added_latency_seconds",
      help: "What the sidecar adds to a proxied request: its whole duration minus the model server's share (reading, recording, relaying).",
      labelNames: ["route"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamErrors = new Counter({
      name: "ballast_sidecar_upstream_errors_total",
      help: "Proxied requests that failed to reach the model server or got a 5xx, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.feedbackTotal = new Counter({
      name: "ballast_sidecar_feedback_total",
      help: "Feedback labels by result: accepted, invalid, unknown-id, duplicate, unauthorized, error.",
      labelNames: ["result"],
      registers,
    });
    this.mirrorRequests = new Counter({
      name: "ballast_sidecar_mirror_requests_total",
      help: "Inference requests mirrored to a shadow candidate: sent (the shadow answered), dropped (queue full, never sent), failed (non-2xx, timeout, connection error).",
      labelNames: ["outcome"],
      registers,
    });
    this.mirrorFeedback = new Counter({
      name: "ballast_sidecar_mirror_feedback_total",
      help: "Feedback batches for mirrored requests forwarded to the shadow: sent, dropped (queue full), failed.",
      labelNames: ["outcome"],
      registers,
    });
    this.logDroppedCounters = {
      segments: new Counter({
        name: "ballast_sidecar_log_dropped_segments_total",
        help: "Sealed request log segments this sidecar deleted to keep the model's log within --log-max-bytes / --log-max-age.",
        registers,
      }),
      bytes: new Counter({
        name: "ballast_sidecar_log_dropped_bytes_total",
        help: "Bytes of the request log segments this sidecar deleted (size and age bounds).",
        registers,
      }),
      feedback: new Counter({
        name: "ballast_sidecar_log_dropped_feedback_total",
        help: "Feedback records (acknowledged labels) in the deleted segments: training data lost to the bounds.",
        registers,
      }),
    };
    this.registerLogMetrics(registers);
    this.registerShippingMetrics(registers);
    this.registerWindowGauges(registers);
  }

  /** Labels every series with the ModelDeployment this sidecar serves. */
  identify(identity: MetricsIdentity): void {
    this.registry.setDefaultLabels({ ...(identity.namespace ? { namespace: identity.namespace } : {}), modeldeployment: identity.modeldeployment });
  }

  /** Counts one request when its response has been sent; a proxied one also splits its time into server and sidecar. */
  observe(route: string, code: number, startedNs: bigint, res?: ServerResponse): void {
    this.observeAnswered(route, code, startedNs, res && this.upstreamSeconds.get(res));
  }

  /** observe, with the model server's part (seconds to its response headers) when it was asked. */
  observeAnswered(route: string, code: number, startedNs: bigint, upstream: number | undefined): void {
    const labels = { route, code: String(code) };
    const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
    if (upstream === undefined) return;
    this.upstreamLatency.observe({ route }, upstream);
    this.addedLatency.observe({ route }, Math.max(0, seconds - upstream));
  }

  /** The model server answered this proxied response's headers after `seconds`. */
  upstreamAnswered(res: ServerResponse, seconds: number): void {
    this.upstreamSeconds.set(res, seconds);
  }

  countLogDropped(dropped: DroppedTotals): void {
    for (const key of ["segments", "bytes", "feedback"] as const) this.logDroppedCounters[key].inc(dropped[key]);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** The request log's own counts, read from its stats when Prometheus scrapes. */
  private registerLogMetrics(registers: Registry[]): void {
    const stats = (): RequestLogStats | undefined => this.source.monitoring()?.requestLog.getStats();
    mirroredCounter(registers, stats, "ballast_sidecar_log_written_bytes_total", "Bytes this sidecar appended to the durable request log.", (s) => s.bytes);
    mirroredCounter(
      registers,
      stats,
      "ballast_sidecar_log_sealed_segments_total",
      "Request log segments this sidecar sealed (reached their size, or closed).",
      (s) => s.sealed,
    );
    mirroredCounter(
      registers,
      stats,
      "ballast_sidecar_log_syncs_total",
      "fdatasync calls on the request log (group commit: one per feedback burst).",
      (s) => s.syncs,
    );
    scrapedGauge(
      registers,
      stats,
      "ballast_sidecar_log_retained_bytes",
      "Bytes of the model's request log segments in this sidecar's scope after the last run of the bounds (compare with ballast_sidecar_log_max_bytes).",
      (s) => s.retainedBytes,
    );
    scrapedGauge(
      registers,
      stats,
      "ballast_sidecar_log_max_bytes",
      "The request log's size bound (--log-max-bytes): past it, the oldest sealed segments are deleted.",
      (s) => s.maxBytes,
    );
  }

  /** The log shipper's counts (s3:// stores), read from its stats when Prometheus scrapes; absent without a shipper. */
  private registerShippingMetrics(registers: Registry[]): void {
    const stats = (): LogShipStats | undefined => this.source.shipping?.();
    scrapedGauge(
      registers,
      stats,
      "ballast_sidecar_log_spool_bytes",
      "Bytes of request log segments on the pod's disk not yet shipped to the s3:// store (compare with ballast_sidecar_log_spool_max_bytes).",
      (s) => s.spoolBytes,
    );
    scrapedGauge(
      registers,
      stats,
      "ballast_sidecar_log_spool_max_bytes",
      "The spool's bound (--log-max-bytes when shipping): at it, feedback is refused (503) until uploads catch up.",
      (s) => s.maxSpoolBytes,
    );
    scrapedGauge(
      registers,
      stats,
      "ballast_sidecar_log_spool_full",
      "1 while the spool is at its bound (feedback refused, inference not logged), else 0.",
      (s) => (s.spoolFull ? 1 : 0),
    );
    mirroredCounter(
      registers,
      stats,
      "ballast_sidecar_log_shipped_segments_total",
      "Sealed request log segments uploaded to the s3:// store (confirmed) and then deleted locally.",
      (s) => s.shippedSegments,
    );
    mirroredCounter(registers, stats, "ballast_sidecar_log_shipped_bytes_total", "Bytes of the segments shipped to the s3:// store.", (s) => s.shippedBytes);
    mirroredCounter(
      registers,
      stats,
      "ballast_sidecar_log_ship_failures_total",
      "Segment uploads to the s3:// store that failed (each is retried with back-off; the segment stays on disk).",
      (s) => s.failures,
    );
  }

  /** Gauges computed when Prometheus scrapes, from the monitor's newest windows. */
  private registerWindowGauges(registers: Registry[]): void {
    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void,
    ): void => {
      const g: Gauge<L> = new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect: () => {
          g.reset();
          fill((labels, value) => g.set(labels, value));
        },
      });
    };
    const state = () => this.source.monitoring();
    const monitor = () => state()?.monitor;
    const version = (): { version: string } => ({ version: state()?.meta.version ?? "unknown" });
    gauge(
      "ballast_model_info",
      "The model version behind this sidecar (value 1), the model's name and the model server's tfjs backend.",
      ["model", "version", "backend"],
      (set) => {
        const s = state();
        if (s) set({ model: this.source.model, ...version(), backend: s.backend }, 1);
      },
    );
    gauge(
      "ballast_feature_drift",
      "Drift statistic of each feature in the newest closed window (the open one before any closed) against the reference profile.",
      ["version", "feature", "method"],
      (set) => {
        for (const f of monitor()?.latestDrift()?.features ?? [])
          if (f.statistic !== null) set({ ...version(), feature: f.name, method: f.method }, f.statistic);
      },
    );
    gauge(
      "ballast_feature_drift_detected",
      "1 when the feature's drift statistic crossed its threshold in that window, else 0.",
      ["version", "feature", "method"],
      (set) => {
        for (const f of monitor()?.latestDrift()?.features ?? [])
          if (f.statistic !== null) set({ ...version(), feature: f.name, method: f.method }, f.drift ? 1 : 0);
      },
    );
    gauge("ballast_prediction_drift", "Drift statistic of the predictions in that window against the training predictions.", ["version", "method"], (set) => {
      for (const f of monitor()?.latestDrift()?.prediction ?? []) if (f.statistic !== null) set({ ...version(), method: f.method }, f.statistic);
    });
    gauge("ballast_drift_share_ratio", "Share of evaluated features that drifted in that window (0–1).", ["version"], (set) => {
      const d = monitor()?.latestDrift();
      if (d) set(version(), d.driftShare);
    });
    gauge(
      "ballast_model_quality",
      "Realised quality of the newest window with feedback: accuracy, precision, recall, f1, f1Weighted (classification) or mae, rmse, r2 (regression).",
      ["version", "metric"],
      (set) => {
        for (const [metric, value] of Object.entries(monitor()?.latestMetrics() ?? {})) if (metric !== "samples") set({ ...version(), metric }, value);
      },
    );
    gauge(
      "ballast_model_quality_estimated",
      "Label-free estimate of the quality (accuracy, f1) from the calibrated class probabilities of the newest window's rows; absent without calibration.",
      ["version", "metric"],
      (set) => {
        const e = monitor()?.latestEstimate();
        if (e?.estimatedAccuracy !== undefined) set({ ...version(), metric: "accuracy" }, e.estimatedAccuracy);
        if (e?.estimatedF1 !== undefined) set({ ...version(), metric: "f1" }, e.estimatedF1);
      },
    );
    gauge(
      "ballast_window_labelled_ratio",
      "Labelled rows / rows of the newest closed window (the open one before any closed): how much of the traffic gets feedback.",
      ["version"],
      (set) => {
        const share = monitor()?.latestLabelledShare();
        if (share !== undefined) set(version(), share);
      },
    );
    gauge(
      "ballast_window_samples",
      "Samples in the open window: rows (inference rows profiled) and labelled (rows with feedback).",
      ["version", "kind"],
      (set) => {
        const m = monitor();
        if (!m) return;
        set({ ...version(), kind: "rows" }, m.openWindowRows);
        set({ ...version(), kind: "labelled" }, m.openWindowLabelled);
      },
    );
    gauge(
      "ballast_robustness_ratio",
      "1 - failed requests / served requests since the sidecar started (a failed request: upstream unreachable, timeout or 5xx).",
      ["version"],
      (set) => {
        const t = monitor()?.totals;
        if (t && t.requests > 0) set(version(), 1 - t.failedRequests / t.requests);
      },
    );
  }
}

/** A counter that mirrors a running total kept elsewhere: at each scrape it adds only the difference. */
function mirroredCounter<S>(registers: Registry[], stats: () => S | undefined, name: string, help: string, read: (s: S) => number): void {
  let counted = 0;
  const c: Counter = new Counter({
    name,
    help,
    registers,
    collect: () => {
      const s = stats();
      if (!s || read(s) <= counted) return;
      c.inc(read(s) - counted);
      counted = read(s);
    },
  });
}

/** A gauge set from a value kept elsewhere at each scrape (absent until there is one). */
function scrapedGauge<S>(registers: Registry[], stats: () => S | undefined, name: string, help: string, read: (s: S) => number): void {
  const g: Gauge = new Gauge({
    name,
    help,
    registers,
    collect: () => {
      const s = stats();
      if (s) g.set(read(s));
    },
  });
}
