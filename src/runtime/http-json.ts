// JSON over node:http for serve and the sidecar: bounded body reading, `{"error": ...}` replies, graceful close.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Server as NetServer, Socket } from "node:net";

/** A request the HTTP layer refuses (route, method, body size, content type, readiness): `{"error": message}` with this status. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_BATCH_ROWS = 10_000;

/**
 * Connection bounds of both servers, so a slow or idle client cannot hold sockets for long: headers within 10 s,
 * the whole request within 60 s, keep-alive above the 60 s idle timeout of common load balancers (so the server
 * never closes a connection the balancer is about to reuse), and a new connection every 1000 requests so
 * long-lived clients spread over the replicas behind a Service (kube-proxy balances connections, not requests).
 */
export const CONNECTION_LIMITS = {
  headersTimeout: 10_000,
  requestTimeout: 60_000,
  keepAliveTimeout: 65_000,
  maxRequestsPerSocket: 1000,
} as const;

/** What a 500 says to the caller; the exception goes to the log, never into the body. */
export const INTERNAL_ERROR_MESSAGE = "internal error; the server logged the details";

/**
 * Reads the whole body, failing with 413 past `limit` bytes (checked on Content-Length first). The rest of an
 * oversized body is not read: sendError closes the connection after the 413 (see there).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new RequestError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.pause();
        chunks.length = 0;
        reject(new RequestError(413, `request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Checks the content type (when given) and parses JSON; errors are 415 / 400 naming the problem. */
export function parseJsonBody(req: IncomingMessage, body: Buffer): unknown {
  const type = req.headers["content-type"];
  // curl -d sends application/x-www-form-urlencoded; accepted so the shortest curl command works.
  if (type !== undefined && !/^(application\/([a-z.+-]*\+)?json|text\/plain|application\/x-www-form-urlencoded)\b/i.test(type)) {
    throw new RequestError(415, `content-type "${type}" is not supported; send application/json`);
  }
  if (body.length === 0) throw new RequestError(400, "request body is empty; send a JSON object");
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new RequestError(400, `malformed JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * `{"error": message}` with `status`. A 500 never carries its message (an exception's text can name internals):
 * callers log it, the body says INTERNAL_ERROR_MESSAGE. A 413 closes the connection: reading the rest of an
 * oversized body to keep the connection would let a client stream into the server for ever.
 */
export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: status === 500 ? INTERNAL_ERROR_MESSAGE : message }, status === 413 ? { ...headers, connection: "close" } : headers);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Stops accepting, lets in-flight requests finish (up to `timeoutMs`), then drops what is left. */
export async function closeGracefully(server: Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // Keep-alive connections that finish a request are closed as they go idle.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(timer);
  }
}

/** Host to bind: the flag, else env POD_IP (the local cluster's per-pod loopback address), else all interfaces. */
export function defaultHost(): string {
  return process.env.POD_IP || "0.0.0.0";
}

/**
 * Sets CONNECTION_LIMITS on `server` and closes each connection once it has had its last request. Node marks the
 * last response `connection: close` but leaves the socket open and answers 503 to anything sent on it after that
 * (documented for maxRequestsPerSocket); RFC 9112 §9.6 says a server that sends close then closes. A client that
 * ignores the header (load generators, some proxies) would otherwise get 503s on that connection for ever; closed,
 * it reconnects like any client whose keep-alive connection ended.
 */
export function applyConnectionLimits(server: Server): void {
  Object.assign(server, CONNECTION_LIMITS);
  const served = new WeakMap<Socket, number>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    const limit = server.maxRequestsPerSocket ?? 0;
    if (limit > 0 && n >= limit) res.once("finish", () => req.socket.destroySoon());
  });
}

/** Applies CONNECTION_LIMITS, then binds. */
export function listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  applyConnectionLimits(server);
  return bind(server, host, port);
}

/** Binds `server` to host and port; resolves with the address bound (the port chosen when 0). */
export function bind(server: NetServer, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? { host: addr.address, port: addr.port } : { host, port });
    });
  });
}

/**
 * Applies CONNECTION_LIMITS, then binds a Unix domain socket readable and writable by the owner and group only
 * (the pod's containers share a uid and fsGroup; nothing else can connect).
 */
export function listenOnSocket(server: Server, path: string): Promise<void> {
  applyConnectionLimits(server);
  // The umask applies at bind (synchronous in listen), so the socket never exists with wider permissions.
  const umask = process.umask(0o117);
  try {
    return new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
}
