// The one place that turns what a request handler threw into an HTTP answer: a Refusal by its kind, the HTTP
// layer's own RequestError by its status, anything else a 500 whose details stay in the log.
import type { ServerResponse } from "node:http";
import { INTERNAL_ERROR_MESSAGE, RequestError, sendError } from "./http-json.js";
import { Refusal, type RefusalKind } from "./refusal.js";

const STATUS_OF: Record<RefusalKind, number> = {
  invalid: 400,
  "too-large": 413,
  "unknown-id": 404,
  duplicate: 409,
  "not-recorded": 503,
};

export interface ErrorReply {
  status: number;
  body: { error: string };
  /** Neither a Refusal nor a RequestError: a bug, to be logged with its stack. */
  unexpected: boolean;
}

export function errorReply(err: unknown): ErrorReply {
  if (err instanceof Refusal) return { status: STATUS_OF[err.kind], body: { error: err.message }, unexpected: false };
  // A 500 never carries its message: an exception's text can name internals.
  if (err instanceof RequestError) return { status: err.status, body: { error: err.status === 500 ? INTERNAL_ERROR_MESSAGE : err.message }, unexpected: false };
  return { status: 500, body: { error: INTERNAL_ERROR_MESSAGE }, unexpected: true };
}

/** Answers with errorReply(err), or drops the connection when the response has already started; returns the reply (to log). */
export function sendErrorReply(res: ServerResponse, err: unknown): ErrorReply {
  const reply = errorReply(err);
  if (res.headersSent) res.destroy();
  else sendError(res, reply.status, reply.body.error);
  return reply;
}
