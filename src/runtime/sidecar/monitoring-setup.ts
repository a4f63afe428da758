// Start-up of the sidecar's monitoring: asks the model server which version it runs, reads that version's
// metadata and reference, opens the request log and restores the traffic monitor from it — retrying until it
// works, since the server and the store may come up after the sidecar. Also tracks the server's readiness.
import type { Logger } from "pino";
import type { SidecarSummary } from "../../monitoring/summary.js";
import type { DroppedTotals } from "../log-retention.js";
import type { LogShipStats } from "../log-shipping.js";
import { readMetadata, type ModelMetadata } from "../metadata.js";
import { driftOptions, loadReference, type MonitoringConfig } from "../monitoring-config.js";
import { RequestLog, readLog, type RequestLogOptions } from "../request-log.js";
import type { ModelStore, StoreOptions } from "../store.js";
import { TrafficMonitor } from "../traffic-monitor.js";
import type { UpstreamClient } from "./upstream.js";

/** Everything that exists once monitoring is set up; inference is held until then. */
export interface MonitoringState {
  meta: ModelMetadata;
  /** The model server's tfjs backend, as it reported it. */
  backend: string;
  requestLog: RequestLog;
  monitor: TrafficMonitor;
}

export interface MonitoringSetupOptions {
  upstream: UpstreamClient;
  store: ModelStore;
  storeOptions: StoreOptions;
  model: string;
  /** Version the server runs; default: asked from the server. */
  version?: string;
  config: MonitoringConfig | undefined;
  dataDir: string;
  logRoot?: string;
  requestLogOptions: Partial<RequestLogOptions>;
  pod: string;
  windowRows: number;
  windowMs: number;
  windowsKept: number;
  maxTracked: number;
  maxTrackedBytes?: number;
  logger: Logger;
  /** Called for each log segment the bounds delete. */
  onLogDropped(dropped: DroppedTotals): void;
  /** The log shipper's counts, when the log is shipped to an s3:// store. */
  shipping?: () => LogShipStats | undefined;
}

const RETRY_MS = 500;
const UPSTREAM_TIMEOUT_MS = 5000;

export class MonitoringSetup {
  private current: MonitoringState | undefined;
  /** Why monitoring is not set up yet (shown by the ready endpoint). */
  private initError = "waiting for the model server";
  private upstreamReady = false;
  private readonly logDropped: DroppedTotals = { segments: 0, bytes: 0, feedback: 0 };

  constructor(private readonly options: MonitoringSetupOptions) {}

  get state(): MonitoringState | undefined {
    return this.current;
  }

  get notReadyReason(): string {
    return this.initError;
  }

  get serverReady(): boolean {
    return this.upstreamReady;
  }

  /** The monitor's summary, its totals extended with what the log bounds dropped (numbers, so merging adds them). */
  summary(): SidecarSummary | undefined {
    const s = this.current?.monitor.summary();
    if (!s) return undefined;
    const shipped = this.options.shipping?.();
    return {
      ...s,
      totals: {
        ...s.totals,
        logDroppedSegments: this.logDropped.segments,
        logDroppedBytes: this.logDropped.bytes,
        logDroppedFeedback: this.logDropped.feedback,
        ...(shipped ? { logSpoolBytes: shipped.spoolBytes, logShipFailures: shipped.failures, logSpoolFull: shipped.spoolFull ? 1 : 0 } : {}),
      },
    };
  }

  /** One look at the model server's readiness (the sidecar's own readiness follows it). */
  async pollServerReadiness(): Promise<void> {
    try {
      this.upstreamReady = (await this.options.upstream.getJson("/v2/health/ready", 1000)).status === 200;
    } catch {
      this.upstreamReady = false;
    }
  }

  /** Retries until monitoring is set up or `stopped()` says to give up. */
  async run(stopped: () => boolean): Promise<void> {
    for (let attempt = 1; !stopped(); attempt++) {
      try {
        this.current = await this.setUp();
        return;
      } catch (err) {
        this.initError = (err as Error).message;
        if (attempt === 1 || attempt % 20 === 0)
          this.options.logger.warn({ event: "init-retry", attempt, error: (err as Error).message }, "sidecar not set up yet; retrying");
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private async setUp(): Promise<MonitoringState> {
    const { store, model, logger } = this.options;
    const described = await this.describeServedModel();
    const version = this.options.version ?? described.version;
    const meta = await readMetadata(store, model, version);
    const drift = driftOptions(this.options.config, meta);
    const reference = await loadReference(this.options.config, meta, this.options.storeOptions);
    const requestLog = await RequestLog.open(
      this.options.dataDir,
      { model, version, task: meta.task, label: meta.label, features: meta.features.map((f) => f.name) },
      {
        ...this.options.requestLogOptions,
        pod: this.options.pod,
        boundsRoot: this.options.logRoot,
        onDrop: (d) => {
          const dropped: DroppedTotals = { segments: 1, bytes: d.bytes, feedback: d.feedback };
          for (const key of ["segments", "bytes", "feedback"] as const) this.logDropped[key] += dropped[key];
          this.options.onLogDropped(dropped);
          logger.warn({ event: "log-dropped", ...d }, "request log segment deleted by the log bounds");
        },
        onEvent: (e) => {
          if (e.event === "log-sealed") logger.debug(e, "request log segment sealed");
          else if (e.event === "log-takeover") logger.warn(e, "took over this pod's request log (its container restarted)");
          else if (e.event === "log-failed")
            logger.error(e, "request log write failed: feedback is refused and the sidecar reports not ready until it recovers");
          else if (e.event === "log-recovered") logger.info(e, "request log writes again");
          else logger.warn(e, "could not apply the request log bounds");
        },
      },
    );
    const monitor = new TrafficMonitor({
      meta,
      windowRows: this.options.windowRows,
      windowMs: this.options.windowMs,
      windowsKept: this.options.windowsKept,
      maxTracked: this.options.maxTracked,
      ...(this.options.maxTrackedBytes !== undefined ? { maxTrackedBytes: this.options.maxTrackedBytes } : {}),
      pod: this.options.pod,
      requestLog,
      reference,
      drift,
    });
    let restored = 0;
    try {
      for await (const record of readLog(this.options.dataDir, (p) => logger.warn({ event: "log-problem", ...p }, "skipped an unreadable request log line"))) {
        monitor.restore(record);
        restored++;
      }
    } catch (err) {
      // The next attempt opens the log again; do not leave this handle behind.
      await requestLog.close();
      throw err;
    }
    logger.info(
      {
        event: "monitoring",
        model,
        version,
        restoredRecords: restored,
        trackedRequests: monitor.trackedRequests,
        dataDir: this.options.dataDir,
        logRoot: this.options.logRoot,
      },
      "monitoring started",
    );
    return { meta, backend: described.backend, requestLog, monitor };
  }

  private async describeServedModel(): Promise<{ version: string; backend: string }> {
    let answer: { status: number; body: unknown };
    try {
      answer = await this.options.upstream.getJson(`/v2/models/${encodeURIComponent(this.options.model)}`, UPSTREAM_TIMEOUT_MS);
    } catch {
      // The ready endpoint shows this reason to any caller: never the socket's address or error text.
      throw new Error("waiting for the model server");
    }
    const { status, body } = answer;
    if (status !== 200) throw new Error(`model server answered GET /v2/models/${this.options.model} with ${status}`);
    const described = (body ?? {}) as { versions?: unknown; parameters?: { backend?: unknown } };
    const version = Array.isArray(described.versions) && typeof described.versions[0] === "string" ? described.versions[0] : undefined;
    if (!version) throw new Error(`model server did not report a version for ${this.options.model}`);
    return { version, backend: typeof described.parameters?.backend === "string" ? described.parameters.backend : "unknown" };
  }

  /** Flushes what is queued and closes the log. */
  async close(): Promise<void> {
    this.current?.monitor.drain();
    await this.current?.requestLog.close();
  }
}
