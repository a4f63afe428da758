// The Open Inference Protocol v2 REST paths, shared by `ballast serve` (which answers them) and the sidecar
// (which tells inference from the rest before proxying it).

/** The request id header of the protocol; the sidecar sets it on every proxied request. */
export const REQUEST_ID_HEADER = "inference-request-id";

export type Route = { kind: "live" | "ready" | "server" | "metrics" } | { kind: "model" | "model-ready" | "infer"; model: string; version?: string };

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

export function matchRoute(pathname: string): Route | undefined {
  switch (pathname) {
    case "/v2/health/live":
      return { kind: "live" };
    case "/v2/health/ready":
      return { kind: "ready" };
    case "/v2":
    case "/v2/":
      return { kind: "server" };
    case "/metrics":
      return { kind: "metrics" };
  }
  const m = MODEL_PATH.exec(pathname);
  if (!m) return undefined;
  const model = safeDecode(m[1]!);
  const version = m[2] === undefined ? undefined : safeDecode(m[2]);
  const kind = m[3] === "/ready" ? "model-ready" : m[3] === "/infer" ? "infer" : "model";
  return { kind, model, ...(version !== undefined ? { version } : {}) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The path of a request target, without its query string. */
export function pathOf(url: string | undefined): string {
  const u = url ?? "/";
  const q = u.indexOf("?");
  return q === -1 ? u : u.slice(0, q);
}
