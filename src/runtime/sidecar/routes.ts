// What each request to the sidecar is, by port: the public port (the Service's) proxies the Open Inference
// Protocol and takes feedback; the monitoring port (reached only by the operator and Prometheus) serves the
// summary, the metrics and the mirror setting. Also the one place where a thrown error becomes an HTTP response.
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import { SIDECAR_PATHS } from "../../api/sidecar-paths.js";
import { errorReply } from "../http-errors.js";
import { sendError } from "../http-json.js";
import { matchRoute } from "../oip-routes.js";
import { FeedbackUnauthorizedError } from "./feedback-auth.js";

/** A request on the public port. */
export type PublicRequest =
  /** POST …/infer: counted, recorded and profiled; held until monitoring is set up. */
  | { kind: "inference" }
  /** GET/HEAD of the server's or the model's readiness: proxied, and held with inference (it invites inference). */
  | { kind: "readiness" }
  /** Any other path: proxied to the model server untouched. */
  | { kind: "passthrough" }
  | { kind: "sidecar-live" }
  | { kind: "sidecar-ready" }
  | { kind: "feedback" }
  /** The summary and metrics paths: answered on the monitoring port only, never proxied (the server's own /metrics stays inside the pod). */
  | { kind: "monitoring-only" };

/** A request on the monitoring port. */
export type MonitoringRequest = { kind: "summary" } | { kind: "metrics" } | { kind: "mirror" } | { kind: "unknown" };

export function classifyPublicRequest(method: string | undefined, path: string): PublicRequest {
  switch (path) {
    case SIDECAR_PATHS.live:
      return { kind: "sidecar-live" };
    case SIDECAR_PATHS.ready:
      return { kind: "sidecar-ready" };
    case SIDECAR_PATHS.feedback:
      return { kind: "feedback" };
    case SIDECAR_PATHS.summary:
    case SIDECAR_PATHS.metrics:
    case SIDECAR_PATHS.mirror:
      return { kind: "monitoring-only" };
  }
  const route = matchRoute(path)?.kind;
  if (method === "POST" && route === "infer") return { kind: "inference" };
  if ((method === "GET" || method === "HEAD") && (route === "ready" || route === "model-ready")) return { kind: "readiness" };
  return { kind: "passthrough" };
}

export function classifyMonitoringRequest(path: string): MonitoringRequest {
  if (path === SIDECAR_PATHS.summary) return { kind: "summary" };
  if (path === SIDECAR_PATHS.metrics) return { kind: "metrics" };
  // Only the operator may point this pod's traffic at another address: never on the Service's port.
  if (path === SIDECAR_PATHS.mirror) return { kind: "mirror" };
  return { kind: "unknown" };
}

/** The `route` label of the request metrics (stable names: infer, proxy, live, ready, feedback, summary, metrics, mirror). */
export function routeLabel(request: PublicRequest | MonitoringRequest): string {
  switch (request.kind) {
    case "inference":
      return "infer";
    case "readiness":
    case "passthrough":
      return "proxy";
    case "sidecar-live":
      return "live";
    case "sidecar-ready":
      return "ready";
    case "monitoring-only":
    case "unknown":
      return "not-found";
    default:
      return request.kind;
  }
}

/**
 * Where a thrown error becomes the sidecar's answer: 401 with a Bearer challenge for feedback without the token,
 * else the runtime's one mapping (errorReply: a Refusal by its kind, a RequestError by its status, anything else a
 * logged 500 that says nothing of the cause).
 */
export function sendFailure(res: ServerResponse, err: unknown, logger: Logger, path: string): void {
  if (res.headersSent) {
    logger.error({ event: "request-failed", err, path }, "sidecar request failed after the response started");
    res.destroy();
    return;
  }
  if (err instanceof FeedbackUnauthorizedError) {
    const challenge = err.problem === "missing" ? 'Bearer realm="ballast-feedback"' : 'Bearer realm="ballast-feedback", error="invalid_token"';
    sendError(res, 401, err.message, { "www-authenticate": challenge });
    return;
  }
  const reply = errorReply(err);
  if (reply.unexpected) logger.error({ event: "request-failed", err, path }, "sidecar request failed");
  else if (reply.status >= 500)
    logger.error({ event: "request-failed", status: reply.status, error: (err as Error).message, cause: (err as Error).cause, path }, "sidecar request failed");
  sendError(res, reply.status, reply.body.error);
}
