// Dynamic provisioning for the local nodes: a default StorageClass whose claims get a PersistentVolume
// backed by a directory under the cluster dir, deleted with its data once released.
import { CoreV1Api, StorageV1Api, type V1PersistentVolume, type V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { mkdirSync, rmSync } from "node:fs";
import type { Logger } from "pino";
import { claimDir } from "./pod-dirs.js";

export const STORAGE_CLASS = "ballast-local";
export const PROVISIONER = "ballast.dev/local-path";

export function persistentVolumeFor(claim: V1PersistentVolumeClaim, clusterDir: string): V1PersistentVolume {
  const m = claim.metadata!;
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: `pvc-${m.uid}`, annotations: { "pv.kubernetes.io/provisioned-by": PROVISIONER } },
    spec: {
      capacity: { storage: claim.spec?.resources?.requests?.storage ?? "1Gi" },
      accessModes: claim.spec?.accessModes ?? ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Delete",
      storageClassName: claim.spec?.storageClassName ?? STORAGE_CLASS,
      claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: m.namespace!, name: m.name!, uid: m.uid! },
      hostPath: { path: claimDir(clusterDir, m.namespace!, m.name!), type: "DirectoryOrCreate" },
      ...(claim.spec?.volumeMode ? { volumeMode: claim.spec.volumeMode } : {}),
    },
  };
}

const ignoreConflict = (err: unknown) => {
  if ((err as { code?: number }).code !== 409) throw err;
};

export class LocalVolumeProvisioner {
  constructor(
    private readonly core: CoreV1Api,
    private readonly storage: StorageV1Api,
    private readonly clusterDir: string,
    private readonly log: Logger,
  ) {}

  async ensureStorageClass(): Promise<void> {
    await this.storage
      .createStorageClass({
        body: {
          apiVersion: "storage.k8s.io/v1",
          kind: "StorageClass",
          metadata: { name: STORAGE_CLASS, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
          provisioner: PROVISIONER,
          reclaimPolicy: "Delete",
          volumeBindingMode: "Immediate",
        },
      })
      .catch(ignoreConflict);
  }

  /** One pass: provision pending claims of our class, delete released volumes we provisioned. */
  async sync(): Promise<void> {
    const claims = await this.core.listPersistentVolumeClaimForAllNamespaces();
    for (const claim of claims.items) {
      const cls = claim.spec?.storageClassName;
      if (claim.spec?.volumeName || claim.status?.phase !== "Pending" || (cls !== undefined && cls !== STORAGE_CLASS)) continue;
      const pv = persistentVolumeFor(claim, this.clusterDir);
      mkdirSync(pv.spec!.hostPath!.path, { recursive: true });
      await this.core.createPersistentVolume({ body: pv }).catch(ignoreConflict);
      this.log.info({ namespace: claim.metadata?.namespace, name: claim.metadata?.name, volume: pv.metadata?.name }, "provisioned local volume");
    }
    const volumes = await this.core.listPersistentVolume();
    for (const pv of volumes.items) {
      if (pv.metadata?.annotations?.["pv.kubernetes.io/provisioned-by"] !== PROVISIONER || pv.status?.phase !== "Released") continue;
      if (pv.spec?.persistentVolumeReclaimPolicy !== "Delete") continue;
      rmSync(pv.spec.hostPath!.path, { recursive: true, force: true });
      await this.core.deletePersistentVolume({ name: pv.metadata.name! }).catch(() => {});
      this.log.info({ volume: pv.metadata.name }, "deleted released local volume");
    }
  }
}
