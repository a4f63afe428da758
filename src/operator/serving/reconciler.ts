// The serving reconciler: reads a ModelDeployment and what exists from the caches, applies the desired
// ConfigMap, Service, Deployment and NetworkPolicy with server-side apply, and writes status — never depending on which
// event woke it up.
import type { V1ConfigMap, V1Deployment, V1NetworkPolicy, V1Service } from "@kubernetes/client-node";
import { ConditionReason, parseStorageUri, type ResolvedModelDeployment } from "../../api/index.js";
import { applyFinalizer, serverSideApply } from "../../kube/apply.js";
import { KubeApiError, resourcePath, type KubeClient, type KubeObject } from "../../kube/client.js";
import type { EventRecorder } from "../../kube/events.js";
import type { ObjectCache } from "../../kube/informer.js";
import { updateStatusWithRetry } from "../../kube/status.js";
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from "../controller.js";
import { classifyReconcileError, ReconcileError, StalledError } from "../reconcile-errors.js";
import { CONFIG_MAPS, DEPLOYMENTS, MODEL_DEPLOYMENTS, NETWORK_POLICIES, PERSISTENT_VOLUME_CLAIMS, SERVICES } from "../resources.js";
import {
  ANNOTATION_APPLIED_HASH,
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_REPLICAS_MANAGED_BY,
  LABEL_MODEL_DEPLOYMENT,
  desiredServingObjects,
  servingNames,
} from "./desired-state.js";
import { servingStatus, type ReconcileOutcome } from "./status.js";

/** Removed only after cleanup that owner references cannot do (see `finalize`). */
export const SERVING_FINALIZER = "ballast.dev/serving-cleanup";
/** Re-apply unchanged objects this often anyway, to undo edits others made to fields we own. */
const REAPPLY_AFTER_MS = 10 * 60_000;
/** While pods come up, look again even if no event arrives (a missed event must not strand the status). */
const PROGRESS_RECHECK_MS = 30_000;

export interface ServingCaches {
  modelDeployments: ObjectCache<ResolvedModelDeployment & KubeObject>;
  deployments: ObjectCache<V1Deployment & KubeObject>;
  services: ObjectCache<V1Service & KubeObject>;
  configMaps: ObjectCache<V1ConfigMap & KubeObject>;
  networkPolicies: ObjectCache<V1NetworkPolicy & KubeObject>;
}

export interface ServingReconcilerOptions {
  client: KubeClient;
  caches: ServingCaches;
  recorder: EventRecorder;
  defaultImage: string;
  /** The operator's namespace, for the NetworkPolicy's monitoring-port rule; undefined outside a cluster. */
  operatorNamespace?: string;
  now?: () => Date;
  onStatusConflict?: () => void;
}

export class ServingReconciler implements Reconciler {
  /** "kind ns/name" → when we last applied it, for the re-apply period. */
  private readonly appliedAt = new Map<string, number>();

  constructor(private readonly options: ServingReconcilerOptions) {}

  async reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    const md = this.options.caches.modelDeployments.get(key);
    if (!md) {
      this.forgetApplied(req.namespace, req.name);
      return {};
    }
    if (md.metadata.deletionTimestamp) return this.finalize(md, ctx);
    let current = md;
    // In parallel with the applies: the finalizer only guards cleanup, which owner references back up.
    const finalizerAdded = md.metadata.finalizers?.includes(SERVING_FINALIZER)
      ? Promise.resolve(undefined)
      : applyFinalizer(this.options.client, MODEL_DEPLOYMENTS, md, SERVING_FINALIZER, true);
    const names = servingNames(req.name);
    const cached = this.options.caches.deployments.get(`${req.namespace}/${names.deployment}`);
    // Someone else's Deployment of that name (labelled like ours) must not feed our status.
    const cachedDeployment = cached && controlledBy(cached, md) ? cached : undefined;
    let deployment: V1Deployment | undefined = cachedDeployment;
    try {
      const [withFinalizer, applied] = await Promise.all([
        finalizerAdded,
        this.checkModelStore(md).then(() => this.applyServingObjects(md, cachedDeployment, ctx)),
      ]);
      // The status write needs the resourceVersion the finalizer patch produced, or it conflicts.
      if (withFinalizer) current = { ...md, metadata: withFinalizer.metadata! };
      deployment = applied;
    } catch (err) {
      const error = classifyReconcileError(err);
      this.options.recorder.record(current, { type: "Warning", reason: error.reason, action: "Reconcile", note: error.message });
      await this.writeStatus(current, { ok: false, error, deployment });
      ctx.log.warn({ reason: error.reason, stalled: error.stalled, err: error.message }, "reconcile failed");
      if (error.stalled) return { requeueAfterMs: error.requeueAfterMs };
      throw err;
    }
    const written = await this.writeStatus(current, { ok: true, deployment });
    const ready = written?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    return ready ? { requeueAfterMs: REAPPLY_AFTER_MS } : { requeueAfterMs: PROGRESS_RECHECK_MS };
  }

  /** A pvc:// store whose claim does not exist can never serve: say so instead of leaving pods Pending. */
  private async checkModelStore(md: ResolvedModelDeployment): Promise<void> {
    const location = parseStorageUri(md.spec.model.storageUri, "spec.model.storageUri");
    if (location.scheme !== "pvc") return;
    try {
      await this.options.client.get(resourcePath(PERSISTENT_VOLUME_CLAIMS, md.metadata.namespace, location.claimName));
    } catch (err) {
      if (err instanceof KubeApiError && err.notFound)
        throw new StalledError(
          ConditionReason.ClaimNotFound,
          `spec.model.storageUri names PersistentVolumeClaim "${location.claimName}", which does not exist in namespace ${md.metadata.namespace}: create it or change the URI`,
        );
      throw err;
    }
  }

  private async applyServingObjects(
    md: ResolvedModelDeployment & KubeObject,
    cachedDeployment: V1Deployment | undefined,
    ctx: ReconcileContext,
  ): Promise<V1Deployment | undefined> {
    const ns = md.metadata.namespace!;
    const desired = desiredServingObjects(md, { defaultImage: this.options.defaultImage, operatorNamespace: this.options.operatorNamespace });
    const names = servingNames(md.metadata.name!);
    const cachedConfigMap = this.options.caches.configMaps.get(`${ns}/${names.configMap}`);
    const cachedService = this.options.caches.services.get(`${ns}/${names.service}`);
    const deploymentCached = this.options.caches.deployments.get(`${ns}/${names.deployment}`);
    const cachedNetworkPolicy = this.options.caches.networkPolicies.get(`${ns}/${names.networkPolicy}`);
    // All four are checked before any is applied, so a conflict on one leaves the others untouched too.
    const [configMapUid, serviceUid, deploymentUid, networkPolicyUid] = await Promise.all([
      this.controlledUid(CONFIG_MAPS, md, desired.configMap, cachedConfigMap),
      this.controlledUid(SERVICES, md, desired.service, cachedService),
      this.controlledUid(DEPLOYMENTS, md, desired.deployment, deploymentCached),
      this.controlledUid(NETWORK_POLICIES, md, desired.networkPolicy, cachedNetworkPolicy),
    ]);
    const [, , deployment] = await Promise.all([
      this.applyIfChanged(CONFIG_MAPS, desired.configMap, cachedConfigMap, configMapUid, ctx),
      this.applyIfChanged(SERVICES, desired.service, cachedService, serviceUid, ctx),
      this.applyIfChanged(DEPLOYMENTS, desired.deployment, cachedDeployment, deploymentUid, ctx),
      this.applyIfChanged(NETWORK_POLICIES, desired.networkPolicy, cachedNetworkPolicy, networkPolicyUid, ctx),
    ]);
    this.recordServingChanges(md, cachedDeployment, desired.deployment);
    return deployment;
  }

  /**
   * The uid of the existing object named like `desired` when this ModelDeployment controls it, undefined
   * when none exists; a StalledError (NameConflict) when one exists that we do not control. A forced apply
   * would otherwise take over anyone's Service of that name (our selector, our owner reference, and later
   * garbage collection with the ModelDeployment): as controller-runtime's controllerutil, we never adopt.
   * The caches hold only objects labelled as ours, so a miss is asked of the API server.
   */
  private async controlledUid(
    resource: typeof DEPLOYMENTS,
    md: ResolvedModelDeployment & KubeObject,
    desired: KubeObject,
    cached: KubeObject | undefined,
  ): Promise<string | undefined> {
    const ns = md.metadata.namespace!;
    const name = desired.metadata!.name!;
    let existing = cached;
    if (!existing) {
      try {
        existing = await this.options.client.get<KubeObject>(resourcePath(resource, ns, name));
      } catch (err) {
        if (err instanceof KubeApiError && err.notFound) return undefined;
        throw err;
      }
    }
    if (controlledBy(existing, md)) return existing.metadata!.uid;
    throw new StalledError(ConditionReason.NameConflict, nameConflictMessage(desired.kind!, ns, name, existing, md.metadata.name!));
  }

  private async applyIfChanged<T extends KubeObject>(
    resource: typeof DEPLOYMENTS,
    desired: T,
    cached: T | undefined,
    /** The uid of the object we checked we control (undefined: none existed, the apply creates it). */
    controlledUid: string | undefined,
    ctx: ReconcileContext,
  ): Promise<T | undefined> {
    const id = `${desired.kind} ${desired.metadata?.namespace}/${desired.metadata?.name}`;
    const hash = desired.metadata?.annotations?.[ANNOTATION_APPLIED_HASH];
    const last = this.appliedAt.get(id);
    if (cached && cached.metadata?.annotations?.[ANNOTATION_APPLIED_HASH] === hash && last !== undefined && Date.now() - last < REAPPLY_AFTER_MS) return cached;
    // metadata.uid is a precondition: should the object be replaced by someone else's since we checked, the
    // API server refuses the apply (422, uid is immutable) instead of taking the newcomer over.
    const body = controlledUid ? { ...desired, metadata: { ...desired.metadata, uid: controlledUid } } : desired;
    let applied: T;
    try {
      applied = await serverSideApply(this.options.client, resource, body);
    } catch (err) {
      if (controlledUid && err instanceof KubeApiError && (err.status === 422 || err.status === 409) && /uid/i.test(err.message))
        throw new ReconcileError(ConditionReason.NameConflict, `${id} was replaced by another object while being applied; checking who controls it again`);
      throw err;
    }
    this.appliedAt.set(id, Date.now());
    ctx.log.debug({ object: id }, "applied");
    return applied;
  }

  /** Created / Scaled / Rolled Events, judged against the Deployment as it was before this apply. */
  private recordServingChanges(md: ResolvedModelDeployment & KubeObject, before: V1Deployment | undefined, desired: V1Deployment): void {
    const names = servingNames(md.metadata.name!);
    const rec = this.options.recorder;
    if (!before) {
      rec.record(md, {
        type: "Normal",
        reason: "Created",
        action: "Apply",
        note: `created Deployment ${names.deployment}, Service ${names.service}, ConfigMap ${names.configMap} and NetworkPolicy ${names.networkPolicy}`,
      });
      return;
    }
    const delegated = md.metadata.annotations?.[ANNOTATION_REPLICAS_MANAGED_BY] === "external";
    const from = before.spec?.replicas;
    const to = desired.spec?.replicas;
    if (!delegated && to !== undefined && from !== undefined && from !== to)
      rec.record(md, { type: "Normal", reason: "Scaled", action: "Scale", note: `scaled Deployment ${names.deployment} from ${from} to ${to} replicas` });
    const beforeHash = before.metadata?.annotations?.[ANNOTATION_APPLIED_HASH];
    const templateChanged = templateFingerprint(before) !== templateFingerprint(desired);
    if (beforeHash && templateChanged)
      rec.record(md, {
        type: "Normal",
        reason: "Rolled",
        action: "Rollout",
        note: `rolling Deployment ${names.deployment} to a new pod template (generation ${md.metadata.generation})`,
      });
  }

  private async writeStatus(md: ResolvedModelDeployment & KubeObject, outcome: ReconcileOutcome): Promise<(ResolvedModelDeployment & KubeObject) | undefined> {
    const now = this.options.now?.() ?? new Date();
    return updateStatusWithRetry(this.options.client, MODEL_DEPLOYMENTS, md, (latest) => servingStatus(latest, outcome, now), {
      onConflict: this.options.onStatusConflict,
    });
  }

  /**
   * Deletes serving objects labelled for this ModelDeployment that lost their owner reference (edited
   * away, or orphaned by `kubectl delete --cascade=orphan` of an earlier incarnation): the garbage
   * collector cannot find those. Owned objects are left to it. Then releases the finalizer.
   */
  private async finalize(md: ResolvedModelDeployment & KubeObject, ctx: ReconcileContext): Promise<ReconcileResult> {
    if (!md.metadata.finalizers?.includes(SERVING_FINALIZER)) return {};
    const ns = md.metadata.namespace!;
    const name = md.metadata.name!;
    const orphans: [typeof DEPLOYMENTS, KubeObject][] = [];
    const caches: [typeof DEPLOYMENTS, { list(): KubeObject[] }][] = [
      [DEPLOYMENTS, this.options.caches.deployments],
      [SERVICES, this.options.caches.services],
      [CONFIG_MAPS, this.options.caches.configMaps],
      [NETWORK_POLICIES, this.options.caches.networkPolicies],
    ];
    const names = servingNames(name);
    const ourNames: Record<string, string> = {
      deployments: names.deployment,
      services: names.service,
      configmaps: names.configMap,
      networkpolicies: names.networkPolicy,
    };
    // Only our names, labelled as ours and controlled by nobody: what we made and lost track of, never
    // an object someone else controls or merely labelled.
    for (const [resource, cache] of caches)
      for (const obj of cache.list())
        if (
          obj.metadata?.namespace === ns &&
          ourNames[resource.plural] === obj.metadata.name &&
          obj.metadata.labels?.[LABEL_MODEL_DEPLOYMENT] === name &&
          !obj.metadata.ownerReferences?.some((o) => o.controller)
        )
          orphans.push([resource, obj]);
    for (const [resource, obj] of orphans) {
      try {
        await this.options.client.delete(resourcePath(resource, ns, obj.metadata!.name), { query: { propagationPolicy: "Background" } });
        ctx.log.info({ object: `${obj.kind ?? resource.plural} ${ns}/${obj.metadata!.name}` }, "deleted orphaned serving object");
      } catch (err) {
        if (!(err instanceof KubeApiError && err.notFound)) throw err;
      }
    }
    await applyFinalizer(this.options.client, MODEL_DEPLOYMENTS, md, SERVING_FINALIZER, false);
    this.forgetApplied(ns, name);
    ctx.log.info({ orphansDeleted: orphans.length }, "finalized; owned objects are left to the garbage collector");
    return {};
  }

  private forgetApplied(namespace: string, name: string): void {
    const names = servingNames(name);
    for (const [kind, n] of [
      ["Deployment", names.deployment],
      ["Service", names.service],
      ["ConfigMap", names.configMap],
      ["NetworkPolicy", names.networkPolicy],
    ])
      this.appliedAt.delete(`${kind} ${namespace}/${n}`);
  }
}

/** True when `md` (this incarnation: uid, not just name) is the object's controller. */
function controlledBy(obj: KubeObject, md: KubeObject): boolean {
  return obj.metadata?.ownerReferences?.some((o) => o.controller && o.uid === md.metadata?.uid) ?? false;
}

function nameConflictMessage(kind: string, ns: string, name: string, existing: KubeObject, mdName: string): string {
  const controller = existing.metadata?.ownerReferences?.find((o) => o.controller);
  const who = controller
    ? controller.kind === "ModelDeployment" && controller.name === mdName
      ? `controlled by an earlier ModelDeployment ${mdName} (uid ${controller.uid}) that is being deleted`
      : `controlled by ${controller.kind} ${controller.name}`
    : existing.metadata?.labels?.[LABEL_MODEL_DEPLOYMENT] === mdName
      ? "labelled for it but controlled by nothing (orphaned by `kubectl delete --cascade=orphan`, or its owner reference was removed)"
      : "not created by this ModelDeployment";
  return (
    `${kind} ${ns}/${name} already exists and is ${who}; Ballast does not take over objects it does not control, and changed nothing. ` +
    `Give the ModelDeployment another name, or delete the ${kind} if nothing else needs it (Ballast then creates its own)`
  );
}

/** The parts of the pod template we set that make a new revision: the config hash and each container's image and args. */
function templateFingerprint(dep: V1Deployment): string {
  const t = dep.spec?.template;
  return JSON.stringify([t?.metadata?.annotations?.[ANNOTATION_CONFIG_HASH], t?.spec?.containers?.map((c) => [c.name, c.image, c.args]) ?? []]);
}
