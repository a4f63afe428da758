// Mirroring to a shadow candidate: after the user has the serving model's answer, a sample of inference requests
// (chosen by hashing the request id, so the same id is always in or out) is queued for the shadow pods; a few
// senders on their own connection pool deliver them and pair both answers in the ShadowTally. Feedback for mirrored
// ids is counted there and sent on to the shadow that answered. Nothing here can delay or fail a user's request: a
// full queue drops (counted), a slow or dead shadow fails (counted), and the mirror expires unless the operator renews it.
import type { Logger } from "pino";
import { Agent } from "undici";
import { labelChecker } from "../feedback-labels.js";
import type { ModelMetadata } from "../metadata.js";
import { predictionsFromResponse } from "../oip.js";
import { SIDECAR_PATHS } from "../../api/sidecar-paths.js";
import type { ShadowSummary } from "../../monitoring/shadow-summary.js";
import { parseFeedbackBody } from "../wire/feedback.js";
import { parseMirrorConfig, type MirrorConfig } from "./mirror-config.js";
import { SendQueue } from "./send-queue.js";
import type { SidecarMetrics } from "./metrics.js";
import { ShadowTally, answersPair, type AcceptedRowLabel, type LabelsToForward, type Prediction } from "./shadow-tally.js";

/** Header a mirrored request carries: the serving version it was mirrored from (the shadow records it like any request). */
export const MIRROR_HEADER = "x-ballast-mirror";

export interface MirrorLimits {
  /** Requests waiting or in flight to the shadow; past it new ones are dropped. */
  maxQueued: number;
  /** Bytes (request + serving response) of those; past it new ones are dropped. */
  maxQueuedBytes: number;
  /** Requests in flight to the shadow at once. */
  concurrency: number;
  /** A shadow that has not answered by then has failed. */
  timeoutMs: number;
}

export const DEFAULT_MIRROR_LIMITS: MirrorLimits = { maxQueued: 1000, maxQueuedBytes: 32 * 1024 * 1024, concurrency: 4, timeoutMs: 5000 };
/** Forwarded feedback: small bodies, fewer of them. */
const FEEDBACK_LIMITS = { maxQueued: 1000, maxQueuedBytes: 8 * 1024 * 1024, concurrency: 2 };
/** A shadow's infer answer larger than this is not read (the serving answer it is paired with is bounded too). */
const MAX_SHADOW_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface MirrorOptions {
  metrics: SidecarMetrics;
  logger: Logger;
  /** `Bearer <token>` when feedback needs one (known once the token file is read): forwarded feedback carries the same. */
  feedbackAuthorization(): string | undefined;
  limits?: Partial<MirrorLimits>;
  now?: () => number;
}

/** A finished inference the serving model answered with 200, as the proxy saw it. */
export interface ServedInference {
  id: string;
  /** The path the user called (…/infer), sent to the shadow unchanged. */
  path: string;
  contentType: string | undefined;
  requestBody: Buffer;
  responseBody: Buffer;
  /** The serving model's own latency (upstream call to last byte). */
  servingMs: number;
}

/** What GET/PUT /v1/mirror answer. */
export interface MirrorView {
  version: string;
  targets: string[];
  sampleRate: number;
  expiresAt: string;
  since: string;
}

interface MirrorSession {
  config: MirrorConfig;
  since: string;
  servingVersion: string;
  classes: readonly string[] | undefined;
  checkLabel: ReturnType<typeof labelChecker>;
  tally: ShadowTally;
}

/** FNV-1a of the id as a fraction in [0, 1): the same id always lands in the same place. */
export function idFraction(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 2 ** 32;
}

export class Mirror {
  private session: MirrorSession | undefined;
  private readonly limits: MirrorLimits;
  private readonly agent: Agent;
  private readonly requests: SendQueue;
  private readonly feedback: SendQueue;
  private readonly now: () => number;
  /** Send failures are logged at most once a minute: a dead shadow would flood the log otherwise. */
  private failureLoggedAt = 0;

  constructor(private readonly options: MirrorOptions) {
    this.limits = { ...DEFAULT_MIRROR_LIMITS, ...options.limits };
    this.now = options.now ?? Date.now;
    // Its own pool: a slow shadow never takes a connection the model server's pool needs.
    this.agent = new Agent({ connections: this.limits.concurrency, keepAliveTimeout: 30_000 });
    const onBug = (err: unknown) => options.logger.error({ event: "mirror-bug", err }, "mirroring failed unexpectedly");
    this.requests = new SendQueue(this.limits, onBug);
    this.feedback = new SendQueue(FEEDBACK_LIMITS, onBug);
  }

  /** PUT: the same version refreshes targets, rate and expiry and keeps the tallies; another version starts afresh. */
  configure(body: unknown, meta: ModelMetadata): MirrorView {
    const now = this.now();
    const config = parseMirrorConfig(body, now);
    if (this.session?.config.version === config.version) this.session.config = config;
    else {
      this.requests.clear();
      const since = new Date(now).toISOString();
      this.session = {
        config,
        since,
        servingVersion: meta.version,
        classes: meta.classes,
        checkLabel: labelChecker(meta),
        tally: new ShadowTally(config.version, since, meta.task),
      };
      this.options.logger.info(
        { event: "mirror-started", version: config.version, targets: config.targets.length, sampleRate: config.sampleRate },
        "mirroring to a shadow candidate",
      );
    }
    return this.view()!;
  }

  /** GET: the mirror as configured (also once expired: its tallies are still in the summary), or undefined. */
  view(): MirrorView | undefined {
    const s = this.session;
    if (!s) return undefined;
    const { version, targets, sampleRate, expiresAt } = s.config;
    return { version, targets, sampleRate, expiresAt: new Date(expiresAt).toISOString(), since: s.since };
  }

  /** DELETE: stops mirroring and drops the tallies. */
  stop(): void {
    if (this.session) this.options.logger.info({ event: "mirror-stopped", version: this.session.config.version }, "mirroring stopped");
    this.session = undefined;
    this.requests.clear();
    this.feedback.clear();
  }

  /** The tallies for the summary while a mirror is configured. */
  summary(): ShadowSummary | undefined {
    return this.session?.tally.summary();
  }

  /** After the user has the answer: queues the request for the shadow when the mirror is on and the id is sampled. */
  offer(served: ServedInference): void {
    const s = this.session;
    if (!s || this.now() >= s.config.expiresAt) return;
    const fraction = idFraction(served.id);
    if (fraction >= s.config.sampleRate) return;
    const targets = s.config.targets;
    // The sampled ids spread evenly over the targets; the same id always goes to the same one.
    const target = targets[Math.min(targets.length - 1, Math.floor((fraction / s.config.sampleRate) * targets.length))]!;
    const queued = this.requests.push(() => this.send(s, target, served), served.requestBody.length + served.responseBody.length);
    if (!queued) {
      s.tally.countDropped();
      this.options.metrics.mirrorRequests.inc({ outcome: "dropped" });
      return;
    }
    s.tally.sent(served.id, target);
  }

  /**
   * Feedback the serving sidecar has durably accepted (all of `body` is valid): labels of mirrored rows are paired,
   * and sent on to the shadow that answered them.
   */
  feedbackAccepted(body: unknown): void {
    const s = this.session;
    if (!s || s.tally.trackedRequests === 0) return;
    const labels: AcceptedRowLabel[] = [];
    for (const item of parseFeedbackBody(body)) {
      if ("labels" in item) item.labels.forEach((l, row) => labels.push({ id: item.id, row, label: s.checkLabel(l, item.where) }));
      else labels.push({ id: item.id, row: item.row ?? 0, label: s.checkLabel(item.label, item.where) });
    }
    for (const forward of s.tally.labelled(labels)) this.forwardLabels(s, forward);
  }

  /** Stops mirroring and closes the connections to the shadows. */
  async close(): Promise<void> {
    this.stop();
    await this.agent.destroy();
  }

  private async send(s: MirrorSession, target: string, served: ServedInference): Promise<void> {
    // Stopped or moved to another candidate while this waited.
    if (this.session !== s) return;
    const started = performance.now();
    let shadow: Prediction[] | undefined;
    try {
      const res = await this.agent.request({
        origin: target,
        path: served.path,
        method: "POST",
        headers: {
          "content-type": served.contentType ?? "application/json",
          "x-request-id": served.id,
          [MIRROR_HEADER]: s.servingVersion,
        },
        body: served.requestBody,
        headersTimeout: this.limits.timeoutMs,
        bodyTimeout: this.limits.timeoutMs,
        signal: AbortSignal.timeout(this.limits.timeoutMs),
      });
      const answer = await readLimited(res.body, MAX_SHADOW_RESPONSE_BYTES);
      if (res.statusCode >= 200 && res.statusCode < 300 && answer !== undefined) shadow = predictionsOf(answer, s.classes);
      else if (answer !== undefined) this.logFailure(target, `answered ${res.statusCode}`);
    } catch (err) {
      this.logFailure(target, (err as { code?: string }).code ?? (err as Error).name);
    }
    const shadowMs = performance.now() - started;
    const serving = predictionsOf(served.responseBody, s.classes);
    if (this.session !== s) return;
    // An answer without per-row predictions, or with other rows, did not answer the request that was asked.
    if (!shadow || !serving || !answersPair(serving, shadow)) {
      s.tally.countFailed(served.id);
      this.options.metrics.mirrorRequests.inc({ outcome: "failed" });
      return;
    }
    const forward = s.tally.answered(served.id, serving, shadow, served.servingMs, shadowMs);
    this.options.metrics.mirrorRequests.inc({ outcome: "sent" });
    if (forward) this.forwardLabels(s, forward);
  }

  /** Fire and forget: the shadow's own sidecar records the labels for its own monitoring and training. */
  private forwardLabels(s: MirrorSession, forward: LabelsToForward): void {
    const body = JSON.stringify({ feedback: forward.labels.map(({ id, row, label }) => ({ id, row, label })) });
    const queued = this.feedback.push(async () => {
      if (this.session !== s) return;
      let outcome = "failed";
      const authorization = this.options.feedbackAuthorization();
      try {
        const res = await this.agent.request({
          origin: forward.target,
          path: SIDECAR_PATHS.feedback,
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(authorization ? { authorization } : {}),
          },
          body,
          headersTimeout: this.limits.timeoutMs,
          bodyTimeout: this.limits.timeoutMs,
          signal: AbortSignal.timeout(this.limits.timeoutMs),
        });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) outcome = "sent";
        else this.logFailure(forward.target, `answered feedback with ${res.statusCode}`);
      } catch (err) {
        this.logFailure(forward.target, (err as { code?: string }).code ?? (err as Error).name);
      }
      this.options.metrics.mirrorFeedback.inc({ outcome });
    }, body.length);
    if (!queued) this.options.metrics.mirrorFeedback.inc({ outcome: "dropped" });
  }

  private logFailure(target: string, problem: string): void {
    const now = this.now();
    if (now - this.failureLoggedAt < 60_000) return;
    this.failureLoggedAt = now;
    this.options.logger.warn({ event: "mirror-failed", target, problem }, "a shadow did not take a mirrored request (counted; logged once a minute)");
  }
}

/** The body, or undefined (and the rest discarded) past `limit` bytes. */
async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Per-row predictions of an OIP infer answer (label, value, or the most probable class), or undefined. */
function predictionsOf(body: Buffer, classes: readonly string[] | undefined): Prediction[] | undefined {
  try {
    return predictionsFromResponse(JSON.parse(body.toString("utf8")), classes);
  } catch {
    return undefined;
  }
}
