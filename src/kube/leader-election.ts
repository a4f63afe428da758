// Lease-based leader election (coordination.k8s.io/v1), the client-go algorithm: a candidate takes the
// Lease when its holder has not renewed it for leaseDuration as measured on OUR clock (no clock-skew
// trust), the leader renews every retryPeriod and gives up leading if it cannot renew within renewDeadline.
import type { Logger } from "pino";
import { KubeApiError, resourcePath, type KubeClient, type ObjectMeta, type ResourceType } from "./client.js";
import { microTime } from "./events.js";
import { monotonicClock, type Clock } from "./rate-limiter.js";
import { sleepUnlessAborted } from "./abortable-sleep.js";

export const LEASES_RESOURCE: ResourceType = { group: "coordination.k8s.io", version: "v1", plural: "leases", namespaced: true };

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: ObjectMeta;
  spec?: LeaseSpec;
}

export interface LeaderElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}
export const DEFAULT_LEADER_ELECTION: LeaderElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

export type LeaseDecision =
  | { action: "create" }
  | { action: "acquire" }
  | { action: "renew" }
  | { action: "wait"; holder: string; expiresInMs: number };

/**
 * What a candidate should do given the Lease it read (`spec`, undefined when there is none) and the
 * local time at which that record was first seen in its current form (`observedAt`).
 */
export function decideLease(
  spec: LeaseSpec | undefined,
  observedAt: number,
  now: number,
  identity: string,
  leaseDurationMs: number,
): LeaseDecision {
  if (!spec) return { action: "create" };
  const holder = spec.holderIdentity ?? "";
  if (holder === identity) return { action: "renew" };
  if (!holder) return { action: "acquire" };
  const duration = spec.leaseDurationSeconds ? spec.leaseDurationSeconds * 1000 : leaseDurationMs;
  const expiresInMs = observedAt + duration - now;
  return expiresInMs > 0 ? { action: "wait", holder, expiresInMs } : { action: "acquire" };
}

/** The spec we write when we create, take over or renew the Lease. */
export function nextLeaseSpec(prior: LeaseSpec | undefined, identity: string, leaseDurationMs: number, wallNow: Date): LeaseSpec {
  const renewing = prior?.holderIdentity === identity;
  const now = microTime(wallNow);
  return {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    acquireTime: renewing && prior?.acquireTime ? prior.acquireTime : now,
    renewTime: now,
    leaseTransitions: (prior?.leaseTransitions ?? 0) + (prior && !renewing ? 1 : 0),
  };
}

export interface LeaderCallbacks {
  /** We lead: start reconciling. */
  onStartedLeading(): void;
  /** We lost the Lease (or are shutting down): stop reconciling now. */
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions extends Partial<LeaderElectionTimings> {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  clock?: Clock;
}

export class LeaderElector {
  private observed: LeaseSpec | undefined;
  private observedRaw = "";
  private observedAt = 0;
  private resourceVersion: string | undefined;
  private leading = false;
  private lastRenew = 0;
  private readonly t: LeaderElectionTimings;
  private readonly clock: Clock;
  private readonly path: string;
  private readonly log: Logger;

  constructor(
    private readonly opts: LeaderElectorOptions,
    private readonly callbacks: LeaderCallbacks,
  ) {
    this.t = {
      leaseDurationMs: opts.leaseDurationMs ?? DEFAULT_LEADER_ELECTION.leaseDurationMs,
      renewDeadlineMs: opts.renewDeadlineMs ?? DEFAULT_LEADER_ELECTION.renewDeadlineMs,
      retryPeriodMs: opts.retryPeriodMs ?? DEFAULT_LEADER_ELECTION.retryPeriodMs,
    };
    if (!(this.t.leaseDurationMs > this.t.renewDeadlineMs && this.t.renewDeadlineMs > this.t.retryPeriodMs))
      throw new Error(
        `leader election needs leaseDuration > renewDeadline > retryPeriod, got ${this.t.leaseDurationMs}/${this.t.renewDeadlineMs}/${this.t.retryPeriodMs} ms`,
      );
    this.clock = opts.clock ?? monotonicClock;
    this.path = resourcePath(LEASES_RESOURCE, opts.namespace, opts.name);
    this.log = opts.logger.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns, leads and renews until `signal` aborts; then releases the Lease if we hold it. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.log.warn({ err: String(err) }, "lease acquire/renew failed");
        return false;
      });
      const now = this.clock();
      if (ok) {
        this.lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.log.info("became leader");
          this.callbacks.onStartedLeading();
        }
      } else if (this.leading && (now - this.lastRenew > this.t.renewDeadlineMs || this.heldByOther())) {
        this.leading = false;
        this.log.warn({ sinceRenewMs: Math.round(now - this.lastRenew) }, "lost leadership");
        this.callbacks.onStoppedLeading();
      }
      // Jitter the candidates' retries (client-go: JitterFactor 1.2) so they don't collide forever.
      const wait = this.leading ? this.t.retryPeriodMs : this.t.retryPeriodMs * (1 + 0.2 * Math.random());
      await sleepUnlessAborted(wait, signal);
    }
    if (this.leading) {
      this.leading = false;
      this.callbacks.onStoppedLeading();
      await this.release();
    }
  }

  private heldByOther(): boolean {
    const h = this.observed?.holderIdentity;
    return !!h && h !== this.opts.identity;
  }

  private observe(spec: LeaseSpec | undefined, rv: string | undefined): void {
    const raw = JSON.stringify(spec ?? null);
    if (raw !== this.observedRaw) {
      const prevHolder = this.observed?.holderIdentity;
      this.observedRaw = raw;
      this.observed = spec;
      this.observedAt = this.clock();
      if (spec?.holderIdentity && spec.holderIdentity !== prevHolder) this.callbacks.onNewLeader?.(spec.holderIdentity);
    }
    this.resourceVersion = rv;
  }

  /** One round of the algorithm; true when we hold the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    let lease: Lease | undefined;
    try {
      lease = await this.opts.client.get<Lease>(this.path);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.notFound)) throw err;
    }
    if (lease) this.observe(lease.spec ?? {}, lease.metadata.resourceVersion);
    const decision = decideLease(lease ? (lease.spec ?? {}) : undefined, this.observedAt, this.clock(), this.opts.identity, this.t.leaseDurationMs);
    if (decision.action === "wait") return false;
    const spec = nextLeaseSpec(lease?.spec, this.opts.identity, this.t.leaseDurationMs, new Date());
    try {
      const body: Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.opts.name, namespace: this.opts.namespace, resourceVersion: this.resourceVersion },
        spec,
      };
      const written =
        decision.action === "create"
          ? await this.opts.client.create<Lease>(resourcePath(LEASES_RESOURCE, this.opts.namespace), body)
          : await this.opts.client.replace<Lease>(this.path, body);
      this.observe(written.spec, written.metadata.resourceVersion);
      return true;
    } catch (err) {
      // Someone else wrote first (409) or created it first (409 AlreadyExists): not ours this round.
      if (err instanceof KubeApiError && err.conflict) return false;
      throw err;
    }
  }

  /** Hands the Lease over at once instead of making the next leader wait out leaseDuration. */
  private async release(): Promise<void> {
    try {
      const lease = await this.opts.client.get<Lease>(this.path);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = microTime(new Date());
      await this.opts.client.replace<Lease>(this.path, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
      });
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn({ err: String(err) }, "could not release the lease; the next leader waits for it to expire");
    }
  }
}
