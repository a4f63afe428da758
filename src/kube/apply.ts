// Server-side apply with one fixed field manager: the API server merges what we declare and records
// that we own those fields, so fields set by others (an HPA's replicas, a user's label) are left alone.
import { PatchType, resourcePath, type KubeClient, type KubeObject, type ResourceType } from "./client.js";

export const FIELD_MANAGER = "ballast-operator";

export interface ApplyOptions {
  fieldManager?: string;
  /** Take over fields another manager owns instead of failing with 409 (controllers always force). */
  force?: boolean;
  dryRun?: boolean;
}

/** PATCH application/apply-patch+yaml (JSON is YAML) of `obj`, which must name its apiVersion, kind, name. */
export async function serverSideApply<T extends KubeObject>(client: KubeClient, resource: ResourceType, obj: T, options: ApplyOptions = {}): Promise<T> {
  const name = obj.metadata?.name;
  if (!obj.apiVersion || !obj.kind || !name)
    throw new Error(`server-side apply needs apiVersion, kind and metadata.name (got ${obj.kind ?? "?"}/${name ?? "?"})`);
  return client.patch<T>(resourcePath(resource, obj.metadata?.namespace, name), obj, PatchType.apply, {
    query: {
      fieldManager: options.fieldManager ?? FIELD_MANAGER,
      force: options.force ?? true,
      dryRun: options.dryRun ? "All" : undefined,
    },
  });
}

/**
 * Declares (present = true) or withdraws our finalizer through apply: `metadata.finalizers` is a set,
 * so other controllers' finalizers on the same object are untouched, with no read-modify-write race.
 */
export async function applyFinalizer<T extends KubeObject>(
  client: KubeClient,
  resource: ResourceType,
  obj: T,
  finalizer: string,
  present: boolean,
  fieldManager = `${FIELD_MANAGER}-finalizer`,
): Promise<T> {
  const m = obj.metadata ?? {};
  return serverSideApply<T>(
    client,
    resource,
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: m.name, namespace: m.namespace, ...(present ? { finalizers: [finalizer] } : {}) },
    } as T,
    { fieldManager },
  );
}
