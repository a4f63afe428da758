// Bounded HTTP(S) GET for the read-only model store and remote training data: https unless allowed, no
// downgrade on redirect, connect / response / idle timeouts, and a byte cap enforced while the body streams.
import http from "node:http";
import https from "node:https";
import { Readable, Transform } from "node:stream";

export interface HttpGetLimits {
  /** Refuse a body larger than this (by Content-Length up front, else while it streams). */
  maxBytes: number;
  /** TCP (and TLS) connection set up within this long (ms). */
  connectTimeoutMs: number;
  /** Response headers within this long of the request (ms). */
  responseTimeoutMs: number;
  /** No gap longer than this between body chunks (ms): a stalled server cannot hold a reader forever. */
  idleTimeoutMs: number;
  /** Plain http to a host other than loopback; loopback never leaves the machine (or the pod), so it needs no opt-in. */
  allowInsecureHttp: boolean;
  maxRedirects: number;
  /** Extra trusted CA certificates (PEM), besides Node's and NODE_EXTRA_CA_CERTS. */
  ca?: string | Buffer;
}

export const DEFAULT_HTTP_LIMITS: HttpGetLimits = {
  maxBytes: 256 * 1024 * 1024,
  connectTimeoutMs: 10_000,
  responseTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  allowInsecureHttp: false,
  maxRedirects: 5,
};

export type HttpGetErrorCode = "not-found" | "too-large" | "insecure" | "timeout" | "status" | "network";

export class HttpGetError extends Error {
  constructor(
    message: string,
    readonly code: HttpGetErrorCode,
    readonly status?: number,
  ) {
    super(message);
    this.name = "HttpGetError";
  }
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Throws unless `url` is https, or http to loopback, or http allowed by `allowInsecureHttp`. */
export function checkHttpUrl(url: URL, allowInsecureHttp: boolean): void {
  if (url.protocol === "https:") return;
  if (url.protocol !== "http:") throw new HttpGetError(`${url.href}: only https:// (or http://) URLs can be fetched`, "insecure");
  if (!allowInsecureHttp && !isLoopback(url.hostname)) {
    throw new HttpGetError(
      `${url.href}: plain http to a host other than loopback is refused (anyone on the path can read or change the model); use https://, or allow it with BALLAST_ALLOW_INSECURE_HTTP=true`,
      "insecure",
    );
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** One request: resolves with the response once headers arrive, or rejects on a timeout or network error. */
function request(url: URL, limits: HttpGetLimits): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === "https:" ? https.get : http.get;
    const req = get(url, { ...(limits.ca ? { ca: limits.ca } : {}), headers: { accept: "*/*" } });
    const fail = (err: HttpGetError): void => {
      req.destroy(err);
      reject(err);
    };
    const connectTimer = setTimeout(
      () => fail(new HttpGetError(`GET ${url.href}: no connection within ${limits.connectTimeoutMs} ms`, "timeout")),
      limits.connectTimeoutMs,
    );
    const responseTimer = setTimeout(
      () => fail(new HttpGetError(`GET ${url.href}: no response within ${limits.responseTimeoutMs} ms`, "timeout")),
      limits.responseTimeoutMs,
    );
    req.once("socket", (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once("connect", () => clearTimeout(connectTimer));
    });
    req.once("error", (err) => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      reject(err instanceof HttpGetError ? err : new HttpGetError(`GET ${url.href} failed: ${err.message}`, "network"));
    });
    req.once("response", (res) => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      resolve({ req, res });
    });
  });
}

/**
 * GETs `href` and resolves with its body as a stream once a 2xx response arrives. The stream errors with an
 * HttpGetError when the body passes maxBytes or stalls for idleTimeoutMs. Redirects are followed (at most
 * maxRedirects), never from https to http.
 */
export async function httpGetStream(href: string, limits: HttpGetLimits = DEFAULT_HTTP_LIMITS): Promise<Readable> {
  let url = new URL(href);
  checkHttpUrl(url, limits.allowInsecureHttp);
  for (let redirects = 0; ; redirects++) {
    const { req, res } = await request(url, limits);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location) {
      res.resume();
      if (redirects >= limits.maxRedirects) throw new HttpGetError(`GET ${href}: more than ${limits.maxRedirects} redirects`, "status", status);
      const next = new URL(res.headers.location, url);
      if (url.protocol === "https:" && next.protocol !== "https:") {
        throw new HttpGetError(`GET ${url.href}: redirect to ${next.href} refused: it leaves https`, "insecure", status);
      }
      checkHttpUrl(next, limits.allowInsecureHttp);
      url = next;
      continue;
    }
    if (status < 200 || status > 299) {
      res.resume();
      if (status === 404) throw new HttpGetError(`GET ${url.href}: 404 not found`, "not-found", 404);
      throw new HttpGetError(`GET ${url.href}: HTTP ${status}`, "status", status);
    }
    const declared = Number(res.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      req.destroy();
      throw new HttpGetError(`GET ${url.href}: ${declared} bytes is over the limit of ${limits.maxBytes}`, "too-large", status);
    }
    return capped(url, req, res, limits);
  }
}

/** The body, failing once it passes maxBytes or goes idle. */
function capped(url: URL, req: http.ClientRequest, res: http.IncomingMessage, limits: HttpGetLimits): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limits.maxBytes) done(new HttpGetError(`GET ${url.href}: body passed the limit of ${limits.maxBytes} bytes`, "too-large"));
      else done(null, chunk);
    },
  });
  req.setTimeout(limits.idleTimeoutMs, () => req.destroy(new HttpGetError(`GET ${url.href}: body stalled for ${limits.idleTimeoutMs} ms`, "timeout")));
  res.once("error", (err) => out.destroy(err instanceof HttpGetError ? err : new HttpGetError(`GET ${url.href}: ${err.message}`, "network")));
  req.once("error", (err) => out.destroy(err instanceof HttpGetError ? err : new HttpGetError(`GET ${url.href}: ${err.message}`, "network")));
  // A server that closes before Content-Length is met: the body is incomplete, never served as complete.
  res.once("aborted", () => out.destroy(new HttpGetError(`GET ${url.href}: connection closed before the body ended`, "network")));
  out.once("close", () => req.destroy());
  res.pipe(out);
  return out;
}

/** The whole body (bounded by maxBytes). */
export async function httpGetBytes(href: string, limits: HttpGetLimits = DEFAULT_HTTP_LIMITS): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await httpGetStream(href, limits)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
