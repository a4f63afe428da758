// The reverse proxy to the model server. Inference bodies of bounded size are read whole (one write upstream, and
// the monitor records them); anything else streams through. Responses stream back at the pace the caller reads
// them, and a caller that goes away cancels the upstream call.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { sendError } from "../http-json.js";
import { REQUEST_ID_HEADER } from "../oip-routes.js";
import type { TrafficMonitor } from "../traffic-monitor.js";
import type { SidecarMetrics } from "./metrics.js";
import type { Mirror } from "./mirror.js";
import { assignRequestId, callerRequestId, headerRequestId } from "./request-id.js";
import { describeUpstream, type UpstreamClient } from "./upstream.js";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

/**
 * What one proxied call is, for the monitor: a passthrough (health, metadata) is only forwarded; an inference
 * is counted, and recorded when its body was read whole (`requestBody`; its id is then claimed in the monitor
 * and released unless recorded); an inference too large to inspect is counted but not profiled.
 */
export type ProxiedExchange =
  | { kind: "passthrough" }
  | { kind: "inference-unrecorded"; monitor: TrafficMonitor }
  | {
      kind: "inference-recorded";
      monitor: TrafficMonitor;
      requestBody: Buffer;
      request?: unknown;
      /** The request may go to a shadow: the id it is known by is the caller's own (or none was given). */
      mirrorable: boolean;
    };

interface ForwardOptions {
  req: IncomingMessage;
  res: ServerResponse;
  headers: OutgoingHttpHeaders;
  body: Dispatcher.DispatchOptions["body"];
  /** The request id sent upstream (and returned on a 503). */
  id: string;
  /** When the request arrived (ms since the epoch), recorded with the exchange. */
  receivedAt: number;
  exchange: ProxiedExchange;
}

export interface ProxyOptions {
  upstream: UpstreamClient;
  metrics: SidecarMetrics;
  logger: Logger;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  mirror: Mirror;
}

/** A request body read up to a bound: whole, or the part read so far followed by the rest, unread. */
type BoundedBody = { kind: "whole"; body: Buffer } | { kind: "too-large"; stream: Readable };

/** Reads `req` while it stays within `limit` bytes (chunked bodies too); past it, hands back a stream of everything. */
async function readBounded(req: IncomingMessage, limit: number): Promise<BoundedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    const next = await it.next();
    if (next.done) return { kind: "whole", body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
    chunks.push(next.value);
    size += next.value.length;
    if (size > limit) {
      // Pulled, not pushed: the rest is read only as fast as the model server takes it.
      const rest = (async function* () {
        yield* chunks;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })();
      return { kind: "too-large", stream: Readable.from(rest, { objectMode: false }) };
    }
  }
}

function forwardHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
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
    const exchange: ProxiedExchange = {
      kind: "inference-recorded",
      monitor,
      requestBody: read.body,
      ...(caller.request !== undefined ? { request: caller.request } : {}),
      // A replaced id is not in the body the shadow would get: it would assign its own, and the pair would not join.
      mirrorable: caller.id === undefined || caller.id === id,
    };
    return this.forward({ req, res, headers, body: read.body, id, receivedAt, exchange });
  }

  /** Sends the request upstream and the response back; records and counts inference. */
  private async forward({ req, res, headers, body, id, receivedAt, exchange }: ForwardOptions): Promise<void> {
    const release = (): void => {
      if (exchange.kind === "inference-recorded") exchange.monitor.releaseRequestId(id);
    };
    // A caller that disconnects before its answer is complete cancels the upstream call (and its model time).
    const cancel = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) cancel.abort();
    });
    const sentAt = performance.now();
    let upstream: Dispatcher.ResponseData;
    const sent = process.hrtime.bigint();
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
      release();
      if (cancel.signal.aborted) return;
      this.upstreamFailed(err as Error & { code?: string }, req, res, id, exchange);
      return;
    }
    this.options.metrics.upstreamAnswered(res, Number(process.hrtime.bigint() - sent) / 1e9);
    const status = upstream.statusCode;
    const out = forwardHeaders(upstream.headers as IncomingHttpHeaders);
    // The server did not read the rest of an oversized body; neither does the sidecar.
    if (status === 413) out.connection = "close";
    const record = exchange.kind === "inference-recorded" && status === 200;
    let responseBody: Buffer | undefined;
    let servingMs = 0;
    try {
      res.writeHead(status, out);
      if (record) {
        // Recorded infer responses are small: one res.end(body) is one write for headers and body together.
        const chunks: Buffer[] = [];
        for await (const c of upstream.body) chunks.push(c as Buffer);
        responseBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        servingMs = performance.now() - sentAt;
        res.end(responseBody);
      } else {
        await pipeline(upstream.body, res);
      }
    } catch {
      release();
      res.destroy();
      return;
    }
    if (status >= 500) this.options.metrics.upstreamErrors.inc({ reason: `http-${status}` });
    if (exchange.kind === "passthrough") return;
    exchange.monitor.countRequest(status >= 500 ? "failed" : status >= 400 ? "rejected" : "ok");
    if (exchange.kind === "inference-recorded" && responseBody !== undefined) {
      const responseId = upstream.headers[REQUEST_ID_HEADER];
      exchange.monitor.enqueue({
        ts: receivedAt,
        status,
        requestBody: exchange.requestBody,
        ...(exchange.request !== undefined ? { request: exchange.request } : {}),
        responseBody,
        id,
        ...(typeof responseId === "string" ? { responseId } : {}),
      });
      // After res.end and the monitor: the user has the answer before the shadow hears of the request.
      if (exchange.mirrorable) {
        const { requestBody } = exchange;
        this.options.mirror.offer({ id, path: req.url ?? "/", contentType: req.headers["content-type"], requestBody, responseBody, servingMs });
      }
      return;
    }
    release();
    if (status === 200) exchange.monitor.enqueue({ ts: receivedAt, status, requestBody: null, responseBody: null });
  }

  private upstreamFailed(err: Error & { code?: string }, req: IncomingMessage, res: ServerResponse, id: string, exchange: ProxiedExchange): void {
    const reason =
      err.code === "UND_ERR_HEADERS_TIMEOUT" || err.code === "UND_ERR_BODY_TIMEOUT"
        ? "timeout"
        : err.code === "ECONNREFUSED" || err.code === "ENOENT"
          ? "connect"
          : "reset";
    this.options.metrics.upstreamErrors.inc({ reason });
    this.logUpstreamError(reason, err, req.url ?? "/");
    if (exchange.kind !== "passthrough") exchange.monitor.countRequest("failed");
    // The caller learns that the model server is unavailable, not where it is or what the socket said.
    const message = reason === "timeout" ? "model server did not answer in time" : "model server unavailable";
    if (!res.headersSent) sendError(res, 503, `${message}; retry shortly`, { [REQUEST_ID_HEADER]: id });
    else res.destroy();
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
