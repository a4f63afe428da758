// `ballast serve`: one model version behind the Open Inference Protocol v2 REST API, on a TCP port (standalone)
// or on a Unix domain socket that only the pod's sidecar can reach (with a TCP port for the kubelet's probes).
import { randomUUID } from "node:crypto";
import { lstat, unlink } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { LayersModel } from "@tensorflow/tfjs";
import type { Logger } from "pino";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LoadedBackend } from "./backend.js";
import { encodeColumns } from "./features.js";
import { sendErrorReply } from "./http-errors.js";
import {
  DEFAULT_MAX_BATCH_ROWS,
  DEFAULT_MAX_BODY_BYTES,
  RequestError,
  closeGracefully,
  listen,
  listenOnSocket,
  parseJsonBody,
  readBody,
  sendError,
  sendJson,
  sendText,
} from "./http-json.js";
import { outputNames, readMetadata, type ModelMetadata } from "./metadata.js";
import { loadModel } from "./model-files.js";
import { decodeInferRequest, encodeInferResponse, requestIdProblem } from "./oip.js";
import { REQUEST_ID_HEADER, matchRoute, pathOf, type Route } from "./oip-routes.js";
import { predict } from "./predict.js";
import { resolveVersion, type ModelStore } from "./store.js";

export interface ModelServerOptions {
  store: ModelStore;
  model: string;
  version?: string;
  host: string;
  /** TCP port of the API; with `socketPath`, of the health endpoints only (undefined: none). */
  port?: number;
  /** Serve the API on this Unix domain socket (mode 0660) instead of host:port. */
  socketPath?: string;
  maxBodyBytes?: number;
  maxBatchRows?: number;
  drainTimeoutMs?: number;
  /** On stop, how long to go on serving before the drain (so the sidecar in front finishes first); default 0. */
  shutdownDelayMs?: number;
  backend: LoadedBackend;
  logger: Logger;
  /** Reported by `GET /v2` (the Ballast package version). */
  serverVersion: string;
}

/** Where `start` bound: the API's TCP address or socket, and the health-only port beside a socket. */
export type ModelServerAddress = { host: string; port: number } | { socket: string; health?: { host: string; port: number } };

export class ModelServer {
  private readonly server: http.Server;
  /** Beside a socket: answers /v2/health/* only, for the kubelet's probes. */
  private readonly healthServer: http.Server | undefined;
  private ready = false;
  private draining = false;
  private meta!: ModelMetadata;
  private tfModel!: LayersModel;
  private outputs: string[] = [];
  private readonly registry = new Registry();
  private readonly requests: Counter<"route" | "code">;
  private readonly latency: Histogram<"route" | "code">;
  private readonly rowsTotal: Counter;
  private readonly info: Gauge<"model" | "version" | "backend">;
  readonly maxBodyBytes: number;
  readonly maxBatchRows: number;

  constructor(private readonly options: ModelServerOptions) {
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxBatchRows = options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS;
    this.server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.handle(req, res, false));
    if (options.socketPath !== undefined && options.port !== undefined) this.healthServer = http.createServer((req, res) => this.handle(req, res, true));
    collectDefaultMetrics({ register: this.registry, prefix: "ballast_serve_" });
    this.requests = new Counter({
      name: "ballast_serve_requests_total",
      help: "HTTP requests answered by the model server, by route and status code.",
      labelNames: ["route", "code"],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: "ballast_serve_request_duration_seconds",
      help: "Time from request start to response end in the model server.",
      labelNames: ["route", "code"],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.rowsTotal = new Counter({ name: "ballast_serve_inference_rows_total", help: "Rows predicted.", registers: [this.registry] });
    this.info = new Gauge({
      name: "ballast_model_info",
      help: "The model version this process serves (value 1) and the tfjs backend it runs on.",
      labelNames: ["model", "version", "backend"],
      registers: [this.registry],
    });
  }

  /** Binds first (so liveness answers while the model loads), then loads, warms up and turns ready. */
  async start(): Promise<ModelServerAddress> {
    const { socketPath, host, port, logger } = this.options;
    let address: ModelServerAddress;
    if (socketPath === undefined) {
      address = await listen(this.server, host, port ?? 8080);
    } else {
      await removeStaleSocket(socketPath);
      await listenOnSocket(this.server, socketPath);
      address = { socket: socketPath, ...(this.healthServer ? { health: await listen(this.healthServer, host, port!) } : {}) };
    }
    logger.info({ event: "listening", ...address }, "model server listening");
    await this.load();
    return address;
  }

  get metadata(): ModelMetadata {
    return this.meta;
  }

  private async load(): Promise<void> {
    const { store, model, logger, backend } = this.options;
    const version = await resolveVersion(store, model, this.options.version);
    this.meta = await readMetadata(store, model, version);
    this.tfModel = await loadModel(backend.tf, store, model, version);
    this.outputs = outputNames(this.meta);
    // Warm-up: the first predict compiles kernels; ready only after one succeeded.
    const warm = this.meta.features.map(() => [null]);
    predict(backend.tf, this.tfModel, this.meta, encodeColumns(this.meta.features, warm, 1), 1);
    this.info.set({ model, version, backend: backend.backend }, 1);
    this.ready = true;
    logger.info({ event: "ready", model, version, backend: backend.backend, features: this.meta.features.length }, "model loaded and warmed up");
  }

  /** Serves on for the shutdown delay, then is not ready, finishes in-flight requests and closes. */
  async stop(): Promise<void> {
    const delay = this.options.shutdownDelayMs ?? 0;
    if (delay > 0) {
      // The sidecar in front is still draining its callers through this server.
      this.options.logger.info({ event: "draining", delayMs: delay }, "serving on while the sidecar drains");
      await sleep(delay);
    }
    this.ready = false;
    this.draining = true;
    const drain = this.options.drainTimeoutMs ?? 10_000;
    await Promise.all([closeGracefully(this.server, drain), ...(this.healthServer ? [closeGracefully(this.healthServer, drain)] : [])]);
    this.tfModel?.dispose();
  }

  private handle(req: IncomingMessage, res: ServerResponse, healthOnly: boolean): void {
    const started = process.hrtime.bigint();
    const url = req.url ?? "/";
    const matched = matchRoute(pathOf(url));
    // The health port is for probes: the API itself is on the socket.
    const route = healthOnly && matched?.kind !== "live" && matched?.kind !== "ready" ? undefined : matched;
    const routeLabel = route?.kind ?? "unknown";
    res.on("finish", () => {
      const labels = { route: routeLabel, code: String(res.statusCode) };
      this.requests.inc(labels);
      this.latency.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    if (this.draining) res.setHeader("connection", "close");
    this.dispatch(req, res, route).catch((err: unknown) => {
      const reply = sendErrorReply(res, err);
      if (reply.unexpected) this.options.logger.error({ event: "request-failed", err, path: url }, "request failed");
      else this.options.logger.debug({ event: "bad-request", status: reply.status, error: reply.body.error, path: url }, "bad request");
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, route: Route | undefined): Promise<void> {
    if (!route) throw new RequestError(404, `no route ${req.method} ${req.url}; see /v2 for the Open Inference Protocol endpoints`);
    const method = req.method ?? "GET";
    const wanted = route.kind === "infer" ? "POST" : "GET";
    if (method !== wanted && !(wanted === "GET" && method === "HEAD")) {
      req.resume();
      res.setHeader("allow", wanted);
      throw new RequestError(405, `method ${method} not allowed on ${req.url}; use ${wanted}`);
    }
    switch (route.kind) {
      case "live":
        return sendJson(res, 200, { live: true });
      case "ready":
        return this.ready ? sendJson(res, 200, { ready: true }) : sendError(res, 503, this.draining ? "shutting down" : "model is loading");
      case "server":
        return sendJson(res, 200, { name: "ballast", version: this.options.serverVersion, extensions: [] });
      case "metrics":
        return sendText(res, 200, this.registry.contentType, await this.registry.metrics());
    }
    if (!this.ready) throw new RequestError(503, this.draining ? "server is shutting down" : "model is loading; retry when /v2/health/ready is 200");
    this.checkModel(route.model, route.version);
    if (route.kind === "model-ready") return sendJson(res, 200, { name: this.meta.model, ready: true });
    if (route.kind === "model") return sendJson(res, 200, this.modelMetadataResponse());
    return this.infer(req, res);
  }

  private checkModel(model: string, version: string | undefined): void {
    if (model !== this.meta.model) throw new RequestError(404, `unknown model "${model}"; this server serves "${this.meta.model}"`);
    if (version !== undefined && version !== this.meta.version) {
      throw new RequestError(404, `model "${model}" version "${version}" is not loaded; this server serves version "${this.meta.version}"`);
    }
  }

  private modelMetadataResponse(): object {
    const m = this.meta;
    return {
      name: m.model,
      versions: [m.version],
      platform: "tfjs_layers",
      inputs: m.features.map((f) => ({ name: f.name, datatype: f.type === "numeric" ? "FP32" : "BYTES", shape: [-1] })),
      outputs:
        m.task === "classification"
          ? [
              { name: "label", datatype: "BYTES", shape: [-1] },
              { name: "probabilities", datatype: "FP32", shape: [-1, m.classes!.length] },
            ]
          : [{ name: "value", datatype: "FP32", shape: [-1] }],
      parameters: {
        task: m.task,
        label: m.label,
        ...(m.classes ? { classes: m.classes } : {}),
        backend: this.options.backend.backend,
        row_input: { name: "input", shape: [-1, m.features.length], features: m.features.map((f) => f.name) },
      },
    };
  }

  private async infer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonBody(req, await readBody(req, this.maxBodyBytes));
    const decoded = decodeInferRequest(body, this.meta.features, this.outputs, this.maxBatchRows);
    let encoded: Float32Array;
    try {
      encoded = encodeColumns(this.meta.features, decoded.columns, decoded.rows, (f, r) => `input "${f}" row ${r}`);
    } catch (err) {
      throw new RequestError(400, (err as Error).message);
    }
    const p = predict(this.options.backend.tf, this.tfModel, this.meta, encoded, decoded.rows);
    this.rowsTotal.inc(decoded.rows);
    // A header id that is not a valid request id is not echoed back (it could break the response header).
    const header = req.headers[REQUEST_ID_HEADER];
    const id = decoded.id ?? (typeof header === "string" && requestIdProblem(header) === undefined ? header : randomUUID());
    const response = encodeInferResponse(this.meta.model, this.meta.version, id, p, this.meta.classes, decoded.outputs);
    sendJson(res, 200, response, { [REQUEST_ID_HEADER]: id });
  }
}

/** A socket file left by an earlier run of this container (a restart) would make listen fail with EADDRINUSE. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket()) await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
