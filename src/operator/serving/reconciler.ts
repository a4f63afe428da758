// The serving reconciler: reads a ModelDeployment and what exists from the caches, applies the desired
// ConfigMap, Service, Deployment and NetworkPolicy with server-side apply, and writes status — never depending on which
// event woke it up.
import type { V1ConfigMap, V1Deployment, V1NetworkPolicy, V1Pod, V1Service } from "@kubernetes/client-node";
import { ConditionReason, parseStorageUri, type ResolvedModelDeployment } from "../../api/index.js";
import { applyFinalizer, serverSideApply } from "../../kube/apply.js";
import { KubeApiError, resourcePath, type KubeClient, type KubeList, type KubeObject } from "../../kube/client.js";
import type { EventRecorder } from "../../kube/events.js";
import type { ObjectCache } from "../../kube/informer.js";
import { updateStatusWithRetry } from "../../kube/status.js";
import type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from "../controller.js";
import { isFirstStatus, withOthersFirstStatus } from "../first-status.js";
import { classifyReconcileError, ReconcileError, recordReconcileFailure, StalledError } from "../reconcile-errors.js";
import { CONFIG_MAPS, DEPLOYMENTS, MODEL_DEPLOYMENTS, NETWORK_POLICIES, PERSISTENT_VOLUME_CLAIMS, PODS, SERVICES } from "../resources.js";
import {
  ANNOTATION_APPLIED_HASH,
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_REPLICAS_MANAGED_BY,
  LABEL_MODEL_DEPLOYMENT,
  desiredServingObjects,
  selectorString,
  servingNames,
} from "./desired-state.js";
import { deploymentProgress, serverFailure, servingStatus, type ReconcileOutcome } from "./status.js";

/**
 * Added by Ballast before 0.x-h12; no longer added (owner references and the garbage collector clean up
 * everything, see docs/operator.md "No finalizer"), only released so such objects can still be deleted.
 */
export const LEGACY_SERVING_FINALIZER = "ballast.dev/serving-cleanup";
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
    if (md.metadata.deletionTimestamp) return this.releaseLegacyFinalizer(md, ctx);
    const names = servingNames(req.name);
    const cached = this.options.caches.deployments.get(`${req.namespace}/${names.deployment}`);
    // Someone else's Deployment of that name (labelled like ours) must not feed our status.
    const cachedDeployment = cached && controlledBy(cached, md) ? cached : undefined;
    let deployment: V1Deployment | undefined = cachedDeployment;
    try {
      await this.checkModelStore(md);
      deployment = await this.applyServingObjects(md, ctx);
    } catch (err) {
      const error = classifyReconcileError(err);
      // A stalled reconcile ends without an error the controller sees: its Warning Event is recorded here. Any
      // other error is thrown, and the controller records it (Manager's onError) and retries with backoff.
      if (error.stalled) recordReconcileFailure(this.options.recorder, md, error);
      await this.writeStatus(md, { ok: false, error, deployment });
      ctx.log.warn({ reason: error.reason, stalled: error.stalled, err: error.message }, "reconcile failed");
      if (error.stalled) return { requeueAfterMs: error.requeueAfterMs };
      throw err;
    }
    // The Deployment controller has yet to see this generation: its status write wakes us again, and a
    // status saying only "not observed yet" would be one more write per object for nothing.
    if (deployment && (deployment.status?.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 0)) return { requeueAfterMs: PROGRESS_RECHECK_MS };
    const written = await this.writeStatus(md, { ok: true, deployment, serverFailure: await this.serverFailure(md, deployment) });
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

  private async applyServingObjects(md: ResolvedModelDeployment & KubeObject, ctx: ReconcileContext): Promise<V1Deployment | undefined> {
    const ns = md.metadata.namespace!;
    const desired = desiredServingObjects(md, { defaultImage: this.options.defaultImage, operatorNamespace: this.options.operatorNamespace });
    const names = servingNames(md.metadata.name!);
    const cachedConfigMap = this.options.caches.configMaps.get(`${ns}/${names.configMap}`);
    const cachedService = this.options.caches.services.get(`${ns}/${names.service}`);
    const cachedDeployment = this.options.caches.deployments.get(`${ns}/${names.deployment}`);
    const cachedNetworkPolicy = this.options.caches.networkPolicies.get(`${ns}/${names.networkPolicy}`);
    // All four are checked before any is applied, so a conflict on one leaves the others untouched too.
    const [configMap, service, deployment, networkPolicy] = await Promise.all([
      this.controlledExisting(CONFIG_MAPS, md, desired.configMap, cachedConfigMap),
      this.controlledExisting(SERVICES, md, desired.service, cachedService),
      this.controlledExisting(DEPLOYMENTS, md, desired.deployment, cachedDeployment),
      this.controlledExisting(NETWORK_POLICIES, md, desired.networkPolicy, cachedNetworkPolicy),
    ]);
    const [, , applied] = await Promise.all([
      this.applyIfChanged(CONFIG_MAPS, desired.configMap, configMap, ctx),
      this.applyIfChanged(SERVICES, desired.service, service, ctx),
      this.applyIfChanged(DEPLOYMENTS, desired.deployment, deployment as V1Deployment | undefined, ctx),
      this.applyIfChanged(NETWORK_POLICIES, desired.networkPolicy, networkPolicy, ctx),
    ]);
    if (applied.written) this.recordServingChanges(md, deployment as V1Deployment | undefined, desired.deployment);
    return applied.object;
  }

  /**
   * The existing object named like `desired` when this ModelDeployment controls it, undefined when none
   * exists; a StalledError (NameConflict) when one exists that we do not control. A forced apply
   * would otherwise take over anyone's Service of that name (our selector, our owner reference, and later
   * garbage collection with the ModelDeployment): as controller-runtime's controllerutil, we never adopt.
   * The caches hold only objects labelled as ours, and lag behind our own creates, so a miss is asked of
   * the API server: what it answers is what the apply decision compares with.
   */
  private async controlledExisting<T extends KubeObject>(
    resource: typeof DEPLOYMENTS,
    md: ResolvedModelDeployment & KubeObject,
    desired: KubeObject,
    cached: T | undefined,
  ): Promise<T | undefined> {
    const ns = md.metadata.namespace!;
    const name = desired.metadata!.name!;
    let existing = cached;
    if (!existing) {
      try {
        existing = await this.options.client.get<T>(resourcePath(resource, ns, name));
      } catch (err) {
        if (err instanceof KubeApiError && err.notFound) return undefined;
        throw err;
      }
    }
    if (controlledBy(existing, md)) return existing;
    throw new StalledError(ConditionReason.NameConflict, nameConflictMessage(desired.kind!, ns, name, existing, md.metadata.name!));
  }

  /**
   * Server-side applies `desired` unless `existing` (the object we checked we control, undefined when none
   * exists) already carries its hash and we applied it within REAPPLY_AFTER_MS; `written` says which.
   */
  private async applyIfChanged<T extends KubeObject>(
    resource: typeof DEPLOYMENTS,
    desired: T,
    existing: T | undefined,
    ctx: ReconcileContext,
  ): Promise<{ object: T | undefined; written: boolean }> {
    const id = `${desired.kind} ${desired.metadata?.namespace}/${desired.metadata?.name}`;
    const hash = desired.metadata?.annotations?.[ANNOTATION_APPLIED_HASH];
    const last = this.appliedAt.get(id);
    if (existing && existing.metadata?.annotations?.[ANNOTATION_APPLIED_HASH] === hash && last !== undefined && Date.now() - last < REAPPLY_AFTER_MS)
      return { object: existing, written: false };
    // metadata.uid is a precondition: should the object be replaced by someone else's since we checked, the
    // API server refuses the apply (422, uid is immutable) instead of taking the newcomer over.
    const controlledUid = existing?.metadata?.uid;
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
    return { object: applied, written: true };
  }

  /** Created / Scaled / Rolled Events for an apply that wrote the Deployment, judged against it as it was before. */
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

  /** Asked of the API server only while the Deployment is not ready: a settled ModelDeployment costs no list. */
  private async serverFailure(md: ResolvedModelDeployment, deployment: V1Deployment | undefined): Promise<string | undefined> {
    if (!deployment || deploymentProgress(deployment).ready) return undefined;
    try {
      const pods = await this.options.client.get<KubeList<V1Pod>>(resourcePath(PODS, md.metadata.namespace), {
        query: { labelSelector: selectorString(md.metadata.name!) },
      });
      return serverFailure(pods.items);
    } catch {
      return undefined; // the status says "not ready" without the why, as before
    }
  }

  private async writeStatus(md: ResolvedModelDeployment & KubeObject, outcome: ReconcileOutcome): Promise<(ResolvedModelDeployment & KubeObject) | undefined> {
    const now = this.options.now?.() ?? new Date();
    return updateStatusWithRetry(
      this.options.client,
      MODEL_DEPLOYMENTS,
      md,
      (latest) => {
        const status = servingStatus(latest, outcome, now);
        return isFirstStatus(latest) ? withOthersFirstStatus(latest, status, outcome.deployment, now) : status;
      },
      { onConflict: this.options.onStatusConflict },
    );
  }

  /**
   * Owned objects are left to the garbage collector. Objects that lost their owner reference are the
   * user's (`--cascade=orphan` asks to keep them): the NameConflict rule refuses to take them over.
   */
  private async releaseLegacyFinalizer(md: ResolvedModelDeployment & KubeObject, ctx: ReconcileContext): Promise<ReconcileResult> {
    this.forgetApplied(md.metadata.namespace!, md.metadata.name!);
    if (!md.metadata.finalizers?.includes(LEGACY_SERVING_FINALIZER)) return {};
    await applyFinalizer(this.options.client, MODEL_DEPLOYMENTS, md, LEGACY_SERVING_FINALIZER, false);
    ctx.log.info("released the finalizer an earlier Ballast added; owned objects are left to the garbage collector");
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
