// The sidecar's public port: a `net` server whose connections carry inference calls as bytes. Each request head is
// parsed strictly (http1-head.ts); an unambiguous `POST …/infer` with a Content-Length body is read whole and
// handed to the proxy (proxy.ts: request id, monitor, mirror) without Node's HTTP machinery, which costs as much
// CPU per request as the model server's own work (docs/benchmarks.md). Anything else — other routes, chunked
// bodies, anything odd — hands the connection, with the bytes read so far, to the Node HTTP server behind it,
// which answers it exactly as before (llhttp's parsing, limits and errors); a connection handed over stays there.
import { STATUS_CODES, type Server } from "node:http";
import net from "node:net";
import { CONNECTION_LIMITS } from "../http-json.js";
import { parseRequestHead, type RelayableRequest } from "./http1-head.js";

/** One relayed request, read whole. */
export interface RelayedRequest {
  target: string;
  /** Header fields, names lowercased (http1-head.ts). */
  headers: Record<string, string>;
  body: Buffer;
  /** When its head was complete (process.hrtime.bigint()). */
  startedNs: bigint;
  /** When it arrived (ms since the epoch). */
  receivedAt: number;
}

/** Where the answer to one relayed request goes. Exactly one of send, or start … end / abort, is called. */
export interface RelayReply {
  /** A whole response: header lines each ending in CRLF, without framing or Connection headers. */
  send(status: number, headerLines: string, body: Buffer): void;
  /** Starts a streamed response: its length known, or sent chunked, or ended by closing the connection. */
  start(status: number, headerLines: string, framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" }): void;
  /** Body bytes of a started response; false when the caller is slow to read (then `drained` is called once it caught up). */
  write(chunk: Buffer): boolean;
  end(): void;
  /** The answer cannot be completed (the model server failed mid-body): the caller's connection closes. */
  abort(): void;
  /** Set by the proxy: called when the caller has gone away before the answer was complete. */
  gone?: () => void;
  drained?: () => void;
}

export interface RelayOptions {
  /** Answers every connection the relay does not keep (its limits set by applyConnectionLimits). */
  httpServer: Server;
  maxBodyBytes: number;
  /** Whether a relayable head is one the proxy takes now (the inference route, monitoring set up). */
  takes(target: string): boolean;
  handle(request: RelayedRequest, reply: RelayReply): void;
}

/** Node's server limit on a request head (--max-http-header-size). */
const MAX_HEAD_BYTES = 16 * 1024;
/** How often connection deadlines are checked: Node's server checks its own every 30 s, this is finer. */
const DEADLINE_CHECK_MS = 1000;

class RelayConnection {
  /** What was read and not yet taken, in arrival order: joined only when a head is complete or a body is whole. */
  private chunks: Buffer[] = [];
  private length = 0;
  /** Where to look for the end of a head not yet complete: not again through the bytes already searched. */
  private scanned = 0;
  private head: RelayableRequest | undefined;
  private reply: ConnectionReply | undefined;
  private served = 0;
  /** When the connection is closed for being silent or slow (ms since the epoch). */
  deadline: number;
  private deadlineKind: "idle" | "request" | "none" = "request";
  private closing = false;

  constructor(
    readonly socket: net.Socket,
    private readonly relay: Relay,
  ) {
    this.deadline = Date.now() + CONNECTION_LIMITS.headersTimeout;
    socket.on("data", this.onData);
    socket.on("end", this.onGone);
    socket.on("close", this.onGone);
    socket.on("error", this.onGone);
    socket.on("drain", this.onDrain);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.reply) {
      // Pipelined requests wait their turn; past one request's worth the caller waits too.
      if (this.length > MAX_HEAD_BYTES + this.relay.options.maxBodyBytes) this.socket.pause();
      return;
    }
    this.next();
  };

  /** Everything read and not yet taken, as one buffer. */
  private joined(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0]!;
  }

  private readonly onGone = (): void => {
    this.relay.connections.delete(this);
    const reply = this.reply;
    this.reply = undefined;
    if (reply && !reply.finished) reply.gone?.();
    if (!this.socket.destroyed) this.socket.destroy();
  };

  private readonly onDrain = (): void => {
    if (this.reply) this.reply.drained?.();
    else this.next();
  };

  /** Takes the next complete request from what was read: relays it, hands the connection over, or waits. */
  private next(): void {
    if (this.closing || this.socket.writableNeedDrain) return;
    if (this.length === 0) {
      this.setDeadline("idle", CONNECTION_LIMITS.keepAliveTimeout);
      return;
    }
    if (!this.head) {
      // A request's first bytes: after an idle wait, or pipelined behind the last answer.
      if (this.deadlineKind !== "request") this.setDeadline("request", CONNECTION_LIMITS.headersTimeout);
      const buffered = this.joined();
      // A head that arrives a few bytes at a time is searched once through, not once per piece.
      if (buffered.length <= MAX_HEAD_BYTES && buffered.indexOf("\r\n\r\n", this.scanned, "latin1") < 0) {
        this.scanned = Math.max(0, buffered.length - 3);
        return;
      }
      this.scanned = 0;
      const parsed = parseRequestHead(buffered, 0, MAX_HEAD_BYTES, this.relay.options.maxBodyBytes);
      if (parsed.kind === "incomplete") return;
      if (parsed.kind === "not-relayable" || !this.relay.options.takes(parsed.target)) {
        this.handOver();
        return;
      }
      this.head = parsed;
      // The whole request within requestTimeout of its first byte (or of the connection, for its first), as Node's server.
      this.deadline = this.deadline - CONNECTION_LIMITS.headersTimeout + CONNECTION_LIMITS.requestTimeout;
    }
    const head = this.head;
    const end = head.headEnd + head.contentLength;
    if (this.length < end) return;
    this.head = undefined;
    const buffered = this.joined();
    const body = buffered.subarray(head.headEnd, end);
    this.chunks = buffered.length === end ? [] : [buffered.subarray(end)];
    this.length -= end;
    this.served++;
    const last = head.close || this.relay.draining || this.served >= CONNECTION_LIMITS.maxRequestsPerSocket;
    this.deadlineKind = "none";
    this.deadline = Infinity;
    this.reply = new ConnectionReply(this, last);
    this.relay.options.handle({ target: head.target, headers: head.headers, body, startedNs: process.hrtime.bigint(), receivedAt: Date.now() }, this.reply);
  }

  /** The exchange is answered: the next request, or the end of the connection after its last. */
  answered(last: boolean): void {
    this.reply = undefined;
    if (last || this.relay.draining) {
      this.close();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  }

  /** Node's server takes the connection from here, with what was read of its next request. */
  private handOver(): void {
    this.relay.connections.delete(this);
    const { socket } = this;
    socket.off("data", this.onData);
    socket.off("end", this.onGone);
    socket.off("close", this.onGone);
    socket.off("error", this.onGone);
    socket.off("drain", this.onDrain);
    socket.unshift(this.joined());
    this.relay.options.httpServer.emit("connection", socket);
  }

  private setDeadline(kind: "idle" | "request", ms: number): void {
    this.deadlineKind = kind;
    this.deadline = Date.now() + ms;
  }

  /** Past its deadline: an idle connection closes; a request that is slow to arrive gets Node's 408 first. */
  expire(): void {
    if (this.deadlineKind === "request") this.socket.end("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n");
    this.socket.destroySoon();
    this.relay.connections.delete(this);
  }

  /** Ends the connection once what was written is sent. */
  close(): void {
    this.closing = true;
    this.relay.connections.delete(this);
    this.socket.destroySoon();
  }

  get idle(): boolean {
    return this.reply === undefined;
  }
}

/** Writes one exchange's answer to its connection, framed for keep-alive (or the connection's last). */
class ConnectionReply implements RelayReply {
  gone?: () => void;
  drained?: () => void;
  finished = false;
  private chunked = false;

  constructor(
    private readonly connection: RelayConnection,
    private last: boolean,
  ) {}

  private statusLine(status: number): string {
    return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  }

  private connectionHeader(): string {
    return this.last ? "connection: close\r\n" : `connection: keep-alive\r\nkeep-alive: timeout=${CONNECTION_LIMITS.keepAliveTimeout / 1000}\r\n`;
  }

  send(status: number, headerLines: string, body: Buffer): void {
    const head = `${this.statusLine(status)}${headerLines}content-length: ${body.length}\r\n${this.connectionHeader()}\r\n`;
    // One buffer, one write: cheaper than a corked writev of a string and a buffer.
    this.connection.socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    this.finish();
  }

  start(status: number, headerLines: string, framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" }): void {
    let lines = headerLines;
    if (framing.kind === "length") lines += `content-length: ${framing.length}\r\n`;
    else if (framing.kind === "chunked") lines += "transfer-encoding: chunked\r\n";
    // A body that ends with the model server's connection ends the caller's too.
    else this.last = true;
    this.chunked = framing.kind === "chunked";
    this.connection.socket.write(`${this.statusLine(status)}${lines}${this.connectionHeader()}\r\n`, "latin1");
  }

  write(chunk: Buffer): boolean {
    const { socket } = this.connection;
    if (!this.chunked) return socket.write(chunk);
    if (chunk.length === 0) return true;
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
    socket.write(chunk);
    const ok = socket.write("\r\n", "latin1");
    socket.uncork();
    return ok;
  }

  end(): void {
    if (this.chunked) this.connection.socket.write("0\r\n\r\n", "latin1");
    this.finish();
  }

  abort(): void {
    this.finished = true;
    this.connection.socket.destroy();
  }

  private finish(): void {
    this.finished = true;
    this.connection.answered(this.last);
  }
}

/** The public listener: relays inference connections, hands every other connection to `options.httpServer`. */
export class Relay {
  readonly server: net.Server;
  readonly connections = new Set<RelayConnection>();
  draining = false;
  private readonly deadlines: NodeJS.Timeout;

  constructor(readonly options: RelayOptions) {
    // As Node's HTTP server creates its own: a caller's half-close is read like a hang-up, and no Nagle delay.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.connections.add(new RelayConnection(socket, this)));
    // The HTTP server never binds: its connections come from here. Node starts tracking them (header and request
    // timeouts, idle connections) when it is listening.
    options.httpServer.emit("listening");
    this.deadlines = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) if (c.deadline <= now) c.expire();
    }, DEADLINE_CHECK_MS).unref();
  }

  /**
   * Stops accepting, closes idle connections and each busy one after its answer (on both servers), and after
   * `timeoutMs` drops what is left.
   */
  async close(timeoutMs: number): Promise<void> {
    this.draining = true;
    const { httpServer } = this.options;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sweep = (): void => {
      for (const c of this.connections) if (c.idle) c.close();
      httpServer.closeIdleConnections();
    };
    sweep();
    const sweeping = setInterval(sweep, 50);
    const timer = setTimeout(() => {
      for (const c of this.connections) c.socket.destroy();
      httpServer.closeAllConnections();
    }, timeoutMs);
    try {
      await closed;
    } finally {
      clearInterval(sweeping);
      clearTimeout(timer);
      clearInterval(this.deadlines);
      httpServer.close();
    }
  }
}
