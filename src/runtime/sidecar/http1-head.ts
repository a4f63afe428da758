// A strict HTTP/1.1 message-head parser for the sidecar's relay (relay.ts). It accepts only heads that every
// conforming parser frames the same way — CRLF line ends, token header names, no folding, one Content-Length of
// digits and no Transfer-Encoding on a request — and says "not mine" for anything else, which then goes to Node's
// own (llhttp) server. Narrowing what is relayed is what keeps request smuggling out: the relay never forwards a
// request whose length the model server could read differently.

/** A request head the relay forwards byte for byte (but for its hop-by-hop headers and the request id). */
export interface RelayableRequest {
  kind: "relayable";
  /** Offset just past the head's blank line: where the body starts. */
  headEnd: number;
  target: string;
  contentLength: number;
  /** Header fields as sent, names lowercased; each name appears once. */
  headers: Record<string, string>;
  /** The caller asked to close after this exchange (`Connection: close`). */
  close: boolean;
}

export type RequestHeadParse =
  /** No blank line yet, and the bytes so far are within the bound. */
  | { kind: "incomplete" }
  | RelayableRequest
  /** Anything else: Node's server answers it (and 400/431s what is malformed or too large). */
  | { kind: "not-relayable"; reason: string };

export interface ResponseHead {
  /** Offset just past the head's blank line. */
  headEnd: number;
  status: number;
  /** How the body ends: after `length` bytes, at the end of the chunked coding, or when the server closes. */
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };
  /** Header lines as sent, each ending in CRLF, without the hop-by-hop ones and the framing (Content-Length, Transfer-Encoding). */
  forwarded: string;
  headers: Record<string, string>;
  /** The server will close the connection after this response. */
  close: boolean;
}

/**
 * A field line: a token name, a colon, then a value of visible ASCII, obs-text, spaces and tabs (RFC 9110 §5.5;
 * no CR, LF, NUL or other controls). Linear: the spaces around the value are stripped after, by trimFieldValue.
 */
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
/** origin-form only: a proxy's absolute-form or an asterisk goes to Node's server. */
const ORIGIN_FORM = /^\/[!-~]*$/;
/** Headers that belong to one hop (RFC 9110 §7.6.1), never forwarded. */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);
/** Request headers that need more than a byte relay (interim responses, protocol switch, body coding). */
const NOT_RELAYED_REQUEST = new Set(["transfer-encoding", "expect", "upgrade", "te", "trailer"]);

interface Lines {
  headEnd: number;
  lines: string[];
}

/** The head's lines, or why it is not one strict HTTP/1.1 head; undefined while the blank line has not come. */
function headLines(buf: Buffer, start: number, maxHeadBytes: number): Lines | undefined | string {
  const end = buf.indexOf("\r\n\r\n", start, "latin1");
  if (end < 0) return buf.length - start > maxHeadBytes ? "head too large" : undefined;
  if (end + 4 - start > maxHeadBytes) return "head too large";
  const head = buf.toString("latin1", start, end);
  // A bare CR or LF inside: two parsers could split the lines differently. (FIELD_LINE refuses them in fields.)
  const lines = head.split("\r\n");
  if (lines[0]!.includes("\n") || lines[0]!.includes("\r")) return "bare CR or LF";
  return { headEnd: end + 4, lines };
}

/** A field value without the spaces and tabs around it, and only those (String.trim would also take NBSP, VT, FF). */
function trimFieldValue(raw: string): string {
  let from = 0;
  let to = raw.length;
  while (from < to && (raw.charCodeAt(from) === 32 || raw.charCodeAt(from) === 9)) from++;
  while (to > from && (raw.charCodeAt(to - 1) === 32 || raw.charCodeAt(to - 1) === 9)) to--;
  return from === 0 && to === raw.length ? raw : raw.slice(from, to);
}

/**
 * Header fields, names lowercased; a string when one is malformed or repeated. With `forwarded`, also the lines
 * a proxy passes on (all but hop-by-hop and framing headers), each ending in CRLF.
 */
function parseFields(lines: string[], forwarded?: { lines: string }): Record<string, string> | string {
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // Also refuses obs-fold (a line starting with a space), whitespace before the colon, bare CR or LF.
    const field = FIELD_LINE.exec(line);
    if (!field) return "malformed header line";
    const name = field[1]!.toLowerCase();
    if (Object.hasOwn(headers, name)) return `repeated header ${name}`;
    headers[name] = trimFieldValue(field[2]!);
    if (forwarded && !HOP_BY_HOP.has(name) && name !== "content-length") forwarded.lines += line + "\r\n";
  }
  return headers;
}

/** Whether a Connection header asks to close; undefined when it lists anything but close and keep-alive. */
function connectionClose(value: string | undefined): boolean | undefined {
  if (value === undefined) return false;
  let close = false;
  for (const option of value.split(",")) {
    const o = option.trim().toLowerCase();
    if (o === "close") close = true;
    else if (o !== "keep-alive") return undefined;
  }
  return close;
}

/**
 * Parses the request head starting at `start` of `buf`: relayable only for `POST <origin-form> HTTP/1.1` with one
 * Host, one Content-Length of digits up to `maxBodyBytes`, and none of Transfer-Encoding, Expect, Upgrade, TE or
 * Trailer; Connection may say only close or keep-alive.
 */
export function parseRequestHead(buf: Buffer, start: number, maxHeadBytes: number, maxBodyBytes: number): RequestHeadParse {
  const parsed = headLines(buf, start, maxHeadBytes);
  if (parsed === undefined) return { kind: "incomplete" };
  if (typeof parsed === "string") return { kind: "not-relayable", reason: parsed };
  const requestLine = parsed.lines[0]!.split(" ");
  if (requestLine.length !== 3 || requestLine[0] !== "POST" || requestLine[2] !== "HTTP/1.1")
    return { kind: "not-relayable", reason: "not a POST in HTTP/1.1" };
  const target = requestLine[1]!;
  if (!ORIGIN_FORM.test(target)) return { kind: "not-relayable", reason: "target not in origin form" };
  const headers = parseFields(parsed.lines);
  if (typeof headers === "string") return { kind: "not-relayable", reason: headers };
  for (const name of NOT_RELAYED_REQUEST) if (Object.hasOwn(headers, name)) return { kind: "not-relayable", reason: `has ${name}` };
  if (headers.host === undefined) return { kind: "not-relayable", reason: "no host" };
  const length = headers["content-length"];
  if (length === undefined || !CONTENT_LENGTH.test(length)) return { kind: "not-relayable", reason: "no content-length of digits" };
  const contentLength = Number(length);
  if (contentLength > maxBodyBytes) return { kind: "not-relayable", reason: "body larger than recorded" };
  const close = connectionClose(headers.connection);
  if (close === undefined) return { kind: "not-relayable", reason: "connection options" };
  return { kind: "relayable", headEnd: parsed.headEnd, target, contentLength, headers, close };
}

/**
 * Parses a response head from the model server: undefined until complete; throws on anything not strictly
 * HTTP/1.1 (the relay then drops that upstream connection and answers 502-style, as a failed upstream call).
 */
export function parseResponseHead(buf: Buffer, maxHeadBytes: number): ResponseHead | undefined {
  const parsed = headLines(buf, 0, maxHeadBytes);
  if (parsed === undefined) return undefined;
  if (typeof parsed === "string") throw new Error(`malformed response from the model server: ${parsed}`);
  const statusLine = /^HTTP\/1\.1 ([1-9][0-9]{2}) /.exec(parsed.lines[0]! + " ");
  if (!statusLine) throw new Error("malformed response from the model server: status line");
  const status = Number(statusLine[1]);
  if (status < 200) throw new Error(`interim response ${status} from the model server, never asked for`);
  const forwarded = { lines: "" };
  const headers = parseFields(parsed.lines, forwarded);
  if (typeof headers === "string") throw new Error(`malformed response from the model server: ${headers}`);
  const close = connectionClose(headers.connection) ?? true;
  let framing: ResponseHead["framing"];
  const te = headers["transfer-encoding"];
  const length = headers["content-length"];
  if (status === 204 || status === 304) framing = { kind: "length", length: 0 };
  else if (te !== undefined) {
    if (te.toLowerCase() !== "chunked" || length !== undefined) throw new Error("malformed response from the model server: transfer coding");
    framing = { kind: "chunked" };
  } else if (length !== undefined) {
    if (!CONTENT_LENGTH.test(length)) throw new Error("malformed response from the model server: content-length");
    framing = { kind: "length", length: Number(length) };
  } else framing = { kind: "close" };
  return { headEnd: parsed.headEnd, status, framing, forwarded: forwarded.lines, headers, close: close || framing.kind === "close" };
}

/**
 * Decodes a chunked body fed as its bytes come (RFC 9112 §7.1): chunk sizes in hex, chunk data, then the last
 * chunk and optional trailer lines (dropped, as a proxy may). Extensions are skipped; anything malformed throws.
 */
export class ChunkedDecoder {
  private state: "size" | "data" | "data-crlf" | "trailer" = "size";
  private line = "";
  private remaining = 0;

  /** Consumes `buf`, handing each piece of chunk data to `onData`: the offset just past the body's end, or -1 when it goes on past `buf`. */
  feed(buf: Buffer, onData: (data: Buffer) => void): number {
    let i = 0;
    while (i < buf.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = "data-crlf";
        continue;
      }
      const nl = buf.indexOf(10, i);
      const end = nl < 0 ? buf.length : nl + 1;
      this.line += buf.toString("latin1", i, end);
      i = end;
      if (this.line.length > 4096) throw new Error("malformed chunked body from the model server: line too long");
      if (nl < 0) break;
      const line = this.line;
      this.line = "";
      if (!line.endsWith("\r\n")) throw new Error("malformed chunked body from the model server: bare LF");
      const text = line.slice(0, -2);
      if (this.state === "data-crlf") {
        if (text !== "") throw new Error("malformed chunked body from the model server: chunk not followed by CRLF");
        this.state = "size";
      } else if (this.state === "size") {
        const size = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(text);
        if (!size) throw new Error("malformed chunked body from the model server: chunk size");
        this.remaining = parseInt(size[1]!, 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (text === "") return i;
    }
    return -1;
  }
}
