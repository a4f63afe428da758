// The relay's head parser: only an unambiguous inference request is relayable; every head two parsers could frame
// differently (the request-smuggling shapes) is left to Node's server, and a model server's response is framed by
// its Content-Length or chunked coding.
import { describe, expect, it } from "vitest";
import { ChunkedDecoder, parseRequestHead, parseResponseHead } from "../../../src/runtime/sidecar/http1-head.js";

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 1024;

function parse(head: string): ReturnType<typeof parseRequestHead> {
  return parseRequestHead(Buffer.from(head, "latin1"), 0, MAX_HEAD, MAX_BODY);
}

const INFER = "POST /v2/models/weather/infer HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n";

describe("parseRequestHead", () => {
  it("relays a plain inference POST: target, length, lowercased headers, where the body starts", () => {
    const parsed = parse(INFER + '{"inputs":[]}');
    expect(parsed).toEqual({
      kind: "relayable",
      headEnd: INFER.length,
      target: "/v2/models/weather/infer",
      contentLength: 12,
      headers: { host: "sidecar", "content-type": "application/json", "content-length": "12" },
      close: false,
    });
  });

  it("parses a head that starts part-way into the buffer (the next pipelined request)", () => {
    const two = Buffer.from("x".repeat(5) + INFER, "latin1");
    expect(parseRequestHead(two, 5, MAX_HEAD, MAX_BODY)).toMatchObject({ kind: "relayable", headEnd: 5 + INFER.length });
  });

  it("waits for the rest of a head, and says so", () => {
    expect(parse(INFER.slice(0, 40))).toEqual({ kind: "incomplete" });
    expect(parse(INFER.slice(0, -1))).toEqual({ kind: "incomplete" });
  });

  it("strips only spaces and tabs around a value, keeping obs-text", () => {
    const parsed = parse(INFER.replace("Host: sidecar", "Host: \t sidecar \t").replace("application/json", "application/json\xe9"));
    expect(parsed).toMatchObject({ kind: "relayable", headers: { host: "sidecar", "content-type": "application/json\xe9" } });
  });

  it("notes Connection: close and accepts keep-alive", () => {
    expect(parse(INFER.replace("Host:", "Connection: close\r\nHost:"))).toMatchObject({ kind: "relayable", close: true });
    expect(parse(INFER.replace("Host:", "Connection: Keep-Alive\r\nHost:"))).toMatchObject({ kind: "relayable", close: false });
  });

  const notRelayable: [string, string][] = [
    ["Content-Length and Transfer-Encoding together", INFER.replace("Host:", "Transfer-Encoding: chunked\r\nHost:")],
    ["a chunked body", INFER.replace("Content-Length: 12", "Transfer-Encoding: chunked")],
    ["two Content-Lengths, equal", INFER.replace("Host:", "Content-Length: 12\r\nHost:")],
    ["two Content-Lengths, different", INFER.replace("Host:", "Content-Length: 13\r\nHost:")],
    ["a signed Content-Length", INFER.replace("Content-Length: 12", "Content-Length: +12")],
    ["a Content-Length with a space inside", INFER.replace("Content-Length: 12", "Content-Length: 1 2")],
    ["a Content-Length followed by a form feed", INFER.replace("Content-Length: 12", "Content-Length: 12\f")],
    ["a Content-Length followed by a no-break space", INFER.replace("Content-Length: 12", "Content-Length: 12\xa0")],
    ["a Content-Length list", INFER.replace("Content-Length: 12", "Content-Length: 12, 12")],
    ["a hex Content-Length", INFER.replace("Content-Length: 12", "Content-Length: 0x0c")],
    ["no Content-Length", INFER.replace("Content-Length: 12\r\n", "")],
    ["a body larger than is recorded", INFER.replace("Content-Length: 12", "Content-Length: 1025")],
    ["an obs-fold continuation line", INFER.replace("Content-Type: application/json", "Content-Type: application/\r\n json")],
    ["a bare LF line end", INFER.replace("Host: sidecar\r\n", "Host: sidecar\n")],
    ["a bare CR inside a line", INFER.replace("Host: sidecar", "Host: side\rcar")],
    ["a space before the colon", INFER.replace("Content-Length: 12", "Content-Length : 12")],
    ["a header name with a non-token character", INFER.replace("Host:", "X[y]: 1\r\nHost:")],
    ["a NUL in a value", INFER.replace("sidecar", "side\0car")],
    ["a bare LF inside a header value", INFER.replace("Host: sidecar", "Host: side\ncar")],
    ["HTTP/1.0", INFER.replace("HTTP/1.1", "HTTP/1.0")],
    ["an absolute-form target", INFER.replace("POST /v2", "POST http://evil.example/v2")],
    ["two spaces in the request line", INFER.replace("POST /v2", "POST  /v2")],
    ["a GET", INFER.replace("POST", "GET")],
    ["a lowercase method", INFER.replace("POST", "post")],
    ["Expect: 100-continue", INFER.replace("Host:", "Expect: 100-continue\r\nHost:")],
    ["Upgrade", INFER.replace("Host:", "Upgrade: websocket\r\nHost:")],
    ["TE", INFER.replace("Host:", "TE: trailers\r\nHost:")],
    ["a Connection option naming another header", INFER.replace("Host:", "Connection: close, x-secret\r\nHost:")],
    ["no Host", INFER.replace("Host: sidecar\r\n", "")],
    ["two Hosts", INFER.replace("Host: sidecar", "Host: a\r\nHost: b")],
  ];
  it.each(notRelayable)("leaves %s to Node's server", (_case, head) => {
    expect(parse(head).kind).toBe("not-relayable");
  });

  it("leaves an oversized head to Node's server (431 there), complete or not", () => {
    const big = INFER.replace("Host:", `X-Pad: ${"p".repeat(MAX_HEAD)}\r\nHost:`);
    expect(parse(big)).toEqual({ kind: "not-relayable", reason: "head too large" });
    expect(parse(big.slice(0, MAX_HEAD + 10))).toEqual({ kind: "not-relayable", reason: "head too large" });
  });
});

describe("parseResponseHead", () => {
  const OK =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\nInference-Request-Id: a1\r\n\r\n{}";

  it("frames by Content-Length and forwards all but the framing and hop-by-hop headers", () => {
    const head = parseResponseHead(Buffer.from(OK), MAX_HEAD)!;
    expect(head).toMatchObject({ status: 200, framing: { kind: "length", length: 2 }, close: false, headEnd: OK.length - 2 });
    expect(head.forwarded).toBe("Content-Type: application/json\r\nInference-Request-Id: a1\r\n");
    expect(head.headers["inference-request-id"]).toBe("a1");
  });

  it("frames a chunked body, and one without either by the connection's end", () => {
    expect(parseResponseHead(Buffer.from("HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"), MAX_HEAD)).toMatchObject({
      framing: { kind: "chunked" },
      close: false,
    });
    expect(parseResponseHead(Buffer.from("HTTP/1.1 200 OK\r\n\r\n"), MAX_HEAD)).toMatchObject({ framing: { kind: "close" }, close: true });
  });

  it("notes that the server closes after this response", () => {
    expect(parseResponseHead(Buffer.from(OK.replace("keep-alive", "close")), MAX_HEAD)!.close).toBe(true);
  });

  it("waits for a head not complete yet", () => {
    expect(parseResponseHead(Buffer.from(OK.slice(0, 30)), MAX_HEAD)).toBeUndefined();
  });

  it.each([
    ["both framings", OK.replace("Connection", "Transfer-Encoding: chunked\r\nConnection")],
    ["a signed length", OK.replace("Content-Length: 2", "Content-Length: -2")],
    ["an interim 100", "HTTP/1.1 100 Continue\r\n\r\n"],
    ["HTTP/1.0", OK.replace("HTTP/1.1", "HTTP/1.0")],
    ["a bare LF", OK.replace("OK\r\n", "OK\n")],
  ])("refuses a response with %s", (_case, text) => {
    expect(() => parseResponseHead(Buffer.from(text), MAX_HEAD)).toThrow(/model server/);
  });
});

describe("ChunkedDecoder", () => {
  it("decodes chunks fed byte by byte, and finds the end after the trailers", () => {
    const wire = Buffer.from('5;ext=1\r\n{"a":\r\n3\r\n12}\r\n0\r\nX-Trailer: t\r\n\r\nNEXT');
    const decoder = new ChunkedDecoder();
    const data: Buffer[] = [];
    let end = -1;
    for (let i = 0; i < wire.length && end < 0; i++) {
      const at = decoder.feed(wire.subarray(i, i + 1), (d) => data.push(Buffer.from(d)));
      if (at >= 0) end = i + at;
    }
    expect(Buffer.concat(data).toString()).toBe('{"a":12}');
    expect(wire.subarray(end).toString()).toBe("NEXT");
  });

  it("throws on a malformed chunk size or missing CRLF", () => {
    expect(() => new ChunkedDecoder().feed(Buffer.from("zz\r\n"), () => undefined)).toThrow(/chunk size/);
    expect(() => new ChunkedDecoder().feed(Buffer.from("1\r\nab\r\n"), () => undefined)).toThrow(/CRLF/);
  });
});
