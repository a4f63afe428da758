// Keep-alive sockets to the model server for the relay (relay.ts): one exchange at a time on each, the request
// written as bytes, the response head parsed strictly (http1-head.ts) and its body handed on as it arrives, framed
// by Content-Length or the chunked coding. undici does the same for every other proxied call; here there is no
// header object, promise or stream per request.
import net from "node:net";
import { ChunkedDecoder, parseResponseHead, type ResponseHead } from "./http1-head.js";
import type { UpstreamAddress } from "./upstream.js";

/** Why an exchange with the model server failed: it refused the connection, reset it, or did not answer in time. */
export class UpstreamSocketError extends Error {
  constructor(
    readonly reason: "connect" | "reset" | "timeout",
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "UpstreamSocketError";
  }
}

export interface UpstreamResponseHandler {
  onHead(head: ResponseHead): void;
  /** Body bytes as they come, a chunked body decoded. */
  onBody(chunk: Buffer): void;
  onEnd(): void;
  /** Before onEnd; after it, nothing more is called. */
  onError(err: UpstreamSocketError): void;
}

/** One exchange in flight: paused while the caller is slow to read, cancelled when the caller went away. */
export interface UpstreamExchange {
  pause(): void;
  resume(): void;
  cancel(): void;
}

/** A model server response head is a few hundred bytes; Node's server limit is 16 KiB. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/** Idle sockets close well before the model server's 65 s keep-alive, so a reused one is rarely closing under us. */
const IDLE_TIMEOUT_MS = 30_000;

class UpstreamSocket implements UpstreamExchange {
  private handler: UpstreamResponseHandler | undefined;
  private head: ResponseHead | undefined;
  private pending: Buffer | undefined;
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private done = false;
  private connected = false;

  constructor(
    readonly socket: net.Socket,
    private readonly release: (s: UpstreamSocket) => void,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on("connect", () => (this.connected = true));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onClosed());
    socket.on("close", () => this.onClosed());
    socket.on("error", (err: Error & { code?: string }) => {
      const refused = !this.connected && (err.code === "ECONNREFUSED" || err.code === "ENOENT");
      this.fail(new UpstreamSocketError(refused ? "connect" : "reset", err.message, err.code));
    });
    socket.on("timeout", () => {
      if (this.handler) this.fail(new UpstreamSocketError("timeout", "the model server did not answer in time", "ETIMEDOUT"));
      else socket.destroy();
    });
  }

  send(request: Buffer, handler: UpstreamResponseHandler): void {
    this.handler = handler;
    this.head = undefined;
    this.pending = undefined;
    this.chunked = undefined;
    this.done = false;
    this.socket.setTimeout(this.timeoutMs);
    this.socket.write(request);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  cancel(): void {
    this.handler = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const handler = this.handler;
    if (!handler) {
      // Bytes nobody asked for: the connection is out of step.
      this.socket.destroy();
      return;
    }
    let body = chunk;
    if (!this.head) {
      const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      let head: ResponseHead | undefined;
      try {
        head = parseResponseHead(buf, MAX_RESPONSE_HEAD_BYTES);
      } catch (err) {
        this.fail(new UpstreamSocketError("reset", (err as Error).message));
        return;
      }
      if (!head) {
        if (buf.length > MAX_RESPONSE_HEAD_BYTES) this.fail(new UpstreamSocketError("reset", "response head from the model server too large"));
        else this.pending = buf;
        return;
      }
      this.pending = undefined;
      this.head = head;
      if (head.framing.kind === "length") this.remaining = head.framing.length;
      else if (head.framing.kind === "chunked") this.chunked = new ChunkedDecoder();
      handler.onHead(head);
      if (this.handler !== handler) return;
      body = buf.subarray(head.headEnd);
    }
    const framing = this.head.framing.kind;
    if (framing === "close") {
      if (body.length > 0) handler.onBody(body);
      return;
    }
    let end: number;
    if (framing === "length") {
      const take = Math.min(this.remaining, body.length);
      this.remaining -= take;
      if (take > 0) handler.onBody(take === body.length ? body : body.subarray(0, take));
      end = this.remaining > 0 ? -1 : take;
    } else {
      try {
        end = this.chunked!.feed(body, (data) => this.handler === handler && handler.onBody(data));
      } catch (err) {
        this.fail(new UpstreamSocketError("reset", (err as Error).message));
        return;
      }
    }
    // The caller went away meanwhile, or the body goes on.
    if (this.handler !== handler || end < 0) return;
    this.finish(end < body.length || this.head.close);
  }

  private finish(close: boolean): void {
    const handler = this.handler!;
    this.handler = undefined;
    this.done = true;
    if (close) this.socket.destroy();
    else {
      this.socket.setTimeout(IDLE_TIMEOUT_MS);
      this.release(this);
    }
    handler.onEnd();
  }

  private onClosed(): void {
    if (!this.handler) return;
    // A body framed by the connection's end is complete now; anything else was cut short.
    if (this.head?.framing.kind === "close") this.finish(true);
    else this.fail(new UpstreamSocketError("reset", "the model server closed the connection mid-exchange", "ECONNRESET"));
  }

  private fail(err: UpstreamSocketError): void {
    const handler = this.handler;
    this.handler = undefined;
    this.socket.destroy();
    if (handler && !this.done) handler.onError(err);
  }

  get idle(): boolean {
    return this.handler === undefined && !this.socket.destroyed;
  }
}

/** The pool: idle sockets reused last-in first-out (the warmest), new ones opened when none is idle. */
export class UpstreamSockets {
  private readonly idle: UpstreamSocket[] = [];
  private readonly all = new Set<UpstreamSocket>();

  constructor(
    private readonly address: UpstreamAddress,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request (head and body bytes); the handler hears the response. */
  send(request: Buffer, handler: UpstreamResponseHandler): UpstreamExchange {
    let s: UpstreamSocket | undefined;
    while ((s = this.idle.pop()) && !s.idle);
    if (!s) s = this.open();
    s.send(request, handler);
    return s;
  }

  private open(): UpstreamSocket {
    const socket =
      this.address.kind === "tcp"
        ? net.connect({ host: this.address.url.hostname.replace(/^\[|\]$/g, ""), port: Number(this.address.url.port || 80) })
        : net.connect({ path: this.address.socketPath });
    const s = new UpstreamSocket(socket, (r) => this.idle.push(r), this.timeoutMs);
    this.all.add(s);
    socket.on("close", () => {
      this.all.delete(s);
      const i = this.idle.indexOf(s);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return s;
  }

  close(): void {
    for (const s of this.all) s.socket.destroy();
  }
}
