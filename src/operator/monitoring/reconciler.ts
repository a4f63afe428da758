// The monitoring reconciler: reads each ready serving pod's sidecar summary, merges them, evaluates the
// policy, and writes lastMetrics, policy and the DriftDetected / Degraded conditions — every scrape interval.
import type { V1Pod } from "@kubernetes/client-node";
import type { SidecarSummary } from "../../monitoring/summary.js";
import { parseSidecarSummary } from "../../monitoring/summary-schema.js";
import { parseDurationMs, SIDECAR_PATHS, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../api/index.js";
import type { KubeClient, KubeObject } from "../../kube/client.js";
import type { EventRecorder } from "../../kube/events.js";
import type { ObjectCache } from "../../kube/informer.js";
import { updateStatusWithRetry } from "../../kube/status.js";
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from "../controller.js";
import { MODEL_DEPLOYMENTS } from "../resources.js";
import { SIDECAR_MONITORING_PORT, selectorLabels } from "../serving/desired-state.js";
import { admitSummaries, healthTransitionEvents, monitoringStatus, type PodScrape } from "./health.js";
import { logSpoolEvents } from "./log-spool.js";
import { withShadowStatus } from "./shadow-status.js";

/** A sidecar slower than this counts as a failed scrape: one hung pod must not hold the others' status back. */
export const SCRAPE_TIMEOUT_MS = 3000;
/**
 * The most of one sidecar's summary the operator reads. A summary is a few hundred KiB for a model of tens of
 * features (12 windows); whatever a client sends through a sidecar must never put more than this per pod on the
 * operator's heap (160 MiB as deployed).
 */
export const DEFAULT_MAX_SUMMARY_BYTES = 8 * 1024 * 1024;

export interface MonitoringCaches {
  modelDeployments: ObjectCache<ResolvedModelDeployment & KubeObject>;
  pods: ObjectCache<V1Pod & KubeObject>;
}

export interface MonitoringReconcilerOptions {
  client: KubeClient;
  caches: MonitoringCaches;
  recorder: EventRecorder;
  now?: () => Date;
  onStatusConflict?: () => void;
  scrapeTimeoutMs?: number;
  /** A summary larger than this is a failed scrape of that pod, read no further (default DEFAULT_MAX_SUMMARY_BYTES). */
  maxSummaryBytes?: number;
  /** Told how many sidecars were asked for a summary and how many failed (metrics). */
  onScraped?: (md: KubeObject, pods: number, failed: number) => void;
}

/** A pod the Service would send traffic to: Ready=True, an IP, not terminating. */
export function isReadyPod(pod: V1Pod): boolean {
  return !pod.metadata?.deletionTimestamp && !!pod.status?.podIP && pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
}

/** The ModelDeployment's serving pods in the cache (the Deployment's selector), ready ones only, by name. */
export function readyServingPods(pods: readonly (V1Pod & KubeObject)[], md: ResolvedModelDeployment): (V1Pod & KubeObject)[] {
  const selector = Object.entries(selectorLabels(md.metadata.name!));
  return pods
    .filter((p) => p.metadata?.namespace === md.metadata.namespace && selector.every(([k, v]) => p.metadata?.labels?.[k] === v) && isReadyPod(p))
    .sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
}

/** What the monitoring reconciler reads of a Pod: identity, labels, IP and readiness. */
export function slimPod(pod: V1Pod & KubeObject): V1Pod & KubeObject {
  const m = pod.metadata ?? {};
  const server = pod.spec?.containers?.find((c) => c.name === "server");
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      deletionTimestamp: m.deletionTimestamp,
    },
    // The server's arguments (its pinned --version): the loop mirrors only to shadow pods of the version it asks for.
    ...(server ? { spec: { containers: [{ name: server.name, args: server.args }] } } : {}),
    status: {
      podIP: pod.status?.podIP,
      conditions: pod.status?.conditions?.filter((c) => c.type === "Ready").map((c) => ({ type: c.type, status: c.status })),
    },
  };
}

/** Validates what a sidecar answered (shape, bounds, profiles) so that merging cannot crash on it. */
export function parseSummary(body: unknown): SidecarSummary {
  return parseSidecarSummary(body);
}

/** A body that would not fit under the cap; the rest of it is never read. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`summary exceeds the limit of ${limit} bytes; the rest was not read`);
    this.name = "BodyTooLargeError";
  }
}

/**
 * Reads a response body as text, at most `limit` bytes: a Content-Length above it is refused before reading,
 * and a body that streams past it is cancelled (the connection is dropped), so memory stays at `limit`.
 */
export async function readBodyCapped(res: Response, limit: number): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw new BodyTooLargeError(limit);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Scrape errors repeat input (schema paths name keys): one error stays short in logs and status. */
const MAX_SCRAPE_ERROR_LENGTH = 512;

export async function scrapeSidecar(podName: string, url: string, timeoutMs: number, maxBytes = DEFAULT_MAX_SUMMARY_BYTES): Promise<PodScrape> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return { pod: podName, error: `GET ${url} answered ${res.status}` };
    }
    const text = await readBodyCapped(res, maxBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error("answer is not JSON");
    }
    return { pod: podName, summary: parseSummary(body) };
  } catch (err) {
    const why = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : err instanceof Error ? err.message : String(err);
    const error = `GET ${url}: ${why}`;
    return { pod: podName, error: error.length <= MAX_SCRAPE_ERROR_LENGTH ? error : `${error.slice(0, MAX_SCRAPE_ERROR_LENGTH - 1)}…` };
  }
}

export class MonitoringReconciler implements Reconciler {
  /** Serving pods whose request log spool was full at the last scrape, by ModelDeployment: for the drained Event. */
  private readonly spoolFull = new Map<string, Set<string>>();

  constructor(private readonly options: MonitoringReconcilerOptions) {}

  async reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    const md = this.options.caches.modelDeployments.get(key);
    if (!md || md.metadata.deletionTimestamp) {
      this.spoolFull.delete(key);
      return {};
    }
    const interval = Math.max(1000, parseDurationMs(md.spec.monitoring.scrapeInterval));
    // The serving reconciler writes the first status; racing it for a just-created object only makes conflicts.
    if (md.status?.observedGeneration === undefined) return { requeueAfterMs: interval };
    const pods = readyServingPods(this.options.caches.pods.list(), md);
    // The monitoring port, which the Service does not expose and the NetworkPolicy opens to the operator alone.
    const port = SIDECAR_MONITORING_PORT;
    const timeout = this.options.scrapeTimeoutMs ?? SCRAPE_TIMEOUT_MS;
    const scraped = await Promise.all(
      pods.map((p) =>
        scrapeSidecar(p.metadata!.name!, `http://${hostForUrl(p.status!.podIP!)}:${port}${SIDECAR_PATHS.summary}`, timeout, this.options.maxSummaryBytes),
      ),
    );
    // A pod whose summary is too big, malformed or does not merge is dropped alone; the others still make status.
    const scrapes = admitSummaries(md, scraped);
    const failed = scrapes.filter((s) => "error" in s);
    this.options.onScraped?.(md, scrapes.length, failed.length);
    if (failed.length > 0) ctx.log.warn({ failed: failed.map((s) => `${s.pod}: ${"error" in s ? s.error : ""}`), pods: pods.length }, "sidecar scrape failed");
    const spool = logSpoolEvents(scrapes, this.spoolFull.get(key) ?? new Set());
    if (spool.full.size > 0) this.spoolFull.set(key, spool.full);
    else this.spoolFull.delete(key);
    for (const ev of spool.events) this.options.recorder.record(md, ev);
    const now = this.options.now?.() ?? new Date();
    // Transitions are judged against the object actually replaced (the cache may lag our previous write).
    let before: ModelDeploymentStatus | undefined = md.status;
    const written = await updateStatusWithRetry(
      this.options.client,
      MODEL_DEPLOYMENTS,
      md,
      (latest) => {
        before = latest.status;
        return withShadowStatus(latest, monitoringStatus(latest, scrapes, now), scrapes, now);
      },
      { onConflict: this.options.onStatusConflict },
    );
    if (!written) return {};
    for (const ev of healthTransitionEvents(before, written.status)) this.options.recorder.record(written, ev);
    ctx.log.debug({ pods: pods.length, answered: scrapes.length - failed.length, windowEnd: written.status?.lastMetrics?.windowEnd }, "monitoring scraped");
    return { requeueAfterMs: interval };
  }
}

function hostForUrl(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}
