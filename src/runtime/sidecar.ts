// `ballast sidecar`: a reverse proxy in front of `ballast serve` that monitors traffic, takes feedback and logs
// both durably. The proxy path only counts and copies bytes; parsing and profiling happen in batches afterwards.
import { randomUUID } from "node:crypto";
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { Pool, type Dispatcher } from "undici";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { sendErrorReply } from "./http-errors.js";
import { DEFAULT_MAX_BODY_BYTES, RequestError, closeGracefully, listen, parseJsonBody, readBody, sendError, sendJson, sendText } from "./http-json.js";
import type { SidecarSummary } from "../monitoring/summary.js";
import { SIDECAR_PATHS } from "../api/sidecar-paths.js";
import { readMetadata, type ModelMetadata } from "./metadata.js";
import { REQUEST_ID_HEADER, matchRoute } from "./model-server.js";
import { requestIdProblem } from "./oip.js";
import { RequestLog, readLog, type RequestLogOptions } from "./request-log.js";
import type { DroppedTotals } from "./log-retention.js";
import { driftOptions, loadReference, readMonitoringConfig, type MonitoringConfig } from "./monitoring-config.js";
import type { ModelStore, StoreOptions } from "./store.js";
import { Refusal } from "./refusal.js";
import { TrafficMonitor } from "./traffic-monitor.js";

export interface SidecarOptions {
  upstream: URL;
  store: ModelStore;
  model: string;
  /** Version the server runs; default: asked from the server (`GET /v2/models/<model>`). */
  version?: string;
  host: string;
  port: number;
  /** The pod's own request log directory. */
  dataDir: string;
  /** The model's `_log/` in a writable store, when the log lives there: the bounds cover every pod's directory in it. */
  logRoot?: string;
  windowRows: number;
  windowMs: number;
  windowsKept: number;
  maxTracked: number;
  /** Byte bound of the feedback index (TrafficMonitor maxTrackedBytes); default 64 MiB. */
  maxTrackedBytes?: number;
  log: Partial<RequestLogOptions>;
  /** Bodies larger than this are proxied but not inspected; feedback bodies above it get 413. */
  maxBodyBytes?: number;
  upstreamTimeoutMs: number;
  drainTimeoutMs?: number;
  pod: string;
  logger: Logger;
  /** The operator's monitoring.json (drift method/threshold, features, reference); optional. */
  monitoringConfig?: string;
  storeOptions?: StoreOptions;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);
const CALLER_ID_HEADERS = [REQUEST_ID_HEADER, "x-request-id"];
/** Set when the caller's request id was not usable and the sidecar assigned one: says why (the body's `id` is the new one). */
export const REQUEST_ID_REPLACED_HEADER = "ballast-request-id-replaced";
/** How often queued exchanges are profiled; the response never waits for it. */
const MONITOR_BATCH_MS = 50;

function forwardHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** The request id a caller asked for: the infer body's `id` (what the server answers with), else a header. */
function callerRequestId(headers: IncomingHttpHeaders, body: Buffer | undefined): { id?: string; request?: unknown } {
  // Parse only bodies that may carry an id: a key "id", literal or with \u escapes. Others stay bytes until the batch.
  if (body && (body.includes('"id"') || body.includes("\\u"))) {
    let request: unknown;
    try {
      request = JSON.parse(body.toString("utf8"));
    } catch {
      // The server answers 400; the id below only names the exchange.
    }
    const id = typeof request === "object" && request !== null ? (request as { id?: unknown }).id : undefined;
    if (typeof id === "string") return { id, request };
    if (request !== undefined) return { ...headerRequestId(headers), request };
  }
  return headerRequestId(headers);
}

function headerRequestId(headers: IncomingHttpHeaders): { id?: string } {
  for (const h of CALLER_ID_HEADERS) {
    const v = headers[h];
    if (typeof v === "string" && v !== "") return { id: v };
  }
  return {};
}

/** Proxied routes held until monitoring is set up: inference (it would go unrecorded) and the readiness that invites it. */
function heldUntilMonitoring(method: string | undefined, path: string): boolean {
  const kind = matchRoute(path)?.kind;
  return (method === "POST" && kind === "infer") || ((method === "GET" || method === "HEAD") && (kind === "ready" || kind === "model-ready"));
}

export class Sidecar {
  private readonly server: http.Server;
  private readonly pool: Pool;
  private monitor: TrafficMonitor | undefined;
  private requestLog: RequestLog | undefined;
  private meta: ModelMetadata | undefined;
  private upstreamReady = false;
  private upstreamBackend = "unknown";
  private config: MonitoringConfig | undefined;
  /** Why monitoring is not set up yet (shown by the ready endpoint). */
  private initError = "waiting for the model server";
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];
  /** Upstream failures are logged at most once a second (the rest counted in the next line): an outage floods otherwise. */
  private upstreamErrorLoggedAt = 0;
  private upstreamErrorsUnlogged = 0;
  private readonly maxBodyBytes: number;
  private readonly registry = new Registry();
  private readonly requests: Counter<"route" | "code">;
  private readonly latency: Histogram<"route" | "code">;
  private readonly upstreamErrors: Counter<"reason">;
  private readonly feedbackTotal: Counter<"result">;
  /** What the log's bounds deleted since start; reported in the summary totals and /metrics. */
  private readonly logDropped: DroppedTotals = { segments: 0, bytes: 0, feedback: 0 };
  private readonly logDroppedCounters: Record<keyof DroppedTotals, Counter>;

  constructor(private readonly options: SidecarOptions) {
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.pool = new Pool(options.upstream.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
    this.server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.handle(req, res));
    collectDefaultMetrics({ register: this.registry, prefix: "ballast_sidecar_" });
    const registers = [this.registry];
    this.requests = new Counter({ name: "ballast_sidecar_requests_total", help: "Requests answered by the sidecar, by route (infer, proxy, feedback, summary, ...) and status code.", labelNames: ["route", "code"], registers });
    this.latency = new Histogram({
      name: "ballast_sidecar_request_duration_seconds",
      help: "Time from request start to response end at the sidecar (includes the model server for proxied routes).",
      labelNames: ["route", "code"],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.upstreamErrors = new Counter({ name: "ballast_sidecar_upstream_errors_total", help: "Proxied requests that failed to reach the model server or got a 5xx, by reason.", labelNames: ["reason"], registers });
    this.feedbackTotal = new Counter({ name: "ballast_feedback_total", help: "Feedback labels by result: accepted, invalid, unknown-id, duplicate, error.", labelNames: ["result"], registers });
    this.logDroppedCounters = {
      segments: new Counter({ name: "ballast_sidecar_log_dropped_segments_total", help: "Sealed request log segments this sidecar deleted to keep the model's log within --log-max-bytes / --log-max-age.", registers }),
      bytes: new Counter({ name: "ballast_sidecar_log_dropped_bytes_total", help: "Bytes of the request log segments this sidecar deleted (size and age bounds).", registers }),
      feedback: new Counter({ name: "ballast_sidecar_log_dropped_feedback_total", help: "Feedback records (acknowledged labels) in the deleted segments: training data lost to the bounds.", registers }),
    };
    this.registerScrapeGauges(registers);
  }

  /** Gauges computed when Prometheus scrapes, from the monitor's newest windows. */
  private registerScrapeGauges(registers: Registry[]): void {
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void): void => {
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
    const model = (): { model: string; version: string } => ({ model: this.options.model, version: this.meta?.version ?? "unknown" });
    gauge("ballast_model_info", "The model version behind this sidecar (value 1) and the model server's tfjs backend.", ["model", "version", "backend"], (set) => {
      if (this.meta) set({ ...model(), backend: this.upstreamBackend }, 1);
    });
    gauge(
      "ballast_feature_drift",
      "Drift statistic of each feature in the newest closed window (the open one before any closed) against the reference profile.",
      ["model", "version", "feature", "method"],
      (set) => {
        for (const f of this.monitor?.latestDrift()?.features ?? []) if (f.statistic !== null) set({ ...model(), feature: f.name, method: f.method }, f.statistic);
      },
    );
    gauge("ballast_feature_drift_detected", "1 when the feature's drift statistic crossed its threshold in that window, else 0.", ["model", "version", "feature", "method"], (set) => {
      for (const f of this.monitor?.latestDrift()?.features ?? []) if (f.statistic !== null) set({ ...model(), feature: f.name, method: f.method }, f.drift ? 1 : 0);
    });
    gauge("ballast_prediction_drift", "Drift statistic of the predictions in that window against the training predictions.", ["model", "version", "method"], (set) => {
      for (const f of this.monitor?.latestDrift()?.prediction ?? []) if (f.statistic !== null) set({ ...model(), method: f.method }, f.statistic);
    });
    gauge("ballast_dataset_drift_share", "Share of evaluated features that drifted in that window.", ["model", "version"], (set) => {
      const d = this.monitor?.latestDrift();
      if (d) set(model(), d.driftShare);
    });
    gauge(
      "ballast_model_quality",
      "Live quality of the newest window with feedback: accuracy, precision, recall, f1 (classification) or mae, rmse, r2 (regression); samples = labelled rows.",
      ["model", "version", "metric"],
      (set) => {
        for (const [metric, value] of Object.entries(this.monitor?.latestMetrics() ?? {})) set({ ...model(), metric }, value);
      },
    );
    gauge("ballast_window_samples", "Samples in the open window: rows (inference rows profiled) and labelled (rows with feedback).", ["model", "version", "kind"], (set) => {
      if (!this.monitor) return;
      set({ ...model(), kind: "rows" }, this.monitor.openWindowRows);
      set({ ...model(), kind: "labelled" }, this.monitor.openWindowLabelled);
    });
    gauge(
      "ballast_robustness",
      "1 - failed requests / served requests since the sidecar started (a failed request: upstream unreachable, timeout or 5xx).",
      ["model", "version"],
      (set) => {
        const t = this.monitor?.totals;
        if (t && t.requests > 0) set(model(), 1 - t.failedRequests / t.requests);
      },
    );
    gauge("ballast_request_log_bytes", "Bytes appended to the durable request log since start.", [], (set) => set({}, this.requestLog?.getStats().bytes ?? 0));
    gauge("ballast_request_log_syncs", "fdatasync calls on the request log since start (group commit: one per feedback burst).", [], (set) =>
      set({}, this.requestLog?.getStats().syncs ?? 0),
    );
  }

  /** Binds at once (liveness), then connects to the model server and the store in the background. */
  async start(): Promise<{ host: string; port: number }> {
    // A malformed config is a deployment mistake: fail at once instead of retrying.
    if (this.options.monitoringConfig) this.config = await readMonitoringConfig(this.options.monitoringConfig);
    const address = await listen(this.server, this.options.host, this.options.port);
    this.options.logger.info({ event: "listening", ...address, upstream: this.options.upstream.origin }, "sidecar listening");
    this.timers.push(setInterval(() => void this.pollUpstream(), 1000));
    this.timers.push(
      setInterval(() => {
        if (this.monitor && this.monitor.queued > 0) this.monitor.drain();
      }, MONITOR_BATCH_MS),
    );
    this.timers.push(setInterval(() => this.monitor?.tick(), 1000));
    for (const t of this.timers) t.unref();
    await this.pollUpstream();
    void this.initialise();
    return address;
  }

  private async initialise(): Promise<void> {
    const { logger } = this.options;
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.setUpMonitoring();
        return;
      } catch (err) {
        this.initError = (err as Error).message;
        if (attempt === 1 || attempt % 20 === 0) logger.warn({ event: "init-retry", attempt, error: (err as Error).message }, "sidecar not set up yet; retrying");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async setUpMonitoring(): Promise<void> {
    const { store, model, logger } = this.options;
    const described = await this.describeUpstreamModel();
    const version = this.options.version ?? described.version;
    const meta = await readMetadata(store, model, version);
    const drift = driftOptions(this.config, meta);
    const reference = await loadReference(this.config, meta, this.options.storeOptions ?? {});
    const log = await RequestLog.open(
      this.options.dataDir,
      { model, version, task: meta.task, label: meta.label, features: meta.features.map((f) => f.name) },
      {
        ...this.options.log,
        pod: this.options.pod,
        boundsRoot: this.options.logRoot,
        onDrop: (d) => {
          const dropped: DroppedTotals = { segments: 1, bytes: d.bytes, feedback: d.feedback };
          for (const key of ["segments", "bytes", "feedback"] as const) {
            this.logDropped[key] += dropped[key];
            this.logDroppedCounters[key].inc(dropped[key]);
          }
          logger.warn({ event: "log-dropped", ...d }, "request log segment deleted by the log bounds");
        },
        onEvent: (e) => {
          if (e.event === "log-sealed") logger.debug(e, "request log segment sealed");
          else if (e.event === "log-takeover") logger.warn(e, "took over this pod's request log (its container restarted)");
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
      log,
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
      await log.close();
      throw err;
    }
    this.meta = meta;
    this.upstreamBackend = described.backend;
    this.requestLog = log;
    this.monitor = monitor;
    logger.info({ event: "monitoring", model, version, restoredRecords: restored, trackedRequests: monitor.trackedRequests, dataDir: this.options.dataDir, logRoot: this.options.logRoot }, "monitoring started");
  }

  /** The monitor's summary, its totals extended with what the log bounds dropped (numbers, so merging adds them). */
  private summary(): SidecarSummary {
    const s = this.monitor!.summary();
    return { ...s, totals: { ...s.totals, logDroppedSegments: this.logDropped.segments, logDroppedBytes: this.logDropped.bytes, logDroppedFeedback: this.logDropped.feedback } };
  }

  private async describeUpstreamModel(): Promise<{ version: string; backend: string }> {
    const res = await fetch(new URL(`/v2/models/${encodeURIComponent(this.options.model)}`, this.options.upstream), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`model server answered GET /v2/models/${this.options.model} with ${res.status}`);
    const body = (await res.json()) as { versions?: unknown; parameters?: { backend?: unknown } };
    const version = Array.isArray(body.versions) && typeof body.versions[0] === "string" ? body.versions[0] : undefined;
    if (!version) throw new Error(`model server did not report a version for ${this.options.model}`);
    return { version, backend: typeof body.parameters?.backend === "string" ? body.parameters.backend : "unknown" };
  }

  private async pollUpstream(): Promise<void> {
    try {
      const res = await fetch(new URL("/v2/health/ready", this.options.upstream), { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      this.upstreamReady = res.status === 200;
    } catch {
      this.upstreamReady = false;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await closeGracefully(this.server, this.options.drainTimeoutMs ?? 10_000);
    this.monitor?.drain();
    await this.requestLog?.close();
    await this.pool.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const route = this.routeName(req.method, path);
    res.on("finish", () => {
      const labels = { route, code: String(res.statusCode) };
      this.requests.inc(labels);
      this.latency.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    if (route === "infer" || route === "proxy") {
      if (!this.monitor && heldUntilMonitoring(req.method, path)) {
        // Answering before monitoring is set up would serve predictions nobody can give feedback on.
        sendError(res, 503, "sidecar is starting: inference is held until monitoring is set up; retry when /v2/health/ready is 200", { "retry-after": "1" });
        return;
      }
      this.proxy(req, res, route === "infer");
      return;
    }
    this.local(req, res, route).catch((err: unknown) => {
      const reply = sendErrorReply(res, err);
      if (reply.unexpected) this.options.logger.error({ event: "request-failed", err, path }, "sidecar request failed");
      else if (reply.status >= 500) this.options.logger.error({ event: "request-failed", status: reply.status, error: reply.body.error, cause: (err as Error).cause, path }, "sidecar request failed");
    });
  }

  private routeName(method: string | undefined, path: string): string {
    switch (path) {
      case SIDECAR_PATHS.live:
        return "live";
      case SIDECAR_PATHS.ready:
        return "ready";
      case SIDECAR_PATHS.feedback:
        return "feedback";
      case SIDECAR_PATHS.summary:
        return "summary";
      case SIDECAR_PATHS.metrics:
        return "metrics";
    }
    return method === "POST" && matchRoute(path)?.kind === "infer" ? "infer" : "proxy";
  }

  private async local(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    const wanted = route === "feedback" ? "POST" : "GET";
    if (req.method !== wanted) {
      req.resume();
      res.setHeader("allow", wanted);
      throw new RequestError(405, `method ${req.method} not allowed on ${req.url}; use ${wanted}`);
    }
    switch (route) {
      case "live":
        return sendJson(res, 200, { live: true });
      case "ready":
        if (!this.upstreamReady) return sendError(res, 503, "model server is not ready");
        if (!this.monitor) return sendError(res, 503, `sidecar is starting: ${this.initError}`);
        return sendJson(res, 200, { ready: true, model: this.options.model, version: this.meta!.version });
      case "metrics":
        return sendText(res, 200, this.registry.contentType, await this.registry.metrics());
      case "summary":
        if (!this.monitor) throw new RequestError(503, "sidecar is starting; no summary yet");
        return sendJson(res, 200, this.summary());
      case "feedback":
        return this.feedback(req, res);
    }
  }

  private async feedback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.monitor) throw new RequestError(503, "sidecar is starting; retry feedback shortly");
    try {
      const body = parseJsonBody(req, await readBody(req, this.maxBodyBytes));
      const result = await this.monitor.applyFeedback(body);
      this.feedbackTotal.inc({ result: "accepted" }, result.accepted);
      sendJson(res, 200, result);
    } catch (err) {
      const result = err instanceof Refusal && err.kind !== "not-recorded" ? err.kind : err instanceof RequestError && err.status < 500 ? "invalid" : "error";
      this.feedbackTotal.inc({ result });
      throw err;
    }
  }

  private proxy(req: IncomingMessage, res: ServerResponse, infer: boolean): void {
    const ts = Date.now();
    const headers = forwardHeaders(req.headers);
    const declared = Number(req.headers["content-length"]);
    // Infer bodies of known, bounded size are read whole (one write upstream, and the monitor needs them);
    // anything else streams through untouched.
    if (infer && Number.isFinite(declared) && declared <= this.maxBodyBytes) {
      const monitor = this.monitor!;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const caller = callerRequestId(req.headers, body);
        const id = this.assignRequestId(res, caller.id);
        headers[REQUEST_ID_HEADER] = id;
        if (!monitor.claimRequestId(id)) {
          monitor.countRequest("rejected");
          sendError(
            res,
            409,
            `request id "${id}" is already in use: an earlier inference through this sidecar has it, and feedback joins by id; send a new id (or none, and use the response's "id")`,
            { [REQUEST_ID_HEADER]: id },
          );
          return;
        }
        this.forward(req, res, headers, body, ts, id, { body, request: caller.request, claimed: true });
      });
      req.on("error", () => res.destroy());
      return;
    }
    const id = this.assignRequestId(res, headerRequestId(req.headers).id);
    headers[REQUEST_ID_HEADER] = id;
    const streamed = req.method === "GET" || req.method === "HEAD" ? null : req;
    this.forward(req, res, headers, streamed, ts, id, infer ? { body: null, claimed: false } : undefined);
  }

  /** The caller's id when it is a valid request id; else a new UUID, and the response says why the caller's was replaced. */
  private assignRequestId(res: ServerResponse, callerId: string | undefined): string {
    if (callerId === undefined) return randomUUID();
    const problem = requestIdProblem(callerId);
    if (problem === undefined) return callerId;
    res.setHeader(REQUEST_ID_REPLACED_HEADER, `the request id sent is ${problem}; use the response's id for feedback`);
    return randomUUID();
  }

  /**
   * Sends the request upstream and the response back. `captured` describes an infer call (body null: too large to
   * record; claimed: `id` is reserved in the monitor and must be released unless recorded); undefined otherwise.
   */
  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    headers: OutgoingHttpHeaders,
    body: Buffer | IncomingMessage | null,
    ts: number,
    id: string,
    captured: { body: Buffer | null; request?: unknown; claimed: boolean } | undefined,
  ): void {
    const infer = captured !== undefined;
    const release = (): void => {
      if (captured?.claimed) this.monitor?.releaseRequestId(id);
    };
    this.pool
      .request({
        path: req.url ?? "/",
        method: (req.method ?? "GET") as Dispatcher.HttpMethod,
        headers: headers as Record<string, string>,
        body,
        headersTimeout: this.options.upstreamTimeoutMs,
        bodyTimeout: this.options.upstreamTimeoutMs,
      })
      .then(
        (upstream) => {
          const status = upstream.statusCode;
          const out = forwardHeaders(upstream.headers as IncomingHttpHeaders);
          // The server did not read the rest of an oversized body; neither does the sidecar.
          if (status === 413) out.connection = "close";
          res.writeHead(status, out);
          const record = infer && status === 200 && captured.body !== null && this.monitor !== undefined;
          const chunks: Buffer[] = [];
          // Recorded infer responses are small: one res.end(body) is one write for headers and body together.
          upstream.body.on("data", (c: Buffer) => {
            if (record) chunks.push(c);
            else res.write(c);
          });
          upstream.body.on("error", () => {
            release();
            res.destroy();
          });
          upstream.body.on("end", () => {
            const responseBody = record ? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)) : undefined;
            res.end(responseBody);
            if (status >= 500) this.upstreamErrors.inc({ reason: `http-${status}` });
            if (!infer) return;
            this.monitor?.countRequest(status >= 500 ? "failed" : status >= 400 ? "rejected" : "ok");
            if (record) {
              const responseId = upstream.headers[REQUEST_ID_HEADER];
              this.monitor!.enqueue({
                ts,
                status,
                requestBody: captured.body,
                ...(captured.request !== undefined ? { request: captured.request } : {}),
                responseBody: responseBody!,
                ...(captured.claimed ? { id } : {}),
                ...(typeof responseId === "string" ? { responseId } : {}),
              });
            } else {
              release();
              if (status === 200) this.monitor?.enqueue({ ts, status, requestBody: null, responseBody: null });
            }
          });
        },
        (err: Error & { code?: string }) => {
          release();
          const reason = err.code === "UND_ERR_HEADERS_TIMEOUT" || err.code === "UND_ERR_BODY_TIMEOUT" ? "timeout" : err.code === "ECONNREFUSED" ? "connect" : "reset";
          this.upstreamErrors.inc({ reason });
          this.logUpstreamError(reason, err, req.url ?? "/");
          if (infer) this.monitor?.countRequest("failed");
          // The caller learns that the model server is unavailable, not where it is or what the socket said.
          const message = reason === "timeout" ? "model server did not answer in time" : "model server unavailable";
          if (!res.headersSent) sendError(res, 503, `${message}; retry shortly`, { [REQUEST_ID_HEADER]: id });
          else res.destroy();
        },
      );
  }

  private logUpstreamError(reason: string, err: Error & { code?: string }, path: string): void {
    const now = Date.now();
    if (now - this.upstreamErrorLoggedAt < 1000) {
      this.upstreamErrorsUnlogged++;
      return;
    }
    this.options.logger.warn(
      { event: "upstream-error", reason, code: err.code, error: err.message, upstream: this.options.upstream.origin, path, unloggedSinceLast: this.upstreamErrorsUnlogged },
      "request to the model server failed",
    );
    this.upstreamErrorLoggedAt = now;
    this.upstreamErrorsUnlogged = 0;
  }
}
