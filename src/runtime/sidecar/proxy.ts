// The reverse proxy to the model server. Inference bodies of bounded size are read whole (one write upstream, and
// the monitor records them) and go through undici's dispatch API: the bytes pass as they are, with no stream,
// promise or AbortSignal per request. Anything else streams through. Responses stream back at the pace the caller
// reads them, and a caller that goes away cancels the upstream call. Inference the relay (relay.ts) read as bytes
// goes upstream as bytes too (relayInference), with the same request id, monitoring and errors.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { sendError } from "../http-json.js";
import { REQUEST_ID_HEADER } from "../oip-routes.js";
import type { TrafficMonitor } from "../traffic-monitor.js";
import { HOP_BY_HOP } from "./http1-head.js";
import type { SidecarMetrics } from "./metrics.js";
import type { Mirror } from "./mirror.js";
import type { RelayReply, RelayedRequest } from "./relay.js";
import { REQUEST_ID_REPLACED_HEADER, assignRequestId, callerRequestId, chooseRequestId, headerRequestId } from "./request-id.js";
import { describeUpstream, type UpstreamClient } from "./upstream.js";
import type { UpstreamSocketError, UpstreamSockets } from "./upstream-sockets.js";

/**
 * Headers that stay on their own hop: the hop-by-hop ones, and `expect` — Node's server has already answered the
 * caller's `100-continue`, and undici refuses a request that carries it (the caller got a 503).
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, "expect"]);

/**
 * What one proxied call is, for the monitor: a passthrough (health, metadata) is only forwarded; an inference
 * is counted, and recorded when its body was read whole (`requestBody`; its id is then claimed in the monitor
 * and released unless recorded); an inference too large to inspect is counted but not profiled.
 */
export type ProxiedExchange = { kind: "passthrough" } | { kind: "inference-unrecorded"; monitor: TrafficMonitor } | RecordedExchange;

interface RecordedExchange {
  kind: "inference-recorded";
  monitor: TrafficMonitor;
  requestBody: Buffer;
  request?: unknown;
  /** The request may go to a shadow: the id it is known by is the caller's own (or none was given). */
  mirrorable: boolean;
}

interface ForwardOptions {
  req: IncomingMessage;
  res: ServerResponse;
  headers: OutgoingHttpHeaders;
  body: Dispatcher.DispatchOptions["body"];
  /** The request id sent upstream (and returned on a 503). */
  id: string;
  /** When the request arrived (ms since the epoch), recorded with the exchange. */
  receivedAt: number;
  exchange: Exclude<ProxiedExchange, RecordedExchange>;
}

export interface ProxyOptions {
  upstream: UpstreamClient;
  /** The relay's sockets to the same model server. */
  upstreamSockets: UpstreamSockets;
  metrics: SidecarMetrics;
  logger: Logger;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  mirror: Mirror;
}

/** A request body read up to a bound: whole, or the part read so far followed by the rest, unread. */
type BoundedBody = { kind: "whole"; body: Buffer } | { kind: "too-large"; stream: Readable };

/**
 * Reads `req` while it stays within `limit` bytes (chunked bodies too); past it, hands back a stream of everything.
 * Rejects when the caller goes away mid-body. Listeners, not an async iterator: a promise per chunk is measurable
 * at the sidecar's request rates.
 */
function readBounded(req: IncomingMessage, limit: number): Promise<BoundedBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= limit) return;
      done();
      // Pulled, not pushed: the rest is read only as fast as the model server takes it.
      req.pause();
      const rest = (async function* () {
        yield* chunks;
        yield* req;
      })();
      resolve({ kind: "too-large", stream: Readable.from(rest, { objectMode: false }) });
    };
    const onEnd = (): void => {
      done();
      resolve({ kind: "whole", body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    };
    const onGone = (): void => {
      done();
      reject(new Error("the caller went away before its request body was complete"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}

/** The 409 of an inference whose request id an earlier one through this sidecar has. */
function requestIdTaken(id: string): string {
  return `request id "${id}" is already in use: an earlier inference through this sidecar has it, and feedback joins by id; send a new id (or none, and use the response's "id")`;
}

/** The exchange to record under `id`, claimed in the monitor; undefined (counted as rejected) when the id is taken. */
function claimExchange(monitor: TrafficMonitor, caller: { id?: string; request?: unknown }, id: string, requestBody: Buffer): RecordedExchange | undefined {
  if (!monitor.claimRequestId(id)) {
    monitor.countRequest("rejected");
    return undefined;
  }
  return {
    kind: "inference-recorded",
    monitor,
    requestBody,
    ...(caller.request !== undefined ? { request: caller.request } : {}),
    // A replaced id is not in the body the shadow would get: it would assign its own, and the pair would not join.
    mirrorable: caller.id === undefined || caller.id === id,
  };
}

/** Why an upstream call failed, as the metrics' reason label. */
function failureReason(err: Error & { code?: string }): "timeout" | "connect" | "reset" {
  return err.code === "UND_ERR_HEADERS_TIMEOUT" || err.code === "UND_ERR_BODY_TIMEOUT"
    ? "timeout"
    : err.code === "ECONNREFUSED" || err.code === "ENOENT"
      ? "connect"
      : "reset";
}

/** What the caller hears when the model server failed: that it is unavailable, not where it is or what the socket said. */
function failureMessage(reason: "timeout" | "connect" | "reset"): string {
  return `${reason === "timeout" ? "model server did not answer in time" : "model server unavailable"}; retry shortly`;
}

function forwardHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v;
  return out;
}

export class ModelServerProxy {
  /** Upstream failures are logged at most once a second (the rest counted in the next line): an outage floods otherwise. */
  private upstreamErrorLoggedAt = 0;
  private upstreamErrorsUnlogged = 0;

  constructor(private readonly options: ProxyOptions) {}

  /** Anything but inference: forwarded as it is, with a request id. */
  passthrough(req: IncomingMessage, res: ServerResponse): void {
    const headers = forwardHeaders(req.headers);
    const id = assignRequestId(res, headerRequestId(req.headers).id);
    headers[REQUEST_ID_HEADER] = id;
    const body = req.method === "GET" || req.method === "HEAD" ? null : req;
    void this.forward({ req, res, headers, body, id, receivedAt: Date.now(), exchange: { kind: "passthrough" } });
  }

  /** An infer call: its id claimed in the monitor (409 when taken), forwarded, and recorded when it succeeds. */
  async inference(req: IncomingMessage, res: ServerResponse, monitor: TrafficMonitor): Promise<void> {
    const receivedAt = Date.now();
    const headers = forwardHeaders(req.headers);
    const declared = Number(req.headers["content-length"]);
    let read: BoundedBody;
    if (Number.isFinite(declared) && declared > this.options.maxBodyBytes) read = { kind: "too-large", stream: req };
    else {
      try {
        read = await readBounded(req, this.options.maxBodyBytes);
      } catch {
        // The caller went away mid-body.
        res.destroy();
        return;
      }
    }
    if (read.kind === "too-large") {
      const id = assignRequestId(res, headerRequestId(req.headers).id);
      headers[REQUEST_ID_HEADER] = id;
      return this.forward({ req, res, headers, body: read.stream, id, receivedAt, exchange: { kind: "inference-unrecorded", monitor } });
    }
    const caller = callerRequestId(req.headers, read.body);
    const id = assignRequestId(res, caller.id);
    headers[REQUEST_ID_HEADER] = id;
    const exchange = claimExchange(monitor, caller, id, read.body);
    if (!exchange) return sendError(res, 409, requestIdTaken(id), { [REQUEST_ID_HEADER]: id });
    this.forwardRecorded(req, res, headers, id, receivedAt, exchange);
  }

  /**
   * A recorded inference upstream and back, on undici's dispatch API (callbacks: no body stream, promise or
   * AbortSignal per request: with the body read by listeners, 40 % less sidecar CPU per request, docs/benchmarks.md). A 200 is read whole, answered in
   * one write and then recorded; any other answer streams back at the pace the caller reads it.
   */
  private forwardRecorded(
    req: IncomingMessage,
    res: ServerResponse,
    headers: OutgoingHttpHeaders,
    id: string,
    receivedAt: number,
    exchange: RecordedExchange,
  ): void {
    const { metrics, upstream, upstreamTimeoutMs } = this.options;
    const { monitor } = exchange;
    const sentAt = performance.now();
    let controller: Dispatcher.DispatchController | undefined;
    let callerGone = false;
    // A caller that disconnects before its answer is complete cancels the upstream call (and its model time).
    res.on("close", () => {
      if (res.writableFinished) return;
      callerGone = true;
      controller?.abort(new Error("the caller went away"));
    });
    let status = 0;
    let responseId: string | undefined;
    let chunks: Buffer[] | undefined;
    const path = req.url ?? "/";
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (c) => {
        controller = c;
        if (callerGone) c.abort(new Error("the caller went away"));
      },
      onResponseStart: (c, statusCode, upstreamHeaders) => {
        metrics.upstreamAnswered(res, (performance.now() - sentAt) / 1000);
        status = statusCode;
        const answeredId = upstreamHeaders[REQUEST_ID_HEADER];
        if (typeof answeredId === "string") responseId = answeredId;
        const out = forwardHeaders(upstreamHeaders);
        // The server did not read the rest of an oversized body; neither does the sidecar.
        if (status === 413) out.connection = "close";
        // Headers go out with the first body write: for a 200, one write of headers and body together.
        res.writeHead(status, out);
        if (status === 200) chunks = [];
        else res.on("drain", () => c.resume());
      },
      onResponseData: (c, chunk) => {
        if (chunks) chunks.push(chunk);
        else if (!res.write(chunk)) c.pause();
      },
      onResponseEnd: () => {
        this.countAnswered(monitor, status);
        if (!chunks) {
          monitor.releaseRequestId(id);
          res.end();
          return;
        }
        const responseBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const servingMs = performance.now() - sentAt;
        res.end(responseBody);
        this.record(exchange, { receivedAt, id, responseId, responseBody, servingMs, path, contentType: req.headers["content-type"] });
      },
      onResponseError: (_c, err) => {
        monitor.releaseRequestId(id);
        if (callerGone) return;
        // Failed mid-body: the caller has a status line already and learns of the failure by the connection closing.
        if (res.headersSent || status !== 0) {
          res.destroy();
          return;
        }
        this.upstreamFailed(err as Error & { code?: string }, req, res, id, exchange);
      },
    };
    upstream.pool.dispatch(
      {
        path,
        method: "POST",
        headers: headers as Record<string, string>,
        body: exchange.requestBody,
        headersTimeout: upstreamTimeoutMs,
        bodyTimeout: upstreamTimeoutMs,
      },
      handler,
    );
  }

  /** An answered inference counted by its status class (and a 5xx as an upstream error). */
  private countAnswered(monitor: TrafficMonitor, status: number): void {
    if (status >= 500) this.options.metrics.upstreamErrors.inc({ reason: `http-${status}` });
    monitor.countRequest(status >= 500 ? "failed" : status >= 400 ? "rejected" : "ok");
  }

  /** A 200 answered to the caller: the monitor records the exchange, and the shadow hears of it when mirrored. */
  private record(
    exchange: RecordedExchange,
    answer: {
      receivedAt: number;
      id: string;
      responseId: string | undefined;
      responseBody: Buffer;
      servingMs: number;
      path: string;
      contentType: string | undefined;
    },
  ): void {
    const { id, responseId, responseBody } = answer;
    exchange.monitor.enqueue({
      ts: answer.receivedAt,
      status: 200,
      requestBody: exchange.requestBody,
      ...(exchange.request !== undefined ? { request: exchange.request } : {}),
      responseBody,
      id,
      ...(responseId !== undefined ? { responseId } : {}),
    });
    // After the answer and the monitor: the user has the answer before the shadow hears of the request.
    if (exchange.mirrorable) {
      const { requestBody } = exchange;
      this.options.mirror.offer({ id, path: answer.path, contentType: answer.contentType, requestBody, responseBody, servingMs: answer.servingMs });
    }
  }

  /**
   * An inference the relay read whole, upstream as bytes and back: the request id chosen and claimed as in
   * inference() (409 when taken), a 200 answered in one write and then recorded, any other answer streamed back
   * at the pace the caller reads it, a failure answered 503 as in upstreamFailed.
   */
  relayInference(request: RelayedRequest, reply: RelayReply, monitor: TrafficMonitor): void {
    const { metrics } = this.options;
    const caller = callerRequestId(request.headers, request.body);
    const { id, replaced } = chooseRequestId(caller.id);
    const idLines = `${REQUEST_ID_HEADER}: ${id}\r\n${replaced !== undefined ? `${REQUEST_ID_REPLACED_HEADER}: ${replaced}\r\n` : ""}`;
    const answerError = (status: number, message: string, upstreamSeconds?: number): void => {
      reply.send(status, `content-type: application/json\r\n${idLines}`, Buffer.from(JSON.stringify({ error: message })));
      metrics.observeAnswered("infer", status, request.startedNs, upstreamSeconds);
    };
    const exchange = claimExchange(monitor, caller, id, request.body);
    if (!exchange) return answerError(409, requestIdTaken(id));
    let head = `POST ${request.target} HTTP/1.1\r\n`;
    for (const name in request.headers) if (!NOT_FORWARDED.has(name) && name !== REQUEST_ID_HEADER) head += `${name}: ${request.headers[name]}\r\n`;
    head += `${REQUEST_ID_HEADER}: ${id}\r\n\r\n`;
    const sentAt = performance.now();
    let upstreamSeconds: number | undefined;
    let status = 0;
    let responseId: string | undefined;
    let headerLines = "";
    let chunks: Buffer[] | undefined;
    const upstream = this.options.upstreamSockets.send(Buffer.concat([Buffer.from(head, "latin1"), request.body]), {
      onHead: (h) => {
        upstreamSeconds = (performance.now() - sentAt) / 1000;
        status = h.status;
        responseId = h.headers[REQUEST_ID_HEADER];
        headerLines = h.forwarded + (replaced !== undefined ? `${REQUEST_ID_REPLACED_HEADER}: ${replaced}\r\n` : "");
        if (status === 200) {
          chunks = [];
          return;
        }
        reply.drained = () => upstream.resume();
        reply.start(status, headerLines, h.framing);
      },
      onBody: (chunk) => {
        if (chunks) chunks.push(chunk);
        else if (!reply.write(chunk)) upstream.pause();
      },
      onEnd: () => {
        this.countAnswered(monitor, status);
        if (!chunks) {
          monitor.releaseRequestId(id);
          reply.end();
          metrics.observeAnswered("infer", status, request.startedNs, upstreamSeconds);
          return;
        }
        const responseBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const servingMs = performance.now() - sentAt;
        reply.send(200, headerLines, responseBody);
        metrics.observeAnswered("infer", 200, request.startedNs, upstreamSeconds);
        this.record(exchange, {
          receivedAt: request.receivedAt,
          id,
          responseId,
          responseBody,
          servingMs,
          path: request.target,
          contentType: request.headers["content-type"],
        });
      },
      onError: (err: UpstreamSocketError) => {
        monitor.releaseRequestId(id);
        // Failed mid-body: the caller has a status line already and learns of the failure by the connection closing.
        if (status !== 0) {
          reply.abort();
          return;
        }
        this.countFailure(err.reason, err, request.target, exchange);
        answerError(503, failureMessage(err.reason));
      },
    });
    // A caller that disconnects before its answer is complete cancels the upstream call (and its model time).
    reply.gone = () => {
      upstream.cancel();
      monitor.releaseRequestId(id);
    };
  }

  /** Streams the request upstream and the response back (passthrough, and inference too large to record); counts inference. */
  private async forward({ req, res, headers, body, id, receivedAt, exchange }: ForwardOptions): Promise<void> {
    // A caller that disconnects before its answer is complete cancels the upstream call (and its model time).
    const cancel = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) cancel.abort();
    });
    let upstream: Dispatcher.ResponseData;
    const sentAt = performance.now();
    try {
      upstream = await this.options.upstream.request({
        path: req.url ?? "/",
        method: (req.method ?? "GET") as Dispatcher.HttpMethod,
        headers: headers as Record<string, string>,
        body,
        headersTimeout: this.options.upstreamTimeoutMs,
        bodyTimeout: this.options.upstreamTimeoutMs,
        signal: cancel.signal,
      });
    } catch (err) {
      if (cancel.signal.aborted) return;
      this.upstreamFailed(err as Error & { code?: string }, req, res, id, exchange);
      return;
    }
    this.options.metrics.upstreamAnswered(res, (performance.now() - sentAt) / 1000);
    const status = upstream.statusCode;
    const out = forwardHeaders(upstream.headers as IncomingHttpHeaders);
    // The server did not read the rest of an oversized body; neither does the sidecar.
    if (status === 413) out.connection = "close";
    try {
      res.writeHead(status, out);
      await pipeline(upstream.body, res);
    } catch {
      res.destroy();
      return;
    }
    if (status >= 500) this.options.metrics.upstreamErrors.inc({ reason: `http-${status}` });
    if (exchange.kind === "passthrough") return;
    exchange.monitor.countRequest(status >= 500 ? "failed" : status >= 400 ? "rejected" : "ok");
    if (status === 200) exchange.monitor.enqueue({ ts: receivedAt, status, requestBody: null, responseBody: null });
  }

  private upstreamFailed(err: Error & { code?: string }, req: IncomingMessage, res: ServerResponse, id: string, exchange: ProxiedExchange): void {
    const reason = failureReason(err);
    this.countFailure(reason, err, req.url ?? "/", exchange);
    if (!res.headersSent) sendError(res, 503, failureMessage(reason), { [REQUEST_ID_HEADER]: id });
    else res.destroy();
  }

  private countFailure(reason: "timeout" | "connect" | "reset", err: Error & { code?: string }, path: string, exchange: ProxiedExchange): void {
    this.options.metrics.upstreamErrors.inc({ reason });
    this.logUpstreamError(reason, err, path);
    if (exchange.kind !== "passthrough") exchange.monitor.countRequest("failed");
  }

  private logUpstreamError(reason: string, err: Error & { code?: string }, path: string): void {
    const now = Date.now();
    if (now - this.upstreamErrorLoggedAt < 1000) {
      this.upstreamErrorsUnlogged++;
      return;
    }
    this.options.logger.warn(
      {
        event: "upstream-error",
        reason,
        code: err.code,
        error: err.message,
        upstream: describeUpstream(this.options.upstream.address),
        path,
        unloggedSinceLast: this.upstreamErrorsUnlogged,
      },
      "request to the model server failed",
    );
    this.upstreamErrorLoggedAt = now;
    this.upstreamErrorsUnlogged = 0;
  }
}
