// Which request id an inference call carries: the caller's (body `id`, else a header) when it is a valid id,
// else one the sidecar assigns — and the response then says why the caller's was replaced.
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { requestIdProblem } from "../oip.js";
import { REQUEST_ID_HEADER } from "../oip-routes.js";

const CALLER_ID_HEADERS = [REQUEST_ID_HEADER, "x-request-id"];
/** Set when the caller's request id was not usable and the sidecar assigned one: says why (the body's `id` is the new one). */
export const REQUEST_ID_REPLACED_HEADER = "ballast-request-id-replaced";

/** The request id a caller asked for: the infer body's `id` (what the server answers with), else a header. */
export function callerRequestId(headers: IncomingHttpHeaders, body: Buffer): { id?: string; request?: unknown } {
  // Parse only bodies that may carry an id: a key "id", literal or with \u escapes. Others stay bytes until the batch.
  if (body.includes('"id"') || body.includes("\\u")) {
    let request: unknown;
    try {
      request = JSON.parse(body.toString("utf8"));
    } catch {
      // The server answers 400; the id below only names the exchange.
    }
    const id = typeof request === "object" && request !== null ? (request as { id?: unknown }).id : undefined;
    if (typeof id === "string") return { id, request };
    if (request !== undefined) return { ...headerRequestId(headers), request };
  }
  return headerRequestId(headers);
}

export function headerRequestId(headers: IncomingHttpHeaders): { id?: string } {
  for (const h of CALLER_ID_HEADERS) {
    const v = headers[h];
    if (typeof v === "string" && v !== "") return { id: v };
  }
  return {};
}

/** The caller's id when it is a valid request id; else a new UUID, and why the caller's was replaced (for REQUEST_ID_REPLACED_HEADER). */
export function chooseRequestId(callerId: string | undefined): { id: string; replaced?: string } {
  if (callerId === undefined) return { id: randomUUID() };
  const problem = requestIdProblem(callerId);
  if (problem === undefined) return { id: callerId };
  return { id: randomUUID(), replaced: `the request id sent is ${problem}; use the response's id for feedback` };
}

/** chooseRequestId, the reason for a replaced id set on `res`. */
export function assignRequestId(res: ServerResponse, callerId: string | undefined): string {
  const { id, replaced } = chooseRequestId(callerId);
  if (replaced !== undefined) res.setHeader(REQUEST_ID_REPLACED_HEADER, replaced);
  return id;
}
