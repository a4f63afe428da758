// Lease-based leader election (coordination.k8s.io/v1), the client-go algorithm: a candidate takes the
// Lease when its holder has not renewed it for leaseDuration as measured on OUR clock (no clock-skew
// trust), the leader renews every retryPeriod and gives up leading if it cannot renew within renewDeadline.
import type { Logger } from "pino";
import { KubeApiError, WriteRefusedError, resourcePath, type KubeClient, type ObjectMeta, type OwnerReference, type ResourceType } from "./client.js";
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

export type LeaseDecision = { action: "create" } | { action: "acquire" } | { action: "renew" } | { action: "wait"; holder: string; expiresInMs: number };

/**
 * What a candidate should do given the Lease it read (`spec`, undefined when there is none) and the
 * local time at which that record was first seen in its current form (`observedAt`).
 */
export function decideLease(spec: LeaseSpec | undefined, observedAt: number, now: number, identity: string, leaseDurationMs: number): LeaseDecision {
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

/** Why a leader stopped leading: it could not renew in time or saw another holder ("lost"), or it was told to stop ("shutdown"). */
export type StopReason = "lost" | "shutdown";

export interface LeaderCallbacks {
  /** We lead: start reconciling. */
  onStartedLeading(): void;
  /**
   * Stop reconciling now. On "lost" another replica may already lead: controller-runtime's answer, and
   * ours, is to exit the process; the elector never campaigns again and its client refuses all writes.
   */
  onStoppedLeading(reason: StopReason): void;
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions extends Partial<LeaderElectionTimings> {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  clock?: Clock;
  /**
   * The pod this process runs in, named as the Lease's owner on every write, so the garbage collector deletes
   * a Lease whose holder's pod is gone: during an uninstall the leader can re-create the Lease after Helm or
   * kubectl deleted it, and its RBAC may be gone by the time it stops and would delete it itself.
   */
  owner?: OwnerReference;
}

export class LeaderElector {
  private observed: LeaseSpec | undefined;
  private observedRaw = "";
  private observedAt = 0;
  private resourceVersion: string | undefined;
  private leading = false;
  /** Lost the Lease after holding it: this elector is done, and its client writes nothing more. */
  private deposed = false;
  /** We may act as leader until then: renewDeadline after the last renewal we sent that succeeded. */
  private leadingUntil = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lastRoundAt = 0;
  private readonly t: LeaderElectionTimings;
  private readonly clock: Clock;
  private readonly path: string;
  private readonly log: Logger;

  constructor(
    private readonly options: LeaderElectorOptions,
    private readonly callbacks: LeaderCallbacks,
  ) {
    this.t = {
      leaseDurationMs: options.leaseDurationMs ?? DEFAULT_LEADER_ELECTION.leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs ?? DEFAULT_LEADER_ELECTION.renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs ?? DEFAULT_LEADER_ELECTION.retryPeriodMs,
    };
    if (!(this.t.leaseDurationMs > this.t.renewDeadlineMs && this.t.renewDeadlineMs > this.t.retryPeriodMs))
      throw new Error(
        `leader election needs leaseDuration > renewDeadline > retryPeriod, got ${this.t.leaseDurationMs}/${this.t.renewDeadlineMs}/${this.t.retryPeriodMs} ms`,
      );
    this.clock = options.clock ?? monotonicClock;
    this.path = resourcePath(LEASES_RESOURCE, options.namespace, options.name);
    this.log = options.logger.child({ lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Why the elector is unhealthy, or undefined: it lost the Lease, or no round of the algorithm finished
   * for longer than any round can take (every request has a deadline, so only a stuck process gets there).
   */
  problem(): string | undefined {
    if (this.deposed) return "lost leadership";
    const boundMs = 2 * (this.t.renewDeadlineMs + this.t.retryPeriodMs);
    const sinceMs = this.clock() - this.lastRoundAt;
    return this.lastRoundAt > 0 && sinceMs > boundMs
      ? `leader election stalled: no round for ${Math.round(sinceMs / 1000)} s (bound ${boundMs / 1000} s)`
      : undefined;
  }

  /**
   * Campaigns, leads and renews until `signal` aborts (then releases the Lease if we hold it) or until
   * leadership is lost. Installs a write fence on the client: once we have lost, no write leaves it.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.options.client.setWriteFence((method, path) => this.admitWrite(method, path));
    this.lastRoundAt = this.clock();
    while (!signal.aborted && !this.deposed) {
      const renewedAt = await this.tryAcquireOrRenew(signal).catch((err: unknown) => {
        this.log.warn({ err: String(err) }, "lease acquire/renew failed");
        return undefined;
      });
      this.lastRoundAt = this.clock();
      if (this.deposed) break;
      if (renewedAt !== undefined) {
        this.leadingUntil = renewedAt + this.t.renewDeadlineMs;
        this.armDeadline();
        if (!this.leading) {
          this.leading = true;
          this.log.info("became leader");
          this.callbacks.onStartedLeading();
        }
      } else if (this.leading && this.heldByOther()) {
        this.loseLeadership(`the Lease is held by ${this.observed?.holderIdentity}`);
        break;
      }
      // Jitter the candidates' retries (client-go: JitterFactor 1.2) so they don't collide forever.
      const wait = this.leading ? this.t.retryPeriodMs : this.t.retryPeriodMs * (1 + 0.2 * Math.random());
      await sleepUnlessAborted(wait, signal);
    }
    clearTimeout(this.deadlineTimer);
    if (this.leading) {
      this.leading = false;
      this.callbacks.onStoppedLeading("shutdown");
      if (this.clock() < this.leadingUntil) await this.release();
    }
  }

  /** The deadline fires even while a renewal hangs: leadership ends on time, not when a request returns. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.loseLeadership("the Lease was not renewed within renewDeadline"), Math.max(0, this.leadingUntil - this.clock()));
    this.deadlineTimer.unref();
  }

  private loseLeadership(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.deposed = true;
    clearTimeout(this.deadlineTimer);
    this.log.error({ why, renewDeadlineMs: this.t.renewDeadlineMs, pastDeadlineMs: Math.round(this.clock() - this.leadingUntil) }, "lost leadership");
    this.callbacks.onStoppedLeading("lost");
  }

  /**
   * The write fence. Checked when a request is made, so it holds even when the process wakes from a
   * freeze and runs a worker's continuation before the deadline timer: past the deadline, nothing is sent.
   */
  private admitWrite(method: string, path: string): void {
    if (this.leading && this.clock() >= this.leadingUntil) this.loseLeadership("renewDeadline passed before a write");
    if (this.deposed)
      throw new WriteRefusedError(method, path, `${this.options.identity} lost the leader Lease ${this.options.namespace}/${this.options.name}`);
  }

  /** A leader's request may run until its deadline; a candidate's for renewDeadline. */
  private requestBudgetMs(): number {
    return this.leading ? Math.max(1, this.leadingUntil - this.clock()) : this.t.renewDeadlineMs;
  }

  private heldByOther(): boolean {
    const h = this.observed?.holderIdentity;
    return !!h && h !== this.options.identity;
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

  /** One round of the algorithm; when we hold the Lease afterwards, the local time our successful write was sent. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<number | undefined> {
    let lease: Lease | undefined;
    try {
      lease = await this.options.client.get<Lease>(this.path, { signal, timeoutMs: this.requestBudgetMs() });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.notFound)) throw err;
    }
    // None (a released or deleted Lease): forget the one seen before, whose resourceVersion a create must not carry.
    this.observe(lease ? (lease.spec ?? {}) : undefined, lease?.metadata.resourceVersion);
    const decision = decideLease(lease ? (lease.spec ?? {}) : undefined, this.observedAt, this.clock(), this.options.identity, this.t.leaseDurationMs);
    if (decision.action === "wait") return undefined;
    const spec = nextLeaseSpec(lease?.spec, this.options.identity, this.t.leaseDurationMs, new Date());
    try {
      const body: Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name: this.options.name,
          namespace: this.options.namespace,
          resourceVersion: this.resourceVersion,
          ownerReferences: this.options.owner ? [this.options.owner] : undefined,
        },
        spec,
      };
      // Sent now: the others measure our term from when they see this write, never earlier.
      const sentAt = this.clock();
      const init = { signal, timeoutMs: this.requestBudgetMs() };
      const written =
        decision.action === "create"
          ? await this.options.client.create<Lease>(resourcePath(LEASES_RESOURCE, this.options.namespace), body, init)
          : await this.options.client.replace<Lease>(this.path, body, init);
      this.observe(written.spec, written.metadata.resourceVersion);
      return sentAt;
    } catch (err) {
      // Someone else wrote first (409) or created it first (409 AlreadyExists): not ours this round.
      if (err instanceof KubeApiError && err.conflict) return undefined;
      throw err;
    }
  }

  /**
   * Hands the Lease over at once instead of making the next leader wait out leaseDuration, by deleting it:
   * a candidate's next try finds none and creates it, as fast as an emptied holder would be taken, and an
   * uninstalled operator (helm uninstall, kubectl delete) leaves no Lease behind.
   */
  private async release(): Promise<void> {
    try {
      const lease = await this.options.client.get<Lease>(this.path, { timeoutMs: this.t.renewDeadlineMs });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      // The precondition makes this a no-op (409) if someone took the Lease since we read it.
      await this.options.client.delete(this.path, {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { resourceVersion: lease.metadata.resourceVersion } },
        timeoutMs: Math.max(1, this.leadingUntil - this.clock()),
      });
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn({ err: String(err) }, "could not release the lease; the next leader waits for it to expire");
    }
  }
}
