// Who controls an object: Ballast acts on (and reads results from) only what its ModelDeployment controls,
// as controller-runtime's controllerutil never adopts. Shared by the serving and loop reconcilers.
import type { KubeObject } from "../kube/client.js";
import { LABEL_MODEL_DEPLOYMENT } from "./serving/desired-state.js";

/** True when `md` (this incarnation: uid, not just name) is the object's controller. */
export function controlledBy(obj: KubeObject, md: KubeObject): boolean {
  return obj.metadata?.ownerReferences?.some((o) => o.controller && o.uid === md.metadata?.uid) ?? false;
}

/** Who controls `existing` instead, in words, for the NameConflict message a user reads. */
export function describeController(existing: KubeObject, mdName: string): string {
  const controller = existing.metadata?.ownerReferences?.find((o) => o.controller);
  if (controller)
    return controller.kind === "ModelDeployment" && controller.name === mdName
      ? `controlled by an earlier ModelDeployment ${mdName} (uid ${controller.uid}) that is being deleted`
      : `controlled by ${controller.kind} ${controller.name}`;
  return existing.metadata?.labels?.[LABEL_MODEL_DEPLOYMENT] === mdName
    ? "labelled for it but controlled by nothing (orphaned by `kubectl delete --cascade=orphan`, or its owner reference was removed)"
    : "not created by this ModelDeployment";
}
