// JSON over node:http for serve and the sidecar: bounded body reading, `{"error": ...}` replies, graceful close.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { RequestError } from "./oip.js";

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_BATCH_ROWS = 10_000;

/** Reads the whole body, failing with 413 past `limit` bytes (checked on Content-Length first). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new RequestError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new RequestError(413, `request body exceeds the limit of ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
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

export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
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

export function listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? { host: addr.address, port: addr.port } : { host, port });
    });
  });
}
