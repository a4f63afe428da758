// The sidecar's Prometheus metrics: request counters and latency, upstream errors, feedback results, what the
// log bounds deleted, and gauges read from the traffic monitor's newest windows when Prometheus scrapes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DroppedTotals } from "../log-retention.js";
import type { MonitoringState } from "./monitoring-setup.js";

/** What the scrape-time gauges read: the monitoring state once set up, and the model's name. */
export interface MetricsSource {
  model: string;
  monitoring(): MonitoringState | undefined;
}

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "code">;
  readonly latency: Histogram<"route" | "code">;
  readonly upstreamErrors: Counter<"reason">;
  readonly feedbackTotal: Counter<"result">;
  readonly mirrorRequests: Counter<"outcome">;
  readonly mirrorFeedback: Counter<"outcome">;
  private readonly logDroppedCounters: Record<keyof DroppedTotals, Counter>;

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: "ballast_sidecar_" });
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
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: "ballast_sidecar_upstream_errors_total",
      help: "Proxied requests that failed to reach the model server or got a 5xx, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.feedbackTotal = new Counter({
      name: "ballast_feedback_total",
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
    this.registerScrapeGauges(registers);
  }

  /** Counts one request when its response has been sent. */
  observe(route: string, code: number, startedNs: bigint): void {
    const labels = { route, code: String(code) };
    this.requests.inc(labels);
    this.latency.observe(labels, Number(process.hrtime.bigint() - startedNs) / 1e9);
  }

  countLogDropped(dropped: DroppedTotals): void {
    for (const key of ["segments", "bytes", "feedback"] as const) this.logDroppedCounters[key].inc(dropped[key]);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Gauges computed when Prometheus scrapes, from the monitor's newest windows. */
  private registerScrapeGauges(registers: Registry[]): void {
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
    const model = (): { model: string; version: string } => ({ model: this.source.model, version: state()?.meta.version ?? "unknown" });
    gauge(
      "ballast_model_info",
      "The model version behind this sidecar (value 1) and the model server's tfjs backend.",
      ["model", "version", "backend"],
      (set) => {
        const s = state();
        if (s) set({ ...model(), backend: s.backend }, 1);
      },
    );
    gauge(
      "ballast_feature_drift",
      "Drift statistic of each feature in the newest closed window (the open one before any closed) against the reference profile.",
      ["model", "version", "feature", "method"],
      (set) => {
        for (const f of monitor()?.latestDrift()?.features ?? []) if (f.statistic !== null) set({ ...model(), feature: f.name, method: f.method }, f.statistic);
      },
    );
    gauge(
      "ballast_feature_drift_detected",
      "1 when the feature's drift statistic crossed its threshold in that window, else 0.",
      ["model", "version", "feature", "method"],
      (set) => {
        for (const f of monitor()?.latestDrift()?.features ?? [])
          if (f.statistic !== null) set({ ...model(), feature: f.name, method: f.method }, f.drift ? 1 : 0);
      },
    );
    gauge(
      "ballast_prediction_drift",
      "Drift statistic of the predictions in that window against the training predictions.",
      ["model", "version", "method"],
      (set) => {
        for (const f of monitor()?.latestDrift()?.prediction ?? []) if (f.statistic !== null) set({ ...model(), method: f.method }, f.statistic);
      },
    );
    gauge("ballast_dataset_drift_share", "Share of evaluated features that drifted in that window.", ["model", "version"], (set) => {
      const d = monitor()?.latestDrift();
      if (d) set(model(), d.driftShare);
    });
    gauge(
      "ballast_model_quality",
      "Live quality of the newest window with feedback: accuracy, precision, recall, f1 (classification) or mae, rmse, r2 (regression); samples = labelled rows.",
      ["model", "version", "metric"],
      (set) => {
        for (const [metric, value] of Object.entries(monitor()?.latestMetrics() ?? {})) set({ ...model(), metric }, value);
      },
    );
    gauge(
      "ballast_window_samples",
      "Samples in the open window: rows (inference rows profiled) and labelled (rows with feedback).",
      ["model", "version", "kind"],
      (set) => {
        const m = monitor();
        if (!m) return;
        set({ ...model(), kind: "rows" }, m.openWindowRows);
        set({ ...model(), kind: "labelled" }, m.openWindowLabelled);
      },
    );
    gauge(
      "ballast_robustness",
      "1 - failed requests / served requests since the sidecar started (a failed request: upstream unreachable, timeout or 5xx).",
      ["model", "version"],
      (set) => {
        const t = monitor()?.totals;
        if (t && t.requests > 0) set(model(), 1 - t.failedRequests / t.requests);
      },
    );
    gauge("ballast_request_log_bytes", "Bytes appended to the durable request log since start.", [], (set) =>
      set({}, state()?.requestLog.getStats().bytes ?? 0),
    );
    gauge("ballast_request_log_syncs", "fdatasync calls on the request log since start (group commit: one per feedback burst).", [], (set) =>
      set({}, state()?.requestLog.getStats().syncs ?? 0),
    );
  }
}
