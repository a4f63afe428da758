// A thin JSON client for the Kubernetes API over one keep-alive undici pool: client-node 2.0 builds a new
// undici Agent (a new TLS connection) for every request. Plain kubeconfigs are read by ./kubeconfig.ts;
// @kubernetes/client-node is imported only for what that cannot do (exec / auth-provider plugins).
import type { RequestOptions } from "node:https";
import { createInterface } from "node:readline";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { defaultKubeconfigPath, inClusterAccess, kubeconfigAccess, type ClusterAccess } from "./kubeconfig.js";

const HOME_KUBECONFIG = join(homedir(), ".kube", "config");

/** The content types the API server accepts on PATCH. */
export const PatchType = {
  apply: "application/apply-patch+yaml",
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/** What every Kubernetes object has; enough for the generic building blocks. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  // client-node's typed models say Date; raw JSON from the API server has RFC 3339 strings.
  deletionTimestamp?: string | Date;
  creationTimestamp?: string | Date;
  managedFields?: unknown[];
}
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}
export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}
/** The body of a failed request (metav1.Status). */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

/** A non-2xx answer from the API server (or a transport failure, `status` 0). */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status === 0 ? "" : `${status} ${reason}: `}${message}`);
    this.name = "KubeApiError";
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  get gone(): boolean {
    return this.status === 410;
  }
  /** Worth retrying later: transport errors, throttling, server errors, timeouts. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500 || this.status === 408;
  }
}

export interface RequestInit {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Deadline for the whole request, body included; default DEFAULT_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** A stalled API server or a half-open connection must fail a request, not hang its caller forever. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Asked before every write (any method but GET); throws to refuse it. A leader elector installs one so
 * that a process that lost its Lease writes nothing more, whatever its workers still have in flight.
 */
export type WriteFence = (method: string, path: string) => void;

/** A write refused by the client's fence: the request never left the process. */
export class WriteRefusedError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    why: string,
  ) {
    super(`${method} ${path}: not sent: ${why}`);
    this.name = "WriteRefusedError";
  }
}

/** A resource's REST path, e.g. `{group: "apps", version: "v1", plural: "deployments"}`. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/** `/api/v1/namespaces/ns/pods/name` and friends; `namespace` undefined means all namespaces. */
export function resourcePath(rt: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = rt.group === "" ? `/api/${rt.version}` : `/apis/${rt.group}/${rt.version}`;
  const ns = rt.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const obj = name ? `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ""}` : "";
  return `${base}${ns}/${rt.plural}${obj}`;
}

const AUTH_REFRESH_MS = 60_000;

function apiErrorFromBody(statusCode: number, text: string, method: string, path: string): KubeApiError {
  let status: KubeStatus;
  try {
    status = JSON.parse(text) as KubeStatus;
  } catch {
    status = { message: text.slice(0, 500) };
  }
  return new KubeApiError(statusCode, status.reason ?? "Unknown", status.message ?? "", method, path);
}

/** Produces the request headers that authenticate us (called at most once a minute). */
type AuthHeaders = () => Promise<Record<string, string>>;

function headersFromAccess(a: ClusterAccess): AuthHeaders {
  return async () => {
    const headers: Record<string, string> = {};
    // ServiceAccount tokens are rotated in place: read the file again.
    const token = a.tokenFile ? readFileSync(a.tokenFile, "utf8").trim() : a.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (a.basicAuth) headers.Authorization = `Basic ${Buffer.from(`${a.basicAuth.username}:${a.basicAuth.password}`).toString("base64")}`;
    if (a.impersonate) headers["Impersonate-User"] = a.impersonate;
    return headers;
  };
}

export class KubeClient {
  private readonly agent: Agent;
  private headers: Record<string, string> = {};
  private headersAt = 0;
  private fence: WriteFence | undefined;

  private constructor(
    readonly server: string,
    tls: {
      ca?: Buffer | string | (string | Buffer)[];
      cert?: Buffer | string | (string | Buffer)[];
      key?: unknown;
      servername?: string;
      rejectUnauthorized?: boolean;
    },
    private readonly loadAuthHeaders: AuthHeaders,
    private readonly user: string,
  ) {
    this.agent = new Agent({
      connect: {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key as Buffer | undefined,
        servername: tls.servername,
        rejectUnauthorized: tls.rejectUnauthorized,
      },
      keepAliveTimeout: 30_000,
      // Watches hold a connection each; leave room for request bursts beside them.
      connections: 64,
      // The default 300 s body timeout would cut quiet watches; watches end by their own timeoutSeconds.
      bodyTimeout: 0,
      headersTimeout: 30_000,
    });
  }

  /**
   * controller-runtime's order: `--kubeconfig`, else $KUBECONFIG, else the in-cluster ServiceAccount,
   * else ~/.kube/config. Plain certificate/token kubeconfigs are read directly; exec and auth-provider
   * plugins, proxies and multi-file $KUBECONFIG go through @kubernetes/client-node.
   */
  static async load(kubeconfigPath?: string): Promise<KubeClient> {
    const explicit = defaultKubeconfigPath(kubeconfigPath);
    let access: ClusterAccess | undefined;
    if (explicit && explicit !== "list") access = kubeconfigAccess(explicit);
    else if (!explicit) access = inClusterAccess() ?? (existsSync(HOME_KUBECONFIG) ? kubeconfigAccess(HOME_KUBECONFIG) : undefined);
    if (access) return KubeClient.fromAccess(access);
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    if (explicit && explicit !== "list") kc.loadFromFile(explicit);
    else kc.loadFromDefault();
    return KubeClient.fromKubeConfig(kc);
  }

  static async fromAccess(a: ClusterAccess): Promise<KubeClient> {
    const tls = { ca: a.ca, cert: a.cert, key: a.key, servername: a.tlsServerName, rejectUnauthorized: a.skipTLSVerify ? false : undefined };
    const client = new KubeClient(a.server, tls, headersFromAccess(a), a.user);
    await client.authHeaders();
    return client;
  }

  static async fromKubeConfig(kc: KubeConfig): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig has no current cluster (current-context "${kc.getCurrentContext()}")`);
    const tls: RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
    const headers: AuthHeaders = async () => {
      const options: RequestOptions = { headers: {} };
      await kc.applyToHTTPSOptions(options);
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(options.headers ?? {})) if (v !== undefined) h[k] = String(v);
      if (options.auth) h.Authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;
      return h;
    };
    const user = kc.getCurrentUser();
    const client = new KubeClient(cluster.server.replace(/\/$/, ""), tls as never, headers, user?.impersonateUser ?? user?.name ?? "unknown");
    await client.authHeaders();
    return client;
  }

  /** The identity this client acts as, for logs (the impersonated user when the kubeconfig sets `as`). */
  describeUser(): string {
    return this.user;
  }

  // Tokens from files or exec plugins rotate, so re-read them now and then rather than per request.
  private async authHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (now - this.headersAt < AUTH_REFRESH_MS) return this.headers;
    this.headers = await this.loadAuthHeaders();
    this.headersAt = now;
    return this.headers;
  }

  private url(path: string, query?: RequestInit["query"]): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** Installs (or, with undefined, removes) the check every write must pass; see WriteFence. */
  setWriteFence(fence: WriteFence | undefined): void {
    this.fence = fence;
  }

  async request<T>(method: string, path: string, init: RequestInit = {}): Promise<T> {
    if (method !== "GET") this.fence?.(method, path);
    const headers: Record<string, string> = { ...(await this.authHeaders()), accept: "application/json" };
    let body: string | undefined;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers["content-type"] = init.contentType ?? "application/json";
    }
    // AbortSignal.timeout takes whole milliseconds only.
    const timeoutMs = Math.max(1, Math.ceil(init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS));
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    let res;
    let text: string;
    try {
      res = await request(this.url(path, init.query), { method: method as "GET", headers, body, signal, dispatcher: this.agent });
      text = await res.body.text();
    } catch (err) {
      if (deadline.aborted) throw new KubeApiError(0, "Timeout", `no complete answer within ${timeoutMs} ms`, method, path);
      throw new KubeApiError(0, "Unreachable", err instanceof Error ? err.message : String(err), method, path);
    }
    if (res.statusCode < 200 || res.statusCode > 299) throw apiErrorFromBody(res.statusCode, text, method, path);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, init?: RequestInit): Promise<T> {
    return this.request<T>("GET", path, init);
  }
  create<T>(path: string, body: unknown, init?: RequestInit): Promise<T> {
    return this.request<T>("POST", path, { ...init, body });
  }
  replace<T>(path: string, body: unknown, init?: RequestInit): Promise<T> {
    return this.request<T>("PUT", path, { ...init, body });
  }
  patch<T>(path: string, body: unknown, contentType: PatchType, init?: RequestInit): Promise<T> {
    return this.request<T>("PATCH", path, { ...init, body, contentType });
  }
  delete<T>(path: string, init?: RequestInit): Promise<T> {
    return this.request<T>("DELETE", path, init);
  }

  /**
   * Opens a watch and calls `onEvent` per line; resolves when the server ends the stream,
   * rejects on a non-200 answer or a transport error. Abort through `signal`.
   */
  async watch(path: string, query: RequestInit["query"], onEvent: (type: string, object: unknown) => void, signal: AbortSignal): Promise<void> {
    const headers = { ...(await this.authHeaders()), accept: "application/json" };
    let res;
    try {
      res = await request(this.url(path, { ...query, watch: true }), {
        method: "GET",
        headers,
        signal,
        dispatcher: this.agent,
      });
    } catch (err) {
      throw new KubeApiError(0, "Unreachable", err instanceof Error ? err.message : String(err), "WATCH", path);
    }
    if (res.statusCode !== 200) throw apiErrorFromBody(res.statusCode, await res.body.text(), "WATCH", path);
    const lines = createInterface({ input: res.body, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line) continue;
        const ev = JSON.parse(line) as { type: string; object: unknown };
        onEvent(ev.type, ev.object);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw new KubeApiError(0, "WatchBroken", err instanceof Error ? err.message : String(err), "WATCH", path);
    }
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}
