// Dynamic provisioning for the local nodes: a default StorageClass whose claims get a PersistentVolume
// backed by a directory under the cluster dir, deleted with its data once released. Driven by informers on
// claims and volumes; a volume whose directory is not under the provisioner's own is never deleted from disk.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { chmodSync, mkdirSync, realpathSync, rmSync } from "node:fs";
import { resolve, sep } from "node:path";
import type { Logger } from "pino";
import { KubeApiError, resourcePath, type KubeClient } from "../kube/client.js";
import { EventRecorder } from "../kube/events.js";
import { Informer, withoutManagedFields } from "../kube/informer.js";
import { PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, STORAGE_CLASSES } from "../kube/resources.js";
import { claimDir, claimsRoot } from "./pod-dirs.js";

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

/**
 * Whether `path`, symlinks resolved, lies strictly inside `root`: the annotation on a PersistentVolume is
 * anyone's to write, so its hostPath is checked before the provisioner deletes anything.
 */
export function isStrictlyInside(root: string, path: string): boolean {
  const realRoot = realpathSync(root);
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    // Nothing there to delete; judge the path as written.
    real = resolve(path);
  }
  return real.startsWith(realRoot + sep);
}

const ignore =
  (...statuses: number[]) =>
  (err: unknown) => {
    if (!(err instanceof KubeApiError && statuses.includes(err.status))) throw err;
  };

export class LocalVolumeProvisioner {
  private readonly claims: Informer<V1PersistentVolumeClaim>;
  private readonly volumes: Informer<V1PersistentVolume>;
  private readonly root: string;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    private readonly clusterDir: string,
    private readonly log: Logger,
  ) {
    this.root = claimsRoot(clusterDir);
    this.events = new EventRecorder(client, PROVISIONER, "local-nodes", log);
    this.claims = new Informer({ client, resource: PERSISTENT_VOLUME_CLAIMS, logger: log, transform: withoutManagedFields });
    this.volumes = new Informer({ client, resource: PERSISTENT_VOLUMES, logger: log, transform: withoutManagedFields });
    const claim = (c: V1PersistentVolumeClaim) => this.guard(this.provision(c));
    this.claims.on({ add: claim, update: (_, c) => claim(c) });
    const volume = (v: V1PersistentVolume) => this.guard(this.reclaim(v));
    this.volumes.on({ add: volume, update: (_, v) => volume(v) });
  }

  async start(): Promise<void> {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    await this.client
      .create(resourcePath(STORAGE_CLASSES), {
        apiVersion: "storage.k8s.io/v1",
        kind: "StorageClass",
        metadata: { name: STORAGE_CLASS, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
        provisioner: PROVISIONER,
        reclaimPolicy: "Delete",
        volumeBindingMode: "Immediate",
      })
      .catch(ignore(409));
    this.claims.start();
    this.volumes.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.claims.stop(), this.volumes.stop()]);
    await this.events.flush();
  }

  /** Level-triggered safety net: a pass over the caches retries what a failed write left undone. */
  async resync(): Promise<void> {
    await Promise.all([...this.claims.list().map((c) => this.provision(c)), ...this.volumes.list().map((v) => this.reclaim(v))]);
  }

  private guard(work: Promise<void>): void {
    work.catch((err: unknown) => this.log.warn({ err: String(err) }, "local volume provisioning failed; retrying on the next pass"));
  }

  private async provision(claim: V1PersistentVolumeClaim): Promise<void> {
    const cls = claim.spec?.storageClassName;
    if (claim.spec?.volumeName || claim.status?.phase !== "Pending" || (cls !== undefined && cls !== STORAGE_CLASS)) return;
    const pv = persistentVolumeFor(claim, this.clusterDir);
    mkdirSync(pv.spec!.hostPath!.path, { recursive: true });
    // World-writable, as rancher's local-path-provisioner (kind's default) makes them: pods running as a
    // non-root user (those run from the image) write to their claims. Its parents stay 0700.
    chmodSync(pv.spec!.hostPath!.path, 0o777);
    await this.client.create(resourcePath(PERSISTENT_VOLUMES), pv).catch(ignore(409));
    this.log.info({ namespace: claim.metadata?.namespace, name: claim.metadata?.name, volume: pv.metadata?.name }, "provisioned local volume");
  }

  private async reclaim(pv: V1PersistentVolume): Promise<void> {
    if (pv.metadata?.annotations?.["pv.kubernetes.io/provisioned-by"] !== PROVISIONER || pv.status?.phase !== "Released") return;
    if (pv.spec?.persistentVolumeReclaimPolicy !== "Delete") return;
    const path = pv.spec.hostPath?.path;
    if (path && !isStrictlyInside(this.root, path)) {
      this.events.record(
        { apiVersion: "v1", kind: "PersistentVolume", metadata: pv.metadata },
        {
          type: "Warning",
          reason: "VolumeDeleteRefused",
          action: "Delete",
          note: `hostPath ${path} is not under the local nodes' volumes directory ${this.root}: its data is left in place; delete the PersistentVolume yourself`,
        },
      );
      return;
    }
    if (path) rmSync(path, { recursive: true, force: true });
    await this.client.delete(resourcePath(PERSISTENT_VOLUMES, undefined, pv.metadata.name)).catch(ignore(404));
    this.log.info({ volume: pv.metadata.name }, "deleted released local volume");
  }
}
