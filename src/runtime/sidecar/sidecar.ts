// `ballast sidecar`: a reverse proxy in front of `ballast serve` that monitors traffic, takes feedback and logs
// both durably. The proxy path only counts and copies bytes; parsing and profiling happen in batches afterwards.
// Two listeners: the public port (the Service's: inference, feedback, probes) and the monitoring port (summary and
// metrics, for the operator and Prometheus only; the operator also sets mirroring to a shadow candidate there).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import {
  DEFAULT_MAX_BODY_BYTES,
  RequestError,
  applyConnectionLimits,
  bind,
  closeGracefully,
  listen,
  parseJsonBody,
  readBody,
  sendError,
  sendJson,
  sendText,
} from "../http-json.js";
import { readMonitoringConfig, type MonitoringConfig } from "../monitoring-config.js";
import { SIDECAR_PATHS } from "../../api/sidecar-paths.js";
import { pathOf } from "../oip-routes.js";
import { LogShipper, type LogShipEvent, type LogShipTarget } from "../log-shipping.js";
import { DEFAULT_LOG_OPTIONS, type RequestLogOptions } from "../request-log.js";
import type { ModelStore, StoreOptions } from "../store.js";
import { Refusal } from "../refusal.js";
import { FeedbackAuth, FeedbackUnauthorizedError } from "./feedback-auth.js";
import { SidecarMetrics } from "./metrics.js";
import { Mirror } from "./mirror.js";
import { MonitoringSetup } from "./monitoring-setup.js";
import { ModelServerProxy } from "./proxy.js";
import { Relay } from "./relay.js";
import { classifyMonitoringRequest, classifyPublicRequest, routeLabel, sendFailure, type MonitoringRequest, type PublicRequest } from "./routes.js";
import { UpstreamClient, describeUpstream, type UpstreamAddress } from "./upstream.js";
import { UpstreamSockets } from "./upstream-sockets.js";

export interface SidecarOptions {
  upstream: UpstreamAddress;
  store: ModelStore;
  model: string;
  /** The ModelDeployment served, which labels every metric; default: the model's name, no namespace. */
  modelDeployment?: { name: string; namespace?: string };
  /** Version the server runs; default: asked from the server (`GET /v2/models/<model>`). */
  version?: string;
  host: string;
  port: number;
  /** Port of the summary and /metrics, on the same host; never the Service's. */
  monitoringPort: number;
  /** The pod's own request log directory. */
  dataDir: string;
  /** The model's `_log/` in a writable store, when the log lives there: the bounds cover every pod's directory in it. */
  logRoot?: string;
  /**
   * Ship sealed segments of `dataDir` to this s3:// store (`<prefix>/<model>/_log/<pod>/`): `dataDir` becomes a spool
   * bounded by requestLogOptions.maxBytes, and nothing is deleted locally that was not shipped.
   */
  shipLogTo?: LogShipTarget;
  windowRows: number;
  windowMs: number;
  windowsKept: number;
  maxTracked: number;
  /** Byte bound of the feedback index (TrafficMonitor maxTrackedBytes); default 64 MiB. */
  maxTrackedBytes?: number;
  requestLogOptions: Partial<RequestLogOptions>;
  /** Bodies larger than this are proxied but not inspected; feedback bodies above it get 413. */
  maxBodyBytes?: number;
  upstreamTimeoutMs: number;
  drainTimeoutMs?: number;
  /** On stop, how long to keep proxying while not ready (endpoints catch up) before draining; default 0. */
  shutdownDelayMs?: number;
  /** A file holding the bearer token feedback must carry; unset: feedback needs none. */
  feedbackTokenFile?: string;
  pod: string;
  logger: Logger;
  /** The operator's monitoring.json (drift method/threshold, features, reference); optional. */
  monitoringConfig?: string;
  storeOptions?: StoreOptions;
}

/** When shipping, a quiet log's open segment is sealed (and so shipped) after this long, unless set otherwise. */
const SHIPPED_SEGMENT_MAX_AGE_MS = 15_000;
/** How often queued exchanges are profiled; the response never waits for it. */
const MONITOR_BATCH_MS = 50;
/** `application/json` or `application/<x>+json`, parameters allowed. */
const JSON_CONTENT_TYPE = /^application\/([a-z0-9.-]+\+)?json\s*(;|$)/i;

export class Sidecar {
  /** The public port's listener: relays inference as bytes, hands every other connection to publicServer. */
  private readonly relay: Relay;
  private readonly publicServer: http.Server;
  private readonly monitoringServer: http.Server;
  private readonly upstream: UpstreamClient;
  private readonly upstreamSockets: UpstreamSockets;
  private readonly metrics: SidecarMetrics;
  private readonly proxy: ModelServerProxy;
  private readonly mirror: Mirror;
  private setup: MonitoringSetup | undefined;
  private feedbackAuth: FeedbackAuth | undefined;
  /** From stop() on: not ready, every response closes its connection, proxying goes on until the listeners close. */
  private draining = false;
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly maxBodyBytes: number;
  private readonly shipper: LogShipper | undefined;
  private readonly requestLogOptions: Partial<RequestLogOptions>;

  constructor(private readonly options: SidecarOptions) {
    this.requestLogOptions = options.requestLogOptions;
    if (options.shipLogTo) {
      const shipper = new LogShipper({
        dir: options.dataDir,
        model: options.model,
        pod: options.pod,
        target: options.shipLogTo,
        spoolBytes: options.requestLogOptions.maxBytes ?? DEFAULT_LOG_OPTIONS.maxBytes,
        onEvent: (e) => logShipEvent(options.logger, e),
      });
      this.shipper = shipper;
      // The local bounds would delete segments not shipped yet: the spool bound takes their place, and retention
      // of what was shipped is the bucket's (a lifecycle rule).
      this.requestLogOptions = {
        ...options.requestLogOptions,
        maxBytes: Number.MAX_SAFE_INTEGER,
        maxAgeMs: 0,
        segmentMaxAgeMs: options.requestLogOptions.segmentMaxAgeMs ?? SHIPPED_SEGMENT_MAX_AGE_MS,
        spoolFull: () => shipper.spoolFull,
      };
    }
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.upstream = new UpstreamClient(options.upstream);
    this.upstreamSockets = new UpstreamSockets(options.upstream, options.upstreamTimeoutMs);
    this.metrics = new SidecarMetrics({ model: options.model, monitoring: () => this.setup?.state, shipping: () => this.shipper?.getStats() });
    this.mirror = new Mirror({ metrics: this.metrics, logger: options.logger, feedbackAuthorization: () => this.feedbackAuth?.authorization });
    if (options.modelDeployment) this.metrics.identify({ modeldeployment: options.modelDeployment.name, namespace: options.modelDeployment.namespace });
    this.proxy = new ModelServerProxy({
      mirror: this.mirror,
      upstream: this.upstream,
      upstreamSockets: this.upstreamSockets,
      metrics: this.metrics,
      logger: options.logger,
      maxBodyBytes: this.maxBodyBytes,
      upstreamTimeoutMs: options.upstreamTimeoutMs,
    });
    this.publicServer = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.handlePublic(req, res));
    this.monitoringServer = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.handleMonitoring(req, res));
    applyConnectionLimits(this.publicServer);
    this.relay = new Relay({
      httpServer: this.publicServer,
      maxBodyBytes: this.maxBodyBytes,
      // Until monitoring is set up, Node's server answers the 503 (and keeps that connection).
      takes: (target) => this.setup?.state !== undefined && classifyPublicRequest("POST", pathOf(target)).kind === "inference",
      // takes() saw monitoring set up, and it stays set up.
      handle: (request, reply) => this.proxy.relayInference(request, reply, this.setup!.state!.monitor),
    });
  }

  /** Binds at once (liveness), then connects to the model server and the store in the background. */
  async start(): Promise<{ host: string; port: number; monitoringPort: number }> {
    const { logger } = this.options;
    // A malformed config or token file is a deployment mistake: fail at once instead of retrying.
    const config: MonitoringConfig | undefined = this.options.monitoringConfig ? await readMonitoringConfig(this.options.monitoringConfig) : undefined;
    if (this.options.feedbackTokenFile) this.feedbackAuth = await FeedbackAuth.fromFile(this.options.feedbackTokenFile);
    this.setup = new MonitoringSetup({
      upstream: this.upstream,
      store: this.options.store,
      storeOptions: this.options.storeOptions ?? {},
      model: this.options.model,
      version: this.options.version,
      config,
      dataDir: this.options.dataDir,
      logRoot: this.options.logRoot,
      requestLogOptions: this.requestLogOptions,
      shipping: () => this.shipper?.getStats(),
      pod: this.options.pod,
      windowRows: this.options.windowRows,
      windowMs: this.options.windowMs,
      windowsKept: this.options.windowsKept,
      maxTracked: this.options.maxTracked,
      maxTrackedBytes: this.options.maxTrackedBytes,
      logger,
      onLogDropped: (d) => this.metrics.countLogDropped(d),
    });
    const address = await bind(this.relay.server, this.options.host, this.options.port);
    const monitoring = await listen(this.monitoringServer, this.options.host, this.options.monitoringPort);
    logger.info(
      { event: "listening", ...address, upstream: describeUpstream(this.options.upstream), feedbackAuth: this.feedbackAuth !== undefined },
      "sidecar listening",
    );
    logger.info({ event: "monitoring-listening", ...monitoring }, "sidecar serving the summary and metrics");
    const setup = this.setup;
    this.timers.push(setInterval(() => void setup.pollServerReadiness(), 1000));
    this.timers.push(
      setInterval(() => {
        const monitor = setup.state?.monitor;
        if (monitor && monitor.queued > 0) monitor.drain();
      }, MONITOR_BATCH_MS),
    );
    this.timers.push(setInterval(() => setup.state?.monitor.tick(), 1000));
    for (const t of this.timers) t.unref();
    this.shipper?.start();
    await setup.pollServerReadiness();
    void setup.run(() => this.stopping);
    return { ...address, monitoringPort: monitoring.port };
  }

  /**
   * Turns not ready and keeps proxying for the shutdown delay (the Service stops sending new connections meanwhile),
   * then lets in-flight requests finish and closes. The model server outlives this (its own, longer delay).
   */
  async stop(): Promise<void> {
    this.draining = true;
    this.relay.draining = true;
    const delay = this.options.shutdownDelayMs ?? 0;
    if (delay > 0) {
      this.options.logger.info({ event: "draining", delayMs: delay }, "not ready; proxying on until the endpoints drop this pod");
      await sleep(delay);
    }
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    const drain = this.options.drainTimeoutMs ?? 10_000;
    await Promise.all([this.relay.close(drain), closeGracefully(this.monitoringServer, drain)]);
    await this.setup?.close();
    // The last segment was sealed at close: ship it while the pod is still here (what is left waits for a restart).
    const left = await this.shipper?.close(drain);
    if (left && left.spoolBytes > 0)
      this.options.logger.warn({ event: "log-spool-left", spoolBytes: left.spoolBytes }, "request log segments not shipped at stop stay on the pod's disk");
    await this.mirror.close();
    this.upstreamSockets.close();
    await this.upstream.close();
  }

  private handlePublic(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const path = pathOf(req.url);
    const request = classifyPublicRequest(req.method, path);
    this.countOnFinish(res, request, started);
    // Callers reconnect, and the Service sends the new connection to a pod that is not going away.
    if (this.draining) res.setHeader("connection", "close");
    const monitor = this.setup?.state?.monitor;
    switch (request.kind) {
      case "inference":
      case "readiness":
        if (!monitor) {
          // Answering before monitoring is set up would serve predictions nobody can give feedback on.
          sendError(res, 503, "sidecar is starting: inference is held until monitoring is set up; retry when /v2/health/ready is 200", { "retry-after": "1" });
          return;
        }
        if (request.kind === "inference") void this.proxy.inference(req, res, monitor);
        else this.proxy.passthrough(req, res);
        return;
      case "passthrough":
        this.proxy.passthrough(req, res);
        return;
    }
    this.answerPublic(req, res, request).catch((err: unknown) => sendFailure(res, err, this.options.logger, path));
  }

  private handleMonitoring(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const path = pathOf(req.url);
    const request = classifyMonitoringRequest(path);
    this.countOnFinish(res, request, started);
    this.answerMonitoring(req, res, request).catch((err: unknown) => sendFailure(res, err, this.options.logger, path));
  }

  private countOnFinish(res: ServerResponse, request: PublicRequest | MonitoringRequest, started: bigint): void {
    const route = routeLabel(request);
    res.on("finish", () => this.metrics.observe(route, res.statusCode, started, res));
  }

  private async answerPublic(
    req: IncomingMessage,
    res: ServerResponse,
    request: Extract<PublicRequest, { kind: "sidecar-live" | "sidecar-ready" | "feedback" | "monitoring-only" }>,
  ): Promise<void> {
    if (request.kind === "monitoring-only") {
      req.resume();
      throw new RequestError(404, `${req.url} is not served on this port`);
    }
    allowOnly(req, res, request.kind === "feedback" ? "POST" : "GET");
    switch (request.kind) {
      case "sidecar-live":
        return sendJson(res, 200, { live: true });
      case "sidecar-ready": {
        if (this.draining) return sendError(res, 503, "sidecar is shutting down");
        if (!this.setup?.serverReady) return sendError(res, 503, "model server is not ready");
        const state = this.setup.state;
        if (!state) return sendError(res, 503, `sidecar is starting: ${this.setup.notReadyReason}`);
        // Out of the Service while nothing can be made durable: feedback would only be refused.
        const logHealth = state.requestLog.health();
        if (!logHealth.healthy) return sendError(res, 503, "the request log cannot be written; the sidecar retries (its log says why)");
        return sendJson(res, 200, { ready: true, model: this.options.model, version: state.meta.version });
      }
      case "feedback":
        return this.feedback(req, res);
    }
  }

  private async answerMonitoring(req: IncomingMessage, res: ServerResponse, request: MonitoringRequest): Promise<void> {
    if (request.kind === "unknown") {
      req.resume();
      throw new RequestError(
        404,
        `no route ${req.url} on the monitoring port; it serves ${SIDECAR_PATHS.summary}, ${SIDECAR_PATHS.metrics} and ${SIDECAR_PATHS.mirror}`,
      );
    }
    if (request.kind === "mirror") return this.answerMirror(req, res);
    allowOnly(req, res, "GET");
    if (request.kind === "metrics") {
      const { contentType, body } = await this.metrics.text();
      return sendText(res, 200, contentType, body);
    }
    const summary = this.setup?.summary();
    if (!summary) throw new RequestError(503, "sidecar is starting; no summary yet");
    const shadow = this.mirror.summary();
    return sendJson(res, 200, shadow ? { ...summary, shadow } : summary);
  }

  /** The operator's switch for mirroring to a shadow candidate (see Mirror). */
  private async answerMirror(req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (req.method) {
      case "GET":
        return sendJson(res, 200, { mirror: this.mirror.view() ?? null });
      case "DELETE":
        req.resume();
        this.mirror.stop();
        res.writeHead(204).end();
        return;
      case "PUT": {
        const body = parseJsonBody(req, await readBody(req, MAX_MIRROR_BODY_BYTES));
        // Pairing needs the serving model's task and classes.
        const meta = this.setup?.state?.meta;
        if (!meta) throw new RequestError(503, "sidecar is starting; set the mirror once monitoring is set up");
        return sendJson(res, 200, { mirror: this.mirror.configure(body, meta) });
      }
      default:
        req.resume();
        res.setHeader("allow", "GET, PUT, DELETE");
        throw new RequestError(405, `method ${req.method} not allowed on ${req.url}; use GET, PUT or DELETE`);
    }
  }

  /** Accepted feedback for mirrored requests, paired and sent on; its failure is the mirror's, never the caller's. */
  private pairWithShadow(body: unknown): void {
    try {
      this.mirror.feedbackAccepted(body);
    } catch (err) {
      this.options.logger.error({ event: "mirror-feedback-failed", err }, "could not pair accepted feedback with the shadow");
    }
  }

  private async feedback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      // Checked before the body is read: a stranger's body is never buffered.
      this.feedbackAuth?.check(req.headers);
      // A browser sends a cross-site form or text/plain POST without asking first (no CORS preflight); JSON it does not.
      const type = req.headers["content-type"];
      if (type === undefined || !JSON_CONTENT_TYPE.test(type)) {
        req.resume();
        throw new RequestError(415, `feedback must be sent as Content-Type: application/json${type === undefined ? "" : `, not "${type}"`}`);
      }
      const monitor = this.setup?.state?.monitor;
      if (!monitor) throw new RequestError(503, "sidecar is starting; retry feedback shortly");
      const body = parseJsonBody(req, await readBody(req, this.maxBodyBytes));
      const result = await monitor.applyFeedback(body);
      this.metrics.feedbackTotal.inc({ result: "accepted" }, result.accepted);
      sendJson(res, 200, result);
      this.pairWithShadow(body);
    } catch (err) {
      const result =
        err instanceof Refusal && err.kind !== "not-recorded"
          ? err.kind
          : err instanceof RequestError && err.status < 500
            ? "invalid"
            : err instanceof FeedbackUnauthorizedError
              ? "unauthorized"
              : "error";
      this.metrics.feedbackTotal.inc({ result });
      throw err;
    }
  }
}

function logShipEvent(logger: Logger, e: LogShipEvent): void {
  if (e.event === "log-shipped") logger.debug(e, "request log segment shipped to the store");
  else if (e.event === "log-ship-failed") logger.warn(e, "request log segment upload failed; it stays on disk and is retried");
  else if (e.event === "log-spool-full")
    logger.error(e, "request log spool full: feedback is refused (503) and inference is not logged until uploads to the store catch up");
  else logger.info(e, "request log spool below its bound again: feedback is accepted");
}

/** A mirror setting is a few hundred bytes (16 targets at most). */
const MAX_MIRROR_BODY_BYTES = 16 * 1024;

/** 405 (with Allow) for any other method. */
function allowOnly(req: IncomingMessage, res: ServerResponse, method: "GET" | "POST"): void {
  if (req.method === method) return;
  req.resume();
  res.setHeader("allow", method);
  throw new RequestError(405, `method ${req.method} not allowed on ${req.url}; use ${method}`);
}
