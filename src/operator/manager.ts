// The manager: informers (ModelDeployments + owned Deployments/Services/ConfigMaps mapped back to their
// owner) → work queue → serving reconciler workers; leader election gates the workers; /healthz, /readyz
// and /metrics; graceful shutdown drains the queue and releases the Lease.
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { isDeepStrictEqual } from "node:util";
import type { V1ConfigMap, V1Deployment, V1Job, V1NetworkPolicy, V1Pod, V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { API_VERSION, KIND, type ResolvedModelDeployment } from "../api/index.js";
import type { KubeClient, KubeObject, OwnerReference } from "../kube/client.js";
import { EventRecorder } from "../kube/events.js";
import { NamespacedInformers, objectKey, withoutManagedFields } from "../kube/informer.js";
import { LeaderElector, type LeaderElectionTimings } from "../kube/leader-election.js";
import { parseBindAddress } from "./bind-address.js";
import { Controller, type ReconcileRequest } from "./controller.js";
import { OperatorMetrics } from "./metrics.js";
import { isReadyPod, MonitoringReconciler, slimPod } from "./monitoring/reconciler.js";
import { LoopReconciler } from "./loop/reconciler.js";
import { classifyReconcileError, recordReconcileFailure } from "./reconcile-errors.js";
import { CONFIG_MAPS, DEPLOYMENTS, JOBS, MODEL_DEPLOYMENTS, NETWORK_POLICIES, PODS, SERVICES } from "./resources.js";
import { LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_MODEL_DEPLOYMENT, MANAGED_BY } from "./serving/desired-state.js";
import { ServingReconciler } from "./serving/reconciler.js";

export interface LeaderElectionOptions extends Partial<LeaderElectionTimings> {
  namespace: string;
  id: string;
  /** The operator's own pod, as the Lease's owner (LeaderElectorOptions.owner); only in the Lease's namespace. */
  owner?: OwnerReference;
}

export interface ManagerOptions {
  client: KubeClient;
  logger: Logger;
  /** Watched namespaces; undefined watches all. */
  namespaces?: string[];
  workers: number;
  /** "host:port" or ":port"; "0" turns the listener off. */
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElection?: LeaderElectionOptions;
  /** Ballast image for serving pods whose spec names none. */
  image: string;
  /** The namespace the operator's pods run in (their NetworkPolicy rule); undefined when it runs outside a cluster. */
  operatorNamespace?: string;
  /** Who we are in Events and the Lease (the pod name in a cluster). */
  identity?: string;
  /**
   * Called once when leader election is lost (not renewed within renewDeadline, or another holder seen):
   * another replica may lead already, so the process should exit and let its Deployment restart it.
   * Workers are stopped and the client refuses writes before this is called.
   */
  onLeadershipLost?: () => void;
  /** /healthz fails while one reconcile has run longer than this; default STUCK_RECONCILE_MS. */
  stuckReconcileMs?: number;
}

/** No reconcile does more than a handful of API calls of at most 30 s each: five minutes means stuck. */
export const STUCK_RECONCILE_MS = 5 * 60_000;

export const CONTROLLER_NAME = "serving";
export const MONITORING_CONTROLLER_NAME = "monitoring";
export const LOOP_CONTROLLER_NAME = "loop";
export const REPORTING_CONTROLLER = "ballast.dev/operator";

type MD = ResolvedModelDeployment & KubeObject;

/** The "namespace/name" of the ModelDeployment that controls `obj`, if any. */
export function controllingOwnerKey(obj: KubeObject): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find((o) => o.controller && o.kind === KIND && o.apiVersion === API_VERSION);
  return ref ? `${obj.metadata?.namespace}/${ref.name}` : undefined;
}

/**
 * Status-only updates (our own writes) and our own finalizer patch carry nothing to reconcile; spec,
 * deletion, labels and annotations do. A finalizer someone removed comes back on the next reconcile.
 */
export function modelDeploymentChanged(a: MD, b: MD): boolean {
  const ma = a.metadata;
  const mb = b.metadata;
  return (
    ma.generation !== mb.generation ||
    String(ma.deletionTimestamp ?? "") !== String(mb.deletionTimestamp ?? "") ||
    JSON.stringify(ma.annotations ?? {}) !== JSON.stringify(mb.annotations ?? {}) ||
    JSON.stringify(ma.labels ?? {}) !== JSON.stringify(mb.labels ?? {})
  );
}

/** What the loop reacts to besides the spec: the policy's trigger, a new window, the version served, its own state. */
export function loopInputsChanged(a: MD, b: MD): boolean {
  const pick = (m: MD) => [
    m.status?.policy?.lastTriggerTime,
    m.status?.lastMetrics?.windowEnd,
    m.status?.servingVersion,
    m.status?.loop?.phase,
    m.status?.loop?.attempt,
    m.status?.shadow?.verdict,
  ];
  return modelDeploymentChanged(a, b) || !isDeepStrictEqual(pick(a), pick(b));
}

/** What the loop reads of a Job: identity, owner and the finished conditions. */
export function slimJob(job: V1Job & KubeObject): V1Job & KubeObject {
  return {
    apiVersion: job.apiVersion,
    kind: job.kind,
    metadata: { ...job.metadata, managedFields: undefined },
    status: { conditions: job.status?.conditions?.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })) },
  };
}

/** Owned Services and ConfigMaps are compared by their applied-hash annotation: metadata is all we keep. */
export function metadataOnly<T extends KubeObject>(obj: T): T {
  const m = obj.metadata ?? {};
  return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { ...m, managedFields: undefined } } as T;
}

/** What the serving reconciler reads of a Deployment: replicas, the template's hash and containers, status. */
export function slimDeployment(dep: V1Deployment & KubeObject): V1Deployment & KubeObject {
  const t = dep.spec?.template;
  return {
    apiVersion: dep.apiVersion,
    kind: dep.kind,
    metadata: { ...dep.metadata, managedFields: undefined },
    spec: dep.spec && {
      replicas: dep.spec.replicas,
      selector: dep.spec.selector,
      template: {
        metadata: { annotations: t?.metadata?.annotations },
        spec: t?.spec && { containers: t.spec.containers.map((c) => ({ name: c.name, image: c.image, args: c.args })) },
      },
    },
    status: dep.status,
  };
}

export class Manager {
  readonly metrics = new OperatorMetrics();
  readonly identity: string;
  readonly controller: Controller;
  /** Scrapes the sidecars and writes lastMetrics, policy, DriftDetected and Degraded (its own queue and workers). */
  readonly monitoring: Controller;
  /** Retrains, gates, promotes, observes and rolls back (its own queue and workers). */
  readonly loop: Controller;
  private readonly modelDeployments: NamespacedInformers<MD>;
  private readonly owned: NamespacedInformers<KubeObject>[];
  private readonly recorder: EventRecorder;
  private readonly servers: Server[] = [];
  private elector: LeaderElector | undefined;
  private electorRun: Promise<void> | undefined;
  private readonly electorAbort = new AbortController();
  private readonly log: Logger;
  private stopping = false;

  constructor(private readonly options: ManagerOptions) {
    this.log = options.logger;
    this.identity = options.identity ?? `${hostname()}_${randomUUID()}`;
    const informerOpts = { client: options.client, logger: options.logger, transform: withoutManagedFields };
    this.modelDeployments = new NamespacedInformers<MD>(options.namespaces, { ...informerOpts, resource: MODEL_DEPLOYMENTS });
    this.metrics.modelDeployments.readFrom(() => this.modelDeployments.list());
    // Only objects we manage: a cluster's other ConfigMaps and Deployments would cost memory for nothing.
    const ownedOpts = { ...informerOpts, labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` };
    const deployments = new NamespacedInformers<V1Deployment & KubeObject>(options.namespaces, {
      ...ownedOpts,
      resource: DEPLOYMENTS,
      transform: slimDeployment,
    });
    const services = new NamespacedInformers<V1Service & KubeObject>(options.namespaces, { ...ownedOpts, resource: SERVICES, transform: metadataOnly });
    const configMaps = new NamespacedInformers<V1ConfigMap & KubeObject>(options.namespaces, { ...ownedOpts, resource: CONFIG_MAPS, transform: metadataOnly });
    const networkPolicies = new NamespacedInformers<V1NetworkPolicy & KubeObject>(options.namespaces, {
      ...ownedOpts,
      resource: NETWORK_POLICIES,
      transform: metadataOnly,
    });
    const pods = new NamespacedInformers<V1Pod & KubeObject>(options.namespaces, { ...ownedOpts, resource: PODS, transform: slimPod });
    const jobs = new NamespacedInformers<V1Job & KubeObject>(options.namespaces, { ...ownedOpts, resource: JOBS, transform: slimJob });
    this.owned = [deployments, services, configMaps, networkPolicies, pods, jobs] as NamespacedInformers<KubeObject>[];
    this.recorder = new EventRecorder(options.client, REPORTING_CONTROLLER, this.identity.slice(0, 128), options.logger);
    const reconciler = new ServingReconciler({
      client: options.client,
      caches: { modelDeployments: this.modelDeployments, deployments, services, configMaps, networkPolicies },
      recorder: this.recorder,
      defaultImage: options.image,
      operatorNamespace: options.operatorNamespace,
      onStatusConflict: () => this.metrics.statusConflicts.inc({ controller: CONTROLLER_NAME }),
    });
    this.controller = new Controller({
      name: CONTROLLER_NAME,
      reconciler,
      workers: options.workers,
      metrics: this.metrics,
      logger: options.logger,
      onError: this.recordFailure(CONTROLLER_NAME),
    });
    const monitoring = new MonitoringReconciler({
      client: options.client,
      caches: { modelDeployments: this.modelDeployments, pods },
      recorder: this.recorder,
      onStatusConflict: () => this.metrics.statusConflicts.inc({ controller: MONITORING_CONTROLLER_NAME }),
      onScraped: (md, pods, failed) => this.metrics.modelDeployments.scraped(md, pods, failed),
    });
    this.monitoring = new Controller({
      name: MONITORING_CONTROLLER_NAME,
      reconciler: monitoring,
      workers: options.workers,
      metrics: this.metrics,
      logger: options.logger,
      onError: this.recordFailure(MONITORING_CONTROLLER_NAME),
    });
    const loop = new LoopReconciler({
      client: options.client,
      caches: { modelDeployments: this.modelDeployments, jobs, deployments, pods },
      recorder: this.recorder,
      defaultImage: options.image,
      operatorNamespace: options.operatorNamespace,
      onStatusConflict: () => this.metrics.statusConflicts.inc({ controller: LOOP_CONTROLLER_NAME }),
      onStepped: (md, before, after) => this.metrics.modelDeployments.loopStepped(md, before, after),
    });
    this.loop = new Controller({
      name: LOOP_CONTROLLER_NAME,
      reconciler: loop,
      workers: options.workers,
      metrics: this.metrics,
      logger: options.logger,
      onError: this.recordFailure(LOOP_CONTROLLER_NAME),
    });
    this.wireEvents(pods, jobs, deployments);
  }

  /** A failed reconcile of any controller leaves a Warning Event on its ModelDeployment (gone: nobody to tell). */
  private recordFailure(controller: string): (req: ReconcileRequest, err: unknown) => void {
    return (req, err) => {
      const md = this.modelDeployments.get(`${req.namespace}/${req.name}`);
      if (md) recordReconcileFailure(this.recorder, md, classifyReconcileError(err), controller);
    };
  }

  private wireEvents(
    pods: NamespacedInformers<V1Pod & KubeObject>,
    jobs: NamespacedInformers<V1Job & KubeObject>,
    deployments: NamespacedInformers<V1Deployment & KubeObject>,
  ): void {
    const enqueue = (obj: KubeObject) => {
      for (const c of this.controllers) c.enqueue(objectKey(obj));
    };
    this.modelDeployments.on({
      add: enqueue,
      delete: enqueue,
      update: (a, b) => {
        const key = objectKey(b);
        // The loop pins a new version in status.targetVersion: the serving reconciler rolls the Deployment.
        if (modelDeploymentChanged(a, b) || a.status?.targetVersion !== b.status?.targetVersion) this.controller.enqueue(key);
        if (modelDeploymentChanged(a, b)) this.monitoring.enqueue(key);
        if (loopInputsChanged(a, b)) this.loop.enqueue(key);
      },
    });
    const enqueueOwner = (controller: Controller) => (obj: KubeObject) => {
      const key = controllingOwnerKey(obj);
      if (key) controller.enqueue(key);
    };
    const toServing = enqueueOwner(this.controller);
    const toLoop = enqueueOwner(this.loop);
    for (const inf of this.owned) {
      if (inf === (pods as NamespacedInformers<KubeObject>) || inf === (jobs as NamespacedInformers<KubeObject>)) continue;
      inf.on({ add: toServing, update: (_a, b) => toServing(b), delete: toServing });
    }
    // Jobs move the loop (Training); the serving Deployment's rollout moves it too (Promoting, RollingBack).
    jobs.on({ add: toLoop, update: (_a, b) => toLoop(b), delete: toLoop });
    deployments.on({ update: (_a, b) => toLoop(b) });
    // A serving pod turning ready (or going) changes who is scraped: look at once rather than at the next interval.
    const enqueueMonitoring = (pod: V1Pod & KubeObject) => {
      const name = pod.metadata?.labels?.[LABEL_MODEL_DEPLOYMENT];
      if (name) this.monitoring.enqueue(`${pod.metadata?.namespace}/${name}`);
    };
    pods.on({
      add: (p) => isReadyPod(p) && enqueueMonitoring(p),
      delete: enqueueMonitoring,
      update: (a, b) => isReadyPod(a) !== isReadyPod(b) && enqueueMonitoring(b),
    });
    // A shadow pod turning ready is a new mirror target: the loop sends it at once.
    pods.on({
      update: (a, b) => {
        const name = b.metadata?.labels?.[LABEL_MODEL_DEPLOYMENT];
        if (name && b.metadata?.labels?.[LABEL_COMPONENT] === "shadow" && isReadyPod(a) !== isReadyPod(b))
          this.loop.enqueue(`${b.metadata?.namespace}/${name}`);
      },
    });
  }

  private get controllers(): Controller[] {
    return [this.controller, this.monitoring, this.loop];
  }

  hasSynced(): boolean {
    return this.modelDeployments.hasSynced() && this.owned.every((i) => i.hasSynced());
  }

  get isLeader(): boolean {
    return this.options.leaderElection ? (this.elector?.isLeader ?? false) : true;
  }

  /** Starts listeners and informers, waits for the caches, then reconciles (or campaigns first). */
  async start(): Promise<void> {
    await this.listen();
    this.modelDeployments.start();
    for (const i of this.owned) i.start();
    this.log.info(
      { namespaces: this.options.namespaces ?? "all", workers: this.options.workers, identity: this.identity, user: this.options.client.describeUser() },
      "operator starting",
    );
    await Promise.all([this.modelDeployments.waitForSync(this.electorAbort.signal), ...this.owned.map((i) => i.waitForSync(this.electorAbort.signal))]);
    if (this.stopping) return;
    const le = this.options.leaderElection;
    if (!le) {
      for (const c of this.controllers) c.start();
      return;
    }
    const leaseName = { name: le.id };
    this.metrics.leader.set(leaseName, 0);
    this.elector = new LeaderElector(
      { ...le, client: this.options.client, namespace: le.namespace, name: le.id, identity: this.identity, logger: this.log },
      {
        onStartedLeading: () => {
          this.metrics.leader.set(leaseName, 1);
          for (const c of this.controllers) c.start();
          // A new term starts from the whole cache: the previous leader may have left work half done.
          for (const md of this.modelDeployments.list()) for (const c of this.controllers) c.enqueue(objectKey(md));
        },
        onStoppedLeading: (reason) => {
          this.metrics.leader.set(leaseName, 0);
          for (const c of this.controllers) void c.stopWorkers();
          if (reason === "lost") this.options.onLeadershipLost?.();
        },
        onNewLeader: (id) => this.log.info({ leader: id }, "new leader observed"),
      },
    );
    this.electorRun = this.elector.run(this.electorAbort.signal);
  }

  /**
   * What makes this process unfit to keep running, for /healthz: a worker stuck in one reconcile, a
   * stalled or deposed leader elector. Empty when alive. An unreachable API server is not on the list:
   * a restart would not bring it back, and the informers and workers retry on their own.
   */
  livenessProblems(): string[] {
    const problems: string[] = [];
    const bound = this.options.stuckReconcileMs ?? STUCK_RECONCILE_MS;
    for (const c of this.controllers) {
      const ms = c.queue.longestProcessingMs();
      if (ms > bound) problems.push(`controller ${c.name}: a reconcile has run for ${(ms / 1000).toFixed(1)} s (bound ${(bound / 1000).toFixed(1)} s)`);
    }
    const elector = this.elector?.problem();
    if (elector) problems.push(elector);
    return problems;
  }

  /** Drains the queue (reconciles in flight finish), releases the Lease, stops informers and listeners. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ queued: this.controller.queue.length }, "shutting down: draining the work queue");
    await Promise.all(this.controllers.map((c) => c.drain()));
    this.electorAbort.abort();
    await this.electorRun;
    await this.recorder.flush();
    await Promise.all([this.modelDeployments.stop(), ...this.owned.map((i) => i.stop())]);
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    this.log.info("operator stopped");
  }

  private async listen(): Promise<void> {
    const metricsAt = parseBindAddress("--metrics-bind-address", this.options.metricsBindAddress);
    const healthAt = parseBindAddress("--health-probe-bind-address", this.options.healthProbeBindAddress);
    const handle = async (path: string | undefined): Promise<[number, string, string]> => {
      switch (path) {
        case "/healthz": {
          const problems = this.livenessProblems();
          return problems.length === 0 ? [200, "text/plain", "ok\n"] : [500, "text/plain", `${problems.join("\n")}\n`];
        }
        case "/readyz":
          return this.hasSynced() ? [200, "text/plain", "ok\n"] : [503, "text/plain", "informer caches not synced\n"];
        case "/metrics":
          return [200, this.metrics.registry.contentType, await this.metrics.registry.metrics()];
        default:
          return [404, "text/plain", "not found: try /healthz, /readyz or /metrics\n"];
      }
    };
    const addresses = [metricsAt, healthAt].filter((a): a is { host: string; port: number } => a !== undefined);
    // Both flags may name the same address; serve everything there once.
    const unique = [...new Map(addresses.map((a) => [`${a.host}:${a.port}`, a])).values()];
    for (const at of unique) {
      const server = createServer((req, res) => {
        void handle(req.url?.split("?")[0]).then(([code, type, body]) => {
          res.writeHead(code, { "content-type": type });
          res.end(body);
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(new Error(`cannot listen on ${at.host}:${at.port}: ${err.message}`)));
        server.listen(at.port, at.host, () => resolve());
      });
      const addr = server.address();
      this.log.info({ address: typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : String(addr) }, "serving /healthz, /readyz, /metrics");
      this.servers.push(server);
    }
  }

  /** The ports actually bound (":0" picks a free one), in the order metrics, health. */
  boundPorts(): number[] {
    return this.servers.map((s) => {
      const a = s.address();
      return typeof a === "object" && a ? a.port : 0;
    });
  }
}
